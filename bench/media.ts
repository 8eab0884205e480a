// npm run bench:media — simultaneous SDK calls with media in one process (issue 6, "Speed").
//
// `sipsteer up` (one proxy, MD5 digest) runs as a child on CPU 0. This process holds the calls:
// two UserAgents, alice calling bob, each call with an RtpMediaSession at both ends sending a
// G.711 tone through src/media, so one call is two AudioStreams, both ends in this process. For
// each N of BENCH_CALLS it places N calls, waits until they are answered, lets them settle 2 s,
// then measures BENCH_SECONDS: loss (expected vs received in the window, both ends), the RFC 3550
// interarrival jitter of every stream sampled each second (mean and max), and this process's
// CPU (process.cpuUsage: user + system of all its threads) per call-second. N is sustained when
// all N were answered, loss < 0.5%, over 99.5% of the 50 packets a second each stream should
// receive arrived (a sender falling behind its ticks loses time, not sequence numbers) and mean
// jitter < 20 ms; the ladder stops at the first N that is not. The process pins itself (every thread) to CPU 1 with taskset, rather than holding the
// calls in a child, so that what is measured is exactly the SDK as an application runs it.
//
// The reference: BENCH_BARESIP_CALLS calls, each between two baresip processes registered at
// the same proxy (caller dials, callee answers automatically, ausine tone both ways), pinned to
// CPU 1 as well; the CPU of all of them over BENCH_SECONDS per call-second.
//
// BENCH_CALLS (default 50,100,200,300,400), BENCH_SECONDS (10), BENCH_BARESIP_CALLS (5; 0 skips),
// BENCH_CALL_RATE (calls placed per second, 100), BENCH_PIN=0 (unpinned). Prints a line per
// step, then a table; the last line is one JSON object of the figures.
import { spawnSync, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import pino from "pino";
import { RtpMediaSession, UserAgent, type Call } from "../src/client/index.js";
import { BaresipPhone } from "./media/baresip.js";
import {
  CLI,
  LOAD_CPU,
  LOOPBACK,
  PIN,
  SERVER_CPU,
  cpuSeconds,
  firstJsonLine,
  have,
  launch,
  reapAll,
  removeDir,
  sleep,
  stopGroup,
  tail,
  tempDir,
} from "./monitor/harness.js";
import { freePort } from "../test/helpers/sipp.js";

const CALLS = (process.env.BENCH_CALLS ?? "50,100,200,300,400").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const BARESIP_CALLS = Number(process.env.BENCH_BARESIP_CALLS ?? 5);
const CALL_RATE = Number(process.env.BENCH_CALL_RATE ?? 100);
const SETTLE_MS = 2000;
const ANSWER_TIMEOUT_MS = 30_000;
const MAX_LOSS_PERCENT = 0.5;
const MAX_JITTER_MS = 20;
/** 20 ms frames. */
const PACKETS_PER_SECOND = 50;
const MIN_RATE_PERCENT = 100 - MAX_LOSS_PERCENT;
const GOAL_CALLS = 200;

for (const [name, values] of [
  ["BENCH_CALLS", CALLS],
  ["BENCH_SECONDS", [SECONDS]],
  ["BENCH_BARESIP_CALLS", [BARESIP_CALLS]],
  ["BENCH_CALL_RATE", [CALL_RATE]],
] as const) {
  if (
    values.some((v) => !Number.isInteger(v) || v < 0) ||
    (name !== "BENCH_BARESIP_CALLS" && values.some((v) => v === 0))
  ) {
    console.error(`${name}: whole numbers, positive (got ${values.join(",")})`);
    process.exit(2);
  }
}
if (BARESIP_CALLS > 0 && !have("baresip")) {
  console.error(
    "baresip is missing (the reference): apt-get install baresip-core, or BENCH_BARESIP_CALLS=0",
  );
  process.exit(2);
}

interface Step {
  readonly calls: number;
  readonly answered: number;
  readonly lossPercent: number;
  readonly meanJitterMs: number;
  readonly maxJitterMs: number;
  /** Streams that received nothing in the window. */
  readonly silentStreams: number;
  /**
   * Packets received of the 50 a second every stream should get, percent: a sender that falls
   * behind its 20 ms ticks sends fewer packets, which the sequence numbers do not count as lost.
   */
  readonly ratePercent: number;
  /** The same for what the streams sent. */
  readonly sentRatePercent: number;
  /** The event loop's delay over the window (perf_hooks), ms: a stall past 200 ms skips sends. */
  readonly loopDelayMaxMs: number;
  readonly cpuMsPerCallSecond: number;
  readonly sustained: boolean;
}

interface Reference {
  readonly calls: number;
  readonly processes: number;
  readonly cpuMsPerCallSecond: number;
}

// ---- sipsteer up ----

interface Up {
  readonly process: ChildProcess;
  readonly http: string;
  readonly proxy: { address: string; port: number };
  readonly domain: string;
  readonly passwords: Map<string, string>;
  readonly dir: string;
}

async function startUp(users: number): Promise<Up> {
  const dir = tempDir("sipsteer-bench-media-");
  const config = join(dir, "up.yaml");
  // MD5 only: baresip 1.0 gives up on a 401 that offers SHA-256.
  writeFileSync(config, "proxy:\n  authAlgorithms: [MD5]\n");
  const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  // A /24 of its own on loopback, so that the proxy's ports collide with nothing else.
  const base = `127.${100 + (process.pid % 100)}.${process.pid % 250}.10`;
  const child = launch(
    process.execPath,
    [
      CLI,
      "up",
      "-c",
      config,
      "--data",
      join(dir, "data"),
      "--json",
      "--log-level",
      "warn",
      "--proxies",
      "1",
      "--users",
      String(users),
      "--http-port",
      String(ports[0]),
      "--dns-port",
      String(ports[1]),
      "--sip-port",
      String(ports[2]),
      "--address-base",
      base,
      "--proxy-sip-port",
      String(ports[3]),
      "--proxy-ws-port",
      String(ports[4]),
      "--proxy-http-port",
      String(ports[5]),
    ],
    { cpu: LOAD_CPU },
  );
  const log = tail(child.stderr);
  const info = (await firstJsonLine(child, 60_000, log)) as {
    domain: string;
    monitor: { http: string };
    proxies: { sip: { udp: string } }[];
    users: { user: string; password: string }[];
  };
  const sip = /^sip:([\d.]+):(\d+)$/.exec(info.proxies[0]!.sip.udp);
  if (sip === null)
    throw new Error(`sipsteer up: an odd proxy address ${info.proxies[0]!.sip.udp}`);
  return {
    process: child,
    http: info.monitor.http,
    proxy: { address: sip[1]!, port: Number(sip[2]) },
    domain: info.domain,
    passwords: new Map(info.users.map((u) => [u.user, u.password])),
    dir,
  };
}

// ---- sipsteer calls ----

const logger = pino({ level: "warn" }, pino.destination(2));

function media(tone: number): RtpMediaSession {
  return new RtpMediaSession({
    localAddress: "127.0.0.1",
    allowedDestinations: LOOPBACK,
    play: `tone:${tone}`,
  });
}

function agent(up: Up, user: string): UserAgent {
  const ua = new UserAgent(
    {
      user,
      password: up.passwords.get(user)!,
      domain: up.domain,
      monitors: [up.http],
      allowedDestinations: LOOPBACK,
      address: "127.0.0.1",
    },
    { logger },
  );
  ua.on("error", (e: Error) => console.error(`${user}: ${e.message}`));
  return ua;
}

/** Resolves with `promise`, or with `fallback` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms))),
  ]);
}

interface Totals {
  sent: number;
  received: number;
  lost: number;
}

function totals(sessions: readonly RtpMediaSession[]): Totals[] {
  return sessions.map((s) => {
    const a = s.summary();
    return { sent: a?.sent ?? 0, received: a?.received ?? 0, lost: a?.lost ?? 0 };
  });
}

/** The RFC 3550 interarrival jitter of every stream that has one, ms. */
function jitters(sessions: readonly RtpMediaSession[]): number[] {
  return sessions.flatMap((s) => {
    const a = s.summary();
    return a === undefined || a.received === 0 ? [] : [a.jitter_ms];
  });
}

async function step(
  alice: UserAgent,
  calleeSessions: RtpMediaSession[],
  target: string,
  n: number,
): Promise<Step> {
  calleeSessions.length = 0;
  const calls: Call[] = [];
  const callerSessions: RtpMediaSession[] = [];
  try {
    const answered: Promise<boolean>[] = [];
    for (let i = 0; i < n; i++) {
      const session = media(1000);
      callerSessions.push(session);
      const call = alice.call(target, { media: session });
      calls.push(call);
      answered.push(
        call.whenAnswered().then(
          () => true,
          () => false,
        ),
      );
      await sleep(1000 / CALL_RATE);
    }
    await within(Promise.all(answered), ANSWER_TIMEOUT_MS, []);
    const countAnswered = calls.filter((c) => c.state === "answered").length;
    await sleep(SETTLE_MS);

    const sessions = [...callerSessions, ...calleeSessions];
    const before = totals(sessions);
    const jitterSamples: number[] = [];
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let s = 0; s < SECONDS; s++) {
      await sleep(1000);
      jitterSamples.push(...jitters(sessions));
    }
    const cpu = process.cpuUsage(cpuBefore);
    loopDelay.disable();
    const elapsedS = (performance.now() - started) / 1000;
    const after = totals(sessions);

    let expected = 0;
    let lost = 0;
    let silentStreams = 0;
    let receivedAll = 0;
    let sentAll = 0;
    after.forEach((a, i) => {
      sentAll += a.sent - before[i]!.sent;
      const received = a.received - before[i]!.received;
      receivedAll += received;
      const lostHere = Math.max(0, a.lost - before[i]!.lost);
      if (received === 0) silentStreams++;
      expected += received + lostHere;
      lost += lostHere;
    });
    // A stream that received nothing lost all it should have had.
    const missing = Math.max(0, 2 * n - sessions.length) + silentStreams;
    expected += missing * PACKETS_PER_SECOND * elapsedS;
    lost += missing * PACKETS_PER_SECOND * elapsedS;
    const lossPercent = expected === 0 ? 100 : (lost * 100) / expected;
    const meanJitterMs =
      jitterSamples.length === 0
        ? Infinity
        : jitterSamples.reduce((a, b) => a + b, 0) / jitterSamples.length;
    const maxJitterMs = jitterSamples.length === 0 ? Infinity : Math.max(...jitterSamples);
    const cpuMsPerCallSecond = (cpu.user + cpu.system) / 1000 / (n * elapsedS);
    const ratePercent = (receivedAll * 100) / (2 * n * PACKETS_PER_SECOND * elapsedS);
    const sentRatePercent = (sentAll * 100) / (2 * n * PACKETS_PER_SECOND * elapsedS);
    return {
      calls: n,
      answered: countAnswered,
      lossPercent,
      meanJitterMs,
      maxJitterMs,
      silentStreams: missing,
      ratePercent,
      sentRatePercent,
      loopDelayMaxMs: loopDelay.max / 1e6,
      cpuMsPerCallSecond,
      sustained:
        countAnswered === n &&
        lossPercent < MAX_LOSS_PERCENT &&
        ratePercent > MIN_RATE_PERCENT &&
        meanJitterMs < MAX_JITTER_MS,
    };
  } finally {
    await Promise.allSettled(calls.filter((c) => c.state !== "ended").map((c) => c.hangup()));
    await within(Promise.allSettled(calls.map((c) => c.whenEnded())), ANSWER_TIMEOUT_MS, []);
    await Promise.allSettled([...callerSessions, ...calleeSessions].map((s) => s.stop()));
  }
}

