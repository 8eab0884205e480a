// The media relay with a real rtpengine (issue 8): SDK phones sending real G.711 tones, the
// proxy putting the call on the relay, tones checked in the recordings with Goertzel.
// - alice's SDP names 127.0.0.99 while her RTP is on 127.0.0.21 (a phone behind NAT); bob
//   sends where SDP says (not symmetric). With the relay (policy auto sees the odd address)
//   audio flows both ways through rtpengine's latching; with the relay off, bob's audio never
//   reaches alice.
// - policy always: the SDP each side sees names only the relay; the proxy's load report counts
//   the relayed stream while the call is up and the relay forgets the call after the BYE.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { RtpMediaSession, UserAgent, type Call } from "../../src/client/index.js";
import {
  NgClient,
  readWavFile,
  scanForTone,
  type RtpengineProcess,
} from "../../src/media/index.js";
import {
  LOOPBACK,
  PASSWORDS,
  UA_TIMERS,
  ZONE,
  startFleet,
  type TestFleet,
} from "../client/client-fleet.js";
import { eventually } from "../helpers/eventually.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";

const work = mkdtempSync(join(tmpdir(), "sipsteer-relay-"));
after(() => rmSync(work, { recursive: true, force: true }));

function agent(user: keyof typeof PASSWORDS, fleet: TestFleet, address: string): UserAgent {
  return new UserAgent({
    user,
    password: PASSWORDS[user],
    domain: ZONE,
    monitors: [fleet.http],
    address,
    allowedDestinations: LOOPBACK,
    timers: UA_TIMERS,
  });
}

interface Leg {
  readonly media: RtpMediaSession;
  readonly recording: string;
}

function leg(
  name: string,
  o: { bind: string; advertise?: string; tone: number; symmetric?: boolean },
): Leg {
  const recording = join(work, `${name}-${Date.now()}.wav`);
  return {
    recording,
    media: new RtpMediaSession({
      localAddress: o.bind,
      ...(o.advertise === undefined ? {} : { advertiseAddress: o.advertise }),
      allowedDestinations: LOOPBACK,
      play: `tone:${o.tone}`,
      recordPath: recording,
      symmetric: o.symmetric ?? true,
    }),
  };
}

/** Blocks of 20 ms in which `frequency` dominates the recording. */
async function toneBlocks(path: string, frequency: number): Promise<number> {
  return scanForTone(await readWavFile(path), { frequency }).toneBlocks;
}

/** alice calls bob; both talk for `ms`; alice hangs up. Returns both calls. */
async function talk(
  alice: UserAgent,
  bob: UserAgent,
  a: Leg,
  b: Leg,
  ms: number,
): Promise<{ outgoing: Call; incoming: Call }> {
  const incomingP = new Promise<Call>((resolve) =>
    bob.once("incoming", (call: Call) => {
      void call.answer({ media: b.media });
      resolve(call);
    }),
  );
  const outgoing = alice.call("bob", { media: a.media });
  await outgoing.whenAnswered();
  const incoming = await incomingP;
  await new Promise((r) => setTimeout(r, ms));
  await outgoing.hangup();
  await incoming.whenEnded();
  await a.media.stop();
  await b.media.stop();
  return { outgoing, incoming };
}

function sdpAddresses(sdp: string): string[] {
  return [...sdp.matchAll(/^c=IN IP[46] (\S+)/gm)].map((m) => m[1]!);
}

describe("calls through rtpengine", () => {
  let relay: RtpengineProcess | undefined;
  let fleet: TestFleet;
  let alice: UserAgent;
  let bob: UserAgent;
  let policy: "auto" | "always" | "never" = "auto";

  before(async (t) => {
    if (!requireRtpengine(t as never)) return;
    relay = await startRtpengine();
    const ng = `127.0.0.1:${relay.options.ngPort}`;
    // One proxy; its policy is switched by restarting the fleet per group below.
    fleet = await startFleet({
      proxies: 1,
      media: () => ({ relay: policy, relays: [{ id: "r1", ng }] }),
    });
    alice = agent("alice", fleet, "127.0.0.21");
    bob = agent("bob", fleet, "127.0.0.22");
    await alice.start();
    await bob.start();
    await alice.register();
    await bob.register();
  });

  after(async () => {
    await alice?.stop();
    await bob?.stop();
    await fleet?.stop();
    await relay?.stop();
  });

  test("a phone whose SDP names an address it does not listen on gets two-way audio through the relay (latching)", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const a = leg("alice", { bind: "127.0.0.21", advertise: "127.0.0.99", tone: 1000 });
    const b = leg("bob", { bind: "127.0.0.22", tone: 600, symmetric: false });
    const { incoming } = await talk(alice, bob, a, b, 2000);
    // Each side was given the relay's address, never the other phone's.
    assert.deepEqual(sdpAddresses(incoming.remoteOffer), ["127.0.0.1"], incoming.remoteOffer);
    assert.equal(a.media.negotiated?.remote.address, "127.0.0.1");
    assert.equal(b.media.negotiated?.remote.address, "127.0.0.1");
    assert.ok((await toneBlocks(b.recording, 1000)) >= 40, "bob hears alice's 1 kHz");
    assert.ok((await toneBlocks(a.recording, 600)) >= 40, "alice hears bob's 600 Hz");
  });

  test("the proxy counts the relayed stream while the call is up; the relay forgets the call after BYE", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const ng = new NgClient({ address: "127.0.0.1", port: relay.options.ngPort });
    await ng.start();
    try {
      const a = leg("alice", { bind: "127.0.0.21", advertise: "127.0.0.99", tone: 1000 });
      const b = leg("bob", { bind: "127.0.0.22", tone: 600 });
      const incomingP = new Promise<Call>((resolve) =>
        bob.once("incoming", (call: Call) => {
          void call.answer({ media: b.media });
          resolve(call);
        }),
      );
      const outgoing = alice.call("bob", { media: a.media });
      await outgoing.whenAnswered();
      const incoming = await incomingP;
      const proxy = fleet.proxies[0]!;
      assert.equal(proxy.report().media, 1);
      const callId = outgoing.dialog!.callId;
      assert.ok((await ng.list()).includes(callId));
      await eventually(
        async () => ((await ng.query({ callId })).rtp.packets > 50 ? true : undefined),
        5000,
        "RTP through the relay",
      );
      await outgoing.hangup();
      await incoming.whenEnded();
      await a.media.stop();
      await b.media.stop();
      await eventually(
        async () => (!(await ng.list()).includes(callId) ? true : undefined),
        5000,
        "call deleted",
      );
      assert.equal(proxy.report().media, 0);
    } finally {
      await ng.stop();
    }
  });

  test("without the relay, the phone with the wrong SDP address does not hear the other side", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    // Restart the proxy with the relay off.
    await fleet.stop();
    policy = "never";
    await alice.stop();
    await bob.stop();
    fleet = await startFleet({ proxies: 1, media: () => ({ relay: policy }) });
    alice = agent("alice", fleet, "127.0.0.21");
    bob = agent("bob", fleet, "127.0.0.22");
    await alice.start();
    await bob.start();
    await alice.register();
    await bob.register();
    const a = leg("alice", { bind: "127.0.0.21", advertise: "127.0.0.99", tone: 1000 });
    const b = leg("bob", { bind: "127.0.0.22", tone: 600, symmetric: false });
    const { incoming } = await talk(alice, bob, a, b, 1500);
    assert.deepEqual(sdpAddresses(incoming.remoteOffer), ["127.0.0.99"]);
    assert.equal(await toneBlocks(a.recording, 600), 0, "alice hears nothing");
  });
});
