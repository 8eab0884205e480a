// A browser (WebRTC: ICE, DTLS-SRTP, RTP/SAVPF, rtcp-mux) and baresip (plain RTP/AVP) call
// each other through the proxies and a real rtpengine (issue 8). The browser's microphone is
// Chromium's fake capture device playing a WAV of a steady 800 Hz tone that we write (a
// frequency we choose and a tone that never pauses, rather than the built-in fake device's
// sound, which this test does not rely on); baresip sends `ausine`'s
// 1 kHz. Proof: the browser's getStats() inbound audio grows, baresip's recording of what it
// heard holds the browser's 800 Hz; then the same with baresip calling the browser; then a
// video call carries VP8 both ways (getStats() inbound video, baresip decoding 320x240).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { encodeWav, readWavFile, scanForTone, ToneSource } from "../../src/media/index.js";
import { Baresip } from "../helpers/baresip.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { launchChromium, requireChromium, type PhoneWindow } from "../helpers/browser.js";
import { eventually } from "../helpers/eventually.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";
import { requireTool } from "../helpers/tools.js";
import type { RtpengineProcess } from "../../src/media/index.js";
import {
  PASSWORDS,
  ZONE,
  addressOf,
  startFleet,
  udpPortOf,
  type TestFleet,
} from "../client/client-fleet.js";

const LOOPBACK_ADDRESS = /^(127\.\d+\.\d+\.\d+|::1)$/;
const BROWSER_TONE_HZ = 800;

const work = mkdtempSync(join(tmpdir(), "sipsteer-browser-relay-"));

/** 20 s of a steady tone at 48 kHz, what Chromium's fake microphone will loop. */
function toneWav(path: string, frequency: number): void {
  const rate = 48_000;
  const samples = new Int16Array(rate * 20);
  for (let i = 0; i < samples.length; i++)
    samples[i] = Math.round(8000 * Math.sin((2 * Math.PI * frequency * i) / rate));
  writeFileSync(path, encodeWav(samples, rate));
}
void ToneSource;

