// npm run bench:proxy — whole calls through a stateful record-routing proxy: sipsteer against
// Kamailio 5.6 (bench/kamailio-proxy.cfg: tm, rr, usrloc in memory, registrar) on the same
// harness in the same run. A SIPp callee (call-uas.xml) registers its contact at the proxy
// (register-contact-uac.xml); a SIPp caller (call-uac-route.xml) places INVITE / 180 / 200 / ACK,
// a hold of BENCH_HOLD_MS, BYE / 200 through the proxy at each rate of BENCH_RATES for
// BENCH_SECONDS. The two targets take turns rate by rate, so that the noise of a shared machine
// falls on both alike; a target leaves the ladder after 20% failed calls or two unclean rates
// in a row.
//
// Each rate gets a fresh proxy, callee and caller: start the target, register the callee, warm
// up (2 s of calls at min(rate, 500)/s to a second registered callee: JIT, caches), measure.
// A rate is clean when, of the calls placed, under 1% failed or never ended; the
// retransmissions of both SIPps are under 1% of the messages they sent (3 a call each: INVITE,
// ACK, BYE; 180, 200, 200), as retransmissions otherwise hide losses; and 200s came back at 95%
// of the rate or more. Calls SIPp aborts because a 180 reached it after the 200 are shown apart
// ("late 1xx") and not held against the proxy: Kamailio's two workers each send what they relay
// after letting go of the transaction's lock, so a 180 and its 200 can cross. UDP may reorder
// anyway and a UAC drops a 1xx that follows the 2xx; call-uac.xml as it is makes SIPp abort.
// The caller sends its ACK and BYE along the route set, to the proxy's Record-Route, as a phone
// does (RFC 3261 §12.2.1.1); plain SIPp would send them where the INVITE went. For Kamailio that
// is the same address; sipsteer's workers each name their own port there.
//
// For each target: the highest clean rate; the median and 99th percentile of call setup there
// (SIPp rtd "setup", INVITE sent to 200 received, one value a call from -trace_rtt -rtt_freq 1;
// SIPp's clock moves in 4 ms steps here, so 0 means under 4 ms); and, at the highest rate both
// ran clean, CPU (user + system from /proc of the proxy and its children) per call.
//
// Pinning: none by default. The issue's reference figure for Kamailio (about 5,500 clean
// calls/s, p99 setup about 32 ms) was taken with its two UDP workers free to use both cores and
// SIPp beside it, and the question is calls per second on this machine: pinning the proxy to
// one core would halve Kamailio's workers, and both SIPps on the other core would starve at
// these rates. Unpinned, sipsteer with one worker (SIPSTEER_WORKERS=1) runs its
// JavaScript on one core at a time; the "cores" column shows what each target used.
// BENCH_PIN=1 pins the proxy to CPU 1 and both SIPps to CPU 0, for a one-core comparison.
//
// Environment: BENCH_RATES (calls/s, comma-separated; default 1000 … 10000), BENCH_SECONDS
// (default 40: past the 32 s a call's transactions live, see SECONDS; shorter runs flatter the
// proxy that keeps more state), BENCH_HOLD_MS (default 0), BENCH_PIN, BENCH_TARGETS (default
// "sipsteer,kamailio"), SIPSTEER_WORKERS (default "auto", one per core; a count, which goes into
// sipsteer's config as `workers` when not 1), BENCH_PROXY_NODE_ARGS (node flags for the sipsteer proxy,
// e.g. "--cpu-prof --cpu-prof-dir=DIR"). Prints a line per rate, then a table; the last
// line is a JSON object of the figures.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { fixturePath } from "../test/helpers/paths.js";
import { callArgs, freePort, registerArgs, waitForBound } from "../test/helpers/sipp.js";
import { cpuSeconds } from "./proc-cpu.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, "..", "..");
const DOMAIN = "sipsteer.test";
const RATES = (process.env.BENCH_RATES ?? "1000,2000,2500,3000,3500,4000,5000,6000,7000,8000,10000")
  .split(",")
  .map(Number);
