// IVF, the container libvpx and ffmpeg write VP8 into: a 32-byte file header, then per frame a
// 12-byte header (size, 64-bit pts) and the frame's bytes, all little-endian. There is no RFC;
// the layout is libvpx's (ivfenc.c / ivfdec.c) and ffmpeg's (libavformat/ivfenc.c).
import { open, readFile, type FileHandle } from "node:fs/promises";

/** "DKIF" */
export const IVF_SIGNATURE = "DKIF";
export const IVF_HEADER_BYTES = 32;
export const IVF_FRAME_HEADER_BYTES = 12;
/** The codec sipsteer carries. */
export const IVF_FOURCC_VP8 = "VP80";
/** Bad input: a frame larger than this is not a video frame (a 4K keyframe is ~1 MB). */
export const MAX_IVF_FRAME_BYTES = 16 * 1_048_576;

/** Every code an {@link IvfFormatError} can carry, with what it means. */
export const IVF_ERROR_CODES = {
  IVF_ERR_SHORT_HEADER: "the file is shorter than the 32-byte IVF header",
  IVF_ERR_SIGNATURE: "the file does not start with DKIF",
  IVF_ERR_VERSION: "the IVF version is not 0",
  IVF_ERR_HEADER_SIZE: "the header size field is below 32 or beyond the file",
  IVF_ERR_FOURCC: "the codec is not VP8 (fourcc VP80)",
  IVF_ERR_DIMENSIONS: "width or height is 0",
  IVF_ERR_TIMEBASE: "a timebase field is 0",
  IVF_ERR_FRAME_HEADER: "a frame header is cut off by the end of the file",
  IVF_ERR_FRAME_SIZE: "a frame claims more bytes than remain, or more than the limit",
} as const;

export type IvfErrorCode = keyof typeof IVF_ERROR_CODES;

/** A file (or bytes) that is not a VP8 IVF file; `code` says which rule it breaks. */
export class IvfFormatError extends Error {
  override readonly name = "IvfFormatError";
  readonly code: IvfErrorCode;

