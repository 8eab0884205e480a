// The RTP payload format for VP8 (RFC 7741): the payload descriptor in front of every packet's
// share of a frame, a packetizer that splits a frame under a size limit, and a depacketizer
// that puts frames back together from packets in any order and drops the ones that lost one.
import { sequenceDelta, type RtpPacket } from "../rtp-packet.js";

/** The 15-bit PictureID wraps here (RFC 7741 §4.2: M=1 extends it to 15 bits). */
export const VP8_PICTURE_ID_MODULO = 0x8000;
/** The smallest payload limit that carries a descriptor (4 bytes) and a byte of frame. */
export const VP8_MIN_PAYLOAD_BYTES = 5;

/**
 * The VP8 payload descriptor (RFC 7741 §4.2). Optional fields are absent when their flag in
 * the extension byte is clear; the X bit is set on writing exactly when one of them is given.
 */
export interface Vp8Descriptor {
  /** N: the frame can be discarded without harming others. */
  readonly nonReference: boolean;
  /** S: this packet starts a VP8 partition. */
  readonly start: boolean;
  /** PID: the partition the first byte of this packet's share belongs to (0–7). */
  readonly partitionId: number;
  /** I: 7 bits (0–127) when `pictureIdBits` is 7, else 15 bits (0–32767). */
  readonly pictureId?: number;
  /** M: 15 when the long form is used; on writing, chosen from the value when absent. */
  readonly pictureIdBits?: 7 | 15;
  /** L: the running index of the base temporal layer's frames. */
  readonly tl0PicIdx?: number;
  /** T: the temporal layer (0–3). */
  readonly temporalLayer?: number;
  /** Y (with T): the frame depends only on base-layer frames. */
  readonly layerSync?: boolean;
  /** K: the running index of key frames (0–31). */
  readonly keyIndex?: number;
}

/** Why a payload carries no VP8 (the damage is counted, never thrown). */
export type Vp8DescriptorFailure = "empty" | "short-extension" | "no-frame-data";

/** Reads the descriptor; `headerBytes` is where the VP8 bytes begin. */
export function readVp8Descriptor(
  payload: Uint8Array,
): { readonly descriptor: Vp8Descriptor; readonly headerBytes: number } | Vp8DescriptorFailure {
  if (payload.length === 0) return "empty";
  const first = payload[0]!;
  let offset = 1;
  const fields: {
    nonReference: boolean;
    start: boolean;
    partitionId: number;
    pictureId?: number;
    pictureIdBits?: 7 | 15;
    tl0PicIdx?: number;
    temporalLayer?: number;
    layerSync?: boolean;
    keyIndex?: number;
  } = {
    nonReference: (first & 0x20) !== 0,
    start: (first & 0x10) !== 0,
    partitionId: first & 0x07,
  };
  if ((first & 0x80) !== 0) {
    const extension = payload[offset++];
    if (extension === undefined) return "short-extension";
    if ((extension & 0x80) !== 0) {
      const high = payload[offset++];
      if (high === undefined) return "short-extension";
      if ((high & 0x80) !== 0) {
        const low = payload[offset++];
        if (low === undefined) return "short-extension";
        fields.pictureId = ((high & 0x7f) << 8) | low;
        fields.pictureIdBits = 15;
      } else {
        fields.pictureId = high;
        fields.pictureIdBits = 7;
      }
    }
    if ((extension & 0x40) !== 0) {
      const index = payload[offset++];
      if (index === undefined) return "short-extension";
      fields.tl0PicIdx = index;
    }
    // One byte holds TID|Y|KEYIDX when T or K (or both) are set.
    if ((extension & 0x30) !== 0) {
      const layers = payload[offset++];
      if (layers === undefined) return "short-extension";
      if ((extension & 0x20) !== 0) {
        fields.temporalLayer = layers >> 6;
        fields.layerSync = (layers & 0x20) !== 0;
      }
      if ((extension & 0x10) !== 0) fields.keyIndex = layers & 0x1f;
    }
  }
  if (offset >= payload.length) return "no-frame-data";
  return { descriptor: fields, headerBytes: offset };
}

