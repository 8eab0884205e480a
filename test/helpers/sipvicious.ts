import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The scanners of Debian's `sipvicious` package. */
export type SipviciousTool = "svmap" | "svwar" | "svcrack";

export interface SipviciousRun {
  readonly process: ChildProcess;
  /** Exit code (null when killed) and what it printed. */
  readonly result: Promise<{ code: number | null; output: string }>;
  kill(): void;
}

/**
 * Runs one sipvicious tool against `host:port` (a loopback address, never anywhere else:
 * 127.0.0.1 by default), bound to 127.0.0.1 on a free port, with HOME in a temporary folder (its session files go there).
 * Killed after `timeoutMs`.
 */
export function runSipvicious(
  tool: SipviciousTool,
  port: number,
  extraArgs: readonly string[] = [],
  timeoutMs = 20_000,
  host = "127.0.0.1",
): SipviciousRun {
  if (!host.startsWith("127.")) throw new Error(`sipvicious aimed at ${host}: loopback only`);
  const home = mkdtempSync(join(tmpdir(), "sipsteer-sipvicious-"));
  const args = [host, "-p", String(port), "-b", "127.0.0.1", "-P", "0", ...extraArgs];
  const child = spawn(tool, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, HOME: home },
  });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const timer = setTimeout(kill, timeoutMs);
  const result = new Promise<{ code: number | null; output: string }>((resolve) => {
    child.once("error", (err) => (output += String(err)));
    child.once("close", (code) => {
      clearTimeout(timer);
      rmSync(home, { recursive: true, force: true });
      resolve({ code, output });
    });
  });
  return { process: child, result, kill };
}
