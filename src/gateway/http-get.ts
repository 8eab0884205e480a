import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import type { Clock, ClockTimer } from "../sip/index.js";

/** Why a GET brought no response: no connection, no answer in time, a body too large, stopped. */
export type HttpGetFailure = "network" | "timeout" | "too-large" | "aborted";

/** A GET that brought no whole response; `reason` says why. */
export class HttpGetError extends Error {
  override readonly name = "HttpGetError";
  readonly reason: HttpGetFailure;

  constructor(reason: HttpGetFailure, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.reason = reason;
  }
}

export interface HttpGetOptions {
  /** The whole exchange (connect, response, body) must end within this, on `clock`. */
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** A body larger than this fails the GET (`too-large`). */
  readonly maxBytes: number;
  /** Aborts the GET (`aborted`). */
  readonly signal?: AbortSignal;
}

/** A whole response, whatever its status. */
export interface HttpGetResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/**
 * One `GET` over plain HTTP on a connection of its own (`agent: false`: no keep-alive socket is
 * left open behind it, so stopping the caller leaves nothing open). The deadline runs on the
 * injected clock and covers the whole exchange, not only idle time, so a server that drips its
 * answer is cut off too. Rejects with HttpGetError; resolves with any status (the caller reads
 * it).
 *
 * The proxy's media relay pool has a similar helper (src/proxy/media-relay/relay-pool.ts); the
 * gateway keeps its own rather than import across the proxy's boundary.
 */
export function httpGet(url: URL, options: HttpGetOptions): Promise<HttpGetResponse> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new HttpGetError("aborted", `GET ${url.href}: aborted`));
      return;
    }
    const request = httpRequest(url, { method: "GET", agent: false });
    let settled = false;
    const finish = (outcome: HttpGetResponse | HttpGetError): void => {
      if (settled) return;
      settled = true;
      options.clock.clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      request.destroy();
      if (outcome instanceof HttpGetError) reject(outcome);
      else resolve(outcome);
    };
    const onAbort = (): void => finish(new HttpGetError("aborted", `GET ${url.href}: aborted`));
    options.signal?.addEventListener("abort", onAbort, { once: true });
    // Every path to finish() runs after this line: the listeners fire on later turns.
    const timer: ClockTimer = options.clock.setTimeout(
      () =>
        finish(
          new HttpGetError("timeout", `GET ${url.href}: no answer in ${options.timeoutMs} ms`),
        ),
      options.timeoutMs,
    );
    request.on("error", (e) =>
      finish(new HttpGetError("network", `GET ${url.href}: ${e.message}`, { cause: e })),
    );
    request.on("response", (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) {
          finish(
            new HttpGetError("too-large", `GET ${url.href}: body over ${options.maxBytes} bytes`),
          );
        } else {
          chunks.push(chunk);
        }
      });
      response.on("end", () =>
        finish({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      response.on("error", (e) =>
        finish(new HttpGetError("network", `GET ${url.href}: ${e.message}`, { cause: e })),
      );
    });
    request.end();
  });
}