async function benchSipsteer(up: Up): Promise<Step[]> {
  const alice = agent(up, "alice");
  const bob = agent(up, "bob");
  const calleeSessions: RtpMediaSession[] = [];
  bob.on("incoming", (call: Call) => {
    const session = media(440);
    calleeSessions.push(session);
    call.answer({ media: session }).catch((e: unknown) => {
      console.error(`bob could not answer: ${(e as Error).message}`);
    });
  });
  const steps: Step[] = [];
  await alice.start();
  await bob.start();
  try {
    await alice.register();
    await bob.register();
    for (const n of CALLS) {
      const result = await step(alice, calleeSessions, "bob", n);
      steps.push(result);
      console.log(
        `  ${String(n).padStart(4)} calls: ${result.answered} answered, loss ${result.lossPercent.toFixed(3)}%, ` +
          `${result.ratePercent.toFixed(2)}% of 50 packets/s received (${result.sentRatePercent.toFixed(2)}% sent), ` +
          `jitter mean ${result.meanJitterMs.toFixed(2)} ms max ${result.maxJitterMs.toFixed(2)} ms, ` +
          `event loop delay max ${result.loopDelayMaxMs.toFixed(0)} ms, ` +
          `${result.cpuMsPerCallSecond.toFixed(3)} CPU ms per call-second` +
          (result.sustained ? "" : "  (not sustained: the ladder stops)"),
      );
      if (!result.sustained) break;
      await sleep(1000);
    }
  } finally {
    await alice.stop();
    await bob.stop();
  }
  return steps;
}

