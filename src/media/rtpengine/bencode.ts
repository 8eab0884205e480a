/**
 * Bencoding, the wire format of rtpengine's `ng` control protocol (BitTorrent's BEP 3:
 * `i<n>e` integers, `<length>:<bytes>` strings, `l…e` lists, `d…e` dictionaries with keys in
 * byte order). Strings come back as JavaScript strings decoded as Latin-1, so that any bytes
 * survive; SDP and rtpengine's keys are ASCII.
 */
export type BencodeValue = string | number | BencodeValue[] | { [key: string]: BencodeValue };

/** Input that is not bencoding, or that ends too early. */
export class BencodeError extends Error {
  override readonly name = "BencodeError";
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at byte ${offset}`);
  }
}

/** Dictionaries deeper than this are refused (a hostile reply must not blow the stack). */
const MAX_DEPTH = 32;

export function bencode(value: BencodeValue | boolean | undefined): Buffer {
  const parts: Buffer[] = [];
  write(value, parts);
  return Buffer.concat(parts);
}

function write(value: BencodeValue | boolean | undefined, out: Buffer[]): void {
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "latin1");
    out.push(Buffer.from(`${bytes.length}:`, "latin1"), bytes);
  } else if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new RangeError(`bencode: ${value} is not an integer`);
    out.push(Buffer.from(`i${value}e`, "latin1"));
  } else if (typeof value === "boolean") {
    // rtpengine reads flags as strings in lists; a lone boolean is written as its word.
    write(value ? "yes" : "no", out);
  } else if (Array.isArray(value)) {
    out.push(Buffer.from("l"));
    for (const item of value) write(item, out);
    out.push(Buffer.from("e"));
  } else if (value !== null && typeof value === "object") {
    out.push(Buffer.from("d"));
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort((a, b) => Buffer.compare(Buffer.from(a, "latin1"), Buffer.from(b, "latin1")));
    for (const key of keys) {
      write(key, out);
      write(value[key], out);
    }
    out.push(Buffer.from("e"));
  } else {
    throw new TypeError(`bencode: cannot encode ${String(value)}`);
  }
}

/** Decodes exactly one value filling all of `bytes`. */
export function bdecode(bytes: Buffer): BencodeValue {
  const reader = { at: 0 };
  const value = read(bytes, reader, 0);
  if (reader.at !== bytes.length) throw new BencodeError("trailing bytes", reader.at);
  return value;
}

function read(bytes: Buffer, r: { at: number }, depth: number): BencodeValue {
  if (depth > MAX_DEPTH) throw new BencodeError("nested too deep", r.at);
  const c = bytes[r.at];
  if (c === undefined) throw new BencodeError("unexpected end", r.at);
  if (c === 0x69 /* i */) {
    const end = bytes.indexOf(0x65 /* e */, r.at + 1);
    if (end < 0) throw new BencodeError("unterminated integer", r.at);
    const text = bytes.toString("latin1", r.at + 1, end);
    if (!/^-?(0|[1-9]\d*)$/.test(text)) throw new BencodeError("bad integer", r.at);
    r.at = end + 1;
    return Number(text);
  }
  if (c === 0x6c /* l */) {
    r.at++;
    const list: BencodeValue[] = [];
    while (bytes[r.at] !== 0x65) list.push(read(bytes, r, depth + 1));
    r.at++;
    return list;
  }
  if (c === 0x64 /* d */) {
    r.at++;
    const dict: { [key: string]: BencodeValue } = Object.create(null) as {
      [key: string]: BencodeValue;
    };
    while (bytes[r.at] !== 0x65) {
      if (bytes[r.at] === undefined) throw new BencodeError("unterminated dictionary", r.at);
      const key = read(bytes, r, depth + 1);
      if (typeof key !== "string") throw new BencodeError("dictionary key not a string", r.at);
      dict[key] = read(bytes, r, depth + 1);
    }
    r.at++;
    return dict;
  }
  if (c >= 0x30 && c <= 0x39) {
    const colon = bytes.indexOf(0x3a /* : */, r.at);
    if (colon < 0) throw new BencodeError("string without length", r.at);
    const lengthText = bytes.toString("latin1", r.at, colon);
    if (!/^(0|[1-9]\d*)$/.test(lengthText)) throw new BencodeError("bad string length", r.at);
    const end = colon + 1 + Number(lengthText);
    if (end > bytes.length) throw new BencodeError("string runs past the end", r.at);
    r.at = end;
    return bytes.toString("latin1", colon + 1, end);
  }
  throw new BencodeError(`unexpected byte 0x${c.toString(16)}`, r.at);
}