  constructor(code: IvfErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export interface IvfHeader {
  /** Four characters; always "VP80" for what {@link parseIvf} accepts. */
  readonly fourcc: string;
  readonly width: number;
  readonly height: number;
  /**
   * A pts counts `timebaseNumerator / timebaseDenominator` seconds: ffmpeg writes 1/25 for a
   * 25 fps clip (the frame rate as denominator), a recording of RTP takes 1/90000.
   */
  readonly timebaseDenominator: number;
  readonly timebaseNumerator: number;
  /** As the header says; 0 when the writer never fixed it. The frames read are the truth. */
  readonly frameCount: number;
}

export interface IvfFrame {
  /** In timebase units. */
  readonly pts: bigint;
  /** A view into the file's bytes. */
  readonly data: Buffer;
}

export interface IvfFile {
  readonly header: IvfHeader;
  readonly frames: readonly IvfFrame[];
}

/** The 32-byte header (the 4 bytes after the frame count are unused and written as 0). */
export function writeIvfHeader(header: IvfHeader): Buffer {
  const fourcc = Buffer.from(header.fourcc, "latin1");
  if (fourcc.length !== 4) throw new RangeError(`IVF fourcc ${header.fourcc} is not 4 bytes`);
  for (const [name, value, max] of [
    ["width", header.width, 0xffff],
    ["height", header.height, 0xffff],
    ["timebaseDenominator", header.timebaseDenominator, 0xffffffff],
    ["timebaseNumerator", header.timebaseNumerator, 0xffffffff],
    ["frameCount", header.frameCount, 0xffffffff],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new RangeError(`IVF ${name} ${value} is not an integer 0–${max}`);
    }
  }
  const out = Buffer.alloc(IVF_HEADER_BYTES);
  out.write(IVF_SIGNATURE, 0, "latin1");
  out.writeUInt16LE(0, 4);
  out.writeUInt16LE(IVF_HEADER_BYTES, 6);
  fourcc.copy(out, 8);
  out.writeUInt16LE(header.width, 12);
  out.writeUInt16LE(header.height, 14);
  out.writeUInt32LE(header.timebaseDenominator, 16);
  out.writeUInt32LE(header.timebaseNumerator, 20);
  out.writeUInt32LE(header.frameCount, 24);
  return out;
}

/** One frame's 12-byte header followed by its bytes. */
export function writeIvfFrame(frame: { readonly pts: bigint; readonly data: Uint8Array }): Buffer {
  const out = Buffer.allocUnsafe(IVF_FRAME_HEADER_BYTES + frame.data.length);
  out.writeUInt32LE(frame.data.length, 0);
  out.writeBigInt64LE(BigInt.asIntN(64, frame.pts), 4);
  out.set(frame.data, IVF_FRAME_HEADER_BYTES);
  return out;
}

/** A whole IVF file in memory (the frame count is the number of frames given). */
export function writeIvf(
  header: Omit<IvfHeader, "frameCount" | "fourcc"> & { fourcc?: string },
  frames: readonly { readonly pts: bigint; readonly data: Uint8Array }[],
): Buffer {
  return Buffer.concat([
    writeIvfHeader({ fourcc: IVF_FOURCC_VP8, ...header, frameCount: frames.length }),
    ...frames.map(writeIvfFrame),
  ]);
}

/** Reads the 32-byte header, refusing anything but VP8 IVF. */
export function parseIvfHeader(bytes: Buffer): IvfHeader & { readonly headerBytes: number } {
  if (bytes.length < IVF_HEADER_BYTES) {
    throw new IvfFormatError(
      "IVF_ERR_SHORT_HEADER",
      `IVF: ${bytes.length} bytes, the header alone takes ${IVF_HEADER_BYTES}`,
    );
  }
  const signature = bytes.toString("latin1", 0, 4);
  if (signature !== IVF_SIGNATURE) {
    throw new IvfFormatError(
      "IVF_ERR_SIGNATURE",
      `IVF: starts with ${JSON.stringify(signature)}, not "DKIF"`,
    );
  }
  const version = bytes.readUInt16LE(4);
  if (version !== 0) {
    throw new IvfFormatError("IVF_ERR_VERSION", `IVF: version ${version}, only 0 exists`);
  }
  const headerBytes = bytes.readUInt16LE(6);
  if (headerBytes < IVF_HEADER_BYTES || headerBytes > bytes.length) {
    throw new IvfFormatError(
      "IVF_ERR_HEADER_SIZE",
      `IVF: header size ${headerBytes} (at least ${IVF_HEADER_BYTES}, at most the file's ${bytes.length})`,
    );
  }
  const fourcc = bytes.toString("latin1", 8, 12);
  if (fourcc !== IVF_FOURCC_VP8) {
    throw new IvfFormatError(
      "IVF_ERR_FOURCC",
      `IVF: codec ${JSON.stringify(fourcc)}, only VP8 ("VP80") is carried`,
    );
  }
  const width = bytes.readUInt16LE(12);
  const height = bytes.readUInt16LE(14);
  if (width === 0 || height === 0) {
    throw new IvfFormatError("IVF_ERR_DIMENSIONS", `IVF: ${width}x${height} pixels`);
  }
  const timebaseDenominator = bytes.readUInt32LE(16);
  const timebaseNumerator = bytes.readUInt32LE(20);
  if (timebaseDenominator === 0 || timebaseNumerator === 0) {
    throw new IvfFormatError(
      "IVF_ERR_TIMEBASE",
      `IVF: timebase ${timebaseNumerator}/${timebaseDenominator}`,
    );
  }
  return {
    fourcc,
    width,
    height,
    timebaseDenominator,
    timebaseNumerator,
    frameCount: bytes.readUInt32LE(24),
    headerBytes,
  };
}

/** Reads a whole VP8 IVF file from memory; a damaged file throws {@link IvfFormatError}. */
export function parseIvf(bytes: Buffer): IvfFile {
  const { headerBytes, ...header } = parseIvfHeader(bytes);
  const frames: IvfFrame[] = [];
  let offset = headerBytes;
  while (offset < bytes.length) {
    if (bytes.length - offset < IVF_FRAME_HEADER_BYTES) {
      throw new IvfFormatError(
        "IVF_ERR_FRAME_HEADER",
        `IVF: frame ${frames.length} at byte ${offset}: ${bytes.length - offset} bytes left, a frame header takes ${IVF_FRAME_HEADER_BYTES}`,
      );
    }
    const size = bytes.readUInt32LE(offset);
    const start = offset + IVF_FRAME_HEADER_BYTES;
    if (size > MAX_IVF_FRAME_BYTES || size > bytes.length - start) {
      throw new IvfFormatError(
        "IVF_ERR_FRAME_SIZE",
        `IVF: frame ${frames.length} at byte ${offset} claims ${size} bytes, ${bytes.length - start} remain`,
      );
    }
    frames.push({
      pts: bytes.readBigInt64LE(offset + 4),
      data: bytes.subarray(start, start + size),
    });
    offset = start + size;
  }
  return { header, frames };
}

/** Reads a VP8 IVF file; the path is named in the error when it is damaged. */
export async function readIvfFile(path: string): Promise<IvfFile> {
  const bytes = await readFile(path);
  try {
    return parseIvf(bytes);
  } catch (error) {
    if (error instanceof IvfFormatError) {
      throw new IvfFormatError(error.code, `${path}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Writes an IVF file as frames arrive (a recording): the header goes out at once with a frame
 * count of 0, each frame is appended in order, and {@link close} writes the real count.
 * Writes are queued, so {@link writeFrame} never waits; the first failure is thrown by close().
 */
export class IvfWriter {
  readonly path: string;
  readonly #file: FileHandle;
  #queue: Promise<void>;
  #frames = 0;
  /** Where the next frame goes: positional writes do not move the file's own position. */
  #end = 0;
  #error: unknown;
  #closed = false;

  private constructor(path: string, file: FileHandle, header: Buffer) {
    this.path = path;
    this.#file = file;
    this.#queue = this.#write(header, 0);
    this.#end = header.length;
  }

  /** Creates (or truncates) `path` and writes the header. */
  static async create(
    path: string,
    header: Omit<IvfHeader, "frameCount" | "fourcc"> & { fourcc?: string },
  ): Promise<IvfWriter> {
    const bytes = writeIvfHeader({ fourcc: IVF_FOURCC_VP8, ...header, frameCount: 0 });
    const file = await open(path, "w");
    return new IvfWriter(path, file, bytes);
  }

  /** Frames handed over so far. */
  get frameCount(): number {
    return this.#frames;
  }

  /** Appends a frame (pts in the header's timebase). Ignored after close(). */
  writeFrame(data: Uint8Array, pts: bigint): void {
    if (this.#closed) return;
    this.#frames++;
    const bytes = writeIvfFrame({ pts, data });
    const position = this.#end;
    this.#end += bytes.length;
    this.#queue = this.#queue.then(() => this.#write(bytes, position));
  }

  /** Fixes the picture size in the header (a recording learns it from the first key frame). */
  setSize(width: number, height: number): void {
    if (this.#closed) return;
    for (const value of [width, height]) {
      if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
        throw new RangeError(`IVF size ${width}x${height} is not 16-bit`);
      }
    }
    const size = Buffer.alloc(4);
    size.writeUInt16LE(width, 0);
    size.writeUInt16LE(height, 2);
    this.#queue = this.#queue.then(() => this.#write(size, 12));
  }

  /** Waits for the queued frames, fixes the frame count in the header, closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const count = Buffer.alloc(4);
    count.writeUInt32LE(this.#frames);
    await this.#queue.then(() => this.#write(count, 24));
    await this.#file.close();
    if (this.#error !== undefined) {
      throw new Error(`IVF recording ${this.path} failed`, { cause: this.#error });
    }
  }

  async #write(bytes: Buffer, position: number): Promise<void> {
    if (this.#error !== undefined) return;
    try {
      await this.#file.write(bytes, 0, bytes.length, position);
    } catch (error) {
      this.#error = error;
    }
  }
}
