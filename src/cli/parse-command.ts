import { readFileSync } from "node:fs";
import {
  SipParseError,
  StreamFramer,
  buildParseErrorResponse,
  parseDatagram,
  type SipMessage,
} from "../sip/index.js";

export interface ParseCommandOptions {
  readonly json?: boolean;
  readonly stream?: boolean;
}

interface Verdict {
  source: string;
  ok: boolean;
  summary: Record<string, unknown>;
}

function describeMessage(message: SipMessage): Record<string, unknown> {
  const start =
    message.type === "request"
      ? { method: message.method, uri: message.uri.toString() }
      : { status: message.status, reason: message.reason };
  return {
    ...start,
    callId: message.callId,
    cseq: `${message.cseq.seq} ${message.cseq.method}`,
    from: message.from.toString(),
    to: message.to.toString(),
    vias: message.vias.length,
    headers: message.fields.length,
    bodyBytes: message.body.length,
  };
}

function describeError(error: SipParseError, raw: Buffer): Record<string, unknown> {
  const reply = buildParseErrorResponse(error, raw);
  return {
    code: error.code,
    message: error.message,
    answer: error.status === undefined ? "drop" : `${error.status} ${error.reason}`,
    ...(error.fatal ? { closeConnection: true } : {}),
    ...(reply === undefined ? {} : { response: reply.toString("latin1").split("\r\n")[0] }),
  };
}

function judge(source: string, bytes: Buffer, stream: boolean): Verdict[] {
  if (!stream) {
    try {
      const message = parseDatagram(bytes);
      if (message === null) return [{ source, ok: true, summary: { keepAlive: true } }];
      return [{ source, ok: true, summary: describeMessage(message) }];
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
      return [{ source, ok: false, summary: describeError(e, bytes) }];
    }
  }
  const framer = new StreamFramer();
  const verdicts: Verdict[] = [];
  for (const item of framer.push(bytes)) {
    if (item.kind === "message") {
      verdicts.push({ source, ok: true, summary: describeMessage(item.message) });
    } else if (item.kind === "error") {
      verdicts.push({ source, ok: false, summary: describeError(item.error, item.bytes) });
    }
  }
  if (framer.buffered > 0) {
    verdicts.push({ source, ok: false, summary: { incomplete: `${framer.buffered} bytes` } });
  }
  return verdicts;
}

/**
 * `sipsteer parse FILE…`: reads raw SIP messages (a file per datagram, or a byte stream with
 * --stream) and prints what the codec sees, or how it would answer. Exit code 1 when any
 * message is refused.
 */
export function runParseCommand(files: string[], options: ParseCommandOptions): number {
  const inputs: [string, Buffer][] =
    files.length === 0 ? [["-", readFileSync(0)]] : files.map((f) => [f, readFileSync(f)]);
  let failed = false;
  for (const [source, bytes] of inputs) {
    for (const verdict of judge(source, bytes, options.stream ?? false)) {
      failed ||= !verdict.ok;
      if (options.json) {
        console.log(JSON.stringify(verdict));
      } else {
        const fields = Object.entries(verdict.summary)
          .map(([k, v]) => `  ${k}: ${String(v)}`)
          .join("\n");
        console.log(`${verdict.source}: ${verdict.ok ? "accepted" : "refused"}\n${fields}`);
      }
    }
  }
  return failed ? 1 : 0;
}
