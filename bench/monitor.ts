// npm run bench:monitor — the load monitor's speed (issue 5, "Speed"), each figure beside a
// reference measured in the same run:
//   1. HTTP: GET /v1/select?transport=udp (autocannon) beside a bare fastify route returning a
//      constant (bench/monitor/http.ts);
//   2. DNS: dnsperf against the monitor's DNS front beside NSD serving a static copy of the zone
//      (bench/monitor/dns.ts; the monitor's figure is null where this build has no DNS front);
//   3. SIP 302: SIPp INVITE → 302 → ACK against the monitor's redirect front beside Kamailio's
//      dispatcher answering 302 statelessly (bench/monitor/sip.ts);
//   4. report ingest: 100 proxies pushing signed reports 5 times a second, the monitor's CPU
//      (bench/monitor/ingest.ts);
//   5. failover: the time from a proxy's death to the last answer naming it
//      (bench/monitor/failover.ts).
// Parts 1–3 load one `sipsteer monitor` fed by three real proxies pushing every 250 ms. The
// servers run on CPU 1 and the load generators on CPU 0 (BENCH_PIN=0: unpinned).
// BENCH_PARTS=http,dns,sip,ingest,failover (default: all) runs some parts only; each part's
// own variables are at the top of its file. Prints a line per run, then a table; the last line
// is a JSON object of the figures.
import { benchDns, type DnsFigures } from "./monitor/dns.js";
import { benchFailover, type FailoverFigures } from "./monitor/failover.js";
import { startFronts, type Fronts } from "./monitor/fronts.js";
import { benchHttp, type HttpFigures } from "./monitor/http.js";
import { benchIngest, type IngestFigures } from "./monitor/ingest.js";
import { benchSip, type SipFigures } from "./monitor/sip.js";
import { PIN, have, reapAll } from "./monitor/harness.js";

const PARTS = ["http", "dns", "sip", "ingest", "failover"] as const;
type Part = (typeof PARTS)[number];
const chosen = (process.env.BENCH_PARTS ?? PARTS.join(",")).split(",").map((p) => p.trim());
for (const part of chosen) {
  if (!(PARTS as readonly string[]).includes(part)) {
    console.error(`BENCH_PARTS: unknown part ${part} (${PARTS.join(", ")})`);
    process.exit(2);
  }
}
const wanted = (part: Part) => chosen.includes(part);

const tools: [string, string, Part][] = [
  ["dnsperf", "dnsperf", "dns"],
  ["nsd", "nsd", "dns"],
  ["sipp", "sip-tester", "sip"],
  ["kamailio", "kamailio", "sip"],
];
for (const [tool, pkg, part] of tools) {
  if (wanted(part) && !have(tool)) {
    console.error(`${tool} is missing (needed by the ${part} part): apt-get install ${pkg}`);
    process.exit(2);
  }
}

console.log(
  `sipsteer monitor benchmark: ${chosen.join(", ")}; ` +
    (PIN ? "servers pinned to CPU 1, load generators to CPU 0" : "unpinned") +
    "\n",
);

let http: HttpFigures | undefined;
let dns: DnsFigures | undefined;
let sip: SipFigures | undefined;
let ingest: IngestFigures | undefined;
let failover: FailoverFigures | undefined;
const errors: string[] = [];

