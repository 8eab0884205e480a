import { get, type ClientRequest } from "node:http";
import type { Clock, ClockTimer, Logger } from "../../sip/index.js";
import type { ProxyTable } from "../proxy-table.js";
import { alreadyHeld } from "./load-poller.js";

/** A line longer than this is not a report: the stream is cut and opened again. */
const MAX_LINE_BYTES = 64 * 1024;

export interface LoadStreamOptions {
  readonly id: string;
  /** The proxy's HTTP base URL, without a trailing slash. */
  readonly http: string;
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
  /** The first reconnect waits this long, doubling up to `retryMaxMs`. */
  readonly retryMs: number;
  readonly retryMaxMs: number;
}

/**
 * Stream collection (issue 5): holds `GET <http>/load/stream` (Server-Sent Events) open and
 * gives each `data:` line to the table as a report. When the stream ends or fails the proxy is
 * marked down at once (DESIGN.md: "a held stream that closes marks its proxy down at once")
 * and the stream is opened again after a backoff that doubles up to a bound, reset by the
 * first report of a new connection.
 */
export class LoadStream {
  readonly #o: LoadStreamOptions;
  readonly #log: Logger;
  #request: ClientRequest | undefined;
  #retryTimer: ClockTimer | undefined;
  #retryMs: number;
  #running = false;
  #reconnects = 0;
  #reports = 0;
  #connected = false;

  constructor(options: LoadStreamOptions) {
    this.#o = options;
    this.#retryMs = options.retryMs;
    this.#log = options.log.child({ component: "load-stream", proxy: options.id });
  }

  /** Connections opened again after one closed or failed. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Reports taken from the stream (accepted or not). */
  get reports(): number {
    return this.#reports;
  }

  /** A connection is open and its event stream has started. */
  get connected(): boolean {
    return this.#connected;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#connect();
  }

  /** Closes the held connection and clears the retry timer. Idempotent. */
  stop(): void {
    this.#running = false;
    if (this.#retryTimer !== undefined) this.#o.clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const request = this.#request;
    this.#request = undefined;
    this.#connected = false;
    request?.destroy();
  }

  #connect(): void {
    let closed = false;
    const onClosed = (reason: string): void => {
      if (closed || request !== this.#request) return;
      closed = true;
      this.#request = undefined;
      this.#connected = false;
      request.destroy();
      if (!this.#running) return;
      this.#log.debug({ reason }, "report stream closed");
      this.#o.table.streamClosed(this.#o.id, `report stream closed: ${reason}`);
      this.#retry();
    };
    const request = get(
      `${this.#o.http}/load/stream`,
      { agent: false, headers: { accept: "text/event-stream" } },
      (response) => {
        const type = response.headers["content-type"] ?? "";
        if (response.statusCode !== 200 || !type.startsWith("text/event-stream")) {
          response.resume();
          onClosed(`status ${response.statusCode} ${type}`);
          return;
        }
        this.#connected = true;
        let buffer = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf("\n");
          while (end >= 0) {
            this.#line(buffer.slice(0, end).replace(/\r$/, ""));
            buffer = buffer.slice(end + 1);
            end = buffer.indexOf("\n");
          }
          if (buffer.length > MAX_LINE_BYTES) onClosed("line too long");
        });
        response.on("end", () => onClosed("ended"));
        response.on("close", () => onClosed("closed"));
        response.on("error", (e) => onClosed(e.message));
      },
    );
    request.on("error", (e: NodeJS.ErrnoException) => onClosed(e.code ?? e.message));
    request.on("close", () => onClosed("closed"));
    this.#request = request;
  }

  /** One SSE line: `data:` carries a report; comments, `event:`, `id:` and blanks are skipped. */
  #line(line: string): void {
    if (!line.startsWith("data:")) return;
    this.#reports++;
    let report: unknown;
    try {
      report = JSON.parse(line.slice(5));
    } catch {
      this.#log.warn("report stream sent a line that is not JSON");
      return;
    }
    // A report a poll of the same proxy already brought (GET /load is streamed too).
    if (alreadyHeld(this.#o.table, this.#o.id, report)) return;
    const result = this.#o.table.ingest(report, { via: "stream", proxy: this.#o.id });
    if (result.ok) this.#retryMs = this.#o.retryMs;
  }

  #retry(): void {
    const wait = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, this.#o.retryMaxMs);
    this.#retryTimer = this.#o.clock.setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#running) return;
      this.#reconnects++;
      this.#connect();
    }, wait);
  }
}
