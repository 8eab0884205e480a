// Part 1 of npm run bench:monitor: GET /v1/select?transport=udp on the monitor (a real table of
// three pushing proxies) beside a bare fastify route returning a constant, both loaded by
// autocannon in a process of its own (on the other core when pinned) with the same settings.
// Each server gets a warm-up run; then they take turns for BENCH_HTTP_ROUNDS rounds so that the
// noise of a shared machine falls on both alike, and the best round of each counts.
import { join } from "node:path";
import {
  firstJsonLine,
  getJson,
  launch,
  LOAD_CPU,
  ROOT,
  SERVER_CPU,
  stopGroup,
  tail,
} from "./harness.js";
import type { Fronts } from "./fronts.js";

const SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 50);
const WARMUP_SECONDS = 2;
const AUTOCANNON = join(ROOT, "node_modules", "autocannon", "autocannon.js");

export interface HttpRun {
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
}

export interface HttpFigures {
  readonly selectsPerSecond: number;
  readonly fastifyPerSecond: number;
  readonly selectP99Ms: number;
  readonly fastifyP99Ms: number;
  readonly connections: number;
  readonly seconds: number;
  readonly rounds: { monitor: HttpRun[]; fastify: HttpRun[] };
}

interface AutocannonResult {
  requests: { total: number };
  latency: { p50: number; p99: number };
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

async function autocannon(url: string, seconds: number): Promise<HttpRun> {
  const child = launch(
    process.execPath,
    [AUTOCANNON, "-c", String(CONNECTIONS), "-d", String(seconds), "-j", url],
    { cpu: LOAD_CPU },
  );
  const log = tail(child.stderr);
  try {
    const result = (await firstJsonLine(
      child,
      (seconds + 30) * 1000,
      log,
    )) as unknown as AutocannonResult;
    return {
      perSecond: Math.round(result.requests.total / result.duration),
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    };
  } finally {
    await stopGroup(child, "SIGKILL", 0);
  }
}

function show(name: string, run: HttpRun): void {
  console.log(
    `  ${name.padEnd(8)} ${String(run.perSecond).padStart(7)}/s  p50 ${run.p50Ms} ms  p99 ${run.p99Ms} ms` +
      (run.non2xx + run.errors > 0 ? `  non-2xx ${run.non2xx}  errors ${run.errors}` : ""),
  );
}

export async function benchHttp(fronts: Fronts): Promise<HttpFigures> {
  const selectUrl = `${fronts.monitor.http}/v1/select?transport=udp`;
  // The reference answers what the monitor answers, byte for byte in size.
  const answer = await getJson<Record<string, unknown>>(selectUrl);
  const server = launch(
    process.execPath,
    [join(ROOT, "dist", "bench", "monitor", "constant-server.js"), JSON.stringify(answer)],
    { cpu: SERVER_CPU },
  );
  const log = tail(server.stderr);
  try {
    const { port } = (await firstJsonLine(server, 10_000, log)) as { port: number };
    const constantUrl = `http://127.0.0.1:${port}/v1/select?transport=udp`;
    console.log(
      `autocannon, ${CONNECTIONS} connections, no pipelining, ${SECONDS} s a run, ${ROUNDS} rounds taking turns (best counts)`,
    );
    await autocannon(selectUrl, WARMUP_SECONDS);
    await autocannon(constantUrl, WARMUP_SECONDS);
    const rounds = { monitor: [] as HttpRun[], fastify: [] as HttpRun[] };
    for (let i = 0; i < ROUNDS; i++) {
      const monitor = await autocannon(selectUrl, SECONDS);
      show("monitor", monitor);
      rounds.monitor.push(monitor);
      const fastify = await autocannon(constantUrl, SECONDS);
      show("fastify", fastify);
      rounds.fastify.push(fastify);
    }
    const best = (runs: HttpRun[]) =>
      runs.filter((r) => r.non2xx + r.errors === 0).sort((a, b) => b.perSecond - a.perSecond)[0];
    const monitor = best(rounds.monitor);
    const fastify = best(rounds.fastify);
    return {
      selectsPerSecond: monitor?.perSecond ?? 0,
      fastifyPerSecond: fastify?.perSecond ?? 0,
      selectP99Ms: monitor?.p99Ms ?? NaN,
      fastifyP99Ms: fastify?.p99Ms ?? NaN,
      connections: CONNECTIONS,
      seconds: SECONDS,
      rounds,
    };
  } finally {
    await stopGroup(server, "SIGTERM", 3000);
  }
}
