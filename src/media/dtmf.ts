// DTMF as RTP telephone events (RFC 4733 §2.3, §3.2): the 4-byte payload, a sender that emits
// an event's first packet, its updates and its end packet three times, and a receiver that
// reports each event once however many of its packets arrive.

/** Events 0–15 (RFC 4733 §3.2): digits, * (10), # (11), A–D (12–15). */
const DTMF_EVENTS = "0123456789*#ABCD";
export const DEFAULT_DTMF_DURATION_MS = 100;
/** RFC 4733 §2.5.1.4: "the final packet for each event ... SHOULD be sent a total of three times". */
const END_REPEATS = 3;

export interface TelephoneEvent {
  /** 0–255; DTMF uses 0–15. */
  readonly event: number;
  readonly end: boolean;
  /** Power level as 0–63, meaning −0…−63 dBm0. */
  readonly volume: number;
  /** Duration so far in timestamp units. */
  readonly duration: number;
}

/** The event number of a DTMF key ("0"–"9", "*", "#", "A"–"D"), or undefined. */
export function dtmfEvent(key: string): number | undefined {
  if (key.length !== 1) return undefined;
  const index = DTMF_EVENTS.indexOf(key.toUpperCase());
  return index < 0 ? undefined : index;
}

/** The key of a DTMF event number, or undefined for non-DTMF events. */
export function dtmfKey(event: number): string | undefined {
  return DTMF_EVENTS[event];
}

export function writeTelephoneEvent(event: TelephoneEvent): Buffer {
  const out = Buffer.alloc(4);
  out[0] = event.event & 0xff;
  out[1] = (event.end ? 0x80 : 0) | (event.volume & 0x3f);
  out.writeUInt16BE(Math.min(0xffff, Math.max(0, Math.round(event.duration))), 2);
  return out;
}

/** Reads the payload, or undefined when it is shorter than 4 bytes. */
export function readTelephoneEvent(payload: Uint8Array): TelephoneEvent | undefined {
  if (payload.length < 4) return undefined;
  return {
    event: payload[0]!,
    end: (payload[1]! & 0x80) !== 0,
    volume: payload[1]! & 0x3f,
    duration: (payload[2]! << 8) | payload[3]!,
  };
}

/** One RTP packet of an event: the stream gives it the next sequence number. */
export interface DtmfPacket {
  readonly payload: Buffer;
  /** Set on an event's first packet (RFC 4733 §2.5.1.1). */
  readonly marker: boolean;
  /** Every packet of an event carries the timestamp at which the event began. */
  readonly timestampOffset: 0;
}

/**
 * Queues DTMF keys and yields one packet per packet interval while an event is on: the start
 * (marker set), updates with growing durations, then the end packet three times.
 */
export class DtmfSender {
  readonly #clockRate: number;
  readonly #packetUnits: number;
  readonly #volume: number;
  readonly #queue: { event: number; units: number }[] = [];
  #current: { event: number; units: number; elapsed: number; ends: number } | undefined;
  #sent = 0;

  constructor(options: { clockRate?: number; packetMs?: number; volume?: number } = {}) {
    this.#clockRate = options.clockRate ?? 8000;
    this.#packetUnits = ((options.packetMs ?? 20) * this.#clockRate) / 1000;
    this.#volume = options.volume ?? 10;
  }

  /** Queues keys ("123#"); throws RangeError naming a key that is not DTMF. */
  send(keys: string, durationMs = DEFAULT_DTMF_DURATION_MS): void {
    const events = [...keys].map((key) => {
      const event = dtmfEvent(key);
      if (event === undefined) throw new RangeError(`${JSON.stringify(key)} is not a DTMF key`);
      return event;
    });
    const units = Math.max(this.#packetUnits, Math.round((durationMs * this.#clockRate) / 1000));
    for (const event of events) this.#queue.push({ event, units });
  }

  /** True while an event is being sent or waits: the stream sends events instead of audio. */
  get busy(): boolean {
    return this.#current !== undefined || this.#queue.length > 0;
  }

  /** Events fully sent. */
  get sent(): number {
    return this.#sent;
  }

  /**
   * The packet for this interval, or undefined when idle. `startsEvent` tells the stream to
   * take the current audio timestamp as the event's.
   */
  nextPacket(): (DtmfPacket & { readonly startsEvent: boolean }) | undefined {
    if (this.#current === undefined) {
      const next = this.#queue.shift();
      if (next === undefined) return undefined;
      this.#current = { ...next, elapsed: 0, ends: 0 };
    }
    const current = this.#current;
    const startsEvent = current.elapsed === 0 && current.ends === 0;
    if (current.elapsed < current.units)
      current.elapsed = Math.min(current.units, current.elapsed + this.#packetUnits);
    const end = current.elapsed >= current.units;
    if (end) current.ends++;
    if (current.ends >= END_REPEATS) {
      this.#current = undefined;
      this.#sent++;
    }
    return {
      payload: writeTelephoneEvent({
        event: current.event,
        end,
        volume: this.#volume,
        duration: current.elapsed,
      }),
      marker: startsEvent,
      timestampOffset: 0,
      startsEvent,
    };
  }
}

export interface ReceivedDigit {
  readonly key: string | undefined;
  readonly event: number;
  readonly timestamp: number;
}

/**
 * Reports each event once: an event is its RTP timestamp (RFC 4733 §2.5.2: all packets of an
 * event share it), so updates and the repeated end packets of a known event are ignored.
 */
export class DtmfReceiver {
  readonly #seen: string[] = [];

  /** The digit when this packet begins a new event, otherwise undefined. */
  receive(payload: Uint8Array, timestamp: number, ssrc: number): ReceivedDigit | undefined {
    const event = readTelephoneEvent(payload);
    if (event === undefined) return undefined;
    const key = `${ssrc >>> 0}:${timestamp >>> 0}:${event.event}`;
    if (this.#seen.includes(key)) return undefined;
    this.#seen.push(key);
    if (this.#seen.length > 16) this.#seen.shift();
    return { key: dtmfKey(event.event), event: event.event, timestamp: timestamp >>> 0 };
  }
}
