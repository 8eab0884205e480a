// The gateway's upstream section (where it forwards to): defaults, validation naming the
// field, freezing (issue 9).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_DNS_MONITOR_PORT,
  DEFAULT_HOLD_OFF_MS,
  DEFAULT_MAX_PINS,
  DEFAULT_PIN_TTL_MS,
  DEFAULT_SELECT_TIMEOUT_MS,
  parseUpstreamConfig,
  readMonitorTarget,
} from "../../src/gateway/index.js";

describe("gateway upstream config", () => {
  it("fills every default around the monitors", () => {
    const c = parseUpstreamConfig({ monitors: ["http://127.0.0.1:8080"] });
    assert.deepEqual(c.monitors, ["http://127.0.0.1:8080"]);
    assert.equal(c.transport, "udp");
    assert.equal(c.selectTimeoutMs, DEFAULT_SELECT_TIMEOUT_MS);
    assert.equal(c.selectTimeoutMs, 300);
    assert.equal(c.holdOffMs, DEFAULT_HOLD_OFF_MS);
    assert.equal(c.holdOffMs, 5_000);
    assert.deepEqual(c.fallback, []);
    assert.equal(c.pinTtlMs, DEFAULT_PIN_TTL_MS);
    assert.equal(c.pinTtlMs, 7_200_000);
    assert.equal(c.maxPins, DEFAULT_MAX_PINS);
  });

  it("takes fallback proxies as URIs or { id, uri } and freezes the result", () => {
    const c = parseUpstreamConfig({
      monitors: ["http://127.0.0.1:8080", "http://[::1]:8080/"],
      transport: "tcp",
      fallback: ["sip:127.0.0.21:5060", { id: "p2", uri: "sip:[::1]:5070;transport=tcp" }],
    });
    assert.equal(c.transport, "tcp");
    assert.deepEqual(c.fallback[1], { id: "p2", uri: "sip:[::1]:5070;transport=tcp" });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.fallback) && Object.isFrozen(c.fallback[1]));
    assert.throws(() => (c.monitors as string[]).push("x"), TypeError);
  });

  // DESIGN.md "Command line": a monitor is http://… or dns:HOST:PORT/ZONE.
  it("takes dns:HOST:PORT/ZONE monitors, mixed with http:// ones, in their order", () => {
    const monitors = [
      "dns:127.0.0.1:5300/sipsteer.test",
      "http://127.0.0.1:8080",
      "dns:[::1]:5300/Sipsteer.Test.",
      "dns:127.0.0.2/sipsteer.test",
    ];
    assert.deepEqual(parseUpstreamConfig({ monitors }).monitors, monitors);
    assert.deepEqual(readMonitorTarget("dns:[::1]:5300/Sipsteer.Test."), {
      target: { kind: "dns", host: "::1", port: 5300, zone: "sipsteer.test" },
    });
    assert.deepEqual(readMonitorTarget("dns:127.0.0.2/sipsteer.test"), {
      target: {
        kind: "dns",
        host: "127.0.0.2",
        port: DEFAULT_DNS_MONITOR_PORT,
        zone: "sipsteer.test",
      },
    });
    assert.equal(DEFAULT_DNS_MONITOR_PORT, 53);
  });

  it("refuses a bad dns: monitor naming the field and what is wrong", () => {
    const cases: [string, RegExp][] = [
      ["dns:127.0.0.1:5300", /not dns:HOST:PORT\/ZONE/],
      ["dns:monitor.example.com:5300/sipsteer.test", /the host must be an IP address/],
      ["dns::5300/sipsteer.test", /the host must be an IP address/],
      ["dns:::1:5300/sipsteer.test", /an IPv6 host goes in brackets/],
      ["dns:[127.0.0.1]:5300/sipsteer.test", /brackets are for an IPv6 host/],
      ["dns:127.0.0.1:0/sipsteer.test", /bad port "0"/],
      ["dns:127.0.0.1:65536/sipsteer.test", /bad port "65536"/],
      ["dns:127.0.0.1:53x/sipsteer.test", /bad port "53x"/],
      ["dns:127.0.0.1:/sipsteer.test", /bad port ""/],
      ["dns:127.0.0.1:5300/", /the zone "" is not a DNS name/],
      ["dns:127.0.0.1:5300/sip steer.test", /the zone "sip steer\.test" is not a DNS name/],
      ["dns:127.0.0.1:5300/-bad.test", /is not a DNS name/],
      ["dns:127.0.0.1:5300/a..test", /is not a DNS name/],
      [`dns:127.0.0.1:5300/${"a".repeat(64)}.test`, /is not a DNS name/],
    ];
    for (const [monitor, why] of cases) {
      const prefix = `gateway.upstream.monitors.1: ${JSON.stringify(monitor)}: `;
      assert.throws(
        () => parseUpstreamConfig({ monitors: ["http://127.0.0.1:8080", monitor] }),
        (e: unknown) => {
          assert.ok(e instanceof RangeError, monitor);
          assert.ok(e.message.startsWith(prefix), e.message);
          assert.match(e.message.slice(prefix.length), why, monitor);
          return true;
        },
      );
    }
  });

  it("names the bad field as gateway.upstream.<path>", () => {
    const m = ["http://127.0.0.1:8080"];
    const cases: [unknown, RegExp][] = [
      [{}, /^gateway\.upstream\.monitors: /],
      [{ monitors: [] }, /^gateway\.upstream\.monitors: at least one monitor/],
      [{ monitors: ["https://127.0.0.1"] }, /^gateway\.upstream\.monitors\.0: .*http:\/\//],
      [{ monitors: [...m, "127.0.0.1:8080"] }, /^gateway\.upstream\.monitors\.1: /],
      [{ monitors: ["http://127.0.0.1:8080/?x=1"] }, /^gateway\.upstream\.monitors\.0: .*query/],
      [{ monitors: m, transport: "tls" }, /^gateway\.upstream\.transport: /],
      [{ monitors: m, selectTimeoutMs: 0 }, /^gateway\.upstream\.selectTimeoutMs: /],
      [{ monitors: m, holdOffMs: -1 }, /^gateway\.upstream\.holdOffMs: /],
      [{ monitors: m, pinTtlMs: 1.5 }, /^gateway\.upstream\.pinTtlMs: /],
      [{ monitors: m, maxPins: 0 }, /^gateway\.upstream\.maxPins: /],
      [
        { monitors: m, fallback: ["sip:proxy.example.com:5060"] },
        /^gateway\.upstream\.fallback\.0: .*the host must be an IP address/,
      ],
      [
        { monitors: m, fallback: [{ id: "p", uri: "sips:127.0.0.1" }] },
        /^gateway\.upstream\.fallback\.0\.uri: .*sip: URI/,
      ],
      [
        { monitors: m, fallback: ["sip:127.0.0.1;transport=ws"] },
        /^gateway\.upstream\.fallback\.0: .*udp or tcp/,
      ],
      // A misspelt option is an error, not silently ignored.
      [{ monitors: m, holdoffMs: 5 }, /^gateway\.upstream: .*holdoffMs/],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseUpstreamConfig(input), { name: "RangeError", message });
    }
  });
});
