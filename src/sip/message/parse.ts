import { SipParseError, type SipParseErrorCode } from "../errors.js";
import { TOKEN, allOfClass, isDigit, isWs } from "./chars.js";
import { HeaderField } from "./header-field.js";
import {
  callIdParser,
  contactParser,
  contentLengthParser,
  cseqParser,
  maxForwardsParser,
  nameAddrParser,
  parsedField,
  viaParser,
} from "./field-parsers.js";
import { headerDisplayName, headerKey, headerKeyAt } from "./header-names.js";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "./limits.js";
import { SipRequest, SipResponse, type SipMessage, type WireParts } from "./message.js";
import { SipUri, parseUri, type Uri } from "./uri.js";

export interface ParseOptions {
  readonly limits?: ParseLimits;
}

/** Methods of RFC 3261 and the extensions every SIP element meets. */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  "INVITE",
  "ACK",
  "BYE",
  "CANCEL",
  "OPTIONS",
  "REGISTER",
  "PRACK",
  "SUBSCRIBE",
  "NOTIFY",
  "PUBLISH",
  "INFO",
  "REFER",
  "MESSAGE",
  "UPDATE",
]);

const CRLF = Buffer.from("\r\n", "latin1");

/** The start line and header lines of a message, before any header value is checked. */
export interface HeadScan {
  readonly request: boolean;
  readonly method: string;
  readonly uri: Uri | undefined;
  readonly status: number;
  /** Reason phrase as a byte string. */
  readonly reason: string;
  readonly fields: HeaderField[];
  readonly startLineEnd: number;
  /** Offset of the CRLF of the empty line that ends the header section. */
  readonly headEnd: number;
  /** The text the fields were read from (they point into it). */
  readonly headText: string;
}

function wireError(
  code: SipParseErrorCode,
  message: string,
  status: number | undefined = 400,
  header?: string,
): SipParseError {
  return new SipParseError(code, message, { status, header });
}

/**
 * Reads the start line and splits the header lines of `bytes[0, headEnd)`, where `headEnd`
 * is the offset of the empty line. Header values are not parsed here.
 */
export function scanHead(
  bytes: Buffer,
  headEnd: number,
  limits: ParseLimits,
  // Latin1 makes one char per octet, so string offsets are byte offsets.
  head = bytes.toString("latin1", 0, headEnd),
): HeadScan {
  const firstLf = head.indexOf("\n");
  if (firstLf < 1 || head.charCodeAt(firstLf - 1) !== 0x0d || head.indexOf("\r") < firstLf - 1) {
    throw wireError("SIP_ERR_START_LINE", "Malformed start line");
  }
  const line = head.slice(0, firstLf - 1);
  const request = !line.startsWith("SIP/");
  let method = "";
  let uri: Uri | undefined;
  let status = 0;
  let reason = "";
  if (request) ({ method, uri } = readRequestLine(line, limits));
  else ({ status, reason } = readStatusLine(line));

  const fields: HeaderField[] = [];
  const errorStatus = request ? 400 : undefined;
  let pos = firstLf + 1;
  while (pos < headEnd) {
    const lineStart = pos;
    let lf = head.indexOf("\n", pos);
    let folded = false;
    for (;;) {
      if (lf < 0 || head.charCodeAt(lf - 1) !== 0x0d || head.indexOf("\r", pos) !== lf - 1) {
        throw wireError("SIP_ERR_HEADER_LINE", "Bare CR or LF in a header", errorStatus);
      }
      // LWS = [*WSP CRLF] 1*WSP: a line starting with whitespace continues the field.
      if (lf + 1 < headEnd && isWs(head.charCodeAt(lf + 1))) {
        folded = true;
        pos = lf + 1;
        lf = head.indexOf("\n", pos);
        continue;
      }
      break;
    }
    const lineEnd = lf + 1;
    pos = lineEnd;
    if (lineEnd - lineStart > limits.maxHeaderBytes) {
      throw wireError(
        "SIP_ERR_HEADER_TOO_LONG",
        `Header field longer than ${limits.maxHeaderBytes} bytes`,
        errorStatus,
      );
    }
    if (fields.length >= limits.maxHeaders) {
      throw wireError(
        "SIP_ERR_TOO_MANY_HEADERS",
        `More than ${limits.maxHeaders} header fields`,
        errorStatus,
      );
    }
    const colon = head.indexOf(":", lineStart);
    if (colon < 0 || colon > lf) {
      throw wireError("SIP_ERR_HEADER_LINE", "Header line without a colon", errorStatus);
    }
    let nameEnd = colon;
    while (nameEnd > lineStart && isWs(head.charCodeAt(nameEnd - 1))) nameEnd--;
    // A known name is a token already; only others need the check.
    const knownKey = headerKeyAt(head, lineStart, nameEnd);
    if (knownKey === undefined && !allOfClass(head, TOKEN, lineStart, nameEnd)) {
      throw wireError("SIP_ERR_HEADER_LINE", "Header name is not a token", errorStatus);
    }
    const key = knownKey ?? headerKey(head.slice(lineStart, nameEnd));
    if (folded) {
      const value = head
        .slice(colon + 1, lf - 1)
        .replace(/[ \t]*\r\n[ \t]+/g, " ")
        .trim();
      fields.push(new HeaderField(undefined, key, value, lineStart, lineEnd, head, nameEnd));
    } else {
      let vStart = colon + 1;
      let vEnd = lf - 1;
      while (vStart < vEnd && isWs(head.charCodeAt(vStart))) vStart++;
      while (vEnd > vStart && isWs(head.charCodeAt(vEnd - 1))) vEnd--;
      fields.push(
        new HeaderField(undefined, key, undefined, lineStart, lineEnd, head, nameEnd, vStart, vEnd),
      );
    }
  }
  return {
    request,
    method,
    uri,
    status,
    reason,
    fields,
    startLineEnd: firstLf + 1,
    headEnd,
    headText: head,
  };
}

