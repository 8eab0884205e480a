// npm run bench:relay — what engaging the media relay costs the proxy (issue 8, "Speed"):
// whole SIPp calls with SDP through `sipsteer proxy` with `media.relay: always` (every initial
// INVITE's offer goes to rtpengine over ng before the INVITE is forwarded, the 200's answer
// before the 200 is, the BYE deletes the call) against the same proxy with `media.relay: never`,
// on the same harness in the same run as bench:proxy (bench/sipp-calls.ts): a SIPp callee
// (call-uas-sdp-silent.xml) answering with SDP registers at the proxy, a SIPp caller
// (call-uac-route-sdp.xml) places INVITE+SDP / 180 / 200+SDP / ACK, a hold of BENCH_HOLD_MS,
// BYE / 200 at each rate for BENCH_SECONDS. No RTP: rtpengine allocates its ports per call all
// the same, and the question is the signalling rate.
//
// Each rate gets fresh processes: for "relay" a fresh rtpengine (user space, --table=-1, ng on
// a free port, RTP ports BENCH_RTP_PORTS on 127.0.0.1, no session limit) and a proxy pointed at
// it; for "direct" the proxy alone. The two variants take turns rate by rate; a variant leaves
// the ladder after 20% failed or two unclean rates in a row; then each variant's gap between
// its highest clean rate and the lowest unclean one above is halved until it is at most
// BENCH_RESOLUTION calls/s. A rate is clean as in bench:proxy: under 1% failed, under 1% of
// SIPp's messages retransmitted, 95% of the rate set up. After each relay step the bench asks
// rtpengine (ng `statistics` and `list`) how many sessions it still holds once the calls are
// over: every call ended with a BYE, so it should be 0; and how many it managed in all (every
// call should have been on it).
//
// Figures: each variant's highest clean rate (cps_relay, cps_direct; ratio = relay / direct;
// goal ≥ 0.7, i.e. the relay costs under 30% of the call rate); call setup (SIPp rtd "setup",
// INVITE sent to 200 received, one value a call) at BENCH_SETUP_RATE, a moderate rate both run:
// setup_ms_added_p50 = p50(relay) − p50(direct), and the same for the means (SIPp's clock
// moves in coarse steps, so the mean of many calls resolves a difference the median may not);
// CPU per call at the highest rate both ran clean, of the proxy and of rtpengine.
//
// Environment: BENCH_RATES (default 500,1000,1500,2000,2500,3000,3500,4000), BENCH_RESOLUTION
// (default 250; 0: no refinement), BENCH_SECONDS (default 40, as bench:proxy: past the 32 s a
// call's transactions live), BENCH_HOLD_MS (default 100), BENCH_SETUP_RATE (default 500; added
// to the ladder when not in it), BENCH_VARIANTS (default "relay,direct"), BENCH_RTP_PORTS
// (default 12000-19999: below freePort's 20000–32000 and Linux's ephemeral range, and apart
// from the 61000–65000 of test relays), BENCH_RTPENGINE_LOG_LEVEL (default 4, warnings),
// BENCH_RTPENGINE_LOG (a file rtpengine's log is appended to; none by default),
// SIPSTEER_WORKERS (default "auto"), BENCH_PIN=1 (proxy and rtpengine on CPU 1, SIPp on CPU 0),
// BENCH_PROXY_NODE_ARGS (node flags for the proxy, e.g. "--cpu-prof --cpu-prof-dir=DIR").
// Prints a line per step, then a table; the last line is a JSON object of the figures.
import { spawnSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import {
  NgClient,
  RTPENGINE_PACKAGE,
  RtpengineProcess,
  type NgStatistics,
} from "../src/media/rtpengine/index.js";
import { freePort } from "../test/helpers/sipp.js";
import { have, reapAll, sleep } from "./processes.js";
import {
  bestClean,
  checkWholeNumbers,
  climb,
  printStep,
  runCalls,
  startSipsteerProxy,
  type CallScenarios,
  type CallStep,
} from "./sipp-calls.js";

const SETUP_RATE = Number(process.env.BENCH_SETUP_RATE ?? 500);
const LADDER = (process.env.BENCH_RATES ?? "500,1000,1500,2000,2500,3000,3500,4000")
  .split(",")
  .map(Number);
const RATES = [...new Set([SETUP_RATE, ...LADDER])].sort((a, b) => a - b);
const RESOLUTION = Number(process.env.BENCH_RESOLUTION ?? 250);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 40);
const HOLD_MS = Number(process.env.BENCH_HOLD_MS ?? 100);
const WORKERS_ENV = process.env.SIPSTEER_WORKERS ?? "auto";
const WORKERS: number | "auto" = WORKERS_ENV === "auto" ? "auto" : Number(WORKERS_ENV);
const VARIANTS = (process.env.BENCH_VARIANTS ?? "relay,direct").split(",");
const [PORT_MIN, PORT_MAX] = (process.env.BENCH_RTP_PORTS ?? "12000-19999")
  .split("-")
  .map(Number) as [number, number];
