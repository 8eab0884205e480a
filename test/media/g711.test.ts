// G.711 µ-law and A-law (ITU-T G.711): values from the recommendation's tables, the digital
// milliwatt (G.711 Table 5 and 6), and round trips over every code and random samples.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  g711Decode,
  g711DecodeSample,
  g711Encode,
  g711EncodeSample,
  g711LawOf,
  g711Silence,
  type G711Law,
} from "../../src/media/index.js";
import { requireTool } from "../helpers/tools.js";

describe("G.711", () => {
  // Pairs checked against ffmpeg's decoder (pcm_mulaw, pcm_alaw), which agrees on all 256 codes.
  test("µ-law codes decode to G.711's values (16-bit scale: the 14-bit values × 4)", () => {
    const known: [number, number][] = [
      [0xff, 0],
      [0x7f, 0],
      [0x80, 32124],
      [0x00, -32124],
      [0xfe, 8],
      [0x7e, -8],
      [0xef, 132],
      [0xdf, 396],
      [0x8f, 16764],
      [0xf0, 120],
    ];
    for (const [code, value] of known) {
      assert.equal(g711DecodeSample("pcmu", code), value, `µ-law 0x${code.toString(16)}`);
    }
  });

  test("A-law codes decode to G.711's values (13-bit values × 8, even bits inverted)", () => {
    const known: [number, number][] = [
      [0xd5, 8],
      [0x55, -8],
      [0xaa, 32256],
      [0x2a, -32256],
      [0xd4, 24],
      [0xc5, 264],
      [0xf5, 528],
      [0xff, 848],
      [0x80, 5504],
    ];
    for (const [code, value] of known) {
      assert.equal(g711DecodeSample("pcma", code), value, `A-law 0x${code.toString(16)}`);
    }
  });

  test("decision values: µ-law 31 (14-bit) starts segment 1, as G.711 Table 2a says", () => {
    // 124…127 are 31.0…31.75 on the 14-bit scale: in the interval of 33 (132), not of 30 (120).
    for (let s = 120; s < 124; s++) assert.equal(g711EncodeSample("pcmu", s), 0xf0);
    for (let s = 124; s < 132; s++) assert.equal(g711EncodeSample("pcmu", s), 0xef);
  });

  test("encoding: silence, the extremes and clipping", () => {
    assert.equal(g711EncodeSample("pcmu", 0), 0xff);
    assert.equal(g711EncodeSample("pcmu", 32767), 0x80);
    assert.equal(g711EncodeSample("pcmu", -32768), 0x00);
    assert.equal(g711EncodeSample("pcma", 0), 0xd5);
    assert.equal(g711EncodeSample("pcma", -1), 0x55);
    assert.equal(g711EncodeSample("pcma", 32767), 0xaa);
    assert.equal(g711EncodeSample("pcma", -32768), 0x2a);
    assert.equal(g711Silence("pcmu"), 0xff);
    assert.equal(g711Silence("pcma"), 0xd5);
  });

  test("the digital milliwatt (G.711 Tables 5 and 6) is a 1 kHz sine of 0 dBm0", () => {
    const mu = Buffer.from([0x1e, 0x0b, 0x0b, 0x1e, 0x9e, 0x8b, 0x8b, 0x9e]);
    const a = Buffer.from([0x34, 0x21, 0x21, 0x34, 0xb4, 0xa1, 0xa1, 0xb4]);
    // 0 dBm0 is 3.17 dB below µ-law's peak 8159 (5664 at 14 bits) and 3.14 dB below A-law's
    // 4096 (2840 at 13 bits); on the 16-bit scale 22656 and 22720.
    for (const [law, codes, peak] of [
      ["pcmu", mu, 22656],
      ["pcma", a, 22720],
    ] as const) {
      const pcm = g711Decode(law, codes);
      // Samples at 22.5°, 67.5°, … of a sine: |x| alternates sin 22.5° and sin 67.5° of A.
      const ratio = Math.abs(pcm[1]!) / Math.abs(pcm[0]!);
      assert.ok(
        Math.abs(ratio - Math.sin((67.5 * Math.PI) / 180) / Math.sin((22.5 * Math.PI) / 180)) < 0.1,
      );
      assert.ok(pcm[0]! < 0 === pcm[3]! < 0 && pcm[0]! < 0 !== pcm[4]! < 0, `${law} sign pattern`);
      const amplitude = Math.abs(pcm[1]!) / Math.sin((67.5 * Math.PI) / 180);
      assert.ok(Math.abs(amplitude - peak) / peak < 0.02, `${law} amplitude ${amplitude}`);
      assert.deepEqual(
        [...g711Encode(law, pcm)],
        [...codes],
        `${law} re-encodes to the same codes`,
      );
    }
  });

  for (const law of ["pcmu", "pcma"] as G711Law[]) {
    test(`${law}: every code survives decode → encode (µ-law's negative zero aside)`, () => {
      for (let code = 0; code < 256; code++) {
        if (law === "pcmu" && code === 0x7f) continue;
        assert.equal(g711EncodeSample(law, g711DecodeSample(law, code)), code);
      }
    });

    test(`${law}: encode → decode keeps the sign and stays within the segment's step`, () => {
      fc.assert(
        fc.property(fc.integer({ min: -32768, max: 32767 }), (sample) => {
          const back = g711DecodeSample(law, g711EncodeSample(law, sample));
          const magnitude = Math.min(Math.abs(sample), 32635);
          // Quantisation error is at most half a step; steps double per segment (≤ 1024).
          const bound = Math.max(16, magnitude / 16) + (Math.abs(sample) > 32000 ? 800 : 0);
          assert.ok(Math.abs(back - sample) <= bound, `${sample} -> ${back}`);
          if (Math.abs(sample) > 16) assert.equal(Math.sign(back), Math.sign(sample));
        }),
      );
    });

    test(`${law}: decoding is monotonic in the linear value`, () => {
      const values = Array.from({ length: 256 }, (_, c) => g711DecodeSample(law, c)).sort(
        (x, y) => x - y,
      );
      const distinct = new Set(values);
      assert.equal(distinct.size, law === "pcmu" ? 255 : 256);
      let previous = -Infinity;
      for (let s = -32768; s <= 32767; s += 7) {
        const v = g711DecodeSample(law, g711EncodeSample(law, s));
        assert.ok(v >= previous, `not monotonic at ${s}`);
        previous = v;
      }
    });
  }

  test("buffers encode and decode sample by sample", () => {
    const samples = Int16Array.from([0, 100, -100, 1000, -1000, 30000, -30000]);
    const codes = g711Encode("pcmu", samples);
    assert.deepEqual(
      [...codes],
      [...samples].map((s) => g711EncodeSample("pcmu", s)),
    );
    assert.deepEqual(
      [...g711Decode("pcmu", codes)],
      [...codes].map((c) => g711DecodeSample("pcmu", c)),
    );
  });

  test("ffmpeg decodes every code to the same value (a real, independent G.711 decoder)", (t) => {
    if (!requireTool(t, "ffmpeg", "ffmpeg")) return;
    const dir = mkdtempSync(join(tmpdir(), "g711-"));
    try {
      writeFileSync(join(dir, "codes.raw"), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
      for (const [law, format] of [
        ["pcmu", "mulaw"],
        ["pcma", "alaw"],
      ] as const) {
        const out = join(dir, `${format}.s16`);
        const run = spawnSync(
          "ffmpeg",
          [
            "-loglevel",
            "error",
            "-y",
            "-f",
            format,
            "-ar",
            "8000",
            "-ac",
            "1",
            "-i",
            join(dir, "codes.raw"),
            "-f",
            "s16le",
            out,
          ],
          { timeout: 20_000 },
        );
        assert.equal(run.status, 0, run.stderr.toString());
        const reference = readFileSync(out);
        for (let code = 0; code < 256; code++) {
          assert.equal(
            g711DecodeSample(law, code),
            reference.readInt16LE(code * 2),
            `${law} 0x${code.toString(16)}`,
          );
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("payload types 0 and 8 are the G.711 laws (RFC 3551 §6)", () => {
    assert.equal(g711LawOf(0), "pcmu");
    assert.equal(g711LawOf(8), "pcma");
    assert.equal(g711LawOf(18), undefined);
  });
});
