// The audio stream against ffmpeg as an independent RTP peer on loopback (Debian `ffmpeg`):
// ffmpeg's G.711 RTP (1 s of silence, then 2 s of 1 kHz) is received, recorded to WAV and
// counted; and our tone:1000 is received by ffmpeg from an SDP file we wrote, into a WAV that
// Goertzel checks. PCMU and PCMA both ways.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  AudioStream,
  SequenceSource,
  SilenceSource,
  ToneSource,
  WavRecorder,
  buildOffer,
  readWavFile,
  scanForTone,
} from "../../src/media/index.js";
import { eventually } from "../helpers/eventually.js";
import { requireTool } from "../helpers/tools.js";

const dir = mkdtempSync(join(tmpdir(), "ffmpeg-rtp-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  exited: Promise<number | null>;
  stderr: () => string;
}

function runFfmpeg(args: string[]): Run {
  const child = spawn("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, stderr: () => stderr };
}

function reap(run: Run | undefined): void {
  if (run !== undefined && run.child.exitCode === null && run.child.pid !== undefined) {
    process.kill(run.child.pid, "SIGKILL");
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A free even/odd port pair for ffmpeg to listen on (taken, then let go). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const a = createSocket("udp4");
    const port = await new Promise<number>((r) =>
      a.bind(0, "127.0.0.1", () => r(a.address().port)),
    );
    const b = createSocket("udp4");
    const ok =
      port % 2 === 0 &&
      (await new Promise<boolean>((r) => {
        b.once("error", () => r(false));
        b.bind(port + 1, "127.0.0.1", () => r(true));
      }));
    await Promise.all([
      new Promise<void>((r) => a.close(() => r())),
      new Promise<void>((r) => {
        try {
          b.close(() => r());
        } catch {
          r(); // never bound
        }
      }),
    ]);
    if (ok) return port;
  }
}

/** True once something (ffmpeg) holds the UDP port. */
async function portTaken(port: number): Promise<boolean> {
  const probe = createSocket("udp4");
  const taken = await new Promise<boolean>((r) => {
    probe.once("error", () => r(true));
    probe.bind(port, "127.0.0.1", () => r(false));
  });
  await new Promise<void>((r) => {
    try {
      probe.close(() => r());
    } catch {
      r();
    }
  });
  return taken;
}

const laws = [
  { name: "PCMU", payloadType: 0, ffmpegCodec: "pcm_mulaw" },
  { name: "PCMA", payloadType: 8, ffmpegCodec: "pcm_alaw" },
] as const;

// Each test lasts as long as its 3 s of media: run them side by side.
describe("audio stream with ffmpeg as the RTP peer", { concurrency: true }, () => {
  for (const law of laws) {
    test(`ffmpeg sends ${law.name} RTP: recorded with the 1 kHz tone after silence, ~150 packets counted, none lost`, async (t) => {
      if (!requireTool(t, "ffmpeg", "ffmpeg")) return;
      const wav = join(dir, `from-ffmpeg-${law.name}.wav`);
      const recorder = new WavRecorder({ path: wav });
      await recorder.start();
      const stream = new AudioStream({
        localAddress: "127.0.0.1",
        payloadType: law.payloadType,
        symmetric: true,
        sink: recorder,
        allowedDestinations: ["127.0.0.0/8"],
      });
      let ffmpeg: Run | undefined;
      try {
        const { rtpPort } = await stream.start();
        // aevalsrc: 1 s of zeros then 2 s of a 1 kHz sine, 160 samples a frame = 20-ms packets.
        ffmpeg = runFfmpeg([
          "-re",
          "-f",
          "lavfi",
          "-i",
          "aevalsrc=if(gte(t\\,1)\\,0.5*sin(2*PI*1000*t)\\,0):s=8000:d=3:n=160",
          "-ac",
          "1",
          "-acodec",
          law.ffmpegCodec,
          "-f",
          "rtp",
          `rtp://127.0.0.1:${rtpPort}`,
        ]);
        const code = await withTimeout(ffmpeg.exited, 30_000, "ffmpeg sending 3 s of RTP");
        assert.equal(code, 0, ffmpeg.stderr());
        // Let the jitter buffer play out what it holds.
        await eventually(
          () => (stream.stats.underruns > 0 ? true : undefined),
          5_000,
          "playout to drain",
        );
        const stats = stream.stats;
        assert.ok(stats.received >= 145 && stats.received <= 150, `received ${stats.received}`);
        assert.equal(stats.lost, 0);
        assert.equal(stats.malformed, 0);
        assert.ok(stats.rtcpReceived >= 1, "ffmpeg's RTCP SR arrived");
        assert.ok(stats.remote !== undefined, "latched onto ffmpeg's source");
      } finally {
        reap(ffmpeg);
        await stream.stop();
        await recorder.close();
      }
      const samples = await readWavFile(wav);
      const scan = scanForTone(samples, { frequency: 1000 });
      assert.ok(scan.toneBlocks >= 95, `${scan.toneBlocks} blocks of 1 kHz of ${scan.blocks}`);
      assert.ok(
        Math.abs(scan.firstToneSample - 8000) <= 480,
        `tone starts at sample ${scan.firstToneSample}`,
      );
      assert.ok(scan.maxLevelBeforeDbfs < -60, `before the tone: ${scan.maxLevelBeforeDbfs} dBFS`);
    });

    test(`ffmpeg receives our ${law.name} from our SDP: its WAV holds the 1 kHz tone after silence`, async (t) => {
      if (!requireTool(t, "ffmpeg", "ffmpeg")) return;
      const port = await freePortPair();
      const sdpPath = join(dir, `to-ffmpeg-${law.name}.sdp`);
      const wav = join(dir, `to-ffmpeg-${law.name}.wav`);
      // Our own offer, as ffmpeg's input: the description of what it will receive.
      writeFileSync(
        sdpPath,
        buildOffer({ address: "127.0.0.1", audioPort: port, audioCodecs: [law.name] }),
      );
      let ffmpeg: Run | undefined;
      let stream: AudioStream | undefined;
      try {
        ffmpeg = runFfmpeg([
          "-protocol_whitelist",
          "file,udp,rtp",
          "-i",
          sdpPath,
          "-t",
          "3",
          "-y",
          wav,
        ]);
        await eventually(
          async () => ((await portTaken(port)) ? true : undefined),
          15_000,
          "ffmpeg to bind its RTP port",
        );
        stream = new AudioStream({
          localAddress: "127.0.0.1",
          payloadType: law.payloadType,
          telephoneEventPt: 101,
          remote: { address: "127.0.0.1", port },
          source: new SequenceSource([
            new SilenceSource({ durationMs: 1000 }),
            new ToneSource({ frequency: 1000 }),
          ]),
          allowedDestinations: ["127.0.0.0/8"],
        });
        await stream.start();
        const code = await withTimeout(ffmpeg.exited, 30_000, "ffmpeg recording 3 s");
        assert.equal(code, 0, ffmpeg.stderr());
        assert.ok(stream.stats.sent >= 150, `sent ${stream.stats.sent}`);
      } finally {
        reap(ffmpeg);
        await stream?.stop();
      }
      const samples = await readWavFile(wav);
      assert.ok(samples.length >= 23_000, `${samples.length} samples recorded by ffmpeg`);
      const scan = scanForTone(samples, { frequency: 1000 });
      assert.ok(scan.toneBlocks >= 90, `${scan.toneBlocks} blocks of 1 kHz of ${scan.blocks}`);
      assert.ok(
        scan.firstToneSample >= 7000 && scan.firstToneSample <= 8500,
        `tone at ${scan.firstToneSample}`,
      );
      assert.ok(scan.maxLevelBeforeDbfs < -60, `before the tone: ${scan.maxLevelBeforeDbfs} dBFS`);
    });
  }
});
