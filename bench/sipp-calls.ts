// Whole SIPp calls through a proxy at a rate, as bench:proxy and bench:relay measure them: a
// SIPp callee registers its contact at the proxy (register-contact-uac.xml), a SIPp caller
// places calls through it and sends its ACK and BYE along the route set; a warm-up, then the
// measured run; what SIPp counted, the call setup times (rtd "setup"), the proxy's CPU; whether
// the rate was clean; and a ladder of rising rates over several targets taking turns.
//
// A rate is clean when, of the calls placed, under 1% failed or never ended; the
// retransmissions of both SIPps are under 1% of the messages they sent, as retransmissions
// otherwise hide losses; and 200s came back at 95% of the rate or more. Calls SIPp aborts
// because a 180 reached it after the 200 are shown apart ("late 1xx") and not held against the
// proxy (see bench/proxy.ts).
import type { ChildProcess } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { fixturePath } from "../test/helpers/paths.js";
import { callArgs, freePort, registerArgs, waitForBound } from "../test/helpers/sipp.js";
import {
  cpuSeconds,
  killNow,
  launch,
  percentile,
  release,
  removeDir,
  running,
  sleep,
  stopGroup,
  tail,
  tempDir,
} from "./processes.js";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The project root (dist/bench → two up). */
export const ROOT = join(HERE, "..", "..");
export const DOMAIN = "sipsteer.test";
/** SIPp's open-call limit stays under the open-file limit (SIPp warns about it otherwise). */
const OPEN_CALLS_MAX = 19_000;

/** Checks the bench's numeric settings; exits with a message naming the variable. */
export function checkWholeNumbers(
  settings: readonly (readonly [name: string, value: number, least: number])[],
): void {
  for (const [name, value, least] of settings) {
    if (!Number.isInteger(value) || value < least) {
      console.error(`${name}: expected whole numbers from ${least}`);
      process.exit(2);
    }
  }
}

// ---- the proxy under test ----

/** A proxy the calls go through, listening on 127.0.0.1:`port` over UDP. */
export interface CallTarget {
  readonly name: string;
  readonly process: ChildProcess;
  readonly port: number;
  readonly log: () => string;
  stop(): Promise<void>;
}

export interface SipsteerProxyOptions {
  /** The target's name in the tables. */
  readonly name: string;
  /** `workers` of the config: a count or "auto"; 1 leaves it out. */
  readonly workers: number | "auto";
  /** Config keys beside the bench's own (e.g. `media`). */
  readonly config?: Record<string, unknown>;
  /** Node flags for the proxy process, e.g. `--cpu-prof --cpu-prof-dir=DIR`. */
  readonly nodeArgs?: readonly string[];
  readonly cpu?: number | undefined;
}

/** `sipsteer proxy` on a free UDP port with auth off, serving once it prints its JSON line. */
export async function startSipsteerProxy(options: SipsteerProxyOptions): Promise<CallTarget> {
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
    ...options.config,
  };
  if (options.workers !== 1) config.workers = options.workers;
  const file = join(work, "proxy.yaml");
  writeFileSync(file, stringify(config));
  // warn, as Kamailio's debug=0: per-message logging would cost either of them dearly.
  const child = launch(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      join(ROOT, "dist", "src", "cli", "main.js"),
      "proxy",
      "--config",
      file,
      "--json",
      "--log-level",
      "warn",
    ],
    { cpu: options.cpu },
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
    throw new Error(`${options.name} did not start:\n${log()}`);
  }
  return { name: options.name, process: child, port, log, stop };
}

// ---- SIPp ----

export interface SippRun {
  readonly process: ChildProcess;
  readonly dir: string;
  readonly output: () => string;
}

export interface SippOutcome {
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
export function startSipp(
  args: readonly string[],
  timeoutMs: number,
  cpu: number | undefined,
): SippRun {
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
    { cpu, cwd: dir },
  );
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const timer = setTimeout(() => killNow(child), timeoutMs);
  child.once("exit", () => clearTimeout(timer));
  return { process: child, dir, output: () => `${err()}\n${out()}` };
}

