// What every part of npm run bench:monitor shares: the process helpers of bench/processes.ts
// (re-exported here), pinning with taskset, the monitor as a `sipsteer monitor` child, and
// the monitor's API as the parts read it.
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { SigningKey } from "../../src/contracts/index.js";
import {
  firstJsonLine,
  have,
  launch,
  removeDir,
  sleep,
  stopGroup,
  tail,
  tempDir,
} from "../processes.js";

export {
  cpuSeconds,
  exited,
  firstJsonLine,
  have,
  launch,
  lines,
  median,
  reapAll,
  removeDir,
  running,
  sleep,
  stopGroup,
  tail,
  tempDir,
  waitQuiet,
} from "../processes.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project root (dist/bench/monitor → three up). */
export const ROOT = join(HERE, "..", "..", "..");
export const CLI = join(ROOT, "dist", "src", "cli", "main.js");
export const DOMAIN = "sipsteer.test";
export const LOOPBACK = ["127.0.0.0/8", "::1/128"];
export const KEY: SigningKey = { id: "bench", secret: "a-shared-bench-report-secret" };

/**
 * Servers on CPU 1, load generators on CPU 0, as bench/udp.ts does: each side gets one core of
 * the two, and the reference gets the same. BENCH_PIN=0 runs everything unpinned.
 */
export const PIN = process.env.BENCH_PIN !== "0" && have("taskset") && availableParallelism() >= 2;
export const SERVER_CPU = PIN ? 1 : undefined;
export const LOAD_CPU = PIN ? 0 : undefined;

// ---- the monitor ----

/** A `sipsteer monitor` child and what its --json line said. */
export interface MonitorProcess {
  readonly process: ChildProcess;
  readonly http: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

/**
 * Starts `sipsteer monitor --config <file> --json --log-level warn` with `config` (the
 * monitor's config as an object), pinned to `cpu` when given; resolves once it is serving.
 */
export async function startMonitor(
  config: Record<string, unknown>,
  cpu: number | undefined,
): Promise<MonitorProcess> {
  const work = tempDir("sipsteer-bench-monitor-");
  const file = join(work, "monitor.yaml");
  writeFileSync(file, stringify(config));
  // warn: per-request logging would cost any server dearly.
  const child = launch(
    process.execPath,
    [CLI, "monitor", "--config", file, "--json", "--log-level", "warn"],
    { cpu },
  );
  const log = tail(child.stderr);
  const stop = async () => {
    await stopGroup(child, "SIGTERM", 5000);
    removeDir(work);
  };
  try {
    const info = await firstJsonLine(child, 20_000, log);
    const monitor = info.monitor as { http: string };
    return { process: child, http: monitor.http, log, stop };
  } catch (e) {
    await stop();
    throw new Error(`the monitor did not start: ${(e as Error).message}`, { cause: e });
  }
}

/** GET `url` as JSON (throws on a non-2xx answer). */
export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Polls `check` every 50 ms until it returns a value, or throws after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(50);
  }
}

/** One proxy as `GET /v1/proxies` lists it (the fields the bench reads). */
export interface ListedProxy {
  readonly id: string;
  readonly eligible: boolean;
}

export async function listProxies(http: string): Promise<ListedProxy[]> {
  return (await getJson<{ proxies: ListedProxy[] }>(`${http}/v1/proxies`)).proxies;
}

/** Resolves when `count` proxies are eligible at the monitor's /v1/proxies. */
export async function waitEligible(http: string, count: number, timeoutMs = 15_000) {
  await eventually(
    async () =>
      (await listProxies(http)).filter((p) => p.eligible).length >= count ? true : undefined,
    timeoutMs,
    `${count} eligible proxies at ${http}`,
  );
}
