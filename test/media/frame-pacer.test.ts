// The shared 20-ms pacer: one timer for all its streams, every stream a frame per tick, missed
// frames given back after a late callback, a new schedule when too far behind, and no timer
// left once the last stream leaves.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Clock, ClockTimer } from "../../src/sip/clock.js";
import { FramePacer, MAX_CATCH_UP_FRAMES, type PacedStream } from "../../src/media/index.js";
import { FakeClock } from "../helpers/fake-clock.js";

/** Counts its frames. */
function counter(): PacedStream & { frames: number } {
  const stream = {
    frames: 0,
    onFrame() {
      stream.frames++;
    },
  };
  return stream;
}

/** A clock whose timer fires only when the test says, however late: a busy event loop. */
class LateClock implements Clock {
  time = 0;
  timers = new Map<ClockTimer, () => void>();
  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void): ClockTimer {
    const handle = { __clockTimer: true } as const;
    this.timers.set(handle, callback);
    return handle;
  }
  clearTimeout(timer: ClockTimer): void {
    this.timers.delete(timer);
  }
  /** Moves to `at` and fires the one pending timer. */
  fireAt(at: number): void {
    this.time = at;
    const pending = [...this.timers][0];
    assert.ok(pending !== undefined, "no timer pending");
    this.timers.delete(pending[0]);
    pending[1]();
  }
}

describe("FramePacer", () => {
  test("one timer serves every stream, a frame each per 20 ms", () => {
    const clock = new FakeClock();
    const pacer = new FramePacer(clock);
    const streams = Array.from({ length: 300 }, counter);
    for (const stream of streams) pacer.add(stream);
    assert.equal(clock.pending, 1);
    clock.tick(1000);
    for (const stream of streams) assert.equal(stream.frames, 50);
    assert.equal(clock.pending, 1);
  });

  test("a stream added later joins at the next tick; removing the last clears the timer", () => {
    const clock = new FakeClock();
    const pacer = new FramePacer(clock);
    const first = counter();
    const second = counter();
    pacer.add(first);
    clock.tick(30);
    pacer.add(second);
    clock.tick(10); // the tick at 40 ms
    assert.deepEqual([first.frames, second.frames], [2, 1]);
    pacer.remove(first);
    clock.tick(20);
    assert.deepEqual([first.frames, second.frames], [2, 2]);
    pacer.remove(second);
    assert.equal(clock.pending, 0);
    assert.equal(pacer.size, 0);
  });

  test("a stream removed by another's frame gets no more frames in that tick", () => {
    const clock = new FakeClock();
    const pacer = new FramePacer(clock);
    const victim = counter();
    const remover: PacedStream = { onFrame: () => pacer.remove(victim) };
    pacer.add(remover);
    pacer.add(victim);
    clock.tick(100);
    assert.equal(victim.frames, 0);
  });

  test("a late callback gives every stream the frames it missed", () => {
    const clock = new LateClock();
    const pacer = new FramePacer(clock);
    const stream = counter();
    pacer.add(stream);
    clock.fireAt(20);
    clock.fireAt(105); // due: 40, 60, 80, 100
    assert.equal(stream.frames, 5);
    clock.fireAt(120); // back on the schedule
    assert.equal(stream.frames, 6);
    assert.equal(pacer.skippedFrames, 0);
  });

  test("too far behind, it starts a new schedule instead of a burst, and counts the skip", () => {
    const clock = new LateClock();
    const pacer = new FramePacer(clock);
    const stream = counter();
    pacer.add(stream);
    const late = (MAX_CATCH_UP_FRAMES + 5) * 20;
    clock.fireAt(late);
    assert.equal(stream.frames, 1);
    assert.equal(pacer.skippedFrames, MAX_CATCH_UP_FRAMES + 4);
    clock.fireAt(late + 20);
    assert.equal(stream.frames, 2);
  });

  test("FramePacer.of shares one pacer per clock", () => {
    const clock = new FakeClock();
    assert.equal(FramePacer.of(clock), FramePacer.of(clock));
    assert.notEqual(FramePacer.of(clock), FramePacer.of(new FakeClock()));
  });
});
