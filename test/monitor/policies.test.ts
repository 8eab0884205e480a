import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  SendLedger,
  clientIncrement,
  policyFor,
  spareWeights,
  type Candidate,
} from "../../src/monitor/index.js";
import { seededRandom } from "./reports.js";

const c = (id: string, reported: number, pending: number, size = 100): Candidate => ({
  id,
  reported,
  pending,
  size,
});

function near(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${message ?? ""} ${actual} ≠ ${expected}`);
}

describe("SendLedger", () => {
  test("counts sends at or after a report's time; older ones are forgotten", () => {
    const ledger = new SendLedger();
    ledger.record("p1", 100, 0.01);
    ledger.record("p1", 200, 0.01);
    ledger.record("p1", 300, 0.02);
    near(ledger.pending("p1", 0), 0.04);
    near(ledger.pending("p1", 200), 0.03);
    assert.equal(ledger.count("p1"), 2);
    near(ledger.pending("p1", 150), 0.03, "forgotten sends stay forgotten");
    assert.equal(ledger.pending("p1", 301), 0);
    assert.equal(ledger.count("p1"), 0);
    assert.equal(ledger.pending("p2", 0), 0);
  });

  test("many sends: pruning keeps the sum and the memory bounded", () => {
    const ledger = new SendLedger();
    for (let t = 0; t < 10_000; t++) {
      ledger.record("p1", t, 0.001);
      if (t % 100 === 0) ledger.pending("p1", t - 2000);
    }
    assert.ok(Math.abs(ledger.pending("p1", 9_000) - 1) < 1e-9);
    assert.equal(ledger.count("p1"), 1000);
    ledger.forget("p1");
    assert.equal(ledger.count("p1"), 0);
  });
});

describe("policies", () => {
  test("clientIncrement - 1/capacity.calls, else the configured increment", () => {
    assert.equal(clientIncrement(200, 0.01), 0.005);
    assert.equal(clientIncrement(0, 0.01), 0.01);
  });

  test("least-loaded ranks by corrected workload; ties go to the larger proxy", () => {
    const p = policyFor("least-loaded");
    assert.equal(p.choose([c("a", 0.1, 0.3), c("b", 0.3, 0)], Math.random), 1);
    assert.equal(
      p.choose([c("a", 0, 0, 100), c("b", 0, 0, 300), c("c", 0, 0, 200)], Math.random),
      1,
    );
    assert.equal(p.effective(c("a", 0.1, 0.3)), 0.4);
  });

  test("literal ranks by reported workload and ignores sends", () => {
    const p = policyFor("literal");
    assert.equal(p.choose([c("a", 0.1, 0.3), c("b", 0.3, 0)], Math.random), 0);
    assert.equal(p.effective(c("a", 0.1, 0.3)), 0.1);
  });

  test("p2c takes the better of two distinct random proxies", () => {
    const p = policyFor("p2c");
    const candidates = [c("a", 0.9, 0), c("b", 0.1, 0), c("c", 0.5, 0)];
    const random = seededRandom(7);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[p.choose(candidates, random)]!++;
    assert.equal(counts[0], 0, "the worst is never better than the other of its pair");
    // b wins both pairs it is in (2/3), c wins only against a (1/3).
    assert.ok(Math.abs(counts[1]! - 2000) < 150, `b: ${counts[1]}`);
    assert.equal(p.choose([c("a", 0.9, 0)], random), 0);
  });

  test("weighted-random weights by spare capacity, by size once all are full", () => {
    const p = policyFor("weighted-random");
    assert.deepEqual(
      spareWeights([c("a", 0.5, 0, 100), c("b", 0.2, 0.3, 300), c("c", 1, 0.5)]),
      [50, 150, 0],
    );
    const random = seededRandom(3);
    const spare = [c("a", 0.5, 0, 100), c("b", 0.5, 0, 300), c("c", 1, 0, 600)];
    const counts = [0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[p.choose(spare, random)]!++;
    assert.equal(counts[2], 0, "no spare, no clients while others have some");
    assert.ok(Math.abs(counts[0]! - 1000) < 120, `a: ${counts[0]}`);
    const full = [c("a", 1, 0.5, 100), c("b", 2, 0, 300)];
    const fullCounts = [0, 0];
    for (let i = 0; i < 4000; i++) fullCounts[p.choose(full, random)]!++;
    assert.ok(Math.abs(fullCounts[0]! - 1000) < 120, `a: ${fullCounts[0]}`);
  });
});
