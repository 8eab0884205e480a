// The VP8 RTP payload format (RFC 7741): the descriptor's bits, the packetizer's limits, and
// the depacketizer against reordering, loss and damage.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  Vp8Depacketizer,
  Vp8Packetizer,
  isVp8Keyframe,
  readIvfFile,
  readVp8Descriptor,
  vp8KeyframeSize,
  writeVp8Descriptor,
  type Vp8Descriptor,
  type Vp8Frame,
} from "../../../src/media/index.js";
import { makeVideoClip } from "../../helpers/video-clip.js";

interface TestPacket {
  readonly payload: Buffer;
  readonly sequence: number;
  readonly timestamp: number;
  readonly marker: boolean;
}

/** A frame that reads as a VP8 key frame (frame tag P=0, start code) or an interframe. */
function vp8Frame(size: number, keyframe: boolean, fill = 0x55): Buffer {
  const frame = Buffer.alloc(Math.max(size, 10), fill);
  frame[0] = keyframe ? 0x10 : 0x11;
  if (keyframe) {
    frame.set([0x9d, 0x01, 0x2a], 3);
    frame.writeUInt16LE(320, 6);
    frame.writeUInt16LE(240, 8);
  }
  return frame;
}

/** Packetizes frames into RTP-like packets with consecutive sequence numbers. */
function packetsOf(
  frames: readonly Buffer[],
  maxPayloadBytes: number,
  firstSequence = 0xfff0,
  firstTimestamp = 0xffff_f000,
): TestPacket[][] {
  const packetizer = new Vp8Packetizer({ maxPayloadBytes, firstPictureId: 0x7ffe });
  let sequence = firstSequence;
  return frames.map((frame, i) =>
    packetizer.packetize(frame).map((p) => ({
      payload: p.payload,
      marker: p.marker,
      sequence: sequence++ & 0xffff,
      timestamp: (firstTimestamp + i * 3600) >>> 0,
    })),
  );
}

function pushAll(depacketizer: Vp8Depacketizer, packets: readonly TestPacket[]): Vp8Frame[] {
  return packets.flatMap((p) => depacketizer.push(p));
}

