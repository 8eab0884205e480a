import type { Clock } from "../../sip/index.js";
import { httpExchange } from "./http-exchange.js";

/** Kamailio's answers to the calls the monitor makes are a few hundred bytes. */
const MAX_RPC_BODY_BYTES = 256 * 1024;

/** A JSON-RPC 2.0 answer's `result`, or why there is none. */
export type RpcOutcome =
  | { readonly ok: true; readonly result: unknown }
  | {
      readonly ok: false;
      readonly reason: string;
      /** The server answered with a JSON-RPC error (it is up; the method failed). */
      readonly rpcError?: { readonly code: number; readonly message: string };
    };

export interface JsonRpcCallOptions {
  /** The endpoint, e.g. Kamailio's `http://host:5071/RPC`. */
  readonly url: string;
  readonly method: string;
  readonly params?: readonly unknown[];
  readonly timeoutMs: number;
  readonly clock: Clock;
  /** Aborts the call (the monitor stopping). */
  readonly signal?: AbortSignal;
}

let nextId = 0;

/**
 * One JSON-RPC 2.0 call over HTTP POST (https://www.jsonrpc.org/specification), as Kamailio's
 * jsonrpcs module serves it behind xhttp. Never rejects: a timeout, a refused connection, a
 * status other than 200, a body that is not a JSON-RPC response, or an `error` member is a
 * failure with its reason. No agent, so that no keep-alive socket outlives the call; the
 * timeout runs on the injected clock.
 */
export async function jsonRpcCall(options: JsonRpcCallOptions): Promise<RpcOutcome> {
  const id = ++nextId;
  const body = Buffer.from(
    JSON.stringify({
      jsonrpc: "2.0",
      method: options.method,
      ...(options.params === undefined ? {} : { params: options.params }),
      id,
    }),
  );
  const outcome = await httpExchange({
    url: options.url,
    body,
    maxBodyBytes: MAX_RPC_BODY_BYTES,
    timeoutMs: options.timeoutMs,
    clock: options.clock,
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return outcome.ok ? readAnswer(outcome.body, id) : outcome;
}

/** The `result` of a JSON-RPC response to call `id`, or why it is not one. */
function readAnswer(body: Buffer, id: number): RpcOutcome {
  let answer: unknown;
  try {
    answer = JSON.parse(body.toString("utf8"));
  } catch {
    return { ok: false, reason: "body is not JSON" };
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
    return { ok: false, reason: "not a JSON-RPC response" };
  }
  const a = answer as Record<string, unknown>;
  if (a.id !== id && a.id !== null)
    return { ok: false, reason: `answer to another call (${String(a.id)})` };
  if (typeof a.error === "object" && a.error !== null) {
    const e = a.error as Record<string, unknown>;
    const code = typeof e.code === "number" ? e.code : 0;
    const message = typeof e.message === "string" ? e.message.slice(0, 200) : "error";
    return { ok: false, reason: `${code} ${message}`, rpcError: { code, message } };
  }
  if (!("result" in a)) return { ok: false, reason: "neither result nor error" };
  return { ok: true, result: a.result };
}
