import { LOAD_REPORT_VERSION, type LoadReport } from "../../contracts/index.js";
import {
  DEFAULT_NG_ATTEMPTS,
  NgClient,
  NgError,
  type NgStatistics,
} from "../../media/rtpengine/index.js";
import type { Clock, Logger } from "../../sip/index.js";
import type { NgEndpoint } from "../monitor-config.js";
import type { CollectionMode, ProxyTable } from "../proxy-table.js";

/**
 * RTP ports one relayed audio session holds: an RTP and an RTCP port on each side (what
 * rtpengine 10.5 takes for an offer). Sizes a relay without a session capacity from its ports.
 */
export const PORTS_PER_SESSION = 4;
/**
 * A start time (now − uptime, both in whole seconds) that moved by more than this is a
 * restart: two readings of one start differ by at most the second they straddle.
 */
const BOOT_JITTER_S = 1;

export interface RtpengineCollectorOptions {
  readonly id: string;
  /** The relay's ng control socket. */
  readonly ng: NgEndpoint;
  /** Sessions it holds at full load; 0: none configured, its ports in use are its workload. */
  readonly capacitySessions: number;
  /** How often a report is due (the poll interval): the table's staleness counts in these. */
  readonly intervalMs: number;
  /** A round whose ping or statistics is not answered in this time fails. */
  readonly timeoutMs: number;
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
}

/** What one rtpengine collector has done. */
export interface RtpengineCounters {
  /** Rounds (a ping and a statistics) made. */
  readonly polls: number;
  /** Rounds that failed (counted as failed probes). */
  readonly failures: number;
  /** The newest failure's reason. */
  readonly lastFailure: string | undefined;
}

/**
 * The workload of a relay from its statistics: sessions/capacity when a session capacity is
 * configured, else the share of its RTP ports in use (0 when it names none).
 */
export function relayWorkload(stats: NgStatistics, capacitySessions: number): number {
  if (capacitySessions > 0) return stats.sessions / capacitySessions;
  return stats.ports.total > 0 ? stats.ports.used / stats.ports.total : 0;
}

/**
 * Sessions a relay holds at full load, which sizes the correction of sends (one session sent
 * there adds 1/size): the configured capacity, else its ports over {@link PORTS_PER_SESSION}.
 */
export function relaySize(stats: NgStatistics, capacitySessions: number): number {
  if (capacitySessions > 0) return capacitySessions;
  return Math.floor(stats.ports.total / PORTS_PER_SESSION);
}

/**
 * The `rtpengine` relay adapter (issue 8): one rtpengine polled over its ng control protocol.
 * A round is a `ping` (its round trip is the relay's latency) and a `statistics` made at once;
 * either failing (no reply within `timeoutMs`, an error) is a failed probe.
 *
 * The report is ours, shaped as a load report so that the relays' table and selector are the
 * proxies' own: `calls` and `media` are rtpengine's own sessions, `capacity.calls` the
 * relay's size, `boot` its start time (from its uptime, so that a restarted relay is taken at
 * once), `seq` and `at` the monitor's; the workload is {@link relayWorkload}, not the
 * proxies' formula.
 */
export class RtpengineCollector {
  readonly #o: RtpengineCollectorOptions;
  readonly #client: NgClient;
  readonly #log: Logger;
  #seq = 0;
  #polls = 0;
  #failures = 0;
  #lastFailure: string | undefined;
  #stats: NgStatistics | undefined;
  #boot: string | undefined;
  #boots = 0;
  #startS = 0;
  #uptimeS = 0;
  #managed = 0;

