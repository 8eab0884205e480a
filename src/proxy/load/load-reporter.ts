import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { EventEmitter } from "node:events";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import {
  LOAD_REPORT_VERSION,
  SIGNATURE_HEADER,
  signatureHeader,
  signedDatagram,
  type LoadReport,
  type SigningKey,
} from "../../contracts/index.js";
import type { Clock, ClockTimer, Logger } from "../../sip/index.js";

/** What the reporter reads from the proxy each time it makes a report. */
export interface LoadSources {
  readonly state: () => LoadReport["state"];
  readonly calls: () => number;
  readonly registrations: () => number;
  readonly transactions: () => number;
  readonly media: () => number;
  readonly cps: () => number;
  readonly store: () => LoadReport["store"];
  /**
   * Event-loop utilisation and cores used since the last report, when they are not this
   * process's own (a cluster's primary reports its workers').
   */
  readonly elu?: () => number;
  readonly cpu?: () => number;
  readonly capacity: LoadReport["capacity"];
  readonly uris: LoadReport["uris"];
}

export interface LoadReporterOptions {
  readonly proxyId: string;
  readonly intervalMs: number;
  /** http(s)://… (POST the JSON) or udp://host:port (a signed datagram). */
  readonly push: readonly string[];
  readonly key: SigningKey | undefined;
  readonly clock: Clock;
  readonly log: Logger;
  /** Checked before each push (DESIGN.md allowedDestinations). */
  readonly allowed: (address: string) => boolean;
}

/**
 * DESIGN.md workload: max(calls/capacity.calls, media/capacity.media, elu), leaving out a
 * term whose capacity is 0.
 */
export function workloadOf(
  report: Pick<LoadReport, "calls" | "media" | "elu" | "capacity">,
): number {
  let w = report.elu;
  if (report.capacity.calls > 0) w = Math.max(w, report.calls / report.capacity.calls);
  if (report.capacity.media > 0) w = Math.max(w, report.media / report.capacity.media);
  return w;
}

/** CPU and event-loop use over less than this are not measured (reported as 0). */
const MIN_MEASURED_WINDOW_MS = 20;

/**
 * Makes the proxy's load reports (DESIGN.md "Load report") every `intervalMs` and pushes them,
 * signed, to each target; emits `report` for the HTTP stream; and pushes at once (at most every
 * 50 ms) when the state changes or the call count moves markedly.
 */
export class LoadReporter extends EventEmitter<{ report: [LoadReport] }> {
  readonly boot = randomBytes(8).toString("hex");
  #seq = 0;
  #timer: ClockTimer | undefined;
  #elu: EventLoopUtilization = performance.eventLoopUtilization();
  #cpu = process.cpuUsage();
  #cpuAt = performance.now();
  #last: LoadReport | undefined;
  #lastPushAt = 0;
  /** The last report published (pushed and streamed). */
  #published: LoadReport | undefined;
  /** A push put off to keep pushes 50 ms apart. */
  #soon: ClockTimer | undefined;
  #udp: Socket | undefined;
  #running = false;

  constructor(
    private readonly options: LoadReporterOptions,
    private readonly sources: LoadSources,
  ) {
    super();
  }

  get last(): LoadReport | undefined {
    return this.#last;
  }

  start(): void {
    this.#running = true;
    // Measure from here: the work of starting up (opening the store, binding sockets) is no
    // load the proxy carries, and counted in its first report it kept a restarted proxy from
    // being chosen for a while.
    this.#elu = performance.eventLoopUtilization();
    this.#cpu = process.cpuUsage();
    this.#cpuAt = performance.now();
    if (this.options.push.some((t) => t.startsWith("udp://"))) {
      this.#udp = createSocket("udp4");
      this.#udp.unref();
      this.#udp.on("error", (e) => this.options.log.warn({ err: e }, "report socket error"));
    }
    this.#tick();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#soon !== undefined) this.options.clock.clearTimeout(this.#soon);
    this.#soon = undefined;
    this.#udp?.close();
    this.#udp = undefined;
  }

  /** A fresh report (also what GET /load answers). */
  make(): LoadReport {
    const s = this.sources;
    const now = performance.now();
    // A window too short to say anything (the report made at start): nothing measured yet, 0;
    // the next report measures from the same point.
    const measured = now - this.#cpuAt >= MIN_MEASURED_WINDOW_MS;
    const elu = measured ? performance.eventLoopUtilization(this.#elu).utilization : 0;
    const cpu = process.cpuUsage(this.#cpu);
    const cores = measured ? (cpu.user + cpu.system) / 1000 / (now - this.#cpuAt) : 0;
    if (measured) {
      this.#elu = performance.eventLoopUtilization();
      this.#cpu = process.cpuUsage();
      this.#cpuAt = now;
    }
    const report: LoadReport = {
      v: LOAD_REPORT_VERSION,
      proxy: this.options.proxyId,
      boot: this.boot,
      seq: this.#seq++,
      at: Date.now(),
      interval: this.options.intervalMs,
      state: s.state(),
      calls: s.calls(),
      registrations: s.registrations(),
      transactions: s.transactions(),
      media: s.media(),
      cps: round(s.cps()),
      cpu: round(s.cpu?.() ?? cores),
      elu: round(Math.min(1, Math.max(0, s.elu?.() ?? elu))),
      store: s.store(),
      capacity: s.capacity,
      uris: s.uris,
    };
    this.#last = report;
    this.emit("report", report);
    return report;
  }

  /** Called when something changed: push now if it matters, or 50 ms after the last push. */
  changed(): void {
    // Against what went out, not what GET /load made since (a poll must not hide a change).
    const last = this.#published;
    if (!this.#running || last === undefined || this.#soon !== undefined) return;
    const calls = this.sources.calls();
    const moved = Math.abs(calls - last.calls) >= Math.max(5, last.calls * 0.1);
    if (!moved && this.sources.state() === last.state) return;
    const wait = this.#lastPushAt + 50 - this.options.clock.now();
    if (wait <= 0) {
      this.#publish();
      return;
    }
    this.#soon = this.options.clock.setTimeout(() => {
      this.#soon = undefined;
      if (this.#running) this.#publish();
    }, wait);
  }

  #tick = (): void => {
    if (!this.#running) return;
    this.#publish();
    this.#timer = this.options.clock.setTimeout(this.#tick, this.options.intervalMs);
  };

  #publish(): void {
    this.#lastPushAt = this.options.clock.now();
    const report = this.make();
    this.#published = report;
    if (this.options.push.length === 0 || this.options.key === undefined) return;
    const body = Buffer.from(JSON.stringify(report));
    for (const target of this.options.push) this.#push(target, body, this.options.key);
  }

  #push(target: string, body: Buffer, key: SigningKey): void {
    const url = new URL(target);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (!this.options.allowed(host)) {
      this.options.log.warn({ target }, "push target not in allowedDestinations; not sent");
      return;
    }
    if (url.protocol === "udp:") {
      this.#udp?.send(signedDatagram(body, key), Number(url.port), host);
      return;
    }
    fetch(target, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/json",
        [SIGNATURE_HEADER]: signatureHeader(body, key),
      },
      signal: AbortSignal.timeout(Math.max(1000, this.options.intervalMs * 4)),
    }).then(
      (res) => {
        if (!res.ok) this.options.log.debug({ target, status: res.status }, "report refused");
        return res.body?.cancel();
      },
      (e: unknown) => this.options.log.debug({ err: e, target }, "report push failed"),
    );
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}
