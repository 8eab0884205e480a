// WAV files: written and read back, other rates and channel counts converted to 8 kHz mono,
// unsupported formats refused by name, and the streaming recorder's header fixed on close.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import {
  ToneSource,
  WavFormatError,
  WavRecorder,
  encodeWav,
  parseWav,
  readWavFile,
  scanForTone,
  toMono8k,
} from "../../src/media/index.js";
import { eventually } from "../helpers/eventually.js";
import { requireTool } from "../helpers/tools.js";

const dir = mkdtempSync(join(tmpdir(), "wav-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function wavWith(fields: {
  tag?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  data: Buffer;
}): Buffer {
  const fmt = Buffer.alloc(24);
  fmt.write("fmt ", 0, "latin1");
  fmt.writeUInt32LE(16, 4);
  const channels = fields.channels ?? 1;
  const bits = fields.bits ?? 16;
  const rate = fields.rate ?? 8000;
  fmt.writeUInt16LE(fields.tag ?? 1, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE((rate * channels * bits) / 8, 16);
  fmt.writeUInt16LE((channels * bits) / 8, 20);
  fmt.writeUInt16LE(bits, 22);
  const list = Buffer.from("LIST\x04\x00\x00\x00INFO", "latin1"); // a chunk readers must skip
  const dataHeader = Buffer.alloc(8);
  dataHeader.write("data", 0, "latin1");
  dataHeader.writeUInt32LE(fields.data.length, 4);
  const body = Buffer.concat([Buffer.from("WAVE", "latin1"), fmt, list, dataHeader, fields.data]);
  const riff = Buffer.alloc(8);
  riff.write("RIFF", 0, "latin1");
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

describe("WAV", () => {
  test("16-bit mono 8 kHz survives encode → parse", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -32768, max: 32767 }), { maxLength: 500 }),
        (values) => {
          const samples = Int16Array.from(values);
          const audio = parseWav(encodeWav(samples));
          assert.equal(audio.sampleRate, 8000);
          assert.equal(audio.channels, 1);
          assert.deepEqual([...audio.samples], values);
        },
      ),
    );
  });

  test("stereo 16 kHz becomes 8 kHz mono: channels averaged, tone kept", () => {
    const tone = new ToneSource({ frequency: 1000 });
    const mono16k: number[] = [];
    // A 1 kHz tone at 16 kHz: two 8 kHz frames' worth of phase per frame, so compute directly.
    for (let i = 0; i < 16000; i++)
      mono16k.push(Math.round(10000 * Math.sin((2 * Math.PI * 1000 * i) / 16000)));
    const stereo = new Int16Array(mono16k.length * 2);
    mono16k.forEach((v, i) => {
      stereo[2 * i] = v;
      stereo[2 * i + 1] = v;
    });
    const data = Buffer.from(stereo.buffer);
    const samples = toMono8k(parseWav(wavWith({ channels: 2, rate: 16000, data })));
    assert.equal(samples.length, 8000);
    const scan = scanForTone(samples, { frequency: 1000 });
    assert.ok(
      scan.toneBlocks >= scan.blocks - 1,
      `${scan.toneBlocks}/${scan.blocks} blocks hold 1 kHz`,
    );
    assert.ok(tone.frequency === 1000);
  });

  test("up-sampling 4 kHz to 8 kHz interpolates", () => {
    const samples = toMono8k({
      sampleRate: 4000,
      channels: 1,
      samples: Int16Array.from([0, 100, 200, 300]),
    });
    assert.deepEqual([...samples], [0, 50, 100, 150, 200, 250, 300, 300]);
  });

  test("unsupported or damaged files are refused, naming what is wrong", () => {
    const data = Buffer.alloc(8);
    const cases: [Buffer, RegExp][] = [
      [Buffer.from("nonsense"), /no RIFF header/],
      [Buffer.concat([Buffer.from("RIFF\0\0\0\0AVI ", "latin1")]), /not WAVE/],
      [wavWith({ bits: 8, data }), /8-bit samples is unsupported/],
      [wavWith({ tag: 3, bits: 32, data }), /format tag 3 is unsupported/],
      [wavWith({ tag: 7, bits: 8, data }), /format tag 7/],
      [Buffer.from("RIFF\x04\0\0\0WAVE", "latin1"), /no fmt chunk/],
    ];
    for (const [bytes, message] of cases) {
      assert.throws(
        () => parseWav(bytes),
        (e: unknown) => e instanceof WavFormatError && message.test(e.message),
      );
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        try {
          parseWav(Buffer.from(bytes));
        } catch (error) {
          assert.ok(error instanceof WavFormatError);
        }
      }),
    );
  });

  test("the recorder writes frames as they come and fixes the sizes on close", async () => {
    const path = join(dir, "recorded.wav");
    const recorder = new WavRecorder({ path });
    await recorder.start();
    const tone = new ToneSource({ frequency: 1000, durationMs: 400 });
    for (let frame = tone.nextFrame(); frame !== undefined; frame = tone.nextFrame())
      recorder.write(frame);
    // Before close the header still says 0 bytes of data; a reader takes what is there.
    await eventually(
      () => (statSync(path).size >= 44 + 6400 ? true : undefined),
      5000,
      "the frames on disk",
    );
    assert.equal(readFileSync(path).readUInt32LE(40), 0);
    assert.equal(parseWav(readFileSync(path)).samples.length, 3200);
    await recorder.close();
    await recorder.close();
    const bytes = readFileSync(path);
    assert.equal(bytes.readUInt32LE(4), bytes.length - 8);
    assert.equal(bytes.readUInt32LE(40), 3200 * 2);
    assert.equal(recorder.samplesWritten, 3200);
    const samples = await readWavFile(path);
    assert.equal(scanForTone(samples, { frequency: 1000 }).toneBlocks, 20);
  });

  test("ffprobe reads our WAV as 16-bit PCM mono 8 kHz of the right length", (t) => {
    if (!requireTool(t, "ffprobe", "ffmpeg")) return;
    const path = join(dir, "probe.wav");
    writeFileSync(path, encodeWav(new Int16Array(8000)));
    const run = spawnSync(
      "ffprobe",
      [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_name,sample_rate,channels,duration",
        "-of",
        "json",
        path,
      ],
      { timeout: 20_000 },
    );
    assert.equal(run.status, 0, run.stderr.toString());
    const stream = (JSON.parse(run.stdout.toString()) as { streams: Record<string, unknown>[] })
      .streams[0]!;
    assert.equal(stream.codec_name, "pcm_s16le");
    assert.equal(stream.sample_rate, "8000");
    assert.equal(stream.channels, 1);
    assert.equal(Number(stream.duration), 1);
  });

  test("a WAV that ffmpeg wrote at 44.1 kHz stereo reads as 8 kHz mono with its tone", (t) => {
    if (!requireTool(t, "ffmpeg", "ffmpeg")) return;
    const path = join(dir, "ffmpeg.wav");
    const run = spawnSync(
      "ffmpeg",
      [
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:duration=1:sample_rate=44100",
        "-ac",
        "2",
        path,
      ],
      { timeout: 20_000 },
    );
    assert.equal(run.status, 0, run.stderr.toString());
    return readWavFile(path).then((samples) => {
      assert.ok(Math.abs(samples.length - 8000) <= 1, `${samples.length} samples`);
      const scan = scanForTone(samples, { frequency: 1000 });
      assert.ok(scan.toneBlocks >= 48, `${scan.toneBlocks} of ${scan.blocks} blocks`);
    });
  });
});