describe("VP8 payload descriptor (RFC 7741 §4.2)", () => {
  test("the bits sit where §4.2 draws them", () => {
    const bytes = writeVp8Descriptor({
      nonReference: true,
      start: true,
      partitionId: 5,
      pictureId: 0x1234,
      tl0PicIdx: 0xab,
      temporalLayer: 2,
      layerSync: true,
      keyIndex: 0x15,
    });
    // X|R|N|S|R|PID, I|L|T|K|RSV, M|PictureID (15), TL0PICIDX, TID|Y|KEYIDX
    assert.deepEqual([...bytes], [0xb5, 0xf0, 0x92, 0x34, 0xab, 0b1011_0101]);
    assert.deepEqual(
      [...writeVp8Descriptor({ nonReference: false, start: false, partitionId: 0 })],
      [0],
    );
    assert.deepEqual(
      [...writeVp8Descriptor({ nonReference: false, start: true, partitionId: 0, pictureId: 17 })],
      [0x90, 0x80, 17],
    );
    // K alone still takes the TID|Y|KEYIDX byte, with TID and Y ignored.
    const keyOnly = readVp8Descriptor(Buffer.from([0x80, 0x10, 0xff, 0xaa]));
    assert.ok(typeof keyOnly === "object");
    assert.deepEqual(keyOnly.descriptor, {
      nonReference: false,
      start: false,
      partitionId: 0,
      keyIndex: 31,
    });
    assert.equal(keyOnly.headerBytes, 3);
  });

  test("property: write then read gives the descriptor back", () => {
    const descriptor = fc
      .record(
        {
          nonReference: fc.boolean(),
          start: fc.boolean(),
          partitionId: fc.integer({ min: 0, max: 7 }),
          picture: fc.oneof(
            fc.record({
              pictureId: fc.integer({ min: 0, max: 0x7f }),
              pictureIdBits: fc.constant(7 as const),
            }),
            fc.record({
              pictureId: fc.integer({ min: 0, max: 0x7fff }),
              pictureIdBits: fc.constant(15 as const),
            }),
          ),
          tl0PicIdx: fc.integer({ min: 0, max: 0xff }),
          temporal: fc.record({
            temporalLayer: fc.integer({ min: 0, max: 3 }),
            layerSync: fc.boolean(),
          }),
          keyIndex: fc.integer({ min: 0, max: 0x1f }),
        },
        { requiredKeys: ["nonReference", "start", "partitionId"] },
      )
      .map(({ picture, temporal, ...rest }): Vp8Descriptor => ({
        ...rest,
        ...picture,
        ...temporal,
      }));
    fc.assert(
      fc.property(descriptor, fc.uint8Array({ minLength: 1, maxLength: 20 }), (d, body) => {
        const header = writeVp8Descriptor(d);
        const read = readVp8Descriptor(Buffer.concat([header, body]));
        assert.ok(typeof read === "object", String(read));
        assert.deepEqual(read.descriptor, d);
        assert.equal(read.headerBytes, header.length);
      }),
    );
  });

  test("a descriptor cut short, or with no VP8 byte after it, is named, not thrown", () => {
    assert.equal(readVp8Descriptor(Buffer.alloc(0)), "empty");
    assert.equal(readVp8Descriptor(Buffer.from([0x80])), "short-extension");
    assert.equal(readVp8Descriptor(Buffer.from([0x90, 0x80])), "short-extension");
    assert.equal(readVp8Descriptor(Buffer.from([0x90, 0x80, 0x80])), "short-extension");
    assert.equal(readVp8Descriptor(Buffer.from([0x90, 0xf0, 0x80, 0x01, 0x02])), "short-extension");
    assert.equal(readVp8Descriptor(Buffer.from([0x90, 0x80, 0x80, 0x01])), "no-frame-data");
    assert.equal(readVp8Descriptor(Buffer.from([0x10])), "no-frame-data");
  });

  test("key frames by the P bit and start code (RFC 7741 §4.3, RFC 6386 §9.1)", async (t) => {
    assert.equal(isVp8Keyframe(vp8Frame(50, true)), true);
    assert.equal(isVp8Keyframe(vp8Frame(50, false)), false);
    assert.deepEqual(vp8KeyframeSize(vp8Frame(50, true)), { width: 320, height: 240 });
    assert.equal(vp8KeyframeSize(vp8Frame(50, false)), undefined);
    assert.equal(isVp8Keyframe(Buffer.from([0x10, 0, 0])), false);
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const file = await readIvfFile(clip.path);
    assert.deepEqual(vp8KeyframeSize(file.frames[0]!.data), { width: 320, height: 240 });
    assert.equal(file.frames.filter((f) => isVp8Keyframe(f.data)).length, 2);
  });
});

