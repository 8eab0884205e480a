import { setMaxListeners } from "node:events";
import { isIP } from "node:net";
import { z } from "zod";
import {
  DNS_RCODE_SERVFAIL,
  DnsQueryError,
  lookupSrv,
  rcodeName,
  silentLogger,
  srvName,
  systemClock,
  type Clock,
  type ClockTimer,
  type DnsServer,
  type Logger,
  type SendTarget,
  type SrvLookup,
} from "../sip/index.js";
import { HttpGetError, httpGet } from "./http-get.js";
import { readMonitorTarget, type MonitorTarget } from "./monitor-target.js";
import { readProxyUri, type UpstreamTransport } from "./proxy-uri.js";
import { parseUpstreamConfig, type UpstreamConfig } from "./upstream-config.js";

/** Select answers are a few hundred bytes; anything far larger is not the monitor's. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Expired pins are swept at most this often (a pin may outlive its TTL by this much). */
const PIN_SWEEP_MIN_INTERVAL_MS = 1_000;
/** Proxies whose URI is remembered (for pinned registrations); far above any fleet. */
const MAX_KNOWN_PROXIES = 4_096;

/**
 * DESIGN.md "Client query": the body of `GET /v1/select` (src/monitor/http-front.ts). Keys may
 * be added, never renamed, so unknown keys are let through.
 */
const selectAnswerSchema = z.object({
  proxy: z.string().min(1),
  uri: z.string().min(1),
  workload: z.number(),
  alternates: z
    .array(z.object({ proxy: z.string().min(1), uri: z.string().min(1), workload: z.number() }))
    .default([]),
});

/** What the gateway is placing: a new registration (keyed by AOR) or a new dialog. */
export type ChoiceKind = "register" | "dialog";

/** One proxy to try, in the order given. */
export interface ProxyChoice {
  /**
   * The proxy's id: the monitor's `proxy` (over DNS, the first label of an SRV target
   * `<id>.<zone>`, lower case as DNS names go); for a fallback URI given alone, or an SRV target
   * outside the zone, the URI.
   */
  readonly id: string;
  /**
   * Its SIP URI, as the monitor (or the fallback list) gave it; over DNS, made of the SRV
   * record's port and its target's first address (`sip:127.0.0.11:5060;transport=tcp`).
   */
  readonly uri: string;
  /** Where to send: its address, port and transport. */
  readonly target: SendTarget;
  /** Why it is in the list: the registration's pinned proxy, the monitor's ranking, fallback. */
  readonly via: "pinned" | "monitor" | "fallback";
}

