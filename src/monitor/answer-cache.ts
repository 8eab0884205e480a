import type { Clock } from "../sip/index.js";

/** Bytes of answers kept by default: some 37,000 302s of 450 bytes. */
export const DEFAULT_ANSWER_CACHE_BYTES = 16 * 1024 * 1024;
/** The smallest cache: room for a few dozen answers. */
export const MIN_ANSWER_CACHE_BYTES = 16 * 1024;
/** Entries a request's branch may sit in (a set-associative index). */
const WAYS = 4;
/** One index slot per this many bytes of ring: several slots per answer kept. */
const BYTES_PER_SLOT = 128;
/** Answers longer than this share of the ring are not kept. */
const MAX_SHARE = 16;

/** An answer found again: the method of the request it answered, and a copy of its bytes. */
export interface CachedAnswer {
  readonly method: string;
  readonly bytes: Buffer;
}

export interface AnswerCacheOptions {
  /** Size of the ring of answers, bytes (default DEFAULT_ANSWER_CACHE_BYTES). */
  readonly bytes?: number;
  /** How long an answer is kept at most, ms. */
  readonly maxAgeMs: number;
  readonly clock: Clock;
}

/**
 * The recent answers of a stateless UAS (RFC 3261 §8.2.7), for the retransmissions of their
 * requests, with no JavaScript object per answer: the bytes are copied into one ring buffer,
 * found through a 4-way set-associative index of typed arrays keyed by a hash of the branch,
 * checked against a hash of the Call-ID and the flow the request came on. A Map of a Buffer per
 * answer, at thousands of calls a second and tens of thousands of answers kept, cost the
 * garbage collector more than the redirect itself (about 10 µs of CPU a request; this, under 1).
 *
 * An answer is dropped when it is older than `maxAgeMs`, when the ring has come round over its
 * bytes, or when its index set is full of newer ones; the memory is fixed at start. Two
 * different requests whose branch and Call-ID-and-flow hashes both collide (32 bits each) would
 * be taken for one.
 */
export class AnswerCache {
  readonly #ring: Buffer;
  readonly #maxAgeMs: number;
  readonly #clock: Clock;
  readonly #setMask: number;
  /** Where the next record goes, counted from the start (the ring position is this mod size). */
  #head = 0;
  // Per index slot: the two hashes, where the record starts (-1: empty), its method's length,
  // its answer's length, and when it was kept.
  readonly #key: Int32Array;
  readonly #check: Int32Array;
  readonly #at: Float64Array;
  readonly #pos: Float64Array;
  readonly #methodLength: Uint8Array;
  readonly #length: Int32Array;

  constructor(options: AnswerCacheOptions) {
    const bytes = options.bytes ?? DEFAULT_ANSWER_CACHE_BYTES;
    if (!Number.isInteger(bytes) || bytes < MIN_ANSWER_CACHE_BYTES) {
      throw new RangeError(
        `answer cache bytes: must be an integer of at least ${MIN_ANSWER_CACHE_BYTES}, got ${bytes}`,
      );
    }
    // Not zeroed: only bytes written are ever read.
    this.#ring = Buffer.allocUnsafeSlow(bytes);
    this.#maxAgeMs = options.maxAgeMs;
    this.#clock = options.clock;
    let sets = 1;
    while (sets * WAYS * BYTES_PER_SLOT < bytes) sets *= 2;
    this.#setMask = sets - 1;
    const slots = sets * WAYS;
    this.#key = new Int32Array(slots);
    this.#check = new Int32Array(slots);
    this.#at = new Float64Array(slots);
    this.#pos = new Float64Array(slots).fill(-1);
    this.#methodLength = new Uint8Array(slots);
    this.#length = new Int32Array(slots);
  }

  /** Answers kept now (a scan of the index, for tests and diagnostics). */
  get size(): number {
    const now = this.#clock.now();
    let n = 0;
    for (let slot = 0; slot < this.#pos.length; slot++) if (this.#live(slot, now)) n++;
    return n;
  }

  /**
   * Keeps `bytes`, the answer to the `method` request with `branch` in call `callId` that came
   * on flow `flowId`, in place of any answer kept for the same request.
   */
  put(branch: string, callId: string, flowId: string, method: string, bytes: Buffer): void {
    const size = this.#ring.length;
    const recordLength = method.length + bytes.length;
    if (method.length > 255 || recordLength > size / MAX_SHARE) return;
    let at = this.#head % size;
    if (at + recordLength > size) {
      // The record does not fit before the end of the ring: it starts over at 0.
      this.#head += size - at;
      at = 0;
    }
    const pos = this.#head;
    this.#ring.write(method, at, "latin1");
    // TypedArray#set is a memmove; Buffer#copy costs several times more for short buffers.
    this.#ring.set(bytes, at + method.length);
    this.#head += recordLength;

    const key = hash(branch, KEY_SEED);
    const check = hash(flowId, hash(callId, CHECK_SEED));
    const now = this.#clock.now();
    const first = (key & this.#setMask) * WAYS;
    let slot = first;
    for (let way = first; way < first + WAYS; way++) {
      if (this.#key[way] === key && this.#check[way] === check) {
        slot = way;
        break;
      }
      if (!this.#live(way, now)) slot = way;
      else if (this.#live(slot, now) && this.#pos[way]! < this.#pos[slot]!) slot = way;
    }
    this.#key[slot] = key;
    this.#check[slot] = check;
    this.#at[slot] = now;
    this.#pos[slot] = pos;
    this.#methodLength[slot] = method.length;
    this.#length[slot] = bytes.length;
  }

  /** The answer kept for the request with `branch` in call `callId` from flow `flowId`. */
  find(branch: string, callId: string, flowId: string): CachedAnswer | undefined {
    const key = hash(branch, KEY_SEED);
    const first = (key & this.#setMask) * WAYS;
    for (let slot = first; slot < first + WAYS; slot++) {
      // Most requests are new: no clock read unless the branch matches.
      if (this.#key[slot] !== key || !this.#live(slot, this.#clock.now())) continue;
      if (this.#check[slot] !== hash(flowId, hash(callId, CHECK_SEED))) continue;
      const at = this.#pos[slot]! % this.#ring.length;
      const methodEnd = at + this.#methodLength[slot]!;
      return {
        method: this.#ring.toString("latin1", at, methodEnd),
        bytes: Buffer.from(this.#ring.subarray(methodEnd, methodEnd + this.#length[slot]!)),
      };
    }
    return undefined;
  }

  /** Forgets every answer. */
  clear(): void {
    this.#pos.fill(-1);
  }

  /** Holds an answer not yet too old whose bytes the ring has not come round over. */
  #live(slot: number, now: number): boolean {
    const pos = this.#pos[slot]!;
    return (
      pos >= 0 && this.#head <= pos + this.#ring.length && now - this.#at[slot]! <= this.#maxAgeMs
    );
  }
}

const KEY_SEED = 0x811c9dc5;
const CHECK_SEED = 0x01000193;

/** FNV-1a over the string's char codes (byte strings: one char per octet), from `seed`. */
function hash(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}
