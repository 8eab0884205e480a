// Part 2 of npm run bench:monitor: dnsperf (Debian dnsperf) against the monitor's DNS front
// beside NSD (Debian nsd) serving a static copy of the same zone: SOA and NS at the apex, SRV
// _sip._udp to the three proxies and their A records. The queries are three SRV _sip._udp for
// each A of p1, p2, p3 (a phone asks SRV and finds the A as additional records; a few ask A).
// NSD runs in the foreground from a temporary folder with its own config, one server process,
// response rate limiting off. dnsperf runs on the other core when pinned; the servers take
// turns for BENCH_DNS_ROUNDS rounds of BENCH_DNS_SECONDS, and the best round of each counts.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, waitForBound } from "../../test/helpers/sipp.js";
import { DOMAIN, LOAD_CPU, SERVER_CPU, launch, stopGroup, tail, tempDir } from "./harness.js";
import type { Fronts } from "./fronts.js";

const SECONDS = Number(process.env.BENCH_DNS_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_DNS_ROUNDS ?? 3);
const WARMUP_SECONDS = 1;

export interface DnsRun {
  readonly qps: number;
  readonly sent: number;
  readonly lost: number;
  readonly noError: number;
  readonly avgLatencyMs: number;
}

export interface DnsFigures {
  /** Null when this build's monitor has no DNS front. */
  readonly monitorQps: number | null;
  readonly nsdQps: number;
  readonly monitorLatencyMs: number | null;
  readonly nsdLatencyMs: number;
  readonly note: string;
  readonly rounds: { monitor: DnsRun[]; nsd: DnsRun[] };
}

function zoneFile(destinations: Fronts["destinations"]): string {
  return [
    `$ORIGIN ${DOMAIN}.`,
    "$TTL 5",
    `@ IN SOA ns.${DOMAIN}. hostmaster.${DOMAIN}. 1 3600 600 86400 5`,
    `@ IN NS ns.${DOMAIN}.`,
    "ns IN A 127.0.0.1",
    ...destinations.map((d, i) => `_sip._udp IN SRV ${i === 0 ? 10 : 20} 100 ${d.port} ${d.id}`),
    ...destinations.map((d) => `${d.id} IN A 127.0.0.1`),
    "",
  ].join("\n");
}

function nsdConfig(dir: string, port: number): string {
  return [
    "server:",
    `  ip-address: 127.0.0.1@${port}`,
    "  server-count: 1",
    '  username: ""',
    '  chroot: ""',
    `  zonesdir: "${dir}"`,
    '  database: ""',
    `  pidfile: "${dir}/nsd.pid"`,
    `  xfrdfile: "${dir}/xfrd.state"`,
    `  zonelistfile: "${dir}/zone.list"`,
    `  logfile: "${dir}/nsd.log"`,
    "  rrl-ratelimit: 0",
    "  rrl-whitelist-ratelimit: 0",
    "  verbosity: 0",
    "  do-ip6: no",
    "remote-control:",
    "  control-enable: no",
    "zone:",
    `  name: ${DOMAIN}`,
    `  zonefile: "${DOMAIN}.zone"`,
    "",
  ].join("\n");
}

function queryFile(dir: string, destinations: Fronts["destinations"]): string {
  const file = join(dir, "queries.txt");
  const lines = destinations.flatMap((d) => [
    `_sip._udp.${DOMAIN} SRV`,
    `_sip._udp.${DOMAIN} SRV`,
    `_sip._udp.${DOMAIN} SRV`,
    `${d.id}.${DOMAIN} A`,
  ]);
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

async function dnsperf(port: number, queries: string, seconds: number): Promise<DnsRun> {
  const child = launch(
    "dnsperf",
    [
      "-s",
      "127.0.0.1",
      "-p",
      String(port),
      "-d",
      queries,
      "-l",
      String(seconds),
      "-c",
      "8",
      "-q",
      "200",
    ],
    { cpu: LOAD_CPU },
  );
  const out = tail(child.stdout, 20_000);
  const err = tail(child.stderr);
  await new Promise((r) => child.once("exit", r));
  await stopGroup(child, "SIGKILL", 0);
  const text = out();
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const run: DnsRun = {
    qps: Math.round(num(/Queries per second:\s+([\d.]+)/)),
    sent: num(/Queries sent:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    noError: num(/NOERROR (\d+)/),
    avgLatencyMs: Number((num(/Average Latency \(s\):\s+([\d.]+)/) * 1000).toFixed(3)),
  };
  if (Number.isNaN(run.qps)) throw new Error(`dnsperf said:\n${text}\n${err()}`);
  return run;
}

function show(name: string, run: DnsRun): void {
  const bad = run.sent - run.noError;
  console.log(
    `  ${name.padEnd(8)} ${String(run.qps).padStart(7)} queries/s  avg latency ${run.avgLatencyMs} ms` +
      `  lost ${run.lost}` +
      (bad > run.lost ? `  not NOERROR ${bad - run.lost}` : ""),
  );
}

export async function benchDns(fronts: Fronts): Promise<DnsFigures> {
  const work = tempDir("sipsteer-bench-nsd-");
  writeFileSync(join(work, `${DOMAIN}.zone`), zoneFile(fronts.destinations));
  const nsdPort = await freePort();
  writeFileSync(join(work, "nsd.conf"), nsdConfig(work, nsdPort));
  const check = spawnSync("nsd-checkconf", [join(work, "nsd.conf")], { encoding: "utf8" });
  if (check.status !== 0) throw new Error(`nsd-checkconf: ${check.stderr}${check.stdout}`);
  const queries = queryFile(work, fronts.destinations);
  // -d: in the foreground (its children are ours to count and reap).
  const nsd = launch("nsd", ["-d", "-c", join(work, "nsd.conf")], { cpu: SERVER_CPU, cwd: work });
  const nsdLog = tail(nsd.stderr);
  try {
    try {
      await waitForBound(nsdPort, "udp");
    } catch (e) {
      throw new Error(`NSD did not start:\n${nsdLog()}`, { cause: e });
    }
    const targets: { name: "monitor" | "nsd"; port: number }[] = [
      ...(fronts.dnsPort === undefined ? [] : [{ name: "monitor" as const, port: fronts.dnsPort }]),
      { name: "nsd", port: nsdPort },
    ];
    console.log(
      `dnsperf, 8 clients, 200 queries outstanding, ${SECONDS} s a run, ${ROUNDS} rounds taking turns (best counts)`,
    );
    for (const t of targets) await dnsperf(t.port, queries, WARMUP_SECONDS);
    const rounds = { monitor: [] as DnsRun[], nsd: [] as DnsRun[] };
    for (let i = 0; i < ROUNDS; i++) {
      for (const t of targets) {
        const run = await dnsperf(t.port, queries, SECONDS);
        show(t.name, run);
        rounds[t.name].push(run);
      }
    }
    const best = (runs: DnsRun[]) => [...runs].sort((a, b) => b.qps - a.qps)[0];
    const monitor = best(rounds.monitor);
    const nsdBest = best(rounds.nsd)!;
    return {
      monitorQps: monitor?.qps ?? null,
      nsdQps: nsdBest.qps,
      monitorLatencyMs: monitor?.avgLatencyMs ?? null,
      nsdLatencyMs: nsdBest.avgLatencyMs,
      note:
        fronts.dnsPort === undefined
          ? "this build's monitor has no DNS front (its config has no dns section): NSD only"
          : "",
      rounds,
    };
  } finally {
    await stopGroup(nsd, "SIGTERM", 3000);
  }
}