export interface ProxyChooserOptions {
  /** The `upstream` section, as given (it is validated here) or from parseUpstreamConfig. */
  readonly config?: unknown;
  /** Hold-offs, pin expiry and the select timeout run on it. */
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** One monitor as stats() shows it. */
export interface MonitorQueryStats {
  /** The monitor as configured: `http://…` or `dns:HOST:PORT/ZONE`. */
  readonly url: string;
  /** Whether its last query was answered (a 503 or SERVFAIL is an answer). */
  readonly up: boolean;
  readonly queries: number;
  /**
   * No answer in time, no connection (or ICMP unreachable), a status other than 200 and 503 or
   * an rcode other than NOERROR and SERVFAIL, a malformed body or no usable SRV target.
   */
  readonly failures: number;
  /** 503 (HTTP) or SERVFAIL (DNS): it knew no eligible proxy. */
  readonly noProxy: number;
}

/** Counters for the gateway's `/status` and Prometheus metrics. */
export interface ProxyChooserStats {
  /** Registrations pinned, over all proxies. */
  readonly pins: number;
  readonly pinnedByProxy: Readonly<Record<string, number>>;
  /** failed() calls per proxy, since start. */
  readonly failuresByProxy: Readonly<Record<string, number>>;
  /** Proxies held off new work now. */
  readonly heldOff: readonly string[];
  readonly monitorQueries: number;
  readonly monitorFailures: number;
  /** Lists made from the fallback because no monitor answered. */
  readonly fallbackLists: number;
  /** Lists that came out empty (the gateway answers 503). */
  readonly emptyLists: number;
  /** Pins dropped: the oldest over maxPins, and the ones not refreshed within pinTtlMs. */
  readonly pinsEvicted: number;
  readonly pinsExpired: number;
  readonly monitors: readonly MonitorQueryStats[];
}

/** How one monitor is asked: its select URL, or its DNS front and the SRV name. */
type MonitorQuery =
  | { readonly kind: "http"; readonly select: URL }
  | {
      readonly kind: "dns";
      readonly server: DnsServer;
      readonly name: string;
      readonly zone: string;
    };

interface MonitorState {
  readonly url: string;
  readonly query: MonitorQuery;
  /** Its last query failed: it is asked after the others until retryAt, one query at a time. */
  down: boolean;
  retryAt: number;
  probing: boolean;
  queries: number;
  failures: number;
  noProxy: number;
}

interface Pin {
  readonly proxy: string;
  readonly expiresAt: number;
}

/** What one monitor said: its ranking, that none is eligible (503), or nothing usable. */
type Asked = readonly ProxyChoice[] | "none" | undefined;

/**
 * One query's outcome before the bookkeeping: proxies (and URIs left out), none eligible (and
 * how it said so), a failure (why), or stopped.
 */
type Heard =
  | { readonly choices: ProxyChoice[]; readonly skipped: readonly string[] }
  | { readonly none: string }
  | { readonly failure: string }
  | "aborted";

/**
 * Where the gateway forwards each new registration and each new dialog (issue 9): the proxies
 * to try, in order, from the load monitor's `GET /v1/select` or its DNS front's SRV records
 * (DESIGN.md "Client query"), socket-free apart from those queries. The gateway core asks
 * `candidatesFor()`, tries the list in order, and says what happened: `pin()` when a REGISTER
 * succeeded at a proxy, `unpin()` on de-registration, `failed()` when a proxy timed out or
 * answered 503.
 *
 * - A registration stays with its proxy until that proxy fails: its pinned proxy comes first,
 *   then the monitor's ranking. A failed proxy loses its pins (each registration moves at its
 *   next refresh) and is held off new work for `holdOffMs`, whatever the monitor says.
 * - Monitors (replicas, `http://` and `dns:` mixed as configured) are asked in order, each for
 *   at most `selectTimeoutMs`; one that fails is asked after the others until `holdOffMs` has
 *   passed, one query at a time, so that a dead monitor does not cost every request its
 *   timeout. A 503 or a SERVFAIL (none eligible, as the monitor's fronts say it) is an answer:
 *   the next monitor is asked, and if none names a proxy the list is empty. Only when no
 *   monitor answers at all is the `fallback` list used (minus held-off proxies).
 * - Pins are bounded (`maxPins`, the least recently pinned dropped) and expire when not
 *   refreshed within `pinTtlMs`.
 */
export class ProxyChooser {
  readonly config: Readonly<UpstreamConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #monitors: MonitorState[];
  readonly #fallback: readonly ProxyChoice[];
  /** id → its newest choice, least recently seen first: the URIs of pinned proxies. */
  readonly #known = new Map<string, ProxyChoice>();
  /** AOR → pin, least recently pinned first; with one TTL, that is also expiry order. */
  readonly #pins = new Map<string, Pin>();
  readonly #pinnedTo = new Map<string, Set<string>>();
  /** proxy id → until when it gets no new work. */
  readonly #heldUntil = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();
  #sweepTimer: ClockTimer | undefined;
  #stopped = false;
  #monitorQueries = 0;
  #monitorFailures = 0;
  #fallbackLists = 0;
  #emptyLists = 0;
  #pinsEvicted = 0;
  #pinsExpired = 0;