async function part<T>(name: Part, run: () => Promise<T>): Promise<T | undefined> {
  if (!wanted(name)) return undefined;
  console.log(`== ${name}`);
  const started = performance.now();
  try {
    return await run();
  } catch (e) {
    const message = `${name}: ${(e as Error).stack ?? String(e)}`;
    console.log(`  ERROR ${message}`);
    errors.push(message);
    return undefined;
  } finally {
    console.log(`  (${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}

try {
  if (wanted("http") || wanted("dns") || wanted("sip")) {
    let fronts: Fronts | undefined;
    try {
      fronts = await startFronts();
      const f = fronts;
      http = await part("http", () => benchHttp(f));
      dns = await part("dns", () => benchDns(f));
      sip = await part("sip", () => benchSip(f));
    } catch (e) {
      console.log(`  ERROR starting the monitor and its proxies: ${(e as Error).message}`);
      errors.push(`fronts: ${(e as Error).message}`);
    } finally {
      await fronts?.stop();
    }
  }
  ingest = await part("ingest", benchIngest);
  failover = await part("failover", benchFailover);
} finally {
  reapAll();
}

// ---- the table ----

const num = (n: number | null | undefined) =>
  n === null || n === undefined || Number.isNaN(n) ? "-" : n.toLocaleString("en-US");
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || b === 0
    ? null
    : Number((a / b).toFixed(2));
const met = (ok: boolean | undefined) => (ok === undefined ? "-" : ok ? "yes" : "NO");

const httpPerS = http?.selectsPerSecond;
const dnsQps = dns?.monitorQps;
const sipPerS = sip?.monitorPerSecond;
const kamPerS = sip?.kamailioPerSecond;
const ingestPct = ingest?.http.corePct;
const failMs = failover?.failoverMs;

const rows: string[][] = [
  ["subject", "sipsteer", "reference", "ratio", "goal", "met?"],
  [
    "HTTP selects/s (autocannon)",
    num(httpPerS),
    `${num(http?.fastifyPerSecond)} (bare fastify)`,
    num(ratio(httpPerS, http?.fastifyPerSecond)),
    "≥ 20,000/s",
    met(httpPerS === undefined ? undefined : httpPerS >= 20_000),
  ],
  [
    "HTTP p99 latency, ms",
    num(http?.selectP99Ms),
    `${num(http?.fastifyP99Ms)} (bare fastify)`,
    num(ratio(http?.selectP99Ms, http?.fastifyP99Ms)),
    "-",
    "-",
  ],
  [
    "DNS queries/s (dnsperf)",
    dns === undefined ? "-" : dnsQps === null ? "null (no DNS front)" : num(dnsQps),
    `${num(dns?.nsdQps)} (NSD)`,
    num(ratio(dnsQps, dns?.nsdQps)),
    "≥ 40,000/s",
    met(dnsQps === null || dnsQps === undefined ? undefined : dnsQps >= 40_000),
  ],
  [
    "SIP 302/s (SIPp, <1% failed)",
    num(sipPerS),
    `${num(kamPerS)} (Kamailio dispatcher)`,
    num(ratio(sipPerS, kamPerS)),
    "≥ 0.5 × Kamailio",
    met(sipPerS === undefined || !kamPerS ? undefined : sipPerS >= 0.5 * kamPerS),
  ],
  [
    "report ingest, % of a core (HTTP, median s)",
    num(ingestPct),
    `${num(ingest?.bareHttp.corePct)} (bare Node HTTP)`,
    num(ratio(ingestPct, ingest?.bareHttp.corePct)),
    "< 5%",
    met(ingestPct === undefined ? undefined : ingestPct < 5),
  ],
  [
    "report ingest over UDP, % of a core",
    num(ingest?.udp.corePct),
    `${num(ingest?.bareUdp.corePct)} (bare Node UDP)`,
    num(ratio(ingest?.udp.corePct, ingest?.bareUdp.corePct)),
    "< 5%",
    met(ingest === undefined ? undefined : ingest.udp.corePct < 5),
  ],
  [
    "failover, ms (median)",
    num(failMs),
    "-",
    "-",
    "< 1,000 ms",
    met(failMs === null || failMs === undefined ? undefined : failMs < 1000),
  ],
];
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
for (const [i, row] of rows.entries()) {
  console.log(
    row
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  "),
  );
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
if (http !== undefined && http.selectsPerSecond < 20_000) {
  console.log(
    "\nHTTP: one monitor process on one core does not reach 20,000 selects/s here (the monitor " +
      "is not clustered; the fastify reference shows what one Node process gets on this harness).",
  );
}
if (dns?.note) console.log(`\nDNS: ${dns.note}`);
if (ingest !== undefined) {
  console.log(
    `\nIngest: the idle monitor uses ${ingest.idleCorePct}% of a core; the figures include it. ` +
      `HTTP is the proxy's default push (POST /v1/reports). The figures are the median ` +
      `one-second window; the means: HTTP ${ingest.http.meanCorePct}% (bare ${ingest.bareHttp.meanCorePct}%), ` +
      `UDP ${ingest.udp.meanCorePct}% (bare ${ingest.bareUdp.meanCorePct}%).`,
  );
}
if (errors.length > 0) console.log(`\nErrors:\n${errors.join("\n")}`);

const round = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n) ? null : Number(n.toFixed(digits));
const figures = {
  http_select_per_s: round(httpPerS),
  fastify_per_s: round(http?.fastifyPerSecond),
  http_p99_ms: round(http?.selectP99Ms, 2),
  dns_qps: round(dnsQps),
  nsd_qps: round(dns?.nsdQps),
  sip302_per_s: round(sipPerS),
  kamailio_302_per_s: round(kamPerS),
  report_ingest_core_pct: round(ingestPct, 2),
  failover_ms: round(failMs),
  pinned: PIN,
  fastify_p99_ms: round(http?.fastifyP99Ms, 2),
  http_connections: http?.connections ?? null,
  dns_latency_ms: round(dns?.monitorLatencyMs, 3),
  nsd_latency_ms: round(dns?.nsdLatencyMs, 3),
  sip302_ratio: ratio(sipPerS, kamPerS),
  report_ingest_push: "http",
  report_ingest_udp_core_pct: round(ingest?.udp.corePct, 2),
  report_ingest_mean_core_pct: round(ingest?.http.meanCorePct, 2),
  report_ingest_udp_mean_core_pct: round(ingest?.udp.meanCorePct, 2),
  bare_node_http_ingest_core_pct: round(ingest?.bareHttp.corePct, 2),
  bare_node_udp_ingest_core_pct: round(ingest?.bareUdp.corePct, 2),
  report_ingest_idle_core_pct: round(ingest?.idleCorePct, 2),
  failover_kills_ms: failover?.kills.map((k) => Math.max(k.selectMs, k.proxiesMs)) ?? null,
  failover_rejoin_ms: failover?.rejoinMs ?? null,
};
console.log(JSON.stringify(figures));
process.exit(errors.length > 0 ? 1 : 0);
