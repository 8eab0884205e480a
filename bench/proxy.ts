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
// Pinning: none by default. The reference figure for Kamailio (about 5,500 clean
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
import { readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { waitForBound, freePort } from "../test/helpers/sipp.js";
import { have, launch, reapAll, removeDir, stopGroup, tail, tempDir } from "./processes.js";
import {
  ROOT,
  bestClean,
  checkWholeNumbers,
  climb,
  printStep,
  runCalls,
  startSipsteerProxy,
  type CallScenarios,
  type CallStep,
  type CallTarget,
} from "./sipp-calls.js";

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
const SCENARIOS: CallScenarios = {
  uac: "call-uac-route.xml",
  uas: "call-uas.xml",
  messagesPerCall: 6,
};

checkWholeNumbers([
  ["BENCH_SECONDS", SECONDS, 1],
  ["BENCH_HOLD_MS", HOLD_MS, 0],
  ["SIPSTEER_WORKERS", WORKERS === "auto" ? 1 : WORKERS, 1],
  ...RATES.map((r) => ["BENCH_RATES", r, 1] as const),
]);
for (const target of TARGETS) {
  if (target !== "sipsteer" && target !== "kamailio") {
    console.error(`BENCH_TARGETS: unknown target ${target} (sipsteer, kamailio)`);
    process.exit(2);
  }
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

// ---- the targets ----

/** Extra node flags for the sipsteer proxy, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile it. */
const NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? "").split(/\s+/).filter((a) => a !== "");

async function startKamailio(): Promise<CallTarget> {
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

async function runStep(name: string, rate: number): Promise<CallStep> {
  const target =
    name === "sipsteer"
      ? await startSipsteerProxy({
          name,
          workers: WORKERS,
          nodeArgs: NODE_ARGS,
          cpu: PROXY_CPU,
        })
      : await startKamailio();
  try {
    return await runCalls(target, rate, {
      scenarios: SCENARIOS,
      seconds: SECONDS,
      holdMs: HOLD_MS,
      warmupSeconds: 2,
      warmupMaxRate: 500,
      sippCpu: SIPP_CPU,
    });
  } finally {
    await target.stop();
  }
}

// ---- the run ----

console.log(
  `SIPp calls over UDP (INVITE/180/200/ACK, ${HOLD_MS} ms hold, BYE/200), ${SECONDS} s per rate; ` +
    (PIN ? "proxy pinned to CPU 1, SIPp to CPU 0" : "unpinned") +
    (WORKERS !== 1 ? `; sipsteer workers: ${WORKERS}` : "") +
    "\n",
);
let steps = new Map<string, CallStep[]>();
try {
  steps = await climb({ targets: TARGETS, rates: RATES, step: runStep, print: printStep });
} finally {
  reapAll();
}

const bestSipsteer = bestClean(steps.get("sipsteer"));
const bestKamailio = bestClean(steps.get("kamailio"));
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

const row = (name: string, s: CallStep | undefined) => {
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
