// The gateway's access rules, on a fake clock (issue 9): address lists, scanner agents, the
// per-source token bucket and flood drop, the per-user call limit, bounded source tracking,
// and refusal logs that a flood cannot flood.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import {
  AccessControl,
  sourceKey,
  type AccessConfigInput,
  type Verdict,
} from "../../src/gateway/index.js";
import { SipRequest } from "../../src/sip/index.js";
import { FakeClock } from "../helpers/fake-clock.js";

let seq = 0;

interface RequestOptions {
  agent?: string;
  toTag?: string;
  extra?: [string, string][];
}

function req(method = "OPTIONS", o: RequestOptions = {}): SipRequest {
  seq++;
  return new SipRequest({
    method,
    uri: method === "REGISTER" ? "sip:sipsteer.test" : "sip:bob@sipsteer.test",
    headers: [
      ["Via", `SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-t${seq}`],
      ["Max-Forwards", "70"],
      ["From", `<sip:alice@sipsteer.test>;tag=f${seq}`],
      ["To", `<sip:bob@sipsteer.test>${o.toTag === undefined ? "" : `;tag=${o.toTag}`}`],
      ["Call-ID", `call-${seq}`],
      ["CSeq", `1 ${method}`],
      ...(o.agent === undefined ? [] : ([["User-Agent", o.agent]] as [string, string][])),
      ...(o.extra ?? []),
      ["Content-Length", "0"],
    ],
  });
}

const from = (address: string, port = 5070) => ({ address, port });

function setup(config: AccessConfigInput = {}) {
  const clock = new FakeClock();
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "warn" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
  const ac = new AccessControl({ config, clock, logger });
  return { ac, clock, lines };
}

function reasonOf(v: Verdict): string {
  return v.admit ? "admit" : v.reason;
}

describe("gateway access control - address lists", () => {
  it("admits everyone when allow is empty and nothing is denied", () => {
    const { ac } = setup();
    assert.deepEqual(ac.check(req("INVITE"), from("198.51.100.7")), { admit: true });
    assert.deepEqual(ac.check(req("REGISTER"), from("2001:db8::1")), { admit: true });
    assert.equal(ac.stats().admitted, 2);
  });

  it("denied address: 403 to INVITE and REGISTER, every other method dropped", () => {
    const { ac } = setup({ deny: ["10.0.0.0/8"] });
    for (const method of ["INVITE", "REGISTER"]) {
      assert.deepEqual(ac.check(req(method), from("10.1.2.3")), {
        admit: false,
        action: "respond",
        status: 403,
        reasonPhrase: "Forbidden",
        reason: "denied-address",
      });
    }
    for (const method of ["OPTIONS", "ACK", "SUBSCRIBE", "MESSAGE"]) {
      assert.deepEqual(ac.check(req(method), from("10.1.2.3")), {
        admit: false,
        action: "drop",
        reason: "denied-address",
      });
    }
    assert.deepEqual(ac.check(req("INVITE"), from("11.0.0.1")), { admit: true });
    assert.equal(ac.stats().refused["denied-address"], 6);
  });

  it("an allow list refuses every address outside it (403 or drop, as for deny)", () => {
    const { ac } = setup({ allow: ["192.0.2.0/24", "2001:db8::/32"] });
    assert.equal(ac.check(req("INVITE"), from("192.0.2.200")).admit, true);
    assert.equal(ac.check(req("INVITE"), from("2001:db8:5::9")).admit, true);
    const v = ac.check(req("REGISTER"), from("198.51.100.1"));
    assert.ok(!v.admit && v.action === "respond" && v.status === 403);
    assert.equal(reasonOf(v), "not-allowed-address");
    const o = ac.check(req("OPTIONS"), from("2001:db9::1"));
    assert.ok(!o.admit && o.action === "drop" && o.reason === "not-allowed-address");
  });

  it("deny wins over allow", () => {
    const { ac } = setup({ allow: ["10.0.0.0/8"], deny: ["10.9.0.0/16"] });
    assert.equal(reasonOf(ac.check(req("INVITE"), from("10.1.0.1"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("10.9.0.1"))), "denied-address");
  });

  it("matches IPv4-mapped IPv6 sources (a dual-stack socket's view) against IPv4 blocks", () => {
    const { ac } = setup({ deny: ["10.0.0.0/8"] });
    assert.equal(reasonOf(ac.check(req("INVITE"), from("::ffff:10.0.0.5"))), "denied-address");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("::ffff:11.0.0.5"))), "admit");
  });
});

