import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LoadReport } from "../../contracts/index.js";
import {
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type ClockTimer,
  type Logger,
} from "../../sip/index.js";
import { RedisLocationStore } from "../location-store/redis-store.js";
import { SqliteLocationStore } from "../location-store/sqlite-store.js";
import type { LocationStore, StoreHealth } from "../location-store/types.js";
import { sumStats } from "../load/proxy-metrics.js";
import type { EngineStats } from "../proxy-engine.js";
import { ProxyFront, waitForCallsToEnd } from "../proxy-front.js";
import { parseProxyConfig, type ProxyConfig, type ProxyConfigInput } from "../proxy-config.js";
import type { FromWorker, ToWorker } from "./messages.js";

export interface ProxyClusterDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** The workers' pino level (they log to stderr). */
  readonly workerLogLevel?: string;
}

/** A worker must say it serves within this time. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** A worker that dies is started again after this long. */
const RESTART_DELAY_MS = 1000;
/** V8 semi-space of each worker, in MB (see workerExecArgv). */
const WORKER_SEMI_SPACE_MB = 64;
/** The workers are told the workload this often (their OPTIONS answers carry it). */
const WORKLOAD_EVERY_MS = 250;

interface Slot {
  worker: Worker | undefined;
  busPort: number;
  stats: EngineStats | undefined;
  elu: number;
  cpu: number;
  storeHealth: StoreHealth;
}

/** The number of processes `workers` asks for ("auto": one per core). */
export function workerCount(config: Readonly<ProxyConfig>): number {
  return config.workers === "auto" ? availableParallelism() : config.workers;
}

/**
 * The proxy role on every core: `workers` processes (node:cluster) share the UDP sockets,
 * process 0 holds the stream listeners (TCP, TLS, WS), and each message is handled by the
 * process that owns its transaction (steering.ts; a message that arrives elsewhere is handed
 * over on a loopback bus). This primary process runs no SIP: it starts and restarts the
 * workers, and serves the load reports, metrics and admin of the whole proxy.
 */
