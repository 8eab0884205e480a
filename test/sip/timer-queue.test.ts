import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { TimerQueue } from "../../src/sip/timer-queue.js";
import { FakeClock } from "../helpers/fake-clock.js";

describe("TimerQueue", () => {
  test("fires timers in deadline order, ties in scheduling order", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    const fired: string[] = [];
    queue.schedule(300, () => fired.push("c"));
    queue.schedule(100, () => fired.push("a"));
    queue.schedule(100, () => fired.push("b"));
    queue.schedule(1000, () => fired.push("d"));
    clock.tick(299);
    assert.deepEqual(fired, ["a", "b"]);
    clock.tick(1);
    assert.deepEqual(fired, ["a", "b", "c"]);
    clock.tick(1000);
    assert.deepEqual(fired, ["a", "b", "c", "d"]);
    assert.equal(queue.size, 0);
    assert.equal(clock.pending, 0, "nothing left armed");
  });

  test("any mix of delays and times fires in (deadline, scheduling) order", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    const expected: { deadline: number; seq: number }[] = [];
    const fired: number[] = [];
    let seq = 0;
    let state = 7;
    const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    // 100 distinct delays (more lists than are kept idle), scheduled as the clock moves on.
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 50; i++) {
        const delay = Math.floor(random() * 100) * 10;
        const mine = seq++;
        expected.push({ deadline: clock.now() + delay, seq: mine });
        const timer = queue.schedule(delay, () => fired.push(mine));
        if (random() < 0.2) {
          timer.cancel();
          expected.pop();
        }
      }
      clock.tick(37);
    }
    clock.tick(2000);
    expected.sort((a, b) => a.deadline - b.deadline || a.seq - b.seq);
    assert.deepEqual(
      fired,
      expected.map((e) => e.seq),
    );
    assert.equal(queue.size, 0);
    assert.equal(clock.pending, 0);
  });

  test("ten thousand timers hold one clock timer", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    let fired = 0;
    for (let i = 0; i < 10_000; i++) queue.schedule(500 + (i % 7) * 100, () => fired++);
    assert.equal(queue.size, 10_000);
    assert.equal(clock.pending, 1);
    clock.tick(2000);
    assert.equal(fired, 10_000);
    assert.equal(clock.pending, 0);
  });

  test("cancelled timers do not fire; cancel is idempotent; the clock timer follows", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    let fired = 0;
    const early = queue.schedule(100, () => fired++);
    const timers = Array.from({ length: 200 }, () => queue.schedule(200, () => fired++));
    early.cancel();
    early.cancel();
    for (const t of timers.slice(0, 150)) t.cancel();
    assert.equal(queue.size, 50);
    clock.tick(150);
    assert.equal(fired, 0);
    clock.tick(100);
    assert.equal(fired, 50);
    for (const t of timers) t.cancel();
    assert.equal(queue.size, 0);
  });

  test("a timer scheduled from a callback fires in the same tick when due", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    const fired: number[] = [];
    queue.schedule(10, () => {
      fired.push(clock.now());
      queue.schedule(10, () => fired.push(clock.now()));
    });
    clock.tick(100);
    assert.deepEqual(fired, [10, 20]);
  });

  test("dispose cancels everything and releases the clock", () => {
    const clock = new FakeClock();
    const queue = new TimerQueue(clock);
    let fired = 0;
    queue.schedule(10, () => fired++);
    queue.dispose();
    queue.dispose();
    clock.tick(100);
    assert.equal(fired, 0);
    assert.equal(clock.pending, 0);
    assert.throws(() => queue.schedule(1, () => undefined));
  });
});
