// Part 4 of npm run bench:monitor: what 100 proxies reporting 5 times a second cost the
// monitor. A fresh `sipsteer monitor` (on CPU 1 when pinned) takes signed pushes from a load
// process (bench/monitor/report-pusher.ts, on CPU 0) of 100 synthetic proxies, each pushing
// every 200 ms. Over HTTP (POST /v1/reports, one keep-alive connection a proxy: what a sipsteer
// proxy uses when its push target is the monitor's http:// URL, as DESIGN.md's `sipsteer up`
// sets it), then over UDP (the monitor's udpPush endpoint) for comparison. The idle monitor's
// own CPU is measured first and shown apart.
//
// What is measured is the steady state a monitor lives in: the first push run starts with
// BENCH_INGEST_WARMUP_SECONDS (12 s) unmeasured, since V8 takes some 10 s at 500 pushes a second
// to compile the hot path (the first 5 s windows cost 16, 7, 6% of a core, the later ones 5);
// then BENCH_INGEST_SECONDS (20 s) are measured in one-second windows of the monitor's CPU (its
// threads' run time from /proc/<pid>/task/*/schedstat; the mean from utime + stime). The
// figure is the median window; the mean is printed beside it. The same pushes then go to a
// bare Node server (bench/monitor/bare-receiver.ts) as the reference: what any Node process
// pays to take them. Runs alternate between the two servers.
//
// This VM now and then charges a receiving process seconds of system time that is not work:
// a bare UDP receiver whose handler does nothing read 24–30% of a core for 12 s in a row, and
// a system-wide `perf record` over such a stretch found the machine 90% halted and the
// receiver nowhere but in the hypervisor's pvm_irq_enable. Such stretches move the mean; the
// median moves only when they fill most of a run, which the reference shows when it happens.
import { join } from "node:path";
import { freePort } from "../../test/helpers/sipp.js";
import { threadCpuSeconds } from "../proc-cpu.js";
import {
  KEY,
  LOAD_CPU,
  LOOPBACK,
  ROOT,
  SERVER_CPU,
  cpuSeconds,
  firstJsonLine,
  launch,
  lines,
  median,
  sleep,
  startMonitor,
  stopGroup,
  tail,
} from "./harness.js";

const PROXIES = 100;
const INTERVAL_MS = 200;
const SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 20);
const WARMUP_SECONDS = Number(process.env.BENCH_INGEST_WARMUP_SECONDS ?? 12);
/** The later runs' warm-up: the pusher's own connections and sockets, the monitor is warm. */
const LATER_WARMUP_SECONDS = 2;
const IDLE_SECONDS = 3;

export interface IngestRun {
  readonly channel: "http" | "udp";
  /** The median one-second window, % of a core. */
  readonly corePct: number;
  /** Over the whole measured time. */
  readonly meanCorePct: number;
  /** Each one-second window's % of a core. */
  readonly windowsPct: readonly number[];
  readonly sent: number;
  /** Reports the monitor accepted over the whole run (its /metrics). */
  readonly accepted: number;
  readonly refused: number;
  readonly errors: number;
}

export interface IngestFigures {
  readonly http: IngestRun;
  readonly udp: IngestRun;
  /** The same pushes at a bare Node server (bench/monitor/bare-receiver.ts). */
  readonly bareHttp: IngestRun;
  readonly bareUdp: IngestRun;
  readonly idleCorePct: number;
}

interface BareReceiver {
  readonly pid: number;
  readonly http: number;
  readonly udp: number;
  readonly stop: () => Promise<void>;
}

