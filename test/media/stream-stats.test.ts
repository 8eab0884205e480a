// Receiver statistics (RFC 3550 A.1, A.3, A.8): probation, sequence wrap, loss and the fraction
// per report interval, duplicates, a restarted sender, jitter in timestamp units and ms.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { ReceiverStats, SenderStats, roundTripMs } from "../../src/media/index.js";

function feed(stats: ReceiverStats, sequences: number[], start = 0): void {
  sequences.forEach((sequence, i) => {
    stats.receive({
      sequence: sequence & 0xffff,
      timestamp: (start + i) * 160,
      arrivalMs: (start + i) * 20,
    });
  });
}

describe("receiver statistics", () => {
  test("a clean stream: every packet received, none lost, no jitter", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(
      stats,
      Array.from({ length: 150 }, (_, i) => 1000 + i),
    );
    const s = stats.snapshot();
    assert.equal(s.received, 150);
    assert.equal(s.expected, 150);
    assert.equal(s.lost, 0);
    assert.equal(s.jitter, 0);
    assert.equal(s.extendedHighestSequence, 1149);
  });

  test("A.1: the sequence wraps into the next cycle", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(
      stats,
      Array.from({ length: 20 }, (_, i) => 65530 + i),
    );
    const s = stats.snapshot();
    assert.equal(s.received, 20);
    assert.equal(s.lost, 0);
    assert.equal(s.extendedHighestSequence, 65536 + 13);
  });

  test("probation across the wrap still counts from the first packet", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(stats, [65535, 0, 1, 2]);
    assert.deepEqual([stats.snapshot().received, stats.snapshot().expected], [4, 4]);
  });

  test("A.1: a source is not valid until two packets in sequence", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    assert.equal(stats.receive({ sequence: 10, timestamp: 0, arrivalMs: 0 }), false);
    assert.equal(stats.valid, false);
    assert.equal(stats.receive({ sequence: 500, timestamp: 160, arrivalMs: 20 }), false);
    assert.equal(stats.receive({ sequence: 501, timestamp: 320, arrivalMs: 40 }), true);
    assert.equal(stats.valid, true);
    assert.equal(stats.snapshot().received, 2);
  });

  test("A.3: lost packets and the fraction lost per report interval", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    const seqs = Array.from({ length: 100 }, (_, i) => i).filter((i) => i % 10 !== 5);
    feed(stats, seqs);
    assert.equal(stats.snapshot().lost, 10);
    const first = stats.reportBlock(42, 2000);
    assert.equal(first.cumulativeLost, 10);
    assert.equal(first.fractionLost, Math.floor((10 * 256) / 100));
    assert.equal(first.extendedHighestSequence, 99);
    feed(
      stats,
      Array.from({ length: 50 }, (_, i) => 100 + i),
      100,
    );
    const second = stats.reportBlock(42, 3000);
    assert.equal(second.fractionLost, 0);
    assert.equal(second.cumulativeLost, 10);
  });

  test("A.1: duplicates count as received (lost may go below zero), reordering loses nothing", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(stats, [1, 2, 3, 5, 4, 6, 6, 7]);
    const s = stats.snapshot();
    assert.equal(s.expected, 7);
    assert.equal(s.received, 8);
    assert.equal(s.lost, -1);
  });

  test("A.1: a large jump is refused once, and taken as a restart when it continues", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(stats, [1, 2, 3, 4]);
    assert.equal(stats.receive({ sequence: 40000, timestamp: 800, arrivalMs: 100 }), false);
    assert.equal(stats.receive({ sequence: 40001, timestamp: 960, arrivalMs: 120 }), true);
    const s = stats.snapshot();
    assert.equal(s.received, 1);
    assert.equal(s.extendedHighestSequence, 40001);
  });

  test("A.8: jitter of arrivals that swing ±10 ms around the send times", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    for (let i = 0; i < 2000; i++) {
      stats.receive({
        sequence: i,
        timestamp: i * 160,
        arrivalMs: i * 20 + (i % 2 === 0 ? 0 : 10),
      });
    }
    // |D| is 10 ms = 80 units each time: J converges to 80.
    const s = stats.snapshot();
    assert.ok(Math.abs(s.jitter - 80) < 0.5, `jitter ${s.jitter}`);
    assert.ok(Math.abs(s.jitterMs - 10) < 0.1);
    const video = new ReceiverStats({ clockRate: 90000 });
    for (let i = 0; i < 2000; i++) {
      video.receive({
        sequence: i,
        timestamp: i * 3000,
        arrivalMs: i * (100 / 3) + (i % 2 === 0 ? 0 : 5),
      });
    }
    assert.ok(Math.abs(video.snapshot().jitterMs - 5) < 0.1);
  });

  test("A.8: a timestamp wrap makes no jitter", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    for (let i = 0; i < 50; i++) {
      stats.receive({ sequence: i, timestamp: (0xffffff00 + i * 160) >>> 0, arrivalMs: i * 20 });
    }
    assert.ok(stats.snapshot().jitter < 1e-6);
  });

  test("any order of a permutation of N packets reads N received and none lost", () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffff }),
        fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 40, maxLength: 40 }),
        (start, swaps) => {
          const seqs = Array.from({ length: 40 }, (_, i) => start + i);
          // Local swaps after the first two (which establish the source).
          swaps.forEach((d, i) => {
            const j = Math.min(39, Math.max(2, i + d));
            if (i >= 2) [seqs[i], seqs[j]] = [seqs[j]!, seqs[i]!];
          });
          const stats = new ReceiverStats({ clockRate: 8000 });
          feed(stats, seqs);
          const s = stats.snapshot();
          assert.equal(s.received, 40);
          assert.equal(s.lost, 0);
        },
      ),
    );
  });

  test("LSR/DLSR echo the last SR; the sender's RTT comes back from them", () => {
    const stats = new ReceiverStats({ clockRate: 8000 });
    feed(stats, [1, 2, 3]);
    stats.noteSenderReport(0x12345678, 1000);
    const block = stats.reportBlock(9, 1500);
    assert.equal(block.lastSr, 0x12345678);
    assert.equal(block.delaySinceLastSr, 32768);
    // The sender got it 0.5 s + 40 ms after sending the SR: RTT 40 ms.
    const arrival = 0x12345678 + 32768 + Math.round(0.04 * 65536);
    assert.ok(Math.abs(roundTripMs(block, arrival)! - 40) < 0.1);
    assert.equal(roundTripMs({ ...block, lastSr: 0 }, arrival), undefined);
  });

  test("sender counts packets and payload octets", () => {
    const sender = new SenderStats();
    sender.record(160);
    sender.record(160);
    assert.deepEqual([sender.packets, sender.octets], [2, 320]);
  });
});