/** Request-Line = Method SP Request-URI SP SIP-Version CRLF (RFC 3261 §7.1, §25.1) */
function readRequestLine(line: string, limits: ParseLimits): { method: string; uri: Uri } {
  const sp1 = line.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : line.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0) throw wireError("SIP_ERR_START_LINE", "Malformed Request-Line");
  const method = line.slice(0, sp1);
  if (!allOfClass(method, TOKEN)) throw wireError("SIP_ERR_START_LINE", "Method is not a token");
  if (sp2 === sp1 + 1) throw wireError("SIP_ERR_START_LINE", "Extra space in Request-Line");
  const version = line.slice(sp2 + 1);
  if (version !== "SIP/2.0" && !/^SIP\/2\.0$/i.test(version)) {
    if (/^SIP\/\d+\.\d+$/i.test(version)) {
      throw wireError("SIP_ERR_VERSION", "Version Not Supported", 505);
    }
    throw wireError(
      "SIP_ERR_START_LINE",
      version.includes(" ") || version.endsWith("\t")
        ? "Whitespace in Request-URI or Request-Line"
        : "Malformed SIP-Version",
    );
  }
  const uriText = line.slice(sp1 + 1, sp2);
  let uri: Uri;
  try {
    uri = parseUri(uriText, limits);
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    if (e.code === "SIP_ERR_URI_TOO_LONG") {
      throw new SipParseError("SIP_ERR_URI_TOO_LONG", "Request-URI Too Long", { status: 414 });
    }
    throw new SipParseError("SIP_ERR_REQUEST_URI", `Malformed Request-URI: ${e.message}`, {
      status: 400,
      reason: "Malformed Request-URI",
      cause: e,
    });
  }
  // RFC 3261 §19.1.1, table 1: headers are not allowed in a Request-URI.
  if (uri instanceof SipUri && uri.headers.length > 0) {
    throw wireError("SIP_ERR_REQUEST_URI", "Request-URI carries headers");
  }
  return { method, uri };
}

/** Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF; Status-Code = 3DIGIT */
function readStatusLine(line: string): { status: number; reason: string } {
  const sp = line.indexOf(" ");
  if (sp < 0 || !/^SIP\/2\.0$/i.test(line.slice(0, sp))) {
    throw wireError("SIP_ERR_VERSION", "Response with a SIP version other than 2.0", undefined);
  }
  const code = line.slice(sp + 1, sp + 4);
  const after = line.charCodeAt(sp + 4);
  if (
    code.length !== 3 ||
    !isDigit(code.charCodeAt(0)) ||
    !isDigit(code.charCodeAt(1)) ||
    !isDigit(code.charCodeAt(2)) ||
    (sp + 4 < line.length && after !== 0x20)
  ) {
    throw wireError("SIP_ERR_STATUS_CODE", "Status code is not three digits", undefined);
  }
  const status = Number(code);
  if (status < 100 || status > 699) {
    throw wireError("SIP_ERR_STATUS_CODE", "Status code outside 100-699", undefined);
  }
  // A liberal reading: "SIP/2.0 100" without the SP before an empty reason is accepted.
  return { status, reason: line.slice(sp + 5) };
}