async function startBareReceiver(): Promise<BareReceiver> {
  const child = launch(
    process.execPath,
    [join(ROOT, "dist", "bench", "monitor", "bare-receiver.js")],
    {
      cpu: SERVER_CPU,
    },
  );
  const stop = () => stopGroup(child, "SIGTERM", 3000);
  try {
    const ports = (await firstJsonLine(child, 10_000, tail(child.stderr))) as {
      http: number;
      udp: number;
    };
    return { pid: child.pid!, http: ports.http, udp: ports.udp, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function metric(http: string, name: string): Promise<number> {
  const text = await (await fetch(`${http}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

/**
 * One push run at the server `serverPid`. `monitorHttp` is the monitor's HTTP base, whose
 * /metrics count what it accepted and refused; the bare reference has none (then what the
 * pusher saw answered counts, and UDP datagrams count as sent).
 */
async function push(
  serverPid: number,
  monitorHttp: string | undefined,
  channel: "http" | "udp",
  target: string,
  warmupSeconds: number,
  label: string,
): Promise<IngestRun> {
  const counted = async (name: string) =>
    monitorHttp === undefined ? 0 : metric(monitorHttp, name);
  const acceptedBefore = await counted("sipsteer_monitor_reports_accepted_total");
  const refusedBefore = await counted("sipsteer_monitor_reports_refused_total");
  const child = launch(
    process.execPath,
    [
      join(ROOT, "dist", "bench", "monitor", "report-pusher.js"),
      target,
      String(PROXIES),
      String(INTERVAL_MS),
      String(warmupSeconds),
      String(SECONDS),
    ],
    { cpu: LOAD_CPU },
  );
  const log = tail(child.stderr);
  let cpuAtSteady = 0;
  let steadyAt = 0;
  let meanCorePct = NaN;
  const windowsPct: number[] = [];
  let windowTimer: NodeJS.Timeout | undefined;
  let done: { sent: number; accepted: number; refused: number; errors: number } | undefined;
  lines(child.stdout, (line) => {
    const message = JSON.parse(line) as { phase: string };
    if (message.phase === "steady") {
      cpuAtSteady = cpuSeconds(serverPid);
      steadyAt = performance.now();
      let windowCpu = threadCpuSeconds(serverPid);
      let windowAt = steadyAt;
      windowTimer = setInterval(() => {
        const cpu = threadCpuSeconds(serverPid);
        const at = performance.now();
        windowsPct.push(((cpu - windowCpu) / ((at - windowAt) / 1000)) * 100);
        windowCpu = cpu;
        windowAt = at;
      }, 1000);
    } else if (message.phase === "end") {
      clearInterval(windowTimer);
      const wall = (performance.now() - steadyAt) / 1000;
      meanCorePct = ((cpuSeconds(serverPid) - cpuAtSteady) / wall) * 100;
    } else if (message.phase === "done") {
      done = message as unknown as typeof done;
    }
  });
  const exit = new Promise((r) => child.once("exit", r));
  const timer = setTimeout(
    () => void stopGroup(child, "SIGKILL", 0),
    (warmupSeconds + SECONDS + 20) * 1000,
  );
  await exit;
  clearTimeout(timer);
  clearInterval(windowTimer);
  await stopGroup(child, "SIGKILL", 0);
  if (done === undefined) throw new Error(`the report pusher did not finish:\n${log()}`);
  await sleep(200);
  const accepted =
    monitorHttp === undefined
      ? channel === "udp"
        ? done.sent
        : done.accepted
      : (await counted("sipsteer_monitor_reports_accepted_total")) - acceptedBefore;
  const refused =
    monitorHttp === undefined
      ? done.refused
      : (await counted("sipsteer_monitor_reports_refused_total")) - refusedBefore;
  const run: IngestRun = {
    channel,
    corePct: Number((median(windowsPct) ?? NaN).toFixed(2)),
    meanCorePct: Number(meanCorePct.toFixed(2)),
    windowsPct: windowsPct.map((w) => Number(w.toFixed(1))),
    sent: done.sent,
    accepted,
    refused,
    errors: done.errors,
  };
  console.log(
    `  ${label.padEnd(13)} ${run.corePct.toFixed(2)}% of a core (median second; mean ${run.meanCorePct.toFixed(2)}%)` +
      `  sent ${run.sent}  accepted ${run.accepted}  refused ${run.refused}  errors ${run.errors}\n` +
      `                seconds: ${run.windowsPct.join(" ")}`,
  );
  return run;
}

export async function benchIngest(): Promise<IngestFigures> {
  const udpPort = await freePort();
  const monitor = await startMonitor(
    {
      http: { address: "127.0.0.1", port: 0 },
      udpPush: { address: "127.0.0.1", port: udpPort },
      keys: [KEY],
      allowedDestinations: LOOPBACK,
    },
    SERVER_CPU,
  );
  try {
    const pid = monitor.process.pid!;
    console.log(
      `${PROXIES} synthetic proxies each pushing every ${INTERVAL_MS} ms (${(PROXIES * 1000) / INTERVAL_MS} reports/s), ` +
        `${SECONDS} s measured in one-second windows, after ${WARMUP_SECONDS} s of warm-up (${LATER_WARMUP_SECONDS} s before UDP)`,
    );
    const idleBefore = cpuSeconds(pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleCorePct = Number((((cpuSeconds(pid) - idleBefore) / IDLE_SECONDS) * 100).toFixed(2));
    console.log(`  idle ${idleCorePct.toFixed(2)}% of a core`);
    // Each server's first run starts with the long warm-up; the runs alternate between the
    // monitor and the bare reference so that a noisy stretch of this VM is less likely to
    // fall on one of them alone. The HTTP proxies go stale between runs and the next run's
    // (new boots) join again.
    const http = await push(
      pid,
      monitor.http,
      "http",
      `${monitor.http}/v1/reports`,
      WARMUP_SECONDS,
      "monitor http",
    );
    const bare = await startBareReceiver();
    let bareHttp: IngestRun;
    let bareUdp: IngestRun;
    let udp: IngestRun;
    try {
      bareHttp = await push(
        bare.pid,
        undefined,
        "http",
        `http://127.0.0.1:${bare.http}/v1/reports`,
        WARMUP_SECONDS,
        "bare http",
      );
      udp = await push(
        pid,
        monitor.http,
        "udp",
        `udp://127.0.0.1:${udpPort}`,
        LATER_WARMUP_SECONDS,
        "monitor udp",
      );
      bareUdp = await push(
        bare.pid,
        undefined,
        "udp",
        `udp://127.0.0.1:${bare.udp}`,
        LATER_WARMUP_SECONDS,
        "bare udp",
      );
    } finally {
      await bare.stop();
    }
    return { http, udp, bareHttp, bareUdp, idleCorePct };
  } finally {
    await monitor.stop();
  }
}
