// The gateway's access section: defaults, validation naming the field, freezing (issue 9).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  DEFAULT_BURST,
  DEFAULT_REQUESTS_PER_SECOND,
  DEFAULT_SCANNER_AGENTS,
  parseAccessConfig,
} from "../../src/gateway/index.js";

describe("gateway access config", () => {
  it("fills every default from nothing", () => {
    const c = parseAccessConfig({});
    assert.deepEqual(c.allow, []);
    assert.deepEqual(c.deny, []);
    assert.equal(c.rate.requestsPerSecond, DEFAULT_REQUESTS_PER_SECOND);
    assert.equal(c.rate.burst, DEFAULT_BURST);
    assert.equal(c.rate.ipv6PrefixBits, 64);
    assert.deepEqual(c.scanners, DEFAULT_SCANNER_AGENTS);
    assert.ok(c.scanners.includes("friendly-scanner"));
    assert.equal(c.maxCallsPerUser, 0);
    assert.equal(c.retryAfterS, 5);
    assert.equal(c.log.intervalMs, 60_000);
  });

  it("merges a partial section and freezes the result, nested parts included", () => {
    const c = parseAccessConfig({ rate: { burst: 3 }, deny: ["10.0.0.0/8", "2001:db8::/32"] });
    assert.equal(c.rate.burst, 3);
    assert.equal(c.rate.requestsPerSecond, DEFAULT_REQUESTS_PER_SECOND);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.rate) && Object.isFrozen(c.deny));
    assert.throws(() => (c.deny as string[]).push("x"), TypeError);
  });

  it("names the bad field as gateway.access.<path>", () => {
    const cases: [unknown, RegExp][] = [
      [
        { deny: ["10.0.0.0/8", "10.0.0.0/33"] },
        /^gateway\.access\.deny\.1: "10\.0\.0\.0\/33" is not a CIDR block/,
      ],
      [{ allow: ["example.com"] }, /^gateway\.access\.allow\.0: "example\.com" is not a CIDR/],
      [{ rate: { burst: 0 } }, /^gateway\.access\.rate\.burst: /],
      [{ rate: { requestsPerSecond: -1 } }, /^gateway\.access\.rate\.requestsPerSecond: /],
      [{ rate: { floodFactor: 0.5 } }, /^gateway\.access\.rate\.floodFactor: /],
      [{ maxCallsPerUser: 1.5 }, /^gateway\.access\.maxCallsPerUser: /],
      [{ retryAfterS: "5" }, /^gateway\.access\.retryAfterS: /],
      [{ scanners: [""] }, /^gateway\.access\.scanners\.0: /],
      [{ log: { intervalMs: 0 } }, /^gateway\.access\.log\.intervalMs: /],
      // A misspelt option is an error, not silently ignored.
      [{ rate: { requestPerSecond: 5 } }, /^gateway\.access\.rate: .*requestPerSecond/],
    ];
    for (const [input, message] of cases) {
      assert.throws(() => parseAccessConfig(input), { name: "RangeError", message });
    }
  });
});
