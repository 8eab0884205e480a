// Audio sources: 20-ms frames of 160 samples from a tone, silence, a WAV file, or several in
// turn; the Goertzel detector finds the tone and tells silence from it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  AudioSourceError,
  FRAME_SAMPLES,
  SamplesSource,
  SequenceSource,
  SilenceSource,
  ToneSource,
  encodeWav,
  goertzelPower,
  levelDbfs,
  openAudioSource,
  scanForTone,
  toneRatio,
  type AudioSource,
} from "../../src/media/index.js";

function drain(source: AudioSource, limit = 10_000): Int16Array[] {
  const frames: Int16Array[] = [];
  for (
    let frame = source.nextFrame();
    frame !== undefined && frames.length < limit;
    frame = source.nextFrame()
  ) {
    frames.push(frame);
  }
  return frames;
}

function concat(frames: Int16Array[]): Int16Array {
  const out = new Int16Array(frames.length * FRAME_SAMPLES);
  frames.forEach((f, i) => out.set(f, i * FRAME_SAMPLES));
  return out;
}

describe("audio sources", () => {
  test("a tone yields 160-sample frames of a continuous sine", () => {
    const frames = drain(new ToneSource({ frequency: 1000, durationMs: 1000 }));
    assert.equal(frames.length, 50);
    assert.ok(frames.every((f) => f.length === 160));
    const all = concat(frames);
    // 1 kHz at 8 kHz repeats every 8 samples, across frame boundaries too.
    for (let i = 8; i < all.length; i++) assert.ok(Math.abs(all[i]! - all[i - 8]!) <= 1);
    assert.ok(Math.abs(levelDbfs(all) - (20 * Math.log10(16384 / 32768) - 3.01)) < 0.1);
  });

  test("silence is zeros; endless sources go on", () => {
    assert.ok(drain(new SilenceSource({ durationMs: 100 })).every((f) => f.every((s) => s === 0)));
    assert.equal(drain(new SilenceSource(), 300).length, 300);
    assert.equal(drain(new ToneSource({ frequency: 440 }), 300).length, 300);
  });

  test("samples play once with the last frame padded, or loop", () => {
    const samples = Int16Array.from({ length: 250 }, (_, i) => i + 1);
    const once = drain(new SamplesSource({ samples }));
    assert.equal(once.length, 2);
    assert.equal(once[1]![89], 250);
    assert.equal(once[1]![90], 0);
    const looped = drain(new SamplesSource({ samples, loop: true }), 5);
    assert.equal(looped.length, 5);
    assert.equal(looped[1]![90], 1);
  });

  test("a sequence plays silence and then the tone; Goertzel finds where", () => {
    const source = new SequenceSource([
      new SilenceSource({ durationMs: 500 }),
      new ToneSource({ frequency: 1000, durationMs: 500 }),
    ]);
    const all = concat(drain(source));
    const scan = scanForTone(all, { frequency: 1000 });
    assert.equal(scan.firstToneSample, 4000);
    assert.equal(scan.toneBlocks, 25);
    assert.equal(scan.maxLevelBeforeDbfs, -Infinity);
  });

  test("Goertzel: a tone on its bin has ratio ≈ 1, another tone or noise ≈ 0", () => {
    const block = (f: number): number[] =>
      Array.from({ length: 160 }, (_, i) => 10000 * Math.sin((2 * Math.PI * f * i) / 8000));
    assert.ok(toneRatio(block(1000), 1000, 8000) > 0.99);
    assert.ok(toneRatio(block(2000), 1000, 8000) < 0.01);
    assert.ok(toneRatio(block(1400), 1000, 8000) < 0.05);
    let seed = 1;
    const noise = Array.from({ length: 160 }, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return (seed / 2 ** 31 - 0.5) * 20000;
    });
    assert.ok(toneRatio(noise, 1000, 8000) < 0.2);
    assert.equal(toneRatio(new Array<number>(160).fill(0), 1000, 8000), 0);
    assert.equal(goertzelPower([], 1000, 8000), 0);
  });

  test("openAudioSource: tone:HZ, silence, a WAV file; bad values named", async () => {
    const tone = await openAudioSource("tone:1000", { durationMs: 100 });
    assert.equal(drain(tone).length, 5);
    assert.equal(drain(await openAudioSource("silence", { durationMs: 40 })).length, 2);
    const dir = mkdtempSync(join(tmpdir(), "source-"));
    try {
      const path = join(dir, "prompt.wav");
      writeFileSync(path, encodeWav(new Int16Array(800)));
      assert.equal(drain(await openAudioSource(path)).length, 5);
      await assert.rejects(openAudioSource(join(dir, "missing.wav")), AudioSourceError);
      writeFileSync(join(dir, "bad.wav"), "not audio");
      await assert.rejects(openAudioSource(join(dir, "bad.wav")), /no RIFF header/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await assert.rejects(openAudioSource("tone:5000"), /between 0 and 4000/);
    await assert.rejects(openAudioSource("tone:abc"), /expected tone:HZ/);
  });
});
