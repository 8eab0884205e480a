import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compileWorkload, defaultWorkload, parseWorkloadConfig } from "../../src/monitor/index.js";
import { report } from "./reports.js";

// DESIGN.md "Workload": max(calls/capacity.calls, media/capacity.media, elu), a term left out
// when its capacity is 0.
describe("workload", () => {
  test("default - the largest of calls/capacity.calls, media/capacity.media and elu", () => {
    const r = report("p1", { calls: 50, media: 30, elu: 0.2, capacity: { calls: 100, media: 60 } });
    assert.equal(defaultWorkload(r), 0.5);
    assert.equal(defaultWorkload({ ...r, media: 45 }), 0.75);
    assert.equal(defaultWorkload({ ...r, elu: 0.9 }), 0.9);
  });

  test("default - a term whose capacity is 0 is left out", () => {
    const noCalls = report("p1", {
      calls: 5000,
      media: 10,
      elu: 0.1,
      capacity: { calls: 0, media: 100 },
    });
    assert.equal(defaultWorkload(noCalls), 0.1);
    const none = report("p1", { calls: 5000, media: 5000, elu: 0.3 });
    assert.equal(defaultWorkload(none), 0.3, "only elu is left");
    assert.equal(defaultWorkload(report("p1")), 0, "idle");
  });

  test("default - over capacity gives more than 1", () => {
    assert.equal(
      defaultWorkload(report("p1", { calls: 150, capacity: { calls: 100, media: 0 } })),
      1.5,
    );
  });

  test("configurable - chosen terms, a fixed divisor (cpu per core) and weights", () => {
    const cpuPerCore = compileWorkload(
      parseWorkloadConfig({
        terms: [
          { metric: "calls", per: "capacity" },
          { metric: "cpu", per: 4 },
        ],
      }),
    );
    const r = report("p1", { calls: 10, cpu: 3, elu: 0.99, capacity: { calls: 100, media: 0 } });
    assert.equal(cpuPerCore(r), 0.75, "cpu 3 of 4 cores; elu is not a term");

    const weightedSum = compileWorkload(
      parseWorkloadConfig({
        combine: "sum",
        terms: [
          { metric: "calls", per: "capacity", weight: 0.5 },
          { metric: "elu", weight: 0.5 },
        ],
      }),
    );
    assert.equal(weightedSum({ ...r, calls: 50, elu: 0.5 }), 0.5);
    assert.equal(
      weightedSum({ ...r, calls: 50, elu: 0.5, capacity: { calls: 0, media: 0 } }),
      0.25,
      "the calls term is left out of the sum too",
    );
  });

  test("parseWorkloadConfig - defaults to DESIGN.md's formula and freezes", () => {
    const config = parseWorkloadConfig(undefined);
    assert.equal(config.combine, "max");
    assert.deepEqual(
      config.terms.map((t) => [t.metric, t.per, t.weight]),
      [
        ["calls", "capacity", 1],
        ["media", "capacity", 1],
        ["elu", undefined, 1],
      ],
    );
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.terms));
  });

  test("parseWorkloadConfig - errors name the field", () => {
    assert.throws(
      () => parseWorkloadConfig({ terms: [{ metric: "elu" }, { metric: "cpu", per: "capacity" }] }),
      (e: unknown) => e instanceof RangeError && e.message.startsWith("workload.terms.1.per: "),
    );
    assert.throws(
      () => parseWorkloadConfig({ terms: [{ metric: "load" }] }),
      /^RangeError: workload\.terms\.0\.metric: /,
    );
    assert.throws(
      () => parseWorkloadConfig({ terms: [{ metric: "calls", weight: -1 }] }),
      /^RangeError: workload\.terms\.0\.weight: /,
    );
    assert.throws(() => parseWorkloadConfig({ terms: [] }), /^RangeError: workload\.terms: /);
    assert.throws(
      () => parseWorkloadConfig({ combine: "avg" }, "monitor.workload"),
      /^RangeError: monitor\.workload\.combine: /,
    );
  });
});