/** The descriptor's bytes (1 to 6). Out-of-range fields are bugs and throw RangeError. */
export function writeVp8Descriptor(descriptor: Vp8Descriptor): Buffer {
  const d = descriptor;
  const check = (name: string, value: number | undefined, max: number): void => {
    if (value !== undefined && (!Number.isInteger(value) || value < 0 || value > max)) {
      throw new RangeError(`VP8 descriptor ${name} ${value} is not 0–${max}`);
    }
  };
  check("partitionId", d.partitionId, 7);
  check("pictureId", d.pictureId, d.pictureIdBits === 7 ? 0x7f : 0x7fff);
  check("tl0PicIdx", d.tl0PicIdx, 0xff);
  check("temporalLayer", d.temporalLayer, 3);
  check("keyIndex", d.keyIndex, 0x1f);
  const bytes: number[] = [
    (d.nonReference ? 0x20 : 0) | (d.start ? 0x10 : 0) | (d.partitionId & 0x07),
  ];
  const hasI = d.pictureId !== undefined;
  const hasL = d.tl0PicIdx !== undefined;
  const hasT = d.temporalLayer !== undefined;
  const hasK = d.keyIndex !== undefined;
  if (hasI || hasL || hasT || hasK) {
    bytes[0]! |= 0x80;
    bytes.push((hasI ? 0x80 : 0) | (hasL ? 0x40 : 0) | (hasT ? 0x20 : 0) | (hasK ? 0x10 : 0));
    if (d.pictureId !== undefined) {
      const long = d.pictureIdBits === 15 || (d.pictureIdBits === undefined && d.pictureId > 0x7f);
      if (long) bytes.push(0x80 | (d.pictureId >> 8), d.pictureId & 0xff);
      else bytes.push(d.pictureId);
    }
    if (d.tl0PicIdx !== undefined) bytes.push(d.tl0PicIdx);
    if (hasT || hasK) {
      bytes.push(
        ((d.temporalLayer ?? 0) << 6) | (d.layerSync === true ? 0x20 : 0) | (d.keyIndex ?? 0),
      );
    }
  }
  return Buffer.from(bytes);
}

/**
 * Whether a VP8 frame is a key frame. RFC 7741 §4.3: "P: Inverse key frame flag. When set to
 * 0, the current frame is a key frame." — the lowest bit of the frame tag (RFC 6386 §9.1),
 * whose key frames go on with the start code 9d 01 2a, checked here as well.
 */
export function isVp8Keyframe(frame: Uint8Array): boolean {
  return (
    frame.length >= 10 &&
    (frame[0]! & 0x01) === 0 &&
    frame[3] === 0x9d &&
    frame[4] === 0x01 &&
    frame[5] === 0x2a
  );
}

/** A key frame's picture size (RFC 6386 §9.1: 14 bits each, the top 2 bits are scaling). */
export function vp8KeyframeSize(frame: Uint8Array): { width: number; height: number } | undefined {
  if (!isVp8Keyframe(frame)) return undefined;
  return {
    width: (frame[6]! | (frame[7]! << 8)) & 0x3fff,
    height: (frame[8]! | (frame[9]! << 8)) & 0x3fff,
  };
}

export interface Vp8PacketizerOptions {
  /** The largest RTP payload (descriptor included) to produce; at least 5. */
  readonly maxPayloadBytes: number;
  /** The first frame's PictureID (15 bits); random by default as RFC 7741 §4.2 suggests. */
  readonly firstPictureId?: number;
}

/** One RTP payload of a frame; `marker` goes in the RTP header (RFC 7741 §4.1). */
export interface Vp8RtpPayload {
  readonly payload: Buffer;
  readonly marker: boolean;
}

/**
 * Splits frames into RTP payloads (RFC 7741 §4): each carries a 4-byte descriptor with the
 * frame's 15-bit PictureID, the first has S=1 and PID=0, the last gets the marker bit. The
 * frame is cut into nearly equal parts, so no runt packet trails a full one.
 */
export class Vp8Packetizer {
  readonly #maxChunk: number;
  #pictureId: number;

  constructor(options: Vp8PacketizerOptions) {
    if (!Number.isInteger(options.maxPayloadBytes) || options.maxPayloadBytes < 5) {
      throw new RangeError(
        `VP8 packetizer: maxPayloadBytes ${options.maxPayloadBytes} leaves no room for a frame`,
      );
    }
    this.#maxChunk = options.maxPayloadBytes - 4;
    this.#pictureId =
      (options.firstPictureId ?? Math.floor(Math.random() * VP8_PICTURE_ID_MODULO)) %
      VP8_PICTURE_ID_MODULO;
  }

  /** The PictureID the next frame gets. */
  get nextPictureId(): number {
    return this.#pictureId;
  }

