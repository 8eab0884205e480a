// The proxy's relay bookkeeping on a fake clock with a real rtpengine (issue 8): a call whose
// dialog goes quiet past the safety timeout is deleted from its relay and no longer counted;
// a relay that failed is passed over for new calls until its hold-off ends; a relay outside
// allowedDestinations is never used.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NgClient, type RtpengineProcess } from "../../src/media/index.js";
import { MediaRelayer } from "../../src/proxy/media-relay/media-relayer.js";
import { RelayPool } from "../../src/proxy/media-relay/relay-pool.js";
import { DestinationPolicy, silentLogger } from "../../src/sip/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";
import { freePort } from "../helpers/sipp.js";

const SDP =
  "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";

describe("MediaRelayer", () => {
  let relay: RtpengineProcess | undefined;
  let ng: NgClient;
  before(async (t) => {
    if (!requireRtpengine(t as never)) return;
    relay = await startRtpengine();
    ng = new NgClient({ address: "127.0.0.1", port: relay.options.ngPort });
    await ng.start();
  });
  after(async () => {
    await ng?.stop();
    await relay?.stop();
  });

  function relayer(clock: FakeClock, relays: { id: string; ng: string }[], changes: { n: number }) {
    const pool = new RelayPool({
      relays,
      monitors: [],
      timeoutMs: 50,
      holdOffMs: 5000,
      allowed: new DestinationPolicy(["127.0.0.0/8"]),
      clock,
      log: silentLogger,
    });
    return new MediaRelayer({
      policy: "always",
      pool,
      clock,
      log: silentLogger,
      safetyTimeoutMs: 60_000,
      onChange: () => changes.n++,
    });
  }

  test("a call quiet past the safety timeout is deleted from the relay and not counted", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const clock = new FakeClock();
    const changes = { n: 0 };
    const r = relayer(clock, [{ id: "r1", ng: `127.0.0.1:${relay.options.ngPort}` }], changes);
    r.start();
    try {
      const placed = await r.offer({
        callId: "quiet",
        fromTag: "a",
        sdp: SDP,
        receiver: "plain",
        receivedFrom: "127.0.0.1",
      });
      assert.ok(placed !== undefined);
      assert.equal(r.streams, 1);
      assert.ok((await ng.list()).includes("quiet"));
      clock.tick(30_000);
      r.touch("quiet"); // in-dialog traffic keeps it
      clock.tick(45_000);
      assert.equal(r.streams, 1);
      clock.tick(30_000);
      assert.equal(r.streams, 0);
      for (let i = 0; i < 50 && (await ng.list()).includes("quiet"); i++)
        await new Promise((x) => setTimeout(x, 20));
      assert.ok(!(await ng.list()).includes("quiet"));
      assert.ok(changes.n >= 2);
    } finally {
      await r.stop();
    }
  });

  test("a relay that did not answer is held off new calls (unless all are); one outside allowedDestinations is never used", async (t) => {
    if (relay === undefined) return t.skip("no rtpengine");
    const clock = new FakeClock();
    const dead = await freePort();
    const r = relayer(
      clock,
      [
        { id: "outside", ng: "192.0.2.1:2223" },
        { id: "dead", ng: `127.0.0.1:${dead}` },
        { id: "r1", ng: `127.0.0.1:${relay.options.ngPort}` },
      ],
      { n: 0 },
    );
    const offer = (callId: string) =>
      r.offer({ callId, fromTag: "a", sdp: SDP, receiver: "plain", receivedFrom: "127.0.0.1" });
    /** Settles `p`, moving the fake clock past the dead relay's ng timeouts as needed. */
    const pumped = async <T>(p: Promise<T>, ticks: { n: number }): Promise<T> => {
      let done = false;
      void p.finally(() => (done = true));
      while (!done) {
        await new Promise((x) => setTimeout(x, 10));
        if (!done) {
          clock.tick(50);
          ticks.n++;
        }
      }
      return p;
    };
    try {
      const first = { n: 0 };
      assert.equal((await pumped(offer("h1"), first))?.relay.id, "r1");
      assert.ok(first.n >= 3, "three attempts at the dead relay first");
      const second = { n: 0 };
      assert.equal((await pumped(offer("h2"), second))?.relay.id, "r1");
      assert.equal(second.n, 0, "the dead relay is held off: r1 at once");
      clock.tick(5000);
      const third = { n: 0 };
      assert.equal((await pumped(offer("h3"), third))?.relay.id, "r1");
      assert.ok(third.n >= 3, "after the hold-off the dead relay is tried again");
      // With every relay held off, they are tried again rather than every call refused.
      const only = relayer(clock, [{ id: "dead", ng: `127.0.0.1:${dead}` }], { n: 0 });
      try {
        const lone = { n: 0 };
        const onlyOffer = (callId: string) =>
          only.offer({
            callId,
            fromTag: "a",
            sdp: SDP,
            receiver: "plain",
            receivedFrom: "127.0.0.1",
          });
        assert.equal(await pumped(onlyOffer("d1"), lone), undefined);
        const again = { n: 0 };
        assert.equal(await pumped(onlyOffer("d2"), again), undefined);
        assert.ok(again.n >= 3, "the held-off relay was asked again");
      } finally {
        await only.stop();
      }
      assert.equal(await r.relayAt("192.0.2.1:2223"), undefined, "outside allowedDestinations");
      assert.equal(await r.relayAt(`127.0.0.1:${dead + 1}`), undefined, "not a known relay");
      for (const id of ["h1", "h2", "h3"]) await ng.delete({ callId: id });
    } finally {
      await r.stop();
    }
  });
});
