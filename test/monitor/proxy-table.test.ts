import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import {
  ProxyTable,
  REFUSAL_WARN_EVERY_MS,
  parseProxyTableConfig,
  type ProxyChange,
  type ProxyStateEvent,
  type ReportSummaryEvent,
} from "../../src/monitor/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { WALL_AT_0, report, tableOnFakeClock } from "./reports.js";

/** Collects the table's state events as "proxy kind" strings. */
function recordChanges(table: ProxyTable): string[] {
  const seen: string[] = [];
  table.on("state", (ev) => seen.push(`${ev.proxy} ${ev.kind}`));
  return seen;
}

describe("ProxyTable - refusals in a flood", () => {
  test("every refusal is counted; a warning goes out once per interval with the rest counted", () => {
    const lines: { level: number; suppressed?: number }[] = [];
    const log = pino({ level: "debug" }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const clock = new FakeClock();
    const table = new ProxyTable({
      config: { proxies: ["p1"] },
      clock,
      wallNow: () => WALL_AT_0 + clock.now(),
      log,
    });
    assert.equal(table.ingest(report("p1", { seq: 5 }), { via: "push" }).ok, true);
    for (let i = 0; i < 50; i++) table.ingest(report("p1", { seq: 5 }), { via: "push" });
    assert.equal(table.counters().refused["old-seq"], 50);
    const warnings = () => lines.filter((l) => l.level === 40);
    assert.equal(warnings().length, 1, "one warning for the first 50");
    clock.tick(REFUSAL_WARN_EVERY_MS);
    table.ingest(report("p1", { seq: 4 }), { via: "push" });
    assert.equal(warnings().length, 2);
    assert.equal(warnings()[1]!.suppressed, 49, "the warning says how many were only counted");
    table.dispose();
  });
});

describe("ProxyTable - reports", () => {
  test("a valid report is stored with how it arrived, its workload and a summary event", () => {
    const { clock, table } = tableOnFakeClock({ proxies: ["p1"] });
    const summaries: ReportSummaryEvent[] = [];
    table.on("report", (s) => summaries.push(s));
    clock.tick(1000);
    const result = table.ingest(
      report("p1", {
        at: WALL_AT_0 + 980,
        calls: 20,
        registrations: 7,
        capacity: { calls: 100, media: 0 },
      }),
      { via: "poll" },
    );
    assert.deepEqual(result, { ok: true, proxy: "p1", changes: ["back"] });
    const view = table.view("p1")!;
    assert.equal(view.via, "poll");
    assert.equal(view.workload, 0.2);
    assert.equal(view.state, "eligible");
    assert.equal(view.ageMs, 0);
    assert.equal(summaries.length, 1);
    assert.deepEqual(
      { ...summaries[0]!, at: 0 },
      {
        proxy: "p1",
        via: "poll",
        boot: "boot-1",
        seq: 1,
        workload: 0.2,
        calls: 20,
        registrations: 7,
        age_ms: 20,
        at: 0,
      },
    );
    clock.tick(100);
    assert.equal(table.view("p1")!.ageMs, 100);
    table.dispose();
  });

  test("an older or equal seq within the same boot is refused and counted", () => {
    const { table } = tableOnFakeClock();
    assert.equal(table.ingest(report("p1", { seq: 5 }), { via: "push" }).ok, true);
    const refusedEvents: string[] = [];
    table.on("refused", (e) => refusedEvents.push(`${e.proxy} ${e.reason}`));
    assert.deepEqual(table.ingest(report("p1", { seq: 4, calls: 99 }), { via: "push" }), {
      ok: false,
      reason: "old-seq",
      detail: "seq 4 after 5",
    });
    assert.equal(table.ingest(report("p1", { seq: 5 }), { via: "push" }).ok, false);
    assert.equal(table.status("p1")!.report!.calls, 0, "nothing changed");
    assert.equal(table.counters().refused["old-seq"], 2);
    assert.equal(table.status("p1")!.refused, 2);
    assert.deepEqual(refusedEvents, ["p1 old-seq", "p1 old-seq"]);
    assert.equal(table.ingest(report("p1", { seq: 6 }), { via: "push" }).ok, true);
    assert.equal(table.counters().accepted, 2);
    table.dispose();
  });

  test("a new boot is accepted at once (restart), seq starting again", () => {
    const { clock, table } = tableOnFakeClock();
    const changes = recordChanges(table);
    table.ingest(report("p1", { seq: 900 }), { via: "push" });
    clock.tick(10);
    const result = table.ingest(report("p1", { boot: "boot-2", seq: 0, at: WALL_AT_0 + 10 }), {
      via: "push",
    });
    assert.deepEqual(result, { ok: true, proxy: "p1", changes: ["restarted"] });
    assert.equal(table.status("p1")!.report!.boot, "boot-2");
    assert.deepEqual(changes, ["p1 joined", "p1 restarted"]);
    assert.equal(table.counters().changes.restarted, 1);
    assert.equal(table.isEligible("p1"), true);
    table.dispose();
  });

  test("a report of an earlier boot (a replayed old run) is refused", () => {
    const { clock, table } = tableOnFakeClock();
    clock.tick(100);
    table.ingest(report("p1", { boot: "new", at: WALL_AT_0 + 100 }), { via: "push" });
    const result = table.ingest(report("p1", { boot: "old", seq: 77, at: WALL_AT_0 + 50 }), {
      via: "push",
    });
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.reason, "old-boot");
    assert.equal(table.status("p1")!.report!.boot, "new");
    table.dispose();
  });

  test("an `at` outside the clock window is refused, either way", () => {
    const { table } = tableOnFakeClock({ clockWindowMs: 30_000 });
    const early = table.ingest(report("p1", { at: WALL_AT_0 - 30_001 }), { via: "push" });
    const late = table.ingest(report("p1", { at: WALL_AT_0 + 30_001 }), { via: "push" });
    assert.equal(early.ok === false && early.reason, "clock-window");
    assert.equal(late.ok === false && late.reason, "clock-window");
    assert.equal(table.size, 0, "a refused report does not join");
    assert.equal(table.ingest(report("p1", { at: WALL_AT_0 - 30_000 }), { via: "push" }).ok, true);
    assert.equal(table.counters().refused["clock-window"], 2);
    table.dispose();
  });

  test("a malformed report is refused with the field named, and changes nothing", () => {
    const { table } = tableOnFakeClock({ proxies: ["p1"] });
    const refused: string[] = [];
    table.on("refused", (e) => refused.push(`${e.proxy} ${e.reason} ${e.detail}`));
    const bad = { ...report("p1"), calls: -1 };
    const result = table.ingest(bad, { via: "push" });
    assert.equal(result.ok, false);
    assert.equal(result.ok === false && result.reason, "malformed");
    assert.match(refused[0]!, /^p1 malformed calls: /);
    for (const junk of [null, "x", 42, {}, { ...report("p2"), v: 2 }, { proxy: { a: 1 } }]) {
      assert.equal(table.ingest(junk, { via: "push" }).ok, false);
    }
    assert.equal(table.counters().refused.malformed, 7);
    assert.equal(table.counters().accepted, 0);
    assert.equal(table.size, 1);
    assert.equal(table.status("p1")!.report, undefined);
    table.dispose();
  });

  test("a report naming another proxy than the one polled is refused", () => {
    const { table } = tableOnFakeClock({ proxies: ["p1", "p2"] });
    const result = table.ingest(report("p2"), { via: "poll", proxy: "p1" });
    assert.equal(result.ok === false && result.reason, "wrong-proxy");
    assert.equal(table.status("p2")!.report, undefined);
    table.dispose();
  });

  test("unknown proxies join by themselves; a flag forbids it; the table is bounded", () => {
    const open = tableOnFakeClock({ proxies: ["p1"], maxProxies: 2 });
    const changes = recordChanges(open.table);
    assert.equal(open.table.ingest(report("p9"), { via: "push" }).ok, true);
    assert.equal(open.table.status("p9")!.origin, "joined");
    assert.equal(open.table.isEligible("p9"), true);
    const full = open.table.ingest(report("p10"), { via: "push" });
    assert.equal(full.ok === false && full.reason, "table-full");
    assert.deepEqual(changes, ["p9 joined"]);
    open.table.dispose();

    const closed = tableOnFakeClock({ proxies: ["p1"], allowJoin: false });
    const refused = closed.table.ingest(report("p9"), { via: "push" });
    assert.equal(refused.ok === false && refused.reason, "unknown-proxy");
    assert.equal(closed.table.ingest(report("p1"), { via: "push" }).ok, true);
    assert.deepEqual(
      closed.table.list().map((v) => v.id),
      ["p1"],
    );
    closed.table.dispose();
  });

  test("admin add and remove emit joined and removed", () => {
    const { table } = tableOnFakeClock();
    const changes = recordChanges(table);
    assert.equal(table.add("p5"), true);
    assert.equal(table.add("p5"), false);
    assert.equal(table.view("p5")!.state, "stale", "known but without a report");
    assert.equal(table.isEligible("p5"), false);
    table.ingest(report("p5"), { via: "push" });
    assert.equal(table.isEligible("p5"), true);
    assert.equal(table.remove("p5"), true);
    assert.equal(table.remove("p5"), false);
    assert.equal(table.eligible().length, 0);
    assert.deepEqual(changes, ["p5 joined", "p5 back", "p5 removed"]);
    assert.throws(() => table.add(""), /^RangeError: id: /);
    table.dispose();
  });
});

