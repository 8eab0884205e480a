import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { z } from "zod";
import type { Protocol } from "../sip/index.js";
import { DiscoveryError } from "./errors.js";
import { candidateFromUri, type ProxyCandidate } from "./proxy-candidate.js";

/** Answers are a few hundred bytes; anything far larger is not the monitor's. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** DESIGN.md "Client query": the body of `GET /v1/select` (keys may be added, never renamed). */
const selectAnswerSchema = z.object({
  proxy: z.string().min(1),
  uri: z.string().min(1),
  workload: z.number(),
  age_ms: z.number().optional(),
  ttl: z.number().optional(),
  alternates: z
    .array(z.object({ proxy: z.string().min(1), uri: z.string().min(1), workload: z.number() }))
    .default([]),
});

/** The monitor's choice and its alternates, in its order. */
export interface HttpSelectResult {
  readonly candidates: readonly ProxyCandidate[];
  /** Seconds the answer may be reused (its `ttl`). */
  readonly ttlS: number | undefined;
}

/** Retry-After in seconds (RFC 9110 §10.2.3: delay-seconds; a date is read as 1 s). */
function retryAfterOf(response: IncomingMessage): number | undefined {
  const value = response.headers["retry-after"];
  if (value === undefined) return undefined;
  const seconds = Number(value);
  return Number.isInteger(seconds) && seconds >= 0 ? seconds : 1;
}

/**
 * `GET <base>/v1/select?transport=…` at a monitor: the chosen proxy first, then the
 * alternates. 503 (none eligible) is CLIENT_ERR_NO_PROXY with its Retry-After. One request
 * per call on its own connection (no keep-alive pool left behind when the SDK stops);
 * `signal` aborts it (the caller's deadline).
 */
export async function selectOverHttp(
  base: URL,
  transport: Protocol,
  signal: AbortSignal,
  /** The monitor as given (errors name it); the URL by default. */
  monitor: string = base.toString(),
): Promise<HttpSelectResult> {
  const url = new URL(`${base.pathname.replace(/\/$/, "")}/v1/select`, base);
  url.searchParams.set("transport", transport);
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  const { response, body } = await new Promise<{ response: IncomingMessage; body: string }>(
    (resolve, reject) => {
      const req = send(url, { method: "GET", agent: false, signal }, (response) => {
        let size = 0;
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            response.destroy();
            reject(
              new DiscoveryError("CLIENT_ERR_BAD_ANSWER", `${monitor}: answer over 64 KiB`, {
                monitor,
              }),
            );
            return;
          }
          chunks.push(chunk);
        });
        response.on("end", () =>
          resolve({ response, body: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", reject);
      });
      req.on("error", (e) =>
        reject(
          signal.aborted
            ? e
            : new DiscoveryError("CLIENT_ERR_MONITOR_UNREACHABLE", `${monitor}: ${e.message}`, {
                monitor,
                cause: e,
              }),
        ),
      );
      req.end();
    },
  );
  if (response.statusCode === 503) {
    throw new DiscoveryError("CLIENT_ERR_NO_PROXY", `${monitor}: no eligible proxy (503)`, {
      monitor,
      ...(retryAfterOf(response) === undefined ? {} : { retryAfterS: retryAfterOf(response)! }),
    });
  }
  if (response.statusCode !== 200) {
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_ANSWER",
      `${monitor}: GET /v1/select answered ${response.statusCode}`,
      { monitor },
    );
  }
  let parsed;
  try {
    parsed = selectAnswerSchema.safeParse(JSON.parse(body));
  } catch (e) {
    throw new DiscoveryError("CLIENT_ERR_BAD_ANSWER", `${monitor}: the answer is not JSON`, {
      monitor,
      cause: e,
    });
  }
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_ANSWER",
      `${monitor}: select answer ${issue.path.join(".") || "(body)"}: ${issue.message}`,
      { monitor },
    );
  }
  const answer = parsed.data;
  const candidates: ProxyCandidate[] = [];
  for (const entry of [answer, ...answer.alternates]) {
    const candidate = candidateFromUri(entry.uri, transport, {
      id: entry.proxy,
      workload: entry.workload,
    });
    if (candidate !== undefined) candidates.push(candidate);
  }
  if (candidates.length === 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_ANSWER",
      `${monitor}: no SIP URI with an IP address in the answer (${answer.uri})`,
      { monitor },
    );
  }
  return { candidates, ttlS: answer.ttl };
}
