import { z } from "zod";
import {
  SendLedger,
  clientIncrement,
  policyConfigSchema,
  policyFor,
  type Candidate,
  type Policy,
  type PolicyName,
} from "./policies.js";
import type { ProxyStateEvent, ProxyTable, ReportingProxy } from "./proxy-table.js";

/** The transports a client may ask for (DESIGN.md "Client query"). */
export const TRANSPORTS = ["udp", "tcp", "tls", "ws", "wss"] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** DNS and HTTP answers may be kept this long, at most and at least (DESIGN.md: 1–5 s). */
export const MIN_TTL_S = 1;
export const MAX_TTL_S = 5;
export const DEFAULT_MAX_ALTERNATES = 4;

export const selectorConfigSchema = policyConfigSchema.extend({
  /** Ranked alternates after the chosen proxy in each answer. */
  maxAlternates: z.number().int().nonnegative().default(DEFAULT_MAX_ALTERNATES),
});

export type SelectorConfig = z.infer<typeof selectorConfigSchema>;
export type SelectorConfigInput = z.input<typeof selectorConfigSchema>;

/** Validates, applies defaults and freezes; a bad field throws a RangeError naming its path. */
export function parseSelectorConfig(input: unknown, field = "select"): Readonly<SelectorConfig> {
  const result = selectorConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`${[field, ...issue.path.map(String)].join(".")}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}

export interface Alternate {
  readonly proxy: string;
  readonly uri: string;
  readonly workload: number;
}

/** DESIGN.md "Client query": the answer of `GET /v1/select`. */
export interface SelectAnswer {
  readonly proxy: string;
  /** Its URI for the asked transport (for ws/wss, its WebSocket URL). */
  readonly uri: string;
  /** The workload the choice was based on (corrected for sends, except with `literal`). */
  readonly workload: number;
  /** Age of that proxy's newest report, ms. */
  readonly age_ms: number;
  /** Seconds the answer may be reused. */
  readonly ttl: number;
  readonly alternates: readonly Alternate[];
}

/** One eligible proxy for a transport, as the DNS front needs it. */
export interface RankedProxy extends Alternate {
  readonly age_ms: number;
  /** Spare capacity in clients (SRV weight material); 0 when full. */
  readonly spare: number;
}

/**
 * Where a client is sent on one eligible entry of the table for what it asked (`key`), or
 * undefined when that entry serves no such thing.
 */
export type EndpointOf<K extends string> = (entry: ReportingProxy, key: K) => string | undefined;

/** A proxy's URI for a transport, from its newest report (the default {@link EndpointOf}). */
export const reportedUri: EndpointOf<Transport> = (proxy, transport) =>
  proxy.report.uris[transport];

export type SelectorOptions<K extends string = Transport> = {
  readonly table: ProxyTable;
  readonly config?: SelectorConfigInput;
  /** Uniform in [0, 1); Math.random by default. Injected so that tests are deterministic. */
  readonly random?: () => number;
} & (K extends Transport
  ? { readonly endpoint?: EndpointOf<K> }
  : {
      /**
       * What answers carry as `uri` for each entry (a relay's ng address): required unless
       * the keys are transports, whose URIs come from the reports.
       */
      readonly endpoint: EndpointOf<K>;
    });

/**
 * TTL rule: the more spare capacity the chosen proxy has, the longer an answer may be kept —
 * round(5 × (1 − workload)) seconds, within 1…5. An idle fleet gets 5 s answers; a proxy at
 * 90% or more gets 1 s, so clients come back soon while the choice matters most.
 */
export function ttlFor(workload: number): number {
  const ttl = Math.round(MAX_TTL_S * (1 - workload));
  return Math.min(MAX_TTL_S, Math.max(MIN_TTL_S, ttl));
}

/** Workloads in answers: four decimals are plenty and keep the JSON short. */
const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

interface Scored {
  readonly proxy: ReportingProxy;
  readonly uri: string;
  readonly candidate: Candidate;
}

/**
 * Answers "where should I connect?" for a transport: among the table's eligible proxies that
 * have a URI for it, the one the configured policy picks, with the others ranked as
 * alternates. Each answer is recorded as a send, so that the correction of `least-loaded`,
 * `p2c` and `weighted-random` counts the clients not yet in the proxies' reports; per-proxy
 * counters say how often each was chosen.
 *
 * The same selector serves any table of reporting entries: over the media relays' table it is
 * keyed by `"media"`, and its `uri` is a relay's ng address (issue 8).
 */
export class Selector<K extends string = Transport> {
  readonly config: Readonly<SelectorConfig>;
  readonly #table: ProxyTable;
  readonly #policy: Policy;
  readonly #random: () => number;
  readonly #endpoint: EndpointOf<K>;
  readonly #ledger = new SendLedger();
  readonly #chosen = new Map<string, number>();
  #disposed = false;

  readonly #onState = (event: ProxyStateEvent): void => {
    // A removed proxy's sends would otherwise wait for a report that never comes.
    if (event.kind === "removed") this.#ledger.forget(event.proxy);
  };

  constructor(options: SelectorOptions<K>) {
    this.config = parseSelectorConfig(options.config);
    this.#table = options.table;
    this.#policy = policyFor(this.config.policy);
    this.#random = options.random ?? Math.random;
    // Without an endpoint K is a transport (SelectorOptions says so).
    this.#endpoint = (options.endpoint ?? reportedUri) as EndpointOf<K>;
    this.#table.on("state", this.#onState);
  }

  get policy(): PolicyName {
    return this.#policy.name;
  }

  /**
   * The proxy to send a client to over `transport`, with ranked alternates; undefined when no
   * eligible proxy has a URI for it (the fronts answer 503 + Retry-After, SIP 503, SERVFAIL).
   * Records the send.
   */
  select(transport: K): SelectAnswer | undefined {
    const scored = this.#score(transport);
    if (scored.length === 0) return undefined;
    const chosenIndex = this.#policy.choose(
      scored.map((s) => s.candidate),
      this.#random,
    );
    const chosen = scored[chosenIndex]!;
    const now = this.#table.now();
    const report = chosen.proxy.report;
    this.#ledger.record(
      chosen.proxy.id,
      now,
      clientIncrement(report.capacity.calls, this.config.clientIncrement),
    );
    this.#chosen.set(chosen.proxy.id, (this.#chosen.get(chosen.proxy.id) ?? 0) + 1);

    const workload = this.#policy.effective(chosen.candidate);
    const alternates = this.#sorted(scored.filter((_, i) => i !== chosenIndex))
      .slice(0, this.config.maxAlternates)
      .map((s) => ({
        proxy: s.proxy.id,
        uri: s.uri,
        workload: round4(this.#policy.effective(s.candidate)),
      }));
    return {
      proxy: chosen.proxy.id,
      uri: chosen.uri,
      workload: round4(workload),
      age_ms: Math.round(now - chosen.proxy.receivedAt),
      ttl: ttlFor(workload),
      alternates,
    };
  }

  /**
   * Every eligible proxy with a URI for `transport`, least loaded first by the policy's
   * workload, without recording a send (for listings and for DNS priorities and weights).
   */
  ranked(transport: K): RankedProxy[] {
    const now = this.#table.now();
    return this.#sorted(this.#score(transport)).map((s) => {
      const workload = this.#policy.effective(s.candidate);
      return {
        proxy: s.proxy.id,
        uri: s.uri,
        workload: round4(workload),
        age_ms: Math.round(now - s.proxy.receivedAt),
        spare: s.candidate.size * Math.max(0, 1 - workload),
      };
    });
  }

  /** How often `proxy` was chosen. */
  timesChosen(proxy: string): number {
    return this.#chosen.get(proxy) ?? 0;
  }

  /** Times chosen per proxy id (a copy). */
  chosenCounts(): Map<string, number> {
    return new Map(this.#chosen);
  }

  /** Stops listening to the table. Idempotent; the selector holds no timer. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#table.off("state", this.#onState);
    this.#ledger.clear();
  }

  #score(transport: K): Scored[] {
    const out: Scored[] = [];
    const { clientIncrement: fallback, sendAllowanceMs } = this.config;
    const endpoint = this.#endpoint;
    for (const proxy of this.#table.eligible()) {
      const uri = endpoint(proxy, transport);
      if (uri === undefined) continue;
      const calls = proxy.report.capacity.calls;
      out.push({
        proxy,
        uri,
        candidate: {
          id: proxy.id,
          reported: proxy.workload,
          pending: this.#ledger.pending(proxy.id, proxy.madeAt - sendAllowanceMs),
          size: calls > 0 ? calls : 1 / fallback,
        },
      });
    }
    return out;
  }

  /** Least loaded first by the policy's workload; ties to the larger proxy, then table order. */
  #sorted(scored: Scored[]): Scored[] {
    const effective = this.#policy.effective;
    return scored.sort((a, b) => {
      const d = effective(a.candidate) - effective(b.candidate);
      return d !== 0 ? d : b.candidate.size - a.candidate.size;
    });
  }
}