/**
 * Longer than the longest-lived state of a call in either proxy (sipsteer keeps its INVITE and
 * BYE transactions 64*T1 = 32 s after the answer over UDP, RFC 3261/6026 Timers L, M, J), so
 * that each rate is measured in a steady state, not while the heap is still filling.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 40);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 0);
/** sipsteer's `workers`: a count, or "auto" for one per core. */
const WORKERS_ENV = process.env.SIPSTEER_WORKERS ?? "auto";
const WORKERS: number | "auto" = WORKERS_ENV === "auto" ? "auto" : Number(WORKERS_ENV);
const TARGETS = (process.env.BENCH_TARGETS ?? "sipsteer,kamailio").split(",");
const WARMUP_SECONDS = 2;
const WARMUP_MAX_RATE = 500;
/** Messages SIPp sends in a call: the caller INVITE, ACK, BYE; the callee 180, 200, 200. */
const MESSAGES_SENT_PER_CALL = 6;
/** SIPp's open-call limit stays under the open-file limit (SIPp warns about it otherwise). */
const OPEN_CALLS_MAX = 19_000;

for (const [name, value, least] of [
  ["BENCH_SECONDS", SECONDS, 1],
  ["BENCH_HOLD_MS", HOLD_MS, 0],
  ["SIPSTEER_WORKERS", WORKERS === "auto" ? 1 : WORKERS, 1],
  ...RATES.map((r) => ["BENCH_RATES", r, 1] as const),
] as const) {
  if (!Number.isInteger(value) || value < least) {
    console.error(`${name}: expected whole numbers from ${least}`);
    process.exit(2);
  }
}
for (const target of TARGETS) {
  if (target !== "sipsteer" && target !== "kamailio") {
    console.error(`BENCH_TARGETS: unknown target ${target} (sipsteer, kamailio)`);
    process.exit(2);
  }
}

