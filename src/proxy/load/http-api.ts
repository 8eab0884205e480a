import { timingSafeEqual } from "node:crypto";
import type { ServerResponse } from "node:http";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Registry } from "prom-client";
import type { LoadReport } from "../../contracts/index.js";
import type { Logger } from "../../sip/index.js";
import type { LoadReporter } from "./load-reporter.js";

export interface ProxyHttpOptions {
  readonly reporter: LoadReporter;
  readonly metrics: Registry;
  readonly adminToken: string | undefined;
  readonly drain: () => void;
  readonly undrain: () => void;
  /** Serving: started, not draining, store reachable. */
  readonly ready: () => boolean;
  readonly log: Logger;
}

/**
 * The proxy's HTTP side (DESIGN.md): GET /load (one report), GET /load/stream (Server-Sent
 * Events, a report each interval), GET /metrics (Prometheus), POST /admin/drain and
 * /admin/undrain (bearer token), GET /healthz (alive) and /readyz (serving).
 */
export function proxyHttpApi(options: ProxyHttpOptions): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: options.log.child({ component: "proxy-http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });

  app.get("/load", async () => options.reporter.make());

  // Held streams are never idle: end them before close(), or it waits for every monitor.
  const streams = new Set<ServerResponse>();
  app.addHook("preClose", async () => {
    for (const res of streams) res.end();
  });

  app.get("/load/stream", (request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const send = (report: LoadReport) => res.write(`data: ${JSON.stringify(report)}\n\n`);
    const last = options.reporter.last;
    if (last !== undefined) send(last);
    options.reporter.on("report", send);
    streams.add(res);
    request.raw.once("close", () => {
      options.reporter.off("report", send);
      streams.delete(res);
    });
  });

  app.get("/metrics", async (_request, reply) => {
    void reply.header("content-type", options.metrics.contentType);
    return options.metrics.metrics();
  });

  const admin = (action: () => void) => async (request: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(request.headers.authorization, options.adminToken)) {
      return reply.code(401).send({ error: "bearer token required" });
    }
    action();
    return { state: options.reporter.make().state };
  };
  app.post("/admin/drain", admin(options.drain));
  app.post("/admin/undrain", admin(options.undrain));

  app.get("/healthz", async () => ({ status: "alive" }));
  app.get("/readyz", async (_request, reply) =>
    options.ready() ? { status: "ready" } : reply.code(503).send({ status: "not ready" }),
  );
  return app;
}

function authorized(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || header === undefined) return false;
  const given = Buffer.from(header.replace(/^Bearer\s+/i, ""));
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
