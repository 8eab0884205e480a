// npm run bench:codec — how fast the SIP codec parses and serializes a typical INVITE, against
// the npm packages `sip` (the fastest JavaScript SIP parser we know), JsSIP and SIP.js, all
// measured in this run on one JavaScript thread. Rounds are interleaved so that noise on this
// shared machine hits every contender alike; each figure is the median of its rounds.
import { createRequire } from "node:module";
import { Parser as SipJsParser } from "sip.js/lib/core/messages/parser.js";
import { parseDatagram, type SipRequest } from "../src/sip/index.js";
import { INVITE } from "./invite.js";

const require = createRequire(import.meta.url);

interface SipNpmMessage {
  uri: string;
  headers: Record<string, unknown> & {
    via: { params: Record<string, string> }[];
    from: { params: Record<string, string> };
    to: { params: Record<string, string> };
    "call-id": string;
    cseq: { seq: number; method: string };
    "max-forwards": string | number;
    contact?: unknown[];
    route?: unknown[];
    "record-route"?: unknown[];
  };
}
const sipNpm = require("sip") as {
  parse(data: Buffer | string): SipNpmMessage;
  stringify(message: SipNpmMessage): string;
};
interface JsSipIncoming {
  via_branch: string;
  from_tag: string;
  to_tag: string;
  call_id: string;
  cseq: number;
  ruri: unknown;
  getHeader(name: string): string;
  parseHeader(name: string): unknown;
}
const jssipParser = require("jssip/lib/Parser") as {
  parseMessage(data: string, ua: unknown): JsSipIncoming;
};

let sink = 0; // keeps results alive so the JIT cannot drop the work

/**
 * Our codec: parse, read every header a proxy reads (RFC 3261 §16.3-16.6: Request-URI,
 * Max-Forwards, Via, Proxy-Require, Route, Record-Route, and the From/To tags, Call-ID and
 * CSeq that identify transactions and dialogs), serialize.
 */
function sipsteerParseSerialize(): void {
  const m = parseDatagram(INVITE) as SipRequest;
  sink += m.uri.toString().length;
  const via = m.topVia!;
  sink += via.branch!.length + (via.rport === null ? 1 : 0);
  sink += m.maxForwards!;
  sink += m.routes.length + m.recordRoutes.length + m.proxyRequire.length;
  sink += m.from.tag!.length + (m.to.tag === undefined ? 1 : 0);
  sink += m.callId.length + m.cseq.seq + m.contentLength!;
  sink += m.toBuffer().length;
}

let branch = 0;
/** A proxy's forwarding edit: parse, push a Via, decrement Max-Forwards, add Record-Route. */
function sipsteerForwardEdit(): void {
  const m = parseDatagram(INVITE) as SipRequest;
  m.prependHeader("Via", `SIP/2.0/UDP 127.0.0.11:5060;branch=z9hG4bKsst${branch++}`);
  m.setHeader("Max-Forwards", String(m.maxForwards! - 1));
  m.prependHeader("Record-Route", "<sip:127.0.0.11;lr>");
  sink += m.toBuffer().length;
}

function sipNpmParseSerialize(): void {
  const m = sipNpm.parse(INVITE);
  const h = m.headers;
  sink += m.uri.length + h.via[0]!.params.branch!.length + Number(h["max-forwards"]);
  sink += (h.route?.length ?? 0) + (h["record-route"]?.length ?? 0);
  sink += h.from.params.tag!.length + (h.to.params.tag === undefined ? 1 : 0);
  sink += h["call-id"].length + h.cseq.seq;
  sink += sipNpm.stringify(m).length;
}

function sipNpmForwardEdit(): void {
  const m = sipNpm.parse(INVITE);
  const h = m.headers;
  h.via.unshift({
    version: "2.0",
    protocol: "UDP",
    host: "127.0.0.11",
    port: 5060,
    params: { branch: `z9hG4bKsst${branch++}` },
  } as never);
  h["max-forwards"] = Number(h["max-forwards"]) - 1;
  h["record-route"] = [{ uri: "sip:127.0.0.11;lr", params: {} }, ...(h["record-route"] ?? [])];
  sink += sipNpm.stringify(m).length;
}