describe("ProxyTable - staleness", () => {
  // DESIGN.md: "a proxy is stale after 3 missed intervals (750 ms)".
  test("stale after 3 of its intervals with no report, back on a fresh one", () => {
    const { clock, table, wall } = tableOnFakeClock({ proxies: ["p1"] });
    const changes = recordChanges(table);
    table.ingest(report("p1"), { via: "push" });
    clock.tick(749);
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 back"]);
    clock.tick(1);
    assert.deepEqual(changes, ["p1 back", "p1 stale"], "the timer says so without a read");
    assert.equal(table.isEligible("p1"), false);
    assert.equal(table.view("p1")!.state, "stale");
    assert.equal(table.eligible().length, 0);
    table.ingest(report("p1", { seq: 2, at: wall() }), { via: "push" });
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 back", "p1 stale", "p1 back"]);
    assert.equal(table.counters().changes.stale, 1);
    assert.equal(table.counters().changes.back, 2);
    table.dispose();
    assert.equal(clock.pending, 0, "no timer outlives dispose()");
  });

  test("reports on time keep it fresh; the limit follows the report's own interval", () => {
    const { clock, table, wall } = tableOnFakeClock();
    for (let seq = 1; seq <= 20; seq++) {
      table.ingest(report("p1", { seq, at: wall() }), { via: "push" });
      clock.tick(250);
    }
    assert.equal(table.counters().changes.stale, 0);
    table.ingest(report("p1", { seq: 21, at: wall(), interval: 1000 }), { via: "push" });
    clock.tick(2999);
    assert.equal(table.isEligible("p1"), true);
    clock.tick(1);
    assert.equal(table.isEligible("p1"), false);
    table.dispose();
  });

  test("configurable: intervals and an upper bound", () => {
    const { clock, table } = tableOnFakeClock({ staleAfterIntervals: 2, maxStaleMs: 300 });
    table.ingest(report("p1", { interval: 250 }), { via: "push" });
    clock.tick(299);
    assert.equal(table.isEligible("p1"), true);
    clock.tick(1);
    assert.equal(table.isEligible("p1"), false);
    table.dispose();
  });

  test("staleness is decided on read even after dispose()", () => {
    const { clock, table } = tableOnFakeClock();
    table.ingest(report("p1"), { via: "push" });
    table.dispose();
    table.dispose();
    assert.equal(clock.pending, 0);
    clock.tick(800);
    assert.equal(table.isEligible("p1"), false);
    assert.equal(table.view("p1")!.stale, true);
  });
});

