import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { NgClient } from "../../media/rtpengine/index.js";
import type { Clock, Logger } from "../../sip/index.js";
import type { DestinationPolicy } from "../../sip/transport/destination-policy.js";

/** A monitor that has not answered a relay query in this long is passed over for the next. */
const SELECT_TIMEOUT_MS = 300;
/** A select answer larger than this is not a select answer. */
const MAX_SELECT_BYTES = 64 * 1024;

/** A relay a call may use: its id and its ng control client. */
export interface Relay {
  readonly id: string;
  /** `127.0.0.1:2223`. */
  readonly ng: string;
  readonly client: NgClient;
}

export interface RelayPoolOptions {
  /** Relays known from config: used when no monitor answers. */
  readonly relays: readonly { readonly id: string; readonly ng: string }[];
  /** Monitors asked `GET /v1/select?kind=media`, in order. */
  readonly monitors: readonly string[];
  readonly timeoutMs: number;
  readonly holdOffMs: number;
  readonly allowed: DestinationPolicy;
  readonly clock: Clock;
  readonly log: Logger;
}

interface SelectAnswer {
  readonly relay?: unknown;
  readonly ng?: unknown;
  readonly alternates?: unknown;
}

/**
 * The relays a proxy can put calls on: the least-loaded first, as a monitor answers
 * `GET /v1/select?kind=media`, then its alternates, then the configured ones; a relay that
 * failed (no answer, load limit) is held off new calls for a while. One ng client per relay,
 * started on first use.
 */
export class RelayPool {
  readonly #o: RelayPoolOptions;
  readonly #relays = new Map<string, Relay>();
  readonly #heldOffUntil = new Map<string, number>();
  #stopped = false;

  constructor(options: RelayPoolOptions) {
    this.#o = options;
  }

  /** True when there is any way to find a relay (configured ones or monitors). */
  get configured(): boolean {
    return this.#o.relays.length > 0 || this.#o.monitors.length > 0;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const clients = [...this.#relays.values()].map((r) => r.client);
    this.#relays.clear();
    await Promise.all(clients.map((c) => c.stop()));
  }

  /** Relays to try for a new call, best first; empty when none is usable. */
  async candidates(): Promise<Relay[]> {
    const named: { id: string; ng: string }[] = [];
    for (const monitor of this.#o.monitors) {
      const answer = await this.#select(monitor);
      if (answer === undefined) continue;
      named.push(...answer);
      break;
    }
    named.push(...this.#o.relays);
    const now = this.#o.clock.now();
    const out: Relay[] = [];
    const heldOff: { id: string; ng: string; until: number }[] = [];
    const seen = new Set<string>();
    for (const { id, ng } of named) {
      if (seen.has(ng)) continue;
      seen.add(ng);
      const until = this.#heldOffUntil.get(ng) ?? 0;
      if (until > now) {
        heldOff.push({ id, ng, until });
        continue;
      }
      const relay = await this.#relay(id, ng);
      if (relay !== undefined) out.push(relay);
    }
    if (out.length > 0) return out;
    // Every relay failed lately (an overloaded proxy reads its replies late, too): try them
    // again, the one held off longest first, rather than refusing every call until it ends.
    heldOff.sort((a, b) => a.until - b.until);
    for (const { id, ng } of heldOff) {
      const relay = await this.#relay(id, ng);
      if (relay !== undefined) out.push(relay);
    }
    return out;
  }

  /**
   * The relay a dialog's Record-Route names (its in-dialog requests and their responses go
   * through the relay its INVITE chose): only one this pool knows, never any address a
   * message names.
   */
  async known(ng: string): Promise<Relay | undefined> {
    const existing = this.#relays.get(ng);
    if (existing !== undefined) return existing;
    const configured = this.#o.relays.find((r) => r.ng === ng);
    return configured === undefined ? undefined : this.#relay(configured.id, ng);
  }

  /** The relay did not answer or refused for load: new calls go elsewhere for a while. */
  failed(relay: Relay): void {
    this.#heldOffUntil.set(relay.ng, this.#o.clock.now() + this.#o.holdOffMs);
  }

  async #relay(id: string, ng: string): Promise<Relay | undefined> {
    if (this.#stopped) return undefined;
    const existing = this.#relays.get(ng);
    if (existing !== undefined) return existing;
    const m = /^\[?([^\]]+)\]?:(\d+)$/.exec(ng);
    if (m === null) return undefined;
    const address = m[1]!;
    if (!this.#o.allowed.allows(address)) {
      this.#o.log.warn({ relay: id, ng }, "relay outside allowedDestinations; not used");
      return undefined;
    }
    const client = new NgClient({
      address,
      port: Number(m[2]),
      timeoutMs: this.#o.timeoutMs,
      clock: this.#o.clock,
      logger: this.#o.log,
    });
    const relay: Relay = { id, ng, client };
    this.#relays.set(ng, relay);
    await client.start();
    return relay;
  }

  /** The monitor's ranked relays, or undefined when it does not answer in time. */
  async #select(monitor: string): Promise<{ id: string; ng: string }[] | undefined> {
    const url = new URL("/v1/select?kind=media", monitor);
    const body = await getJson(url, SELECT_TIMEOUT_MS);
    if (body === undefined) return undefined;
    const answer = body as SelectAnswer;
    const out: { id: string; ng: string }[] = [];
    const take = (v: SelectAnswer) => {
      if (typeof v.relay === "string" && typeof v.ng === "string")
        out.push({ id: v.relay, ng: v.ng });
    };
    take(answer);
    if (Array.isArray(answer.alternates))
      for (const a of answer.alternates as SelectAnswer[]) take(a);
    return out.length === 0 ? undefined : out;
  }
}

/** One GET with no keep-alive socket left behind; undefined on any failure or non-200. */
function getJson(url: URL, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve) => {
    const request = (url.protocol === "https:" ? httpsRequest : httpRequest)(url, {
      agent: false,
      timeout: timeoutMs,
    });
    let settled = false;
    const done = (v: unknown) => {
      if (settled) return;
      settled = true;
      request.destroy();
      resolve(v);
    };
    request.on("timeout", () => done(undefined));
    request.on("error", () => done(undefined));
    request.on("response", (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        done(undefined);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (c: Buffer) => {
        size += c.length;
        if (size > MAX_SELECT_BYTES) done(undefined);
        else chunks.push(c);
      });
      response.on("end", () => {
        try {
          done(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch {
          done(undefined);
        }
      });
      response.on("error", () => done(undefined));
    });
    request.end();
  });
}
