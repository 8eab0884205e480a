import { SipParseError } from "../errors.js";
import { decodeText, encodeText } from "./chars.js";
import { HeaderField } from "./header-field.js";
import { headerDisplayName, headerKey } from "./header-names.js";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "./limits.js";
import type { AuthHeader } from "./auth-header.js";
import {
  authParser,
  callIdParser,
  contactParser,
  contentLengthParser,
  cseqParser,
  dateParser,
  expiresParser,
  maxForwardsParser,
  mediaTypeParser,
  nameAddrListParser,
  nameAddrParser,
  parsedField,
  tokenListParser,
  viaParser,
  type FieldParser,
} from "./field-parsers.js";
import type { MediaType } from "./media-type.js";
import { WILDCARD, readNameAddr, type NameAddr } from "./name-addr.js";
import type { CSeq } from "./scalar-headers.js";
import { parseUri, type Uri } from "./uri.js";
import { readVia, type Via } from "./via.js";

/** Where a parsed message's bytes are; absent for messages built in code. */
export interface WireSource {
  readonly bytes: Buffer;
  /** The same bytes as a latin1 string (one char per octet), at least up to `bytes.length`. */
  readonly text: string;
  /** The text the header fields were read from; a field of another message is not a span. */
  readonly headText: string;
  /** End of the start line, past its CRLF. */
  readonly startLineEnd: number;
  /** Offset of the empty line (CRLF) that ends the header section. */
  readonly headEnd: number;
}

export interface SipMessageInit {
  /** Header fields in order, as [name, value] with values as JavaScript strings. */
  readonly headers?: Iterable<readonly [string, string]>;
  readonly body?: Buffer | string;
}

const EMPTY_BODY = Buffer.alloc(0);
const VALUE_LIST_KEYS = new Set(["via", "route", "record-route", "path", "contact"]);
const CRLF = "\r\n";

/**
 * What requests and responses share: header fields in order, a body, lazy typed accessors,
 * and the edits a proxy makes. A parsed message keeps its source bytes, and serializing
 * copies every untouched line from them unchanged.
 */
export abstract class SipMessageBase {
  /** Header fields in order; change them with the methods below. */
  fields: HeaderField[];
  /** Undefined while the body is the rest of the source (sliced when first read). */
  #body: Buffer | undefined;
  /** True once setBody replaced the body received. */
  #bodyReplaced = false;
  protected source: WireSource | undefined;
  /** Limits for headers parsed lazily. */
  readonly limits: ParseLimits;

  /** False once the start line was changed (a new Request-URI); it is then rebuilt. */
  protected startLineFromSource: boolean;

  protected constructor(init: SipMessageInit, limits: ParseLimits, wire: WireParts | undefined) {
    this.fields = wire?.fields ?? fieldsFrom(init.headers);
    this.#body = wire === undefined ? bodyFrom(init.body) : undefined;
    this.source = wire?.source;
    this.startLineFromSource = wire !== undefined;
    this.limits = limits;
  }

  /** The bytes this message was parsed from (undefined for one we built). */
  get wireBytes(): Buffer | undefined {
    return this.source?.bytes;
  }

  get body(): Buffer {
    if (this.#body === undefined) {
      const src = this.source!;
      this.#body = src.bytes.subarray(src.headEnd + 2);
    }
    return this.#body;
  }

  /**
   * Replaces the body and keeps Content-Length (and, when given, Content-Type) in step.
   */
  setBody(body: Buffer | string, contentType?: string): void {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    this.#body = bytes;
    this.#bodyReplaced = true;
    if (contentType !== undefined) this.setHeader("Content-Type", contentType);
    else if (bytes.length === 0) this.removeHeader("content-type");
    this.setHeader("Content-Length", String(bytes.length));
  }

  // ---- generic header access -------------------------------------------------------------

  /** The first field called `name` (any form: "v", "Via", "via"). */
  field(name: string): HeaderField | undefined {
    const key = headerKey(name);
    for (const f of this.fields) if (f.key === key) return f;
    return undefined;
  }

  /** Every field called `name`, in order. */
  fieldsNamed(name: string): HeaderField[] {
    const key = headerKey(name);
    return this.fields.filter((f) => f.key === key);
  }