describe("gateway access control - scanners", () => {
  it("drops requests whose User-Agent holds a scanner's name, in any case", () => {
    const { ac } = setup();
    for (const agent of ["friendly-scanner", "Friendly-Scanner", "sipcli/v1.8", "sipsak 0.9.8.1"]) {
      assert.deepEqual(ac.check(req("OPTIONS", { agent }), from("198.51.100.2")), {
        admit: false,
        action: "drop",
        reason: "scanner",
      });
    }
    for (const agent of ["VaxSIPUserAgent/3.1", "pplsip", "iWar", "SIVuS", "smap 0.6"]) {
      assert.equal(reasonOf(ac.check(req("INVITE", { agent }), from("198.51.100.2"))), "scanner");
    }
    assert.equal(
      reasonOf(ac.check(req("INVITE", { agent: "baresip v3.0.0" }), from("198.51.100.2"))),
      "admit",
    );
    assert.equal(reasonOf(ac.check(req("INVITE"), from("198.51.100.2"))), "admit");
    assert.equal(ac.stats().refused.scanner, 9);
  });

  it("drops a scanner before the address rules and before authentication", () => {
    const { ac } = setup({ allow: ["192.0.2.0/24"], deny: ["192.0.2.128/25"] });
    const agent = "friendly-scanner";
    // From an allowed address, from a denied one (a drop, not a 403 that would answer it),
    // and a REGISTER carrying credentials: check() runs before the digest check, so a
    // scanner never gets a challenge to crack.
    assert.equal(reasonOf(ac.check(req("INVITE", { agent }), from("192.0.2.1"))), "scanner");
    const denied = ac.check(req("REGISTER", { agent }), from("192.0.2.200"));
    assert.ok(!denied.admit && denied.action === "drop" && denied.reason === "scanner");
    const auth: [string, string] = [
      "Authorization",
      'Digest username="100", realm="sipsteer.test", nonce="n", uri="sip:sipsteer.test", response="00"',
    ];
    const cracking = ac.check(req("REGISTER", { agent, extra: [auth] }), from("192.0.2.1"));
    assert.ok(!cracking.admit && cracking.action === "drop");
  });

  it("takes the operator's list in place of the default one", () => {
    const { ac } = setup({ scanners: ["EvilDialer"] });
    assert.equal(
      reasonOf(ac.check(req("INVITE", { agent: "friendly-scanner" }), from("192.0.2.1"))),
      "admit",
    );
    assert.equal(
      reasonOf(ac.check(req("INVITE", { agent: "x evildialer/2" }), from("192.0.2.1"))),
      "scanner",
    );
  });
});

