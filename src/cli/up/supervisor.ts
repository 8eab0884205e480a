import { setTimeout as sleep } from "node:timers/promises";
import type { UpInfo } from "../../contracts/index.js";
import {
  monitorConfigOf,
  proxyConfigOf,
  relaysConfigOf,
  writeMonitorConfig,
  writeProxyConfig,
  writeRelaysConfig,
} from "./child-configs.js";
import type { PreparedData } from "./data-folder.js";
import type { UpPlan } from "./plan.js";
import { RoleProcess } from "./role-process.js";
import type { UpConfig } from "./up-config.js";
import {
  buildUpInfo,
  monitorLineSchema,
  proxyLineSchema,
  readLine,
  relaysLineSchema,
  type ProxyLine,
  type RelaysLine,
} from "./up-output.js";

/** How often the monitor is asked whether every proxy is eligible yet. */
const ELIGIBLE_POLL_MS = 100;
const ELIGIBLE_REQUEST_TIMEOUT_MS = 2_000;

/** A child stopped while it should have run: up stops everything and exits non-zero. */
export class ChildFailedError extends Error {
  override readonly name = "ChildFailedError";
  constructor(
    readonly role: string,
    message: string,
  ) {
    super(message);
  }
}

/** start() was cut short by stop(). */
export class StopRequestedError extends Error {
  override readonly name = "StopRequestedError";
}

export interface SupervisorOptions {
  readonly config: Readonly<UpConfig>;
  readonly plan: UpPlan;
  readonly data: PreparedData;
  /** A warning or error of a child, prefixed with its role, for up's stderr. */
  readonly echo: (line: string) => void;
  /** The rtpengine binary, found; needed when the plan has relays. */
  readonly relayBinary?: string;
}

interface ProxyListingBody {
  proxies?: { id?: unknown; eligible?: unknown; state?: unknown }[];
}

