import { NgError } from "../../media/rtpengine/index.js";
import type { Clock, ClockTimer, Logger } from "../../sip/index.js";
import type { MediaProfile } from "../media-profile.js";
import type { Relay, RelayPool } from "./relay-pool.js";
import { ngOptionsFor, sdpStreamCount, type RelayPolicy } from "./relay-policy.js";

/** A rewritten 2xx is kept this long for its retransmissions (64·T1, RFC 3261 §13.3.1.4). */
const ANSWER_MEMORY_MS = 32_000;

/** One call on a relay. */
interface MediaSession {
  readonly relay: Relay;
  /** Streams the relay carries for it (active m-lines of the latest offer). */
  streams: number;
  lastSeen: number;
}

export interface MediaRelayerOptions {
  readonly policy: RelayPolicy;
  readonly pool: RelayPool;
  readonly clock: Clock;
  readonly log: Logger;
  /** A call with no signalling for this long is deleted from its relay (a BYE lost). */
  readonly safetyTimeoutMs: number;
  /** The relayed stream count moved (the load report pushes on a marked change). */
  readonly onChange: () => void;
}

export interface SdpExchange {
  readonly callId: string;
  /** The tag of the side whose SDP this is the offer of (RFC 3264: the offerer). */
  readonly fromTag: string;
  readonly toTag?: string;
  readonly viaBranch?: string;
  readonly sdp: string;
  /** What the side receiving the rewritten SDP speaks. */
  readonly receiver: MediaProfile;
  /** The SIP source of the SDP's sender when it is a client of ours (not a fleet member). */
  readonly receivedFrom: string | undefined;
  /** The IP family the receiving side can reach (IPv4 ↔ IPv6 bridging); its own when absent. */
  readonly receiverFamily?: 4 | 6;
}

/**
 * The proxy's side of the media relay: puts a call's offer on the least-loaded relay that takes
 * it (the next one on a timeout or load limit), passes answers and re-offers to the call's
 * relay, deletes the call when its dialog ends, and counts the streams relayed.
 */
export class MediaRelayer {
  readonly policy: RelayPolicy;
  readonly #o: MediaRelayerOptions;
  readonly #sessions = new Map<string, MediaSession>();
  readonly #answers = new Map<string, { body: string; until: number }>();
  #streams = 0;
  #sweep: ClockTimer | undefined;

  constructor(options: MediaRelayerOptions) {
    this.#o = options;
    this.policy = options.policy;
  }

  /** Whether any relay can be found (else calls that need one get 488). */
  get available(): boolean {
    return this.policy !== "never" && this.#o.pool.configured;
  }

