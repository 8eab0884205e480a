import { EventEmitter } from "node:events";
import { z } from "zod";
import { parseLoadReport, type LoadReport } from "../contracts/index.js";
import { TimerQueue, silentLogger, type Clock, type Logger, type Timer } from "../sip/index.js";
import { defaultWorkload, type WorkloadFunction } from "./workload.js";

/** A report older than this (either way) against the monitor's wall clock is refused. */
export const DEFAULT_CLOCK_WINDOW_MS = 30_000;
/** DESIGN.md: stale after 3 missed intervals (750 ms with the default 250 ms pushes). */
export const DEFAULT_STALE_AFTER_INTERVALS = 3;
/** k: consecutive probe failures that take a proxy down, and successes that bring it up. */
export const DEFAULT_PROBE_THRESHOLD = 3;
/** Bad input: the table is bounded, whatever joins. */
export const DEFAULT_MAX_PROXIES = 1000;
/** Refused reports warn at most this often (with how many were only counted meanwhile). */
export const REFUSAL_WARN_EVERY_MS = 10_000;

const proxyId = z.string().min(1).max(64);

export const proxyTableConfigSchema = z.object({
  /** Proxy ids known from the config file; others join when their first valid report comes. */
  proxies: z
    .array(proxyId)
    .default([])
    .superRefine((ids, ctx) => {
      const seen = new Set<string>();
      ids.forEach((id, i) => {
        if (seen.has(id)) ctx.addIssue({ code: "custom", path: [i], message: `duplicate ${id}` });
        seen.add(id);
      });
    }),
  /** Whether a valid report from an unknown proxy adds it (false: refused as unknown). */
  allowJoin: z.boolean().default(true),
  /** A report whose `at` is further than this from the monitor's wall clock is refused. */
  clockWindowMs: z.number().int().positive().default(DEFAULT_CLOCK_WINDOW_MS),
  /** Stale once the newest report is this many of its own `interval`s old. */
  staleAfterIntervals: z.number().positive().default(DEFAULT_STALE_AFTER_INTERVALS),
  /** Optional upper bound on the staleness limit, whatever interval a proxy announces. */
  maxStaleMs: z.number().int().positive().optional(),
  /** k consecutive probe failures → down; k consecutive successes → up again. */
  probeThreshold: z.number().int().min(1).default(DEFAULT_PROBE_THRESHOLD),
  maxProxies: z.number().int().positive().default(DEFAULT_MAX_PROXIES),
});

export type ProxyTableConfig = z.infer<typeof proxyTableConfigSchema>;
export type ProxyTableConfigInput = z.input<typeof proxyTableConfigSchema>;

/** Validates, applies defaults and freezes; a bad field throws a RangeError naming its path. */
export function parseProxyTableConfig(
  input: unknown,
  field = "monitor",
): Readonly<ProxyTableConfig> {
  const result = proxyTableConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`${[field, ...issue.path.map(String)].join(".")}: ${issue.message}`);
  }
  Object.freeze(result.data.proxies);
  return Object.freeze(result.data);
}

/** How a report reached the monitor (issue 5, collection modes). */
export type CollectionMode = "push" | "poll" | "stream" | "on-query";

/** Why a report was refused. */
export type RefusalReason =
  /** Not a load report (DESIGN.md schema). */
  | "malformed"
  /** Its `seq` is not above the newest one of the same `boot` (a replay or a reorder). */
  | "old-seq"
  /** A different `boot` whose `at` is older than the newest report's: an old run replayed. */
  | "old-boot"
  /** Its `at` is outside the clock window. */
  | "clock-window"
  /** It names another proxy than the one the collector asked. */
  | "wrong-proxy"
  /** An unknown proxy while joining is off. */
  | "unknown-proxy"
  /** An unknown proxy while the table holds maxProxies. */
  | "table-full";

export const REFUSAL_REASONS: readonly RefusalReason[] = [
  "malformed",
  "old-seq",
  "old-boot",
  "clock-window",
  "wrong-proxy",
  "unknown-proxy",
  "table-full",
];

/** Every change of a proxy's state that is emitted, logged and counted. */
export type ProxyChange =
  "up" | "down" | "stale" | "back" | "draining" | "undrained" | "joined" | "removed" | "restarted";