describe("gateway access control - request rate", () => {
  it("a token bucket per source: burst at once, then the rate, then 503 with Retry-After", () => {
    const { ac, clock } = setup({
      rate: { requestsPerSecond: 10, burst: 5, floodFactor: 100 },
      retryAfterS: 7,
    });
    const a = from("192.0.2.1");
    const results = () => Array.from({ length: 8 }, () => reasonOf(ac.check(req("INVITE"), a)));
    assert.deepEqual(results(), [
      "admit",
      "admit",
      "admit",
      "admit",
      "admit",
      "rate",
      "rate",
      "rate",
    ]);
    assert.deepEqual(ac.check(req("REGISTER"), a), {
      admit: false,
      action: "respond",
      status: 503,
      reasonPhrase: "Service Unavailable",
      retryAfterS: 7,
      reason: "rate",
    });
    // 100 ms at 10/s is one token.
    clock.tick(100);
    assert.deepEqual(results().slice(0, 2), ["admit", "rate"]);
    // A long pause refills to the burst, no further.
    clock.tick(60_000);
    assert.equal(results().filter((r) => r === "admit").length, 5);
    // Another source has a bucket of its own; another port of the same address does not.
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.1", 6000))), "rate");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.2"))), "admit");
  });

  it("counts an IPv6 source by its /64 (and IPv4-mapped sources as IPv4)", () => {
    const { ac } = setup({ rate: { requestsPerSecond: 1, burst: 2, floodFactor: 100 } });
    assert.equal(reasonOf(ac.check(req("INVITE"), from("2001:db8:1:2::1"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("2001:db8:1:2:ffff::7"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("2001:db8:1:2:aaaa::3"))), "rate");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("2001:db8:1:3::1"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.9"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("::ffff:192.0.2.9"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.9"))), "rate");
  });

  it("lets in-dialog requests, ACK and CANCEL through a source over its rate", () => {
    const { ac } = setup({ rate: { requestsPerSecond: 1, burst: 1, floodFactor: 10 } });
    const a = from("192.0.2.1");
    assert.equal(reasonOf(ac.check(req("INVITE"), a)), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), a)), "rate");
    assert.equal(reasonOf(ac.check(req("BYE", { toTag: "t1" }), a)), "admit");
    assert.equal(reasonOf(ac.check(req("ACK", { toTag: "t1" }), a)), "admit");
    assert.equal(reasonOf(ac.check(req("ACK"), a)), "admit");
    assert.equal(reasonOf(ac.check(req("CANCEL"), a)), "admit");
  });

  it("drops a source sending more than floodFactor × its rate, until it slows down", () => {
    const { ac, clock } = setup({ rate: { requestsPerSecond: 10, burst: 5, floodFactor: 2 } });
    const a = from("192.0.2.1");
    // The flood meter holds floodFactor × burst = 10: five admitted, five 503s, then silence.
    const burst = Array.from({ length: 14 }, () => reasonOf(ac.check(req("INVITE"), a)));
    assert.deepEqual(burst, [
      ...Array<string>(5).fill("admit"),
      ...Array<string>(5).fill("rate"),
      ...Array<string>(4).fill("flood"),
    ]);
    const v = ac.check(req("REGISTER"), a);
    assert.deepEqual(v, { admit: false, action: "drop", reason: "flood" });
    // Going on at 50/s (above 2 × 10/s) keeps it dropped, in-dialog requests included.
    for (let i = 0; i < 100; i++) {
      clock.tick(20);
      assert.equal(
        reasonOf(
          ac.check(
            req(i % 2 === 0 ? "INVITE" : "BYE", { toTag: i % 2 === 0 ? undefined : "x" }),
            a,
          ),
        ),
        "flood",
      );
    }
    // Others are not affected.
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.2"))), "admit");
    // Once it pays off its debt (at most 2 × burst / rate = 1 s of quiet) it is served again.
    clock.tick(1_000);
    assert.equal(reasonOf(ac.check(req("INVITE"), a)), "admit");
    const s = ac.stats();
    assert.equal(s.refused.flood, 105);
    assert.equal(s.refused.rate, 5);
  });

  it("drops a flood from a denied address instead of answering each request with 403", () => {
    const { ac } = setup({
      deny: ["10.0.0.0/8"],
      rate: { requestsPerSecond: 1, burst: 1, floodFactor: 3 },
    });
    const out = Array.from({ length: 5 }, () =>
      reasonOf(ac.check(req("INVITE"), from("10.0.0.1"))),
    );
    assert.deepEqual(out, ["denied-address", "denied-address", "denied-address", "flood", "flood"]);
  });

  it("with requestsPerSecond 0 has no rate limit and tracks no source", () => {
    const { ac } = setup({ rate: { requestsPerSecond: 0 } });
    for (let i = 0; i < 1_000; i++)
      assert.equal(ac.check(req("INVITE"), from("192.0.2.1")).admit, true);
    assert.equal(ac.stats().trackedSources, 0);
  });
});

