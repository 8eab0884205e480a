// Client discovery (issue 6, DESIGN.md "Client query") against a REAL monitor and three real
// proxies pushing their reports: HTTP /v1/select, RFC 3263 SRV + A against the monitor's DNS
// front, and a REGISTER followed to the SIP front's 302 all name the least-loaded proxy
// first; several monitors are tried in turn; each failure is a typed error naming the monitor.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Discovery,
  DiscoveryError,
  orderSrv,
  parseMonitorAddress,
  type DiscoveryResult,
} from "../../src/client/index.js";
import { Monitor } from "../../src/monitor/index.js";
import type { Proxy } from "../../src/proxy/index.js";
import { TransactionLayer, TransportLayer } from "../../src/sip/index.js";
import { freePort } from "../helpers/sipp.js";
import { SipPhone } from "../helpers/sip-caller.js";
import { openHandles } from "../helpers/handles.js";
import {
  BY_REGISTRATIONS,
  KEY,
  LOOPBACK,
  PASSWORDS,
  UA_TIMERS,
  ZONE,
  addressOf,
  rankedAs,
  startFleet,
  udpPortOf,
  type TestFleet,
} from "./client-fleet.js";

/** `n` bindings of bob at `proxy` (distinct contacts): its workload becomes n/10. */
async function loadWith(phone: SipPhone, proxy: Proxy, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const response = await phone.register(
      { protocol: "udp", address: addressOf(proxy), port: udpPortOf(proxy) },
      {
        user: "bob",
        password: PASSWORDS.bob,
        contact: `sip:bob-${proxy.config.id}-${i}@127.0.0.1:${phone.port()}`,
      },
    );
    assert.equal(response.status, 200, `REGISTER ${i} at ${proxy.config.id}`);
  }
}

/** A transaction layer of our own for `sip:` monitors. */
async function sipStack(): Promise<{
  transactions: TransactionLayer;
  stop: () => Promise<void>;
}> {
  const transport = new TransportLayer({
    listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
  });
  await transport.start();
  const transactions = new TransactionLayer({ transport, timers: UA_TIMERS });
  transactions.start();
  return {
    transactions,
    stop: async () => {
      transactions.stop();
      await transport.stop();
    },
  };
}

function first(result: DiscoveryResult): string | undefined {
  return result.candidates[0]?.id;
}

