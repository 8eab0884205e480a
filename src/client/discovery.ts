import {
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Protocol,
  type TransactionLayer,
} from "../sip/index.js";
import { withDeadline } from "./deadline.js";
import { resolveOverDns } from "./dns-resolver.js";
import { DiscoveryError } from "./errors.js";
import { selectOverHttp } from "./http-select.js";
import { parseMonitorAddress, type MonitorAddress } from "./monitor-address.js";
import type { ProxyCandidate } from "./proxy-candidate.js";
import { redirectOverSip } from "./sip-redirect.js";

/** How long one monitor has to answer before the next is asked. */
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 2_000;

export interface DiscoveryOptions {
  /** Monitors in the order to ask them: `http://…`, `dns:HOST:PORT/ZONE`, `sip:HOST:PORT`. */
  readonly monitors: readonly string[];
  /** The SIP transport the client will use (the proxies' URIs for it are asked for). */
  readonly transport: Protocol;
  /** Per monitor (DEFAULT_DISCOVERY_TIMEOUT_MS). */
  readonly timeoutMs?: number;
  /** Needed for `sip:` monitors: the REGISTER is sent in a client transaction of ours. */
  readonly sip?: {
    readonly transactions: TransactionLayer;
    readonly user: string;
    readonly domain: string;
  };
}

export interface DiscoveryDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Uniform in [0, 1): DNS ids and RFC 2782 weighted order. */
  readonly random?: () => number;
}

/** Where a monitor said to go. */
export interface DiscoveryResult {
  /** The monitor that answered, as given. */
  readonly monitor: string;
  /** Proxies in the order to try them (the least loaded first). */
  readonly candidates: readonly ProxyCandidate[];
}

/**
 * Asks monitors where to go (DESIGN.md "Client query"): HTTP `GET /v1/select`, RFC 3263
 * SRV and A/AAAA against the monitor's DNS front, or a REGISTER to its SIP front followed to
 * its 302. The monitors are asked in turn, each bounded by `timeoutMs`, until one names at
 * least one proxy. Failures are DiscoveryErrors: the monitor's own with one monitor, else
 * CLIENT_ERR_ALL_MONITORS_FAILED listing each in `failures`.
 */
export class Discovery {
  readonly monitors: readonly MonitorAddress[];
  readonly #options: DiscoveryOptions;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;

  /** Throws DiscoveryError CLIENT_ERR_BAD_MONITOR for a monitor value it cannot read. */
  constructor(options: DiscoveryOptions, deps: DiscoveryDeps = {}) {
    if (options.monitors.length === 0) {
      throw new DiscoveryError("CLIENT_ERR_BAD_MONITOR", "monitors: at least one monitor");
    }
    this.monitors = options.monitors.map(parseMonitorAddress);
    if (options.sip === undefined && this.monitors.some((m) => m.kind === "sip")) {
      throw new RangeError(
        "Discovery: a sip: monitor needs the `sip` option (a transaction layer)",
      );
    }
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS;
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ component: "discovery" });
    this.#random = deps.random ?? Math.random;
  }

  async discover(): Promise<DiscoveryResult> {
    const failures: DiscoveryError[] = [];
    for (const monitor of this.monitors) {
      try {
        const candidates = await this.ask(monitor);
        this.#log.info(
          { monitor: monitor.text, candidates: candidates.map((c) => c.uri) },
          "monitor answered",
        );
        return { monitor: monitor.text, candidates };
      } catch (e) {
        const failure =
          e instanceof DiscoveryError
            ? e
            : new DiscoveryError(
                "CLIENT_ERR_MONITOR_UNREACHABLE",
                `${monitor.text}: ${String(e)}`,
                {
                  monitor: monitor.text,
                  cause: e,
                },
              );
        this.#log.warn({ monitor: monitor.text, err: failure }, "monitor failed; next one");
        failures.push(failure);
      }
    }
    if (failures.length === 1) throw failures[0]!;
    throw new DiscoveryError(
      "CLIENT_ERR_ALL_MONITORS_FAILED",
      `every monitor failed: ${failures.map((f) => f.message).join("; ")}`,
      { failures },
    );
  }

  /** One monitor's answer, bounded by the timeout. */
  ask(monitor: MonitorAddress): Promise<ProxyCandidate[]> {
    const abort = new AbortController();
    const transport = this.#options.transport;
    let work: Promise<ProxyCandidate[]>;
    switch (monitor.kind) {
      case "http":
        work = selectOverHttp(monitor.url, transport, abort.signal, monitor.text).then((r) => [
          ...r.candidates,
        ]);
        break;
      case "dns":
        work = resolveOverDns(monitor, monitor.zone, transport, abort.signal, this.#random);
        break;
      case "sip":
        work = redirectOverSip(monitor, transport, this.#options.sip!);
        break;
    }
    return withDeadline(
      work,
      this.#timeoutMs,
      this.#clock,
      () =>
        new DiscoveryError(
          "CLIENT_ERR_MONITOR_TIMEOUT",
          `${monitor.text}: no answer within ${this.#timeoutMs} ms`,
          { monitor: monitor.text },
        ),
      () => abort.abort(),
    );
  }
}
