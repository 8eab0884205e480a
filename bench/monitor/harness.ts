// What every part of npm run bench:monitor shares: child processes in process groups of their
// own (so that Kamailio's and NSD's workers go with them), reaped on every way out; CPU time
// from /proc; pinning with taskset; temporary folders; the monitor as a `sipsteer monitor`
// child; free ports.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { SigningKey } from "../../src/contracts/index.js";
import { cpuSeconds } from "../proc-cpu.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project root (dist/bench/monitor → three up). */
export const ROOT = join(HERE, "..", "..", "..");
export const CLI = join(ROOT, "dist", "src", "cli", "main.js");
export const DOMAIN = "sipsteer.test";
export const LOOPBACK = ["127.0.0.0/8", "::1/128"];
export const KEY: SigningKey = { id: "bench", secret: "a-shared-bench-report-secret" };

export function have(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/**
 * Servers on CPU 1, load generators on CPU 0, as bench/udp.ts does: each side gets one core of
 * the two, and the reference gets the same. BENCH_PIN=0 runs everything unpinned.
 */
export const PIN = process.env.BENCH_PIN !== "0" && have("taskset") && availableParallelism() >= 2;
export const SERVER_CPU = PIN ? 1 : undefined;
export const LOAD_CPU = PIN ? 0 : undefined;

// ---- processes ----

const groups = new Set<number>();
const tempDirs = new Set<string>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

/** Kills every group still running and removes every temporary folder. */
export function reapAll(): void {
  for (const pid of groups) killGroup(pid, "SIGKILL");
  groups.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.on("exit", reapAll);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every process the benchmark started`);
    reapAll();
    process.exit(signal === "SIGINT" ? 130 : 143);
  });
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Spawns a process in its own group, pinned to `cpu` when given. */
export function launch(
  command: string,
  args: readonly string[],
  options: { cpu?: number | undefined; cwd?: string } = {},
): ChildProcess {
  const argv =
    options.cpu === undefined
      ? [command, ...args]
      : ["taskset", "-c", String(options.cpu), command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid !== undefined) groups.add(child.pid);
  child.on("error", (e) => console.error(`${command}: ${e.message}`));
  return child;
}

export function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Waits for `child` to exit; false when it is still running after `ms`. */
export function exited(child: ChildProcess, ms = Infinity): Promise<boolean> {
  if (!running(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = Number.isFinite(ms) ? setTimeout(() => resolve(false), ms) : undefined;
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Signals the group's leader, gives it `graceMs` to exit, then kills its whole group. */
export async function stopGroup(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 5000,
): Promise<void> {
  if (running(child)) child.kill(signal);
  if (!(await exited(child, graceMs)) && child.pid !== undefined) killGroup(child.pid, "SIGKILL");
  await exited(child);
  if (child.pid === undefined) return;
  killGroup(child.pid, "SIGKILL");
  groups.delete(child.pid);
}

/** Keeps the last `max` characters a stream wrote. */
export function tail(stream: NodeJS.ReadableStream | null, max = 4000): () => string {
  let text = "";
  stream?.on("data", (c: Buffer) => (text = (text + c.toString()).slice(-max)));
  return () => text;
}

/** Each whole line a stream writes, to `onLine`. */
export function lines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let buffered = "";
  stream?.on("data", (c: Buffer) => {
    buffered += c.toString();
    for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  });
}

/** The first stdout line that parses as a JSON object, within `timeoutMs`. */
export function firstJsonLine(
  child: ChildProcess,
  timeoutMs: number,
  log: () => string,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no JSON line in time:\n${log()}`)), timeoutMs);
    lines(child.stdout, (line) => {
      try {
        const value = JSON.parse(line) as unknown;
        if (typeof value === "object" && value !== null) {
          clearTimeout(timer);
          resolve(value as Record<string, unknown>);
        }
      } catch {
        // not the line we wait for
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before its JSON line:\n${log()}`));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until `pid` (and its children) use under 5% of a core over half a second, at most
 * `maxMs`: a front that fell behind keeps retransmitting its 302s for Timer H (32 s), which
 * would weigh on whatever runs next on its core. Returns how long it waited.
 */
export async function waitQuiet(pid: number, maxMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const before = cpuSeconds(pid);
    await sleep(500);
    if (cpuSeconds(pid) - before < 0.025) break;
    if (performance.now() - started > maxMs) break;
  }
  return performance.now() - started;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

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

export { cpuSeconds };
