// The proxy on two worker processes with every call on a real rtpengine (issue 8): each
// worker's ng client has a socket of its own (a socket node:cluster shared between workers
// handed rtpengine's replies to either one, and the asking worker timed out), so SIPp's calls
// with SDP all connect and the relay holds no session afterwards.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { NgClient, type RtpengineProcess } from "../../src/media/index.js";
import { ProxyCluster } from "../../src/proxy/index.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";
import { DOMAIN, LOOPBACK, until } from "../helpers/sip-caller.js";
import { callArgs, freePort, registerArgs, startSipp, waitForBound } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const CALLS = 400;

describe("the proxy on 2 workers, relaying every call", { concurrency: false }, () => {
  let relay: RtpengineProcess | undefined;
  let proxy: ProxyCluster | undefined;
  let ng: NgClient;

  before(async (t) => {
    const ctx = t as never;
    if (!requireRtpengine(ctx) || !requireTool(ctx, "sipp", "sip-tester")) return;
    relay = await startRtpengine();
    ng = new NgClient({ address: "127.0.0.1", port: relay.options.ngPort });
    await ng.start();
    proxy = new ProxyCluster({
      id: "c1",
      domains: [DOMAIN],
      workers: 2,
      listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
      allowedDestinations: LOOPBACK,
      auth: { enabled: false },
      http: { address: "127.0.0.1", port: 0 },
      media: { relay: "always", relays: [{ id: "r1", ng: `127.0.0.1:${relay.options.ngPort}` }] },
    });
    await proxy.start();
  });

  after(async () => {
    await proxy?.stop();
    await ng?.stop();
    await relay?.stop();
  });

  test(`${CALLS} SIPp calls with SDP through the relay over both workers: 0 failed, 0 sessions left`, async (t) => {
    if (proxy === undefined) return t.skip("a tool is missing");
    const port = proxy.listeners.find((l) => l.protocol === "udp")!.port;
    const remote = `127.0.0.1:${port}`;
    const calleePort = await freePort();
    const callee = startSipp({
      scenario: "call-uas-sdp-silent.xml",
      transport: "u1",
      localPort: calleePort,
      calls: CALLS,
      timeoutMs: 120_000,
    });
    try {
      await waitForBound(calleePort, "udp");
      const reg = startSipp({
        scenario: "register-contact-uac.xml",
        transport: "u1",
        remote,
        localPort: await freePort(),
        calls: 1,
        extraArgs: registerArgs("bob", calleePort),
      });
      assert.equal((await reg.result).successful, 1);
      reg.kill();
      const caller = startSipp({
        scenario: "call-uac-route-sdp.xml",
        transport: "u1",
        remote,
        localPort: await freePort(),
        calls: CALLS,
        rate: 100,
        timeoutMs: 120_000,
        extraArgs: callArgs("bob", 100),
      });
      const result = await caller.result;
      caller.kill();
      assert.equal(result.failed, 0, result.output);
      assert.equal(result.successful, CALLS);
      assert.equal((await callee.result).failed, 0);
      for (let i = 0; i < 100 && (await ng.statistics()).sessions > 0; i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal((await ng.statistics()).sessions, 0);
      await until("no relayed stream counted", () => proxy!.report().media === 0, 5000);
    } finally {
      callee.kill();
    }
  });
});