function duplicate(key: string): SipParseError {
  return wireError(
    key === "content-length" ? "SIP_ERR_CONTENT_LENGTH" : "SIP_ERR_DUPLICATE_HEADER",
    `Multiple ${headerDisplayName(key)} header fields`,
    400,
    key,
  );
}

function missing(key: string): SipParseError {
  return wireError("SIP_ERR_MISSING_HEADER", `Missing ${headerDisplayName(key)}`, 400, key);
}

/**
 * Checks what every role reads on arrival: one each of To, From, Call-ID and CSeq, at least
 * one Via; the top Via, From, To, Call-ID, CSeq, Max-Forwards and Content-Length well formed;
 * the CSeq method equal to the request method; and the Contacts of a REGISTER. One pass over
 * the fields; the parsed values are cached on them for later reads.
 */
export function checkMandatoryHeaders(message: SipMessage): void {
  let via: HeaderField | undefined;
  let from: HeaderField | undefined;
  let to: HeaderField | undefined;
  let callId: HeaderField | undefined;
  let cseq: HeaderField | undefined;
  let maxForwards: HeaderField | undefined;
  let contentLength: HeaderField | undefined;
  for (const f of message.fields) {
    switch (f.key) {
      case "via":
        via ??= f;
        break;
      case "from":
        if (from !== undefined) throw duplicate(f.key);
        from = f;
        break;
      case "to":
        if (to !== undefined) throw duplicate(f.key);
        to = f;
        break;
      case "call-id":
        if (callId !== undefined) throw duplicate(f.key);
        callId = f;
        break;
      case "cseq":
        if (cseq !== undefined) throw duplicate(f.key);
        cseq = f;
        break;
      case "max-forwards":
        if (maxForwards !== undefined) throw duplicate(f.key);
        maxForwards = f;
        break;
      case "content-length":
        if (contentLength !== undefined) throw duplicate(f.key);
        contentLength = f;
        break;
    }
  }
  if (via === undefined) throw missing("via");
  if (to === undefined) throw missing("to");
  if (from === undefined) throw missing("from");
  if (callId === undefined) throw missing("call-id");
  if (cseq === undefined) throw missing("cseq");
  const limits = message.limits;
  parsedField(via, viaParser, limits);
  parsedField(from, nameAddrParser, limits);
  parsedField(to, nameAddrParser, limits);
  parsedField(callId, callIdParser, limits);
  const { method } = parsedField(cseq, cseqParser, limits);
  if (maxForwards !== undefined) parsedField(maxForwards, maxForwardsParser, limits);
  if (contentLength !== undefined) parsedField(contentLength, contentLengthParser, limits);
  if (message.type === "request") {
    if (method !== message.method) {
      // RFC 4475 §3.1.2.18: with an unknown method, 501 has the better future.
      throw wireError(
        "SIP_ERR_CSEQ_MISMATCH",
        "CSeq method does not match the request method",
        KNOWN_METHODS.has(message.method) ? 400 : 501,
        "cseq",
      );
    }
    if (message.method === "REGISTER") {
      for (const f of message.fields)
        if (f.key === "contact") parsedField(f, contactParser, limits);
    }
  }
}

/** Builds the message from a scanned head and its body, then checks it. */
function buildMessage(
  scan: HeadScan,
  bytes: Buffer,
  text: string,
  limits: ParseLimits,
): SipMessage {
  const wire: WireParts = {
    fields: scan.fields,
    source: {
      bytes,
      text,
      headText: scan.headText,
      startLineEnd: scan.startLineEnd,
      headEnd: scan.headEnd,
    },
  };
  const message = scan.request
    ? new SipRequest({ method: scan.method, uri: scan.uri! }, limits, wire)
    : new SipResponse({ status: scan.status, reason: scan.reason }, limits, wire);
  checkMandatoryHeaders(message);
  return message;
}

/** RFC 3261 §18.3 / §7.5: CRLFs before a start line are keep-alives, not a message. */
function skipLeadingCrlf(bytes: Buffer): number {
  let i = 0;
  while (i + 1 < bytes.length && bytes[i] === 0x0d && bytes[i + 1] === 0x0a) i += 2;
  return i;
}