function jssipParse(): void {
  const m = jssipParser.parseMessage(INVITE.toString("utf8"), null);
  sink += m.via_branch.length + m.from_tag.length + m.call_id.length + m.cseq;
  sink += Number(m.getHeader("max-forwards")) + (m.to_tag === undefined ? 1 : 0);
  sink += m.getHeader("route") === undefined ? 0 : 1;
}

const quietLogger = {
  error: () => undefined,
  warn: () => undefined,
  log: () => undefined,
  debug: () => undefined,
};
function sipJsParse(): void {
  const m = SipJsParser.parseMessage(INVITE.toString("utf8"), quietLogger as never)!;
  sink += m.callId.length + m.cseq + m.fromTag.length + (m.toTag === undefined ? 1 : 0);
  sink += Number(m.getHeader("max-forwards"));
  sink += m.getHeader("route") === undefined ? 0 : 1;
}

interface Contender {
  key: string;
  label: string;
  work: string;
  fn: () => void;
  rates: number[];
}

const contenders: Contender[] = [
  {
    key: "invite_parse_serialize_per_s",
    label: "sipsteer",
    work: "parse + read proxy headers + serialize",
    fn: sipsteerParseSerialize,
    rates: [],
  },
  {
    key: "sip_npm_parse_serialize_per_s",
    label: "sip (npm)",
    work: "parse + read proxy headers + stringify",
    fn: sipNpmParseSerialize,
    rates: [],
  },
  {
    key: "jssip_parse_per_s",
    label: "JsSIP",
    work: "parse + read proxy headers (no serializer)",
    fn: jssipParse,
    rates: [],
  },
  {
    key: "sipjs_parse_per_s",
    label: "SIP.js",
    work: "parse + read proxy headers (no serializer)",
    fn: sipJsParse,
    rates: [],
  },
  {
    key: "forward_edit_per_s",
    label: "sipsteer",
    work: "forward edit: parse, Via, Max-Forwards, Record-Route, serialize",
    fn: sipsteerForwardEdit,
    rates: [],
  },
  {
    key: "sip_npm_forward_edit_per_s",
    label: "sip (npm)",
    work: "forward edit, same steps",
    fn: sipNpmForwardEdit,
    rates: [],
  },
];

const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function runFor(fn: () => void, ms: number): number {
  const deadline = process.hrtime.bigint() + BigInt(ms) * 1_000_000n;
  const started = process.hrtime.bigint();
  let ops = 0;
  let now = started;
  while (now < deadline) {
    for (let i = 0; i < 500; i++) fn();
    ops += 500;
    now = process.hrtime.bigint();
  }
  return ops / (Number(now - started) / 1e9);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

// Warm-up round (JIT), then interleaved measured rounds.
for (const c of contenders) runFor(c.fn, ROUND_MS / 2);
for (let round = 0; round < ROUNDS; round++) {
  for (const c of contenders) c.rates.push(runFor(c.fn, ROUND_MS));
}

const results: Record<string, number> = { message_bytes: INVITE.length };
for (const c of contenders) results[c.key] = Math.round(median(c.rates));
results.ratio_vs_sip_npm =
  Math.round(
    (results.invite_parse_serialize_per_s! / results.sip_npm_parse_serialize_per_s!) * 100,
  ) / 100;
results.forward_ratio_vs_sip_npm =
  Math.round((results.forward_edit_per_s! / results.sip_npm_forward_edit_per_s!) * 100) / 100;

const rows = contenders.map((c) => [
  c.label,
  c.work,
  results[c.key]!.toLocaleString("en-US"),
  `${(1e6 / results[c.key]!).toFixed(2)} µs`,
]);
const header = ["codec", "work per message", "messages/s", "per message"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
console.log(
  `INVITE of ${INVITE.length} bytes; median of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms\n` +
    "An unchanged message serializes to its received bytes without a copy; the forward edit\n" +
    "rows build new bytes. JsSIP and SIP.js have no serializer (they resend the text).\n",
);
console.log(line(header));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
console.log(
  `\nsipsteer vs sip (npm): ${results.ratio_vs_sip_npm}x parse+serialize, ` +
    `${results.forward_ratio_vs_sip_npm}x forward edit   (goal: ≥ 150,000/s and ≥ 2x)`,
);
if (sink === 42) console.log(""); // never true; reads the sink
console.log(JSON.stringify(results));