/**
 * The children of `sipsteer up`: the media relays (one keeper process, `sipsteer relays`,
 * running an rtpengine per proxy) and the monitor first, side by side (the proxies need the
 * monitor's HTTP address to push to, and a relay to use), then every proxy, then a wait until
 * the monitor has every proxy eligible. `failed` settles when a child stops unasked (a relay
 * that stops makes its keeper exit); `stop()` stops the proxies, then the monitor, then the
 * relays, each with SIGTERM and SIGKILL after `stopTimeoutMs`.
 */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #abort = new AbortController();
  #monitor: RoleProcess | undefined;
  #relays: RoleProcess | undefined;
  readonly #proxies: RoleProcess[] = [];
  #state: "new" | "starting" | "running" | "stopping" | "stopped" = "new";
  #stopped: Promise<string[]> | undefined;
  #reportFailure: (e: ChildFailedError) => void = () => undefined;
  /** Settles with the first child that stopped unasked (never rejects). */
  readonly failed: Promise<ChildFailedError>;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.failed = new Promise((resolve) => (this.#reportFailure = resolve));
  }

  async start(): Promise<UpInfo> {
    if (this.#state !== "new") throw new Error("Supervisor.start() called twice");
    this.#state = "starting";
    const { config, plan, data } = this.#options;
    const deadline = setTimeout(
      () => this.#abort.abort(new Error(`not ready within ${config.readyTimeoutMs} ms`)),
      config.readyTimeoutMs,
    );
    try {
      let relaysServing: Promise<Record<string, unknown> | undefined> = Promise.resolve(undefined);
      if (plan.relays.length > 0) {
        const binary = this.#options.relayBinary;
        if (binary === undefined) throw new Error("Supervisor: relays planned without a binary");
        writeRelaysConfig(data.files.relaysConfig, relaysConfigOf(plan, data, config, binary));
        this.#relays = this.#spawn("relays", ["relays", "-c", data.files.relaysConfig]);
        relaysServing = this.#relays.serving;
      }
      writeMonitorConfig(data.files.monitorConfig, monitorConfigOf(plan, data, config));
      this.#monitor = this.#spawn("monitor", ["monitor", "-c", data.files.monitorConfig]);
      const [monitorLine, relaysLine] = await this.#during(
        Promise.all([this.#monitor.serving, relaysServing]),
      );
      const monitor = readLine(monitorLineSchema, monitorLine, "the monitor");
      const relays: RelaysLine["relays"] =
        relaysLine === undefined ? [] : readLine(relaysLineSchema, relaysLine, "the relays").relays;

      // stop() may have come while the line was on its way: spawn nothing after it.
      this.#abort.signal.throwIfAborted();
      for (const proxy of plan.proxies) {
        const file = data.files.proxyConfig(proxy.id);
        writeProxyConfig(file, proxyConfigOf(plan, proxy, data, config, monitor.monitor.http));
        this.#proxies.push(this.#spawn(proxy.id, ["proxy", "-c", file]));
      }
      const lines = await this.#during(Promise.all(this.#proxies.map((p) => p.serving)));
      const proxies: ProxyLine[] = lines.map((line, i) =>
        readLine(proxyLineSchema, line, plan.proxies[i]!.id),
      );
      await this.#during(this.#allEligible(monitor.monitor.http));
      this.#state = "running";
      return buildUpInfo({ plan, data, monitor, proxies, relays });
    } finally {
      clearTimeout(deadline);
    }
  }

  #spawn(name: string, args: string[]): RoleProcess {
    const child = new RoleProcess({
      name,
      args: [...args, "--json", "--log-level", this.#options.config.logLevel],
      logFile: this.#options.data.files.log(name),
      echo: this.#options.echo,
    });
    void child.exited.then((exit) => {
      if (this.#state === "stopping" || this.#state === "stopped") return;
      const failure = new ChildFailedError(name, child.failureReport(exit));
      this.#abort.abort(failure);
      this.#reportFailure(failure);
    });
    return child;
  }

  /** `promise`, or the reason start() must give up: a child failed, stop(), the deadline. */
  #during<T>(promise: Promise<T>): Promise<T> {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(signal.reason as Error);
      signal.addEventListener("abort", onAbort, { once: true });
      promise.then(
        (value) => {
          signal.removeEventListener("abort", onAbort);
          resolve(value);
        },
        (e: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Polls the monitor's GET /v1/proxies until every planned proxy is eligible there. */
  async #allEligible(monitorHttp: string): Promise<void> {
    const ids = this.#options.plan.proxies.map((p) => p.id);
    const signal = this.#abort.signal;
    let last = "no answer yet";
    const onAbort = () => {
      // The deadline's message says where the proxies stood.
      if (signal.reason instanceof Error && signal.reason.message.startsWith("not ready")) {
        signal.reason.message += `: proxies at the monitor: ${last}`;
      }
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        try {
          const res = await fetch(`${monitorHttp}/v1/proxies`, {
            signal: AbortSignal.any([signal, AbortSignal.timeout(ELIGIBLE_REQUEST_TIMEOUT_MS)]),
          });
          const body = (await res.json()) as ProxyListingBody;
          const states = new Map((body.proxies ?? []).map((p) => [p.id, p]));
          last = ids.map((id) => `${id} ${String(states.get(id)?.state ?? "unknown")}`).join(", ");
          if (ids.every((id) => states.get(id)?.eligible === true)) return;
        } catch (e) {
          if (signal.aborted) break;
          last = `GET /v1/proxies failed: ${(e as Error).message}`;
        }
        await sleep(ELIGIBLE_POLL_MS, undefined, { signal }).catch(() => undefined);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Stops every child: the proxies first (they drain and stop pushing), then the monitor, then
   * the relays (which the other two use). Resolves with the names of those that had to be
   * killed. Idempotent.
   */
  stop(): Promise<string[]> {
    this.#stopped ??= this.#stopAll();
    return this.#stopped;
  }

  async #stopAll(): Promise<string[]> {
    this.#state = "stopping";
    if (!this.#abort.signal.aborted) this.#abort.abort(new StopRequestedError("stopped"));
    const timeout = this.#options.config.stopTimeoutMs;
    const killed: string[] = [];
    const proxies = await Promise.all(this.#proxies.map((p) => p.stop(timeout)));
    proxies.forEach((exit, i) => exit.killed && killed.push(this.#proxies[i]!.name));
    if (this.#monitor !== undefined && (await this.#monitor.stop(timeout)).killed)
      killed.push("monitor");
    if (this.#relays !== undefined) {
      if ((await this.#relays.stop(timeout)).killed) killed.push("relays");
      // A keeper that was killed leaves its rtpengines behind (they outlive their parent).
      this.#killRelayGroup();
    }
    this.#state = "stopped";
    return killed;
  }

  /**
   * SIGKILL to whatever is left of the keeper's process group: its rtpengines share it (the
   * keeper is detached, a group of its own, and does not detach them). Nothing when the group
   * is empty, as after a clean stop.
   */
  #killRelayGroup(): void {
    const pid = this.#relays?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // ESRCH: no process left in the group.
    }
  }

  /** SIGKILL to every child at once (a second Ctrl-C). */
  kill(): void {
    this.#monitor?.kill();
    for (const p of this.#proxies) p.kill();
    this.#killRelayGroup();
  }
}