export const PROXY_CHANGES: readonly ProxyChange[] = [
  "up",
  "down",
  "stale",
  "back",
  "draining",
  "undrained",
  "joined",
  "removed",
  "restarted",
];

export type Health = "up" | "down";
/** Where the table learnt of a proxy. */
export type ProxyOrigin = "config" | "joined" | "admin";
/** One word for a proxy: the first reason it is not eligible, or `eligible`. */
export type ProxyState = "eligible" | "down" | "stale" | "draining";

/** A proxy as the table holds it (read-only outside the table; not a copy). */
export interface ProxyStatus {
  readonly id: string;
  readonly origin: ProxyOrigin;
  /** The newest accepted report. */
  readonly report: LoadReport | undefined;
  /** Its workload by the configured formula. */
  readonly workload: number | undefined;
  /** How the newest report arrived. */
  readonly via: CollectionMode | undefined;
  /** Monotonic ms (the table's clock) when the newest report was accepted. */
  readonly receivedAt: number | undefined;
  /** Monotonic ms when that report was made, estimated from its `at` (see ingest). */
  readonly madeAt: number | undefined;
  readonly health: Health;
  /** The report says draining, or an admin drained it. */
  readonly draining: boolean;
  readonly adminDrained: boolean;
  /** Newest report too old (a configured proxy is stale until its first report). */
  readonly stale: boolean;
  /** Reports accepted and refused for this id. */
  readonly accepted: number;
  readonly refused: number;
  /** Round trip of the newest answered probe that measured one (OPTIONS, JSON-RPC), in ms. */
  readonly latencyMs?: number | undefined;
}

/** A proxy with a report, as `eligible()` gives it. */
export interface ReportingProxy extends ProxyStatus {
  readonly report: LoadReport;
  readonly workload: number;
  readonly via: CollectionMode;
  readonly receivedAt: number;
  readonly madeAt: number;
}

/** A snapshot for APIs (`GET /v1/proxies`). */
export interface ProxyView extends ProxyStatus {
  readonly state: ProxyState;
  readonly eligible: boolean;
  /** Since the newest report was accepted; undefined before the first. */
  readonly ageMs: number | undefined;
}

export interface ProxyStateEvent {
  readonly kind: ProxyChange;
  readonly proxy: string;
  /** Eligible after the change. */
  readonly eligible: boolean;
  /** The monitor's wall clock, epoch ms. */
  readonly at: number;
  readonly reason?: string;
}

/** One line per accepted report (issue 5: `GET /v1/events`). */
export interface ReportSummaryEvent {
  readonly proxy: string;
  readonly via: CollectionMode;
  readonly boot: string;
  readonly seq: number;
  readonly workload: number;
  readonly calls: number;
  readonly registrations: number;
  /** How old the report was when it arrived (monitor wall clock − its `at`, at least 0). */
  readonly age_ms: number;
  readonly at: number;
}

export interface ReportRefusedEvent {
  /** The id the report claimed, when it had one. */
  readonly proxy: string | undefined;
  readonly via: CollectionMode;
  readonly reason: RefusalReason;
  readonly detail: string;
  readonly at: number;
}

export interface ProxyTableEvents {
  state: [ProxyStateEvent];
  report: [ReportSummaryEvent];
  refused: [ReportRefusedEvent];
}

export type IngestResult =
  | { readonly ok: true; readonly proxy: string; readonly changes: readonly ProxyChange[] }
  | { readonly ok: false; readonly reason: RefusalReason; readonly detail: string };

export interface IngestOptions {
  readonly via: CollectionMode;
  /** The proxy the collector asked (poll, stream, on-query): a report naming another is refused. */
  readonly proxy?: string;
  /**
   * The workload as the collector measured it, instead of the formula over the report: an
   * OPTIONS answer's `Sipsteer-Load`, or 1 while a 503's Retry-After runs.
   */
  readonly workload?: number;
  /** How long the collector waited for this answer (ms), shown as the proxy's latency. */
  readonly latencyMs?: number;
}

export interface ProxyTableCounters {
  readonly accepted: number;
  readonly refused: Readonly<Record<RefusalReason, number>>;
  readonly changes: Readonly<Record<ProxyChange, number>>;
}

