// The client SDK's UserAgent and Call (issue 6) against a REAL monitor and real sipsteer
// proxies in-process (digest auth on, SHA-256 offered first; one SQLite location store shared
// by the fleet): alice and bob discover their proxies, register on different ones as the
// monitor steers them, and call each other (RFC 3261 §13–§15) with a static-SDP media stub;
// CANCEL, 486, 488; a proxy stopped under a registered agent (UDP: the refresh times out; TCP:
// the flow closes) makes it register elsewhere and say so; refreshes and rebalancing run on a
// fake clock; stop() leaves nothing open.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import {
  CallStateError,
  DiscoveryError,
  RegistrationError,
  UserAgent,
  parseUserAgentConfig,
  type Call,
  type CallEnd,
  type ProxyCandidate,
  type UserAgentConfigInput,
} from "../../src/client/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import { SipPhone } from "../helpers/sip-caller.js";
import { eventually } from "../helpers/eventually.js";
import { freePort } from "../helpers/sipp.js";
import {
  BY_REGISTRATIONS,
  LOOPBACK,
  PASSWORDS,
  StaticMedia,
  UA_TIMERS,
  ZONE,
  addressOf,
  only,
  rankedAs,
  staticSdp,
  startFleet,
  udpPortOf,
  type TestFleet,
} from "./client-fleet.js";

const agents = new Set<UserAgent>();

/** The SIP front's TCP port (its UDP port is `udpPort`). */
function tcpPortOf(fleet: TestFleet, udpPort: number): number {
  const tcp = fleet.monitor.sipListeners.find((l) => l.protocol === "tcp");
  return tcp?.port ?? udpPort;
}

async function startAgent(
  user: keyof typeof PASSWORDS,
  monitors: readonly string[],
  over: Partial<UserAgentConfigInput> = {},
  clock?: FakeClock,
): Promise<UserAgent> {
  const ua = new UserAgent(
    {
      user,
      password: PASSWORDS[user],
      domain: ZONE,
      monitors: [...monitors],
      allowedDestinations: LOOPBACK,
      timers: UA_TIMERS,
      ...over,
    },
    clock === undefined ? {} : { clock },
  );
  agents.add(ua);
  await ua.start();
  return ua;
}

async function stopAgent(ua: UserAgent): Promise<void> {
  await ua.stop();
  agents.delete(ua);
}

function ended(call: Call): Promise<CallEnd> {
  return call.whenEnded();
}

/** The next incoming call at `ua`. */
function nextIncoming(ua: UserAgent): Promise<Call> {
  return once(ua, "incoming").then(([call]) => call as Call);
}

after(async () => {
  for (const ua of agents) await ua.stop();
});

