// The browser phone (issue 7) in Debian's Chromium: two pages served by the monitor register
// over SIP on WebSocket (RFC 7118) at two different proxies of a fleet that shares one
// location store, and call each other with the fake camera and microphone (WebRTC, ICE kept
// to loopback). Proof of media is RTCPeerConnection.getStats(): inbound audio and video bytes
// growing on both sides. A call between the browser and a plain-RTP phone is refused with 488
// when no media relay is configured (with one: browser-relay.test.ts).
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { UserAgent, CallEndedError } from "../../src/client/index.js";
import {
  CHROMIUM_PATH,
  launchChromium,
  requireChromium,
  type PhoneWindow,
} from "../helpers/browser.js";
import { eventually } from "../helpers/eventually.js";
import { PROJECT_ROOT } from "../helpers/paths.js";
import {
  LOOPBACK,
  PASSWORDS,
  StaticMedia,
  UA_TIMERS,
  ZONE,
  staticSdp,
  startFleet,
  type TestFleet,
} from "../client/client-fleet.js";

const LOOPBACK_ADDRESS = /^(127\.\d+\.\d+\.\d+|::1)$/;
const SCREENSHOT = join(PROJECT_ROOT, "docs", "screenshots", "phone-call.png");

describe("browser phone", () => {
  let fleet: TestFleet | undefined;
  let browser: Browser | undefined;
  /** Uncaught errors on any page: each test ends with none. */
  const pageErrors: string[] = [];

  before(async () => {
    if (!existsSync(CHROMIUM_PATH)) return;
    fleet = await startFleet({ proxies: 3, shared: true, ws: true });
    browser = await launchChromium();
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await fleet?.stop();
    }
  });

  /** A new page at the monitor's /phone/, its uncaught errors collected. */
  async function openPhone(): Promise<Page> {
    const context = await browser!.newContext();
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await page.goto(fleet!.monitor.phoneUrl!);
    await page.waitForFunction(() => "sipsteerPhone" in globalThis);
    return page;
  }

  /** Registers `user` at the proxy the monitor chooses while only `on` is eligible there. */
  async function registerOn(page: Page, user: keyof typeof PASSWORDS, on: string) {
    const table = fleet!.monitor.table;
    for (const proxy of fleet!.proxies) {
      if (proxy.config.id === on) table.undrain(proxy.config.id);
      else table.drain(proxy.config.id);
    }
    try {
      return await page.evaluate(
        ([u, p]) => (globalThis as PhoneWindow).sipsteerPhone.register(u!, p!),
        [user, PASSWORDS[user]],
      );
    } finally {
      for (const proxy of fleet!.proxies) table.undrain(proxy.config.id);
    }
  }

  const state = (page: Page) =>
    page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.state());

  async function until(page: Page, wanted: string): Promise<void> {
    await eventually(
      async () => ((await state(page)) === wanted ? true : undefined),
      15_000,
      `the page's call state ${wanted}`,
    );
  }

  const stats = (page: Page) =>
    page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.stats());

  test("two browsers on different proxies call with audio and video; the calls end at 0", async (t) => {
    if (!requireChromium(t)) return;
    const alice = await openPhone();
    const bob = await openPhone();
    const onAlice = await registerOn(alice, "alice", "p1");
    const onBob = await registerOn(bob, "bob", "p2");
    assert.equal(onAlice.proxy, "p1");
    assert.equal(onBob.proxy, "p2");
    assert.notEqual(onAlice.proxy, onBob.proxy);
    assert.match(onAlice.uri, /^ws:\/\/127\.0\.0\.11:\d+/);

    try {
      await alice.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.call("bob"));
      await until(bob, "incoming");
      await bob.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.answer());
      await until(alice, "connected");
      await until(bob, "connected");
      assert.equal(fleet!.proxies[0]!.calls, 1);
      assert.equal(fleet!.proxies[1]!.calls, 1);

      // Media flows both ways: every inbound stream's bytes grow between two samples.
      await eventually(
        async () => {
          const [a, b] = [await stats(alice), await stats(bob)];
          return a.audio > 0 && a.video > 0 && b.audio > 0 && b.video > 0 ? true : undefined;
        },
        15_000,
        "inbound audio and video on both pages",
      );
      const first = [await stats(alice), await stats(bob)];
      await new Promise((r) => setTimeout(r, 1000));
      const second = [await stats(alice), await stats(bob)];
      for (const [i, side] of ["alice", "bob"].entries()) {
        assert.ok(second[i]!.audio > first[i]!.audio, `${side}'s inbound audio grows`);
        assert.ok(second[i]!.video > first[i]!.video, `${side}'s inbound video grows`);
      }
      // Only loopback candidates were signalled, so media goes to a loopback address; Chromium
      // may still send from its own interface address (its host candidate on eth0 checks the
      // peer's 127.0.0.1): both ends are this machine's, one of them loopback.
      const own = new Set(
        Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((i) => i.address)),
      );
      for (const sample of second) {
        const { local, remote } = sample.pair ?? { local: "", remote: "" };
        // Chromium leaves out the address of a peer-reflexive remote candidate ("").
        for (const end of [local, remote].filter((a) => a !== "")) {
          assert.ok(own.has(end), `${local} ↔ ${remote}: ${end} is this machine's`);
        }
        assert.ok(
          LOOPBACK_ADDRESS.test(local) || LOOPBACK_ADDRESS.test(remote),
          "one end loopback",
        );
      }
      for (const page of [alice, bob]) {
        const sdp = await page.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.sdp());
        for (const text of [sdp.local, sdp.remote]) {
          const candidates = text.split("\r\n").filter((l) => l.startsWith("a=candidate:"));
          assert.ok(candidates.length > 0, "candidates were exchanged");
          for (const c of candidates) assert.match(c.split(" ")[4]!, LOOPBACK_ADDRESS, c);
        }
      }
      mkdirSync(join(PROJECT_ROOT, "docs", "screenshots"), { recursive: true });
      await bob.screenshot({ path: SCREENSHOT });

      await alice.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
      await until(alice, "ended");
      await until(bob, "ended");
      await eventually(
        () => {
          const proxies = fleet!.proxies.every((p) => p.calls === 0 && p.report().calls === 0);
          const seen = fleet!.monitor.table.eligible().every((p) => p.report.calls === 0);
          return proxies && seen ? true : undefined;
        },
        5000,
        "every proxy's call count back to 0, at the proxies and at the monitor",
      );
    } finally {
      // A failed assertion leaves no call up for the next test.
      await alice.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.hangup());
    }
    assert.deepEqual(pageErrors, []);
  });

  // Without a media relay: a browser's offer (UDP/TLS/RTP/SAVPF) to a phone that speaks
  // RTP/AVP, and the phone's offer to the browser, are refused at the proxy with 488.
  test("a browser and a plain-RTP phone: 488 both ways, nothing forked, no call counted", async (t) => {
    if (!requireChromium(t)) return;
    const carol = new UserAgent({
      user: "carol",
      password: PASSWORDS.carol,
      domain: ZONE,
      monitors: [fleet!.http],
      allowedDestinations: LOOPBACK,
      timers: UA_TIMERS,
    });
    let rang = 0;
    carol.on("incoming", () => rang++);
    try {
      await carol.start();
      await carol.register();
      const alice = await openPhone();
      await registerOn(alice, "alice", "p3");

      await alice.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.call("carol"));
      await until(alice, "failed");
      const cause = await alice.evaluate(() => (globalThis as PhoneWindow).sipsteerPhone.cause());
      assert.equal(
        cause,
        "488 Not Acceptable Here (the call needs a media relay and none is available)",
      );
      assert.equal(rang, 0, "the phone never rang");

      const call = carol.call("alice", { media: new StaticMedia(staticSdp("carol", 40000)) });
      const refused = await call.whenAnswered().then(
        () => assert.fail("answered"),
        (e: unknown) => e,
      );
      assert.ok(refused instanceof CallEndedError, String(refused));
      assert.equal(refused.end.status, 488);
      assert.equal(await state(alice), "failed", "the browser never rang");
      assert.ok(fleet!.proxies.every((p) => p.calls === 0));
      assert.deepEqual(pageErrors, []);
    } finally {
      await carol.stop();
    }
  });
});
