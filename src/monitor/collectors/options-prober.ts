import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { LOAD_REPORT_VERSION, type LoadReport } from "../../contracts/index.js";
import {
  SipRequest,
  SipResponseError,
  TransactionLayer,
  TransportError,
  TransportLayer,
  randomToken,
  type Clock,
  type ListenerOptions,
  type Logger,
  type SipResponse,
  type TransactionOptionsInput,
} from "../../sip/index.js";
import type { OptionsTarget } from "../monitor-config.js";
import type { CollectionMode, ProxyTable } from "../proxy-table.js";

/** A 503 without Retry-After counts as full load this long (seconds). */
export const DEFAULT_RETRY_AFTER_S = 30;
/** A longer Retry-After is taken as this: a peer cannot take itself out for days by mistake. */
export const MAX_RETRY_AFTER_S = 3600;
/** The header a sipsteer proxy puts its workload in (DESIGN.md "Proxy admin and probing"). */
export const LOAD_HEADER = "Sipsteer-Load";

export interface OptionsProbeTarget {
  readonly id: string;
  /** The Request-URI of the pings, as configured. */
  readonly sip: string;
  readonly target: OptionsTarget;
  /** Where clients are sent. */
  readonly uris: LoadReport["uris"];
  /** Clients it holds at full load (the correction of sends); 0: unknown. */
  readonly capacityCalls: number;
  /** The workload of a 200 without Sipsteer-Load. */
  readonly assumedWorkload: number;
  /** How often a report is due (the ping interval): staleness counts in these. */
  readonly intervalMs: number;
  /** A ping not answered in this time is a failed probe. */
  readonly timeoutMs: number;
}

export interface OptionsProberOptions {
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
  /** CIDR blocks the pings may go to (the transport refuses others). */
  readonly allowedDestinations: readonly string[];
  /** Transaction timers of the pings (tests shorten T1). */
  readonly timers?: TransactionOptionsInput;
}

/** What the pings of one proxy have brought. */
export interface OptionsCounters {
  readonly pings: number;
  /** Pings that were failed probes (no answer, a transport error, a status but 2xx/503). */
  readonly failures: number;
  /** The final status of the newest answered ping. */
  readonly lastStatus: number | undefined;
  readonly lastFailure: string | undefined;
  /** Milliseconds (the monitor's clock) until a 503's Retry-After has passed; 0 when none runs. */
  readonly fullForMs: number;
}

interface TargetState {
  readonly probe: OptionsProbeTarget;
  cseq: number;
  pings: number;
  failures: number;
  lastStatus: number | undefined;
  lastFailure: string | undefined;
  /** The monitor's clock: until then a 503's Retry-After runs and the workload is 1. */
  fullUntil: number;
}

type PingOutcome =
  | { readonly kind: "answer"; readonly response: SipResponse }
  | { readonly kind: "failure"; readonly reason: string }
  | { readonly kind: "stopped" };

/** The Retry-After delta-seconds of RFC 3261 §20.33 (a comment or parameters may follow). */
export function retryAfterSeconds(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d{1,10})/.exec(value);
  return m === null ? undefined : Math.min(Number(m[1]), MAX_RETRY_AFTER_S);
}

/** A Sipsteer-Load value: a number ≥ 0 (above 1 when over capacity), else undefined. */
export function loadHeaderValue(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d{1,6}(?:\.\d{1,9})?)\s*$/.exec(value);
  return m === null ? undefined : Number(m[1]);
}

/**
 * The `options` adapter (issue 5): any SIP server, watched by OPTIONS pings sent with the
 * project's own SIP stack (a TransportLayer and non-INVITE client transactions, RFC 3261
 * §11 and §17.1.2). Each answered ping becomes a report of ours (a boot per prober, `seq` per
 * ping) with the round trip as the proxy's latency:
 * - 2xx: healthy; the workload is its `Sipsteer-Load` when it has one, else `assumedWorkload`;
 * - 503: full load (workload 1: chosen only when no other proxy has room) until its
 *   Retry-After has passed (DEFAULT_RETRY_AFTER_S without one, at most MAX_RETRY_AFTER_S);
 *   pings go on meanwhile, so that its health stays known, and answer 1 until then;
 * - any other status, a timeout or a transport failure: a failed probe (k of them: down).
 * Calls and registrations are unknown to OPTIONS: they read 0.
 */
export class OptionsProber {
  readonly #o: OptionsProberOptions;
  readonly #log: Logger;
  readonly #targets = new Map<string, TargetState>();
  /** One boot for every report this prober makes (its seqs restart with a new prober). */
  readonly #boot = `options-${randomToken(8)}`;
  #seq = 0;
  #transport: TransportLayer | undefined;
  #starting: Promise<void> | undefined;
  #transactions: TransactionLayer | undefined;

