// Receiver statistics of one RTP source (RFC 3550 Appendix A): sequence tracking with wrap and
// probation (A.1), expected and lost packets and the fraction lost per report (A.3), and
// interarrival jitter (A.8). Codec-agnostic: the clock rate is a parameter (8000 for G.711,
// 90000 for video). Also the sender's counts that an SR carries.
import type { ReportBlock } from "./rtcp.js";

const RTP_SEQ_MOD = 0x10000;
const MAX_DROPOUT = 3000;
const MAX_MISORDER = 100;
const MIN_SEQUENTIAL = 2;

export interface ReceivedPacket {
  readonly sequence: number;
  readonly timestamp: number;
  /** Arrival on the receiver's clock, in ms. */
  readonly arrivalMs: number;
  readonly payloadBytes?: number;
}

export interface ReceiverSnapshot {
  readonly received: number;
  readonly expected: number;
  /** expected − received; negative when duplicates arrived (A.3). */
  readonly lost: number;
  readonly extendedHighestSequence: number;
  /** Interarrival jitter in timestamp units. */
  readonly jitter: number;
  readonly jitterMs: number;
  /** Datagrams refused by A.1 (probation, a jump, a stale duplicate). */
  readonly discarded: number;
  readonly octets: number;
  readonly valid: boolean;
}

/** A.1–A.3 and A.8 for one source. */
export class ReceiverStats {
  readonly clockRate: number;
  #maxSeq = 0;
  #cycles = 0;
  #baseSeq = 0;
  #badSeq = RTP_SEQ_MOD + 1;
  #probation = MIN_SEQUENTIAL;
  #received = 0;
  #expectedPrior = 0;
  #receivedPrior = 0;
  #transit: number | undefined;
  #jitter = 0;
  #discarded = 0;
  #octets = 0;
  #started = false;
  #lastSr = 0;
  #lastSrArrivalMs: number | undefined;

  constructor(options: { clockRate: number }) {
    if (!(options.clockRate > 0)) throw new RangeError("clockRate must be positive");
    this.clockRate = options.clockRate;
  }

