import type { IncomingMessage, ServerResponse } from "node:http";
import { SIGNATURE_HEADER, parseSignatureHeader } from "../contracts/index.js";
import type { PushIntake, PushOutcome } from "./push-intake.js";

/** Where proxies push their reports over HTTP (DESIGN.md "Load report"). */
export const REPORTS_PATH = "/v1/reports";

const NO_BODY = Buffer.alloc(0);
const JSON_TYPE = "application/json; charset=utf-8";

/** Whether `req` is a push: POST /v1/reports, with or without a query string. */
export function isReportPush(req: IncomingMessage): boolean {
  if (req.method !== "POST") return false;
  const url = req.url;
  if (url === REPORTS_PATH) return true;
  return (
    url !== undefined &&
    url.length > REPORTS_PATH.length &&
    url.charCodeAt(REPORTS_PATH.length) === 0x3f /* ? */ &&
    url.startsWith(REPORTS_PATH)
  );
}

export interface HttpPushHandlerOptions {
  readonly intake: PushIntake;
  readonly bodyLimitBytes: number;
}

/**
 * POST /v1/reports on Node's own request and response, ahead of fastify's router: pushes come
 * hundreds a second (100 proxies at 5 a second), and fastify's per-request work (request and
 * reply objects, a child logger, hooks, the content-type parser's copy of the body) cost more
 * than the push itself (bench/monitor/ingest.ts). The wire is as DESIGN.md has it: the signed
 * body in, 204 for a report taken, or the refusal's 4xx with `{"error", "reason"}` — the same
 * answers the fastify route gave, 413 included for a body over the limit.
 */
export function httpPushHandler(
  options: HttpPushHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { intake, bodyLimitBytes } = options;
  const tooLarge = (res: ServerResponse): void =>
    answer(res, intake.refuseTooLarge("http", `over ${bodyLimitBytes} bytes`));
  return (req, res) => {
    // Refused before a byte of the body is read; Node discards what is still coming.
    if (Number(req.headers["content-length"]) > bodyLimitBytes) {
      tooLarge(res);
      return;
    }
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let length = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      if (over) return;
      length += chunk.length;
      if (length > bodyLimitBytes) {
        // A chunked body that runs past the limit.
        over = true;
        first = more = undefined;
        tooLarge(res);
      } else if (first === undefined) {
        first = chunk;
      } else {
        (more ??= [first]).push(chunk);
      }
    });
    req.on("end", () => {
      if (over) return;
      // The body is read once, here, and not kept: a chunk of the socket's buffer will do.
      const body = more !== undefined ? Buffer.concat(more, length) : (first ?? NO_BODY);
      const header = req.headers[SIGNATURE_HEADER];
      const signature = typeof header === "string" ? parseSignatureHeader(header) : undefined;
      answer(
        res,
        signature === undefined
          ? intake.refuseUnsigned("http", `no valid ${SIGNATURE_HEADER} header`)
          : intake.take(body, signature.keyId, signature.sig, "http"),
      );
    });
    // The client went away mid-body: there is no one to answer.
    req.on("error", () => res.destroy());
  };
}

function answer(res: ServerResponse, outcome: PushOutcome): void {
  if (outcome.ok) {
    res.writeHead(204).end();
    return;
  }
  const body = JSON.stringify({ error: outcome.detail, reason: outcome.reason });
  res
    .writeHead(outcome.status, {
      "content-type": JSON_TYPE,
      "content-length": Buffer.byteLength(body),
    })
    .end(body);
}