  /** The payloads of one frame, in order. An empty frame gives none (and uses no PictureID). */
  packetize(frame: Uint8Array): Vp8RtpPayload[] {
    if (frame.length === 0) return [];
    const pictureId = this.#pictureId;
    this.#pictureId = (pictureId + 1) % VP8_PICTURE_ID_MODULO;
    const count = Math.ceil(frame.length / this.#maxChunk);
    const base = Math.floor(frame.length / count);
    const longer = frame.length % count;
    const out: Vp8RtpPayload[] = [];
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const size = base + (i < longer ? 1 : 0);
      const payload = Buffer.allocUnsafe(4 + size);
      payload[0] = 0x80 | (i === 0 ? 0x10 : 0);
      payload[1] = 0x80;
      payload[2] = 0x80 | (pictureId >> 8);
      payload[3] = pictureId & 0xff;
      payload.set(frame.subarray(offset, offset + size), 4);
      offset += size;
      out.push({ payload, marker: i === count - 1 });
    }
    return out;
  }
}

/** A frame put back together. */
export interface Vp8Frame {
  readonly data: Buffer;
  /** The RTP timestamp all its packets share (90 kHz). */
  readonly timestamp: number;
  readonly keyframe: boolean;
  /** From the first packet's descriptor, when the sender wrote one. */
  readonly pictureId: number | undefined;
  readonly firstSequence: number;
  readonly lastSequence: number;
}

export interface Vp8DepacketizerOptions {
  /** Frames being assembled at once; an older incomplete one is dropped beyond this. */
  readonly maxPendingFrames?: number;
  /** Packets one frame may take (bad input: a frame without end). */
  readonly maxPacketsPerFrame?: number;
}

export const DEFAULT_VP8_MAX_PENDING_FRAMES = 4;
export const DEFAULT_VP8_MAX_PACKETS_PER_FRAME = 2048;

export interface Vp8DepacketizerStats {
  /** Packets taken into a frame. */
  packets: number;
  frames: number;
  keyframes: number;
  /** Frames begun but never whole: a packet of theirs was lost (or came too late). */
  framesDropped: number;
  /** Packets whose descriptor was damaged or that carried no VP8 bytes. */
  damaged: number;
  /** Packets repeating one already held, or of a frame already given out or dropped. */
  late: number;
  /** Frames given out with a gap in sequence numbers before them (whole frames lost). */
  gaps: number;
}

interface PendingFrame {
  readonly timestamp: number;
  readonly parts: Map<number, { payload: Buffer; start: boolean; pictureId: number | undefined }>;
  /** Sequence of the packet with S=1 and PID=0, when it came. */
  startSequence: number | undefined;
  /** Sequence of the packet with the marker bit, when it came. */
  endSequence: number | undefined;
}

/**
 * Reassembles VP8 frames (RFC 7741 §4.5): the packets of a frame share the RTP timestamp; it
 * begins with the packet whose descriptor has S=1 and PID=0 and ends with the RTP marker bit,
 * and it is whole when every sequence number between them has arrived, in whatever order.
 * A frame is given out as soon as it is whole; when a newer one is, older unfinished ones are
 * dropped (their lost packet would decode as garbage) and {@link needsKeyframe} turns true
 * until a key frame comes — the cue for a PLI (RFC 4585 §6.3.1). Damaged packets are counted,
 * never thrown.
 */
export class Vp8Depacketizer {
  readonly #maxPending: number;
  readonly #maxPackets: number;
  /** By timestamp, in order of arrival (mostly oldest first: packets mostly come in order). */
  readonly #pending = new Map<number, PendingFrame>();
  /** The newest timestamp given out or dropped: anything at or before it is late. */
  #doneTimestamp: number | undefined;
  #lastSequence: number | undefined;
  #needsKeyframe = true;
  readonly stats: Vp8DepacketizerStats = {
    packets: 0,
    frames: 0,
    keyframes: 0,
    framesDropped: 0,
    damaged: 0,
    late: 0,
    gaps: 0,
  };

  constructor(options: Vp8DepacketizerOptions = {}) {
    this.#maxPending = options.maxPendingFrames ?? DEFAULT_VP8_MAX_PENDING_FRAMES;
    this.#maxPackets = options.maxPacketsPerFrame ?? DEFAULT_VP8_MAX_PACKETS_PER_FRAME;
  }

