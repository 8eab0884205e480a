// The gateway's upstream section (where it forwards to): defaults, validation naming the
// field, freezing (issue 9).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_HOLD_OFF_MS,
  DEFAULT_MAX_PINS,
  DEFAULT_PIN_TTL_MS,
  DEFAULT_SELECT_TIMEOUT_MS,
  parseUpstreamConfig,
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

  it("names the bad field as gateway.upstream.<path>", () => {
    const m = ["http://127.0.0.1:8080"];
    const cases: [unknown, RegExp][] = [
      [{}, /^gateway\.upstream\.monitors: /],
      [{ monitors: [] }, /^gateway\.upstream\.monitors: at least one monitor/],
      [
        { monitors: ["dns:127.0.0.1:5353/sipsteer.test"] },
        /^gateway\.upstream\.monitors\.0: .*dns: monitors .* not supported by the gateway yet/,
      ],
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
