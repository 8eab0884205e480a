import type { Clock, ClockTimer } from "./clock.js";

/** A timer scheduled on a TimerQueue; cancel() is idempotent. */
export interface Timer {
  cancel(): void;
}

class QueuedTimer implements Timer {
  cancelled = false;
  constructor(
    readonly deadline: number,
    readonly seq: number,
    readonly callback: () => void,
    private readonly queue: TimerQueue,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.queue.forget();
  }
}

/**
 * Many timers on one clock timer: a binary min-heap of deadlines, with a single underlying
 * timeout armed for the earliest. Thousands of live transactions (each with two or three
 * RFC 3261 timers) thus hold one Node timer, not thousands. Cancelled timers are dropped
 * lazily when they reach the top, or all at once when they outnumber the live ones.
 */
export class TimerQueue {
  readonly #clock: Clock;
  #heap: QueuedTimer[] = [];
  #armed: ClockTimer | undefined;
  #armedFor = Infinity;
  #seq = 0;
  #cancelled = 0;
  #disposed = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Live (not cancelled, not yet fired) timers. */
  get size(): number {
    return this.#heap.length - this.#cancelled;
  }

  /** Runs `callback` after `delayMs` on the queue's clock. */
  schedule(delayMs: number, callback: () => void): Timer {
    if (this.#disposed) throw new Error("TimerQueue was disposed");
    const timer = new QueuedTimer(
      this.#clock.now() + Math.max(0, delayMs),
      this.#seq++,
      callback,
      this,
    );
    this.#push(timer);
    if (timer.deadline < this.#armedFor) this.#arm();
    return timer;
  }

  /** Cancels every timer and releases the clock timer. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    for (const t of this.#heap) t.cancelled = true;
    this.#heap = [];
    this.#cancelled = 0;
    this.#disarm();
  }

  /** @internal A timer was cancelled. */
  forget(): void {
    this.#cancelled++;
    if (this.#cancelled > 64 && this.#cancelled * 2 > this.#heap.length) this.#compact();
    if (this.size === 0) this.#disarm();
  }

  #fire = (): void => {
    this.#armed = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    while (this.#heap.length > 0 && this.#heap[0]!.deadline <= now) {
      const timer = this.#pop();
      if (timer.cancelled) {
        this.#cancelled--;
        continue;
      }
      timer.cancelled = true; // fired: a later cancel() is a no-op
      timer.callback();
      if (this.#disposed) return;
    }
    this.#arm();
  };

  #arm(): void {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) {
      this.#pop();
      this.#cancelled--;
    }
    const next = this.#heap[0];
    if (next === undefined) {
      this.#disarm();
      return;
    }
    if (this.#armed !== undefined && this.#armedFor <= next.deadline) return;
    this.#disarm();
    this.#armedFor = next.deadline;
    this.#armed = this.#clock.setTimeout(
      this.#fire,
      Math.max(0, next.deadline - this.#clock.now()),
    );
  }

  #disarm(): void {
    if (this.#armed !== undefined) this.#clock.clearTimeout(this.#armed);
    this.#armed = undefined;
    this.#armedFor = Infinity;
  }

  #compact(): void {
    this.#heap = this.#heap.filter((t) => !t.cancelled);
    this.#cancelled = 0;
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #less(a: QueuedTimer, b: QueuedTimer): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  #push(timer: QueuedTimer): void {
    const heap = this.#heap;
    heap.push(timer);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): QueuedTimer {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.#down(0);
    }
    return top;
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.#less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.#less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
  }
}