describe("gateway access control - bounded source tracking", () => {
  it("tracks at most maxTrackedSources, forgetting the least recently seen", () => {
    const { ac } = setup({
      maxTrackedSources: 100,
      rate: { requestsPerSecond: 1, burst: 1, floodFactor: 100 },
    });
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.1"))), "admit");
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.1"))), "rate");
    // A scan from 10 000 addresses (10.0.0.0/18).
    for (let i = 0; i < 10_000; i++) {
      ac.check(req("OPTIONS"), from(`10.0.${i >> 8}.${i & 255}`));
      assert.ok(ac.stats().trackedSources <= 100);
    }
    assert.equal(ac.stats().trackedSources, 100);
    // 192.0.2.1 was pushed out, and so starts again with a full bucket.
    assert.equal(reasonOf(ac.check(req("INVITE"), from("192.0.2.1"))), "admit");
  });

  it("keeps a busy source while a scan goes by, and sheds idle sources as time passes", () => {
    const { ac, clock } = setup({
      maxTrackedSources: 50,
      rate: { requestsPerSecond: 1, burst: 5, floodFactor: 100 },
    });
    const busy = from("192.0.2.1");
    for (let i = 0; i < 5; i++) assert.equal(reasonOf(ac.check(req("INVITE"), busy)), "admit");
    // 1 000 scanning addresses over one second; the busy source keeps sending in its dialog.
    for (let i = 0; i < 1_000; i++) {
      if (i % 10 === 0) ac.check(req("BYE", { toTag: "t" }), busy);
      ac.check(req("OPTIONS"), from(`10.1.${i >> 8}.${i & 255}`));
      clock.tick(1);
    }
    assert.equal(ac.stats().trackedSources, 50);
    // Still tracked: one token refilled in that second, not a fresh bucket of five.
    const next = Array.from({ length: 3 }, () => reasonOf(ac.check(req("INVITE"), busy)));
    assert.deepEqual(next, ["admit", "rate", "rate"]);
    // Quiet until every entry would be full again: requests clear idle entries off the front.
    clock.tick(10_000);
    for (let i = 0; i < 30; i++) ac.check(req("OPTIONS"), from("192.0.2.77"));
    assert.equal(ac.stats().trackedSources, 1);
  });
});

describe("gateway access control - calls per user", () => {
  it("refuses a new INVITE of a user at maxCallsPerUser with 403, until a call ends", () => {
    const { ac } = setup({ maxCallsPerUser: 2 });
    for (const key of ["d1", "d2"]) {
      assert.deepEqual(ac.checkCall(req("INVITE"), "alice"), { admit: true });
      ac.callStarted("alice", key);
    }
    ac.callStarted("alice", "d2"); // again: still two
    assert.equal(ac.callsOf("alice"), 2);
    assert.deepEqual(ac.checkCall(req("INVITE"), "alice"), {
      admit: false,
      action: "respond",
      status: 403,
      reasonPhrase: "Too Many Calls",
      reason: "calls-per-user",
    });
    // A re-INVITE within a dialog is not a new call; other users have their own count.
    assert.equal(ac.checkCall(req("INVITE", { toTag: "x" }), "alice").admit, true);
    assert.equal(ac.checkCall(req("INVITE"), "bob").admit, true);
    ac.callEnded("unknown");
    ac.callEnded("d1");
    ac.callEnded("d1");
    assert.equal(ac.callsOf("alice"), 1);
    assert.equal(ac.checkCall(req("INVITE"), "alice").admit, true);
    ac.callStarted("alice", "d3");
    ac.callStarted("bob", "d4");
    const s = ac.stats();
    assert.equal(s.refused["calls-per-user"], 1);
    assert.equal(s.activeCalls, 3);
    assert.deepEqual(s.topCallers, [
      { user: "alice", calls: 2 },
      { user: "bob", calls: 1 },
    ]);
    assert.deepEqual(ac.stats(1).topCallers, [{ user: "alice", calls: 2 }]);
    ac.callEnded("d2");
    ac.callEnded("d3");
    ac.callEnded("d4");
    assert.deepEqual(ac.stats().topCallers, []);
  });

  it("has no limit at 0, but still counts the calls", () => {
    const { ac } = setup();
    for (let i = 0; i < 50; i++) {
      assert.equal(ac.checkCall(req("INVITE"), "alice").admit, true);
      ac.callStarted("alice", `d${i}`);
    }
    assert.equal(ac.stats().topCallers[0]?.calls, 50);
  });
});