/** Waits for SIPp to end (or ends it: SIGUSR1 twice, then SIGKILL), reads its files. */
export async function finishSipp(run: SippRun, stopIt = false): Promise<SippOutcome> {
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

/** The SIPp scenarios of a call (files under test/fixtures/sipp/). */
export interface CallScenarios {
  /** The caller: INVITE … 200, ACK and BYE along the Record-Route set, `-d` hold between. */
  readonly uac: string;
  /** The callee, registered at the proxy. */
  readonly uas: string;
  /** Messages both SIPps send in a call (caller INVITE, ACK, BYE; callee 180, 200, 200). */
  readonly messagesPerCall: number;
}

export async function startCallee(
  scenarios: CallScenarios,
  cpu: number | undefined,
): Promise<{ run: SippRun; port: number }> {
  const port = await freePort();
  const run = startSipp(
    ["-sf", fixturePath("sipp", scenarios.uas), "-p", String(port), "-m", "100000000"],
    24 * 3_600_000,
    cpu,
  );
  await waitForBound(port, "udp");
  return { run, port };
}

export async function register(
  target: CallTarget,
  user: string,
  contactPort: number,
  cpu: number | undefined,
): Promise<void> {
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
    cpu,
  );
  const result = await finishSipp(run);
  if (result.stats.get("SuccessfulCall(C)") !== 1) {
    throw new Error(
      `REGISTER of ${user} at ${target.name} failed:\n${result.output}\n${target.log()}`,
    );
  }
}