// ---- baresip ----

async function benchBaresip(up: Up, k: number): Promise<Reference> {
  const phones: BaresipPhone[] = [];
  const user = (i: number) => `user${String(i).padStart(4, "0")}`;
  const start = (i: number, autoAnswer: boolean) =>
    BaresipPhone.start({
      user: user(i),
      password: up.passwords.get(user(i))!,
      domain: up.domain,
      proxy: up.proxy,
      autoAnswer,
      toneHz: autoAnswer ? 440 : 1000,
      cpu: SERVER_CPU,
      rtpBase: 30_000 + 100 * i + 2 * (process.pid % 20),
    });
  try {
    // Callees user0001…K, callers user(K+1)…2K.
    const callees = await Promise.all(Array.from({ length: k }, (_, i) => start(i + 1, true)));
    phones.push(...callees);
    const callers = await Promise.all(Array.from({ length: k }, (_, i) => start(k + i + 1, false)));
    phones.push(...callers);
    await Promise.all(
      callers.map(async (caller, i) => {
        await caller.command("dial", `sip:${user(i + 1)}@${up.domain}`);
        await caller.waitFor(/Call established/, 15_000);
      }),
    );
    await Promise.all(callees.map((c) => c.waitFor(/Call established/, 15_000)));
    await sleep(SETTLE_MS);
    const cpuOf = () => phones.reduce((sum, p) => sum + cpuSeconds(p.pid), 0);
    const before = cpuOf();
    const started = performance.now();
    await sleep(SECONDS * 1000);
    const cpuS = cpuOf() - before;
    const elapsedS = (performance.now() - started) / 1000;
    await Promise.allSettled(callers.map((c) => c.command("hangup")));
    await Promise.allSettled(phones.map((p) => p.waitFor(/terminated/, 10_000)));
    return {
      calls: k,
      processes: phones.length,
      cpuMsPerCallSecond: (cpuS * 1000) / (k * elapsedS),
    };
  } finally {
    await Promise.allSettled(phones.map((p) => p.stop()));
  }
}

