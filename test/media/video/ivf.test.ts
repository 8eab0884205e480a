// IVF files (libvpx's container): round trips in memory and through the streaming writer,
// every damaged header refused with its code, and ffmpeg's own files read and rewritten.
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  IVF_ERROR_CODES,
  IvfFormatError,
  IvfWriter,
  isVp8Keyframe,
  parseIvf,
  readIvfFile,
  writeIvf,
  type IvfErrorCode,
} from "../../../src/media/index.js";
import { makeVideoClip, probeVideo } from "../../helpers/video-clip.js";

const header = { width: 320, height: 240, timebaseDenominator: 25, timebaseNumerator: 1 };

function refused(bytes: Buffer, code: IvfErrorCode): void {
  assert.throws(
    () => parseIvf(bytes),
    (error: unknown) => {
      assert.ok(error instanceof IvfFormatError, String(error));
      assert.equal(error.code, code, error.message);
      assert.match(error.message, /^IVF: /);
      return true;
    },
  );
}

describe("IVF", () => {
  test("property: write then parse gives the header and frames back", () => {
    fc.assert(
      fc.property(
        fc.record({
          width: fc.integer({ min: 1, max: 0xffff }),
          height: fc.integer({ min: 1, max: 0xffff }),
          timebaseDenominator: fc.integer({ min: 1, max: 0xffffffff }),
          timebaseNumerator: fc.integer({ min: 1, max: 0xffffffff }),
        }),
        fc.array(
          fc.record({
            pts: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
            data: fc.uint8Array({ maxLength: 300 }),
          }),
          { maxLength: 20 },
        ),
        (h, frames) => {
          const file = parseIvf(writeIvf(h, frames));
          assert.deepEqual(file.header, { fourcc: "VP80", ...h, frameCount: frames.length });
          assert.deepEqual(
            file.frames.map((f) => ({ pts: f.pts, data: [...f.data] })),
            frames.map((f) => ({ pts: f.pts, data: [...f.data] })),
          );
        },
      ),
    );
  });

  test("each damaged header or frame is refused naming what is wrong", () => {
    const good = writeIvf(header, [{ pts: 0n, data: Buffer.from([1, 2, 3]) }]);
    const edit = (at: number, bytes: number[]): Buffer => {
      const copy = Buffer.from(good);
      copy.set(bytes, at);
      return copy;
    };
    refused(good.subarray(0, 31), "IVF_ERR_SHORT_HEADER");
    refused(edit(0, [0x52, 0x49, 0x46, 0x46]), "IVF_ERR_SIGNATURE");
    refused(edit(4, [1, 0]), "IVF_ERR_VERSION");
    refused(edit(6, [16, 0]), "IVF_ERR_HEADER_SIZE");
    refused(edit(6, [0xff, 0x00]), "IVF_ERR_HEADER_SIZE");
    refused(edit(8, [0x56, 0x50, 0x39, 0x30]), "IVF_ERR_FOURCC");
    refused(edit(12, [0, 0]), "IVF_ERR_DIMENSIONS");
    refused(edit(16, [0, 0, 0, 0]), "IVF_ERR_TIMEBASE");
    refused(edit(20, [0, 0, 0, 0]), "IVF_ERR_TIMEBASE");
    refused(good.subarray(0, 32 + 5), "IVF_ERR_FRAME_HEADER");
    refused(good.subarray(0, good.length - 1), "IVF_ERR_FRAME_SIZE");
    refused(edit(32, [0xff, 0xff, 0xff, 0x7f]), "IVF_ERR_FRAME_SIZE");
    // Every code is reachable above or named in the table.
    assert.equal(Object.keys(IVF_ERROR_CODES).length, 9);
  });

  test("a header only, with no frames, is a valid empty file", () => {
    const file = parseIvf(writeIvf(header, []));
    assert.equal(file.frames.length, 0);
  });

  test("readIvfFile names the file in its error", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "sipsteer-ivf-"));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const bad = join(dir, "bad.ivf");
    const bytes = writeIvf(header, []);
    bytes.write("RIFF", 0, "latin1");
    await writeFile(bad, bytes);
    await assert.rejects(readIvfFile(bad), (error: unknown) => {
      assert.ok(error instanceof IvfFormatError);
      assert.equal(error.code, "IVF_ERR_SIGNATURE");
      assert.ok(error.message.startsWith(`${bad}: IVF: `), error.message);
      return true;
    });
  });

  test("ffmpeg's clip reads as 320x240 VP8 at 1/25 s, starting with a key frame", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const file = await readIvfFile(clip.path);
    assert.deepEqual(file.header, { fourcc: "VP80", ...header, frameCount: clip.frames });
    assert.equal(file.frames.length, clip.frames);
    assert.ok(isVp8Keyframe(file.frames[0]!.data));
    assert.deepEqual(
      file.frames.map((f) => f.pts),
      file.frames.map((_, i) => BigInt(i)),
    );
    // ffmpeg's -g 25: a key frame at 0 and 25 only.
    assert.deepEqual(
      file.frames.flatMap((f, i) => (isVp8Keyframe(f.data) ? [i] : [])),
      [0, 25],
    );
  });

  test("the streaming writer fixes the frame count and size; ffprobe reads its file", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const source = await readIvfFile(clip.path);
    const copy = join(clip.dir, "copy.ivf");
    const writer = await IvfWriter.create(copy, { ...header, width: 1, height: 1 });
    writer.setSize(320, 240);
    for (const frame of source.frames) writer.writeFrame(frame.data, frame.pts);
    assert.equal(writer.frameCount, clip.frames);
    await writer.close();
    await writer.close();
    const bytes = await readFile(copy);
    assert.deepEqual(bytes, await readFile(clip.path));
    const probe = await probeVideo(copy);
    assert.deepEqual(probe, { codec: "vp8", frames: clip.frames, width: 320, height: 240 });
  });
});
