// npm run bench:udp — the UDP path (receive → parse → transaction → respond) under SIPp
// OPTIONS at rising rates, against Kamailio answering statelessly (sl_send_reply) on the same
// harness in the same run. The server runs pinned to one core and SIPp to the other; for each
// server we report the highest rate answered with under 1% failed calls and under 1% SIPp
// retransmissions, and the server's CPU time per request (from /proc) at the highest rate
// both passed. Prints a table; the last line is a JSON object of the figures.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startSipp, waitForBound } from "../test/helpers/sipp.js";
import { cpuSeconds } from "./proc-cpu.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const RATES = (process.env.BENCH_RATES ?? "2000,4000,6000,8000,10000,12000,14000,16000,20000")
  .split(",")
  .map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** CPU per request is the median of three runs at this rate, below every server's limit. */
const CPU_RATE = Number(process.env.BENCH_CPU_RATE ?? 6000);

function have(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

for (const [tool, pkg] of [
  ["sipp", "sip-tester"],
  ["kamailio", "kamailio"],
]) {
  if (!have(tool!)) {
    console.error(`${tool} is missing: apt-get install ${pkg}`);
    process.exit(2);
  }
}
const pin = have("taskset");

interface Server {
  name: string;
  process: ChildProcess;
  port: number;
  cleanup(): void;
}

function spawnPinned(cpu: number, command: string, args: string[]): ChildProcess {
  return pin
    ? spawn("taskset", ["-c", String(cpu), command, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
}

async function startSipsteer(): Promise<Server> {
  const port = await freePort();
  const child = spawnPinned(1, process.execPath, [
    join(ROOT, "dist", "bench", "uas-server.js"),
    String(port),
  ]);
  child.stdout!.resume();
  child.stderr!.resume();
  await waitForBound(port, "udp");
  return { name: "sipsteer", process: child, port, cleanup: () => undefined };
}

async function startBareNode(): Promise<Server> {
  const port = await freePort();
  const child = spawnPinned(1, process.execPath, [
    join(ROOT, "dist", "bench", "bare-udp-responder.js"),
    String(port),
  ]);
  child.stdout!.resume();
  child.stderr!.resume();
  await waitForBound(port, "udp");
  return { name: "bare node", process: child, port, cleanup: () => undefined };
}

async function startKamailio(): Promise<Server> {
  const port = await freePort();
  const work = mkdtempSync(join(tmpdir(), "sipsteer-kamailio-"));
  const template = readFileSync(join(ROOT, "bench", "kamailio-options.cfg"), "utf8");
  const cfg = join(work, "kamailio.cfg");
  writeFileSync(
    cfg,
    template
      .replaceAll("__PORT__", String(port))
      .replaceAll("__MODULES__", "/usr/lib/x86_64-linux-gnu/kamailio/modules/"),
  );
  // -DD: stay in the foreground (children are ours to count and reap); -E: log to stderr;
  // -x tlsf: Debian's default allocator has memory debugging built in and costs about 3x
  // the CPU, so an operator runs tlsf.
  const child = spawnPinned(1, "kamailio", [
    "-f",
    cfg,
    "-DD",
    "-E",
    "-x",
    "tlsf",
    "-m",
    "256",
    "-M",
    "16",
    "-Y",
    work,
  ]);
  let log = "";
  child.stderr!.on("data", (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  child.stdout!.resume();
  try {
    await waitForBound(port, "udp");
  } catch (e) {
    child.kill("SIGKILL");
    throw new Error(`Kamailio did not start:\n${log}`, { cause: e });
  }
  return {
    name: "kamailio",
    process: child,
    port,
    cleanup: () => rmSync(work, { recursive: true, force: true }),
  };
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((r) => server.process.once("exit", r));
  server.process.kill("SIGTERM");
  const timer = setTimeout(() => server.process.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
  server.cleanup();
}

interface Step {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  retransmissions: number;
  cpuSeconds: number;
  usPerRequest: number;
  passed: boolean;
}

/** One SIPp run of `calls` OPTIONS at `rate`, SIPp pinned to the other core than the server. */
async function drive(server: Server, rate: number, calls: number) {
  const run = startSipp({
    scenario: "options-uac.xml",
    transport: "u1",
    remote: `127.0.0.1:${server.port}`,
    localPort: await freePort(),
    calls,
    rate,
    extraArgs: ["-l", String(rate * 2), "-recv_timeout", "8000", "-max_retrans", "4"],
    timeoutMs: (calls / rate + 30) * 1000,
  });
  if (pin && run.process.pid !== undefined) {
    spawnSync("taskset", ["-p", "-c", "0", String(run.process.pid)], { stdio: "ignore" });
  }
  try {
    return await run.result;
  } finally {
    run.kill();
  }
}

async function measure(server: Server): Promise<Step[]> {
  const serverPid = server.process.pid!;
  // Warm-up (JIT, caches), not recorded; then let its transactions expire.
  await drive(server, 2000, 4000);
  await new Promise((r) => setTimeout(r, 1000));
  const steps: Step[] = [];
  for (const rate of RATES) {
    const calls = rate * SECONDS;
    const before = cpuSeconds(serverPid);
    const result = await drive(server, rate, calls);
    const cpu = cpuSeconds(serverPid) - before;
    const answered = Math.max(1, result.successful);
    const step: Step = {
      rate,
      calls,
      successful: result.successful,
      failed: result.failed,
      retransmissions: result.retransmissions,
      cpuSeconds: cpu,
      usPerRequest: (cpu * 1e6) / answered,
      passed:
        result.failed / calls < 0.01 &&
        result.retransmissions / calls < 0.01 &&
        result.successful > 0,
    };
    steps.push(step);
    console.log(
      `  ${server.name.padEnd(9)} ${String(rate).padStart(6)}/s  ok ${String(result.successful).padStart(7)}  ` +
        `failed ${String(result.failed).padStart(6)}  retrans ${String(result.retransmissions).padStart(6)}  ` +
        `cpu ${cpu.toFixed(2)} s  ${step.usPerRequest.toFixed(1)} µs/req  ${step.passed ? "pass" : "FAIL"}`,
    );
    // Past saturation, higher rates only take longer to fail.
    if (result.failed / calls > 0.2) break;
    // Let the server drain (its transactions live 64*T1 after the answer).
    await new Promise((r) => setTimeout(r, 1000));
  }
  return steps;
}

console.log(
  `SIPp OPTIONS over UDP, ${SECONDS} s per rate; server ${pin ? "pinned to CPU 1, SIPp to CPU 0" : "unpinned (no taskset)"}\n`,
);
const results: Record<string, Step[]> = {};
const cpuPerRequest: Record<string, number> = {};
for (const start of [startSipsteer, startKamailio, startBareNode]) {
  const server = await start();
  try {
    // CPU first, on a fresh server after its warm-up: the rate ladder leaves a heap of
    // transactions (kept 64*T1) that would weigh on the next runs.
    await drive(server, 2000, 4000);
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      const before = cpuSeconds(server.process.pid!);
      const result = await drive(server, CPU_RATE, CPU_RATE * SECONDS);
      runs.push(
        ((cpuSeconds(server.process.pid!) - before) * 1e6) / Math.max(1, result.successful),
      );
    }
    runs.sort((a, b) => a - b);
    cpuPerRequest[server.name] = runs[1]!;
    console.log(
      `  ${server.name.padEnd(9)} CPU at ${CPU_RATE}/s: ${runs.map((r) => r.toFixed(1)).join(", ")} µs/req (median ${runs[1]!.toFixed(1)})`,
    );
  } finally {
    await stop(server);
  }
  if (server.name === "bare node") continue;
  const fresh = await start();
  try {
    results[fresh.name] = await measure(fresh);
  } finally {
    await stop(fresh);
  }
}

const best = (steps: Step[]): Step | undefined => [...steps].reverse().find((s) => s.passed);
const round1 = (n: number | undefined) => Number((n ?? 0).toFixed(1));
const figures = {
  seconds_per_rate: SECONDS,
  sipsteer_rps: best(results.sipsteer!)?.rate ?? 0,
  kamailio_rps: best(results.kamailio!)?.rate ?? 0,
  cpu_rate: CPU_RATE,
  sipsteer_us_per_req: round1(cpuPerRequest.sipsteer),
  kamailio_us_per_req: round1(cpuPerRequest.kamailio),
  bare_node_us_per_req: round1(cpuPerRequest["bare node"]),
  cpu_ratio: Number(((cpuPerRequest.sipsteer ?? 0) / (cpuPerRequest.kamailio ?? 1)).toFixed(2)),
  cpu_ratio_to_bare_node: Number(
    ((cpuPerRequest.sipsteer ?? 0) / (cpuPerRequest["bare node"] ?? 1)).toFixed(2),
  ),
};
console.log(
  `\nserver     best rate (<1% failed, <1% retrans)   CPU µs/request at ${CPU_RATE}/s (median of 3)\n` +
    `sipsteer   ${String(figures.sipsteer_rps).padStart(8)}/s                           ${figures.sipsteer_us_per_req}\n` +
    `kamailio   ${String(figures.kamailio_rps).padStart(8)}/s                           ${figures.kamailio_us_per_req}\n` +
    `bare node  (Node UDP responder copying five headers: Node's floor) ${figures.bare_node_us_per_req}\n` +
    `\nsipsteer / kamailio CPU per request: ${figures.cpu_ratio}x (goal: within 2x); ` +
    `sipsteer / bare node: ${figures.cpu_ratio_to_bare_node}x`,
);
console.log(JSON.stringify(figures));
