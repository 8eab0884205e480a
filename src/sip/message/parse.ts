import { SipParseError, type SipParseErrorCode } from "../errors.js";
import { TOKEN, allOfClass, isDigit, isWs } from "./chars.js";
import { HeaderField } from "./header-field.js";
import { headerDisplayName, headerKey } from "./header-names.js";
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

const CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");
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
export function scanHead(bytes: Buffer, headEnd: number, limits: ParseLimits): HeadScan {
  // Latin1 makes one char per octet, so string offsets are byte offsets.
  const head = bytes.toString("latin1", 0, headEnd);
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
    if (!allOfClass(head, TOKEN, lineStart, nameEnd)) {
      throw wireError("SIP_ERR_HEADER_LINE", "Header name is not a token", errorStatus);
    }
    let value: string;
    if (folded) {
      value = head
        .slice(colon + 1, lf - 1)
        .replace(/[ \t]*\r\n[ \t]+/g, " ")
        .trim();
    } else {
      let vStart = colon + 1;
      let vEnd = lf - 1;
      while (vStart < vEnd && isWs(head.charCodeAt(vStart))) vStart++;
      while (vEnd > vStart && isWs(head.charCodeAt(vEnd - 1))) vEnd--;
      value = head.slice(vStart, vEnd);
    }
    const name = head.slice(lineStart, nameEnd);
    fields.push(new HeaderField(name, headerKey(name), value, lineStart, lineEnd));
  }
  return { request, method, uri, status, reason, fields, startLineEnd: firstLf + 1, headEnd };
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
  if (!/^SIP\/2\.0$/i.test(version)) {
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

const SINGLE_VALUED = new Set(["to", "from", "call-id", "cseq", "max-forwards", "content-length"]);

/**
 * Checks what every role reads on arrival: one each of To, From, Call-ID and CSeq, at least
 * one Via; the top Via, From, To, Call-ID, CSeq, Max-Forwards and Content-Length well formed;
 * the CSeq method equal to the request method; and the Contacts of a REGISTER.
 */
export function checkMandatoryHeaders(message: SipMessage): void {
  const seen = new Set<string>();
  for (const f of message.fields) {
    if (!SINGLE_VALUED.has(f.key)) continue;
    if (seen.has(f.key)) {
      const name = headerDisplayName(f.key);
      throw wireError(
        f.key === "content-length" ? "SIP_ERR_CONTENT_LENGTH" : "SIP_ERR_DUPLICATE_HEADER",
        `Multiple ${name} header fields`,
        400,
        f.key,
      );
    }
    seen.add(f.key);
  }
  for (const key of ["via", "to", "from", "call-id", "cseq"]) {
    if (key === "via" ? message.field("via") === undefined : !seen.has(key)) {
      throw wireError("SIP_ERR_MISSING_HEADER", `Missing ${headerDisplayName(key)}`, 400, key);
    }
  }
  void message.topVia;
  void message.from;
  void message.to;
  void message.callId;
  const cseq = message.cseq;
  void message.maxForwards;
  void message.contentLength;
  if (message.type === "request") {
    if (cseq.method !== message.method) {
      // RFC 4475 §3.1.2.18: with an unknown method, 501 has the better future.
      throw wireError(
        "SIP_ERR_CSEQ_MISMATCH",
        "CSeq method does not match the request method",
        KNOWN_METHODS.has(message.method) ? 400 : 501,
        "cseq",
      );
    }
    if (message.method === "REGISTER") void message.contactWildcard;
  }
}

/** Builds the message from a scanned head and its body, then checks it. */
function buildMessage(
  scan: HeadScan,
  bytes: Buffer,
  body: Buffer,
  limits: ParseLimits,
): SipMessage {
  const wire: WireParts = {
    fields: scan.fields,
    body,
    source: { bytes, startLineEnd: scan.startLineEnd, headEnd: scan.headEnd },
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
  return bytes.length - at >= 4 && bytes.toString("latin1", at, at + 4) === "SIP/";
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
    let blank = bytes.indexOf(CRLFCRLF, start);
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
    }
    const msgBytes = start === 0 ? bytes : bytes.subarray(start);
    const headEnd = blank + 2 - start;
    const scan = scanHead(msgBytes, headEnd, limits);
    const bodyStart = headEnd + 2;
    const available = msgBytes.length - bodyStart;
    let bodyLength = available;
    const clField = scan.fields.find((f) => f.key === "content-length");
    if (clField !== undefined) {
      const cl = /^\d{1,10}$/.test(clField.value) ? Number(clField.value) : NaN;
      if (Number.isNaN(cl)) {
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
    }
    const source = msgBytes.subarray(0, bodyStart + bodyLength);
    return buildMessage(scan, source, source.subarray(bodyStart), limits);
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
    return buildMessage(scan, bytes, bytes.subarray(scan.headEnd + 2), limits);
  } catch (e) {
    if (!scan.request && e instanceof SipParseError && e.status !== undefined) {
      throw e.withoutResponse();
    }
    throw e;
  }
}