describe("gateway access control - stats and logs", () => {
  it("counts every reason, starting from zero", () => {
    const { ac } = setup();
    assert.deepEqual(ac.stats(), {
      admitted: 0,
      refused: {
        "denied-address": 0,
        "not-allowed-address": 0,
        scanner: 0,
        rate: 0,
        flood: 0,
        "calls-per-user": 0,
      },
      trackedSources: 0,
      activeCalls: 0,
      topCallers: [],
    });
  });

  it("logs a refusal at once, then one line per source and reason per interval with a count", () => {
    const { ac, clock, lines } = setup({ rate: { requestsPerSecond: 0 } });
    const scan = () =>
      ac.check(req("OPTIONS", { agent: "friendly-scanner" }), from("198.51.100.9", 5060));
    for (let i = 0; i < 1_000; i++) scan();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 40);
    assert.equal(lines[0]!.reason, "scanner");
    assert.equal(lines[0]!.source, "198.51.100.9");
    assert.equal(lines[0]!.userAgent, "friendly-scanner");
    assert.equal(lines[0]!.component, "gateway-access");
    clock.tick(60_000);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.count, 999);
    assert.equal(lines[1]!.source, "198.51.100.9");
    for (let i = 0; i < 500; i++) scan();
    clock.tick(60_000);
    assert.equal(lines.length, 3);
    assert.equal(lines[2]!.count, 500);
    // A quiet interval: nothing to say, and the source is forgotten…
    clock.tick(60_000);
    assert.equal(lines.length, 3);
    // … so its next refusal is logged at once again; another reason has a line of its own.
    scan();
    ac.check(req("INVITE"), from("198.51.100.9")); // admitted: not logged
    assert.equal(lines.length, 4);
    assert.equal(lines[3]!.userAgent, "friendly-scanner");
    ac.dispose();
    ac.dispose();
    assert.equal(clock.pending, 0);
  });

  it("sums refusals from many sources into one line once maxSources are followed", () => {
    const { ac, clock, lines } = setup({
      deny: ["10.0.0.0/8"],
      rate: { requestsPerSecond: 0 },
      log: { maxSources: 10 },
    });
    for (let i = 0; i < 5_000; i++) ac.check(req("INVITE"), from(`10.2.${i >> 8}.${i & 255}`));
    assert.equal(lines.length, 10);
    clock.tick(60_000);
    assert.equal(lines.length, 11);
    assert.equal(lines[10]!.reason, "denied-address");
    assert.equal(lines[10]!.count, 4_990);
    clock.tick(600_000);
    assert.equal(lines.length, 11);
    assert.equal(clock.pending, 0);
  });

  it("logs a user over maxCallsPerUser by user, and dispose writes what is pending", () => {
    const { ac, clock, lines } = setup({ maxCallsPerUser: 1 });
    ac.callStarted("alice", "d1");
    for (let i = 0; i < 3; i++) ac.checkCall(req("INVITE"), "alice");
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.user, "alice");
    assert.equal(lines[0]!.max, 1);
    ac.dispose();
    assert.equal(lines.length, 2);
    assert.equal(lines[1]!.count, 2);
    assert.equal(clock.pending, 0);
  });
});

describe("gateway access control - source keys", () => {
  it("keys IPv6 by prefix, unmaps IPv4-mapped addresses, keeps IPv4 and junk as they are", () => {
    assert.equal(sourceKey("192.0.2.1", 64), "192.0.2.1");
    assert.equal(sourceKey("::ffff:192.0.2.1", 64), "192.0.2.1");
    assert.equal(sourceKey("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::/64");
    assert.equal(sourceKey("2001:DB8:1:2::9", 64), "2001:db8:1:2::/64");
    assert.equal(sourceKey("2001:db8:1:2::9", 48), "2001:db8:1::/48");
    assert.equal(sourceKey("2001:db8:1:2ff::9", 56), "2001:db8:1:200::/56");
    assert.equal(sourceKey("fe80::1%eth0", 64), "fe80:0:0:0::/64");
    assert.equal(sourceKey("64:ff9b::192.0.2.1", 128), "64:ff9b:0:0:0:0:c000:201");
    assert.equal(sourceKey("::1", 128), "0:0:0:0:0:0:0:1");
    assert.equal(sourceKey("1:2:3:4:5:6:7:8:9", 64), "1:2:3:4:5:6:7:8:9");
    assert.equal(sourceKey("1::2::3", 64), "1::2::3");
    assert.equal(sourceKey("bogus", 64), "bogus");
  });
});
