// Part 3 of npm run bench:monitor: SIPp (redirect-uac.xml: INVITE, expect the 302, send the
// ACK) against the monitor's SIP redirect front beside Kamailio answering 302 statelessly from
// its dispatcher (bench/kamailio-redirect.cfg: the same three proxies as Contacts, one UDP
// worker, -x tlsf, a 4 MB UDP buffer). As bench/udp.ts does it: the servers on CPU 1 and SIPp
// on CPU 0 when pinned, a rate ladder of BENCH_SIP_SECONDS steps, a rate passing with under 1%
// failed calls and under 1% of calls retransmitted (SIPp's count: INVITEs resent for want of a
// 302 in 500 ms, and ACKs resent to a 302 repeated because the ACK came too late to the
// front); the two take turns rate by rate so that the noise of a shared machine falls on both
// alike. A failed rate is run once more; failing again (or with over 20% failed) ends that
// target's ladder. The figure is each one's highest passing rate.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fixturePath } from "../../test/helpers/paths.js";
import { freePort, waitForBound } from "../../test/helpers/sipp.js";
import {
  LOAD_CPU,
  ROOT,
  SERVER_CPU,
  cpuSeconds,
  launch,
  removeDir,
  running,
  sleep,
  stopGroup,
  waitQuiet,
  tail,
  tempDir,
} from "./harness.js";
import type { Fronts } from "./fronts.js";

const RATES = (
  process.env.BENCH_SIP_RATES ?? "4000,6000,8000,10000,12000,14000,16000,20000,24000,28000,32000"
)
  .split(",")
  .map(Number);
const SECONDS = Number(process.env.BENCH_SIP_SECONDS ?? 3);
const WARMUP_RATE = 2000;
const WARMUP_CALLS = 4000;
/** The longest wait for a server to go quiet after a step: past Timer H (64 × T1 = 32 s). */
const QUIET_MAX_MS = 35_000;
const MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

export interface SipStep {
  readonly target: string;
  readonly rate: number;
  readonly calls: number;
  readonly successful: number;
  readonly failed: number;
  readonly retransmissions: number;
  /** Server CPU (user + system, from /proc) per answered call. */
  readonly usPerCall: number;
  readonly passed: boolean;
}

export interface SipFigures {
  readonly monitorPerSecond: number;
  readonly kamailioPerSecond: number;
  readonly steps: SipStep[];
}

interface Target {
  readonly name: "monitor" | "kamailio";
  readonly port: number;
  readonly pid: number;
  readonly alive: () => boolean;
}

