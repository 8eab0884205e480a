// Part 4 of npm run bench:monitor: what 100 proxies reporting 5 times a second cost the
// monitor. A fresh `sipsteer monitor` (on CPU 1 when pinned) takes signed pushes from a load
// process (bench/monitor/report-pusher.ts, on CPU 0) of 100 synthetic proxies, each pushing
// every 200 ms, for BENCH_INGEST_SECONDS after BENCH_INGEST_WARMUP_SECONDS of warm-up (2 s);
// the figure is the monitor's CPU (user + system of its process, from /proc) over that window
// in percent of one core. Over HTTP (POST /v1/reports, one keep-alive connection a proxy: what
// a sipsteer proxy uses when its push target is the monitor's http:// URL, as DESIGN.md's
// `sipsteer up` sets it), then over UDP (the monitor's udpPush endpoint) for comparison. The
// idle monitor's own CPU is measured first and shown apart.
import { join } from "node:path";
import { freePort } from "../../test/helpers/sipp.js";
import {
  KEY,
  LOAD_CPU,
  LOOPBACK,
  ROOT,
  SERVER_CPU,
  cpuSeconds,
  launch,
  lines,
  sleep,
  startMonitor,
  stopGroup,
  tail,
} from "./harness.js";

const PROXIES = 100;
const INTERVAL_MS = 200;
const SECONDS = Number(process.env.BENCH_INGEST_SECONDS ?? 10);
// Longer warm-ups measure the steady state: at 500 pushes a second V8 takes some 10 s to have
// compiled the hot path, and the first seconds cost twice what later ones do.
const WARMUP_SECONDS = Number(process.env.BENCH_INGEST_WARMUP_SECONDS ?? 2);
const IDLE_SECONDS = 3;

export interface IngestRun {
  readonly channel: "http" | "udp";
  readonly corePct: number;
  readonly sent: number;
  /** Reports the monitor accepted over the whole run (its /metrics). */
  readonly accepted: number;
  readonly refused: number;
  readonly errors: number;
}

export interface IngestFigures {
  readonly http: IngestRun;
  readonly udp: IngestRun;
  readonly idleCorePct: number;
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

async function push(
  monitorPid: number,
  monitorHttp: string,
  channel: "http" | "udp",
  target: string,
): Promise<IngestRun> {
  const acceptedBefore = await metric(monitorHttp, "sipsteer_monitor_reports_accepted_total");
  const refusedBefore = await metric(monitorHttp, "sipsteer_monitor_reports_refused_total");
  const child = launch(
    process.execPath,
    [
      join(ROOT, "dist", "bench", "monitor", "report-pusher.js"),
      target,
      String(PROXIES),
      String(INTERVAL_MS),
      String(WARMUP_SECONDS),
      String(SECONDS),
    ],
    { cpu: LOAD_CPU },
  );
  const log = tail(child.stderr);
  let cpuAtSteady = 0;
  let steadyAt = 0;
  let corePct = NaN;
  let done: { sent: number; accepted: number; refused: number; errors: number } | undefined;
  lines(child.stdout, (line) => {
    const message = JSON.parse(line) as { phase: string };
    if (message.phase === "steady") {
      cpuAtSteady = cpuSeconds(monitorPid);
      steadyAt = performance.now();
    } else if (message.phase === "end") {
      const wall = (performance.now() - steadyAt) / 1000;
      corePct = ((cpuSeconds(monitorPid) - cpuAtSteady) / wall) * 100;
    } else if (message.phase === "done") {
      done = message as unknown as typeof done;
    }
  });
  const exit = new Promise((r) => child.once("exit", r));
  const timer = setTimeout(
    () => void stopGroup(child, "SIGKILL", 0),
    (WARMUP_SECONDS + SECONDS + 20) * 1000,
  );
  await exit;
  clearTimeout(timer);
  await stopGroup(child, "SIGKILL", 0);
  if (done === undefined) throw new Error(`the report pusher did not finish:\n${log()}`);
  await sleep(200);
  const accepted =
    (await metric(monitorHttp, "sipsteer_monitor_reports_accepted_total")) - acceptedBefore;
  const refused =
    (await metric(monitorHttp, "sipsteer_monitor_reports_refused_total")) - refusedBefore;
  const run: IngestRun = {
    channel,
    corePct: Number(corePct.toFixed(2)),
    sent: done.sent,
    accepted,
    refused,
    errors: done.errors,
  };
  console.log(
    `  ${channel.padEnd(4)} ${run.corePct.toFixed(2)}% of a core  sent ${run.sent}  accepted ${run.accepted}` +
      `  refused ${run.refused}  errors ${run.errors}`,
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
        `${SECONDS} s measured after ${WARMUP_SECONDS} s of warm-up`,
    );
    const idleBefore = cpuSeconds(pid);
    await sleep(IDLE_SECONDS * 1000);
    const idleCorePct = Number((((cpuSeconds(pid) - idleBefore) / IDLE_SECONDS) * 100).toFixed(2));
    console.log(`  idle ${idleCorePct.toFixed(2)}% of a core`);
    const http = await push(pid, monitor.http, "http", `${monitor.http}/v1/reports`);
    // The HTTP proxies go stale and drop out of eligibility; the UDP run uses the same ids.
    const udp = await push(pid, monitor.http, "udp", `udp://127.0.0.1:${udpPort}`);
    return { http, udp, idleCorePct };
  } finally {
    await monitor.stop();
  }
}