describe("client discovery against a real monitor and proxies", () => {
  let fleet: TestFleet;
  let phone: SipPhone;

  // p1 holds 5 bindings (0.5), p2 two (0.2), p3 none: the ranking is p3, p2, p1.
  before(async () => {
    fleet = await startFleet({ proxies: 3, workload: BY_REGISTRATIONS });
    phone = await SipPhone.start({ user: "bob" });
    await loadWith(phone, fleet.proxies[0]!, 5);
    await loadWith(phone, fleet.proxies[1]!, 2);
    await rankedAs(fleet.monitor, ["p3", "p2", "p1"]);
  });

  after(async () => {
    await phone?.stop();
    await fleet?.stop();
    assert.deepEqual(await openHandles(), {});
  });

  test("HTTP: GET /v1/select names the least-loaded proxy first, the others as alternates", async () => {
    const discovery = new Discovery({ monitors: [fleet.http], transport: "udp" });
    const result = await discovery.discover();
    assert.equal(result.monitor, fleet.http);
    assert.deepEqual(
      result.candidates.map((c) => c.id),
      ["p3", "p2", "p1"],
    );
    const p3 = fleet.proxies[2]!;
    assert.deepEqual(result.candidates[0], {
      id: "p3",
      uri: `sip:127.0.0.13:${udpPortOf(p3)}`,
      host: "127.0.0.13",
      port: udpPortOf(p3),
      transport: "udp",
      workload: 0,
    });
    // TCP asks for the proxies' TCP URIs.
    const tcp = await new Discovery({ monitors: [fleet.http], transport: "tcp" }).discover();
    assert.equal(first(tcp), "p3");
    assert.equal(tcp.candidates[0]!.transport, "tcp");
    assert.match(tcp.candidates[0]!.uri, /;transport=tcp$/);
  });

  // RFC 3263 §4.2 with RFC 2782 ordering: priority 10 is the chosen proxy, 20 the others.
  test("DNS: SRV _sip._udp then the target's A (from the additional section) names the least loaded first", async () => {
    const discovery = new Discovery({ monitors: [fleet.dns], transport: "udp" });
    const result = await discovery.discover();
    assert.equal(first(result), "p3");
    assert.deepEqual(
      result.candidates.map((c) => c.host),
      ["127.0.0.13", ...result.candidates.slice(1).map((c) => c.host)],
    );
    assert.equal(result.candidates.length, 3);
    assert.equal(result.candidates[0]!.port, udpPortOf(fleet.proxies[2]!));
    assert.deepEqual(new Set(result.candidates.map((c) => c.id)), new Set(["p1", "p2", "p3"]));
    const tcp = await new Discovery({ monitors: [fleet.dns], transport: "tcp" }).discover();
    assert.equal(first(tcp), "p3");
    assert.match(tcp.candidates[0]!.uri, /;transport=tcp$/);
  });

  // DESIGN.md: a request that opens a transaction gets 302 with ranked Contacts, q descending.
  test("SIP: a REGISTER to the redirect front is followed to its 302, Contacts by q", async () => {
    const stack = await sipStack();
    try {
      const discovery = new Discovery({
        monitors: [fleet.sip],
        transport: "udp",
        sip: { transactions: stack.transactions, user: "alice", domain: ZONE },
      });
      const result = await discovery.discover();
      assert.deepEqual(
        result.candidates.map((c) => c.host),
        ["127.0.0.13", "127.0.0.12", "127.0.0.11"],
      );
      assert.equal(result.candidates[0]!.uri, `sip:127.0.0.13:${udpPortOf(fleet.proxies[2]!)}`);
    } finally {
      await stack.stop();
    }
  });

  test("several monitors: the first is down (HTTP, DNS, SIP), the second answers", async () => {
    const dead = await freePort();
    const stack = await sipStack();
    try {
      for (const down of [
        `http://127.0.0.1:${dead}`,
        `dns:127.0.0.1:${dead}/${ZONE}`,
        `sip:127.0.0.1:${dead}`,
      ]) {
        const discovery = new Discovery({
          monitors: [down, fleet.http],
          transport: "udp",
          timeoutMs: 1000,
          sip: { transactions: stack.transactions, user: "alice", domain: ZONE },
        });
        const result = await discovery.discover();
        assert.equal(result.monitor, fleet.http, `after ${down}`);
        assert.equal(first(result), "p3");
      }
      // Every one down: one error listing each failure, each naming its monitor.
      const all = new Discovery({
        monitors: [`http://127.0.0.1:${dead}`, `dns:127.0.0.1:${dead}/${ZONE}`],
        transport: "udp",
        timeoutMs: 1000,
      });
      await assert.rejects(all.discover(), (e: unknown) => {
        assert.ok(e instanceof DiscoveryError);
        assert.equal(e.code, "CLIENT_ERR_ALL_MONITORS_FAILED");
        assert.deepEqual(
          e.failures.map((f) => f.monitor),
          [`http://127.0.0.1:${dead}`, `dns:127.0.0.1:${dead}/${ZONE}`],
        );
        assert.equal(e.failures[0]!.code, "CLIENT_ERR_MONITOR_UNREACHABLE");
        return true;
      });
    } finally {
      await stack.stop();
    }
  });

  test("DNS: a name outside the zone is a typed error naming the rcode", async () => {
    const server = fleet.dns.replace(`/${ZONE}`, "/example.org");
    await assert.rejects(
      new Discovery({ monitors: [server], transport: "udp" }).discover(),
      (e: unknown) =>
        e instanceof DiscoveryError &&
        e.code === "CLIENT_ERR_DNS_RCODE" &&
        /REFUSED/.test(e.message) &&
        e.monitor === server,
    );
  });
});

