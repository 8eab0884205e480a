import { get } from "node:http";
import type { Clock } from "../../sip/index.js";

/** A fetched report (still unchecked: the table validates it) or why there is none. */
export type FetchOutcome =
  { readonly ok: true; readonly report: unknown } | { readonly ok: false; readonly reason: string };

/** A report is about 600 bytes; a body much larger than this is not one. */
const MAX_LOAD_BODY_BYTES = 64 * 1024;

export interface FetchLoadOptions {
  /** `<proxy http>/load`. */
  readonly url: string;
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** Aborts the request (the monitor stopping). */
  readonly signal?: AbortSignal;
}

/**
 * One `GET /load`. Never rejects: a timeout, a refused connection, a status other than 200 or
 * a body that is not JSON is a failure with its reason. No agent, so that no keep-alive
 * socket outlives the request; the timeout runs on the injected clock.
 */
export function fetchLoad(options: FetchLoadOptions): Promise<FetchOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: FetchOutcome): void => {
      if (settled) return;
      settled = true;
      options.clock.clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      request.destroy();
      resolve(outcome);
    };
    const onAbort = (): void => finish({ ok: false, reason: "stopped" });
    const request = get(
      options.url,
      { agent: false, headers: { accept: "application/json", connection: "close" } },
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
          if (size > MAX_LOAD_BODY_BYTES) finish({ ok: false, reason: "body too large" });
          else chunks.push(chunk);
        });
        response.on("end", () => {
          try {
            finish({ ok: true, report: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
          } catch {
            finish({ ok: false, reason: "body is not JSON" });
          }
        });
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
    else options.signal?.addEventListener("abort", onAbort, { once: true });
  });
}