  /**
   * True before the first key frame and after a frame was lost, until a key frame arrives:
   * what follows a loss refers to a picture the decoder never got.
   */
  get needsKeyframe(): boolean {
    return this.#needsKeyframe;
  }

  /** Takes one RTP packet; returns the frames it completed (usually none or one). */
  push(packet: Pick<RtpPacket, "payload" | "sequence" | "timestamp" | "marker">): Vp8Frame[] {
    const read = readVp8Descriptor(packet.payload);
    if (typeof read === "string") {
      this.stats.damaged++;
      return [];
    }
    const { descriptor, headerBytes } = read;
    const timestamp = packet.timestamp >>> 0;
    if (this.#doneTimestamp !== undefined && !isAfter(timestamp, this.#doneTimestamp)) {
      this.stats.late++;
      return [];
    }
    let frame = this.#pending.get(timestamp);
    if (frame === undefined) {
      frame = { timestamp, parts: new Map(), startSequence: undefined, endSequence: undefined };
      this.#pending.set(timestamp, frame);
      if (this.#pending.size > this.#maxPending) this.#dropOldest();
      // It may have been the oldest itself, and then its timestamp now counts as done.
      if (!this.#pending.has(timestamp)) return [];
    }
    const sequence = packet.sequence & 0xffff;
    if (frame.parts.has(sequence)) {
      this.stats.late++;
      return [];
    }
    const start = descriptor.start && descriptor.partitionId === 0;
    frame.parts.set(sequence, {
      payload: packet.payload.subarray(headerBytes),
      start,
      pictureId: descriptor.pictureId,
    });
    this.stats.packets++;
    if (start) frame.startSequence = sequence;
    if (packet.marker) frame.endSequence = sequence;
    if (frame.parts.size > this.#maxPackets) {
      this.#drop(frame);
      return [];
    }
    const whole = this.#assemble(frame);
    if (whole === undefined) return [];
    // Older frames still waiting have lost a packet: the newer one is here in full.
    for (const older of [...this.#pending.values()]) {
      if (older !== frame && isAfter(timestamp, older.timestamp)) this.#drop(older);
    }
    this.#pending.delete(timestamp);
    this.#doneTimestamp = timestamp;
    if (
      this.#lastSequence !== undefined &&
      sequenceDelta(this.#lastSequence, whole.firstSequence) !== 1
    ) {
      this.stats.gaps++;
      if (!whole.keyframe) this.#needsKeyframe = true;
    }
    this.#lastSequence = whole.lastSequence;
    this.stats.frames++;
    if (whole.keyframe) {
      this.stats.keyframes++;
      this.#needsKeyframe = false;
    }
    return [whole];
  }

  /** Drops every unfinished frame (at the end of a stream); returns how many. */
  flush(): number {
    const count = this.#pending.size;
    for (const frame of [...this.#pending.values()]) this.#drop(frame);
    return count;
  }

  #assemble(frame: PendingFrame): Vp8Frame | undefined {
    const { startSequence: first, endSequence: last } = frame;
    if (first === undefined || last === undefined) return undefined;
    const span = sequenceDelta(first, last);
    if (span < 0 || span + 1 !== frame.parts.size) return undefined;
    const chunks: Buffer[] = [];
    for (let i = 0; i <= span; i++) {
      const part = frame.parts.get((first + i) & 0xffff);
      if (part === undefined || (i > 0 && part.start)) return undefined;
      chunks.push(part.payload);
    }
    const data = Buffer.concat(chunks);
    return {
      data,
      timestamp: frame.timestamp,
      keyframe: isVp8Keyframe(data),
      pictureId: frame.parts.get(first)?.pictureId,
      firstSequence: first,
      lastSequence: last,
    };
  }

  #dropOldest(): void {
    let oldest: PendingFrame | undefined;
    for (const frame of this.#pending.values()) {
      if (oldest === undefined || isAfter(oldest.timestamp, frame.timestamp)) oldest = frame;
    }
    if (oldest !== undefined) this.#drop(oldest);
  }

  #drop(frame: PendingFrame): void {
    this.#pending.delete(frame.timestamp);
    this.stats.framesDropped++;
    this.#needsKeyframe = true;
    if (this.#doneTimestamp === undefined || isAfter(frame.timestamp, this.#doneTimestamp)) {
      this.#doneTimestamp = frame.timestamp;
    }
  }
}

/** Whether RTP timestamp `a` comes after `b`, modulo 2^32. */
function isAfter(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d !== 0 && d < 0x80000000;
}
