import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Registry } from "prom-client";
import type { Logger } from "../sip/index.js";
import { httpPushHandler, isReportPush } from "./http-push.js";
import type { ProxyAdapter } from "./monitor-config.js";
import type { ProxyTable, ProxyView } from "./proxy-table.js";
import type { PushIntake } from "./push-intake.js";
import type { Relays } from "./relays.js";
import { TRANSPORTS, type Selector, type Transport } from "./selector.js";
import { serveWebPages, type loadWebPages } from "./web-pages.js";

const SELECT_PATH = "/v1/select";
const TRANSPORT_QUERY = "?transport=";

/** Seconds a client waits before asking again when no proxy is eligible. */
export const NO_PROXY_RETRY_AFTER_S = 1;
/** What `GET /v1/select?kind=` may ask for: a proxy (the default) or a media relay. */
export const SELECT_KINDS = ["sip", "media"] as const;
/** An event client that lets this much pile up unread is cut off. */
const MAX_EVENT_BACKLOG_BYTES = 1024 * 1024;

export interface MonitorHttpOptions {
  readonly table: ProxyTable;
  readonly selector: Selector;
  readonly intake: PushIntake;
  readonly metrics: Registry;
  readonly adminToken: string | undefined;
  readonly reportBodyLimitBytes: number;
  readonly maxEventStreams: number;
  /** Started, for /readyz. */
  readonly started: () => boolean;
  /**
   * On-query collection: refreshes old reports before a select is answered, within a bounded
   * wait (never rejects). Absent: selects are answered from what is known.
   */
  readonly freshen?: (transport: Transport) => Promise<void>;
  /** Whether `freshen` would poll anything now; absent: always assumed. */
  readonly needsFreshening?: () => boolean;
  /** A select found no eligible proxy (counted in /metrics). */
  readonly onNoProxy: (transport: Transport) => void;
  /** The media relays (`GET /v1/select?kind=media`, `GET /v1/relays`); none when absent. */
  readonly relays?: Relays;
  /** A media select found no eligible relay (counted in /metrics). */
  readonly onNoRelay?: () => void;
  /** How each proxy's load is collected (its configured adapter); sipsteer when absent. */
  readonly adapterOf?: (id: string) => ProxyAdapter | undefined;
  /** Admin add (body as one entry of the config's `proxies`); throws RangeError on bad input. */
  readonly addProxy: (input: unknown) => Promise<"added" | "known">;
  /** Admin remove; false when unknown. */
  readonly removeProxy: (id: string) => boolean;
  /** The dashboard and phone pages to serve; none when absent. */
  readonly webPages?: ReturnType<typeof loadWebPages>;
  readonly log: Logger;
}

/** One proxy as `GET /v1/proxies` shows it. */
export interface ProxyListing {
  readonly id: string;
  /** How its load is collected: sipsteer (reports), kamailio (JSON-RPC), options (pings). */
  readonly adapter: ProxyAdapter;
  readonly origin: ProxyView["origin"];
  /** `eligible`, or the first reason it is not (down, stale, draining). */
  readonly state: ProxyView["state"];
  readonly eligible: boolean;
  readonly health: ProxyView["health"];
  readonly draining: boolean;
  readonly admin_drained: boolean;
  readonly workload: number | null;
  readonly calls: number | null;
  readonly registrations: number | null;
  /** Since its newest report was accepted. */
  readonly report_age_ms: number | null;
  /** Round trip of its newest answered OPTIONS ping or JSON-RPC poll. */
  readonly latency_ms: number | null;
  /** How its newest report arrived: push, poll, stream, on-query. */
  readonly collection: ProxyView["via"] | null;
  /** For pushes: over http or udp. */
  readonly pushed_over: string | null;
  readonly times_chosen: number;
  readonly reports_accepted: number;
  readonly reports_refused: number;
  readonly boot: string | null;
  readonly seq: number | null;
  readonly uris: Readonly<Record<string, string | undefined>>;
}

function listing(
  view: ProxyView,
  selector: Selector,
  intake: PushIntake,
  adapter: ProxyAdapter,
): ProxyListing {
  const r = view.report;
  return {
    id: view.id,
    adapter,
    origin: view.origin,
    state: view.state,
    eligible: view.eligible,
    health: view.health,
    draining: view.draining,
    admin_drained: view.adminDrained,
    workload: view.workload === undefined ? null : Math.round(view.workload * 10_000) / 10_000,
    calls: r?.calls ?? null,
    registrations: r?.registrations ?? null,
    report_age_ms: view.ageMs === undefined ? null : Math.round(view.ageMs),
    latency_ms: view.latencyMs === undefined ? null : Math.round(view.latencyMs * 10) / 10,
    collection: view.via ?? null,
    pushed_over: view.via === "push" ? (intake.channelOf(view.id) ?? null) : null,
    times_chosen: selector.timesChosen(view.id),
    reports_accepted: view.accepted,
    reports_refused: view.refused,
    boot: r?.boot ?? null,
    seq: r?.seq ?? null,
    uris: r?.uris ?? {},
  };
}

