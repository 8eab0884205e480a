// RFC 4733 telephone events: the payload's bits, the sender's start/update/end×3 sequence, and
// a receiver that reports each digit once.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  DtmfReceiver,
  DtmfSender,
  dtmfEvent,
  dtmfKey,
  readTelephoneEvent,
  writeTelephoneEvent,
} from "../../src/media/index.js";

describe("DTMF (RFC 4733)", () => {
  test("the payload: event, E bit, volume, duration (§2.3)", () => {
    const bytes = writeTelephoneEvent({ event: 11, end: true, volume: 10, duration: 800 });
    assert.deepEqual([...bytes], [11, 0x8a, 0x03, 0x20]);
    assert.deepEqual(readTelephoneEvent(bytes), {
      event: 11,
      end: true,
      volume: 10,
      duration: 800,
    });
    assert.equal(readTelephoneEvent(Uint8Array.of(1, 2, 3)), undefined);
    fc.assert(
      fc.property(
        fc.nat({ max: 255 }),
        fc.boolean(),
        fc.nat({ max: 63 }),
        fc.nat({ max: 0xffff }),
        (event, end, volume, duration) => {
          assert.deepEqual(
            readTelephoneEvent(writeTelephoneEvent({ event, end, volume, duration })),
            { event, end, volume, duration },
          );
        },
      ),
    );
  });

  test("keys map to events 0–15 (§3.2)", () => {
    assert.deepEqual(
      [..."0123456789*#ABCD"].map(dtmfEvent),
      Array.from({ length: 16 }, (_, i) => i),
    );
    assert.equal(dtmfEvent("a"), 12);
    assert.equal(dtmfEvent("x"), undefined);
    assert.equal(dtmfKey(11), "#");
    assert.equal(dtmfKey(16), undefined);
  });

  test("the sender: marker on the first packet, growing durations, the end packet three times", () => {
    const sender = new DtmfSender();
    sender.send("5", 100);
    assert.equal(sender.busy, true);
    const packets = [];
    for (let p = sender.nextPacket(); p !== undefined; p = sender.nextPacket()) packets.push(p);
    const events = packets.map((p) => readTelephoneEvent(p.payload)!);
    assert.deepEqual(
      events.map((e) => [e.duration, e.end]),
      [
        [160, false],
        [320, false],
        [480, false],
        [640, false],
        [800, true],
        [800, true],
        [800, true],
      ],
    );
    assert.deepEqual(
      packets.map((p) => p.marker),
      [true, false, false, false, false, false, false],
    );
    assert.ok(events.every((e) => e.event === 5));
    assert.equal(packets.filter((p) => p.startsEvent).length, 1);
    assert.equal(sender.sent, 1);
    assert.equal(sender.busy, false);
    assert.throws(() => sender.send("1x2"), /"x" is not a DTMF key/);
  });

  test("the receiver reports each digit once, by the event's timestamp", () => {
    const sender = new DtmfSender();
    sender.send("12#");
    const receiver = new DtmfReceiver();
    const digits: string[] = [];
    let timestamp = 1000;
    for (let p = sender.nextPacket(); p !== undefined; p = sender.nextPacket()) {
      if (p.startsEvent) timestamp += 2000;
      // Every packet delivered twice (a duplicating network).
      for (let copy = 0; copy < 2; copy++) {
        const digit = receiver.receive(p.payload, timestamp, 42);
        if (digit !== undefined) digits.push(digit.key ?? "?");
      }
    }
    assert.deepEqual(digits, ["1", "2", "#"]);
    assert.equal(receiver.receive(Uint8Array.of(1), 5, 42), undefined);
  });

  test("the same digit twice in a row is two events", () => {
    const receiver = new DtmfReceiver();
    const payload = writeTelephoneEvent({ event: 1, end: false, volume: 10, duration: 160 });
    assert.equal(receiver.receive(payload, 100, 1)?.key, "1");
    assert.equal(receiver.receive(payload, 100, 1), undefined);
    assert.equal(receiver.receive(payload, 2000, 1)?.key, "1");
  });
});
