// Two real rtpengine relays balanced by the monitor (issue 8) under SIPp calls carrying RTP:
// SIPp's caller plays its bundled G.711 capture after the ACK, its callee plays it back, both
// to the relay's addresses. The proxy relays every call (policy always) on the relay the
// monitor names for GET /v1/select?kind=media. Calls spread over both relays; one relay is
// killed mid-run and new calls go to the other, with SIPp's failed count 0.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NgClient, type RtpengineProcess } from "../../src/media/index.js";
import { addressOf, startFleet, udpPortOf, type TestFleet } from "../client/client-fleet.js";
import { eventually } from "../helpers/eventually.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";
import { callArgs, freePort, registerArgs, startSipp, waitForBound } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const CALLS = 60;
const RATE = 10;
/** Long enough for several calls to be up on each relay at once. */
const HOLD_MS = 2000;

describe("two relays under SIPp calls with RTP", () => {
  let r1: RtpengineProcess | undefined;
  let r2: RtpengineProcess | undefined;
  let fleet: TestFleet | undefined;
  const clients: NgClient[] = [];

  before(async (t) => {
    const ctx = t as never;
    if (!requireRtpengine(ctx) || !requireTool(ctx, "sipp", "sip-tester")) return;
    r1 = await startRtpengine();
    r2 = await startRtpengine();
    const relays = [r1, r2].map((r, i) => ({
      id: `r${i + 1}`,
      ng: `127.0.0.1:${r.options.ngPort}`,
      capacity: { sessions: 50 },
      pollIntervalMs: 100,
    }));
    fleet = await startFleet({
      proxies: 1,
      relays,
      media: (_, monitor) => ({ relay: "always" as const, monitors: [monitor], timeoutMs: 100 }),
    });
    for (const r of [r1, r2]) {
      const c = new NgClient({ address: "127.0.0.1", port: r.options.ngPort });
      await c.start();
      clients.push(c);
    }
  });

  after(async () => {
    for (const c of clients) await c.stop();
    await fleet?.stop();
    await r1?.stop();
    await r2?.stop();
  });

  test("calls spread over both relays; after one is killed, new calls go to the other; 0 failed", async (t) => {
    if (fleet === undefined || r1 === undefined || r2 === undefined)
      return t.skip("a tool is missing");
    const proxy = fleet.proxies[0]!;
    const remote = `${addressOf(proxy)}:${udpPortOf(proxy)}`;
    const calleePort = await freePort();
    const callee = startSipp({
      scenario: "call-uas-sdp.xml",
      transport: "u1",
      localPort: calleePort,
      calls: CALLS,
      timeoutMs: 120_000,
      extraArgs: ["-mi", "127.0.0.1", "-mp", String(await freePort())],
    });
    try {
      await waitForBound(calleePort, "udp");
      const registration = startSipp({
        scenario: "register-contact-uac.xml",
        transport: "u1",
        remote,
        localPort: await freePort(),
        calls: 1,
        extraArgs: registerArgs("bob", calleePort, "bob-client-secret"),
      });
      const registered = await registration.result;
      registration.kill();
      assert.equal(registered.successful, 1, registered.output);

      const caller = startSipp({
        scenario: "call-uac-pcap.xml",
        transport: "u1",
        remote,
        localPort: await freePort(),
        calls: CALLS,
        rate: RATE,
        timeoutMs: 120_000,
        extraArgs: [
          ...callArgs("bob", HOLD_MS),
          "-au",
          "alice",
          "-ap",
          "alice-client-secret",
          "-mi",
          "127.0.0.1",
          "-mp",
          String(await freePort()),
        ],
      });
      // Which relay carries which call: each relay's Call-IDs, sampled while calls last 2 s.
      const on = [new Set<string>(), new Set<string>()];
      let r1Alive = true;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const [i, c] of clients.entries()) {
            if (i === 0 && !r1Alive) continue;
            for (const id of await c.list(1000).catch(() => [])) on[i]!.add(id);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        // Both relays carry calls at once: the monitor spreads them by load.
        await eventually(
          () => (on.every((set) => set.size > 0) ? true : undefined),
          10_000,
          "calls on both relays",
        );
        // SIPp's RTP goes through the relays.
        await eventually(
          async () => ((await clients[1]!.statistics()).packetRate > 0 ? true : undefined),
          5000,
          "RTP relayed by r2",
        );
        // Kill r1 while calls are up on it.
        r1Alive = false;
        const onR1 = new Set([...on[0]!, ...(await clients[0]!.list(1000))]);
        await r1.kill();
        const r2AtKill = new Set(on[1]);

        const result = await caller.result;
        const answered = await callee.result;
        assert.equal(result.failed, 0, result.output);
        assert.equal(result.successful, CALLS, result.output);
        assert.equal(answered.failed, 0, answered.output);
        sampling = false;
        await sampler;

        // Every call was on one of the two; every call placed after the kill went to r2.
        const all = new Set([...onR1, ...on[1]!]);
        assert.equal(all.size, CALLS, `r1 ${onR1.size}, r2 ${on[1]!.size}`);
        const afterKill = [...on[1]!].filter((id) => !r2AtKill.has(id));
        assert.ok(afterKill.length > 0, "calls were placed after the kill");
        assert.ok(afterKill.every((id) => !onR1.has(id)));
        // The monitor lists only r2 as eligible now.
        const listed = fleet.monitor.relays.table.eligible().map((r) => r.id);
        assert.deepEqual(listed, ["r2"]);
        await eventually(
          async () => ((await clients[1]!.statistics()).sessions === 0 ? true : undefined),
          10_000,
          "every call deleted from r2",
        );
      } finally {
        sampling = false;
        await sampler;
        caller.kill();
      }
    } finally {
      callee.kill();
    }
  });
});
