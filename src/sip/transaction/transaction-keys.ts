import { BRANCH_MAGIC_COOKIE, type SipMessage, type SipRequest } from "../message/index.js";
import { randomToken } from "../random-token.js";

/**
 * A copy of `s` that holds no reference to the text it was cut from. V8 keeps the whole
 * parent of a sliced string alive, so a key built from a message's branch and host would
 * pin the message's text for as long as the transaction lives (64*T1 over UDP): slicing a
 * fresh concatenation flattens it into a small string of its own.
 */
function detach(s: string): string {
  return (" " + s).slice(1);
}

/** A new branch: the magic cookie and 96 random bits (RFC 3261 §8.1.1.7). */
export function newBranch(): string {
  return BRANCH_MAGIC_COOKIE + randomToken(12);
}

/**
 * The client transaction a response belongs to (RFC 3261 §17.1.3): the branch of its top
 * Via and the method of its CSeq (a CANCEL shares its INVITE's branch).
 */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/** The client key of a response, or undefined when it has no branch. */
export function clientKeyOfResponse(response: SipMessage): string | undefined {
  const branch = response.topVia?.branch;
  return branch === undefined ? undefined : clientKey(branch, response.cseq.method);
}

/**
 * The server transaction a request belongs to (RFC 3261 §17.2.3). With the magic cookie:
 * branch, sent-by and method, an ACK matching its INVITE. Without (RFC 2543 peers): the
 * Request-URI, From tag, Call-ID, CSeq and top Via. The To tag is left out, so that the ACK
 * for a non-2xx final (which carries our tag) finds its INVITE.
 */
export function serverKey(request: SipRequest): string {
  const via = request.topVia!;
  const method = request.method === "ACK" ? "INVITE" : request.method;
  const branch = via.branch;
  if (branch !== undefined && branch.startsWith(BRANCH_MAGIC_COOKIE)) {
    return detach(`${branch}|${via.host.toLowerCase()}:${via.port ?? ""}|${method}`);
  }
  const cseq = request.cseq;
  return detach(
    [
      "2543",
      request.uri.toString(),
      request.from.tag ?? "",
      request.callId,
      cseq.seq,
      method,
      `${via.host}:${via.port ?? ""}`,
      branch ?? "",
    ].join("|"),
  );
}

/**
 * The INVITE server transaction a CANCEL would match (RFC 3261 §9.2): the same key with the
 * method INVITE.
 */
export function inviteKeyForCancel(cancel: SipRequest): string {
  const via = cancel.topVia!;
  const branch = via.branch;
  if (branch !== undefined && branch.startsWith(BRANCH_MAGIC_COOKIE)) {
    return `${branch}|${via.host.toLowerCase()}:${via.port ?? ""}|INVITE`;
  }
  return [
    "2543",
    cancel.uri.toString(),
    cancel.from.tag ?? "",
    cancel.callId,
    cancel.cseq.seq,
    "INVITE",
    `${via.host}:${via.port ?? ""}`,
    branch ?? "",
  ].join("|");
}