export class ProxyCluster {
  readonly config: Readonly<ProxyConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #workerLogLevel: string;
  readonly #count: number;
  readonly #slots: Slot[];
  #startConfig: ProxyConfig | undefined;
  /** Each worker's own UDP port beside each UDP listener. */
  #ownPorts: number[][] = [];
  #listeners: readonly BoundListener[] = [];
  #busSecret = randomBytes(16).toString("hex");
  #nonceSecret = randomBytes(32).toString("hex");
  #store: LocationStore | undefined;
  #front: ProxyFront | undefined;
  #tempDir: string | undefined;
  #workloadTimer: ClockTimer | undefined;
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  constructor(config: ProxyConfigInput | Readonly<ProxyConfig>, deps: ProxyClusterDeps = {}) {
    this.config = parseProxyConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ role: "proxy", proxy: this.config.id });
    this.#workerLogLevel = deps.workerLogLevel ?? "warn";
    this.#count = workerCount(this.config);
    this.#slots = Array.from({ length: this.#count }, () => ({
      worker: undefined,
      busPort: 0,
      stats: undefined,
      elu: 0,
      cpu: 0,
      storeHealth: "ok" as StoreHealth,
    }));
  }

  get workers(): number {
    return this.#count;
  }

  get listeners(): readonly BoundListener[] {
    return this.#listeners;
  }

  get httpUrl(): string {
    if (this.#front === undefined) throw new Error("proxy not started");
    return this.#front.httpUrl;
  }

  get draining(): boolean {
    return this.#front?.draining ?? false;
  }

  get calls(): number {
    return this.#stats().calls;
  }

  /** The process ids of the workers (for tests and operators). */
  get workerPids(): number[] {
    return this.#slots.map((s) => s.worker?.process.pid ?? 0);
  }

  /** Each worker's own UDP ports (one beside each UDP listener), by worker index. */
  get workerPorts(): readonly (readonly number[])[] {
    return this.#ownPorts;
  }

  /** Each worker's latest figures (sent every 100 ms; undefined before the first). */
  workerStats(): readonly (EngineStats | undefined)[] {
    return this.#slots.map((s) => s.stats);
  }

  report(): LoadReport {
    if (this.#front === undefined) throw new Error("proxy not started");
    return this.#front.report();
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("ProxyCluster.start() called twice");
    this.#state = "started";
    try {
      this.#startConfig = await this.#prepare();
      cluster.setupPrimary({
        exec: fileURLToPath(new URL("./worker-main.js", import.meta.url)),
        args: [],
        execArgv: workerExecArgv(process.execArgv),
      });
      // Process 0 first: it binds the stream listeners, whose ports the others then use.
      this.#listeners = await this.#startWorker(0);
      this.#startConfig = { ...this.#startConfig, listen: this.#resolvedListen(this.#listeners) };
      await Promise.all(this.#slots.slice(1).map((_, i) => this.#startWorker(i + 1)));
      this.#broadcastPeers();

      const c = this.#startConfig;
      this.#store =
        c.store.kind === "sqlite"
          ? new SqliteLocationStore(c.store.file)
          : new RedisLocationStore({ url: c.store.url, prefix: c.store.prefix });
      await this.#store.start();
      const store = this.#store;
      this.#front = new ProxyFront({
        config: this.config,
        clock: this.#clock,
        log: this.#log,
        store,
        listeners: this.#listeners,
        sources: {
          stats: () => this.#stats(),
          storeHealth: () =>
            worstHealth([store.health(), ...this.#slots.map((s) => s.storeHealth)]),
          elu: () => this.#slots.reduce((n, s) => n + s.elu, 0) / this.#count,
          cpu: () => this.#slots.reduce((n, s) => n + s.cpu, 0),
          onDrainChange: (on) => this.#broadcast({ type: "drain", on }),
        },
      });
      await this.#front.start();
      this.#scheduleWorkload();
      this.#log.info(
        { workers: this.#count, listeners: this.#listeners, http: this.httpUrl },
        "proxy started",
      );
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  drain(): void {
    this.#front?.drain();
  }

  /** Re-reads TLS and WSS certificates (SIGHUP): the stream listeners are process 0's. */
  async reloadTlsCredentials(): Promise<void> {
    this.#broadcast({ type: "reloadTls" });
  }

  undrain(): void {
    this.#front?.undrain();
  }

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
    if (this.#workloadTimer !== undefined) this.#clock.clearTimeout(this.#workloadTimer);
    this.#workloadTimer = undefined;
    await this.#front?.stop();
    await Promise.all(this.#slots.map((slot) => this.#stopWorker(slot)));
    await this.#store?.stop();
    if (this.#tempDir !== undefined) rmSync(this.#tempDir, { recursive: true, force: true });
    this.#state = "stopped";
    this.#log.info("proxy stopped");
  }

  /** The config the workers get: UDP ports chosen, a store file they can share, secrets. */
  async #prepare(): Promise<ProxyConfig> {
    const c = this.config;
    const listen = [];
    for (const l of c.listen) {
      // Every worker binds the same UDP address and port (the primary shares one socket), so
      // "any port" must be chosen once, here.
      listen.push(
        l.protocol === "udp" && l.port === 0 ? { ...l, port: await freeUdpPort(l.address) } : l,
      );
    }
    const udp = listen.filter((l) => l.protocol === "udp");
    for (let k = 0; k < this.#count; k++) {
      const ports: number[] = [];
      for (const [i, l] of udp.entries()) {
        ports.push(
          c.workerPortBase === undefined
            ? await freeUdpPort(l.address)
            : c.workerPortBase + i * this.#count + k,
        );
      }
      this.#ownPorts.push(ports);
    }
    let store = c.store;
    if (store.kind === "sqlite" && store.file === ":memory:") {
      this.#tempDir = mkdtempSync(join(tmpdir(), "sipsteer-proxy-"));
      store = { kind: "sqlite", file: join(this.#tempDir, "location.sqlite") };
    }
    return {
      ...c,
      listen,
      store,
      flowTokenSecret: c.flowTokenSecret ?? randomBytes(24).toString("hex"),
    };
  }

  /** The listen list with the ports process 0 bound (same order as configured). */
  #resolvedListen(bound: readonly BoundListener[]): ProxyConfig["listen"] {
    return this.#startConfig!.listen.map((l, i) => ({ ...l, port: bound[i]?.port ?? l.port }));
  }

  #startWorker(index: number): Promise<readonly BoundListener[]> {
    const slot = this.#slots[index]!;
    const worker = cluster.fork({ SIPSTEER_PROXY_WORKER: String(index) });
    slot.worker = worker;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        worker.kill("SIGKILL");
        reject(
          new Error(`proxy worker ${index} did not start within ${WORKER_START_TIMEOUT_MS} ms`),
        );
      }, WORKER_START_TIMEOUT_MS);
      const start: ToWorker = {
        type: "start",
        index,
        count: this.#count,
        config: this.#startConfig!,
        busSecret: this.#busSecret,
        nonceSecret: this.#nonceSecret,
        ownsStreams: index === 0,
        ownUdpPorts: this.#ownPorts[index] ?? [],
        otherPorts: this.#ownPorts.flatMap((ports, k) => (k === index ? [] : ports)),
        logLevel: this.#workerLogLevel,
      };
      worker.on("message", (m: FromWorker) => {
        if (m.type === "ready") {
          worker.send(start);
        } else if (m.type === "started") {
          clearTimeout(timer);
          slot.busPort = m.busPort;
          // A worker started again while the proxy drains drains too.
          if (this.draining) worker.send({ type: "drain", on: true } satisfies ToWorker);
          resolve(m.listeners);
        } else if (m.type === "failed") {
          clearTimeout(timer);
          reject(new Error(`proxy worker ${index}: ${m.error}`));
        } else if (m.type === "stats") {
          slot.stats = m.stats;
          slot.elu = m.elu;
          slot.cpu = m.cpu;
          slot.storeHealth = m.storeHealth;
          this.#front?.changed();
        }
      });
      worker.once("exit", (code, signal) => {
        clearTimeout(timer);
        slot.worker = undefined;
        slot.busPort = 0;
        slot.stats = undefined;
        if (this.#state !== "started") return;
        reject(new Error(`proxy worker ${index} exited (${signal ?? code})`));
        this.#log.error({ worker: index, code, signal }, "proxy worker died; starting it again");
        this.#broadcastPeers();
        this.#clock.setTimeout(() => {
          if (this.#state !== "started") return;
          this.#startWorker(index).then(
            () => this.#broadcastPeers(),
            (e: unknown) =>
              this.#log.error({ err: e, worker: index }, "proxy worker restart failed"),
          );
        }, RESTART_DELAY_MS);
      });
    });
  }

  async #stopWorker(slot: Slot): Promise<void> {
    const worker = slot.worker;
    if (worker === undefined || worker.isDead()) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    const kill = setTimeout(() => worker.kill("SIGKILL"), 5000);
    if (worker.isConnected()) worker.send({ type: "stop" } satisfies ToWorker);
    else worker.kill("SIGKILL");
    await exited;
    clearTimeout(kill);
  }

  #broadcast(message: ToWorker): void {
    for (const slot of this.#slots) {
      if (slot.worker?.isConnected() === true) slot.worker.send(message);
    }
  }

  #broadcastPeers(): void {
    this.#broadcast({ type: "peers", busPorts: this.#slots.map((s) => s.busPort) });
  }

  #scheduleWorkload(): void {
    this.#workloadTimer = this.#clock.setTimeout(() => {
      this.#broadcast({ type: "workload", value: this.#front?.workload() ?? 0 });
      if (this.#state === "started") this.#scheduleWorkload();
    }, WORKLOAD_EVERY_MS);
  }

  #stats(): EngineStats {
    return sumStats(this.#slots.flatMap((s) => (s.stats === undefined ? [] : [s.stats])));
  }
}

/**
 * The workers' Node options: ours, plus a young generation sized for a proxy. Each call
 * allocates a few KB that live 32 s (its transactions) among much that dies at once; V8's
 * default 16 MB semi-spaces promote too much of the latter and collect too often (64 MB cut
 * the CPU per call by ~9% at 3,000 calls/s here). An operator's own setting wins.
 */
export function workerExecArgv(
  own: readonly string[],
  nodeOptions = process.env.NODE_OPTIONS ?? "",
): string[] {
  const given = [...own, ...nodeOptions.split(/\s+/)].some((a) =>
    a.startsWith("--max-semi-space-size"),
  );
  return given ? [...own] : [...own, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

function worstHealth(all: readonly StoreHealth[]): StoreHealth {
  return all.includes("down") ? "down" : all.includes("degraded") ? "degraded" : "ok";
}

/** A UDP port free on `address` now (bound, read, released). */
async function freeUdpPort(address: string): Promise<number> {
  const socket = createSocket(address.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, address, () => resolve());
  });
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}
