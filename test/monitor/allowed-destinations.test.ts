// DESIGN.md "Every role sends only to destinations its allowedDestinations CIDR list permits":
// the monitor's collectors (poll, stream, on-query) never contact a proxy whose `http` host is
// outside the list; the refusal is logged once at warn and counted, and the proxy stays stale.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { describe, test } from "node:test";
import { pino } from "pino";
import {
  DEFAULT_ALLOWED_DESTINATIONS,
  Monitor,
  destinationAllowed,
  parseMonitorConfig,
  type ProxyListing,
} from "../../src/monitor/index.js";

/** A stand-in proxy HTTP server on `address` that only counts what reaches it. */
async function countingServer(address: string): Promise<{
  url: string;
  requests: () => number;
  stop(): Promise<void>;
}> {
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => server.listen(0, address, r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://${address}:${port}`,
    requests: () => requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A monitor whose one proxy is collected every way from `http`; its warn logs captured. */
function monitorFor(http: string, allowedDestinations: string[]) {
  const lines: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
  const monitor = new Monitor(
    {
      http: { address: "127.0.0.1", port: 0 },
      allowedDestinations,
      proxies: [{ id: "p1", http, modes: ["poll", "stream", "on-query"], pollIntervalMs: 50 }],
      onQueryWaitMs: 100,
    },
    { logger },
  );
  return { monitor, warnings: () => lines.map((l) => JSON.parse(l) as { msg: string }) };
}

async function listed(monitor: Monitor): Promise<ProxyListing | undefined> {
  const res = await fetch(`${monitor.httpUrl}/v1/proxies`);
  return ((await res.json()) as { proxies: ProxyListing[] }).proxies.find((p) => p.id === "p1");
}

/** A bounded wait: nothing signals that a request was *not* made. */
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("monitor allowedDestinations", () => {
  test("a proxy on 127.0.0.2 with only 127.0.0.1/32 allowed: never contacted, counted, warned once, not eligible", async () => {
    const server = await countingServer("127.0.0.2");
    const { monitor, warnings } = monitorFor(server.url, ["127.0.0.1/32"]);
    try {
      await monitor.start();
      // Several poll intervals and stream retries, plus selects that would poll on query.
      for (let i = 0; i < 3; i++) {
        assert.equal((await fetch(`${monitor.httpUrl}/v1/select`)).status, 503);
        await settle(150);
      }
      assert.equal(server.requests(), 0, "the refused proxy saw no request");
      const counters = monitor.collectorCounters();
      assert.deepEqual(counters.refusedDestinations, ["p1"]);
      assert.equal(counters.polls, 0);
      assert.deepEqual(counters.streams, {});
      const refusals = warnings().filter((w) => w.msg.includes("allowedDestinations"));
      assert.equal(refusals.length, 1, JSON.stringify(warnings()));
      const p1 = await listed(monitor);
      assert.ok(p1 !== undefined, "p1 is listed");
      assert.equal(p1.eligible, false);
      const metrics = await (await fetch(`${monitor.httpUrl}/metrics`)).text();
      assert.match(metrics, /^sipsteer_monitor_destinations_refused 1$/m);
    } finally {
      await monitor.stop();
      await server.stop();
    }
  });

  test("the same proxy with 127.0.0.2/32 allowed is contacted (the server above does answer)", async () => {
    const server = await countingServer("127.0.0.2");
    const { monitor } = monitorFor(server.url, ["127.0.0.2/32"]);
    try {
      await monitor.start();
      const deadline = Date.now() + 3000;
      while (server.requests() === 0 && Date.now() < deadline) await settle(25);
      assert.ok(server.requests() > 0, "the allowed proxy was polled or streamed");
      assert.deepEqual(monitor.collectorCounters().refusedDestinations, []);
    } finally {
      await monitor.stop();
      await server.stop();
    }
  });

  test("destinationAllowed: IP literals by CIDR; host names only under the default everything", () => {
    const loopback = ["127.0.0.0/8", "::1/128"];
    assert.equal(destinationAllowed("http://127.0.0.11:9060", loopback), true);
    assert.equal(destinationAllowed("http://[::1]:9060", loopback), true);
    assert.equal(destinationAllowed("http://192.0.2.1:9060", loopback), false);
    assert.equal(destinationAllowed("http://[2001:db8::1]:9060", loopback), false);
    assert.equal(destinationAllowed("http://127.0.0.2:9060", ["127.0.0.1"]), false);
    assert.equal(destinationAllowed("http://localhost:9060", loopback), false);
    assert.equal(destinationAllowed("http://example.com", loopback), false);
    assert.equal(destinationAllowed("http://example.com", DEFAULT_ALLOWED_DESTINATIONS), true);
    assert.equal(destinationAllowed("http://192.0.2.1", DEFAULT_ALLOWED_DESTINATIONS), true);
  });

  test("config: defaults to everywhere; a bad block stops start-up naming the field", () => {
    assert.deepEqual(parseMonitorConfig({}).allowedDestinations, ["0.0.0.0/0", "::/0"]);
    for (const bad of ["nope", "127.0.0.1/33", "::1/129", "10.0.0.0/x", "1.2.3.4/8/9"]) {
      assert.throws(
        () => parseMonitorConfig({ allowedDestinations: ["127.0.0.0/8", bad] }),
        /^RangeError: monitor\.allowedDestinations\.1: /,
        bad,
      );
    }
  });
});