describe("VP8 packetizer (RFC 7741 §4)", () => {
  test("S=1 and PID 0 on the first packet, the marker on the last, 15-bit PictureIDs that wrap", () => {
    const packetizer = new Vp8Packetizer({ maxPayloadBytes: 104, firstPictureId: 0x7fff });
    const first = packetizer.packetize(vp8Frame(250, true));
    assert.equal(first.length, 3);
    assert.deepEqual(
      first.map((p) => [p.payload[0], p.payload[1], p.payload[2], p.payload[3], p.marker]),
      [
        [0x90, 0x80, 0xff, 0xff, false],
        [0x80, 0x80, 0xff, 0xff, false],
        [0x80, 0x80, 0xff, 0xff, true],
      ],
    );
    // 250 bytes in 3 parts of 84, 83, 83: no runt after full packets.
    assert.deepEqual(
      first.map((p) => p.payload.length - 4),
      [84, 83, 83],
    );
    const second = packetizer.packetize(vp8Frame(10, false));
    assert.equal(second.length, 1);
    assert.deepEqual([...second[0]!.payload.subarray(0, 4)], [0x90, 0x80, 0x80, 0x00]);
    assert.equal(second[0]!.marker, true);
    assert.equal(packetizer.nextPictureId, 1);
    assert.deepEqual(packetizer.packetize(Buffer.alloc(0)), []);
    assert.throws(() => new Vp8Packetizer({ maxPayloadBytes: 4 }), RangeError);
  });

  test("property: every payload fits the limit and the parts make up the frame", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 1500 }),
        fc.uint8Array({ minLength: 1, maxLength: 8000 }),
        (maxPayloadBytes, frame) => {
          const payloads = new Vp8Packetizer({ maxPayloadBytes, firstPictureId: 0 }).packetize(
            frame,
          );
          assert.ok(payloads.every((p) => p.payload.length <= maxPayloadBytes));
          assert.equal(payloads.length, Math.ceil(frame.length / (maxPayloadBytes - 4)));
          assert.deepEqual(
            [...Buffer.concat(payloads.map((p) => p.payload.subarray(4)))],
            [...frame],
          );
          assert.deepEqual(
            payloads.map((p) => p.marker),
            payloads.map((_, i) => i === payloads.length - 1),
          );
        },
      ),
    );
  });
});