describe("client discovery with no eligible proxy", () => {
  test("HTTP 503 + Retry-After, SIP 503 and DNS SERVFAIL are CLIENT_ERR_NO_PROXY", async () => {
    const monitor = new Monitor(
      {
        http: { address: "127.0.0.1", port: 0 },
        keys: [KEY],
        allowedDestinations: LOOPBACK,
        sip: { listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
        dns: { zone: ZONE, listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
      },
      { sipTimers: { t1Ms: 50 } },
    );
    await monitor.start();
    const stack = await sipStack();
    try {
      const monitors = [
        monitor.httpUrl,
        `dns:127.0.0.1:${monitor.dnsListeners[0]!.port}/${ZONE}`,
        `sip:127.0.0.1:${monitor.sipListeners[0]!.port}`,
      ];
      for (const m of monitors) {
        const discovery = new Discovery({
          monitors: [m],
          transport: "udp",
          sip: { transactions: stack.transactions, user: "alice", domain: ZONE },
        });
        await assert.rejects(discovery.discover(), (e: unknown) => {
          assert.ok(e instanceof DiscoveryError, String(e));
          assert.equal(e.code, "CLIENT_ERR_NO_PROXY", `${m}: ${e.message}`);
          assert.equal(e.monitor, m);
          if (!m.startsWith("dns:")) assert.equal(e.retryAfterS, 1);
          return true;
        });
      }
    } finally {
      await stack.stop();
      await monitor.stop();
    }
  });
});

describe("monitor addresses and RFC 2782 order", () => {
  test("the three forms are read; anything else names the value", () => {
    assert.deepEqual(parseMonitorAddress("dns:127.0.0.1:5300/sipsteer.test"), {
      kind: "dns",
      text: "dns:127.0.0.1:5300/sipsteer.test",
      host: "127.0.0.1",
      port: 5300,
      zone: "sipsteer.test",
    });
    assert.deepEqual(parseMonitorAddress("sip:[::1]:5070"), {
      kind: "sip",
      text: "sip:[::1]:5070",
      host: "::1",
      port: 5070,
    });
    assert.equal(parseMonitorAddress("http://127.0.0.1:8080").kind, "http");
    for (const bad of [
      "ftp://x",
      "dns:127.0.0.1:5300",
      "sip:monitor.example:5060",
      "dns:1.2.3.4:99999/z",
    ]) {
      assert.throws(
        () => parseMonitorAddress(bad),
        (e: unknown) =>
          e instanceof DiscoveryError &&
          e.code === "CLIENT_ERR_BAD_MONITOR" &&
          e.message.includes(bad),
      );
    }
  });

  test("SRV: lowest priority first; within one, weighted random order (zero weights last unless drawn 0)", () => {
    const records = [
      { priority: 20, weight: 10, name: "b" },
      { priority: 10, weight: 0, name: "z" },
      { priority: 20, weight: 30, name: "c" },
      { priority: 10, weight: 60, name: "a" },
    ];
    // A draw near 1 takes the heaviest at the end of the running sum each time.
    assert.deepEqual(
      orderSrv(records, () => 0.999).map((r) => r.name),
      ["a", "z", "c", "b"],
    );
    // A draw of 0 takes the zero-weight record first (its "very small chance").
    assert.deepEqual(
      orderSrv(records, () => 0).map((r) => r.name),
      ["z", "a", "b", "c"],
    );
    // Over many draws the shares follow the weights (30:10 → about 3 to 1).
    let cFirst = 0;
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let i = 0; i < 4000; i++) {
      if (
        orderSrv(
          records.slice(0, 3).filter((r) => r.priority === 20),
          random,
        )[0]!.name === "c"
      ) {
        cFirst++;
      }
    }
    assert.ok(cFirst > 2600 && cFirst < 3400, `c first ${cFirst} of 4000`);
  });
});
