import type { Clock } from "../../sip/index.js";
import { httpExchange } from "./http-exchange.js";

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
export async function fetchLoad(options: FetchLoadOptions): Promise<FetchOutcome> {
  const outcome = await httpExchange({ ...options, maxBodyBytes: MAX_LOAD_BODY_BYTES });
  if (!outcome.ok) return outcome;
  try {
    return { ok: true, report: JSON.parse(outcome.body.toString("utf8")) };
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
}