async function startKamailio(fronts: Fronts) {
  const port = await freePort();
  const work = tempDir("sipsteer-bench-kamailio-");
  const list = join(work, "dispatcher.list");
  writeFileSync(list, fronts.destinations.map((d) => `1 sip:127.0.0.1:${d.port}\n`).join(""));
  const cfg = join(work, "kamailio.cfg");
  writeFileSync(
    cfg,
    readFileSync(join(ROOT, "bench", "kamailio-redirect.cfg"), "utf8")
      .replaceAll("__PORT__", String(port))
      .replaceAll("__MODULES__", MODULES)
      .replaceAll("__LIST__", list),
  );
  // -DD: in the foreground, its workers our descendants (counted and reaped); -E: log to
  // stderr; -x tlsf: Debian's default allocator has memory debugging built in and costs about
  // 3x the CPU, so an operator runs tlsf.
  const child = launch(
    "kamailio",
    ["-f", cfg, "-DD", "-E", "-x", "tlsf", "-m", "256", "-M", "16", "-Y", work],
    { cpu: SERVER_CPU },
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
  const target: Target = { name: "kamailio", port, pid: child.pid!, alive: () => running(child) };
  return { target, stop };
}

/** One SIPp run of `calls` INVITEs at `rate`, pinned to the load core. */
async function drive(target: Target, rate: number, calls: number) {
  const dir = tempDir("sipsteer-bench-sipp-");
  const stat = join(dir, "stat.csv");
  const child = launch(
    "sipp",
    [
      `127.0.0.1:${target.port}`,
      "-sf",
      fixturePath("sipp", "redirect-uac.xml"),
      "-s",
      "bob",
      "-t",
      "u1",
      "-i",
      "127.0.0.1",
      "-p",
      String(await freePort()),
      "-m",
      String(calls),
      "-r",
      String(rate),
      "-l",
      String(rate * 2),
      "-recv_timeout",
      "8000",
      "-max_retrans",
      "4",
      // SIPp's own 64 KB socket buffers overflow whenever it is descheduled for a moment on a
      // shared core; the servers have 4 MB.
      "-buff_size",
      String(4 * 1024 * 1024),
      "-nostdin",
      "-trace_stat",
      "-stf",
      stat,
    ],
    { cpu: LOAD_CPU, cwd: dir },
  );
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const timer = setTimeout(() => void stopGroup(child, "SIGKILL", 0), (calls / rate + 30) * 1000);
  try {
    await new Promise((r) => child.once("exit", r));
  } finally {
    clearTimeout(timer);
    await stopGroup(child, "SIGKILL", 0);
  }
  const stats = new Map<string, number>();
  try {
    const lines = readFileSync(stat, "utf8").trim().split("\n");
    const names = lines[0]!.split(";");
    const values = lines[lines.length - 1]!.split(";");
    names.forEach((name, i) => {
      const n = Number(values[i]);
      if (name !== "" && !Number.isNaN(n)) stats.set(name, n);
    });
  } catch {
    throw new Error(`SIPp wrote no statistics:\n${err()}\n${out()}`);
  } finally {
    removeDir(dir);
  }
  return {
    successful: stats.get("SuccessfulCall(C)") ?? 0,
    failed: stats.get("FailedCall(C)") ?? 0,
    retransmissions: stats.get("Retransmissions(C)") ?? 0,
  };
}

async function step(target: Target, rate: number): Promise<SipStep> {
  const calls = rate * SECONDS;
  const before = cpuSeconds(target.pid);
  const result = await drive(target, rate, calls);
  const cpu = cpuSeconds(target.pid) - before;
  const s: SipStep = {
    target: target.name,
    rate,
    calls,
    ...result,
    usPerCall: (cpu * 1e6) / Math.max(1, result.successful),
    passed:
      result.successful > 0 &&
      result.failed / calls < 0.01 &&
      result.retransmissions / calls < 0.01 &&
      target.alive(),
  };
  console.log(
    `  ${target.name.padEnd(8)} ${String(rate).padStart(6)}/s  ok ${String(s.successful).padStart(7)}  ` +
      `failed ${String(s.failed).padStart(6)}  retrans ${String(s.retransmissions).padStart(6)}  ` +
      `${s.usPerCall.toFixed(1)} µs CPU/302  ${s.passed ? "pass" : "FAIL"}`,
  );
  return s;
}

export async function benchSip(fronts: Fronts): Promise<SipFigures> {
  const kamailio = await startKamailio(fronts);
  try {
    const monitor: Target = {
      name: "monitor",
      port: fronts.sipPort,
      pid: fronts.monitor.process.pid!,
      alive: () => running(fronts.monitor.process),
    };
    const targets = [kamailio.target, monitor];
    console.log(
      `SIPp redirect-uac.xml (INVITE, 302, ACK) over UDP, ${SECONDS} s a rate, taking turns rate by rate`,
    );
    // Warm-up (JIT, caches), not recorded.
    for (const t of targets) await drive(t, WARMUP_RATE, WARMUP_CALLS);
    await sleep(1000);
    const steps: SipStep[] = [];
    const active = new Set(targets);
    const settle = async (t: Target) => {
      // Let the server drain what queued while it fell behind (both answer statelessly: no
      // transactions to expire, no 302 retransmitted but on a retransmitted INVITE).
      await sleep(1000);
      const waited = await waitQuiet(t.pid, QUIET_MAX_MS);
      if (waited > 1000) {
        console.log(`           (${t.name} took ${(waited / 1000).toFixed(1)} s to go quiet)`);
      }
    };
    for (const rate of RATES) {
      for (const t of targets) {
        if (!active.has(t)) continue;
        let s = await step(t, rate);
        steps.push(s);
        await settle(t);
        // The machine is shared: a failed rate is tried once more before the target leaves
        // the ladder (past saturation, higher rates only take longer to fail).
        if (!s.passed && s.failed / s.calls <= 0.2) {
          s = await step(t, rate);
          steps.push(s);
          await settle(t);
        }
        if (!s.passed) active.delete(t);
      }
      if (active.size === 0) break;
    }
    const best = (name: string) =>
      Math.max(0, ...steps.filter((s) => s.target === name && s.passed).map((s) => s.rate));
    return { monitorPerSecond: best("monitor"), kamailioPerSecond: best("kamailio"), steps };
  } finally {
    await kamailio.stop();
  }
}
