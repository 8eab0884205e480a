import { randomBytes } from "node:crypto";
import type { SipParseError } from "../errors.js";
import { headerKey } from "./header-names.js";

const COPIED = ["via", "from", "to", "call-id", "cseq"] as const;

/**
 * The response to send for a request the codec refused (RFC 3261 §8.2.6.2: Via, From, To,
 * Call-ID and CSeq copied, a To tag added), read leniently from the raw bytes because the
 * message itself did not parse. Undefined when the error asks for a silent drop, the bytes
 * are not a request, or the header fields a response needs cannot be found.
 */
export function buildParseErrorResponse(error: SipParseError, raw: Buffer): Buffer | undefined {
  if (error.status === undefined) return undefined;
  const text = raw.toString("latin1", 0, Math.min(raw.length, 65_535));
  const headEnd = text.indexOf("\r\n\r\n");
  const lines = (headEnd < 0 ? text : text.slice(0, headEnd)).split("\r\n");
  if (lines.length === 0 || lines[0]!.startsWith("SIP/")) return undefined;
  const found = new Map<string, string[]>();
  // Unfold, then take each copied field's lines as written.
  const unfolded: string[] = [];
  for (const line of lines.slice(1)) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && unfolded.length > 0) {
      unfolded[unfolded.length - 1] += " " + line.trim();
    } else {
      unfolded.push(line);
    }
  }
  for (const line of unfolded) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const key = headerKey(line.slice(0, colon).trim());
    if (!(COPIED as readonly string[]).includes(key)) continue;
    const list = found.get(key) ?? [];
    list.push(line.slice(colon + 1).trim());
    found.set(key, list);
  }
  // Via and CSeq are what a client matches a response by (RFC 3261 §17.1.3); the rest is
  // copied when present (RFC 4475 §3.3.1: a request missing From or To still deserves a 400).
  if (found.get("via") === undefined || found.get("cseq") === undefined) return undefined;
  const reason = error.reason.replace(/[\r\n]/g, " ");
  const out = [`SIP/2.0 ${error.status} ${reason}`];
  for (const via of found.get("via")!) out.push(`Via: ${via}`);
  const from = found.get("from")?.[0];
  if (from !== undefined) out.push(`From: ${from}`);
  let to = found.get("to")?.[0];
  if (to !== undefined) {
    if (!/;\s*tag\s*=/i.test(to)) to += `;tag=${randomBytes(6).toString("hex")}`;
    out.push(`To: ${to}`);
  }
  const callId = found.get("call-id")?.[0];
  if (callId !== undefined) out.push(`Call-ID: ${callId}`);
  out.push(`CSeq: ${found.get("cseq")![0]!}`);
  out.push("Content-Length: 0", "", "");
  return Buffer.from(out.join("\r\n"), "latin1");
}