  constructor(options: ProxyChooserOptions = {}) {
    this.config = parseUpstreamConfig(options.config ?? {});
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.logger ?? silentLogger).child({ component: "gateway-upstream" });
    // Every query under way listens for stop()'s abort; a busy gateway has many at once.
    setMaxListeners(Infinity, this.#abort.signal);
    const transport = this.config.transport;
    this.#monitors = this.config.monitors.map((url) => {
      const read = readMonitorTarget(url);
      // The config's schema has read every monitor already.
      if ("problem" in read) throw new Error(`monitor ${url}: ${read.problem}`);
      return {
        url,
        query: monitorQuery(url, read.target, transport),
        down: false,
        retryAt: 0,
        probing: false,
        queries: 0,
        failures: 0,
        noProxy: 0,
      };
    });
    this.#fallback = this.config.fallback.map((entry) => {
      const { id, uri } = typeof entry === "string" ? { id: entry, uri: entry } : entry;
      const choice = choiceOf(id, uri, transport, "fallback");
      // The config's schema has read every fallback URI already.
      if (choice === undefined) throw new Error(`fallback ${uri}: not a proxy URI`);
      return choice;
    });
    for (const choice of this.#fallback) this.#remember(choice);
  }

  /**
   * The proxies to try for a new registration of `key` (its AOR) or a new dialog (`key` only
   * names it in logs), best first, without duplicates or held-off proxies. Empty when no
   * proxy is to be had: the gateway answers 503. Never rejects on a monitor's failure.
   */
  async candidatesFor(kind: ChoiceKind, key: string): Promise<ProxyChoice[]> {
    if (this.#stopped) return [];
    // A pinned registration asks too, for the proxies to try after its own. The monitor counts
    // its answer as a client sent to its choice (its correction), which the gateway then does
    // not send; the count lasts until that proxy's next report, so the skew stays small.
    const asking = this.#askMonitors(kind, key);
    this.#inFlight.add(asking);
    let ranked: Asked;
    try {
      ranked = await asking;
    } finally {
      this.#inFlight.delete(asking);
    }
    if (this.#stopped) return [];
    const now = this.#clock.now();
    const out: ProxyChoice[] = [];
    const add = (choice: ProxyChoice): void => {
      if (this.#isHeldOff(choice.id, now)) return;
      if (out.some((c) => c.id === choice.id)) return;
      out.push(choice);
    };
    if (kind === "register") {
      const pinned = this.#pinnedChoice(key, now);
      if (pinned !== undefined) out.push(pinned);
    }
    if (ranked === undefined) {
      if (this.#fallback.length > 0) this.#fallbackLists++;
      for (const choice of this.#fallback) add(choice);
    } else if (ranked !== "none") {
      for (const choice of ranked) add(choice);
    }
    if (out.length === 0) this.#emptyLists++;
    this.#log.debug(
      {
        kind,
        key,
        candidates: out.map((c) => c.id),
        from: ranked === undefined ? "fallback" : "monitor",
      },
      "proxies chosen",
    );
    return out;
  }

  /**
   * A REGISTER for `aor` succeeded at `proxyId` (one candidatesFor offered): its refreshes go
   * there first until that proxy fails. Pinning again refreshes the pin's TTL; a pin to a
   * proxy held off now is not made.
   */
  pin(aor: string, proxyId: string): void {
    if (this.#stopped) return;
    if (!this.#known.has(proxyId)) {
      throw new Error(`pin ${aor}: proxy ${proxyId} was never offered`);
    }
    this.unpin(aor);
    // A REGISTER answered just before its proxy failed: the registration moves at its refresh.
    if (this.isHeldOff(proxyId)) return;
    this.#pins.set(aor, { proxy: proxyId, expiresAt: this.#clock.now() + this.config.pinTtlMs });
    let aors = this.#pinnedTo.get(proxyId);
    if (aors === undefined) this.#pinnedTo.set(proxyId, (aors = new Set()));
    aors.add(aor);
    while (this.#pins.size > this.config.maxPins) {
      const [oldest] = this.#pins.keys();
      this.#dropPin(oldest!);
      this.#pinsEvicted++;
    }
    this.#scheduleSweep();
  }

  /** `aor` de-registered (or its registration ended otherwise); unknown AORs are ignored. */
  unpin(aor: string): void {
    this.#dropPin(aor);
  }

  /** The proxy `aor` is pinned to, if any. */
  pinnedProxy(aor: string): string | undefined {
    const pin = this.#pins.get(aor);
    return pin === undefined || pin.expiresAt <= this.#clock.now() ? undefined : pin.proxy;
  }

  /**
   * `proxyId` timed out or answered 503 (`why`, for the log): it gets no new work for
   * holdOffMs, and every registration pinned to it is unpinned, to move at its next refresh.
   */
  failed(proxyId: string, why: string): void {
    if (this.#stopped) return;
    const now = this.#clock.now();
    this.#failures.set(proxyId, (this.#failures.get(proxyId) ?? 0) + 1);
    this.#heldUntil.set(proxyId, now + this.config.holdOffMs);
    const aors = this.#pinnedTo.get(proxyId);
    const unpinned = aors?.size ?? 0;
    if (aors !== undefined) for (const aor of [...aors]) this.#dropPin(aor);
    this.#log.warn(
      { proxy: proxyId, why, unpinned, holdOffMs: this.config.holdOffMs },
      "proxy failed; held off new work",
    );
  }

  /** Whether `proxyId` is held off new work now. */
  isHeldOff(proxyId: string): boolean {
    return this.#isHeldOff(proxyId, this.#clock.now());
  }

  stats(): ProxyChooserStats {
    const now = this.#clock.now();
    const pinnedByProxy: Record<string, number> = {};
    for (const [proxy, aors] of this.#pinnedTo) pinnedByProxy[proxy] = aors.size;
    const heldOff = [...this.#heldUntil.keys()].filter((id) => this.#isHeldOff(id, now)).sort();
    return {
      pins: this.#pins.size,
      pinnedByProxy,
      failuresByProxy: Object.fromEntries(this.#failures),
      heldOff,
      monitorQueries: this.#monitorQueries,
      monitorFailures: this.#monitorFailures,
      fallbackLists: this.#fallbackLists,
      emptyLists: this.#emptyLists,
      pinsEvicted: this.#pinsEvicted,
      pinsExpired: this.#pinsExpired,
      monitors: this.#monitors.map((m) => ({
        url: m.url,
        up: !m.down,
        queries: m.queries,
        failures: m.failures,
        noProxy: m.noProxy,
      })),
    };
  }

  /**
   * Aborts the monitor queries under way (their candidatesFor resolve empty), clears the pin
   * sweep and the pins. Later calls answer empty lists. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#abort.abort();
    if (this.#sweepTimer !== undefined) {
      this.#clock.clearTimeout(this.#sweepTimer);
      this.#sweepTimer = undefined;
    }
    this.#pins.clear();
    this.#pinnedTo.clear();
    await Promise.allSettled([...this.#inFlight]);
  }

  // ---- monitors ---------------------------------------------------------------------------

  /** Up monitors (and down ones due a retry) in their order, then the other down ones. */
  #order(now: number): MonitorState[] {
    const first: MonitorState[] = [];
    const last: MonitorState[] = [];
    for (const m of this.#monitors) {
      if (!m.down || now >= m.retryAt) first.push(m);
      else last.push(m);
    }
    return [...first, ...last];
  }

  async #askMonitors(kind: ChoiceKind, key: string): Promise<Asked> {
    let none = false;
    for (const m of this.#order(this.#clock.now())) {
      if (this.#stopped) return undefined;
      // A down monitor gets one query at a time: the others do not wait on it too.
      if (m.down && m.probing) continue;
      const asked = await this.#ask(m, kind, key);
      if (asked === "none") none = true;
      else if (asked !== undefined) return asked;
    }
    return none ? "none" : undefined;
  }

  async #ask(m: MonitorState, kind: ChoiceKind, key: string): Promise<Asked> {
    const probe = m.down;
    if (probe) m.probing = true;
    m.queries++;
    this.#monitorQueries++;
    try {
      const heard =
        m.query.kind === "http"
          ? await this.#selectOverHttp(m.query.select)
          : await this.#lookupOverDns(m.query);
      if (heard === "aborted") return undefined;
      if ("failure" in heard) return this.#monitorFailed(m, heard.failure);
      if ("none" in heard) {
        m.noProxy++;
        this.#answered(m);
        this.#log.debug(
          { monitor: m.url, kind, key },
          `monitor: no eligible proxy (${heard.none})`,
        );
        return "none";
      }
      if (heard.skipped.length > 0) {
        this.#log.debug({ monitor: m.url, skipped: heard.skipped }, "monitor: unusable proxy URIs");
      }
      this.#answered(m);
      for (const choice of heard.choices) this.#remember(choice);
      return heard.choices;
    } finally {
      if (probe) m.probing = false;
    }
  }

  /** `GET /v1/select`: 200 with a ranking, 503 for none eligible, anything else a failure. */
  async #selectOverHttp(select: URL): Promise<Heard> {
    try {
      const response = await httpGet(select, {
        timeoutMs: this.config.selectTimeoutMs,
        clock: this.#clock,
        maxBytes: MAX_ANSWER_BYTES,
        signal: this.#abort.signal,
      });
      if (response.status === 503) return { none: "503" };
      if (response.status !== 200) {
        return { failure: `GET /v1/select answered ${response.status}` };
      }
      const read = this.#readAnswer(response.body);
      return typeof read === "string" ? { failure: read } : read;
    } catch (e) {
      if (!(e instanceof HttpGetError)) throw e;
      return e.reason === "aborted" ? "aborted" : { failure: e.message };
    }
  }

  /**
   * The SRV records of `_sip._udp.<zone>` (or `_sip._tcp`) at the monitor's DNS front, over UDP
   * (TCP when truncated), the whole lookup bounded by selectTimeoutMs on the clock.
   */
  async #lookupOverDns(query: Extract<MonitorQuery, { kind: "dns" }>): Promise<Heard> {
    const stopping = this.#abort.signal;
    if (stopping.aborted) return "aborted";
    const abort = new AbortController();
    const onStop = (): void => abort.abort();
    stopping.addEventListener("abort", onStop, { once: true });
    let timedOut = false;
    const timer = this.#clock.setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.config.selectTimeoutMs);
    try {
      const found = await lookupSrv({
        server: query.server,
        name: query.name,
        signal: abort.signal,
      });
      return this.#readSrv(found, query.zone);
    } catch (e) {
      if (!(e instanceof DnsQueryError)) throw e;
      if (e.reason !== "aborted") return { failure: e.message };
      if (!timedOut) return "aborted";
      return { failure: `SRV ${query.name}: no answer in ${this.config.selectTimeoutMs} ms` };
    } finally {
      this.#clock.clearTimeout(timer);
      stopping.removeEventListener("abort", onStop);
    }
  }

  /** The answer's proxies in its order, or why it is malformed. */
  #readAnswer(body: string): { choices: ProxyChoice[]; skipped: string[] } | string {
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      return "malformed select answer: not JSON";
    }
    const parsed = selectAnswerSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      return `malformed select answer: ${issue.path.join(".") || "(body)"}: ${issue.message}`;
    }
    const answer = parsed.data;
    const choices: ProxyChoice[] = [];
    const skipped: string[] = [];
    for (const entry of [answer, ...answer.alternates]) {
      const choice = choiceOf(entry.proxy, entry.uri, this.config.transport, "monitor");
      if (choice === undefined) skipped.push(entry.uri);
      else if (!choices.some((c) => c.id === choice.id)) choices.push(choice);
    }
    if (choices.length === 0) {
      return `malformed select answer: no usable proxy URI (${skipped.join(", ")})`;
    }
    return { choices, skipped };
  }

  /**
   * An SRV answer as the ranking a select gives. The DNS front lists the selector's choice
   * alone at the first priority, then the other eligible proxies by rank at the second, with
   * weights for clients that spread their failover (RFC 2782). The gateway keeps the listed
   * order within a priority instead of drawing by weight, so that an http:// and a dns:
   * monitor give it the same list: it fails over per request and holds a failed proxy off,
   * and the next query's first choice already moves with the monitor's correction.
   */
  #readSrv(found: SrvLookup, zone: string): Heard {
    if (found.rcode === DNS_RCODE_SERVFAIL) return { none: "SERVFAIL" };
    if (found.rcode !== 0) return { failure: `${rcodeName(found.rcode)} for ${found.name} SRV` };
    const transport = this.config.transport;
    const suffix = `.${zone}`;
    // Array.prototype.sort is stable: equal priorities keep the answer's order.
    const records = [...found.targets].sort((a, b) => a.priority - b.priority);
    const choices: ProxyChoice[] = [];
    const skipped: string[] = [];
    for (const record of records) {
      const address = record.addresses[0];
      if (address === undefined) {
        skipped.push(`${record.target} (no address)`);
        continue;
      }
      const host = isIP(address) === 6 ? `[${address}]` : address;
      const uri = `sip:${host}:${record.port}${transport === "tcp" ? ";transport=tcp" : ""}`;
      // The front names a proxy `<id>.<zone>`; another target is known by its URI only.
      const name = record.target.toLowerCase().replace(/\.$/, "");
      const label = name.endsWith(suffix) ? name.slice(0, -suffix.length) : "";
      const id = label !== "" && !label.includes(".") ? label : uri;
      const choice = choiceOf(id, uri, transport, "monitor");
      if (choice === undefined) skipped.push(uri);
      else if (!choices.some((c) => c.id === choice.id)) choices.push(choice);
    }
    if (choices.length === 0) {
      const why = skipped.length > 0 ? ` (${skipped.join(", ")})` : "";
      return { failure: `no usable SRV target for ${found.name}${why}` };
    }
    return { choices, skipped };
  }

  #answered(m: MonitorState): void {
    if (!m.down) return;
    m.down = false;
    this.#log.info({ monitor: m.url }, "monitor answers again");
  }

  /** Counts and logs a failed query (warn when the monitor was up); the next is asked. */
  #monitorFailed(m: MonitorState, why: string): undefined {
    m.failures++;
    this.#monitorFailures++;
    m.retryAt = this.#clock.now() + this.config.holdOffMs;
    if (m.down) {
      this.#log.debug({ monitor: m.url, why }, "monitor still failing");
    } else {
      m.down = true;
      this.#log.warn({ monitor: m.url, why }, "monitor failed; asking the next");
    }
    return undefined;
  }

  #remember(choice: ProxyChoice): void {
    this.#known.delete(choice.id);
    this.#known.set(choice.id, choice);
    if (this.#known.size > MAX_KNOWN_PROXIES) {
      const [oldest] = this.#known.keys();
      this.#known.delete(oldest!);
    }
  }

  // ---- pins and hold-offs -----------------------------------------------------------------

  #isHeldOff(proxyId: string, now: number): boolean {
    const until = this.#heldUntil.get(proxyId);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#heldUntil.delete(proxyId);
    this.#log.info({ proxy: proxyId }, "proxy hold-off over; it gets new work again");
    return false;
  }

  /** The registration's pinned proxy, while the pin lives and the proxy is not held off. */
  #pinnedChoice(aor: string, now: number): ProxyChoice | undefined {
    const pin = this.#pins.get(aor);
    if (pin === undefined) return undefined;
    // An expired pin the sweep has not reached yet.
    if (pin.expiresAt <= now) {
      this.#dropPin(aor);
      this.#pinsExpired++;
      return undefined;
    }
    if (this.#isHeldOff(pin.proxy, now)) {
      this.#dropPin(aor);
      return undefined;
    }
    const known = this.#known.get(pin.proxy);
    return known === undefined ? undefined : { ...known, via: "pinned" };
  }

  #dropPin(aor: string): void {
    const pin = this.#pins.get(aor);
    if (pin === undefined) return;
    this.#pins.delete(aor);
    const aors = this.#pinnedTo.get(pin.proxy);
    aors?.delete(aor);
    if (aors?.size === 0) this.#pinnedTo.delete(pin.proxy);
  }

  /** One clock timer, at the oldest pin's expiry (at least PIN_SWEEP_MIN_INTERVAL_MS on). */
  #scheduleSweep(): void {
    if (this.#sweepTimer !== undefined || this.#stopped) return;
    const [oldest] = this.#pins.values();
    if (oldest === undefined) return;
    const delay = Math.max(oldest.expiresAt - this.#clock.now(), PIN_SWEEP_MIN_INTERVAL_MS);
    this.#sweepTimer = this.#clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweep();
      this.#scheduleSweep();
    }, delay);
  }

  #sweep(): void {
    const now = this.#clock.now();
    let expired = 0;
    for (const [aor, pin] of this.#pins) {
      if (pin.expiresAt > now) break;
      this.#dropPin(aor);
      expired++;
    }
    this.#pinsExpired += expired;
    if (expired > 0) this.#log.debug({ expired }, "registration pins expired");
  }
}

function choiceOf(
  id: string,
  uri: string,
  transport: UpstreamTransport,
  via: ProxyChoice["via"],
): ProxyChoice | undefined {
  const read = readProxyUri(uri, transport);
  if ("problem" in read) return undefined;
  return Object.freeze({ id, uri, target: read.target, via });
}

/** How to ask a monitor: the select URL with the transport, or the SRV name in its zone. */
function monitorQuery(
  text: string,
  target: MonitorTarget,
  transport: UpstreamTransport,
): MonitorQuery {
  if (target.kind === "http") {
    const select = new URL(`${target.base.pathname.replace(/\/$/, "")}/v1/select`, target.base);
    select.searchParams.set("transport", transport);
    return { kind: "http", select };
  }
  return {
    kind: "dns",
    server: { host: target.host, port: target.port, text },
    // udp and tcp both have SRV names.
    name: srvName(transport, target.zone)!,
    zone: target.zone,
  };
}