describe("user agents on a fleet sharing one location store", () => {
  let fleet: TestFleet;
  let alice: UserAgent;
  let bob: UserAgent;
  const aliceSdp = staticSdp("alice", 40000);
  const bobSdp = staticSdp("bob", 42000);

  before(async () => {
    fleet = await startFleet({ proxies: 3, shared: true, algorithms: ["SHA-256", "MD5"] });
    alice = await startAgent("alice", [fleet.http]);
    bob = await startAgent("bob", [fleet.http]);
  });

  after(async () => {
    if (alice !== undefined) await stopAgent(alice);
    if (bob !== undefined) await stopAgent(bob);
    await fleet?.stop();
    assert.deepEqual(await openHandles(), {});
  });

  test("alice and bob register through discovery and land on the proxies the monitor steers them to", async () => {
    const [p1, p2] = fleet.proxies;
    await only(fleet, p1!);
    const registered = once(alice, "registered");
    const aliceProxy = await alice.register();
    assert.equal(aliceProxy.id, "p1");
    assert.equal(((await registered)[0] as ProxyCandidate).id, "p1");
    await only(fleet, p2!);
    assert.equal((await bob.register()).id, "p2");
    for (const proxy of fleet.proxies) proxy.undrain();
    await eventually(
      () => (fleet.monitor.table.eligible().length === 3 ? true : undefined),
      10_000,
      "all eligible again",
    );
    assert.equal(alice.proxy?.id, "p1");
    assert.equal(bob.proxy?.id, "p2");
  });

  test("alice calls bob across proxies: answered with SDP both ways, BYE ends it on both sides", async () => {
    const bobMedia = new StaticMedia(bobSdp);
    const aliceMedia = new StaticMedia(aliceSdp);
    const incoming = nextIncoming(bob);
    const call = alice.call("bob", { media: aliceMedia });
    const callee = await incoming;
    assert.equal(callee.direction, "incoming");
    assert.equal(callee.state, "ringing");
    assert.match(callee.remoteUri, /^sip:alice@sipsteer\.test/);
    const ringing = once(call, "ringing");
    await ringing;
    await callee.answer({ media: bobMedia });
    await call.whenAnswered();
    assert.equal(call.state, "answered");
    assert.equal(call.proxyName, "p1");
    assert.ok(call.setupMs !== undefined && call.setupMs >= 0, `setupMs ${call.setupMs}`);
    assert.deepEqual(bobMedia.offers, [aliceSdp]);
    assert.deepEqual(aliceMedia.answers, [bobSdp]);
    // RFC 3261 §12.1.2: the route set runs through both proxies (Record-Route reversed).
    const routes = call.dialog!.routes.join(" ");
    assert.match(routes, /127\.0\.0\.11/);
    assert.match(routes, /127\.0\.0\.12/);
    // The ACK reached bob (his 2xx retransmissions stop): the call stays up.
    await eventually(() => (fleet.proxies[0]!.calls > 0 ? true : undefined), 5000, "dialog at p1");
    const calleeEnded = ended(callee);
    await call.hangup();
    assert.deepEqual(await ended(call), { reason: "hangup", status: 200, message: "BYE sent" });
    assert.equal((await calleeEnded).reason, "remote-hangup");
    assert.equal(aliceMedia.stopped, 1);
    assert.equal(bobMedia.stopped, 1);
    assert.equal(alice.calls.length, 0);
    assert.equal(bob.calls.length, 0);
  });

  test("bob calls alice back (a full URI taken as is); alice's BYE ends it", async () => {
    const incoming = nextIncoming(alice);
    const call = bob.call(`sip:alice@${ZONE}`, { media: new StaticMedia(bobSdp) });
    const callee = await incoming;
    await callee.answer({ media: new StaticMedia(aliceSdp) });
    await call.whenAnswered();
    assert.equal(call.proxyName, "p2");
    const callerEnded = ended(call);
    await callee.hangup();
    assert.equal((await callerEnded).reason, "remote-hangup");
    assert.equal((await ended(callee)).reason, "hangup");
  });

  // RFC 3261 §9.1: CANCEL after a provisional; the INVITE ends 487 on both sides.
  test("CANCEL before the answer: both sides see the call cancelled", async () => {
    const incoming = nextIncoming(bob);
    const call = alice.call("bob", { media: new StaticMedia(aliceSdp) });
    const callee = await incoming;
    await once(call, "ringing");
    call.cancel();
    const end = await ended(call);
    assert.equal(end.reason, "cancelled");
    assert.equal(end.status, 487);
    assert.equal((await ended(callee)).reason, "cancelled");
    await assert.rejects(call.whenAnswered(), /cancelled/);
  });

  test("reject with 486 Busy Here; a media refusal answers 488", async () => {
    const busy = nextIncoming(bob);
    const call = alice.call("bob", { media: new StaticMedia(aliceSdp) });
    (await busy).reject(486);
    assert.deepEqual(await ended(call), {
      reason: "rejected",
      status: 486,
      message: "486 Busy Here",
    });

    const refusing = nextIncoming(bob);
    const second = alice.call("bob", { media: new StaticMedia(aliceSdp) });
    const callee = await refusing;
    await assert.rejects(
      callee.answer({ media: new StaticMedia(bobSdp, true) }),
      /no common codec/,
    );
    const end = await ended(second);
    assert.equal(end.reason, "rejected");
    assert.equal(end.status, 488);
  });

  test("a call to nobody registered is rejected by the proxy (404 or 480), not a failover", async () => {
    const call = alice.call("carol", { media: new StaticMedia(aliceSdp) });
    const end = await ended(call);
    assert.equal(end.reason, "rejected");
    assert.ok(end.status === 404 || end.status === 480, `status ${end.status}`);
    assert.equal(alice.proxy?.id, "p1");
  });

  // DESIGN.md: a draining proxy answers new INVITEs 503; the agent asks again and moves.
  test("a draining proxy answers the INVITE 503: the agent moves and the call goes through the next", async () => {
    const p1 = fleet.proxies[0]!;
    assert.equal(alice.proxy?.id, "p1");
    p1.drain();
    try {
      await eventually(
        () => (fleet.monitor.table.eligible().some((p) => p.id === "p1") ? undefined : true),
        10_000,
        "p1 not eligible",
      );
      bob.once("incoming", (incoming: Call) => {
        void incoming.answer({ media: new StaticMedia(bobSdp) });
      });
      const moved = once(alice, "moved");
      const call = alice.call("bob", { media: new StaticMedia(aliceSdp) });
      await call.whenAnswered();
      const [from, to, reason] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
      assert.equal(from.id, "p1");
      assert.notEqual(to.id, "p1");
      assert.match(reason, /INVITE to p1 got 503/);
      assert.equal(call.proxyName, to.id);
      await call.hangup();
    } finally {
      p1.undrain();
    }
  });
});

