// The RTP fixed header (RFC 3550 §5.1): round trips, the fields at their bit positions, and
// every kind of damaged datagram refused with its reason.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  isRtcp,
  readRtpPacket,
  sequenceDelta,
  writeRtpPacket,
  type RtpPacket,
} from "../../src/media/index.js";

function read(datagram: Buffer): RtpPacket {
  const packet = readRtpPacket(datagram);
  assert.ok(typeof packet === "object", `not RTP: ${String(packet)}`);
  return packet;
}

describe("RTP packets", () => {
  test("the fields sit where RFC 3550 §5.1 puts them", () => {
    const bytes = writeRtpPacket({
      payloadType: 8,
      sequence: 0x1234,
      timestamp: 0xdeadbeef,
      ssrc: 0x01020304,
      marker: true,
      payload: Buffer.from([0xd5, 0xd5]),
    });
    assert.deepEqual(
      [...bytes],
      [0x80, 0x88, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 0xd5, 0xd5],
    );
    const packet = read(bytes);
    assert.equal(packet.payloadType, 8);
    assert.equal(packet.marker, true);
    assert.equal(packet.sequence, 0x1234);
    assert.equal(packet.timestamp, 0xdeadbeef);
    assert.equal(packet.ssrc, 0x01020304);
    assert.deepEqual([...packet.payload], [0xd5, 0xd5]);
  });

  test("property: write then read gives the packet back", () => {
    fc.assert(
      fc.property(
        fc.record({
          payloadType: fc.integer({ min: 0, max: 127 }),
          sequence: fc.integer({ min: 0, max: 0xffff }),
          timestamp: fc.integer({ min: 0, max: 0xffffffff }),
          ssrc: fc.integer({ min: 0, max: 0xffffffff }),
          marker: fc.boolean(),
          csrcs: fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 15 }),
          payload: fc.uint8Array({ maxLength: 200 }),
        }),
        (input) => {
          const packet = read(writeRtpPacket(input));
          assert.deepEqual(
            { ...packet, payload: [...packet.payload] },
            {
              ...input,
              payload: [...input.payload],
            },
          );
        },
      ),
    );
  });

  test("a header extension is skipped and padding taken off", () => {
    const bytes = Buffer.from([
      0xb0,
      0x00,
      0,
      1,
      0,
      0,
      0,
      2,
      0,
      0,
      0,
      3, // V=2, P=1, X=1
      0xbe,
      0xde,
      0,
      1,
      0x10,
      0xff,
      0,
      0, // one-byte-header extension, one word
      0x41,
      0x42,
      0,
      0,
      3, // payload "AB", then 3 bytes of padding
    ]);
    const packet = read(bytes);
    assert.equal(packet.payload.toString(), "AB");
  });

  test("damaged datagrams are refused with the reason", () => {
    const good = writeRtpPacket({
      payloadType: 0,
      sequence: 1,
      timestamp: 1,
      ssrc: 1,
      payload: Buffer.alloc(4),
    });
    assert.equal(readRtpPacket(good.subarray(0, 11)), "short");
    assert.equal(readRtpPacket(Buffer.concat([Buffer.from([0x40]), good.subarray(1)])), "version");
    assert.equal(readRtpPacket(Buffer.concat([Buffer.from([0x8f]), good.subarray(1)])), "csrc");
    // X set, the 4 payload bytes read as an extension header claiming 5 words that are not there.
    const extended = Buffer.from(good);
    extended[0] = 0x90;
    extended.writeUInt16BE(5, 14);
    assert.equal(readRtpPacket(extended.subarray(0, 16)), "extension");
    assert.equal(
      readRtpPacket(Buffer.concat([Buffer.from([0x90]), good.subarray(1, 14)])),
      "extension",
    );
    const padded = Buffer.from(good);
    padded[0] = 0xa0;
    padded[padded.length - 1] = 0;
    assert.equal(readRtpPacket(padded), "padding");
    padded[padded.length - 1] = 200;
    assert.equal(readRtpPacket(padded), "padding");
  });

  test("property: any bytes are read or refused, never thrown", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        readRtpPacket(Buffer.from(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  test("out-of-range payload types and CSRC lists are refused on writing", () => {
    assert.throws(
      () =>
        writeRtpPacket({
          payloadType: 128,
          sequence: 0,
          timestamp: 0,
          ssrc: 0,
          payload: Buffer.alloc(0),
        }),
      RangeError,
    );
    assert.throws(
      () =>
        writeRtpPacket({
          payloadType: 0,
          sequence: 0,
          timestamp: 0,
          ssrc: 0,
          csrcs: Array(16).fill(0),
          payload: Buffer.alloc(0),
        }),
      RangeError,
    );
  });

  test("RTCP on a muxed port is told apart (RFC 5761 §4)", () => {
    assert.equal(isRtcp(Buffer.from([0x80, 200, 0, 6])), true); // SR
    assert.equal(isRtcp(Buffer.from([0x81, 201, 0, 7])), true); // RR
    assert.equal(
      isRtcp(
        writeRtpPacket({
          payloadType: 0,
          sequence: 0,
          timestamp: 0,
          ssrc: 0,
          marker: true,
          payload: Buffer.alloc(1),
        }),
      ),
      false,
    );
    assert.equal(
      isRtcp(
        writeRtpPacket({
          payloadType: 96,
          sequence: 0,
          timestamp: 0,
          ssrc: 0,
          marker: true,
          payload: Buffer.alloc(1),
        }),
      ),
      false,
    );
  });

  test("sequence distances wrap at 2^16", () => {
    assert.equal(sequenceDelta(65535, 0), 1);
    assert.equal(sequenceDelta(0, 65535), -1);
    assert.equal(sequenceDelta(100, 90), -10);
  });
});