export interface ProxyTableOptions {
  readonly config?: ProxyTableConfigInput;
  readonly clock: Clock;
  /** Epoch ms, for the clock window and event times; Date.now by default. */
  readonly wallNow?: () => number;
  /** The workload formula (workload.ts); DESIGN.md's default when absent. */
  readonly workload?: WorkloadFunction;
  readonly log?: Logger;
  /**
   * What the table holds, for its logs: proxies (default), or the media relays the monitor
   * keeps in a table of their own (issue 8).
   */
  readonly holds?: "proxy" | "relay";
}

/** The table's own record; fields are mutated only here. */
class ProxyRecord implements ProxyStatus {
  report: LoadReport | undefined;
  workload: number | undefined;
  via: CollectionMode | undefined;
  receivedAt: number | undefined;
  madeAt: number | undefined;
  health: Health = "up";
  draining = false;
  adminDrained = false;
  stale: boolean;
  accepted = 0;
  refused = 0;
  latencyMs: number | undefined;
  /** Consecutive probe outcomes; one of them is always 0. */
  failures = 0;
  successes = 0;
  /** Staleness limit for the newest report. */
  staleLimitMs = Infinity;
  staleTimer: Timer | undefined;

  constructor(
    readonly id: string,
    readonly origin: ProxyOrigin,
  ) {
    // No report yet: nothing fresh is known of it.
    this.stale = origin !== "joined";
  }
}

function hasReport(r: ProxyRecord): r is ProxyRecord & ReportingProxy {
  return r.report !== undefined;
}

function zeroed<K extends string>(keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
}

/**
 * The monitor's knowledge of each proxy: its newest report, how it arrived, its health, and
 * whether it is eligible (healthy, not draining, not stale). Reports come in through
 * {@link ProxyTable.ingest} from any collector; probes through `probeSucceeded`/`probeFailed`;
 * admin calls through `drain`, `undrain`, `add`, `remove`. Every change of state is emitted
 * (`state`), logged and counted; every accepted report yields a `report` summary, every refused
 * one a `refused` event with its reason.
 *
 * Staleness is decided on read from the clock, so an answer never names a proxy whose report
 * has run out; a single clock timer (a TimerQueue) also emits `stale` when a limit passes with
 * no read.
 */
export class ProxyTable extends EventEmitter<ProxyTableEvents> {
  readonly config: Readonly<ProxyTableConfig>;
  readonly #clock: Clock;
  readonly #wallNow: () => number;
  readonly #workload: WorkloadFunction;
  readonly #log: Logger;
  readonly #noun: "proxy" | "relay";
  readonly #timers: TimerQueue;
  readonly #records = new Map<string, ProxyRecord>();
  #accepted = 0;
  readonly #refused = zeroed(REFUSAL_REASONS);
  readonly #changes = zeroed(PROXY_CHANGES);
  #lastRefusalWarnAt = -Infinity;
  #refusalsSuppressed = 0;
  #disposed = false;

  constructor(options: ProxyTableOptions) {
    super();
    this.config = parseProxyTableConfig(options.config);
    this.#clock = options.clock;
    this.#wallNow = options.wallNow ?? Date.now;
    this.#workload = options.workload ?? defaultWorkload;
    this.#noun = options.holds ?? "proxy";
    this.#log = (options.log ?? silentLogger).child({ component: `${this.#noun}-table` });
    this.#timers = new TimerQueue(options.clock);
    for (const id of this.config.proxies) this.#records.set(id, new ProxyRecord(id, "config"));
  }

  /** The table's monotonic time (what `receivedAt` and `madeAt` are measured on). */
  now(): number {
    return this.#clock.now();
  }

  /** The monitor's wall clock, epoch ms. */
  wallNow(): number {
    return this.#wallNow();
  }

  get size(): number {
    return this.#records.size;
  }