export async function startCaller(
  target: CallTarget,
  scenarios: CallScenarios,
  call: { user: string; rate: number; calls: number; holdMs: number },
  cpu: number | undefined,
): Promise<SippRun> {
  const { user, rate, calls, holdMs } = call;
  const port = await freePort();
  return startSipp(
    [
      `127.0.0.1:${target.port}`,
      "-sf",
      fixturePath("sipp", scenarios.uac),
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
    cpu,
  );
}

// ---- one rate ----

export interface CallStep {
  target: string;
  rate: number;
  calls: number;
  successful: number;
  /** Calls that did not end well, the late 1xx ones included. */
  failed: number;
  /** Calls SIPp aborted on a 1xx that came after the 200: not the proxy's failure. */
  lateProvisionals: number;
  /** SIPp's first error, when there were errors. */
  firstError: string;
  /** Failure counters of the caller that were not 0 ("FailedTimeoutOnRecv": 12, …). */
  failures: Record<string, number>;
  callerRetransmissions: number;
  calleeRetransmissions: number;
  messagesPerCall: number;
  /** 200s received per second over the run. */
  achieved: number;
  setupP50: number;
  setupP99: number;
  setupMax: number;
  setupMean: number;
  /** CPU seconds of the proxy (and its children) over the measured run. */
  cpuSeconds: number;
  cores: number;
  usPerCall: number;
  /** CPU seconds over the measured run of the other processes named in `alsoCpu`. */
  otherCpuSeconds: Record<string, number>;
  clean: boolean;
  reasons: string[];
  /** The end of the target's log (stderr). */
  log: string;
}

export interface RunCallsOptions {
  readonly scenarios: CallScenarios;
  readonly seconds: number;
  readonly holdMs: number;
  /** Warm-up calls (JIT, caches) at min(rate, warmupMaxRate)/s for warmupSeconds. */
  readonly warmupSeconds: number;
  readonly warmupMaxRate: number;
  readonly sippCpu: number | undefined;
  /** Other processes whose CPU over the measured run is counted (e.g. a media relay). */
  readonly alsoCpu?: readonly { readonly name: string; readonly pid: number }[];
}

/**
 * Calls through a started `target` at `rate`: two callees registered (one for the warm-up),
 * the warm-up, then `rate × seconds` calls measured. The target is left running.
 */
export async function runCalls(
  target: CallTarget,
  rate: number,
  o: RunCallsOptions,
): Promise<CallStep> {
  const sipps: SippRun[] = [];
  try {
    const warmCallee = await startCallee(o.scenarios, o.sippCpu);
    sipps.push(warmCallee.run);
    await register(target, "warmup", warmCallee.port, o.sippCpu);
    const callee = await startCallee(o.scenarios, o.sippCpu);
    sipps.push(callee.run);
    await register(target, "bob", callee.port, o.sippCpu);

    const warmRate = Math.min(rate, o.warmupMaxRate);
    await finishSipp(
      await startCaller(
        target,
        o.scenarios,
        { user: "warmup", rate: warmRate, calls: warmRate * o.warmupSeconds, holdMs: 0 },
        o.sippCpu,
      ),
    );
    await finishSipp(warmCallee.run, true);
    await sleep(500);

    const calls = rate * o.seconds;
    const started = performance.now();
    const cpuBefore = cpuSeconds(target.process.pid!);
    const othersBefore = (o.alsoCpu ?? []).map((p) => cpuSeconds(p.pid));
    const caller = await finishSipp(
      await startCaller(
        target,
        o.scenarios,
        { user: "bob", rate, calls, holdMs: o.holdMs },
        o.sippCpu,
      ),
    );
    const cpu = cpuSeconds(target.process.pid!) - cpuBefore;
    const otherCpuSeconds: Record<string, number> = {};
    (o.alsoCpu ?? []).forEach((p, i) => {
      otherCpuSeconds[p.name] = cpuSeconds(p.pid) - othersBefore[i]!;
    });
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
      (callerRetransmissions + calleeRetransmissions) / (calls * o.scenarios.messagesPerCall);
    if (retransmitted >= 0.01) reasons.push(`${(100 * retransmitted).toFixed(2)}% retransmitted`);
    if (achieved < 0.95 * rate) reasons.push(`only ${Math.round(achieved)} calls/s set up`);
    if (!running(target.process)) {
      reasons.push(`${target.name} exited (${target.process.exitCode})`);
    }
    if (successful === 0 && caller.output.trim() !== "") {
      reasons.push(`caller: ${caller.output.trim().split("\n")[0]}`);
    }
    return {
      target: target.name,
      rate,
      calls,
      successful,
      failed,
      lateProvisionals,
      firstError: caller.firstError,
      failures,
      callerRetransmissions,
      calleeRetransmissions,
      messagesPerCall: o.scenarios.messagesPerCall,
      achieved,
      setupP50: percentile(sorted, 0.5),
      setupP99: percentile(sorted, 0.99),
      setupMax: sorted.at(-1) ?? NaN,
      setupMean: sorted.length === 0 ? NaN : sorted.reduce((a, b) => a + b, 0) / sorted.length,
      cpuSeconds: cpu,
      cores: cpu / wall,
      usPerCall: (cpu * 1e6) / Math.max(1, successful),
      otherCpuSeconds,
      clean: reasons.length === 0,
      reasons,
      log: target.log(),
    };
  } finally {
    for (const run of sipps) await stopGroup(run.process, "SIGKILL", 0);
    for (const run of sipps) removeDir(run.dir);
  }
}

/** One line for a step (and, when it went wrong, what SIPp and the target said). */
export function printStep(s: CallStep, extra: readonly string[] = []): void {
  const pct = (n: number) => `${n} (${((100 * n) / s.calls).toFixed(2)}%)`;
  const retransmissions = s.callerRetransmissions + s.calleeRetransmissions;
  const fields = [
    `${s.target.padEnd(8)} ${String(s.rate).padStart(5)}/s`,
    `set up ${String(Math.round(s.achieved)).padStart(5)}/s`,
    `ok ${String(s.successful).padStart(6)}`,
    `failed ${pct(s.failed - s.lateProvisionals)}`,
    ...(s.lateProvisionals > 0 ? [`late 1xx ${pct(s.lateProvisionals)}`] : []),
    `retrans ${s.callerRetransmissions}+${s.calleeRetransmissions} ` +
      `(${((100 * retransmissions) / (s.calls * s.messagesPerCall)).toFixed(2)}%)`,
    `setup p50 ${s.setupP50} p99 ${s.setupP99} max ${s.setupMax} ms`,
    `cpu ${s.cpuSeconds.toFixed(2)} s (${s.cores.toFixed(2)} cores) ${s.usPerCall.toFixed(0)} µs/call`,
    ...extra,
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

// ---- the ladder ----

export interface LadderOptions<S extends CallStep> {
  readonly targets: readonly string[];
  readonly rates: readonly number[];
  /** Runs one target at one rate (fresh processes), or throws (the target leaves the ladder). */
  readonly step: (target: string, rate: number) => Promise<S>;
  readonly print: (step: S) => void;
  /**
   * After the ladder, halve the gap between each target's highest clean rate and the lowest
   * unclean rate above it until it is at most this many calls/s (0: no refinement).
   */
  readonly resolution?: number;
}

/**
 * The targets take turns rate by rate, so that the noise of a shared machine falls on all
 * alike; past saturation higher rates only take longer to fail, so a target leaves the ladder
 * after 20% failed calls or two unclean rates in a row. With a resolution, the targets then
 * take turns halving their gaps. Returns each target's steps in the order they ran.
 */
export async function climb<S extends CallStep>(o: LadderOptions<S>): Promise<Map<string, S[]>> {
  const steps = new Map<string, S[]>(o.targets.map((t) => [t, []]));
  const run = async (name: string, rate: number): Promise<S | undefined> => {
    try {
      const step = await o.step(name, rate);
      steps.get(name)!.push(step);
      o.print(step);
      return step;
    } catch (e) {
      console.log(
        `  ${name.padEnd(8)} ${String(rate).padStart(5)}/s  ERROR: ${(e as Error).message}`,
      );
      return undefined;
    }
  };
  const active = new Set(o.targets);
  for (const rate of o.rates) {
    for (const name of o.targets) {
      if (!active.has(name)) continue;
      const step = await run(name, rate);
      if (step === undefined) {
        active.delete(name);
        continue;
      }
      const last = steps.get(name)!.slice(-2);
      if (
        (step.failed - step.lateProvisionals) / step.calls > 0.2 ||
        (last.length === 2 && last.every((s) => !s.clean))
      ) {
        active.delete(name);
      }
    }
  }
  const resolution = o.resolution ?? 0;
  if (resolution <= 0) return steps;
  // The gap of a target: its highest clean rate and the lowest unclean rate above it.
  const gap = (name: string): [number, number] | undefined => {
    const ran = steps.get(name)!;
    const lo = Math.max(0, ...ran.filter((s) => s.clean).map((s) => s.rate));
    const above = ran.filter((s) => !s.clean && s.rate > lo).map((s) => s.rate);
    if (lo === 0 || above.length === 0) return undefined;
    const hi = Math.min(...above);
    return hi - lo > resolution ? [lo, hi] : undefined;
  };
  const broken = new Set<string>();
  for (;;) {
    let ran = false;
    for (const name of o.targets) {
      const g = broken.has(name) ? undefined : gap(name);
      if (g === undefined) continue;
      // Midway, on a multiple of 50 calls/s.
      const mid = Math.round((g[0] + g[1]) / 100) * 50;
      if (mid <= g[0] || mid >= g[1]) continue;
      if ((await run(name, mid)) === undefined) broken.add(name);
      else ran = true;
    }
    if (!ran) return steps;
  }
}

/** A target's highest clean step. */
export function bestClean<S extends CallStep>(steps: readonly S[] | undefined): S | undefined {
  return (steps ?? []).filter((s) => s.clean).sort((a, b) => b.rate - a.rate)[0];
}