// ---- run ----

if (PIN) {
  // Every thread of this process (libuv's pool too) on CPU 1; children it spawns later choose.
  const pinned = spawnSync("taskset", ["-a", "-p", "-c", String(SERVER_CPU), String(process.pid)]);
  if (pinned.status !== 0) console.error(`taskset could not pin the bench: ${pinned.stderr}`);
}
console.log(
  `sipsteer media benchmark: ${CALLS.join(", ")} simultaneous G.711 calls, ${SECONDS} s each; ` +
    `baresip reference with ${BARESIP_CALLS} calls; ` +
    (PIN
      ? "the calls (this process) and baresip on CPU 1, sipsteer up (monitor + proxy) on CPU 0"
      : "unpinned") +
    "\n",
);

let steps: Step[] = [];
let reference: Reference | undefined;
const errors: string[] = [];
let up: Up | undefined;
try {
  up = await startUp(2 * BARESIP_CALLS);
  console.log("== sipsteer SDK calls");
  try {
    steps = await benchSipsteer(up);
  } catch (e) {
    errors.push(`sipsteer: ${(e as Error).stack ?? String(e)}`);
  }
  if (BARESIP_CALLS > 0) {
    console.log(`\n== baresip reference: ${BARESIP_CALLS} calls, ${2 * BARESIP_CALLS} processes`);
    try {
      reference = await benchBaresip(up, BARESIP_CALLS);
      console.log(
        `  ${reference.cpuMsPerCallSecond.toFixed(3)} CPU ms per call-second (${reference.processes} processes)`,
      );
    } catch (e) {
      errors.push(`baresip: ${(e as Error).stack ?? String(e)}`);
    }
  }
} catch (e) {
  errors.push(`sipsteer up: ${(e as Error).stack ?? String(e)}`);
} finally {
  if (up !== undefined) {
    await stopGroup(up.process, "SIGTERM", 10_000);
    removeDir(up.dir);
  }
  reapAll();
}