function have(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

for (const [tool, pkg] of [
  ["sipp", "sip-tester"],
  ["kamailio", "kamailio"],
] as const) {
  if (!have(tool)) {
    console.error(`${tool} is missing: apt-get install ${pkg}`);
    process.exit(2);
  }
}
const PIN = process.env.BENCH_PIN === "1";
if (PIN && (!have("taskset") || availableParallelism() < 2)) {
  console.error("BENCH_PIN=1 needs taskset (util-linux) and two CPUs");
  process.exit(2);
}
const PROXY_CPU = PIN ? 1 : undefined;
const SIPP_CPU = PIN ? 0 : undefined;

// Every child runs in a process group of its own (so that Kamailio's workers go with it) and
// is killed with its group on every way out: normal end, an error, SIGINT, SIGTERM.
const groups = new Set<number>();
const tempDirs = new Set<string>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

function reapAll(): void {
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

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Spawns a process in its own group, pinned to `cpu` when pinning is on. */
function launch(
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

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Waits for `child` to exit; false when it is still running after `ms`. */
function exited(child: ChildProcess, ms = Infinity): Promise<boolean> {
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
async function release(child: ChildProcess): Promise<void> {
  await exited(child);
  if (child.pid === undefined) return;
  killGroup(child.pid, "SIGKILL");
  groups.delete(child.pid);
}

/** Signals the group's leader, gives it `graceMs` to exit, then kills its whole group. */
async function stopGroup(child: ChildProcess, signal: NodeJS.Signals, graceMs: number) {
  if (running(child)) child.kill(signal);
  if (!(await exited(child, graceMs)) && child.pid !== undefined) killGroup(child.pid, "SIGKILL");
  await release(child);
}

/** Keeps the last `max` characters a stream wrote. */
function tail(stream: NodeJS.ReadableStream | null, max = 4000): () => string {
  let text = "";
  stream?.on("data", (c: Buffer) => (text = (text + c.toString()).slice(-max)));
  return () => text;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the targets ----

interface Target {
  readonly name: "sipsteer" | "kamailio";
  readonly process: ChildProcess;
  readonly port: number;
  readonly log: () => string;
  stop(): Promise<void>;
}

/** Extra node flags for the sipsteer proxy, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile it. */
const NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? "").split(/\s+/).filter((a) => a !== "");

async function startSipsteer(): Promise<Target> {
  const port = await freePort();
  const work = tempDir("sipsteer-bench-proxy-");
  const config: Record<string, unknown> = {
    id: "bench",
    domains: [DOMAIN],
    listen: [{ protocol: "udp", address: "127.0.0.1", port }],
    allowedDestinations: ["127.0.0.0/8", "::1/128"],
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    // Calls whose BYE was lost would otherwise hold the exit for a minute.
    drainTimeoutMs: 1000,
  };
  if (WORKERS !== 1) config.workers = WORKERS;
  const file = join(work, "proxy.yaml");
  writeFileSync(file, stringify(config));
  // warn, as Kamailio's debug=0: per-message logging would cost either of them dearly.
  const child = launch(
    process.execPath,
    [
      ...NODE_ARGS,
      join(ROOT, "dist", "src", "cli", "main.js"),
      "proxy",
      "--config",
      file,
      "--json",
      "--log-level",
      "warn",
    ],
    { cpu: PROXY_CPU },
  );
  const log = tail(child.stderr);
  const stop = async () => {
    await stopGroup(child, "SIGTERM", 5000);
    removeDir(work);
  };
  // Serving once it prints its JSON line.
  const ready = await new Promise<boolean>((resolve) => {
    let out = "";
    const timer = setTimeout(() => resolve(false), 20_000);
    child.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes('"sip"')) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ready) {
    await stop();
    throw new Error(`sipsteer did not start:\n${log()}`);
  }
  return { name: "sipsteer", process: child, port, log, stop };
}

async function startKamailio(): Promise<Target> {
  const port = await freePort();
  const work = tempDir("sipsteer-bench-kamailio-");
  const template = readFileSync(join(ROOT, "bench", "kamailio-proxy.cfg"), "utf8");
  const cfg = join(work, "kamailio.cfg");
  writeFileSync(
    cfg,
    template
      .replaceAll("__PORT__", String(port))
      .replaceAll("__MODULES__", "/usr/lib/x86_64-linux-gnu/kamailio/modules/"),
  );
  // -DD: in the foreground, its workers our descendants (counted and reaped); -E: log to
  // stderr; -x tlsf: Debian's default allocator has memory debugging built in and costs about
  // 3x the CPU; -m 1024: 1 GB of shared memory for transactions and registrations; -M 32: MB
  // of private memory per process.
  const child = launch(
    "kamailio",
    ["-f", cfg, "-DD", "-E", "-x", "tlsf", "-m", "1024", "-M", "32", "-Y", work],
    { cpu: PROXY_CPU },
  );
  child.stdout!.resume();
  const log = tail(child.stderr);
  const stop = async () => {
    await stopGroup(child, "SIGTERM", 5000);
    removeDir(work);
  };
  try {
    await waitForBound(port, "udp");
  } catch (e) {
    await stop();
    throw new Error(`Kamailio did not start:\n${log()}`, { cause: e });
  }
  return { name: "kamailio", process: child, port, log, stop };
}

// ---- SIPp ----

interface SippRun {
  readonly process: ChildProcess;
  readonly dir: string;
  readonly output: () => string;
}

interface SippOutcome {
  readonly stats: Map<string, number>;
  /** Call setup times (ms) from the rtd "setup", when run with -trace_rtt. */
  readonly setups: number[];
  /** When each setup ended (ms since SIPp started). */
  readonly setupEnds: number[];
  /** Calls SIPp aborted on a 1xx to their INVITE that came after the 200 (-trace_err). */
  readonly lateProvisionals: number;
  /** The first lines of SIPp's error log, if any. */
  readonly firstError: string;
  readonly output: string;
}

/** Starts SIPp in a temporary directory (its trace files land there), always with -trace_stat. */
function startSipp(args: readonly string[], timeoutMs: number): SippRun {
  const dir = tempDir("sipsteer-bench-sipp-");
  const child = launch(
    "sipp",
    [
      ...args,
      "-t",
      "u1",
      "-i",
      "127.0.0.1",
      "-nostdin",
      "-trace_stat",
      "-stf",
      join(dir, "stat.csv"),
      "-fd",
      "1",
    ],
    { cpu: SIPP_CPU, cwd: dir },
  );
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const timer = setTimeout(() => {
    if (child.pid !== undefined) killGroup(child.pid, "SIGKILL");
  }, timeoutMs);
  child.once("exit", () => clearTimeout(timer));
  return { process: child, dir, output: () => `${err()}\n${out()}` };
}

/** Waits for SIPp to end (or ends it: SIGUSR1 twice, then SIGKILL), reads its files. */
async function finishSipp(run: SippRun, stopIt = false): Promise<SippOutcome> {
  if (stopIt && running(run.process)) {
    // SIGUSR1: take no more calls and quit when the open ones end; a second one: quit now,
    // writing the final statistics. (Calls a failure left open would hold the first.)
    run.process.kill("SIGUSR1");
    await sleep(100);
    if (running(run.process)) run.process.kill("SIGUSR1");
    await stopGroup(run.process, "SIGKILL", 3000);
  }
  await release(run.process);
  const stats = new Map<string, number>();
  try {
    const lines = readFileSync(join(run.dir, "stat.csv"), "utf8").trim().split("\n");
    const names = lines[0]!.split(";");
    const values = lines[lines.length - 1]!.split(";");
    names.forEach((name, i) => {
      const n = Number(values[i]);
      if (name !== "" && !Number.isNaN(n)) stats.set(name, n);
    });
  } catch {
    // no statistics: SIPp did not get going; its output says why
  }
  const setups: number[] = [];
  const setupEnds: number[] = [];
  for (const file of readdirSync(run.dir).filter((f) => f.endsWith("_rtt.csv"))) {
    for (const line of readFileSync(join(run.dir, file), "utf8").split("\n").slice(1)) {
      const [date, rtt, name] = line.trim().split(";");
      if (name !== "setup") continue;
      setups.push(Number(rtt));
      setupEnds.push(Number(date));
    }
  }
  let lateProvisionals = 0;
  let firstError = "";
  for (const file of readdirSync(run.dir).filter((f) => f.endsWith("_errors.log"))) {
    // Events follow each other without a separator; each starts with a date and a time.
    const events = readFileSync(join(run.dir, file), "utf8").split(
      /(?=\d{4}-\d\d-\d\d\t\d\d:\d\d:\d\d\.\d+\t)/,
    );
    for (const event of events.slice(1)) {
      if (
        /Aborting call on unexpected message[^\n]*received 'SIP\/2\.0 1\d\d /.test(event) &&
        /^CSeq:\s*\d+\s+INVITE\s*$/im.test(event)
      ) {
        lateProvisionals++;
      } else if (
        firstError === "" &&
        !event.includes(": Dead call ") &&
        !event.includes("Maximum number of open sockets")
      ) {
        firstError = event
          .split(/\r?\n/)[0]!
          .replace(/^\S+\t\S+\t[\d.]+: /, "")
          .slice(0, 300);
      }
    }
  }
  const output = run.output();
  removeDir(run.dir);
  return { stats, setups, setupEnds, lateProvisionals, firstError, output };
}

async function startCallee(): Promise<{ run: SippRun; port: number }> {
  const port = await freePort();
  const run = startSipp(
    ["-sf", fixturePath("sipp", "call-uas.xml"), "-p", String(port), "-m", "100000000"],
    24 * 3_600_000,
  );
  await waitForBound(port, "udp");
  return { run, port };
}

async function register(target: Target, user: string, contactPort: number): Promise<void> {
  const run = startSipp(
    [
      `127.0.0.1:${target.port}`,
      "-sf",
      fixturePath("sipp", "register-contact-uac.xml"),
      "-p",
      String(await freePort()),
      "-m",
      "1",
      ...registerArgs(user, contactPort),
    ],
    15_000,
  );
  const result = await finishSipp(run);
  if (result.stats.get("SuccessfulCall(C)") !== 1) {
    throw new Error(
      `REGISTER of ${user} at ${target.name} failed:\n${result.output}\n${target.log()}`,
    );
  }
}

async function startCaller(
  target: Target,
  user: string,
  rate: number,
  calls: number,
  holdMs: number,
): Promise<SippRun> {
  const port = await freePort();
  return startSipp(
    [
      `127.0.0.1:${target.port}`,
      "-sf",
      fixturePath("sipp", "call-uac-route.xml"),
      "-p",
      String(port),
      "-m",
      String(calls),
      "-r",
      String(rate),
      // SIPp's open-call limit: 3 s of calls beyond the hold, far above what a proxy that keeps
      // up needs (one that does not shows as "only N calls/s set up"); below the open-file
      // limit (20,000 here), which SIPp warns about.
      "-l",
      String(Math.min(OPEN_CALLS_MAX, Math.max(1000, rate * (Math.ceil(holdMs / 1000) + 3)))),
      ...callArgs(user, holdMs),
      "-recv_timeout",
      "8000",
      "-max_retrans",
      "4",
      "-trace_rtt",
      "-rtt_freq",
      "1",
      "-trace_err",
    ],
    (calls / rate + holdMs / 1000 + 40) * 1000,
  );
}

// ---- one rate ----

interface Step {
  target: string;
  rate: number;
  calls: number;
  successful: number;
  /** Calls that did not end well, the late 1xx ones included. */
  failed: number;
  /** Calls SIPp aborted on a 1xx that came after the 200: not the proxy's failure (see top). */
  lateProvisionals: number;
  /** SIPp's first error, when there were errors. */
  firstError: string;
  /** Failure counters of the caller that were not 0 ("FailedTimeoutOnRecv": 12, …). */
  failures: Record<string, number>;
  callerRetransmissions: number;
  calleeRetransmissions: number;
  /** 200s received per second over the run. */
  achieved: number;
  setupP50: number;
  setupP99: number;
  setupMax: number;
  cpuSeconds: number;
  cores: number;
  usPerCall: number;
  clean: boolean;
  reasons: string[];
  /** The end of the target's log (stderr). */
  log: string;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

async function runStep(name: Target["name"], rate: number): Promise<Step> {
  const target = name === "sipsteer" ? await startSipsteer() : await startKamailio();
  const sipps: SippRun[] = [];
  try {
    const warmCallee = await startCallee();
    sipps.push(warmCallee.run);
    await register(target, "warmup", warmCallee.port);
    const callee = await startCallee();
    sipps.push(callee.run);
    await register(target, "bob", callee.port);

    const warmRate = Math.min(rate, WARMUP_MAX_RATE);
    await finishSipp(await startCaller(target, "warmup", warmRate, warmRate * WARMUP_SECONDS, 0));
    await finishSipp(warmCallee.run, true);
    await sleep(500);

    const calls = rate * SECONDS;
    const started = performance.now();
    const cpuBefore = cpuSeconds(target.process.pid!);
    const caller = await finishSipp(await startCaller(target, "bob", rate, calls, HOLD_MS));
    const cpu = cpuSeconds(target.process.pid!) - cpuBefore;
    const wall = (performance.now() - started) / 1000;
    const calleeResult = await finishSipp(callee.run, true);

    const successful = caller.stats.get("SuccessfulCall(C)") ?? 0;
    const failed = calls - successful;
    const failures: Record<string, number> = {};
    for (const [key, value] of caller.stats) {
      if (key.startsWith("Failed") && key.endsWith("(C)") && key !== "FailedCall(C)" && value > 0)
        failures[key.slice(0, -3)] = value;
    }
    const callerRetransmissions = caller.stats.get("Retransmissions(C)") ?? 0;
    const calleeRetransmissions = calleeResult.stats.get("Retransmissions(C)") ?? 0;
    const sorted = [...caller.setups].sort((a, b) => a - b);
    // 200s per second from the first to the last (no spread: 10^5 arguments overflow the stack).
    const ends = caller.setupEnds;
    const first = ends.reduce((a, b) => Math.min(a, b), Infinity);
    const last = ends.reduce((a, b) => Math.max(a, b), -Infinity);
    const achieved =
      ends.length > 1 && last > first ? (ends.length - 1) / ((last - first) / 1000) : 0;

    const reasons: string[] = [];
    const lateProvisionals = Math.min(failed, caller.lateProvisionals);
    const proxyFailed = failed - lateProvisionals;
    if (proxyFailed / calls >= 0.01) {
      reasons.push(`${((100 * proxyFailed) / calls).toFixed(2)}% failed`);
    }
    const retransmitted =
      (callerRetransmissions + calleeRetransmissions) / (calls * MESSAGES_SENT_PER_CALL);
    if (retransmitted >= 0.01) reasons.push(`${(100 * retransmitted).toFixed(2)}% retransmitted`);
    if (achieved < 0.95 * rate) reasons.push(`only ${Math.round(achieved)} calls/s set up`);
    if (!running(target.process)) reasons.push(`${name} exited (${target.process.exitCode})`);
    if (successful === 0 && caller.output.trim() !== "") {
      reasons.push(`caller: ${caller.output.trim().split("\n")[0]}`);
    }
    return {
      target: name,
      rate,
      calls,
      successful,
      failed,
      lateProvisionals,
      firstError: caller.firstError,
      failures,
      callerRetransmissions,
      calleeRetransmissions,
      achieved,
      setupP50: percentile(sorted, 0.5),
      setupP99: percentile(sorted, 0.99),
      setupMax: sorted.at(-1) ?? NaN,
      cpuSeconds: cpu,
      cores: cpu / wall,
      usPerCall: (cpu * 1e6) / Math.max(1, successful),
      clean: reasons.length === 0,
      reasons,
      log: target.log(),
    };
  } finally {
    for (const run of sipps) await stopGroup(run.process, "SIGKILL", 0);
    for (const run of sipps) removeDir(run.dir);
    await target.stop();
  }
}

function printStep(s: Step): void {
  const pct = (n: number) => `${n} (${((100 * n) / s.calls).toFixed(2)}%)`;
  const retransmissions = s.callerRetransmissions + s.calleeRetransmissions;
  const fields = [
    `${s.target.padEnd(8)} ${String(s.rate).padStart(5)}/s`,
    `set up ${String(Math.round(s.achieved)).padStart(5)}/s`,
    `ok ${String(s.successful).padStart(6)}`,
    `failed ${pct(s.failed - s.lateProvisionals)}`,
    ...(s.lateProvisionals > 0 ? [`late 1xx ${pct(s.lateProvisionals)}`] : []),
    `retrans ${s.callerRetransmissions}+${s.calleeRetransmissions} ` +
      `(${((100 * retransmissions) / (s.calls * MESSAGES_SENT_PER_CALL)).toFixed(2)}%)`,
    `setup p50 ${s.setupP50} p99 ${s.setupP99} max ${s.setupMax} ms`,
    `cpu ${s.cpuSeconds.toFixed(2)} s (${s.cores.toFixed(2)} cores) ${s.usPerCall.toFixed(0)} µs/call`,
    s.clean ? "clean" : `FAIL: ${s.reasons.join(", ")}`,
  ];
  console.log(`  ${fields.join("  ")}`);
  if (!s.clean || s.failed > s.lateProvisionals) {
    const failures = Object.entries(s.failures).map(([k, v]) => `${k} ${v}`);
    if (failures.length > 0) console.log(`           caller failures: ${failures.join(", ")}`);
    if (s.firstError !== "") console.log(`           first SIPp error: ${s.firstError}`);
    const lines = s.log.trim().split("\n").filter(Boolean).slice(-3);
    if (lines.length > 0) console.log(`           ${s.target} log: ${lines.join("\n           ")}`);
  }
}

// ---- the run ----

console.log(
  `SIPp calls over UDP (INVITE/180/200/ACK, ${HOLD_MS} ms hold, BYE/200), ${SECONDS} s per rate; ` +
    (PIN ? "proxy pinned to CPU 1, SIPp to CPU 0" : "unpinned") +
    (WORKERS !== 1 ? `; sipsteer workers: ${WORKERS}` : "") +
    "\n",
);
const steps = new Map<string, Step[]>(TARGETS.map((t) => [t, []]));
const active = new Set(TARGETS);
try {
  for (const rate of RATES) {
    for (const name of TARGETS) {
      if (!active.has(name)) continue;
      let error = "";
      const step = await runStep(name as Target["name"], rate).catch((e: unknown) => {
        error = (e as Error).message;
        return undefined;
      });
      if (step === undefined) {
        console.log(`  ${name.padEnd(8)} ${String(rate).padStart(5)}/s  ERROR: ${error}`);
        active.delete(name);
        continue;
      }
      steps.get(name)!.push(step);
      printStep(step);
      // Past saturation higher rates only take longer to fail: stop after 20% failed calls or
      // two unclean rates in a row.
      const last = steps.get(name)!.slice(-2);
      if (
        (step.failed - step.lateProvisionals) / step.calls > 0.2 ||
        (last.length === 2 && last.every((s) => !s.clean))
      ) {
        active.delete(name);
      }
    }
  }
} finally {
  reapAll();
}

const best = (name: string) =>
  (steps.get(name) ?? []).filter((s) => s.clean).sort((a, b) => b.rate - a.rate)[0];
const bestSipsteer = best("sipsteer");
const bestKamailio = best("kamailio");
const cleanRates = (name: string) =>
  new Set((steps.get(name) ?? []).filter((s) => s.clean).map((s) => s.rate));
const commonRate = [...cleanRates("sipsteer")]
  .filter((r) => cleanRates("kamailio").has(r))
  .sort((a, b) => b - a)[0];
const at = (name: string, rate: number | undefined) =>
  (steps.get(name) ?? []).find((s) => s.rate === rate);
const round = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? null : Number(n.toFixed(digits));

const figures = {
  seconds_per_rate: SECONDS,
  hold_ms: HOLD_MS,
  pinned: PIN,
  sipsteer_workers: WORKERS,
  sipsteer_cps: bestSipsteer?.rate ?? 0,
  kamailio_cps: bestKamailio?.rate ?? 0,
  ratio:
    bestKamailio === undefined ? null : round((bestSipsteer?.rate ?? 0) / bestKamailio.rate, 2),
  sipsteer_setup_p50_ms: round(bestSipsteer?.setupP50),
  sipsteer_setup_p99_ms: round(bestSipsteer?.setupP99),
  kamailio_setup_p50_ms: round(bestKamailio?.setupP50),
  kamailio_setup_p99_ms: round(bestKamailio?.setupP99),
  cpu_rate: commonRate ?? null,
  sipsteer_us_per_call: round(at("sipsteer", commonRate)?.usPerCall, 0),
  kamailio_us_per_call: round(at("kamailio", commonRate)?.usPerCall, 0),
  cpu_ratio:
    commonRate === undefined
      ? null
      : round(at("sipsteer", commonRate)!.usPerCall / at("kamailio", commonRate)!.usPerCall, 2),
};

const row = (name: string, s: Step | undefined) => {
  const cpu = at(name, commonRate)?.usPerCall.toFixed(0) ?? "-";
  const setup = s === undefined ? "-" : `${s.setupP50} / ${s.setupP99} ms`;
  const rate = s === undefined ? "none" : `${s.rate}/s`;
  return `${name.padEnd(10)}${rate.padStart(16)}${setup.padStart(24)}${cpu.padStart(22)}`;
};
console.log(
  `\ntarget    best clean rate   setup p50 / p99 at it   CPU µs/call at ${commonRate ?? "-"}/s\n` +
    `${row("sipsteer", bestSipsteer)}\n${row("kamailio", bestKamailio)}\n` +
    `\nsipsteer / kamailio calls per second: ${figures.ratio ?? "-"} (goal: at least 0.5)`,
);
console.log(JSON.stringify(figures));
