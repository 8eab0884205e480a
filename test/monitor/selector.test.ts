import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  Selector,
  parseSelectorConfig,
  ttlFor,
  type PolicyName,
  type ProxyTable,
} from "../../src/monitor/index.js";
import type { FakeClock } from "../helpers/fake-clock.js";
import { WALL_AT_0, report, seededRandom, tableOnFakeClock } from "./reports.js";

const CAPACITIES = { p1: 100, p2: 200, p3: 300 } as const;
type Id = keyof typeof CAPACITIES;
const IDS = Object.keys(CAPACITIES) as Id[];

/** Three idle proxies with calls capacities 100, 200 and 300, all reporting now. */
function idleFleet(): { clock: FakeClock; table: ProxyTable; wall: () => number } {
  const fleet = tableOnFakeClock({ proxies: IDS });
  for (const id of IDS) {
    fleet.table.ingest(report(id, { capacity: { calls: CAPACITIES[id], media: 0 } }), {
      via: "push",
    });
  }
  return fleet;
}

function shares(selector: Selector, selects: number): Record<Id, number> {
  for (let i = 0; i < selects; i++) assert.ok(selector.select("udp"));
  return {
    p1: selector.timesChosen("p1"),
    p2: selector.timesChosen("p2"),
    p3: selector.timesChosen("p3"),
  };
}

function assertNear(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= expected * tolerance,
    `${what}: ${actual}, expected ${expected} ±${tolerance * 100}%`,
  );
}

// Issue 5, "Herd": 3 proxies with capacities 100, 200 and 300 calls, all idle, 3,000 selects
// between two reports: the shares follow spare capacity (500 / 1,000 / 1,500 ± 10%).
describe("Selector - the herd", () => {
  test("least-loaded spreads a burst between two reports by spare capacity", () => {
    const { table } = idleFleet();
    const selector = new Selector({ table });
    assert.equal(selector.policy, "least-loaded");
    const got = shares(selector, 3000);
    assertNear(got.p1, 500, 0.1, "p1");
    assertNear(got.p2, 1000, 0.1, "p2");
    assertNear(got.p3, 1500, 0.1, "p3");
    selector.dispose();
    table.dispose();
  });

  test("literal herds the same burst onto one proxy (the contrast)", () => {
    const { table } = idleFleet();
    const selector = new Selector({ table, config: { policy: "literal" } });
    const got = shares(selector, 3000);
    assert.equal(Math.max(got.p1, got.p2, got.p3), 3000, JSON.stringify(got));
    selector.dispose();
    table.dispose();
  });

  for (const policy of ["p2c", "weighted-random"] as PolicyName[]) {
    test(`${policy} spreads it too`, () => {
      const { table } = idleFleet();
      const selector = new Selector({ table, config: { policy }, random: seededRandom(42) });
      const got = shares(selector, 3000);
      assertNear(got.p1, 500, 0.1, `${policy} p1`);
      assertNear(got.p2, 1000, 0.1, `${policy} p2`);
      assertNear(got.p3, 1500, 0.1, `${policy} p3`);
      selector.dispose();
      table.dispose();
    });
  }

  test("the next report forgets the sends it reflects, keeps the ones it cannot", () => {
    const { clock, table, wall } = idleFleet();
    const selector = new Selector({ table, config: { sendAllowanceMs: 100 } });
    for (let i = 0; i < 60; i++) selector.select("udp"); // t = 0: 10 / 20 / 30 by capacity
    clock.tick(650);
    for (let i = 0; i < 3; i++) selector.select("udp"); // t = 650: one each, within the allowance
    clock.tick(50);
    // Reports made at t = 700 that show the 60 early clients as calls.
    const calls = { p1: 10, p2: 20, p3: 30 };
    for (const id of IDS) {
      const r = report(id, {
        seq: 2,
        at: wall(),
        calls: calls[id],
        capacity: { calls: CAPACITIES[id], media: 0 },
      });
      assert.equal(table.ingest(r, { via: "push" }).ok, true);
    }
    const ranked = selector.ranked("udp");
    // 0.1 reported each, plus the t = 650 sends (one each: 0.01, 0.005, 0.0033).
    assert.deepEqual(
      ranked.map((r) => [r.proxy, r.workload]),
      [
        ["p3", 0.1033],
        ["p2", 0.105],
        ["p1", 0.11],
      ],
    );
    selector.dispose();
    table.dispose();
  });
});