  /**
   * Takes a report from any collector. Refused (counted, emitted as `refused`, changing
   * nothing): a malformed one, one naming another proxy than `options.proxy`, one whose `at`
   * is outside the clock window, one whose `seq` is not above the newest of the same `boot`,
   * one of another `boot` older than the newest report (a replayed earlier run), one from an
   * unknown proxy when joining is off or the table is full. A new `boot` is accepted at once:
   * the proxy restarted, and its health starts afresh (the old process's failures are not
   * the new one's).
   *
   * A report fetched by the monitor (poll, stream, on-query) counts as a passed probe; a pushed
   * one does not, as it says nothing of whether the monitor can reach the proxy.
   */
  ingest(input: unknown, options: IngestOptions): IngestResult {
    const wall = this.#wallNow();
    const parsed = parseLoadReport(input);
    if (!parsed.ok) {
      const { issue } = parsed;
      const claimed =
        typeof input === "object" && input !== null && "proxy" in input ? input.proxy : undefined;
      return this.#refuse(
        typeof claimed === "string" ? claimed.slice(0, 64) : undefined,
        options.via,
        "malformed",
        `${issue.path || "report"}: ${issue.message}`,
      );
    }
    const { report } = parsed;
    const { via } = options;
    if (
      options.workload !== undefined &&
      !(Number.isFinite(options.workload) && options.workload >= 0)
    ) {
      throw new RangeError(`workload must be a finite number ≥ 0, got ${options.workload}`);
    }
    if (options.proxy !== undefined && report.proxy !== options.proxy) {
      return this.#refuse(report.proxy, via, "wrong-proxy", `asked ${options.proxy}`);
    }
    const skewMs = wall - report.at;
    if (Math.abs(skewMs) > this.config.clockWindowMs) {
      return this.#refuse(
        report.proxy,
        via,
        "clock-window",
        `at is ${skewMs} ms from the monitor's clock (window ±${this.config.clockWindowMs} ms)`,
      );
    }
    let record = this.#records.get(report.proxy);
    const previous = record?.report;
    if (record === undefined) {
      if (!this.config.allowJoin) {
        return this.#refuse(report.proxy, via, "unknown-proxy", "joining is off");
      }
      if (this.#records.size >= this.config.maxProxies) {
        return this.#refuse(report.proxy, via, "table-full", `${this.config.maxProxies} proxies`);
      }
    } else if (previous !== undefined) {
      if (previous.boot === report.boot && report.seq <= previous.seq) {
        return this.#refuse(
          report.proxy,
          via,
          "old-seq",
          `seq ${report.seq} after ${previous.seq}`,
        );
      }
      if (previous.boot !== report.boot && report.at < previous.at) {
        return this.#refuse(
          report.proxy,
          via,
          "old-boot",
          `boot ${report.boot} at ${report.at} is older than boot ${previous.boot} at ${previous.at}`,
        );
      }
    }

    const changes: ProxyChange[] = [];
    if (record === undefined) {
      record = new ProxyRecord(report.proxy, "joined");
      this.#records.set(record.id, record);
      changes.push("joined");
    }
    if (previous !== undefined && previous.boot !== report.boot) {
      changes.push("restarted");
      record.failures = 0;
      record.successes = 0;
      if (record.health === "down") {
        record.health = "up";
        changes.push("up");
      }
    }
    const now = this.#clock.now();
    record.report = report;
    record.workload = options.workload ?? this.#workload(report);
    if (options.latencyMs !== undefined) record.latencyMs = options.latencyMs;
    record.via = via;
    record.receivedAt = now;
    // Transit time, bounded: a larger gap is clock skew between the hosts, not transit.
    record.madeAt = now - Math.min(Math.max(0, skewMs), report.interval);
    record.accepted++;
    this.#accepted++;
    const limit = this.config.staleAfterIntervals * report.interval;
    record.staleLimitMs = Math.min(limit, this.config.maxStaleMs ?? Infinity);
    if (record.stale) {
      record.stale = false;
      changes.push("back");
    }
    this.#updateDraining(record, changes);
    if (via !== "push") this.#probePassed(record, changes);
    this.#armStaleTimer(record);
    this.#announce(record, changes);
    this.emit("report", {
      proxy: record.id,
      via,
      boot: report.boot,
      seq: report.seq,
      workload: record.workload,
      calls: report.calls,
      registrations: report.registrations,
      age_ms: Math.max(0, skewMs),
      at: wall,
    });
    return { ok: true, proxy: record.id, changes };
  }

  /** A probe (OPTIONS ping, poll) answered. Returns false for an unknown id. */
  probeSucceeded(id: string): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    const changes: ProxyChange[] = [];
    this.#probePassed(record, changes);
    this.#announce(record, changes);
    return true;
  }

  /** A probe failed (timeout, refused, error status). Returns false for an unknown id. */
  probeFailed(id: string, reason = "probe failed"): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    record.successes = 0;
    record.failures++;
    if (record.health === "up" && record.failures >= this.config.probeThreshold) {
      record.health = "down";
      this.#announce(record, ["down"], `${record.failures} probes failed: ${reason}`);
    }
    return true;
  }

  /** A held report stream closed: the proxy is down at once (DESIGN.md). */
  streamClosed(id: string, reason = "report stream closed"): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    record.successes = 0;
    record.failures = Math.max(record.failures, this.config.probeThreshold);
    if (record.health === "up") {
      record.health = "down";
      this.#announce(record, ["down"], reason);
    }
    return true;
  }

  /** Admin drain: no longer eligible, whatever its reports say. False for an unknown id. */
  drain(id: string): boolean {
    return this.#setAdminDrained(id, true);
  }

  /** Undoes an admin drain (a proxy that reports `draining` stays draining). */
  undrain(id: string): boolean {
    return this.#setAdminDrained(id, false);
  }

  /** Admin add: known from now on, stale until its first report. False if already known. */
  add(id: string): boolean {
    const valid = proxyId.safeParse(id);
    if (!valid.success) throw new RangeError(`id: ${valid.error.issues[0]!.message}`);
    if (this.#records.has(id)) return false;
    if (this.#records.size >= this.config.maxProxies) {
      throw new RangeError(`proxies: the table holds maxProxies (${this.config.maxProxies})`);
    }
    const record = new ProxyRecord(id, "admin");
    this.#records.set(id, record);
    this.#announce(record, ["joined"]);
    return true;
  }

  /** Forgets a proxy; its reports join it again unless joining is off. */
  remove(id: string): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    record.staleTimer?.cancel();
    this.#records.delete(id);
    this.#count("removed");
    this.#log.info({ proxy: id, change: "removed" }, `${this.#noun} removed`);
    this.emit("state", { kind: "removed", proxy: id, eligible: false, at: this.#wallNow() });
    return true;
  }

  /** The live record (staleness brought up to date), or undefined. */
  status(id: string): ProxyStatus | undefined {
    const record = this.#records.get(id);
    if (record !== undefined) this.#checkStale(record, this.#clock.now());
    return record;
  }

  /** A snapshot of one proxy for APIs. */
  view(id: string): ProxyView | undefined {
    const record = this.#records.get(id);
    return record === undefined ? undefined : this.#view(record, this.#clock.now());
  }

  /** Snapshots of every proxy, in the order they became known. */
  list(): ProxyView[] {
    const now = this.#clock.now();
    return [...this.#records.values()].map((r) => this.#view(r, now));
  }

  /** The proxies a client may be sent to now (live records, not copies), in table order. */
  eligible(): ReportingProxy[] {
    const now = this.#clock.now();
    const out: ReportingProxy[] = [];
    for (const record of this.#records.values()) {
      if (this.#isEligible(record, now) && hasReport(record)) out.push(record);
    }
    return out;
  }

  isEligible(id: string): boolean {
    const record = this.#records.get(id);
    return record !== undefined && this.#isEligible(record, this.#clock.now());
  }

  counters(): ProxyTableCounters {
    return {
      accepted: this.#accepted,
      refused: { ...this.#refused },
      changes: { ...this.#changes },
    };
  }

  /** Clears the stale timer; staleness is still decided on read. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#timers.dispose();
    for (const record of this.#records.values()) record.staleTimer = undefined;
  }

  #isEligible(record: ProxyRecord, now: number): boolean {
    this.#checkStale(record, now);
    return (
      record.report !== undefined && record.health === "up" && !record.draining && !record.stale
    );
  }

  #view(record: ProxyRecord, now: number): ProxyView {
    const eligible = this.#isEligible(record, now);
    const state: ProxyState =
      record.health === "down"
        ? "down"
        : record.stale
          ? "stale"
          : record.draining
            ? "draining"
            : "eligible";
    return {
      id: record.id,
      origin: record.origin,
      report: record.report,
      workload: record.workload,
      via: record.via,
      receivedAt: record.receivedAt,
      madeAt: record.madeAt,
      health: record.health,
      draining: record.draining,
      adminDrained: record.adminDrained,
      stale: record.stale,
      accepted: record.accepted,
      refused: record.refused,
      latencyMs: record.latencyMs,
      state,
      eligible,
      ageMs: record.receivedAt === undefined ? undefined : now - record.receivedAt,
    };
  }

  /** Marks the record stale (and says so) once its newest report is past the limit. */
  #checkStale(record: ProxyRecord, now: number): void {
    if (record.stale || record.receivedAt === undefined) return;
    if (now - record.receivedAt < record.staleLimitMs) return;
    record.stale = true;
    record.staleTimer?.cancel();
    record.staleTimer = undefined;
    this.#announce(record, ["stale"], `no report for ${now - record.receivedAt} ms`);
  }

  #armStaleTimer(record: ProxyRecord): void {
    record.staleTimer?.cancel();
    record.staleTimer = undefined;
    if (this.#disposed || !Number.isFinite(record.staleLimitMs)) return;
    record.staleTimer = this.#timers.schedule(record.staleLimitMs, () => {
      record.staleTimer = undefined;
      // Removed meanwhile: its timer was cancelled, but be sure it is still ours.
      if (this.#records.get(record.id) === record) this.#checkStale(record, this.#clock.now());
    });
  }

  #probePassed(record: ProxyRecord, changes: ProxyChange[]): void {
    record.failures = 0;
    record.successes++;
    if (record.health === "down" && record.successes >= this.config.probeThreshold) {
      record.health = "up";
      changes.push("up");
    }
  }

  #updateDraining(record: ProxyRecord, changes: ProxyChange[]): void {
    const draining = record.adminDrained || record.report?.state === "draining";
    if (draining === record.draining) return;
    record.draining = draining;
    changes.push(draining ? "draining" : "undrained");
  }

  #setAdminDrained(id: string, drained: boolean): boolean {
    const record = this.#records.get(id);
    if (record === undefined) return false;
    record.adminDrained = drained;
    const changes: ProxyChange[] = [];
    this.#updateDraining(record, changes);
    this.#announce(record, changes, drained ? "admin drain" : "admin undrain");
    return true;
  }

  /** Counts, logs and emits changes once the record is in its final state. */
  #announce(record: ProxyRecord, changes: readonly ProxyChange[], reason?: string): void {
    if (changes.length === 0) return;
    const eligible = this.#isEligible(record, this.#clock.now());
    const at = this.#wallNow();
    for (const kind of changes) {
      this.#count(kind);
      this.#log.info({ proxy: record.id, change: kind, eligible, reason }, `${this.#noun} ${kind}`);
      const event: ProxyStateEvent = { kind, proxy: record.id, eligible, at };
      this.emit("state", reason === undefined ? event : { ...event, reason });
    }
  }

  #count(kind: ProxyChange): void {
    this.#changes[kind]++;
  }

  #refuse(
    proxy: string | undefined,
    via: CollectionMode,
    reason: RefusalReason,
    detail: string,
  ): IngestResult {
    this.#refused[reason]++;
    const record = proxy === undefined ? undefined : this.#records.get(proxy);
    if (record !== undefined) record.refused++;
    // Every refusal is counted; a flood of them (replays, a broken proxy) warns once a while.
    this.#log.debug({ proxy, via, reason, detail }, "load report refused");
    const now = this.#clock.now();
    if (now - this.#lastRefusalWarnAt >= REFUSAL_WARN_EVERY_MS) {
      this.#log.warn(
        { proxy, via, reason, detail, suppressed: this.#refusalsSuppressed },
        "load report refused (further refusals for a while only counted)",
      );
      this.#lastRefusalWarnAt = now;
      this.#refusalsSuppressed = 0;
    } else {
      this.#refusalsSuppressed++;
    }
    this.emit("refused", { proxy, via, reason, detail, at: this.#wallNow() });
    return { ok: false, reason, detail };
  }
}
