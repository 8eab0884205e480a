// Helpers of the `sipsteer up` tests: free ports on several loopback addresses, whether a
// process still runs, a bounded poll, the rtpengines listening on an ng endpoint.
import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { readFileSync, readdirSync } from "node:fs";
import { createServer } from "node:net";
import { freePort } from "./sipp.js";

/** Whether `address:port` can be bound (then released) now on `protocol`. */
export function portFree(address: string, port: number, protocol: "udp" | "tcp"): Promise<boolean> {
  return new Promise((resolve) => {
    if (protocol === "udp") {
      const socket = createSocket("udp4");
      socket.once("error", () => {
        socket.close();
        resolve(false);
      });
      socket.bind(port, address, () => socket.close(() => resolve(true)));
      return;
    }
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, address, () => server.close(() => resolve(true)));
  });
}

/** A port free for UDP and TCP on every one of `addresses` (checked, then released). */
export async function freePortOn(addresses: readonly string[]): Promise<number> {
  for (;;) {
    const port = await freePort();
    const checks = await Promise.all(
      addresses.flatMap((a) => [portFree(a, port, "udp"), portFree(a, port, "tcp")]),
    );
    if (checks.every(Boolean)) return port;
  }
}

/** Whether a process of that pid exists (signal 0 is a check only). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `check` every 50 ms until it holds; fails after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pids of rtpengine processes whose command line names this ng endpoint (Linux /proc). */
export function rtpenginePidsAt(ng: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (cmd[0]?.endsWith("rtpengine") && cmd.includes(`--listen-ng=${ng}`))
        out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}
