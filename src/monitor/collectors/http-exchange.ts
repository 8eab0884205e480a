import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Clock } from "../../sip/index.js";

/** The body of a 200 answer, or why there is none. */
export type ExchangeOutcome =
  { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly reason: string };

export interface HttpExchangeOptions {
  readonly url: string;
  /** GET without a body; POST with one. */
  readonly body?: Buffer;
  readonly contentType?: string;
  /** A longer answer is a failure ("body too large"). */
  readonly maxBodyBytes: number;
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** Aborts the exchange (the monitor stopping): reason "stopped". */
  readonly signal?: AbortSignal;
}

/**
 * One HTTP request and its 200 answer's body, as the collectors need it. Never rejects: a
 * timeout, a refused connection, a status other than 200 or an answer over the size bound is
 * a failure with its reason. No agent, so that no keep-alive socket outlives the exchange;
 * the timeout runs on the injected clock.
 */
export function httpExchange(options: HttpExchangeOptions): Promise<ExchangeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: ExchangeOutcome): void => {
      if (settled) return;
      settled = true;
      options.clock.clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      request.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ ok: false, reason: "stopped" });
    const { body } = options;
    const request = (options.url.startsWith("https:") ? httpsRequest : httpRequest)(
      options.url,
      {
        method: body === undefined ? "GET" : "POST",
        agent: false,
        headers: {
          accept: "application/json",
          connection: "close",
          ...(body === undefined
            ? {}
            : {
                "content-type": options.contentType ?? "application/json",
                "content-length": body.length,
              }),
        },
      },
      (response) => {
        if (response.statusCode !== 200) {
          response.resume();
          finish({ ok: false, reason: `status ${response.statusCode}` });
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBodyBytes) finish({ ok: false, reason: "body too large" });
          else chunks.push(chunk);
        });
        response.on("end", () => finish({ ok: true, body: Buffer.concat(chunks) }));
        response.on("error", (e) => finish({ ok: false, reason: e.message }));
      },
    );
    request.on("error", (e: NodeJS.ErrnoException) =>
      finish({ ok: false, reason: e.code ?? e.message }),
    );
    const timer = options.clock.setTimeout(
      () => finish({ ok: false, reason: `no answer in ${options.timeoutMs} ms` }),
      options.timeoutMs,
    );
    if (options.signal?.aborted === true) onAbort();
    else {
      options.signal?.addEventListener("abort", onAbort, { once: true });
      request.end(body);
    }
  });
}