  hasHeader(name: string): boolean {
    return this.field(name) !== undefined;
  }

  /** The value of the first field called `name`, as text (UTF-8 decoded). */
  getHeader(name: string): string | undefined {
    const f = this.field(name);
    return f === undefined ? undefined : decodeText(f.value);
  }

  /** The values of every field called `name`, as text; one entry per field line. */
  getHeaders(name: string): string[] {
    return this.fieldsNamed(name).map((f) => decodeText(f.value));
  }

  /** Sets `name` to one field with `value`, where the first one was (or at the end). */
  setHeader(name: string, value: string): void {
    const key = headerKey(name);
    const field = new HeaderField(this.#nameFor(name, key), key, encodeText(value));
    const at = this.fields.findIndex((f) => f.key === key);
    if (at < 0) {
      this.fields.push(field);
      return;
    }
    this.fields = this.fields.filter((f, i) => i === at || f.key !== key);
    this.fields[at] = field;
  }

  /** Adds a field after all others. */
  appendHeader(name: string, value: string): void {
    const key = headerKey(name);
    this.fields.push(new HeaderField(this.#nameFor(name, key), key, encodeText(value)));
  }

  /**
   * Adds a field before the first field of the same name (or first of all): how a proxy
   * pushes its Via (RFC 3261 §16.6 step 8) and its Record-Route (step 4).
   */
  prependHeader(name: string, value: string): void {
    const key = headerKey(name);
    const field = new HeaderField(this.#nameFor(name, key), key, encodeText(value));
    const at = this.fields.findIndex((f) => f.key === key);
    this.fields.splice(at < 0 ? 0 : at, 0, field);
  }

  /** Removes every field called `name`. */
  removeHeader(name: string): void {
    const key = headerKey(name);
    this.fields = this.fields.filter((f) => f.key !== key);
  }

  /**
   * Removes the first value of a list header: the topmost Via (RFC 3261 §16.7 step 3) or
   * Route (§16.4); also Record-Route, Path and Contact. A field holding several
   * comma-separated values keeps the others. Throws SipParseError when that value is
   * malformed.
   */
  removeFirstValue(name: string): void {
    this.#editFirstValue(name, undefined);
  }

  /**
   * Replaces the first value of a list header (same ones as removeFirstValue) with `value`,
   * keeping the field's other values: how the transport stamps `received` and `rport` into
   * the top Via (RFC 3261 §18.2.1, RFC 3581 §4).
   */
  replaceFirstValue(name: string, value: string): void {
    this.#editFirstValue(name, encodeText(value));
  }

  /**
   * The text of the first value of a list header (Via, Route, Record-Route, Path, Contact),
   * as a byte string: what a CANCEL or an ACK copies of the INVITE's top Via (§9.1).
   */
  firstValueText(name: string): string | undefined {
    const key = headerKey(name);
    if (!VALUE_LIST_KEYS.has(key)) throw new Error(`list edits do not handle ${name}`);
    const field = this.fields.find((f) => f.key === key);
    if (field === undefined) return undefined;
    const s = field.value;
    return s.slice(0, this.#firstValueEnd(key, s)).trim();
  }

  #firstValueEnd(key: string, s: string): number {
    return key === "via"
      ? readVia(s, 0, s.length, this.limits.maxParams).next
      : readNameAddr(s, 0, s.length, this.limits).next;
  }

  #editFirstValue(name: string, replacement: string | undefined): void {
    const key = headerKey(name);
    if (!VALUE_LIST_KEYS.has(key)) throw new Error(`list edits do not handle ${name}`);
    const at = this.fields.findIndex((f) => f.key === key);
    if (at < 0) return;
    const field = this.fields[at]!;
    const s = field.value;
    const next = this.#firstValueEnd(key, s);
    const rest = next >= s.length ? undefined : s.slice(next + 1).trim();
    const value =
      replacement === undefined
        ? rest
        : rest === undefined
          ? replacement
          : `${replacement}, ${rest}`;
    if (value === undefined) this.fields.splice(at, 1);
    else this.fields[at] = new HeaderField(field.name, key, value);
  }

  #nameFor(name: string, key: string): string {
    return name.length === 1 || name === key ? headerDisplayName(key) : name;
  }

  // ---- typed accessors (parsed on first use, cached per field) ---------------------------

  /** Every Via value, top first. */
  get vias(): Via[] {
    const out: Via[] = [];
    for (const f of this.fields) if (f.key === "via") out.push(...this.#parse(f, viaParser));
    return out;
  }

  /** The topmost Via value. */
  get topVia(): Via | undefined {
    const f = this.#first("via");
    return f === undefined ? undefined : this.#parse(f, viaParser)[0];
  }

  get from(): NameAddr {
    return this.#parse(this.#required("from"), nameAddrParser);
  }

  get to(): NameAddr {
    return this.#parse(this.#required("to"), nameAddrParser);
  }

  get callId(): string {
    return this.#parse(this.#required("call-id"), callIdParser);
  }

  get cseq(): CSeq {
    return this.#parse(this.#required("cseq"), cseqParser);
  }

  /** Max-Forwards (0…255), or undefined when absent. */
  get maxForwards(): number | undefined {
    const f = this.#first("max-forwards");
    return f === undefined ? undefined : this.#parse(f, maxForwardsParser);
  }

  /** Content-Length as written, or undefined when absent. */
  get contentLength(): number | undefined {
    const f = this.#first("content-length");
    return f === undefined ? undefined : this.#parse(f, contentLengthParser);
  }

  /** Expires in seconds (RFC 3261 §20.19), or undefined when absent. */
  get expires(): number | undefined {
    const f = this.#first("expires");
    return f === undefined ? undefined : this.#parse(f, expiresParser);
  }

  get contentType(): MediaType | undefined {
    const f = this.#first("content-type");
    return f === undefined ? undefined : this.#parse(f, mediaTypeParser);
  }

  /** Contact values, without the "*" of a wildcard (see {@link contactWildcard}). */
  get contacts(): NameAddr[] {
    const out: NameAddr[] = [];
    for (const f of this.fields) {
      if (f.key !== "contact") continue;
      for (const c of this.#parse(f, contactParser)) if (c !== WILDCARD) out.push(c);
    }
    return out;
  }

  /** True when a Contact value is "*" (RFC 3261 §10.2.2: remove all bindings). */
  get contactWildcard(): boolean {
    for (const f of this.fields) {
      if (f.key === "contact" && this.#parse(f, contactParser).includes(WILDCARD)) return true;
    }
    return false;
  }

  get routes(): NameAddr[] {
    return this.#nameAddrs("route");
  }

  get recordRoutes(): NameAddr[] {
    return this.#nameAddrs("record-route");
  }

  /** Path values (RFC 3327). */
  get paths(): NameAddr[] {
    return this.#nameAddrs("path");
  }

  get supported(): string[] {
    return this.#tokens("supported");
  }

  get require(): string[] {
    return this.#tokens("require");
  }

  get proxyRequire(): string[] {
    return this.#tokens("proxy-require");
  }

  get unsupported(): string[] {
    return this.#tokens("unsupported");
  }

  get allow(): string[] {
    return this.#tokens("allow");
  }

  get authorizations(): AuthHeader[] {
    return this.#auth("authorization");
  }

  get proxyAuthorizations(): AuthHeader[] {
    return this.#auth("proxy-authorization");
  }

  get wwwAuthenticates(): AuthHeader[] {
    return this.#auth("www-authenticate");
  }

  get proxyAuthenticates(): AuthHeader[] {
    return this.#auth("proxy-authenticate");
  }

  /** The Date header (RFC 3261 §20.17), or undefined when absent. */
  get date(): Date | undefined {
    const f = this.#first("date");
    return f === undefined ? undefined : this.#parse(f, dateParser);
  }

  #nameAddrs(key: string): NameAddr[] {
    const out: NameAddr[] = [];
    for (const f of this.fields) {
      if (f.key !== key) continue;
      for (const v of this.#parse(f, nameAddrListParser)) if (v !== WILDCARD) out.push(v);
    }
    return out;
  }

  #tokens(key: string): string[] {
    const out: string[] = [];
    for (const f of this.fields) if (f.key === key) out.push(...this.#parse(f, tokenListParser));
    return out;
  }

  #auth(key: string): AuthHeader[] {
    const out: AuthHeader[] = [];
    for (const f of this.fields) if (f.key === key) out.push(this.#parse(f, authParser));
    return out;
  }

  #required(key: string): HeaderField {
    const f = this.#first(key);
    if (f === undefined) {
      throw new SipParseError("SIP_ERR_MISSING_HEADER", `Missing ${headerDisplayName(key)}`, {
        status: 400,
        header: key,
      });
    }
    return f;
  }

  #parse<T>(field: HeaderField, parser: FieldParser<T>): T {
    return parsedField(field, parser, this.limits);
  }

  /** The first field with canonical key `key` (no name normalization: keys are literals). */
  #first(key: string): HeaderField | undefined {
    for (const f of this.fields) if (f.key === key) return f;
    return undefined;
  }

  // ---- serialization ---------------------------------------------------------------------

  /** The start line without its CRLF, as a byte string. */
  protected abstract startLine(): string;

  /**
   * The message as bytes. Lines that came from the wire and were not changed are copied
   * from the source as they were, so unknown headers and odd spacing survive byte for byte.
   * A message that was not changed at all returns its received bytes without a copy: treat
   * the result as read-only.
   */
  toBuffer(): Buffer {
    const src = this.source;
    if (src === undefined) {
      let head = this.startLine() + CRLF;
      for (const f of this.fields) head += `${f.name}: ${f.value}${CRLF}`;
      head += CRLF;
      const body = this.#body!;
      const headBytes = Buffer.from(head, "latin1");
      return body.length === 0 ? headBytes : Buffer.concat([headBytes, body]);
    }
    // Untouched stretches of the source are runs [runStart, runEnd) that grow while lines
    // stay adjacent; each run is sliced from the source text once. Building a string and
    // encoding it once beats many small copies into a Buffer.
    const text = src.text;
    let out = "";
    let runStart = 0;
    let runEnd = 0;
    if (this.startLineFromSource) runEnd = src.startLineEnd;
    else out = this.startLine() + CRLF;
    for (const f of this.fields) {
      if (f.isSpanOf(src.headText)) {
        if (runEnd !== f.start) {
          if (runEnd > runStart) out += text.slice(runStart, runEnd);
          runStart = f.start;
        }
        runEnd = f.end;
      } else {
        if (runEnd > runStart) out += text.slice(runStart, runEnd);
        runStart = runEnd = 0;
        out += `${f.name}: ${f.value}${CRLF}`;
      }
    }
    // The empty line, and a received body, are spans of the source too.
    const end = this.#bodyReplaced ? src.headEnd + 2 : src.bytes.length;
    if (runEnd !== src.headEnd) {
      if (runEnd > runStart) out += text.slice(runStart, runEnd);
      runStart = src.headEnd;
    }
    // Nothing changed: the received bytes are the serialization, shared without a copy.
    if (out.length === 0 && runStart === 0 && !this.#bodyReplaced) {
      return end === src.bytes.length ? src.bytes : src.bytes.subarray(0, end);
    }
    out += text.slice(runStart, end);
    const headBytes = Buffer.from(out, "latin1");
    const body = this.#bodyReplaced ? this.#body! : undefined;
    return body === undefined || body.length === 0 ? headBytes : Buffer.concat([headBytes, body]);
  }

  /** The message as text, for logs and tests (UTF-8). */
  toString(): string {
    return this.toBuffer().toString("utf8");
  }

  /** Makes `copy` (a fresh message of the same kind) share this one's source and lines. */
  protected cloneInto<T extends SipMessageBase>(copy: T): T {
    copy.fields = [...this.fields];
    copy.source = this.source;
    copy.startLineFromSource = this.startLineFromSource;
    copy.#body = this.#body;
    copy.#bodyReplaced = this.#bodyReplaced;
    return copy;
  }
}

function fieldsFrom(headers: Iterable<readonly [string, string]> | undefined): HeaderField[] {
  const out: HeaderField[] = [];
  if (headers === undefined) return out;
  for (const [name, value] of headers) {
    const key = headerKey(name);
    out.push(new HeaderField(name, key, encodeText(value)));
  }
  return out;
}

function bodyFrom(body: Buffer | string | undefined): Buffer {
  if (body === undefined) return EMPTY_BODY;
  return typeof body === "string" ? Buffer.from(body, "utf8") : body;
}

/** @internal What the parser hands a message constructor. */
export interface WireParts {
  readonly fields: HeaderField[];
  /** The whole message; its body is what follows the empty line. */
  readonly source: WireSource;
}

export interface SipRequestInit extends SipMessageInit {
  readonly method: string;
  readonly uri: Uri | string;
}

/** A SIP request (RFC 3261 §7.1). */
export class SipRequest extends SipMessageBase {
  readonly type = "request" as const;
  /** Case-sensitive method name: "INVITE", "REGISTER", or an extension. */
  readonly method: string;
  #uri: Uri;

  constructor(init: SipRequestInit, limits: ParseLimits = DEFAULT_PARSE_LIMITS, wire?: WireParts) {
    super(init, limits, wire);
    this.method = init.method;
    this.#uri = typeof init.uri === "string" ? parseUri(encodeText(init.uri), limits) : init.uri;
  }

  /** The Request-URI. Setting it rewrites the Request-Line (RFC 3261 §16.6 step 6). */
  get uri(): Uri {
    return this.#uri;
  }

  set uri(uri: Uri) {
    this.#uri = uri;
    this.startLineFromSource = false;
  }

  protected startLine(): string {
    return `${this.method} ${this.#uri.toString()} SIP/2.0`;
  }

  /** A copy that can be edited without touching this one (for forking). */
  clone(): SipRequest {
    return this.cloneInto(new SipRequest({ method: this.method, uri: this.#uri }, this.limits));
  }
}

export interface SipResponseInit extends SipMessageInit {
  readonly status: number;
  /** Defaults to the phrase RFC 3261 §21 gives the status. */
  readonly reason?: string;
}

/** A SIP response (RFC 3261 §7.2). */
export class SipResponse extends SipMessageBase {
  readonly type = "response" as const;
  readonly status: number;
  #reason: string;

  constructor(init: SipResponseInit, limits: ParseLimits = DEFAULT_PARSE_LIMITS, wire?: WireParts) {
    super(init, limits, wire);
    if (!Number.isInteger(init.status) || init.status < 100 || init.status > 699) {
      throw new RangeError(`status must be 100-699, got ${init.status}`);
    }
    this.status = init.status;
    // From the wire the reason is already a byte string.
    const reason = init.reason ?? reasonPhrase(init.status);
    this.#reason = wire === undefined ? encodeText(reason) : reason;
  }

  /** The reason phrase as text (UTF-8 decoded). */
  get reason(): string {
    return decodeText(this.#reason);
  }

  protected startLine(): string {
    return `SIP/2.0 ${this.status} ${this.#reason}`;
  }

  clone(): SipResponse {
    const copy = new SipResponse({ status: this.status }, this.limits);
    copy.#reason = this.#reason;
    return this.cloneInto(copy);
  }
}

export type SipMessage = SipRequest | SipResponse;

const REASON_PHRASES: Record<number, string> = {
  100: "Trying",
  180: "Ringing",
  181: "Call Is Being Forwarded",
  182: "Queued",
  183: "Session Progress",
  200: "OK",
  202: "Accepted",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Moved Temporarily",
  305: "Use Proxy",
  380: "Alternative Service",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  410: "Gone",
  413: "Request Entity Too Large",
  414: "Request-URI Too Long",
  415: "Unsupported Media Type",
  416: "Unsupported URI Scheme",
  420: "Bad Extension",
  421: "Extension Required",
  423: "Interval Too Brief",
  429: "Provide Referrer Identity",
  480: "Temporarily Unavailable",
  481: "Call/Transaction Does Not Exist",
  482: "Loop Detected",
  483: "Too Many Hops",
  484: "Address Incomplete",
  485: "Ambiguous",
  486: "Busy Here",
  487: "Request Terminated",
  488: "Not Acceptable Here",
  489: "Bad Event",
  491: "Request Pending",
  493: "Undecipherable",
  500: "Server Internal Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Server Time-out",
  505: "Version Not Supported",
  513: "Message Too Large",
  600: "Busy Everywhere",
  603: "Decline",
  604: "Does Not Exist Anywhere",
  606: "Not Acceptable",
};

/** The reason phrase RFC 3261 §21 gives a status code. */
export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? "Unknown";
}
