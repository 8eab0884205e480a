// The command-line softphone with real peers (issue 6): `sipsteer answer` and `sipsteer call`
// as processes on a monitor and three proxies (digest on, one shared location store), each
// finding its proxy through the monitor; audio checked in the recordings with Goertzel.
// - whole system: proxies carrying different loads; bob and alice land on different ones and
//   a 1 kHz tone crosses in each direction;
// - baresip (a stock phone) calls `sipsteer answer`, and `sipsteer call` calls baresip;
// - SIPp plays its bundled G.711 capture into `sipsteer answer`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { UserAgent, type Call } from "../../src/client/index.js";
import { readWavFile, scanForTone } from "../../src/media/index.js";
import { Baresip } from "../helpers/baresip.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { eventually } from "../helpers/eventually.js";
import { freePort, startSipp } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { makeVideoClip, probeVideo } from "../helpers/video-clip.js";
import {
  LOOPBACK,
  PASSWORDS,
  StaticMedia,
  ZONE,
  addressOf,
  only,
  staticSdp,
  startFleet,
  udpPortOf,
  type TestFleet,
} from "../client/client-fleet.js";

type Report = {
  proxy: string | null;
  answered: boolean;
  setup_ms: number | null;
  audio: { sent: number; received: number; lost: number; jitter_ms: number } | null;
  video: unknown;
  mos: number | null;
};

const work = mkdtempSync(join(tmpdir(), "sipsteer-softphone-"));
const runs = new Set<CliRun>();

function phone(args: string[]): CliRun {
  const run = runCli([...args, "--json", "--allow", "127.0.0.0/8"]);
  runs.add(run);
  return run;
}

