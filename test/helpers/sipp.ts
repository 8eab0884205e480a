import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { createSocket } from "node:dgram";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { fixturePath } from "./paths.js";

/** The counters SIPp writes to its statistics file at the end of a run. */
export interface SippResult {
  readonly code: number | null;
  readonly successful: number;
  readonly failed: number;
  readonly retransmissions: number;
  readonly output: string;
}

export interface SippOptions {
  /** A scenario file under test/fixtures/sipp/, or an absolute path. */
  readonly scenario: string;
  /** "u1" (UDP, one socket) or "t1" (TCP, one connection). */
  readonly transport: "u1" | "t1";
  /** The peer for a UAC scenario ("127.0.0.1:5060"); none for a UAS. */
  readonly remote?: string;
  readonly localPort: number;
  /** The address SIPp binds and writes in its messages; 127.0.0.1 by default. */
  readonly localIp?: string;
  /** Calls to make (UAC) or to take (UAS) before exiting. */
  readonly calls: number;
  readonly rate?: number;
  readonly extraArgs?: readonly string[];
  /** Kill SIPp when it runs longer than this. */
  readonly timeoutMs?: number;
}

/** A free port on 127.0.0.1 for both UDP and TCP (best effort: checked, then released). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = FREE_PORT_LOW + Math.floor(Math.random() * (FREE_PORT_HIGH - FREE_PORT_LOW));
    if ((await tcpPortFree(port)) && (await udpPortFree(port))) return port;
  }
}

/**
 * Ports handed out lie below Linux's ephemeral range (32768–60999): a port taken from that
 * range and released could be given to anyone's next outgoing connection or bind(0) (Chromium's
 * ICE sockets, another test) before the role meant for it listens; seen as EADDRINUSE in CI.
 */
const FREE_PORT_LOW = 20_000;
const FREE_PORT_HIGH = 32_000;

/** Whether a TCP port on 127.0.0.1 can be bound (then released) now. */
export function tcpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Whether a UDP port on 127.0.0.1 can be bound (then released) now. */
export function udpPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** A running SIPp, always reaped: `result` settles when it exits or is killed. */
export interface SippRun {
  readonly process: ChildProcess;
  readonly result: Promise<SippResult>;
  kill(): void;
}

/** Starts SIPp with a scenario; the caller awaits `result` (and kills it in `finally`). */
export function startSipp(options: SippOptions): SippRun {
  const work = mkdtempSync(join(tmpdir(), "sipsteer-sipp-"));
  const statFile = join(work, "stat.csv");
  const args = [
    ...(options.remote === undefined ? [] : [options.remote]),
    "-sf",
    isAbsolute(options.scenario) ? options.scenario : fixturePath("sipp", options.scenario),
    "-t",
    options.transport,
    "-i",
    options.localIp ?? "127.0.0.1",
    "-p",
    String(options.localPort),
    "-m",
    String(options.calls),
    "-r",
    String(options.rate ?? 10),
    "-nostdin",
    "-trace_stat",
    "-stf",
    statFile,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn("sipp", args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
  const result = new Promise<SippResult>((resolve) => {
    child.once("exit", (code) => {
      clearTimeout(timer);
      const stats = readStats(statFile);
      rmSync(work, { recursive: true, force: true });
      resolve({
        code,
        successful: stats.get("SuccessfulCall(C)") ?? 0,
        failed: stats.get("FailedCall(C)") ?? 0,
        retransmissions: stats.get("Retransmissions(C)") ?? 0,
        output,
      });
    });
  });
  return {
    process: child,
    result,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

function readStats(file: string): Map<string, number> {
  const stats = new Map<string, number>();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return stats;
  }
  const lines = text.trim().split("\n");
  if (lines.length < 2) return stats;
  const names = lines[0]!.split(";");
  const values = lines[lines.length - 1]!.split(";");
  names.forEach((name, i) => {
    const n = Number(values[i]);
    if (name !== "" && !Number.isNaN(n)) stats.set(name, n);
  });
  return stats;
}

/**
 * Waits until something binds `port` on loopback (UDP) or listens on it (TCP), by reading
 * /proc/net: SIPp as a UAS says nothing when it is ready.
 */
export async function waitForBound(
  port: number,
  protocol: "udp" | "tcp",
  timeoutMs = 10_000,
): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
      let table: string;
      try {
        table = readFileSync(file, "utf8");
      } catch {
        continue;
      }
      for (const line of table.split("\n").slice(1)) {
        const cols = line.trim().split(/\s+/);
        const local = cols[1] ?? "";
        const state = cols[3] ?? "";
        if (local.endsWith(`:${hex}`) && (protocol === "udp" || state === "0A")) return;
      }
    }
    if (Date.now() > deadline) throw new Error(`nothing bound ${protocol} port ${port}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The domain the SIPp scenarios' Request-URIs and To/From use (`-key domain`). */
export const SIPP_DOMAIN = "sipsteer.test";

/**
 * SIPp arguments for register-contact-uac.xml: `user` registers a Contact at 127.0.0.1:
 * `contactPort` (where a SIPp callee listens), with digest credentials when `password` is given.
 */
export function registerArgs(user: string, contactPort: number, password?: string): string[] {
  return [
    "-s",
    user,
    "-key",
    "domain",
    SIPP_DOMAIN,
    "-key",
    "contact_host",
    "127.0.0.1",
    "-key",
    "contact_port",
    String(contactPort),
    ...(password === undefined ? [] : ["-au", user, "-ap", password]),
  ];
}

/** SIPp arguments for the call-uac scenarios: `caller` calls `callee`, each call held `holdMs`. */
export function callArgs(callee: string, holdMs: number, caller = "alice"): string[] {
  return [
    "-d",
    String(holdMs),
    "-s",
    callee,
    "-key",
    "domain",
    SIPP_DOMAIN,
    "-key",
    "caller",
    caller,
  ];
}
