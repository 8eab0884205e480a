import type { LoadReport } from "../contracts/index.js";
import {
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type Logger,
  type TransportLayer,
} from "../sip/index.js";
import { ProxyEngine, type ProxyEngineDeps } from "./proxy-engine.js";
import { ProxyFront, waitForCallsToEnd } from "./proxy-front.js";
import { parseProxyConfig, type ProxyConfig, type ProxyConfigInput } from "./proxy-config.js";

export type ProxyDeps = Pick<ProxyEngineDeps, "clock" | "logger" | "credentials">;

/**
 * The proxy role in one process: a stateful SIP proxy and registrar (ProxyEngine) with its
 * load reports, metrics and admin (ProxyFront). `start()` opens every socket and timer;
 * `stop()` closes them all. ProxyCluster runs the same on every core.
 */
export class Proxy {
  readonly config: Readonly<ProxyConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #engine: ProxyEngine;
  #front: ProxyFront | undefined;
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  constructor(config: ProxyConfigInput | Readonly<ProxyConfig>, deps: ProxyDeps = {}) {
    this.config = parseProxyConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ role: "proxy", proxy: this.config.id });
    this.#engine = new ProxyEngine(this.config, {
      ...deps,
      clock: this.#clock,
      logger: this.#log,
      onCallsChanged: () => this.#front?.changed(),
      workload: () => this.#front?.workload() ?? 0,
    });
  }

  /** The SIP listeners as bound (after start). */
  get listeners(): readonly BoundListener[] {
    return this.#engine.listeners;
  }

  /** The HTTP API's base URL (after start). */
  get httpUrl(): string {
    if (this.#front === undefined) throw new Error("proxy not started");
    return this.#front.httpUrl;
  }

  get draining(): boolean {
    return this.#engine.draining;
  }

  /** The transport, for tests and the CLI (SIGHUP reloads TLS credentials through it). */
  get transport(): TransportLayer {
    return this.#engine.transport;
  }

  /** Early and confirmed dialogs now. */
  get calls(): number {
    return this.#engine.calls;
  }

  /** A load report made now. */
  report(): LoadReport {
    if (this.#front === undefined) throw new Error("proxy not started");
    return this.#front.report();
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Proxy.start() called twice");
    this.#state = "started";
    try {
      await this.#engine.start();
      const engine = this.#engine;
      this.#front = new ProxyFront({
        config: this.config,
        clock: this.#clock,
        log: this.#log,
        store: engine.store,
        listeners: engine.listeners,
        sources: {
          stats: () => engine.stats(),
          storeHealth: () => engine.storeHealth,
          onDrainChange: (on) => (engine.draining = on),
        },
      });
      await this.#front.start();
      this.#log.info({ listeners: this.listeners, http: this.httpUrl }, "proxy started");
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Re-reads TLS and WSS certificates (SIGHUP). */
  async reloadTlsCredentials(): Promise<void> {
    await this.#engine.transport.reloadTlsCredentials();
  }

  /** New REGISTERs, INVITEs and OPTIONS get 503 + Retry-After; dialogs go on. */
  drain(): void {
    this.#front?.drain();
  }

  undrain(): void {
    this.#front?.undrain();
  }

  /**
   * SIGTERM: drains, waits until the dialogs are over or `timeoutMs` passed, then stops.
   * Resolves with the dialogs still up when it gave up waiting.
   */
  async drainAndStop(timeoutMs = this.config.drainTimeoutMs): Promise<number> {
    this.drain();
    const left = await waitForCallsToEnd(
      this.#clock,
      timeoutMs,
      () => this.calls,
      () => this.#state === "started",
    );
    await this.stop();
    return left;
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    this.#state = "stopping";
    await this.#front?.stop();
    await this.#engine.stop();
    this.#state = "stopped";
    this.#log.info("proxy stopped");
  }
}