  #initSeq(seq: number): void {
    this.#baseSeq = seq;
    this.#maxSeq = seq;
    this.#badSeq = RTP_SEQ_MOD + 1;
    this.#cycles = 0;
    this.#received = 0;
    this.#receivedPrior = 0;
    this.#expectedPrior = 0;
  }

  /** A.1 update_seq: whether the packet counts (false while on probation or after a jump). */
  #updateSeq(seq: number): boolean {
    const udelta = (seq - this.#maxSeq) & 0xffff;
    if (this.#probation > 0) {
      // "Source is not valid until MIN_SEQUENTIAL packets with sequential sequence numbers
      // have been received."
      if (seq === ((this.#maxSeq + 1) & 0xffff)) {
        this.#probation--;
        this.#maxSeq = seq;
        if (this.#probation === 0) {
          // A.1 starts counting here; we count the probation packets too, so that a stream of
          // N packets reads N received and none lost.
          this.#initSeq(seq);
          this.#baseSeq = (seq - (MIN_SEQUENTIAL - 1)) & 0xffff;
          this.#received = MIN_SEQUENTIAL - 1;
          if (this.#baseSeq > seq) this.#cycles = RTP_SEQ_MOD; // the probation crossed the wrap
          this.#received++;
          return true;
        }
      } else {
        this.#probation = MIN_SEQUENTIAL - 1;
        this.#maxSeq = seq;
      }
      return false;
    } else if (udelta < MAX_DROPOUT) {
      // "in order, with permissible gap"
      if (seq < this.#maxSeq) this.#cycles += RTP_SEQ_MOD;
      this.#maxSeq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
      // "the sequence number made a very large jump": two in a row mean the sender restarted.
      if (seq === this.#badSeq) {
        this.#initSeq(seq);
      } else {
        this.#badSeq = (seq + 1) & (RTP_SEQ_MOD - 1);
        return false;
      }
    }
    // else "duplicate or reordered packet": counted, as A.1 does.
    this.#received++;
    return true;
  }

  /** Takes one arriving packet; returns whether it counted. */
  receive(packet: ReceivedPacket): boolean {
    if (!this.#started) {
      this.#started = true;
      this.#initSeq(packet.sequence);
      this.#maxSeq = (packet.sequence - 1) & 0xffff;
      this.#probation = MIN_SEQUENTIAL;
    }
    if (!this.#updateSeq(packet.sequence)) {
      this.#discarded++;
      return false;
    }
    this.#octets += packet.payloadBytes ?? 0;
    // A.8: transit time in timestamp units; its mean deviation, smoothed by 1/16.
    const arrival = (packet.arrivalMs * this.clockRate) / 1000;
    const transit = arrival - (packet.timestamp >>> 0);
    if (this.#transit !== undefined) {
      let d = transit - this.#transit;
      // Timestamps wrap at 2^32; keep the difference in range.
      if (d > 0x80000000) d -= 0x100000000;
      else if (d < -0x80000000) d += 0x100000000;
      this.#jitter += (Math.abs(d) - this.#jitter) / 16;
    }
    this.#transit = transit;
    return true;
  }

  get valid(): boolean {
    return this.#started && this.#probation === 0;
  }

  get extendedHighestSequence(): number {
    return this.#cycles + this.#maxSeq;
  }

  get expected(): number {
    return this.valid ? this.extendedHighestSequence - this.#baseSeq + 1 : 0;
  }

  snapshot(): ReceiverSnapshot {
    const expected = this.expected;
    return {
      received: this.#received,
      expected,
      lost: expected - this.#received,
      extendedHighestSequence: this.valid ? this.extendedHighestSequence >>> 0 : 0,
      jitter: this.#jitter,
      jitterMs: (this.#jitter * 1000) / this.clockRate,
      discarded: this.#discarded,
      octets: this.#octets,
      valid: this.valid,
    };
  }

  /** Notes an SR from this source (its NTP middle 32 bits) for the next report's LSR/DLSR. */
  noteSenderReport(ntpMiddle: number, arrivalMs: number): void {
    this.#lastSr = ntpMiddle >>> 0;
    this.#lastSrArrivalMs = arrivalMs;
  }

  /**
   * The report block about this source (§6.4.1, A.3), advancing the interval counters: the
   * fraction lost is over the packets since the previous call.
   */
  reportBlock(ssrc: number, nowMs: number): ReportBlock {
    const expected = this.expected;
    const expectedInterval = expected - this.#expectedPrior;
    this.#expectedPrior = expected;
    const receivedInterval = this.#received - this.#receivedPrior;
    this.#receivedPrior = this.#received;
    const lostInterval = expectedInterval - receivedInterval;
    const fractionLost =
      expectedInterval === 0 || lostInterval <= 0
        ? 0
        : Math.floor((lostInterval * 256) / expectedInterval);
    const delay =
      this.#lastSrArrivalMs === undefined ? 0 : ((nowMs - this.#lastSrArrivalMs) * 65536) / 1000;
    return {
      ssrc,
      fractionLost: Math.min(255, fractionLost),
      cumulativeLost: expected - this.#received,
      extendedHighestSequence: this.valid ? this.extendedHighestSequence >>> 0 : 0,
      jitter: Math.floor(this.#jitter),
      lastSr: this.#lastSr,
      delaySinceLastSr: this.#lastSrArrivalMs === undefined ? 0 : Math.floor(delay),
    };
  }
}

/** What a sender counts for its SRs (§6.4.1: packets and payload octets). */
export class SenderStats {
  packets = 0;
  octets = 0;

  record(payloadBytes: number): void {
    this.packets++;
    this.octets += payloadBytes;
  }
}

/**
 * The round-trip time from a report block about our own stream (§6.4.1): arrival − LSR − DLSR,
 * in ms, or undefined when the peer has had no SR from us.
 */
export function roundTripMs(block: ReportBlock, arrivalNtpMiddle: number): number | undefined {
  if (block.lastSr === 0) return undefined;
  const units = (arrivalNtpMiddle - block.lastSr - block.delaySinceLastSr) >>> 0;
  // A result beyond an hour means the clocks or the fields are off: not an RTT.
  if (units > 65536 * 3600) return undefined;
  return (units * 1000) / 65536;
}
