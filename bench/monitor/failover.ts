// Part 5 of npm run bench:monitor: how long the monitor keeps sending clients to a proxy that
// died. A `sipsteer monitor` and three `sipsteer proxy` processes pushing their reports to it
// over HTTP every 250 ms (the default); one proxy is killed with SIGKILL while this process
// polls GET /v1/select?transport=udp and GET /v1/proxies back to back on one keep-alive
// connection. The figure is the time from the kill to the last answer that still names the dead
// proxy (as the chosen one or an alternate in a select, as eligible in /v1/proxies), the median
// of BENCH_FAILOVER_REPS kills (each of the three in turn); the killed proxy is started again
// (a new boot, accepted at once) before the next. Nothing is pinned: these are wall-clock
// figures, not throughput.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import {
  CLI,
  DOMAIN,
  KEY,
  LOOPBACK,
  firstJsonLine,
  launch,
  listProxies,
  median,
  removeDir,
  startMonitor,
  stopGroup,
  tail,
  tempDir,
  waitEligible,
  type ListedProxy,
} from "./harness.js";
import type { ChildProcess } from "node:child_process";

const REPS = Number(process.env.BENCH_FAILOVER_REPS ?? 3);
/** Polling ends once the dead proxy has gone unnamed this long (or the kill is this old). */
const QUIET_MS = 1500;
const GIVE_UP_MS = 10_000;

export interface FailoverFigures {
  /** Median over the kills; null when no kill was measured. */
  readonly failoverMs: number | null;
  /** Each kill: from the kill to the last select naming it, and to the last /v1/proxies. */
  readonly kills: { proxy: string; selectMs: number; proxiesMs: number; polls: number }[];
  /** From starting the killed proxy again to its being eligible (median). */
  readonly rejoinMs: number | null;
}

interface ProxyProcess {
  readonly id: string;
  readonly process: ChildProcess;
}

async function startProxy(id: string, configFile: string): Promise<ProxyProcess> {
  const child = launch(process.execPath, [
    CLI,
    "proxy",
    "--config",
    configFile,
    "--json",
    "--log-level",
    "warn",
  ]);
  const log = tail(child.stderr);
  await firstJsonLine(child, 20_000, log);
  return { id, process: child };
}

function names(answer: unknown, id: string): boolean {
  const a = answer as { proxy?: string; alternates?: { proxy: string }[] };
  return a.proxy === id || (a.alternates ?? []).some((x) => x.proxy === id);
}

/** Polls until the dead proxy has been unnamed for QUIET_MS; times are from `killedAt`. */
async function watch(http: string, id: string, killedAt: number) {
  let lastSelect = 0;
  let lastProxies = 0;
  let polls = 0;
  for (;;) {
    const now = performance.now();
    if (now - killedAt > GIVE_UP_MS) break;
    if (now - killedAt - Math.max(lastSelect, lastProxies) > QUIET_MS) break;
    const res = await fetch(`${http}/v1/select?transport=udp`);
    const answer = res.ok ? ((await res.json()) as unknown) : await res.text();
    const selectAt = performance.now() - killedAt;
    if (res.ok && names(answer, id)) lastSelect = selectAt;
    const listed: ListedProxy[] = await listProxies(http);
    const proxiesAt = performance.now() - killedAt;
    if (listed.some((p) => p.id === id && p.eligible)) lastProxies = proxiesAt;
    polls += 2;
  }
  return { selectMs: Math.round(lastSelect), proxiesMs: Math.round(lastProxies), polls };
}

export async function benchFailover(): Promise<FailoverFigures> {
  const monitor = await startMonitor(
    { http: { address: "127.0.0.1", port: 0 }, keys: [KEY], allowedDestinations: LOOPBACK },
    undefined,
  );
  const work = tempDir("sipsteer-bench-failover-");
  const proxies = new Map<string, ProxyProcess>();
  const configs = new Map<string, string>();
  try {
    for (const id of ["f1", "f2", "f3"]) {
      const file = join(work, `${id}.yaml`);
      writeFileSync(
        file,
        stringify({
          id,
          domains: [DOMAIN],
          listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
          allowedDestinations: LOOPBACK,
          auth: { enabled: false },
          http: { address: "127.0.0.1", port: 0 },
          report: { push: [`${monitor.http}/v1/reports`], key: KEY },
          drainTimeoutMs: 1000,
        }),
      );
      configs.set(id, file);
      proxies.set(id, await startProxy(id, file));
    }
    await waitEligible(monitor.http, 3);
    console.log(
      `3 sipsteer proxy processes pushing every 250 ms; SIGKILL one, poll /v1/select and /v1/proxies back to back`,
    );
    const kills: FailoverFigures["kills"] = [];
    const rejoins: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const id = `f${(i % 3) + 1}`;
      const victim = proxies.get(id)!;
      // Some polls first, so the connection is open and warm.
      for (let j = 0; j < 20; j++) await listProxies(monitor.http);
      const killedAt = performance.now();
      victim.process.kill("SIGKILL");
      const kill = { proxy: id, ...(await watch(monitor.http, id, killedAt)) };
      kills.push(kill);
      console.log(
        `  kill ${id}: last select naming it at ${kill.selectMs} ms, last /v1/proxies listing it eligible at ${kill.proxiesMs} ms (${kill.polls} polls)`,
      );
      await stopGroup(victim.process, "SIGKILL", 0);
      const restartAt = performance.now();
      proxies.set(id, await startProxy(id, configs.get(id)!));
      await waitEligible(monitor.http, 3);
      rejoins.push(performance.now() - restartAt);
    }
    const worst = kills.map((k) => Math.max(k.selectMs, k.proxiesMs));
    const failoverMs = median(worst);
    const rejoinMs = median(rejoins);
    return {
      failoverMs: failoverMs === undefined ? null : Math.round(failoverMs),
      kills,
      rejoinMs: rejoinMs === undefined ? null : Math.round(rejoinMs),
    };
  } finally {
    for (const p of proxies.values()) await stopGroup(p.process, "SIGTERM", 3000);
    removeDir(work);
    await monitor.stop();
  }
}