  constructor(options: OptionsProberOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: "options-prober" });
  }

  /**
   * Adds a target; after start (an admin add) only when the sockets already bound reach it,
   * else a RangeError says why (the sockets are chosen at start from every target's address).
   */
  add(probe: OptionsProbeTarget): void {
    if (this.#targets.has(probe.id)) throw new Error(`${probe.id} is pinged already`);
    if (this.#transport !== undefined) this.#checkReachable(probe.target.host);
    this.#targets.set(probe.id, {
      probe,
      cseq: 0,
      pings: 0,
      failures: 0,
      lastStatus: undefined,
      lastFailure: undefined,
      fullUntil: -Infinity,
    });
  }

  /** Stops pinging `id`; a ping in flight for it no longer touches the table. */
  remove(id: string): boolean {
    return this.#targets.delete(id);
  }

  get size(): number {
    return this.#targets.size;
  }

  #checkReachable(host: string): void {
    const family = isIP(host) === 6 ? 6 : 4;
    const bound = this.#transport!.boundListeners.find(
      (l) => l.protocol === "udp" && isIP(l.address) === family,
    );
    const needed = bindAddress([host], family);
    const wildcard = family === 4 ? "0.0.0.0" : "::";
    if (bound === undefined || (bound.address !== wildcard && bound.address !== needed)) {
      throw new RangeError(
        `sip: ${host} is not reachable from the pinging socket bound at start ` +
          `(${bound?.address ?? `no IPv${family}`}); put it in the config file and restart`,
      );
    }
  }

  counters(): Record<string, OptionsCounters> {
    const now = this.#o.clock.now();
    const out: Record<string, OptionsCounters> = {};
    for (const [id, s] of this.#targets) {
      out[id] = {
        pings: s.pings,
        failures: s.failures,
        lastStatus: s.lastStatus,
        lastFailure: s.lastFailure,
        fullForMs: Math.max(0, s.fullUntil - now),
      };
    }
    return out;
  }

  /**
   * Opens the SIP sockets the pings need: one UDP socket per address family in use, on
   * loopback when every target of that family is a loopback literal, else on the wildcard
   * (the answers then come back by `received` and `rport`, RFC 3581). TCP pings connect out
   * and take their answers on the same connection. Nothing is opened without targets.
   */
  async start(): Promise<void> {
    // A stop() that comes while the sockets open waits for them and closes them.
    this.#starting ??= this.#start().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#targets.size === 0 || this.#transport !== undefined) return;
    const hosts = [...this.#targets.values()].map((s) => s.probe.target.host);
    const listen: ListenerOptions[] = [
      { protocol: "udp", address: bindAddress(hosts, 4), port: 0 },
    ];
    if (hosts.some((h) => isIP(h) === 6)) {
      listen.push({ protocol: "udp", address: bindAddress(hosts, 6), port: 0 });
    }
    const longest = Math.max(...[...this.#targets.values()].map((s) => s.probe.timeoutMs));
    const transport = new TransportLayer(
      {
        listen,
        allowedDestinations: [...this.#o.allowedDestinations],
        // A connect that takes longer than a ping may wait is of no use to it.
        connectTimeoutMs: longest,
      },
      { clock: this.#o.clock, logger: this.#log },
    );
    await transport.start();
    this.#transport = transport;
    const transactions = new TransactionLayer({
      transport,
      clock: this.#o.clock,
      logger: this.#log,
      ...(this.#o.timers === undefined ? {} : { timers: this.#o.timers }),
    });
    transactions.start();
    this.#transactions = transactions;
  }

  /** Ends every ping in flight and closes the sockets. Idempotent. */
  async stop(): Promise<void> {
    await this.#starting?.catch(() => undefined);
    const transactions = this.#transactions;
    this.#transactions = undefined;
    transactions?.stop();
    const transport = this.#transport;
    this.#transport = undefined;
    await transport?.stop();
  }

  /** One ping of `id`: a report into the table, or a failed probe. Never rejects. */
  async ping(id: string, via: CollectionMode, signal: AbortSignal): Promise<void> {
    const state = this.#targets.get(id);
    if (state === undefined || this.#transactions === undefined || signal.aborted) return;
    const { probe } = state;
    const clock = this.#o.clock;
    state.pings++;
    const startedAt = clock.now();
    const outcome = await this.#send(state, signal);
    if (outcome.kind === "stopped" || signal.aborted || this.#targets.get(id) !== state) return;
    if (outcome.kind === "failure") {
      this.#fail(state, outcome.reason);
      return;
    }
    const { response } = outcome;
    state.lastStatus = response.status;
    const now = clock.now();
    let workload: number;
    if (response.status === 503) {
      const seconds = retryAfterSeconds(response.getHeader("retry-after")) ?? DEFAULT_RETRY_AFTER_S;
      state.fullUntil = Math.max(state.fullUntil, now + seconds * 1000);
      workload = 1;
    } else if (response.status >= 200 && response.status < 300) {
      const header = response.getHeader(LOAD_HEADER);
      const load = loadHeaderValue(header);
      if (header !== undefined && load === undefined) {
        this.#log.debug({ proxy: id, value: header }, "Sipsteer-Load is not a number; ignored");
      }
      const reported = load ?? probe.assumedWorkload;
      // RFC 3261 §21.5.4: "the client MUST NOT retry before" Retry-After; until then it is full.
      workload = now < state.fullUntil ? Math.max(1, reported) : reported;
    } else {
      this.#fail(state, `answered ${response.status} ${response.reason}`);
      return;
    }
    const result = this.#o.table.ingest(this.#report(probe), {
      via,
      proxy: id,
      workload,
      latencyMs: now - startedAt,
    });
    if (!result.ok) this.#fail(state, `report refused: ${result.reason} (${result.detail})`);
  }

  async #send(state: TargetState, signal: AbortSignal): Promise<PingOutcome> {
    const { probe } = state;
    const { target } = probe;
    let address = target.host;
    if (isIP(address) === 0) {
      try {
        // RFC 3263 without NAPTR/SRV: the name's address, as a browser or phone given a host.
        const v6 = this.#transport?.boundListeners.some((l) => isIP(l.address) === 6) === true;
        address = (await lookup(address, { family: v6 ? 0 : 4 })).address;
      } catch (e) {
        return {
          kind: "failure",
          reason: `lookup ${target.host}: ${(e as NodeJS.ErrnoException).code ?? e}`,
        };
      }
      if (signal.aborted) return { kind: "stopped" };
    }
    const transactions = this.#transactions;
    if (transactions === undefined) return { kind: "stopped" };
    const clock = this.#o.clock;
    return new Promise<PingOutcome>((resolve) => {
      let settled = false;
      const finish = (outcome: PingOutcome): void => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      const tx = transactions.sendRequest(this.#request(state), {
        protocol: target.protocol,
        address,
        port: target.port,
      });
      const onAbort = (): void => {
        finish({ kind: "stopped" });
        tx.abort();
      };
      const timer = clock.setTimeout(() => {
        finish({ kind: "failure", reason: `no answer in ${probe.timeoutMs} ms` });
        // Its retransmissions would be of no use now.
        tx.abort();
      }, probe.timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      tx.final.then(
        (response) => finish({ kind: "answer", response }),
        (e: unknown) => finish({ kind: "failure", reason: failureReason(e) }),
      );
    });
  }

  /** An OPTIONS of RFC 3261 §11.1 to the configured URI; Via is the transport's. */
  #request(state: TargetState): SipRequest {
    const { sip } = state.probe;
    state.cseq++;
    return new SipRequest({
      method: "OPTIONS",
      uri: sip,
      headers: [
        ["Max-Forwards", "70"],
        ["From", `<sip:sipsteer-monitor@localhost>;tag=${randomToken(6)}`],
        ["To", `<${sip}>`],
        ["Call-ID", `${randomToken(12)}@sipsteer-monitor`],
        ["CSeq", `${state.cseq} OPTIONS`],
        ["Accept", "application/sdp"],
        ["User-Agent", "sipsteer-monitor"],
        ["Content-Length", "0"],
      ],
    });
  }

  #report(probe: OptionsProbeTarget): LoadReport {
    return {
      v: LOAD_REPORT_VERSION,
      proxy: probe.id,
      boot: this.#boot,
      seq: ++this.#seq,
      at: this.#o.table.wallNow(),
      interval: probe.intervalMs,
      state: "active",
      calls: 0,
      registrations: 0,
      transactions: 0,
      media: 0,
      cps: 0,
      cpu: 0,
      elu: 0,
      store: "ok",
      capacity: { calls: probe.capacityCalls, media: 0 },
      uris: probe.uris,
    };
  }

  #fail(state: TargetState, reason: string): void {
    state.failures++;
    state.lastFailure = reason;
    this.#log.debug({ proxy: state.probe.id, reason }, "OPTIONS ping failed");
    this.#o.table.probeFailed(state.probe.id, `OPTIONS ${reason}`);
  }
}

/** Loopback when every literal target of the family is loopback (and no name is), else any. */
function bindAddress(hosts: readonly string[], family: 4 | 6): string {
  const names = hosts.some((h) => isIP(h) === 0);
  const ofFamily = hosts.filter((h) => isIP(h) === family);
  const loopback = (h: string): boolean => (family === 4 ? h.startsWith("127.") : h === "::1");
  if (!names && ofFamily.every(loopback)) {
    return family === 4 ? "127.0.0.1" : "::1";
  }
  return family === 4 ? "0.0.0.0" : "::";
}

/** Why a ping's transaction ended without a response: 408 (timer F) or a transport failure. */
function failureReason(e: unknown): string {
  if (!(e instanceof SipResponseError)) return String(e);
  const cause = e.cause;
  if (cause instanceof TransportError) return `transport: ${cause.code} (${cause.message})`;
  return e.status === 408 ? "timed out (timer F)" : `transport failure (${e.status})`;
}