  constructor(options: RtpengineCollectorOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: "rtpengine-collector", relay: options.id });
    this.#client = new NgClient({
      address: options.ng.address,
      port: options.ng.port,
      // Its attempts (same cookie, answered from rtpengine's cache) fit in one poll timeout.
      timeoutMs: Math.max(1, Math.ceil(options.timeoutMs / DEFAULT_NG_ATTEMPTS)),
      attempts: DEFAULT_NG_ATTEMPTS,
      clock: options.clock,
      logger: this.#log,
    });
  }

  /** Opens the ng client's socket. */
  start(): Promise<void> {
    return this.#client.start();
  }

  /** Closes it; requests still pending fail (and are dropped by the aborted round). */
  stop(): Promise<void> {
    return this.#client.stop();
  }

  /** The newest statistics rtpengine answered (kept while it is down), if any. */
  get statistics(): NgStatistics | undefined {
    return this.#stats;
  }

  counters(): RtpengineCounters {
    return { polls: this.#polls, failures: this.#failures, lastFailure: this.#lastFailure };
  }

  /** One round: the report into the table, or a failed probe. Never rejects. */
  async collect(via: CollectionMode, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const o = this.#o;
    this.#polls++;
    const startedAt = o.clock.now();
    const round = Promise.allSettled([
      this.#client.ping().then(() => o.clock.now() - startedAt),
      this.#client.statistics(),
    ]);
    // A stop aborts the round at once rather than waiting for rtpengine's silence to time out.
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<undefined>((resolve) => {
      onAbort = () => resolve(undefined);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    const outcome = await Promise.race([round, aborted]);
    signal.removeEventListener("abort", onAbort!);
    if (outcome === undefined || signal.aborted) return;
    const [ping, statistics] = outcome;
    if (ping.status === "rejected") return this.#fail(`ping: ${reasonOf(ping.reason)}`);
    if (statistics.status === "rejected") {
      return this.#fail(`statistics: ${reasonOf(statistics.reason)}`);
    }
    const stats = statistics.value;
    this.#stats = stats;
    const wall = o.table.wallNow();
    const report: LoadReport = {
      v: LOAD_REPORT_VERSION,
      proxy: o.id,
      boot: this.#bootOf(wall, stats),
      seq: ++this.#seq,
      at: wall,
      interval: o.intervalMs,
      state: "active",
      calls: stats.sessions,
      registrations: 0,
      transactions: 0,
      media: stats.sessions,
      cps: 0,
      cpu: 0,
      elu: 0,
      store: "ok",
      capacity: { calls: relaySize(stats, o.capacitySessions), media: 0 },
      uris: {},
    };
    const result = o.table.ingest(report, {
      via,
      proxy: o.id,
      workload: relayWorkload(stats, o.capacitySessions),
      latencyMs: ping.value,
    });
    if (!result.ok) this.#fail(`report refused: ${result.reason} (${result.detail})`);
  }

  /**
   * The boot of the rtpengine that answered: a new one when its uptime or its count of
   * sessions ever ended went back, or its start time (now − uptime) moved, so that a
   * restarted relay is up at its first answer. (One restarted within a second of its previous
   * start, before any session ended, passes for the same: it comes back after k answers.)
   */
  #bootOf(wallMs: number, stats: NgStatistics): string {
    const startS = Math.floor(wallMs / 1000) - stats.uptimeS;
    if (
      this.#boot === undefined ||
      stats.uptimeS < this.#uptimeS ||
      stats.managedSessions < this.#managed ||
      Math.abs(startS - this.#startS) > BOOT_JITTER_S
    ) {
      this.#boots++;
      this.#boot = `rtpengine ${startS} ${this.#boots}`;
      this.#startS = startS;
    }
    this.#uptimeS = stats.uptimeS;
    this.#managed = stats.managedSessions;
    return this.#boot;
  }

  #fail(reason: string): void {
    this.#failures++;
    this.#lastFailure = reason;
    this.#log.debug({ reason }, "rtpengine poll failed");
    this.#o.table.probeFailed(this.#o.id, `ng ${reason}`);
  }
}

function reasonOf(e: unknown): string {
  return e instanceof NgError ? `${e.code}: ${e.message}` : String(e);
}
