// The gateway's serial retry (issue 9) with SIPp as the proxies: the first proxy it is given
// sends nothing at all, the second answers 503, the third takes the call. Every call of a
// SIPp phone behind the gateway succeeds, and each went through all three.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { Gateway } from "../../src/gateway/index.js";
import { callArgs, freePort, startSipp, waitForBound, type SippRun } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const GATEWAY_IP = "127.0.0.60";
const BUSY_IP = "127.0.0.61";
const GOOD_IP = "127.0.0.62";
/** Nothing listens here. */
const SILENT_IP = "127.0.0.63";

const sipps = new Set<SippRun>();
let gateway: Gateway | undefined;

after(async () => {
  for (const s of sipps) s.kill();
  await gateway?.stop();
});

describe("gateway retry on the next proxy", () => {
  test("a silent proxy and one answering 503 are passed over: every call lands on the third", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const calls = 6;
    const [gatewayPort, busyPort, goodPort, silentPort, deadMonitor] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const busy = startSipp({
      scenario: "invite-uas-503.xml",
      transport: "u1",
      localIp: BUSY_IP,
      localPort: busyPort,
      calls,
    });
    const good = startSipp({
      scenario: "call-uas.xml",
      transport: "u1",
      localIp: GOOD_IP,
      localPort: goodPort,
      calls,
    });
    sipps.add(busy).add(good);
    await waitForBound(busyPort, "udp");
    await waitForBound(goodPort, "udp");
    const members = [
      { id: "silent", uri: `sip:${SILENT_IP}:${silentPort}` },
      { id: "busy", uri: `sip:${BUSY_IP}:${busyPort}` },
      { id: "good", uri: `sip:${GOOD_IP}:${goodPort}` },
    ];
    gateway = new Gateway({
      id: "gw",
      domains: ["sipsteer.test"],
      listen: [{ protocol: "udp", address: GATEWAY_IP, port: gatewayPort }],
      allowedDestinations: ["127.0.0.0/8"],
      auth: { enabled: false },
      fleet: members,
      http: { address: "127.0.0.1", port: 0 },
      attemptTimeoutMs: 300,
      // No monitor answers: the fallback list, in order; holdOffMs 0 so that every call
      // meets the silent and the busy proxy again.
      upstream: {
        monitors: [`http://127.0.0.1:${deadMonitor}`],
        fallback: members,
        holdOffMs: 0,
      },
    });
    await gateway.start();
    const caller = startSipp({
      scenario: "call-uac-gateway.xml",
      transport: "u1",
      remote: `${GATEWAY_IP}:${gatewayPort}`,
      localPort: await freePort(),
      calls,
      rate: 2,
      timeoutMs: 60_000,
      extraArgs: callArgs("bob", 200, "alice"),
    });
    sipps.add(caller);
    const result = await caller.result;
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, calls);
    assert.equal((await busy.result).successful, calls, "the busy proxy got every INVITE");
    assert.equal((await good.result).successful, calls, "the third proxy took every call");
    const status = gateway.status();
    assert.equal(status.forwarded.retries, 2 * calls, JSON.stringify(status.forwarded));
    assert.deepEqual(status.forwarded.callsByProxy, { good: calls });
    assert.equal(status.upstream.failuresByProxy.silent, calls);
    assert.equal(status.upstream.failuresByProxy.busy, calls);
  });
});