function isResponseStart(bytes: Buffer, at: number): boolean {
  // "SIP/", compared as bytes to spare a string.
  return (
    bytes.length - at >= 4 &&
    bytes[at] === 0x53 &&
    bytes[at + 1] === 0x49 &&
    bytes[at + 2] === 0x50 &&
    bytes[at + 3] === 0x2f
  );
}

/** Content-Length's digits (1*DIGIT, at most 10), or -1 when it is anything else. */
function contentLengthOf(value: string): number {
  if (value.length === 0 || value.length > 10) return -1;
  let n = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/**
 * One message from one datagram (UDP) or one WebSocket message (RFC 7118 §5). Returns null
 * for a keep-alive (only CRLFs). Throws SipParseError: `status` says what to answer, and is
 * absent when the message must be dropped (any broken response, RFC 4475 §3.1.2.19).
 *
 * Octets after Content-Length's worth of body are ignored (RFC 3261 §18.3); without
 * Content-Length the body is the rest of the datagram.
 */
function parseWhole(bytes: Buffer, limits: ParseLimits): SipMessage | null {
  const start = skipLeadingCrlf(bytes);
  if (start === bytes.length) return null;
  const response = isResponseStart(bytes, start);
  try {
    if (bytes.length > limits.maxMessageBytes) {
      throw wireError("SIP_ERR_MESSAGE_TOO_LARGE", "Message Too Large", 513);
    }
    // Search the latin1 text (String#indexOf is far cheaper than Buffer#indexOf), which the
    // head scan then reads too.
    let text = bytes.toString("latin1", start);
    let blank = text.indexOf("\r\n\r\n");
    if (blank >= 0) blank += start;
    if (blank < 0) {
      // A datagram that ends right after its last header line lacks only the empty line;
      // senders do this (RFC 4475's own archive does), and nothing is ambiguous.
      if (
        bytes.length < 2 ||
        bytes[bytes.length - 2] !== 0x0d ||
        bytes[bytes.length - 1] !== 0x0a
      ) {
        throw wireError("SIP_ERR_NO_HEADER_END", "No empty line after the headers");
      }
      blank = bytes.length - 2;
      bytes = Buffer.concat([bytes, CRLF]);
      text += "\r\n";
    }
    const msgBytes = start === 0 ? bytes : bytes.subarray(start);
    const headEnd = blank + 2 - start;
    const scan = scanHead(msgBytes, headEnd, limits, text);
    const bodyStart = headEnd + 2;
    const available = msgBytes.length - bodyStart;
    let bodyLength = available;
    for (const f of scan.fields) {
      if (f.key !== "content-length") continue;
      const cl = contentLengthOf(f.value);
      if (cl < 0) {
        throw wireError(
          "SIP_ERR_CONTENT_LENGTH",
          "Malformed Content-Length",
          400,
          "content-length",
        );
      }
      if (cl > available) {
        throw wireError("SIP_ERR_BODY_TRUNCATED", "Content-Length larger than the message");
      }
      bodyLength = cl;
      break;
    }
    const end = bodyStart + bodyLength;
    const source = end === msgBytes.length ? msgBytes : msgBytes.subarray(0, end);
    return buildMessage(scan, source, text, limits);
  } catch (e) {
    if (response && e instanceof SipParseError && e.status !== undefined) {
      throw e.withoutResponse();
    }
    throw e;
  }
}

/** Parses one SIP message from one UDP datagram (RFC 3261 §18.3). */
export function parseDatagram(bytes: Buffer, options: ParseOptions = {}): SipMessage | null {
  return parseWhole(bytes, options.limits ?? DEFAULT_PARSE_LIMITS);
}

/**
 * Parses one SIP message from one WebSocket message (RFC 7118 §5): each WebSocket message
 * holds exactly one SIP message, Content-Length is optional.
 */
export function parseWebSocketMessage(
  data: Buffer | string,
  options: ParseOptions = {},
): SipMessage | null {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return parseWhole(bytes, options.limits ?? DEFAULT_PARSE_LIMITS);
}

/** @internal For the stream framer: builds and checks a framed message. */
export function finishFramedMessage(
  scan: HeadScan,
  bytes: Buffer,
  limits: ParseLimits,
): SipMessage {
  try {
    return buildMessage(scan, bytes, bytes.toString("latin1"), limits);
  } catch (e) {
    if (!scan.request && e instanceof SipParseError && e.status !== undefined) {
      throw e.withoutResponse();
    }
    throw e;
  }
}