  /** Streams relayed now (the load report's `media`). */
  get streams(): number {
    return this.#streams;
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  start(): void {
    const every = Math.min(ANSWER_MEMORY_MS, this.#o.safetyTimeoutMs / 4);
    const sweep = () => {
      const now = this.#o.clock.now();
      for (const [key, a] of this.#answers) if (a.until <= now) this.#answers.delete(key);
      const cutoff = now - this.#o.safetyTimeoutMs;
      for (const [callId, s] of this.#sessions) {
        if (s.lastSeen <= cutoff) void this.end(s.relay, callId);
      }
      this.#sweep = this.#o.clock.setTimeout(sweep, every);
    };
    this.#sweep = this.#o.clock.setTimeout(sweep, every);
  }

  async stop(): Promise<void> {
    if (this.#sweep !== undefined) this.#o.clock.clearTimeout(this.#sweep);
    this.#sweep = undefined;
    await this.#o.pool.stop();
  }

  /** The relay a dialog's Record-Route names, if this proxy knows it. */
  relayAt(ng: string): Promise<Relay | undefined> {
    return this.#o.pool.known(ng);
  }

  /**
   * A new call's offer onto a relay: the rewritten SDP and the relay, or undefined when no
   * relay took it (none configured, all down or full, or the SDP refused).
   */
  async offer(
    x: SdpExchange,
    /** The relay an earlier branch of the same call is on: its other branches go there too. */
    prefer?: Relay,
  ): Promise<{ relay: Relay; sdp: string } | undefined> {
    const candidates = prefer === undefined ? await this.#o.pool.candidates() : [prefer];
    for (const relay of candidates) {
      try {
        const result = await relay.client.offer(this.#ngOptions(x, "offer"));
        this.#track(relay, x.callId, x.sdp);
        return { relay, sdp: result.sdp };
      } catch (e) {
        if (!(e instanceof NgError)) throw e;
        this.#o.log.warn({ err: e, relay: relay.id, callId: x.callId }, "relay refused an offer");
        if (e.code === "NG_ERROR" || e.code === "NG_BAD_REPLY") return undefined;
        this.#o.pool.failed(relay);
      }
    }
    return undefined;
  }

  /**
   * A relay for a call whose INVITE has no offer (it comes in the 2xx): the least-loaded one
   * that answers a ping.
   */
  async pick(): Promise<Relay | undefined> {
    for (const relay of await this.#o.pool.candidates()) {
      try {
        await relay.client.ping();
        return relay;
      } catch (e) {
        if (!(e instanceof NgError)) throw e;
        this.#o.pool.failed(relay);
      }
    }
    return undefined;
  }

  /** An offer within a call already on `relay` (re-INVITE, UPDATE, a late offer). */
  async reoffer(relay: Relay, x: SdpExchange): Promise<string | undefined> {
    try {
      const result = await relay.client.offer(this.#ngOptions(x, "offer"));
      this.#track(relay, x.callId, x.sdp);
      return result.sdp;
    } catch (e) {
      if (!(e instanceof NgError)) throw e;
      this.#o.log.warn({ err: e, relay: relay.id, callId: x.callId }, "relay refused a re-offer");
      return undefined;
    }
  }

  /** The answer to an offer on `relay`, rewritten; undefined when the relay failed. */
  async answer(
    relay: Relay,
    x: SdpExchange & { readonly toTag: string },
  ): Promise<string | undefined> {
    try {
      const result = await relay.client.answer({ ...this.#ngOptions(x, "answer"), toTag: x.toTag });
      this.#touch(x.callId);
      return result.sdp;
    } catch (e) {
      if (!(e instanceof NgError)) throw e;
      this.#o.log.warn({ err: e, relay: relay.id, callId: x.callId }, "relay refused an answer");
      return undefined;
    }
  }

  /** The call is over (BYE, CANCEL, failure, timeout): its media leaves the relay. */
  async end(relay: Relay, callId: string): Promise<void> {
    this.#untrack(callId);
    try {
      await relay.client.delete({ callId });
    } catch (e) {
      if (!(e instanceof NgError)) throw e;
      // Already gone (rtpengine's own timeout) or the relay is down: nothing to free.
      this.#o.log.debug({ err: e, relay: relay.id, callId }, "relay delete failed");
    }
  }

  /** Signalling went by for the call: it is alive. */
  touch(callId: string): void {
    this.#touch(callId);
  }

  /** A 2xx's rewritten SDP, kept for its retransmissions (which come outside any transaction). */
  rememberAnswer(key: string, body: string): void {
    this.#answers.set(key, { body, until: this.#o.clock.now() + ANSWER_MEMORY_MS });
  }

  rememberedAnswer(key: string): string | undefined {
    return this.#answers.get(key)?.body;
  }

  #ngOptions(x: SdpExchange, kind: "offer" | "answer") {
    return {
      ...ngOptionsFor(x.receiver, kind, x.receivedFrom, x.receiverFamily),
      callId: x.callId,
      fromTag: x.fromTag,
      sdp: x.sdp,
      ...(x.toTag === undefined ? {} : { toTag: x.toTag }),
      ...(x.viaBranch === undefined ? {} : { viaBranch: x.viaBranch }),
    };
  }

  #track(relay: Relay, callId: string, sdp: string): void {
    const streams = sdpStreamCount(sdp);
    const s = this.#sessions.get(callId);
    if (s === undefined) {
      this.#sessions.set(callId, { relay, streams, lastSeen: this.#o.clock.now() });
      this.#streams += streams;
    } else {
      this.#streams += streams - s.streams;
      s.streams = streams;
      s.lastSeen = this.#o.clock.now();
    }
    this.#o.onChange();
  }

  #touch(callId: string): void {
    const s = this.#sessions.get(callId);
    if (s !== undefined) s.lastSeen = this.#o.clock.now();
  }

  #untrack(callId: string): void {
    const s = this.#sessions.get(callId);
    if (s === undefined) return;
    this.#sessions.delete(callId);
    this.#streams -= s.streams;
    this.#o.onChange();
  }
}
