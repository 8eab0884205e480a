import { LOAD_REPORT_VERSION, type LoadReport } from "../../contracts/index.js";
import type { Clock, Logger } from "../../sip/index.js";
import type { CollectionMode, ProxyTable } from "../proxy-table.js";
import { jsonRpcCall, type RpcOutcome } from "./json-rpc.js";

/** `cps` is calls started per second over this window (DESIGN.md: the last 5 s). */
const CPS_WINDOW_MS = 5000;

export interface KamailioCollectorOptions {
  readonly id: string;
  /** Kamailio's JSON-RPC endpoint (xhttp + jsonrpcs), e.g. `http://host:5071/RPC`. */
  readonly rpc: string;
  /** Dialogs it holds at full load (the workload's `capacity.calls`). */
  readonly capacityCalls: number;
  /** Where clients are sent. */
  readonly uris: LoadReport["uris"];
  /** How often a report is due (the poll interval): the table's staleness counts in these. */
  readonly intervalMs: number;
  /** Each JSON-RPC call not answered in this time fails the round. */
  readonly timeoutMs: number;
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
}

/** What one Kamailio collector has done. */
export interface KamailioCounters {
  /** Rounds of JSON-RPC calls made. */
  readonly polls: number;
  /** Rounds that failed (counted as failed probes). */
  readonly failures: number;
  /** The newest failure's reason. */
  readonly lastFailure: string | undefined;
}

function count(value: unknown): number {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : 0;
}

function field(result: unknown, name: string): unknown {
  return typeof result === "object" && result !== null
    ? (result as Record<string, unknown>)[name]
    : undefined;
}

/**
 * The `kamailio` adapter (issue 5): a real Kamailio polled over its JSON-RPC HTTP interface.
 * One round is four calls made at once:
 * - `core.uptime`: its `up_since` is the report's `boot`, so that a restarted Kamailio is seen
 *   as one (and accepted at once);
 * - `dlg.stats_active`: `all` (early and confirmed dialogs) is `calls`;
 * - `tm.stats`: `current` is `transactions`;
 * - `stats.fetch` of `dialog:processed_dialogs` (its growth over 5 s gives `cps`) and
 *   `usrloc:registered_users` (`registrations`, 0 without usrloc).
 *
 * The report is ours (`seq` and `at` from the monitor's clocks); its capacity and URIs come
 * from the config, so the workload formula reads calls/capacity.calls as for any proxy.
 * A timeout, a refused connection or an error from the first two calls is a failed probe; the
 * last two are optional (a Kamailio without tm's RPCs or usrloc still reports its calls).
 */
export class KamailioCollector {
  readonly #o: KamailioCollectorOptions;
  readonly #log: Logger;
  #seq = 0;
  #polls = 0;
  #failures = 0;
  #lastFailure: string | undefined;
  /** processed_dialogs samples of the current boot, oldest first, for `cps`. */
  #processed: { at: number; count: number }[] = [];
  #boot: string | undefined;

  constructor(options: KamailioCollectorOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: "kamailio-collector", proxy: options.id });
  }

  counters(): KamailioCounters {
    return { polls: this.#polls, failures: this.#failures, lastFailure: this.#lastFailure };
  }

  /** One round: the report into the table, or a failed probe. Never rejects. */
  async collect(via: CollectionMode, signal: AbortSignal): Promise<void> {
    const o = this.#o;
    this.#polls++;
    const startedAt = o.clock.now();
    const call = (method: string, params?: readonly unknown[]): Promise<RpcOutcome> =>
      jsonRpcCall({
        url: o.rpc,
        method,
        ...(params === undefined ? {} : { params }),
        timeoutMs: o.timeoutMs,
        clock: o.clock,
        signal,
      });
    const [uptime, dialogs, tm, stats] = await Promise.all([
      call("core.uptime"),
      call("dlg.stats_active"),
      call("tm.stats"),
      call("stats.fetch", ["dialog:processed_dialogs", "usrloc:registered_users"]),
    ]);
    if (signal.aborted) return;
    const latencyMs = o.clock.now() - startedAt;
    // tm.stats and stats.fetch may be refused (a JSON-RPC error: the module is not loaded) and
    // are then left out; any call that timed out or could not connect fails the round.
    const outcomes: [string, RpcOutcome, boolean][] = [
      ["core.uptime", uptime, true],
      ["dlg.stats_active", dialogs, true],
      ["tm.stats", tm, false],
      ["stats.fetch", stats, false],
    ];
    for (const [method, outcome, required] of outcomes) {
      if (!outcome.ok && (required || outcome.rpcError === undefined)) {
        this.#fail(`${method}: ${outcome.reason}`);
        return;
      }
    }
    const upSince = field(uptime.ok ? uptime.result : undefined, "up_since");
    if (typeof upSince !== "string" || upSince.trim() === "") {
      this.#fail("core.uptime: no up_since");
      return;
    }
    const boot = `kamailio ${upSince.trim().replace(/\s+/g, " ")}`.slice(0, 64);
    if (boot !== this.#boot) {
      this.#boot = boot;
      this.#processed = [];
    }
    const statsResult = stats.ok ? stats.result : undefined;
    const now = o.clock.now();
    const report: LoadReport = {
      v: LOAD_REPORT_VERSION,
      proxy: o.id,
      boot,
      seq: ++this.#seq,
      at: o.table.wallNow(),
      interval: o.intervalMs,
      state: "active",
      calls: count(field(dialogs.ok ? dialogs.result : undefined, "all")),
      registrations: count(field(statsResult, "usrloc.registered_users")),
      transactions: count(field(tm.ok ? tm.result : undefined, "current")),
      media: 0,
      cps: this.#cps(now, count(field(statsResult, "dialog.processed_dialogs"))),
      cpu: 0,
      elu: 0,
      store: "ok",
      capacity: { calls: o.capacityCalls, media: 0 },
      uris: o.uris,
    };
    const result = o.table.ingest(report, { via, proxy: o.id, latencyMs });
    if (!result.ok) this.#fail(`report refused: ${result.reason} (${result.detail})`);
  }

  /** Calls started per second over the last CPS_WINDOW_MS, from processed_dialogs. */
  #cps(now: number, processed: number): number {
    const samples = this.#processed;
    samples.push({ at: now, count: processed });
    while (samples.length > 2 && now - samples[1]!.at >= CPS_WINDOW_MS) samples.shift();
    const oldest = samples[0]!;
    const spanMs = now - oldest.at;
    if (spanMs <= 0 || processed < oldest.count) return 0;
    return Math.round(((processed - oldest.count) * 1000 * 100) / spanMs) / 100;
  }

  #fail(reason: string): void {
    this.#failures++;
    this.#lastFailure = reason;
    this.#log.debug({ reason }, "Kamailio poll failed");
    this.#o.table.probeFailed(this.#o.id, `JSON-RPC ${reason}`);
  }
}