// ---- the table ----

const fixed = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
const best = steps.filter((s) => s.sustained).at(-1);
const ratio =
  best === undefined || reference === undefined || reference.cpuMsPerCallSecond === 0
    ? null
    : best.cpuMsPerCallSecond / reference.cpuMsPerCallSecond;
const rows: string[][] = [
  [
    "calls",
    "answered",
    "loss %",
    "rate %",
    "jitter mean ms",
    "jitter max ms",
    "CPU ms/call-s",
    "sustained?",
  ],
  ...steps.map((s) => [
    String(s.calls),
    String(s.answered),
    fixed(s.lossPercent, 3),
    fixed(s.ratePercent, 2),
    fixed(s.meanJitterMs, 2),
    fixed(s.maxJitterMs, 2),
    fixed(s.cpuMsPerCallSecond, 3),
    s.sustained ? "yes" : "NO",
  ]),
];
if (reference !== undefined) {
  rows.push([
    `baresip ×${reference.calls}`,
    "-",
    "-",
    "-",
    "-",
    "-",
    fixed(reference.cpuMsPerCallSecond, 3),
    "-",
  ]);
}
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
console.log("");
for (const [i, row] of rows.entries()) {
  console.log(row.map((cell, c) => cell.padStart(widths[c]!)).join("  "));
  if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
}
console.log(
  `\ncalls sustained: ${best?.calls ?? 0} (goal ${GOAL_CALLS}: ${(best?.calls ?? 0) >= GOAL_CALLS ? "met" : "NOT met"})` +
    (ratio === null ? "" : `; CPU per call ${ratio.toFixed(2)}× baresip's`),
);
if (errors.length > 0) console.log(`\nErrors:\n${errors.join("\n")}`);

const round = (n: number | null | undefined, digits: number) =>
  n === null || n === undefined || !Number.isFinite(n) ? null : Number(n.toFixed(digits));
console.log(
  JSON.stringify({
    calls_sustained: best?.calls ?? 0,
    cpu_ms_per_call_second: round(best?.cpuMsPerCallSecond, 3),
    cpu_measured_at_calls: best?.calls ?? null,
    baresip_cpu_ms_per_call_second: round(reference?.cpuMsPerCallSecond, 3),
    ratio: round(ratio, 2),
    goal_calls: GOAL_CALLS,
    seconds: SECONDS,
    baresip_calls: reference?.calls ?? null,
    pinned: PIN,
    steps: steps.map((s) => ({
      calls: s.calls,
      answered: s.answered,
      loss_percent: round(s.lossPercent, 3),
      rate_percent: round(s.ratePercent, 2),
      sent_rate_percent: round(s.sentRatePercent, 2),
      loop_delay_max_ms: round(s.loopDelayMaxMs, 1),
      jitter_mean_ms: round(s.meanJitterMs, 2),
      jitter_max_ms: round(s.maxJitterMs, 2),
      silent_streams: s.silentStreams,
      cpu_ms_per_call_second: round(s.cpuMsPerCallSecond, 3),
      sustained: s.sustained,
    })),
  }),
);
process.exit(errors.length > 0 ? 1 : 0);
