// A skeleton for issue 6's bench:media, media only: N calls in one process, each a pair of
// AudioStreams on loopback sending G.711 tone both ways through their jitter buffers. For each
// N it runs BENCH_SECONDS and reports loss, jitter and the process's CPU per call-second; a
// call count is sustained when loss stays under 0.5% and mean jitter under 20 ms. The SDK's
// signalling and baresip's reference figure are left to the full bench:media.
// Run: npm run build && node dist/bench/media-streams.js   (BENCH_CALLS=50,100,200 BENCH_SECONDS=10)
import { AudioStream, ToneSource } from "../src/media/index.js";

const CALLS = (process.env.BENCH_CALLS ?? "50,100,200,300").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const MAX_LOSS_PERCENT = 0.5;
const MAX_JITTER_MS = 20;

interface Result {
  calls: number;
  lossPercent: number;
  meanJitterMs: number;
  maxJitterMs: number;
  cpuMsPerCallSecond: number;
  sustained: boolean;
}

function newStream(frequency: number): AudioStream {
  return new AudioStream({
    localAddress: "127.0.0.1",
    payloadType: 0,
    source: new ToneSource({ frequency }),
    sink: { write: () => undefined },
    allowedDestinations: ["127.0.0.0/8"],
  });
}

async function run(calls: number): Promise<Result> {
  const streams: AudioStream[] = [];
  try {
    for (let i = 0; i < calls; i++) {
      const a = newStream(1000);
      const b = newStream(440);
      streams.push(a, b);
      const [pa, pb] = await Promise.all([a.start(), b.start()]);
      a.setRemote({ address: "127.0.0.1", port: pb.rtpPort });
      b.setRemote({ address: "127.0.0.1", port: pa.rtpPort });
    }
    // One second to settle, then measure.
    await new Promise((r) => setTimeout(r, 1000));
    const before = streams.map((s) => s.stats);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const cpu = process.cpuUsage(cpuBefore);
    const elapsed = (performance.now() - started) / 1000;
    const after = streams.map((s) => s.stats);
    let expected = 0;
    let lost = 0;
    let jitterSum = 0;
    let jitterMax = 0;
    after.forEach((s, i) => {
      expected += s.expected - before[i]!.expected;
      lost += Math.max(0, s.lost - before[i]!.lost);
      jitterSum += s.jitterMs;
      jitterMax = Math.max(jitterMax, s.jitterMs);
    });
    const lossPercent = expected === 0 ? 100 : (lost * 100) / expected;
    const meanJitterMs = jitterSum / after.length;
    return {
      calls,
      lossPercent,
      meanJitterMs,
      maxJitterMs: jitterMax,
      cpuMsPerCallSecond: (cpu.user + cpu.system) / 1000 / (calls * elapsed),
      sustained: lossPercent < MAX_LOSS_PERCENT && meanJitterMs < MAX_JITTER_MS,
    };
  } finally {
    await Promise.all(streams.map((s) => s.stop()));
  }
}

const results: Result[] = [];
for (const calls of CALLS) {
  const result = await run(calls);
  results.push(result);
  console.log(
    `${String(calls).padStart(5)} calls  loss ${result.lossPercent.toFixed(3)}%  jitter mean ${result.meanJitterMs.toFixed(2)} ms max ${result.maxJitterMs.toFixed(2)} ms  cpu ${result.cpuMsPerCallSecond.toFixed(3)} ms/call-s  ${result.sustained ? "ok" : "NOT sustained"}`,
  );
  if (!result.sustained) break;
}
const sustained = results.filter((r) => r.sustained);
const best = sustained.at(-1);
console.log(
  JSON.stringify({
    calls_sustained: best?.calls ?? 0,
    cpu_ms_per_call_second: best === undefined ? null : Number(best.cpuMsPerCallSecond.toFixed(4)),
    seconds: SECONDS,
    runs: results,
  }),
);