describe("Selector - answers", () => {
  test("the answer: proxy, uri, workload, age, ttl and ranked alternates", () => {
    const { clock, table } = idleFleet();
    const selector = new Selector({ table, config: { maxAlternates: 1 } });
    clock.tick(120);
    const answer = selector.select("udp")!;
    assert.deepEqual(answer, {
      proxy: "p3",
      uri: "sip:p3.test:5060",
      workload: 0,
      age_ms: 120,
      ttl: 5,
      alternates: [{ proxy: "p2", uri: "sip:p2.test:5060", workload: 0 }],
    });
    const second = selector.select("tcp")!;
    assert.equal(second.proxy, "p2");
    assert.equal(second.uri, "sip:p2.test:5060;transport=tcp");
    assert.deepEqual(second.alternates, [
      { proxy: "p1", uri: "sip:p1.test:5060;transport=tcp", workload: 0 },
    ]);
    const third = selector.select("udp")!;
    assert.equal(third.proxy, "p1");
    assert.deepEqual(
      third.alternates.map((a) => [a.proxy, a.workload]),
      [["p3", 0.0033]],
    );
    selector.dispose();
    table.dispose();
  });

  test("only proxies with a URI for the transport are returned", () => {
    const { table } = tableOnFakeClock();
    table.ingest(report("udp-only", { uris: { udp: "sip:10.0.0.1" } }), { via: "push" });
    table.ingest(report("web", { uris: { ws: "ws://10.0.0.2:8088", wss: "wss://p.test" } }), {
      via: "push",
    });
    const selector = new Selector({ table });
    for (let i = 0; i < 20; i++) {
      assert.equal(selector.select("udp")!.proxy, "udp-only");
      assert.equal(selector.select("ws")!.uri, "ws://10.0.0.2:8088");
      assert.equal(selector.select("wss")!.uri, "wss://p.test");
    }
    assert.equal(selector.select("tls"), undefined);
    assert.equal(selector.select("udp")!.alternates.length, 0);
    selector.dispose();
    table.dispose();
  });

  test("none eligible (stale, down, draining) → undefined", () => {
    const { clock, table, wall } = idleFleet();
    const selector = new Selector({ table });
    clock.tick(750);
    assert.equal(selector.select("udp"), undefined, "all stale");
    for (const id of IDS) table.ingest(report(id, { seq: 2, at: wall() }), { via: "push" });
    assert.ok(selector.select("udp"));
    table.drain("p1");
    table.streamClosed("p2");
    table.ingest(report("p3", { seq: 3, at: wall(), state: "draining" }), { via: "push" });
    assert.equal(selector.select("udp"), undefined);
    assert.deepEqual(selector.ranked("udp"), []);
    selector.dispose();
    table.dispose();
  });

  test("counts per proxy how often each was chosen", () => {
    const { table } = idleFleet();
    const selector = new Selector({ table });
    for (let i = 0; i < 6; i++) selector.select("udp");
    assert.deepEqual(
      selector.chosenCounts(),
      new Map([
        ["p3", 3],
        ["p2", 2],
        ["p1", 1],
      ]),
    );
    assert.equal(selector.timesChosen("p3"), 3);
    assert.equal(selector.timesChosen("nobody"), 0);
    selector.dispose();
    table.dispose();
  });

  test("ranked() does not record a send", () => {
    const { table } = idleFleet();
    const selector = new Selector({ table });
    for (let i = 0; i < 5; i++) assert.equal(selector.ranked("udp")[0]!.proxy, "p3");
    const [first] = selector.ranked("udp");
    assert.deepEqual(first, {
      proxy: "p3",
      uri: "sip:p3.test:5060",
      workload: 0,
      age_ms: 0,
      spare: 300,
    });
    assert.equal(selector.timesChosen("p3"), 0);
    selector.dispose();
    table.dispose();
  });

  test("a removed proxy's sends are forgotten with it", () => {
    const { table, wall } = idleFleet();
    const selector = new Selector({ table, config: { policy: "least-loaded" } });
    for (let i = 0; i < 300; i++) selector.select("udp");
    table.remove("p3");
    table.ingest(report("p3", { seq: 1, at: wall(), capacity: { calls: 300, media: 0 } }), {
      via: "push",
    });
    const [first] = selector.ranked("udp");
    assert.deepEqual([first!.proxy, first!.workload], ["p3", 0], "back with a clean slate");
    selector.dispose();
    table.dispose();
  });

  test("ttl: 5 s idle, shorter as the chosen proxy fills, 1 s at 90% and above", () => {
    assert.equal(ttlFor(0), 5);
    assert.equal(ttlFor(0.5), 3);
    assert.equal(ttlFor(0.8), 1);
    assert.equal(ttlFor(0.95), 1);
    assert.equal(ttlFor(3), 1);
  });

  test("parseSelectorConfig - defaults and errors naming the field", () => {
    const c = parseSelectorConfig(undefined);
    assert.equal(c.policy, "least-loaded");
    assert.equal(c.clientIncrement, 0.01);
    assert.throws(() => parseSelectorConfig({ policy: "random" }), /^RangeError: select\.policy: /);
    assert.throws(
      () => parseSelectorConfig({ clientIncrement: 0 }, "monitor.select"),
      /^RangeError: monitor\.select\.clientIncrement: /,
    );
    assert.throws(
      () => new Selector({ table: idleFleet().table, config: { maxAlternates: -1 } }),
      /maxAlternates/,
    );
  });

  test("age_ms counts from the report's receipt, not from its `at`", () => {
    const { clock, table } = tableOnFakeClock();
    table.ingest(report("p1", { at: WALL_AT_0 - 200 }), { via: "push" });
    clock.tick(10);
    const selector = new Selector({ table });
    assert.equal(selector.select("udp")!.age_ms, 10);
    selector.dispose();
    table.dispose();
  });
});