const RTPENGINE_LOG_LEVEL = Number(process.env.BENCH_RTPENGINE_LOG_LEVEL ?? 4);
/** A file rtpengine's log lines are appended to (none by default). */
const RTPENGINE_LOG = process.env.BENCH_RTPENGINE_LOG;
const NODE_ARGS = (process.env.BENCH_PROXY_NODE_ARGS ?? "").split(/\s+/).filter((a) => a !== "");
const SCENARIOS: CallScenarios = {
  uac: "call-uac-route-sdp.xml",
  uas: "call-uas-sdp-silent.xml",
  messagesPerCall: 6,
};
const WARMUP_SECONDS = 2;
const WARMUP_MAX_RATE = 500;

checkWholeNumbers([
  ["BENCH_SECONDS", SECONDS, 1],
  ["BENCH_HOLD_MS", HOLD_MS, 0],
  ["BENCH_RESOLUTION", RESOLUTION, 0],
  ["BENCH_SETUP_RATE", SETUP_RATE, 1],
  ["BENCH_RTPENGINE_LOG_LEVEL", RTPENGINE_LOG_LEVEL, 0],
  ["SIPSTEER_WORKERS", WORKERS === "auto" ? 1 : WORKERS, 1],
  ["BENCH_RTP_PORTS", PORT_MIN, 1024],
  ["BENCH_RTP_PORTS", PORT_MAX - PORT_MIN, 100],
  ...RATES.map((r) => ["BENCH_RATES", r, 1] as const),
]);
for (const v of VARIANTS) {
  if (v !== "relay" && v !== "direct") {
    console.error(`BENCH_VARIANTS: unknown variant ${v} (relay, direct)`);
    process.exit(2);
  }
}
for (const [tool, pkg] of [
  ["sipp", "sip-tester"],
  ["rtpengine", RTPENGINE_PACKAGE],
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
const SERVER_CPU = PIN ? 1 : undefined;
const SIPP_CPU = PIN ? 0 : undefined;

// rtpengine runs as RtpengineProcess starts it (not in a process group of the harness's):
// killed on every way out as well.
const relays = new Set<RtpengineProcess>();
process.on("exit", () => {
  for (const r of relays) if (r.pid !== undefined && r.running) process.kill(r.pid, "SIGKILL");
});

async function startRelay(): Promise<RtpengineProcess> {
  const relay = new RtpengineProcess({
    ngAddress: "127.0.0.1",
    ngPort: await freePort(),
    interfaces: ["127.0.0.1"],
    portMin: PORT_MIN,
    portMax: PORT_MAX,
    maxSessions: -1,
    logLevel: RTPENGINE_LOG_LEVEL,
    ...(RTPENGINE_LOG === undefined
      ? {}
      : { onLog: (line: string) => appendFileSync(RTPENGINE_LOG, `${line}\n`) }),
  });
  relays.add(relay);
  await relay.start();
  // Every thread of it on the server core (taskset -a: its threads are already running).
  if (SERVER_CPU !== undefined) {
    spawnSync("taskset", ["-a", "-p", "-c", String(SERVER_CPU), String(relay.pid)], {
      stdio: "ignore",
    });
  }
  return relay;
}

/** What rtpengine holds once the calls are over (waiting up to 5 s for the deletes). */
async function relayLeftovers(
  relay: RtpengineProcess,
): Promise<{ stats: NgStatistics; listed: number }> {
  const client = new NgClient({ address: "127.0.0.1", port: relay.options.ngPort });
  await client.start();
  try {
    const deadline = Date.now() + 5000;
    for (;;) {
      const stats = await client.statistics();
      const listed = (await client.list(1000)).length;
      if ((stats.sessions === 0 && listed === 0) || Date.now() > deadline) return { stats, listed };
      await sleep(200);
    }
  } finally {
    await client.stop();
  }
}

interface RelayStep extends CallStep {
  /** Sessions rtpengine still held after the calls (relay only). */
  sessionsLeft?: number;
  /** Calls rtpengine managed in all, the warm-up's included (relay only). */
  managed?: number;
  /** rtpengine's CPU per successful call, µs (relay only). */
  relayUsPerCall?: number;
}

async function runStep(variant: string, rate: number): Promise<RelayStep> {
  const relay = variant === "relay" ? await startRelay() : undefined;
  try {
    const target = await startSipsteerProxy({
      name: variant,
      workers: WORKERS,
      nodeArgs: NODE_ARGS,
      cpu: SERVER_CPU,
      config: {
        media:
          relay === undefined
            ? { relay: "never" }
            : { relay: "always", relays: [{ id: "r1", ng: relay.ngEndpoint }] },
      },
    });
    try {
      const step: RelayStep = await runCalls(target, rate, {
        scenarios: SCENARIOS,
        seconds: SECONDS,
        holdMs: HOLD_MS,
        warmupSeconds: WARMUP_SECONDS,
        warmupMaxRate: WARMUP_MAX_RATE,
        sippCpu: SIPP_CPU,
        alsoCpu: relay === undefined ? [] : [{ name: "rtpengine", pid: relay.pid! }],
      });
      if (relay !== undefined) {
        const left = await relayLeftovers(relay);
        step.sessionsLeft = Math.max(left.stats.sessions, left.listed);
        step.managed = left.stats.managedSessions;
        step.relayUsPerCall =
          ((step.otherCpuSeconds.rtpengine ?? 0) * 1e6) / Math.max(1, step.successful);
        const warmupCalls = Math.min(rate, WARMUP_MAX_RATE) * WARMUP_SECONDS;
        if (step.sessionsLeft > 0) {
          step.clean = false;
          step.reasons.push(`${step.sessionsLeft} sessions left on rtpengine`);
        }
        if (step.managed < step.successful + warmupCalls * 0.99) {
          step.clean = false;
          step.reasons.push(`rtpengine managed only ${step.managed} calls`);
        }
      }
      return step;
    } finally {
      await target.stop();
    }
  } finally {
    if (relay !== undefined) {
      await relay.stop();
      relays.delete(relay);
    }
  }
}

function printRelayStep(s: RelayStep): void {
  printStep(
    s,
    s.managed === undefined
      ? []
      : [
          `rtpengine ${s.relayUsPerCall!.toFixed(0)} µs/call, ` +
            `${s.managed} managed, ${s.sessionsLeft} left`,
        ],
  );
}

// ---- the run ----

console.log(
  `SIPp calls with SDP over UDP (INVITE+SDP/180/200+SDP/ACK, ${HOLD_MS} ms hold, BYE/200), ` +
    `${SECONDS} s per rate; relay: rtpengine ${PORT_MIN}-${PORT_MAX}, no session limit; ` +
    (PIN ? "proxy and rtpengine pinned to CPU 1, SIPp to CPU 0" : "unpinned") +
    (WORKERS !== 1 ? `; sipsteer workers: ${WORKERS}` : "") +
    "\n",
);
let steps = new Map<string, RelayStep[]>();
try {
  steps = await climb({
    targets: VARIANTS,
    rates: RATES,
    step: runStep,
    print: printRelayStep,
    resolution: RESOLUTION,
  });
} finally {
  reapAll();
}

const round = (n: number | undefined, digits = 1) =>
  n === undefined || Number.isNaN(n) ? null : Number(n.toFixed(digits));
const best = (v: string) => bestClean(steps.get(v));
const at = (v: string, rate: number | undefined) =>
  (steps.get(v) ?? []).find((s) => s.rate === rate);
const cleanRates = (v: string) =>
  new Set((steps.get(v) ?? []).filter((s) => s.clean).map((s) => s.rate));
const commonRate = [...cleanRates("relay")]
  .filter((r) => cleanRates("direct").has(r))
  .sort((a, b) => b - a)[0];
const bestRelay = best("relay");
const bestDirect = best("direct");
const setupRelay = at("relay", SETUP_RATE);
const setupDirect = at("direct", SETUP_RATE);
const added = (key: "setupP50" | "setupMean") =>
  setupRelay === undefined || setupDirect === undefined
    ? undefined
    : setupRelay[key] - setupDirect[key];
const relaySteps = steps.get("relay") ?? [];
const maxLeft = (of: readonly RelayStep[]) =>
  of.length === 0 ? null : Math.max(...of.map((s) => s.sessionsLeft ?? 0));
/** Sessions rtpengine held after the calls of a clean step (every call ended with a BYE). */
const sessionsLeft = maxLeft(
  relaySteps.filter((s) => s.clean || s.reasons.every((r) => r.includes("sessions left"))),
);
/** After any step, those whose calls failed too (a caller that gave up sends no BYE). */
const sessionsLeftAny = maxLeft(relaySteps);

const figures = {
  cps_relay: bestRelay?.rate ?? 0,
  cps_direct: bestDirect?.rate ?? 0,
  ratio: bestDirect === undefined ? null : round((bestRelay?.rate ?? 0) / bestDirect.rate, 2),
  setup_ms_added_p50: round(added("setupP50")),
  setup_ms_added_mean: round(added("setupMean"), 2),
  setup_rate: SETUP_RATE,
  setup_clean: (setupRelay?.clean ?? false) && (setupDirect?.clean ?? false),
  setup_p50_ms_relay: round(setupRelay?.setupP50),
  setup_p50_ms_direct: round(setupDirect?.setupP50),
  setup_mean_ms_relay: round(setupRelay?.setupMean, 2),
  setup_mean_ms_direct: round(setupDirect?.setupMean, 2),
  setup_p99_ms_relay: round(setupRelay?.setupP99),
  setup_p99_ms_direct: round(setupDirect?.setupP99),
  cpu_rate: commonRate ?? null,
  proxy_us_per_call_relay: round(at("relay", commonRate)?.usPerCall, 0),
  proxy_us_per_call_direct: round(at("direct", commonRate)?.usPerCall, 0),
  rtpengine_us_per_call: round(at("relay", commonRate)?.relayUsPerCall, 0),
  relay_sessions_left: sessionsLeft,
  relay_sessions_left_any_step: sessionsLeftAny,
  seconds_per_rate: SECONDS,
  hold_ms: HOLD_MS,
  pinned: PIN,
  sipsteer_workers: WORKERS,
};

const columns = [
  ["variant", 8],
  ["best clean", 11],
  [`setup p50 / mean / p99 at ${SETUP_RATE}/s`, 34],
  [`proxy µs/call at ${commonRate ?? "-"}/s`, 24],
  [`rtpengine µs/call at ${commonRate ?? "-"}/s`, 28],
  ["sessions left", 15],
] as const;
const line = (cells: readonly unknown[]) =>
  cells
    .map((c, i) =>
      i === 0 ? String(c).padEnd(columns[0][1]) : String(c ?? "-").padStart(columns[i]![1]),
    )
    .join("");
const row = (v: string, s: RelayStep | undefined) => {
  const setup = at(v, SETUP_RATE);
  const cpu = at(v, commonRate);
  return line([
    v,
    s === undefined ? "none" : `${s.rate}/s`,
    setup === undefined
      ? "-"
      : `${setup.setupP50} / ${setup.setupMean.toFixed(2)} / ${setup.setupP99} ms`,
    cpu?.usPerCall.toFixed(0),
    cpu?.relayUsPerCall?.toFixed(0),
    v === "relay" ? sessionsLeft : "-",
  ]);
};
const leftovers = relaySteps.filter((s) => (s.sessionsLeft ?? 0) > 0);
console.log(
  `\n${line(columns.map((c) => c[0]))}\n${row("relay", bestRelay)}\n${row("direct", bestDirect)}\n` +
    `\nrelay / direct calls per second: ${figures.ratio ?? "-"} (goal: at least 0.7); ` +
    `setup added at ${SETUP_RATE}/s: p50 ${figures.setup_ms_added_p50 ?? "-"} ms, ` +
    `mean ${figures.setup_ms_added_mean ?? "-"} ms` +
    (setupRelay !== undefined && setupDirect !== undefined && !figures.setup_clean
      ? ` (not clean at ${SETUP_RATE}/s)`
      : "") +
    `\nrtpengine sessions after the calls: ${sessionsLeft ?? "-"} after every clean step` +
    (leftovers.length === 0
      ? ""
      : `; left after unclean steps (a call its caller gave up on ends without a BYE): ` +
        leftovers.map((s) => `${s.sessionsLeft} at ${s.rate}/s`).join(", ")),
);
console.log(JSON.stringify(figures));