describe("ProxyTable - health", () => {
  test("k consecutive probe failures take it down, k successes bring it up", () => {
    const { table } = tableOnFakeClock({ probeThreshold: 3 });
    const changes = recordChanges(table);
    table.ingest(report("p1"), { via: "push" });
    table.probeFailed("p1");
    table.probeFailed("p1");
    table.probeSucceeded("p1"); // breaks the run
    table.probeFailed("p1");
    table.probeFailed("p1");
    assert.equal(table.isEligible("p1"), true, "two in a row are not enough");
    table.probeFailed("p1", "timeout");
    assert.equal(table.isEligible("p1"), false);
    assert.equal(table.view("p1")!.state, "down");
    table.probeFailed("p1");
    table.probeSucceeded("p1");
    table.probeSucceeded("p1");
    table.probeFailed("p1");
    table.probeSucceeded("p1");
    table.probeSucceeded("p1");
    assert.equal(table.isEligible("p1"), false, "the failure restarted the count");
    table.probeSucceeded("p1");
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 joined", "p1 down", "p1 up"]);
    assert.equal(table.probeFailed("nobody"), false);
    table.dispose();
  });

  test("a down event carries its reason and the eligibility after it", () => {
    const { table } = tableOnFakeClock({ probeThreshold: 1 });
    const events: ProxyStateEvent[] = [];
    table.on("state", (e) => events.push(e));
    table.ingest(report("p1"), { via: "push" });
    table.probeFailed("p1", "timeout");
    const down = events.find((e) => e.kind === "down")!;
    assert.equal(down.eligible, false);
    assert.match(down.reason!, /timeout/);
    assert.equal(down.at, WALL_AT_0);
    table.dispose();
  });

  test("a report fetched by the monitor counts as a passed probe; a pushed one does not", () => {
    const { clock, table, wall } = tableOnFakeClock({ probeThreshold: 2 });
    table.ingest(report("p1", { seq: 1 }), { via: "push" });
    table.probeFailed("p1");
    table.probeFailed("p1");
    clock.tick(100);
    table.ingest(report("p1", { seq: 2, at: wall() }), { via: "push" });
    table.ingest(report("p1", { seq: 3, at: wall() }), { via: "push" });
    assert.equal(table.isEligible("p1"), false);
    table.ingest(report("p1", { seq: 4, at: wall() }), { via: "poll" });
    table.ingest(report("p1", { seq: 5, at: wall() }), { via: "poll" });
    assert.equal(table.isEligible("p1"), true);
    table.dispose();
  });

  test("a held stream that closes marks the proxy down at once", () => {
    const { clock, table, wall } = tableOnFakeClock();
    const changes = recordChanges(table);
    table.ingest(report("p1"), { via: "stream" });
    table.streamClosed("p1");
    assert.equal(table.isEligible("p1"), false);
    assert.deepEqual(changes, ["p1 joined", "p1 down"]);
    // The collector reopens the stream: k reports on it bring it back.
    for (let seq = 2; seq <= 4; seq++) {
      clock.tick(250);
      table.ingest(report("p1", { seq, at: wall() }), { via: "stream" });
    }
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 joined", "p1 down", "p1 up"]);
    table.dispose();
  });

  test("a restarted proxy (new boot) is up at once, whatever the old one's failures", () => {
    const { clock, table, wall } = tableOnFakeClock();
    const changes = recordChanges(table);
    table.ingest(report("p1"), { via: "stream" });
    table.streamClosed("p1");
    clock.tick(500);
    table.ingest(report("p1", { boot: "boot-2", seq: 0, at: wall() }), { via: "stream" });
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 joined", "p1 down", "p1 restarted", "p1 up"]);
    table.dispose();
  });
});