describe("VP8 depacketizer (RFC 7741 §4.5)", () => {
  const frameSizes = fc.array(
    fc.record({ size: fc.integer({ min: 10, max: 5000 }), keyframe: fc.boolean() }),
    { minLength: 1, maxLength: 12 },
  );
  // 8: 4 bytes of frame a packet keeps a 5000-byte frame under the 2048 packets allowed.
  const payloadLimit = fc.integer({ min: 8, max: 1400 });
  const framesOf = (specs: readonly { size: number; keyframe: boolean }[]): Buffer[] =>
    specs.map((s, i) => vp8Frame(s.size, s.keyframe, i & 0xff));

  test("property: packetize then depacketize gives every frame back, across wraps", () => {
    fc.assert(
      fc.property(frameSizes, payloadLimit, (specs, maxPayloadBytes) => {
        const frames = framesOf(specs);
        const depacketizer = new Vp8Depacketizer();
        const out = pushAll(depacketizer, packetsOf(frames, maxPayloadBytes).flat());
        assert.deepEqual(
          out.map((f) => f.data),
          frames,
        );
        assert.deepEqual(
          out.map((f) => f.keyframe),
          specs.map((s) => s.keyframe),
        );
        assert.deepEqual(
          out.map((f) => f.pictureId),
          frames.map((_, i) => (0x7ffe + i) % 0x8000),
        );
        assert.equal(depacketizer.stats.framesDropped, 0);
        assert.equal(depacketizer.stats.gaps, 0);
      }),
    );
  });

  test("property: packets shuffled within each frame still give every frame", () => {
    fc.assert(
      fc.property(
        frameSizes,
        payloadLimit,
        fc.array(fc.nat(), { minLength: 1, maxLength: 32 }),
        (specs, maxPayloadBytes, randoms) => {
          const frames = framesOf(specs);
          const shuffled = packetsOf(frames, maxPayloadBytes).map((packets) => {
            const copy = [...packets];
            for (let i = copy.length - 1; i > 0; i--) {
              const j = randoms[i % randoms.length]! % (i + 1);
              [copy[i], copy[j]] = [copy[j]!, copy[i]!];
            }
            return copy;
          });
          const out = pushAll(new Vp8Depacketizer(), shuffled.flat());
          assert.deepEqual(
            out.map((f) => f.data),
            frames,
          );
        },
      ),
    );
  });

  test("property: losing one packet drops exactly its frame and asks for a key frame", () => {
    fc.assert(
      fc.property(
        frameSizes.filter((s) => s.length >= 2),
        payloadLimit,
        fc.nat(),
        fc.nat(),
        (specs, maxPayloadBytes, whichFrame, whichPacket) => {
          // The first frame is a key frame, as a stream starts.
          const frames = framesOf([{ ...specs[0]!, keyframe: true }, ...specs.slice(1)]);
          const packets = packetsOf(frames, maxPayloadBytes);
          const lostFrame = whichFrame % frames.length;
          const wholeFrameLost = packets[lostFrame]!.length === 1;
          const lostPacket = whichPacket % packets[lostFrame]!.length;
          packets[lostFrame]!.splice(lostPacket, 1);
          const depacketizer = new Vp8Depacketizer();
          const out = pushAll(depacketizer, packets.flat());
          depacketizer.flush();
          assert.deepEqual(
            out.map((f) => f.data),
            frames.filter((_, i) => i !== lostFrame),
          );
          // A frame of one packet leaves no trace but the gap in sequence numbers after it;
          // at the very end of the stream, none at all; before the first frame out, no gap.
          const last = lostFrame === frames.length - 1;
          assert.equal(depacketizer.stats.framesDropped, wholeFrameLost ? 0 : 1);
          assert.equal(depacketizer.stats.gaps, !last && lostFrame > 0 ? 1 : 0);
          if (wholeFrameLost && last) return;
          const keyAfter = specs.slice(lostFrame + 1).some((s) => s.keyframe);
          assert.equal(depacketizer.needsKeyframe, !keyAfter);
        },
      ),
    );
  });

  test("a whole frame lost shows as a gap and asks for a key frame", () => {
    const frames = [vp8Frame(100, true), vp8Frame(100, false), vp8Frame(100, false)];
    const packets = packetsOf(frames, 60);
    const depacketizer = new Vp8Depacketizer();
    assert.equal(depacketizer.needsKeyframe, true);
    pushAll(depacketizer, packets[0]!);
    assert.equal(depacketizer.needsKeyframe, false);
    const out = pushAll(depacketizer, packets[2]!);
    assert.equal(out.length, 1);
    assert.equal(depacketizer.stats.gaps, 1);
    assert.equal(depacketizer.needsKeyframe, true);
  });

  test("late and repeated packets are counted, not given out twice", () => {
    const packets = packetsOf([vp8Frame(100, true), vp8Frame(100, false)], 60).flat();
    const depacketizer = new Vp8Depacketizer();
    assert.equal(pushAll(depacketizer, packets).length, 2);
    assert.equal(pushAll(depacketizer, packets).length, 0);
    assert.equal(depacketizer.stats.late, packets.length);
  });

  test("property: damaged payloads and headers never throw", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            payload: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
            sequence: fc.integer({ min: 0, max: 0xffff }),
            timestamp: fc.integer({ min: 0, max: 0xffffffff }),
            marker: fc.boolean(),
          }),
          { maxLength: 60 },
        ),
        (packets) => {
          const depacketizer = new Vp8Depacketizer({ maxPendingFrames: 3, maxPacketsPerFrame: 8 });
          for (const frame of pushAll(depacketizer, packets)) assert.ok(frame.data.length > 0);
          depacketizer.flush();
        },
      ),
    );
  });

  test("property: real packets with bytes flipped never throw", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          maxLength: 30,
        }),
        (flips) => {
          const packets = packetsOf([vp8Frame(300, true), vp8Frame(200, false)], 50)
            .flat()
            .map((p) => ({ ...p, payload: Buffer.from(p.payload) }));
          for (const { at, value } of flips) {
            const packet = packets[at % packets.length]!;
            packet.payload[(at >> 4) % packet.payload.length] = value;
          }
          pushAll(new Vp8Depacketizer(), packets);
        },
      ),
    );
  });

  test("the frames of ffmpeg's clip survive a 1200-byte MTU round trip", async (t) => {
    const clip = await makeVideoClip(t);
    if (clip === undefined) return;
    const frames = (await readIvfFile(clip.path)).frames.map((f) => f.data);
    const out = pushAll(new Vp8Depacketizer(), packetsOf(frames, 1140).flat());
    assert.equal(out.length, clip.frames);
    assert.deepEqual(
      out.map((f) => f.data),
      frames,
    );
    assert.equal(out.filter((f) => f.keyframe).length, 2);
  });
});