/** The id of an admin add's body, which `addProxy` has validated: a string or `{ id }`. */
function proxyIdOf(body: unknown): string {
  return typeof body === "string" ? body : String((body as { id: unknown }).id);
}

function isTransport(value: string): value is Transport {
  return (TRANSPORTS as readonly string[]).includes(value);
}

/**
 * The monitor's HTTP side (DESIGN.md "Client query", issue 5): GET /v1/select, /v1/proxies,
 * /v1/events (Server-Sent Events), POST /v1/reports (signed pushes), the /v1/admin calls
 * (bearer token), GET /metrics, /healthz and /readyz.
 */
export function monitorHttpApi(options: MonitorHttpOptions): FastifyInstance {
  const { table, selector, intake } = options;
  const list = (view: ProxyView): ProxyListing =>
    listing(view, selector, intake, options.adapterOf?.(view.id) ?? "sipsteer");
  const mustFreshen = (): boolean =>
    options.freshen !== undefined && (options.needsFreshening?.() ?? true);

  /**
   * GET /v1/select in its plain forms, the monitor's hottest request, answered before fastify
   * routes it: fastify's request and reply objects cost about a quarter of the CPU of a select
   * here (38 against 28 µs for a bare fastify route). False leaves the request to the route
   * below, which answers every other form, the 503 and a wait for on-query polls the same way.
   */
  const selectDirectly = (request: IncomingMessage, response: ServerResponse): boolean => {
    const url = request.url;
    if (request.method !== "GET" || url === undefined || !url.startsWith(SELECT_PATH)) {
      return false;
    }
    let transport: string = "udp";
    if (url.length !== SELECT_PATH.length) {
      if (!url.startsWith(TRANSPORT_QUERY, SELECT_PATH.length)) return false;
      transport = url.slice(SELECT_PATH.length + TRANSPORT_QUERY.length);
    }
    if (!isTransport(transport) || mustFreshen()) return false;
    const answer = selector.select(transport);
    if (answer === undefined) return false;
    const body = JSON.stringify(answer);
    response.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "cache-control": "no-store",
      "content-length": Buffer.byteLength(body),
    });
    response.end(body);
    return true;
  };

  // Pushes (POST /v1/reports) and plain selects are answered on the server ahead of fastify
  // (http-push.ts and selectDirectly say why); everything else, and pushes while fastify
  // closes (its 503), go to fastify.
  const push = httpPushHandler({ intake, bodyLimitBytes: options.reportBodyLimitBytes });
  let closing = false;
  const app: FastifyInstance = Fastify({
    loggerInstance: options.log.child({ component: "monitor-http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler, fastifyOptions) => {
      const server = createServer((req, res) => {
        if (!closing && isReportPush(req)) push(req, res);
        else if (closing || !selectDirectly(req, res)) handler(req, res);
      });
      // What fastify sets on a server it makes itself.
      server.keepAliveTimeout = fastifyOptions.keepAliveTimeout as number;
      server.requestTimeout = fastifyOptions.requestTimeout as number;
      server.setTimeout(fastifyOptions.connectionTimeout as number);
      const maxRequests = fastifyOptions.maxRequestsPerSocket as number;
      if (maxRequests > 0) server.maxRequestsPerSocket = maxRequests;
      return server;
    },
  });
  app.addHook("preClose", async () => {
    closing = true;
  });

  app.get("/v1/select", async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as Record<string, unknown>;
    const kind = query.kind ?? "sip";
    if (kind !== "sip") {
      if (kind === "media") return selectRelay(reply);
      return reply.code(400).send({
        error: `kind ${typeof kind === "string" ? JSON.stringify(kind) : "given twice"}: must be one of ${SELECT_KINDS.join(", ")}`,
        reason: "bad-kind",
      });
    }
    const asked = query.transport ?? "udp";
    if (typeof asked !== "string" || !isTransport(asked)) {
      return reply.code(400).send({
        error: `transport must be one of ${TRANSPORTS.join(", ")}`,
        reason: "bad-transport",
      });
    }
    if (mustFreshen()) await options.freshen!(asked);
    const answer = selector.select(asked);
    // Every answer is counted as a client sent: a cache in between would skew the correction.
    void reply.header("cache-control", "no-store");
    if (answer === undefined) {
      options.onNoProxy(asked);
      return reply
        .code(503)
        .header("retry-after", String(NO_PROXY_RETRY_AFTER_S))
        .send({ error: `no eligible proxy for ${asked}` });
    }
    return answer;
  });

  /** kind=media: a relay for one new call; `transport` is not read (a relay is not SIP). */
  const selectRelay = (reply: FastifyReply) => {
    const answer = options.relays?.select();
    void reply.header("cache-control", "no-store");
    if (answer === undefined) {
      options.onNoRelay?.();
      return reply
        .code(503)
        .header("retry-after", String(NO_PROXY_RETRY_AFTER_S))
        .send({ error: "no eligible media relay", reason: "no-relay" });
    }
    return answer;
  };

  app.get("/v1/proxies", async () => ({
    proxies: table.list().map(list),
  }));

  app.get("/v1/relays", async () => ({
    relays: options.relays?.list() ?? [],
  }));

  // Held streams are never idle: end them before close(), or it waits for every client.
  const streams = new Set<ServerResponse>();
  app.addHook("preClose", async () => {
    for (const res of streams) res.end();
  });

  app.get("/v1/events", (request: FastifyRequest, reply: FastifyReply) => {
    if (streams.size >= options.maxEventStreams) {
      return reply.code(503).header("retry-after", "5").send({ error: "too many event streams" });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    res.write(": sipsteer monitor events\n\n");
    const send = (event: string, data: unknown): void => {
      // A client that stops reading is cut off rather than buffered without end.
      if (res.writableLength > MAX_EVENT_BACKLOG_BYTES) {
        res.destroy();
        return;
      }
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const onState = (e: unknown): void => send("state", e);
    const onReport = (e: unknown): void => send("report", e);
    table.on("state", onState);
    table.on("report", onReport);
    streams.add(res);
    res.once("close", () => {
      table.off("state", onState);
      table.off("report", onReport);
      streams.delete(res);
    });
    return reply;
  });

  const admin =
    (action: (request: FastifyRequest, reply: FastifyReply) => unknown) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      if (!authorized(request.headers.authorization, options.adminToken)) {
        return reply.code(401).send({ error: "bearer token required", reason: "unauthorized" });
      }
      return action(request, reply);
    };
  const idOf = (request: FastifyRequest): string => (request.params as { id: string }).id;
  const notFound = (reply: FastifyReply, id: string) =>
    reply.code(404).send({ error: `no proxy ${id}`, reason: "unknown-proxy" });

  app.post(
    "/v1/admin/proxies/:id/drain",
    admin((request, reply) => {
      const id = idOf(request);
      if (!table.drain(id)) return notFound(reply, id);
      return list(table.view(id)!);
    }),
  );
  app.post(
    "/v1/admin/proxies/:id/undrain",
    admin((request, reply) => {
      const id = idOf(request);
      if (!table.undrain(id)) return notFound(reply, id);
      return list(table.view(id)!);
    }),
  );
  app.post(
    "/v1/admin/proxies",
    admin(async (request, reply) => {
      let outcome: "added" | "known";
      try {
        outcome = await options.addProxy(request.body);
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        return reply.code(400).send({ error: e.message, reason: "bad-request" });
      }
      const id = proxyIdOf(request.body);
      if (outcome === "known") {
        return reply.code(409).send({ error: `${id} is known`, reason: "known-proxy" });
      }
      return reply.code(201).send(list(table.view(id)!));
    }),
  );
  app.delete(
    "/v1/admin/proxies/:id",
    admin((request, reply) => {
      const id = idOf(request);
      if (!options.removeProxy(id)) return notFound(reply, id);
      return reply.code(204).send();
    }),
  );

  app.get("/metrics", async (_request, reply) => {
    void reply.header("content-type", options.metrics.contentType);
    return options.metrics.metrics();
  });

  if (options.webPages !== undefined) serveWebPages(app, options.webPages);

  app.get("/healthz", async () => ({ status: "alive" }));
  app.get("/readyz", async (_request, reply) =>
    options.started() && table.eligible().length > 0
      ? { status: "ready" }
      : reply.code(503).send({ status: "not ready" }),
  );
  return app;
}

/**
 * Bearer check in constant time; no token configured refuses everyone. Digests are compared,
 * so that not even the token's length shows in the timing.
 */
function authorized(header: string | undefined, token: string | undefined): boolean {
  if (token === undefined || header === undefined) return false;
  const match = /^Bearer\s+(.+)$/i.exec(header);
  if (match === null) return false;
  const digest = (s: string): Buffer => createHash("sha256").update(s).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}