describe("user agents when their proxy fails", () => {
  let fleet: TestFleet;

  before(async () => {
    fleet = await startFleet({ proxies: 2, minExpires: 1 });
  });

  after(async () => {
    await fleet?.stop();
    assert.deepEqual(await openHandles(), {});
  });

  test("UDP: the proxy stops; the refresh times out and the agent registers at the other, emitting moved", async () => {
    // The first monitor is down: every discovery falls through to the second.
    const dead = `http://127.0.0.1:${await freePort()}`;
    const ua = await startAgent("alice", [dead, fleet.http], { registerExpiresS: 2 });
    try {
      const first = await ua.register();
      const dying = fleet.proxies.find((p) => p.config.id === first.id)!;
      const moved = once(ua, "moved");
      await fleet.stopProxy(dying);
      const [from, to, reason] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
      assert.equal(from.id, first.id);
      assert.notEqual(to.id, first.id);
      assert.equal(ua.proxy?.id, to.id);
      assert.match(reason, new RegExp(`REGISTER refresh at ${first.id}: no answer \\(408`));
    } finally {
      await stopAgent(ua);
    }
  });
});

describe("a user agent whose only proxy dies", () => {
  test("the failover finds nothing: `error` is emitted and the agent is left unregistered (it asks again after retryAfterFailureMs)", async () => {
    const fleet = await startFleet({ proxies: 1, minExpires: 1 });
    try {
      const ua = await startAgent("carol", [fleet.http], {
        registerExpiresS: 1,
        retryAfterFailureMs: 60_000,
      });
      try {
        await ua.register();
        const failed = once(ua, "error");
        await fleet.stopProxy(fleet.proxies[0]!);
        const [error] = (await failed) as [Error];
        assert.ok(
          error instanceof RegistrationError || error instanceof DiscoveryError,
          String(error),
        );
        assert.equal(ua.proxy, undefined);
      } finally {
        await stopAgent(ua);
      }
    } finally {
      await fleet.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("a user agent whose failover first finds nothing", () => {
  test("the retry that registers elsewhere says `moved` from the proxy that died", async () => {
    const fleet = await startFleet({ proxies: 2, minExpires: 1 });
    try {
      fleet.monitor.table.drain("p2");
      const ua = await startAgent("carol", [fleet.http], {
        registerExpiresS: 1,
        retryAfterFailureMs: 300,
      });
      try {
        await ua.register();
        assert.equal(ua.proxy?.id, "p1");
        const failed = once(ua, "error");
        await fleet.stopProxy(fleet.proxies[0]!);
        await failed;
        fleet.monitor.table.undrain("p2");
        // After the error: once() rejects on an "error" event.
        const moved = once(ua, "moved");
        const [from, to] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
        assert.deepEqual([from.id, to.id], ["p1", "p2"]);
      } finally {
        await stopAgent(ua);
      }
    } finally {
      await fleet.stop();
    }
  });
});

describe("user agent refusals and config", () => {
  test("a wrong password is a RegistrationError at once, not a move to another proxy", async () => {
    const fleet = await startFleet({ proxies: 2 });
    try {
      const ua = await startAgent("alice", [fleet.http], { password: "not-alices-password" });
      try {
        let moved = 0;
        ua.on("moved", () => moved++);
        await assert.rejects(ua.register(), (e: unknown) => {
          assert.ok(e instanceof RegistrationError, String(e));
          assert.ok(e.status === 401 || e.status === 403, `status ${e.status}`);
          assert.match(e.message, /refused/);
          return true;
        });
        assert.equal(moved, 0);
        assert.equal(ua.proxy, undefined);
        assert.throws(() => ua.call("bob"), CallStateError);
      } finally {
        await stopAgent(ua);
      }
    } finally {
      await fleet.stop();
    }
  });

  test("a bad config field is refused naming its path", () => {
    assert.throws(() => parseUserAgentConfig({ user: "a", password: "p", domain: "d" }), {
      message: /^client\.monitors: /,
    });
    assert.throws(
      () =>
        new UserAgent({
          user: "a",
          password: "p",
          domain: "d",
          monitors: ["http://127.0.0.1:1"],
          rebalanceThreshold: 2,
        }),
      { message: /^client\.rebalanceThreshold: / },
    );
    assert.throws(
      () => new UserAgent({ user: "a", password: "p", domain: "d", monitors: ["gopher://x"] }),
      (e: unknown) => e instanceof DiscoveryError && e.code === "CLIENT_ERR_BAD_MONITOR",
    );
  });
});

describe("user agents whose proxy dies: a closed TCP flow, an INVITE timing out", () => {
  test("TCP: the proxy stops; the closed flow makes the agent register elsewhere at once", async () => {
    const fleet = await startFleet({ proxies: 2 });
    try {
      const ua = await startAgent("bob", [fleet.http], { transport: "tcp" });
      try {
        const first = await ua.register();
        assert.equal(first.transport, "tcp");
        const moved = once(ua, "moved");
        await fleet.stopProxy(fleet.proxies.find((p) => p.config.id === first.id)!);
        const [from, to, reason] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
        assert.equal(from.id, first.id);
        assert.notEqual(to.id, first.id);
        assert.match(reason, /connection to p\d closed/);
      } finally {
        await stopAgent(ua);
      }
    } finally {
      await fleet.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("a call whose INVITE times out at a dead proxy moves the agent and is placed through the next", async () => {
    const fleet = await startFleet({ proxies: 2, shared: true });
    try {
      const [p1, p2] = fleet.proxies;
      await only(fleet, p2!);
      const bob = await startAgent("bob", [fleet.http]);
      assert.equal((await bob.register()).id, "p2");
      await only(fleet, p1!);
      const alice = await startAgent("alice", [fleet.http]);
      assert.equal((await alice.register()).id, "p1");
      p2!.undrain();
      await fleet.stopProxy(p1!);
      await eventually(
        () =>
          fleet.monitor.table
            .eligible()
            .map((p) => p.id)
            .join() === "p2"
            ? true
            : undefined,
        10_000,
        "only p2 eligible",
      );
      bob.on("incoming", (call: Call) => void call.answer({ media: new StaticMedia("v=0\r\n") }));
      const moved = once(alice, "moved");
      const call = alice.call("bob", { media: new StaticMedia("v=0\r\n") });
      await call.whenAnswered();
      const [, to, reason] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
      assert.equal(to.id, "p2");
      assert.match(reason, /INVITE to p1 got 408/);
      assert.equal(call.proxyName, "p2");
      await call.hangup();
      await stopAgent(alice);
      await stopAgent(bob);
    } finally {
      await fleet.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("registration refresh and rebalancing on a fake clock", () => {
  let fleet: TestFleet;
  let phone: SipPhone;

  before(async () => {
    fleet = await startFleet({ proxies: 3, workload: BY_REGISTRATIONS });
    phone = await SipPhone.start({ user: "bob" });
  });

  after(async () => {
    await phone?.stop();
    await fleet?.stop();
    assert.deepEqual(await openHandles(), {});
  });

  test("agents register through the DNS front (UDP) and the SIP front (TCP) at the least-loaded proxy", async () => {
    for (const [monitor, transport] of [
      [fleet.dns, "udp"],
      [fleet.sip.replace(/:(\d+)$/, (_, p: string) => `:${tcpPortOf(fleet, Number(p))}`), "tcp"],
    ] as const) {
      const ua = await startAgent("carol", [monitor], { transport });
      try {
        const ranked = fleet.monitor.selector.ranked(transport).map((r) => r.proxy);
        const proxy = await ua.register();
        assert.equal(proxy.transport, transport);
        assert.equal(proxy.host, `127.0.0.1${ranked[0]!.slice(1)}`, `${monitor}: ${ranked.join()}`);
      } finally {
        await stopAgent(ua);
      }
    }
  });

  test("the agent refreshes at half the granted Expires, at the same proxy", async () => {
    const clock = new FakeClock();
    const ua = await startAgent("carol", [fleet.http], { registerExpiresS: 600 }, clock);
    try {
      const proxy = await ua.register();
      const refreshed = once(ua, "refreshed");
      clock.tick(299_000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(ua.listenerCount("refreshed"), 1, "no refresh before half the expiry");
      clock.tick(1_000);
      const [again] = (await refreshed) as [ProxyCandidate];
      assert.equal(again.id, proxy.id);
      const holder = fleet.proxies.find((p) => p.config.id === proxy.id)!;
      await eventually(
        () => (holder.report().registrations === 1 ? true : undefined),
        5000,
        "the binding counted",
      );
      await stopAgent(ua);
      // stop() un-registers: the binding is gone.
      await eventually(
        () => (holder.report().registrations === 0 ? true : undefined),
        5000,
        "the binding removed",
      );
    } finally {
      await stopAgent(ua);
    }
  });

  test("with rebalance on, a refresh moves when another proxy is markedly less loaded (0.2)", async () => {
    // p1 0.1, p3 0.3, p2 0.5: the agent lands on p1 (0.1 → 0.2 with its own binding).
    const load = async (index: number, n: number, tag: string) => {
      const proxy = fleet.proxies[index]!;
      for (let i = 0; i < n; i++) {
        const r = await phone.register(
          { protocol: "udp", address: addressOf(proxy), port: udpPortOf(proxy) },
          {
            user: "bob",
            password: PASSWORDS.bob,
            contact: `sip:bob-${tag}-${i}@127.0.0.1:${phone.port()}`,
          },
        );
        assert.equal(r.status, 200);
      }
    };
    await load(0, 1, "a");
    await load(1, 5, "b");
    await load(2, 3, "c");
    await rankedAs(fleet.monitor, ["p1", "p3", "p2"]);
    const clock = new FakeClock();
    const ua = await startAgent("alice", [fleet.http], { rebalance: true }, clock);
    try {
      assert.equal((await ua.register()).id, "p1");
      // A small gap (p3 0.3 against p1 0.4): the refresh stays.
      await load(0, 2, "d");
      await rankedAs(fleet.monitor, ["p3", "p1", "p2"]);
      const refreshed = once(ua, "refreshed");
      clock.tick(300_000);
      await refreshed;
      assert.equal(ua.proxy?.id, "p1");
      // A marked gap (p3 0.3 against p1 0.7): the next refresh moves there.
      await load(0, 3, "e");
      await rankedAs(fleet.monitor, ["p3", "p2", "p1"]);
      const moved = once(ua, "moved");
      clock.tick(300_000);
      const [from, to, reason] = (await moved) as [ProxyCandidate, ProxyCandidate, string];
      assert.equal(from.id, "p1");
      assert.equal(to.id, "p3");
      assert.equal(ua.proxy?.id, "p3");
      assert.match(reason, /rebalance: p3 at workload 0\.3\d* is markedly below p1 at 0\.7/);
    } finally {
      await stopAgent(ua);
    }
  });
});
