import type { Clock, ClockTimer } from "./clock.js";

/** A timer scheduled on a TimerQueue; cancel() is idempotent. */
export interface Timer {
  cancel(): void;
}

const noop = (): void => undefined;
/** Lists kept before empty ones are dropped (each fire scans every list's head). */
const MAX_IDLE_LISTS = 32;

class QueuedTimer implements Timer {
  cancelled = false;
  constructor(
    readonly deadline: number,
    readonly seq: number,
    public callback: () => void,
    private readonly queue: TimerQueue,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    // What the callback holds (a transaction, its messages) is free at once, not at the
    // deadline when the cancelled entry leaves its list.
    this.callback = noop;
    this.queue.forget();
  }
}

/**
 * The timers of one delay, in deadline order by construction: each is scheduled later than
 * the one before it with the same delay. An array with a moving head; the dead prefix is cut
 * off now and then.
 */
class DelayList {
  items: QueuedTimer[] = [];
  head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  first(): QueuedTimer | undefined {
    return this.items[this.head];
  }

  shift(): QueuedTimer {
    const timer = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as QueuedTimer;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return timer;
  }
}

/**
 * Many timers on one clock timer. Timers are kept in a FIFO list per delay (RFC 3261 timers
 * come in a handful of durations: T1 multiples, 64·T1, T4, the 100 Trying delay), so that
 * scheduling and firing cost O(1) plus a scan of the few list heads, where a heap over
 * hundreds of thousands of live timers costs a cache-missing O(log n) walk each time (as
 * Node's own timers do it). One underlying timeout is armed for the earliest deadline.
 * Thousands of live transactions thus hold one Node timer, not thousands. Cancelled timers
 * are dropped when they reach the head of their list, or all at once when they outnumber the
 * live ones.
 */
export class TimerQueue {
  readonly #clock: Clock;
  readonly #lists = new Map<number, DelayList>();
  /** The lists as an array, for the scan of heads on every fire. */
  #listArray: DelayList[] = [];
  #count = 0;
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
    return this.#count - this.#cancelled;
  }

  /** Runs `callback` after `delayMs` on the queue's clock. */
  schedule(delayMs: number, callback: () => void): Timer {
    if (this.#disposed) throw new Error("TimerQueue was disposed");
    const delay = Math.max(0, delayMs);
    const timer = new QueuedTimer(this.#clock.now() + delay, this.#seq++, callback, this);
    let list = this.#lists.get(delay);
    if (list === undefined) {
      // Callers use a handful of delays; should one use many, empty lists go.
      if (this.#listArray.length >= MAX_IDLE_LISTS) this.#pruneEmptyLists();
      list = new DelayList();
      this.#lists.set(delay, list);
      this.#listArray.push(list);
    }
    const last = list.items[list.items.length - 1];
    if (list.length > 0 && last !== undefined && last.deadline > timer.deadline) {
      // A clock that moved backwards (only a test's could): keep the list sorted.
      insertSorted(list, timer);
    } else {
      list.items.push(timer);
    }
    this.#count++;
    if (timer.deadline < this.#armedFor) this.#arm();
    return timer;
  }

  /** Cancels every timer and releases the clock timer. Idempotent. */
  dispose(): void {
    this.#disposed = true;
    for (const list of this.#listArray) {
      for (let i = list.head; i < list.items.length; i++) {
        const t = list.items[i]!;
        t.cancelled = true;
        t.callback = noop;
      }
    }
    this.#lists.clear();
    this.#listArray = [];
    this.#count = 0;
    this.#cancelled = 0;
    this.#disarm();
  }

  /** @internal A timer was cancelled. */
  forget(): void {
    this.#cancelled++;
    if (this.#cancelled > 64 && this.#cancelled * 2 > this.#count) this.#compact();
    if (this.size === 0) this.#disarm();
  }

  #fire = (): void => {
    this.#armed = undefined;
    this.#armedFor = Infinity;
    const now = this.#clock.now();
    for (;;) {
      const list = this.#earliest();
      if (list === undefined || list.first()!.deadline > now) break;
      const timer = list.shift();
      this.#count--;
      if (timer.cancelled) {
        this.#cancelled--;
        continue;
      }
      timer.cancelled = true; // fired: a later cancel() is a no-op
      const callback = timer.callback;
      timer.callback = noop;
      callback();
      if (this.#disposed) return;
    }
    this.#arm();
  };

  /** The list whose head is due first (ties: scheduled first), skipping cancelled heads. */
  #earliest(): DelayList | undefined {
    let best: DelayList | undefined;
    let bestTimer: QueuedTimer | undefined;
    for (const list of this.#listArray) {
      let head = list.first();
      while (head !== undefined && head.cancelled) {
        list.shift();
        this.#count--;
        this.#cancelled--;
        head = list.first();
      }
      if (head === undefined) continue;
      if (
        bestTimer === undefined ||
        head.deadline < bestTimer.deadline ||
        (head.deadline === bestTimer.deadline && head.seq < bestTimer.seq)
      ) {
        best = list;
        bestTimer = head;
      }
    }
    return best;
  }

  #arm(): void {
    const next = this.#earliest()?.first();
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

  #pruneEmptyLists(): void {
    for (const [delay, list] of this.#lists) {
      if (list.length === 0) this.#lists.delete(delay);
    }
    this.#listArray = [...this.#lists.values()];
  }

  #compact(): void {
    for (const list of this.#listArray) {
      list.items = list.items.slice(list.head).filter((t) => !t.cancelled);
      list.head = 0;
    }
    this.#count -= this.#cancelled;
    this.#cancelled = 0;
  }
}

/** Inserts by (deadline, seq) into a list that is sorted from its head. */
function insertSorted(list: DelayList, timer: QueuedTimer): void {
  let i = list.items.length;
  while (i > list.head && list.items[i - 1]!.deadline > timer.deadline) i--;
  list.items.splice(i, 0, timer);
}
