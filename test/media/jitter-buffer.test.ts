// The adaptive jitter buffer, driven by a fake clock: order restored, late and duplicate frames
// dropped, a lost frame concealed (repeat once, then silence), the delay following the jitter
// within its bounds and coming back down.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { JitterBuffer, type PlayoutFrame } from "../../src/media/index.js";
import { FakeClock } from "../helpers/fake-clock.js";

function frame(sequence: number): { sequence: number; timestamp: number; payload: Uint8Array } {
  return {
    sequence: sequence & 0xffff,
    timestamp: (sequence * 160) >>> 0,
    payload: Uint8Array.of(sequence & 0xff),
  };
}

/** Plays `ticks` 20-ms ticks, pushing what `arrivals` says arrives before each. */
function run(
  buffer: JitterBuffer,
  clock: FakeClock,
  ticks: number,
  arrivals: (tick: number) => number[],
): PlayoutFrame[] {
  const out: PlayoutFrame[] = [];
  for (let tick = 0; tick < ticks; tick++) {
    for (const seq of arrivals(tick)) buffer.push(frame(seq));
    out.push(buffer.pull());
    clock.tick(20);
  }
  return out;
}

function played(out: PlayoutFrame[]): number[] {
  return out.flatMap((p) => (p.kind === "frame" ? [p.frame.sequence] : []));
}

describe("jitter buffer", () => {
  test("waits out the minimum delay, then plays in order", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 40 });
    const out = run(buffer, clock, 12, (t) => (t < 10 ? [100 + t] : []));
    assert.deepEqual(out[0], { kind: "silence", reason: "buffering" });
    assert.deepEqual(played(out), [100, 101, 102, 103, 104, 105, 106, 107, 108, 109]);
    assert.equal(buffer.stats.played, 10);
  });

  test("reordered frames come out in order; duplicates and late ones are dropped", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 60 });
    const schedule: Record<number, number[]> = {
      0: [1],
      1: [3, 2],
      2: [2, 4],
      3: [6],
      4: [5],
      5: [7],
      9: [0],
    };
    const out = run(buffer, clock, 14, (t) => schedule[t] ?? []);
    assert.deepEqual(played(out), [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(buffer.stats.duplicates, 1);
    assert.equal(buffer.stats.late, 1);
  });

  test("lost frames: the dry ticks stand in for them, the rest is one repeat then silence", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 40 });
    const out = run(buffer, clock, 20, (t) => (t < 16 && (t < 5 || t > 7) ? [t] : []));
    const kinds = out.map((p) =>
      p.kind === "frame"
        ? p.frame.sequence
        : p.kind === "concealed"
          ? p.payload === undefined
            ? "S"
            : `R${p.payload[0]}`
          : "-",
    );
    assert.deepEqual(kinds.slice(0, 12), ["-", 0, 1, 2, 3, 4, "-", "-", "R4", 8, 9, 10]);
    assert.equal(buffer.stats.concealed, 3);
    // A loss in the middle of a full buffer: repeat once, then silence.
    const clock2 = new FakeClock();
    const full = new JitterBuffer({ clock: clock2, minDelayMs: 80 });
    const out2 = run(full, clock2, 16, (t) => (t < 3 || t > 5 ? [t] : []));
    const kinds2 = out2.map((p) =>
      p.kind === "frame"
        ? p.frame.sequence
        : p.kind === "concealed"
          ? p.payload === undefined
            ? "S"
            : `R${p.payload[0]}`
          : "-",
    );
    assert.deepEqual(kinds2.slice(3, 10), [0, 1, 2, "R2", "S", "S", 6]);
  });

  test("underrun when the sender pauses: silence, no frames skipped when it resumes", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 40 });
    const out = run(buffer, clock, 30, (t) => (t < 5 ? [t] : t >= 15 && t < 20 ? [t - 10] : []));
    assert.deepEqual(played(out), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.ok(buffer.stats.underruns > 0);
    assert.equal(buffer.stats.concealed, 0);
  });

  test("the target delay grows with jitter, within the maximum, and shrinks again", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 40, maxDelayMs: 200 });
    // Frames arrive in pairs every 40 ms: 20 ms of jitter on every frame.
    run(buffer, clock, 200, (t) => (t % 2 === 1 ? [t - 1, t] : []));
    const jittery = buffer.stats.targetDelayMs;
    assert.ok(jittery > 40 && jittery <= 200, `target ${jittery}`);
    assert.ok(buffer.stats.jitterMs > 5);
    // Then the network settles: one frame per tick.
    run(buffer, clock, 400, (t) => [200 + t]);
    assert.equal(buffer.stats.targetDelayMs, 40);
    assert.ok(buffer.stats.bufferedMs <= 80, `buffered ${buffer.stats.bufferedMs}`);

    const wild = new JitterBuffer({ clock, minDelayMs: 40, maxDelayMs: 100 });
    run(wild, clock, 200, (t) =>
      t % 10 === 9 ? Array.from({ length: 10 }, (_, i) => t - 9 + i) : [],
    );
    assert.equal(wild.stats.targetDelayMs, 100);
  });

  test("a burst after a stall is trimmed back toward the target", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock, minDelayMs: 40, maxDelayMs: 100 });
    run(buffer, clock, 10, (t) => [t]);
    // 25 frames arrive at once (a 500-ms stall released).
    run(buffer, clock, 1, () => Array.from({ length: 25 }, (_, i) => 10 + i));
    run(buffer, clock, 40, () => []);
    assert.ok(buffer.stats.dropped > 0);
    assert.ok(buffer.stats.dropped < 25);
  });

  test("a sender that jumps its numbering far ahead is followed at once, not concealed", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock });
    const out = run(buffer, clock, 20, (t) => (t < 5 ? [t] : t < 15 ? [30000 + t] : []));
    const seqs = played(out);
    assert.deepEqual(seqs.slice(0, 4), [0, 1, 2, 3]);
    assert.ok(seqs.includes(30014), seqs.join(","));
    assert.equal(buffer.stats.resyncs, 1);
    assert.ok(buffer.stats.concealed <= 2);
  });

  test("sequence numbers wrap at 2^16 without a gap", () => {
    const clock = new FakeClock();
    const buffer = new JitterBuffer({ clock });
    const out = run(buffer, clock, 14, (t) => (t < 10 ? [65531 + t] : []));
    assert.deepEqual(played(out), [65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3, 4]);
  });

  test("whatever order and duplicates arrive in, frames play once each and in order", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 59 }), fc.nat({ max: 5 })), {
          minLength: 1,
          maxLength: 120,
        }),
        (arrivals) => {
          const clock = new FakeClock();
          const buffer = new JitterBuffer({ clock, minDelayMs: 60, maxDelayMs: 200 });
          const byTick = new Map<number, number[]>();
          // Frame s is sent at tick s and arrives up to 5 ticks later (some twice).
          for (const [seq, delay] of arrivals)
            byTick.set(seq + delay, [...(byTick.get(seq + delay) ?? []), seq]);
          const out = run(buffer, clock, 80, (t) => byTick.get(t) ?? []);
          const seqs = played(out);
          for (let i = 1; i < seqs.length; i++)
            assert.ok(seqs[i]! > seqs[i - 1]!, `order ${seqs.join(",")}`);
          assert.equal(new Set(seqs).size, seqs.length);
        },
      ),
    );
  });
});