describe("ProxyTable - draining", () => {
  test("a report saying draining makes it not eligible; active again undrains", () => {
    const { table } = tableOnFakeClock();
    const changes = recordChanges(table);
    table.ingest(report("p1", { seq: 1 }), { via: "push" });
    table.ingest(report("p1", { seq: 2, state: "draining" }), { via: "push" });
    assert.equal(table.isEligible("p1"), false);
    assert.equal(table.view("p1")!.state, "draining");
    table.ingest(report("p1", { seq: 3, state: "draining" }), { via: "push" });
    table.ingest(report("p1", { seq: 4 }), { via: "push" });
    assert.equal(table.isEligible("p1"), true);
    assert.deepEqual(changes, ["p1 joined", "p1 draining", "p1 undrained"]);
    table.dispose();
  });

  test("an admin drain holds whatever the reports say, until undrained", () => {
    const { table } = tableOnFakeClock();
    const changes = recordChanges(table);
    table.ingest(report("p1", { seq: 1 }), { via: "push" });
    assert.equal(table.drain("p1"), true);
    table.ingest(report("p1", { seq: 2 }), { via: "push" });
    assert.equal(table.isEligible("p1"), false);
    assert.equal(table.view("p1")!.adminDrained, true);
    table.undrain("p1");
    assert.equal(table.isEligible("p1"), true);
    assert.equal(table.drain("nobody"), false);
    assert.deepEqual(changes, ["p1 joined", "p1 draining", "p1 undrained"]);
    table.dispose();
  });
});

