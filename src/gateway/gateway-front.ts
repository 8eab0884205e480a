import { isIP } from "node:net";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "../sip/index.js";
import { GatewayMetrics, refusalsOf, type GatewayRefusalReason } from "./gateway-metrics.js";
import type { GatewayStatus } from "./gateway-status.js";

export interface GatewayFrontOptions {
  readonly id: string;
  /** Port 0: a free port (read `httpUrl` after start). */
  readonly listen: { readonly host: string; readonly port: number };
  /** Read at each /readyz, /status and /metrics request. */
  readonly status: () => GatewayStatus;
  readonly log: Logger;
}

/** `GET /status`: the gateway's status, and every refusal reason in one place. */
export interface GatewayStatusBody extends GatewayStatus {
  readonly refused: Readonly<Record<GatewayRefusalReason, number>>;
}

/**
 * The gateway's HTTP side (issue 9): `GET /healthz` (alive), `GET /readyz` (200 when the
 * status says ready, else 503), `GET /status` (JSON: admitted and refused requests by reason,
 * registrations and dialogs through it) and `GET /metrics` (Prometheus).
 */
export class GatewayFront {
  readonly #o: GatewayFrontOptions;
  readonly #metrics: GatewayMetrics;
  #http: FastifyInstance | undefined;
  #url: string | undefined;

  constructor(options: GatewayFrontOptions) {
    this.#o = options;
    this.#metrics = new GatewayMetrics(options.id, options.status);
  }

  get httpUrl(): string {
    if (this.#url === undefined) throw new Error("gateway HTTP front not started");
    return this.#url;
  }

  async start(): Promise<void> {
    if (this.#http !== undefined) throw new Error("gateway HTTP front already started");
    const app = this.#app();
    this.#http = app;
    try {
      await app.listen({ host: this.#o.listen.host, port: this.#o.listen.port });
    } catch (e) {
      this.#http = undefined;
      await app.close();
      throw e;
    }
    const bound = app.server.address();
    if (bound === null || typeof bound === "string") throw new Error("HTTP server did not bind");
    this.#url = `http://${isIP(bound.address) === 6 ? `[${bound.address}]` : bound.address}:${bound.port}`;
    this.#o.log.info({ url: this.#url }, "gateway HTTP front started");
  }

  /** Closes the listener and its connections (idempotent). */
  async stop(): Promise<void> {
    const app = this.#http;
    this.#http = undefined;
    this.#url = undefined;
    await app?.close();
  }

  #app(): FastifyInstance {
    const { status } = this.#o;
    const app: FastifyInstance = Fastify({
      loggerInstance: this.#o.log.child({
        component: "gateway-http",
        gateway: this.#o.id,
      }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
    });
    app.get("/healthz", async () => ({ ok: true }));
    app.get("/readyz", async (_request, reply) =>
      status().ready ? { ready: true } : reply.code(503).send({ ready: false }),
    );
    app.get("/status", async (): Promise<GatewayStatusBody> => {
      const now = status();
      return { ...now, refused: refusalsOf(now) };
    });
    app.get("/metrics", async (_request, reply) => {
      void reply.header("content-type", this.#metrics.contentType);
      return this.#metrics.scrape();
    });
    return app;
  }
}
