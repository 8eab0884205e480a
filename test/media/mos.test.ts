// The G.107 E-model: R from loss and delay with G.113's G.711 factors, MOS from R (Annex B).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  G711_NO_PLC,
  G711_PLC,
  delayImpairment,
  effectiveEquipmentImpairment,
  estimateMos,
  mosFromR,
  rFactor,
} from "../../src/media/index.js";

function close(actual: number, expected: number, tolerance: number): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${actual} is not ${expected} ± ${tolerance}`,
  );
}

describe("E-model (ITU-T G.107)", () => {
  test("no impairment: R = 93.2 and MOS ≈ 4.41", () => {
    close(rFactor({ packetLossPercent: 0, oneWayDelayMs: 0 }), 93.2, 1e-9);
    close(mosFromR(93.2), 4.41, 0.005);
    close(estimateMos({ packetLossPercent: 0, oneWayDelayMs: 0 }), 4.41, 0.005);
  });

  test("MOS from R at G.107's anchors", () => {
    assert.equal(mosFromR(0), 1);
    assert.equal(mosFromR(-5), 1);
    assert.equal(mosFromR(100), 4.5);
    close(mosFromR(50), 2.58, 0.005);
    close(mosFromR(70), 3.6, 0.01);
    close(mosFromR(80), 4.02, 0.005);
  });

  test("Ie,eff for G.711 (G.113 Appendix I: Ie 0, Bpl 25.1 with PLC, 4.3 without)", () => {
    assert.equal(effectiveEquipmentImpairment(G711_PLC, 0), 0);
    close(effectiveEquipmentImpairment(G711_PLC, 1), 95 / 26.1, 1e-9);
    close(effectiveEquipmentImpairment(G711_NO_PLC, 1), 95 / 5.3, 1e-9);
    close(effectiveEquipmentImpairment(G711_PLC, 2, 2), (95 * 2) / (1 + 25.1), 1e-9);
    // 5 % random loss with PLC: Ie,eff ≈ 15.9, MOS near 3.9.
    close(estimateMos({ packetLossPercent: 5, oneWayDelayMs: 0 }), 3.91, 0.05);
  });

  test("delay impairment: slight below 177 ms, steep beyond", () => {
    close(delayImpairment(100), 2.4, 1e-9);
    close(delayImpairment(300), 0.024 * 300 + 0.11 * (300 - 177.3), 1e-9);
    assert.ok(estimateMos({ packetLossPercent: 0, oneWayDelayMs: 400 }) < 3.7);
  });

  test("more loss or more delay never raises the MOS", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.double({ min: 0, max: 50, noNaN: true }),
        fc.double({ min: 0, max: 500, noNaN: true }),
        (a, b, d) => {
          const [lo, hi] = a < b ? [a, b] : [b, a];
          assert.ok(
            estimateMos({ packetLossPercent: hi, oneWayDelayMs: d }) <=
              estimateMos({ packetLossPercent: lo, oneWayDelayMs: d }) + 1e-12,
          );
          assert.ok(
            estimateMos({ packetLossPercent: lo, oneWayDelayMs: d + 50 }) <=
              estimateMos({ packetLossPercent: lo, oneWayDelayMs: d }) + 1e-12,
          );
        },
      ),
    );
  });
});