/** The JSON lines a phone printed, parsed. */
function lines(run: CliRun): Record<string, unknown>[] {
  return run.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function reports(run: CliRun): Report[] {
  return lines(run).filter((l) => "answered" in l) as unknown as Report[];
}

/** Starts `sipsteer answer` for `user` and waits until it has registered; returns where. */
async function answerer(
  fleet: TestFleet,
  user: keyof typeof PASSWORDS,
  extra: string[],
): Promise<{ run: CliRun; proxy: string }> {
  const run = phone([
    "answer",
    "--monitor",
    fleet.http,
    "--user",
    user,
    "--password",
    PASSWORDS[user],
    ...extra,
  ]);
  const registered = await eventually(
    () => lines(run).find((l) => l.event === "registered"),
    15_000,
    `${user} registered`,
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${run.stdout}\n${run.stderr}`);
  });
  return { run, proxy: String(registered.proxy) };
}

/** Runs `sipsteer call bob` as alice for 3 s of media and waits for it to end. */
async function aliceCallsBob(fleet: TestFleet, extra: string[]): Promise<CliRun> {
  const alice = phone([
    "call",
    "bob",
    "--monitor",
    fleet.http,
    "--user",
    "alice",
    "--password",
    PASSWORDS.alice,
    "--duration",
    "3",
    ...extra,
  ]);
  const exit = await within(alice.exit, 30_000);
  assert.equal(exit?.code, 0, `alice's call:\n${alice.stdout}\n${alice.stderr}`);
  return alice;
}

/** Ends a phone with SIGTERM and waits for it. */
async function hangUp(run: CliRun): Promise<void> {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGTERM");
  await within(run.exit, 10_000);
  reap(run);
}

/** Asserts a recording holds `frequency` after a silent start. */
async function assertTone(path: string, frequency: number, what: string): Promise<void> {
  const samples = await readWavFile(path);
  const scan = scanForTone(samples, { frequency });
  assert.ok(
    scan.toneBlocks >= 50,
    `${what}: ${frequency} Hz in ${scan.toneBlocks} blocks of ${scan.blocks}`,
  );
  if (scan.firstToneSample > 800) {
    // What came before the tone (ringing, before media flowed) is silence.
    assert.ok(
      scan.maxLevelBeforeDbfs < -50,
      `${what}: before the tone ${scan.maxLevelBeforeDbfs.toFixed(1)} dBFS`,
    );
  }
}

after(() => {
  for (const run of runs) reap(run);
  rmSync(work, { recursive: true, force: true });
});

describe("sipsteer call and answer on a fleet", () => {
  let fleet: TestFleet;

  before(async () => {
    // MD5 first: baresip 1.0 gives up on a 401 that offers SHA-256 at all.
    fleet = await startFleet({ proxies: 3, shared: true, algorithms: ["MD5"], capacityCalls: 4 });
  });

  after(async () => {
    await fleet?.stop();
  });

  test("whole system: on proxies with different loads bob and alice land apart, and a tone crosses each way", async () => {
    const [p1, p2] = fleet.proxies;
    // bob's phone at p2, carol (an SDK agent) at p1, while the others drain.
    await only(fleet, p2!);
    const bobRecording = join(work, "bob.wav");
    const bob = await answerer(fleet, "bob", ["--record", bobRecording, "--play", "tone:1000"]);
    assert.equal(bob.proxy, "p2");
    await only(fleet, p1!);
    const carol = new UserAgent({
      user: "carol",
      password: PASSWORDS.carol,
      domain: ZONE,
      monitors: [fleet.http],
      allowedDestinations: LOOPBACK,
    });
    await carol.start();
    let held: Call | undefined;
    try {
      assert.equal((await carol.register()).id, "p1");
      for (const proxy of fleet.proxies) proxy.undrain();
      // carol's call to bob loads p1 and p2 (one call of 4 each); p3 stays idle.
      held = carol.call("bob", { media: new StaticMedia(staticSdp("carol", 40_100)) });
      await held.whenAnswered();
      await eventually(
        () => {
          const ranked = fleet.monitor.selector.ranked("udp").map((r) => r.proxy);
          return ranked[0] === "p3" && fleet.monitor.table.eligible().length === 3
            ? true
            : undefined;
        },
        10_000,
        "p3 the least loaded",
      );
      const aliceRecording = join(work, "alice.wav");
      const alice = await aliceCallsBob(fleet, ["--play", "tone:1000", "--record", aliceRecording]);
      const [report] = reports(alice);
      assert.equal(report?.proxy, "p3", "alice went to the idle proxy");
      assert.equal(report?.answered, true);
      assert.ok(report.audio!.received >= 100, `alice received ${report.audio!.received}`);
      assert.equal(report.audio!.lost, 0);
      assert.ok(report.mos! > 4, `MOS ${report.mos}`);
      await assertTone(aliceRecording, 1000, "alice heard bob");
      // bob's report comes when alice's BYE has ended his side.
      const bobReport = await eventually(
        () => reports(bob.run).find((r) => r.audio !== null && r.audio.received >= 100),
        10_000,
        "bob's report",
      );
      assert.equal(bobReport.answered, true);
      assert.equal(bobReport.proxy, "p2");
      await assertTone(bobRecording.replace(/\.wav$/, "-2.wav"), 1000, "bob heard alice");
    } finally {
      await held?.hangup().catch(() => undefined);
      await carol.stop();
      await hangUp(bob.run);
    }
  });

  test("baresip calls sipsteer answer, and sipsteer call calls baresip: each hears the other's tone", async (t) => {
    if (!requireTool(t, "baresip", "baresip-core")) return;
    const p2 = fleet.proxies[1]!;
    const ourRecording = join(work, "carol-answer.wav");
    const ours = await answerer(fleet, "carol", ["--record", ourRecording, "--play", "tone:440"]);
    const baresip = await Baresip.start({
      user: "bob",
      password: PASSWORDS.bob,
      domain: ZONE,
      proxy: { address: addressOf(p2), port: udpPortOf(p2) },
      autoAnswer: true,
      toneHz: 1000,
    });
    try {
      // baresip → sipsteer answer.
      await baresip.command("dial", `sip:carol@${ZONE}`);
      await baresip.waitFor(/Call established/, 15_000);
      await new Promise((r) => setTimeout(r, 3000));
      await baresip.command("hangup");
      await baresip.waitFor(/terminated/, 10_000);
      const report = await eventually(
        () => reports(ours.run).find((r) => r.answered),
        10_000,
        "sipsteer answer's report",
      );
      assert.ok(report.audio!.received >= 100, `received ${report.audio!.received}`);
      await assertTone(ourRecording, 1000, "sipsteer answer heard baresip");
      await assertTone(baresip.recordings().heard, 440, "baresip heard sipsteer answer");

      // sipsteer call → baresip (auto-answer), from wherever the monitor sends alice.
      const aliceRecording = join(work, "alice-to-baresip.wav");
      await aliceCallsBob(fleet, ["--play", "tone:440", "--record", aliceRecording]);
      await assertTone(aliceRecording, 1000, "sipsteer call heard baresip");
      await baresip.waitFor(/terminated[\s\S]*terminated/, 10_000);
      await assertTone(baresip.recordings().heard, 440, "baresip heard sipsteer call");
    } finally {
      await baresip.stop();
      await hangUp(ours.run);
    }
  });

  test("SIPp plays its G.711 capture into sipsteer answer: recorded, and every packet counted", async () => {
    const recording = join(work, "from-sipp.wav");
    const ours = await answerer(fleet, "bob", ["--record", recording]);
    try {
      const proxy = fleet.proxies[Number(ours.proxy.slice(1)) - 1]!;
      const caller = startSipp({
        scenario: "call-uac-pcap.xml",
        transport: "u1",
        remote: `${addressOf(proxy)}:${udpPortOf(proxy)}`,
        localPort: await freePort(),
        calls: 1,
        timeoutMs: 40_000,
        extraArgs: [
          "-d",
          "8000",
          "-s",
          "bob",
          "-key",
          "domain",
          ZONE,
          "-key",
          "caller",
          "alice",
          "-au",
          "alice",
          "-ap",
          PASSWORDS.alice,
          "-mi",
          "127.0.0.1",
          "-mp",
          String(await freePort()),
        ],
      });
      const result = await caller.result;
      assert.equal(result.successful, 1, result.output);
      const report = await eventually(
        () => reports(ours.run).find((r) => r.answered),
        10_000,
        "sipsteer answer's report",
      );
      // g711a.pcap holds 236 RTP packets of PCMA.
      assert.equal(report.audio!.received, 236, JSON.stringify(report));
      assert.equal(report.audio!.lost, 0);
      const samples = await readWavFile(recording);
      const loud = samples.filter((s) => Math.abs(s) > 1000).length;
      assert.ok(loud > 8000, `the recording holds the capture's audio (${loud} loud samples)`);
    } finally {
      await hangUp(ours.run);
    }
  });

  test("a video call: VP8 from an IVF file each way between sipsteer call and sipsteer answer, and from baresip", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const bobVideo = join(work, "bob-video.ivf");
    const bob = await answerer(fleet, "bob", ["--video", clip.path, "--record-video", bobVideo]);
    try {
      const aliceVideo = join(work, "alice-video.ivf");
      const alice = await aliceCallsBob(fleet, [
        "--play",
        "tone:1000",
        "--video",
        clip.path,
        "--record-video",
        aliceVideo,
      ]);
      const [report] = reports(alice);
      const video = report!.video as { sent: number; received: number; lost: number } | null;
      assert.ok(video !== null && video.received > 20, `alice's video ${JSON.stringify(video)}`);
      assert.equal(video.lost, 0);
      const bobReport = await eventually(
        () => reports(bob.run).find((r) => r.answered),
        10_000,
        "bob's report",
      );
      const bobSaw = bobReport.video as { received: number } | null;
      assert.ok(bobSaw !== null && bobSaw.received > 20, `bob's video ${JSON.stringify(bobSaw)}`);
      // Each recording is VP8 that ffprobe decodes: about 3 s of the 25-fps clip.
      for (const [path, who] of [
        [aliceVideo, "alice"],
        [bobVideo, "bob"],
      ] as const) {
        const probe = await probeVideo(path);
        assert.equal(probe.codec, "vp8", who);
        assert.ok(probe.frames >= 40, `${who} recorded ${probe.frames} frames`);
      }

      if (!requireTool(t, "baresip", "baresip-core")) return;
      const p2 = fleet.proxies[1]!;
      const baresip = await Baresip.start({
        user: "carol",
        password: PASSWORDS.carol,
        domain: ZONE,
        proxy: { address: addressOf(p2), port: udpPortOf(p2) },
        video: true,
      });
      try {
        await baresip.command("dial", `sip:bob@${ZONE}`);
        await baresip.waitFor(/Call established/, 15_000);
        await baresip.waitFor(/video: receiving with resolution 320 x 240/, 10_000);
        await new Promise((r) => setTimeout(r, 2000));
        await baresip.command("hangup");
        await baresip.waitFor(/terminated/, 10_000);
      } finally {
        await baresip.stop();
      }
      const fromBaresip = await eventually(
        () => reports(bob.run).filter((r) => r.answered)[1],
        10_000,
        "bob's report of baresip's call",
      );
      const seen = fromBaresip.video as { received: number } | null;
      assert.ok(seen !== null && seen.received > 10, `from baresip ${JSON.stringify(seen)}`);
      const probe = await probeVideo(bobVideo.replace(/\.ivf$/, "-2.ivf"));
      assert.equal(probe.codec, "vp8");
      assert.ok(probe.frames > 10, `baresip's video: ${probe.frames} frames`);
    } finally {
      await hangUp(bob.run);
    }
  });

  // Last: it stops a proxy for good.
  test("a proxy stopped under a registered phone: sipsteer answer registers elsewhere, says so, and takes calls there", async () => {
    const p3 = fleet.proxies[2]!;
    await only(fleet, p3);
    const bob = await answerer(fleet, "bob", ["--transport", "tcp", "--play", "tone:1000"]);
    try {
      assert.equal(bob.proxy, "p3");
      for (const proxy of fleet.proxies) proxy.undrain();
      await fleet.stopProxy(p3);
      // The TCP flow closes: bob asks the monitor again and registers at another proxy.
      const moved = await eventually(
        () => lines(bob.run).find((l) => l.event === "moved"),
        15_000,
        "bob moved",
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\n${bob.run.stdout}\n${bob.run.stderr}`);
      });
      assert.equal(moved.from, "p3");
      assert.notEqual(moved.to, "p3");
      const alice = await aliceCallsBob(fleet, ["--play", "tone:440"]);
      const [report] = reports(alice);
      assert.equal(report?.answered, true);
      assert.ok(report.audio!.received >= 100, `alice received ${report.audio!.received}`);
    } finally {
      await hangUp(bob.run);
    }
  });
});