describe("ProxyTable - events and counters", () => {
  test("every kind of change is emitted once per change and counted", () => {
    const { clock, table, wall } = tableOnFakeClock({ proxies: ["p1"], probeThreshold: 1 });
    const kinds: ProxyChange[] = [];
    table.on("state", (e) => kinds.push(e.kind));
    let seq = 0;
    const fresh = (fields = {}) =>
      table.ingest(report("p1", { seq: ++seq, at: wall(), ...fields }), { via: "push" });
    fresh(); // back (first report of a configured proxy)
    clock.tick(750); // stale
    fresh(); // back
    table.probeFailed("p1"); // down
    table.probeSucceeded("p1"); // up
    fresh({ state: "draining" }); // draining
    fresh(); // undrained
    fresh({ boot: "boot-2" }); // restarted
    table.ingest(report("p2", { at: wall() }), { via: "push" }); // joined
    table.remove("p2"); // removed
    assert.deepEqual(kinds, [
      "back",
      "stale",
      "back",
      "down",
      "up",
      "draining",
      "undrained",
      "restarted",
      "joined",
      "removed",
    ]);
    assert.deepEqual(table.counters().changes, {
      up: 1,
      down: 1,
      stale: 1,
      back: 2,
      draining: 1,
      undrained: 1,
      joined: 1,
      removed: 1,
      restarted: 1,
    });
    table.dispose();
  });
});

describe("parseProxyTableConfig", () => {
  test("defaults: ±30 s clock window, 3 intervals, k = 3, joining on", () => {
    const c = parseProxyTableConfig(undefined);
    assert.equal(c.clockWindowMs, 30_000);
    assert.equal(c.staleAfterIntervals, 3);
    assert.equal(c.probeThreshold, 3);
    assert.equal(c.allowJoin, true);
    assert.ok(Object.isFrozen(c));
  });

  test("errors name the field", () => {
    assert.throws(
      () => parseProxyTableConfig({ probeThreshold: 0 }),
      /^RangeError: monitor\.probeThreshold: /,
    );
    assert.throws(
      () => parseProxyTableConfig({ proxies: ["p1", "p1"] }),
      /^RangeError: monitor\.proxies\.1: duplicate p1/,
    );
    assert.throws(
      () => parseProxyTableConfig({ clockWindowMs: "30s" }, "monitor.table"),
      /^RangeError: monitor\.table\.clockWindowMs: /,
    );
  });
});