describe("a browser and baresip through the media relay", () => {
  let relay: RtpengineProcess | undefined;
  let fleet: TestFleet | undefined;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const pageErrors: string[] = [];

  before(async (t) => {
    const ctx = t as never;
    if (
      !requireChromium(ctx) ||
      !requireRtpengine(ctx) ||
      !requireTool(ctx, "baresip", "baresip-core")
    )
      return;
    relay = await startRtpengine({
      logLevel: 7,
      // RELAY_LOG=1 shows rtpengine's debug log (ICE, DTLS) when a call fails to carry media.
      onLog: (line) => {
        if (process.env.RELAY_LOG !== undefined) process.stderr.write(`rtpengine: ${line}\n`);
      },
    });
    const ng = `127.0.0.1:${relay.options.ngPort}`;
    fleet = await startFleet({
      proxies: 2,
      shared: true,
      ws: true,
      // baresip 1.0 gives up on a SHA-256 challenge.
      algorithms: ["MD5"],
      media: () => ({ relay: "auto", relays: [{ id: "r1", ng }] }),
    });
    const wav = join(work, "browser-tone.wav");
    toneWav(wav, BROWSER_TONE_HZ);
    browser = await launchChromium([`--use-file-for-fake-audio-capture=${wav}`]);
    const context = await browser.newContext();
    page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(fleet.monitor.phoneUrl!);
    await page.waitForFunction(() => "sipsteerPhone" in globalThis);
    // The browser on p1 (the monitor picks it while p2 is drained), baresip on p2.
    fleet.monitor.table.drain("p2");
    const on = await page.evaluate(
      ([u, p]) => (globalThis as PhoneWindow).sipsteerPhone.register(u!, p!),
      ["alice", PASSWORDS.alice],
    );
    fleet.monitor.table.undrain("p2");
    assert.equal(on.proxy, "p1");
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await fleet?.stop();
      await relay?.stop();
      rmSync(work, { recursive: true, force: true });
    }
  });

  const state = () => page!.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.state());
  const stats = () => page!.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.stats());
  async function until(wanted: string): Promise<void> {
    await eventually(
      async () => ((await state()) === wanted ? true : undefined),
      15_000,
      `the page's call state ${wanted}`,
    );
  }

  async function baresip(video = false): Promise<Baresip> {
    const p2 = fleet!.proxies[1]!;
    return Baresip.start({
      user: "bob",
      password: PASSWORDS.bob,
      domain: ZONE,
      proxy: { address: addressOf(p2), port: udpPortOf(p2) },
      autoAnswer: true,
      toneHz: 1000,
      video,
    });
  }

  /** Inbound audio (and video) bytes at the page grow over a second. */
  async function inboundGrows(what: "audio" | "video"): Promise<void> {
    await eventually(
      async () => ((await stats())[what] > 0 ? true : undefined),
      15_000,
      `inbound ${what}`,
    );
    const first = (await stats())[what];
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok((await stats())[what] > first, `the browser's inbound ${what} grows`);
  }

  /** Only loopback addresses in the SDP the page saw: c= lines and ICE candidates. */
  async function assertLoopbackSdp(): Promise<void> {
    const sdp = await page!.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.sdp());
    for (const text of [sdp.local, sdp.remote]) {
      for (const line of text.split("\r\n")) {
        if (line.startsWith("a=candidate:"))
          assert.match(line.split(" ")[4]!, LOOPBACK_ADDRESS, line);
        const c = /^c=IN IP[46] (\S+)/.exec(line);
        if (c !== null && c[1] !== "0.0.0.0") assert.match(c[1]!, LOOPBACK_ADDRESS, line);
      }
    }
    // The remote side is the relay: its candidates, DTLS fingerprint and RTP/SAVPF.
    assert.match(sdp.remote, /UDP\/TLS\/RTP\/SAVPF/);
    assert.match(sdp.remote, /a=fingerprint:/);
  }

  async function heardBrowserTone(phone: Baresip): Promise<void> {
    const { heard } = phone.recordings();
    const scan = scanForTone(await readWavFile(heard), { frequency: BROWSER_TONE_HZ });
    assert.ok(
      scan.toneBlocks >= 40,
      `baresip heard ${BROWSER_TONE_HZ} Hz in ${scan.toneBlocks} of ${scan.blocks} blocks`,
    );
  }

  test("the browser calls baresip: audio both ways through rtpengine", async (t) => {
    if (page === undefined) return t.skip("a tool is missing");
    const phone = await baresip();
    try {
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.call("bob"));
      try {
        await until("connected");
      } catch (e) {
        const cause = await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.cause());
        const sdp = await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.sdp());
        throw new Error(
          `not connected (${await state()}: ${cause}); remote SDP:\n${sdp.remote}\nbaresip:\n${phone.output}`,
          { cause: e },
        );
      }
      await inboundGrows("audio");
      await assertLoopbackSdp();
      await new Promise((r) => setTimeout(r, 1500));
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await until("ended");
      await phone.waitFor(/session closed|terminated/i, 10_000);
      await heardBrowserTone(phone);
    } finally {
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await phone.stop();
    }
    assert.deepEqual(pageErrors, []);
  });

  test("baresip calls the browser: audio both ways through rtpengine", async (t) => {
    if (page === undefined) return t.skip("a tool is missing");
    const phone = await baresip();
    try {
      await phone.command("dial", `sip:alice@${ZONE}`);
      await until("incoming");
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.answer());
      await until("connected");
      await phone.waitFor(/Call established/, 15_000);
      await inboundGrows("audio");
      await assertLoopbackSdp();
      await new Promise((r) => setTimeout(r, 1500));
      await phone.command("hangup");
      await until("ended");
      await heardBrowserTone(phone);
    } finally {
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await phone.stop();
    }
    assert.deepEqual(pageErrors, []);
  });

  test("a video call between the browser and baresip carries VP8 both ways", async (t) => {
    if (page === undefined) return t.skip("a tool is missing");
    const phone = await baresip(true);
    try {
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.call("bob"));
      await until("connected");
      // baresip decodes the browser's VP8; the browser's inbound video grows.
      await phone.waitFor(/video: receiving with resolution/, 15_000);
      await inboundGrows("video");
      await inboundGrows("audio");
      const sdp = await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.sdp());
      assert.match(sdp.remote, /^m=video [1-9]\d* UDP\/TLS\/RTP\/SAVPF/m, "video accepted");
      assert.match(sdp.remote, /a=rtpmap:\d+ VP8\/90000/);
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await until("ended");
    } finally {
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await phone.stop();
    }
    await eventually(
      () => (fleet!.proxies.every((p) => p.report().media === 0) ? true : undefined),
      5000,
      "no relayed streams left",
    );
    assert.deepEqual(pageErrors, []);
  });

  /** `sipsteer call|answer` as carol, 800 Hz expected in its recording. */
  function softphone(args: string[], record: string): CliRun {
    return runCli([
      ...args,
      "--monitor",
      fleet!.http,
      "--user",
      "carol",
      "--password",
      PASSWORDS.carol,
      "--play",
      "tone:1000",
      "--record",
      record,
      "--json",
      "--allow",
      "127.0.0.0/8",
    ]);
  }

  async function softphoneHeardBrowser(record: string): Promise<void> {
    const scan = scanForTone(await readWavFile(record), { frequency: BROWSER_TONE_HZ });
    assert.ok(
      scan.toneBlocks >= 40,
      `the softphone heard ${BROWSER_TONE_HZ} Hz in ${scan.toneBlocks} blocks`,
    );
  }

  test("the CLI softphone and the browser call each other through rtpengine", async (t) => {
    if (page === undefined) return t.skip("a tool is missing");
    // sipsteer call → the browser.
    const calling = join(work, "carol-calls.wav");
    const caller = softphone(["call", "alice", "--duration", "3"], calling);
    try {
      await until("incoming");
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.answer());
      await until("connected");
      await inboundGrows("audio");
      const exit = await within(caller.exit, 30_000);
      assert.equal(exit?.code, 0, `sipsteer call:\n${caller.stdout}\n${caller.stderr}`);
      await until("ended");
      await softphoneHeardBrowser(calling);
    } finally {
      if (caller.child.exitCode === null) caller.child.kill("SIGTERM");
      await within(caller.exit, 10_000);
      reap(caller);
    }

    // The browser → sipsteer answer.
    const answering = join(work, "carol-answers.wav");
    const answerer = softphone(["answer"], answering);
    try {
      await eventually(
        () => (answerer.stdout.includes('"event":"registered"') ? true : undefined),
        15_000,
        `carol registered:\n${answerer.stderr}`,
      );
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.call("carol"));
      await until("connected");
      await inboundGrows("audio");
      await new Promise((r) => setTimeout(r, 1500));
      await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await until("ended");
    } finally {
      if (answerer.child.exitCode === null) answerer.child.kill("SIGTERM");
      await within(answerer.exit, 10_000);
      reap(answerer);
    }
    await softphoneHeardBrowser(answering);
    assert.deepEqual(pageErrors, []);
  });
});
