// What every bench shares about child processes: each runs in a process group of its own (so
// that Kamailio's, NSD's or rtpengine's workers go with it) and is killed with its group on
// every way out (normal end, an error, SIGINT, SIGTERM); pinning with taskset; temporary
// folders, removed on the way out too; the output a child wrote.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuSeconds } from "./proc-cpu.js";

export function have(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

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

/** Kills a child's whole group at once (a SIPp past its time). */
export function killNow(child: ChildProcess): void {
  if (child.pid !== undefined) killGroup(child.pid, "SIGKILL");
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

/** Once the group's leader has exited, kills whatever is left of its group. */
export async function release(child: ChildProcess): Promise<void> {
  await exited(child);
  if (child.pid === undefined) return;
  killGroup(child.pid, "SIGKILL");
  groups.delete(child.pid);
}

/** Signals the group's leader, gives it `graceMs` to exit, then kills its whole group. */
export async function stopGroup(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
  graceMs = 5000,
): Promise<void> {
  if (running(child)) child.kill(signal);
  if (!(await exited(child, graceMs))) killNow(child);
  await release(child);
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
 * `maxMs`: a server that fell behind keeps retransmitting for Timer H (32 s), which would weigh
 * on whatever runs next on its core. Returns how long it waited.
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

/** The value at quantile `p` (0…1) of ascending `sorted` (nearest rank); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export { cpuSeconds };
