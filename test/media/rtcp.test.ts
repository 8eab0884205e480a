// RTCP compound packets (RFC 3550 §6): SR, RR with report blocks, SDES CNAME and BYE written
// and read back field for field; bytes at the positions §6.4 draws; damaged input refused with
// a reason and never a throw.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  ntpMiddle32,
  ntpTimestamp,
  readRtcpCompound,
  writeRtcpCompound,
  type ReportBlock,
  type RtcpPacket,
} from "../../src/media/index.js";

const block: ReportBlock = {
  ssrc: 0x11223344,
  fractionLost: 64,
  cumulativeLost: -3,
  extendedHighestSequence: 0x0001fffe,
  jitter: 123,
  lastSr: 0xabcd1234,
  delaySinceLastSr: 65536,
};

/** fast-check's records have null prototypes; compare the data only. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

function read(bytes: Buffer): readonly RtcpPacket[] {
  const result = readRtcpCompound(bytes);
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result.packets;
}

const reportBlock = fc.record({
  ssrc: fc.nat({ max: 0xffffffff }),
  fractionLost: fc.integer({ min: 0, max: 255 }),
  cumulativeLost: fc.integer({ min: -0x800000, max: 0x7fffff }),
  extendedHighestSequence: fc.nat({ max: 0xffffffff }),
  jitter: fc.nat({ max: 0xffffffff }),
  lastSr: fc.nat({ max: 0xffffffff }),
  delaySinceLastSr: fc.nat({ max: 0xffffffff }),
});

const packet: fc.Arbitrary<RtcpPacket> = fc.oneof(
  fc.record({
    type: fc.constant("sr" as const),
    ssrc: fc.nat({ max: 0xffffffff }),
    ntpSeconds: fc.nat({ max: 0xffffffff }),
    ntpFraction: fc.nat({ max: 0xffffffff }),
    rtpTimestamp: fc.nat({ max: 0xffffffff }),
    packetCount: fc.nat({ max: 0xffffffff }),
    octetCount: fc.nat({ max: 0xffffffff }),
    reports: fc.array(reportBlock, { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant("rr" as const),
    ssrc: fc.nat({ max: 0xffffffff }),
    reports: fc.array(reportBlock, { maxLength: 3 }),
  }),
  fc.record({
    type: fc.constant("sdes" as const),
    chunks: fc.array(
      fc.record({ ssrc: fc.nat({ max: 0xffffffff }), cname: fc.string({ maxLength: 40 }) }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  fc.record({
    type: fc.constant("bye" as const),
    ssrcs: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 3 }),
    reason: fc.string({ minLength: 1, maxLength: 30 }),
  }),
);

describe("RTCP", () => {
  test("an SR with a report block sits where §6.4.1 draws it", () => {
    const bytes = writeRtcpCompound([
      {
        type: "sr",
        ssrc: 0x01020304,
        ntpSeconds: 0xe0000000,
        ntpFraction: 0x80000000,
        rtpTimestamp: 160,
        packetCount: 50,
        octetCount: 8000,
        reports: [block],
      },
    ]);
    assert.equal(bytes.length, 52);
    assert.deepEqual([...bytes.subarray(0, 4)], [0x81, 200, 0, 12]);
    assert.equal(bytes.readUInt32BE(4), 0x01020304);
    assert.equal(bytes.readUInt32BE(8), 0xe0000000);
    assert.equal(bytes.readUInt32BE(16), 160);
    assert.equal(bytes.readUInt32BE(20), 50);
    assert.equal(bytes.readUInt32BE(24), 8000);
    assert.equal(bytes.readUInt32BE(28), 0x11223344);
    assert.deepEqual([...bytes.subarray(32, 36)], [64, 0xff, 0xff, 0xfd]); // fraction, −3
    assert.equal(bytes.readUInt32BE(36), 0x0001fffe);
    const [sr] = read(bytes);
    assert.equal(sr?.type, "sr");
    assert.deepEqual(sr.type === "sr" ? sr.reports[0] : undefined, block);
  });

  test("a compound RR + SDES CNAME + BYE round-trips", () => {
    const packets: RtcpPacket[] = [
      { type: "rr", ssrc: 7, reports: [block] },
      { type: "sdes", chunks: [{ ssrc: 7, cname: "alice@127.0.0.1" }] },
      { type: "bye", ssrcs: [7], reason: "hung up" },
    ];
    const bytes = writeRtcpCompound(packets);
    assert.equal(bytes.length % 4, 0);
    assert.deepEqual(read(bytes), packets);
  });

  test("compound packets of any content round-trip (the report first, §6.1)", () => {
    fc.assert(
      fc.property(fc.array(packet, { minLength: 1, maxLength: 4 }), (packets) => {
        const bytes = writeRtcpCompound(packets);
        const back = read(bytes);
        const expected: RtcpPacket[] =
          packets[0]!.type === "sr" || packets[0]!.type === "rr"
            ? packets
            : [{ type: "rr" as const, ssrc: 0, reports: [] }, ...packets];
        const normalise = (p: RtcpPacket): unknown =>
          p.type === "sdes"
            ? {
                ...p,
                chunks: p.chunks.map((c) => ({
                  ssrc: c.ssrc,
                  cname: Buffer.from(c.cname ?? "")
                    .subarray(0, 255)
                    .toString(),
                })),
              }
            : p;
        assert.deepEqual(plain(back.map(normalise)), plain(expected.map(normalise)));
        assert.deepEqual(writeRtcpCompound(back), bytes);
      }),
    );
  });

  test("damaged input is refused with a reason", () => {
    const good = writeRtcpCompound([
      { type: "rr", ssrc: 7, reports: [block] },
      { type: "sdes", chunks: [{ ssrc: 7, cname: "x" }] },
    ]);
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(2), /shorter than an RTCP header/],
      [Buffer.from([0x40, 201, 0, 1, 0, 0, 0, 0]), /version 1/],
      [good.subarray(0, good.length - 4), /runs past the datagram/],
      [Buffer.concat([good, Buffer.from([0x80])]), /trailing bytes/],
      [writeRtcpCompound([{ type: "rr", ssrc: 1, reports: [] }]).fill(0x84, 0, 1), /report blocks/],
      [Buffer.from([0x81, 202, 0, 1, 0, 0, 0, 1]), /not SR or RR/],
      [Buffer.from([0xa0, 201, 0, 1, 0, 0, 0, 0]), /padding/],
    ];
    for (const [bytes, reason] of cases) {
      const result = readRtcpCompound(bytes);
      assert.equal(result.ok, false);
      assert.match(result.ok ? "" : result.reason, reason);
    }
  });

  test("random and mangled bytes never throw", () => {
    const good = writeRtcpCompound([
      {
        type: "sr",
        ssrc: 1,
        ntpSeconds: 2,
        ntpFraction: 3,
        rtpTimestamp: 4,
        packetCount: 5,
        octetCount: 6,
        reports: [block],
      },
      { type: "sdes", chunks: [{ ssrc: 1, cname: "c" }] },
      { type: "bye", ssrcs: [1], reason: "r" },
    ]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        readRtcpCompound(Buffer.from(bytes));
      }),
    );
    fc.assert(
      fc.property(
        fc.nat({ max: good.length - 1 }),
        fc.nat({ max: 255 }),
        fc.nat({ max: good.length }),
        (at, value, cut) => {
          const mangled = Buffer.from(good);
          mangled[at] = value;
          readRtcpCompound(mangled.subarray(0, cut));
        },
      ),
    );
  });

  test("APP and feedback packets are kept by type, not refused", () => {
    const rr = writeRtcpCompound([{ type: "rr", ssrc: 1, reports: [] }]);
    const app = Buffer.from([0x80, 204, 0, 2, 0, 0, 0, 1, 0x41, 0x42, 0x43, 0x44]);
    const packets = read(Buffer.concat([rr, app]));
    assert.equal(packets[1]?.type, "other");
    assert.equal(packets[1]?.type === "other" ? packets[1].packetType : 0, 204);
  });

  test("NTP timestamps: the epoch offset, fractions, LSR's middle 32 bits", () => {
    const t = ntpTimestamp(1_000_000_000_500);
    assert.equal(t.seconds, 1_000_000_000 + 2208988800);
    assert.equal(t.fraction, 0x80000000);
    assert.equal(ntpMiddle32(0x12345678, 0x9abcdef0), 0x56789abc);
  });
});
