// A real Kamailio (Debian `kamailio`) for the monitor's kamailio and options adapters: the
// fixture test/fixtures/kamailio/monitored-proxy.cfg filled in with free ports and the callee
// it relays INVITEs to, run in the foreground in a process group of its own (its workers go
// with it) and a temporary work folder; always stopped and the folder removed.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixturePath } from "./paths.js";
import { freePort, waitForBound } from "./sipp.js";

/** Where Debian installs Kamailio's modules. */
const MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

export interface KamailioOptions {
  /** Where INVITEs go (`sip:127.0.0.1:PORT`, a SIPp UAS). */
  readonly callee: string;
  /** Ports to take again (a restart on the same addresses); free ones otherwise. */
  readonly sipPort?: number;
  readonly httpPort?: number;
}

export interface KamailioRun {
  readonly sipPort: number;
  readonly httpPort: number;
  /** Its JSON-RPC endpoint. */
  readonly rpc: string;
  /** Its SIP URI over UDP (where clients are sent, and OPTIONS pinged). */
  readonly sipUri: string;
  readonly child: ChildProcess;
  /** What it wrote to stderr (the last 20 kB). */
  log(): string;
  /** SIGKILL to the whole group, as a crash: nothing answers any more. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after a while; removes the work folder. Idempotent. */
  stop(): Promise<void>;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Starts Kamailio and waits until its JSON-RPC answers. */
export async function startKamailio(options: KamailioOptions): Promise<KamailioRun> {
  const sipPort = options.sipPort ?? (await freePort());
  const httpPort = options.httpPort ?? (await freePort());
  const work = mkdtempSync(join(tmpdir(), "sipsteer-kamailio-"));
  const cfg = join(work, "kamailio.cfg");
  writeFileSync(
    cfg,
    readFileSync(fixturePath("kamailio", "monitored-proxy.cfg"), "utf8")
      .replaceAll("__SIP_PORT__", String(sipPort))
      .replaceAll("__HTTP_PORT__", String(httpPort))
      .replaceAll("__CALLEE__", options.callee)
      .replaceAll("__MODULES__", MODULES),
  );
  // -DD: the main process stays in the foreground, its workers are its children; -E: log to
  // stderr; -Y: runtime folder; -P: pid file; -m/-M: MB of shared and private memory.
  const child = spawn(
    "kamailio",
    [
      "-f",
      cfg,
      "-DD",
      "-E",
      "-Y",
      work,
      "-P",
      join(work, "kamailio.pid"),
      "-w",
      work,
      "-m",
      "64",
      "-M",
      "8",
    ],
    { detached: true, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => {
    stderr = (stderr + c).slice(-20_000);
  });
  const rpc = `http://127.0.0.1:${httpPort}/RPC`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (!stopped) {
      stopped = true;
      signalGroup(child, "SIGTERM");
      if (!(await waitExit(child, 5000))) {
        signalGroup(child, "SIGKILL");
        await waitExit(child, 5000);
      }
      // Workers that outlived their main process.
      signalGroup(child, "SIGKILL");
    }
    if (existsSync(work)) rmSync(work, { recursive: true, force: true });
  };
  const run: KamailioRun = {
    sipPort,
    httpPort,
    rpc,
    sipUri: `sip:127.0.0.1:${sipPort}`,
    child,
    log: () => stderr,
    kill: async () => {
      signalGroup(child, "SIGKILL");
      await waitExit(child, 5000);
    },
    stop,
  };
  try {
    await waitForBound(httpPort, "tcp", 15_000);
    await waitForRpc(rpc, 15_000);
  } catch (e) {
    await stop();
    throw new Error(`Kamailio did not start: ${String(e)}\n${stderr}`, { cause: e });
  }
  return run;
}

/** Until `core.uptime` is answered (its HTTP listener comes up before its workers do). */
async function waitForRpc(rpc: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(rpc, {
        method: "POST",
        body: JSON.stringify({ jsonrpc: "2.0", method: "core.uptime", id: 1 }),
      });
      if (res.ok && "result" in ((await res.json()) as object)) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > deadline) throw new Error(`no JSON-RPC answer at ${rpc}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One JSON-RPC call from the test itself (to read what Kamailio says, beside the monitor). */
export async function kamailioRpc(
  rpc: string,
  method: string,
  params?: unknown[],
): Promise<unknown> {
  const res = await fetch(rpc, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", method, id: 1, ...(params ? { params } : {}) }),
  });
  const answer = (await res.json()) as { result?: unknown; error?: unknown };
  if (answer.error !== undefined) throw new Error(`${method}: ${JSON.stringify(answer.error)}`);
  return answer.result;
}
