/**
 * Header field names: the compact forms of RFC 3261 §7.3.3 (and the extensions that define
 * one), and the spelling we use when we write a header ourselves.
 */

const COMPACT_FORMS: Record<string, string> = {
  a: "accept-contact",
  b: "referred-by",
  c: "content-type",
  d: "request-disposition",
  e: "content-encoding",
  f: "from",
  i: "call-id",
  j: "reject-contact",
  k: "supported",
  l: "content-length",
  m: "contact",
  n: "identity-info",
  o: "event",
  r: "refer-to",
  s: "subject",
  t: "to",
  u: "allow-events",
  v: "via",
  x: "session-expires",
  y: "identity",
};

const COMPACT_BY_CODE: (string | undefined)[] = [];
for (const [letter, key] of Object.entries(COMPACT_FORMS))
  COMPACT_BY_CODE[letter.charCodeAt(0)] = key;

const DISPLAY_NAMES: Record<string, string> = {
  "call-id": "Call-ID",
  cseq: "CSeq",
  "www-authenticate": "WWW-Authenticate",
  "min-se": "Min-SE",
  rseq: "RSeq",
  rack: "RAck",
  "sip-etag": "SIP-ETag",
  "sip-if-match": "SIP-If-Match",
  "mime-version": "MIME-Version",
  "p-asserted-identity": "P-Asserted-Identity",
  "p-preferred-identity": "P-Preferred-Identity",
};

/** Keys recognised in place by {@link headerKeyAt}, by length. */
const KEYS_BY_LENGTH: string[][] = [];
for (const key of [
  "to",
  "via",
  "from",
  "cseq",
  "path",
  "date",
  "route",
  "allow",
  "event",
  "accept",
  "server",
  "reason",
  "call-id",
  "contact",
  "expires",
  "require",
  "subject",
  "warning",
  "refer-to",
  "supported",
  "user-agent",
  "min-expires",
  "retry-after",
  "unsupported",
  "max-forwards",
  "content-type",
  "record-route",
  "authorization",
  "proxy-require",
  "content-length",
  "session-expires",
  "www-authenticate",
  "content-encoding",
  "proxy-authenticate",
  "proxy-authorization",
  "authentication-info",
]) {
  (KEYS_BY_LENGTH[key.length] ??= []).push(key);
}

function equalsLowerAt(s: string, start: number, key: string): boolean {
  // "| 0x20" lower-cases ASCII letters and keeps "-" and digits; the only other octet it
  // maps onto a key char is CR (onto "-"), and the line scanner has refused bare CRs.
  for (let i = 0; i < key.length; i++) {
    if ((s.charCodeAt(start + i) | 0x20) !== key.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The canonical key of the header name in `s[start, end)` when it is a common one, without
 * slicing or lower-casing it (this runs for every header line); undefined otherwise.
 */
export function headerKeyAt(s: string, start: number, end: number): string | undefined {
  const length = end - start;
  if (length === 1) {
    let c = s.charCodeAt(start);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    return COMPACT_BY_CODE[c];
  }
  const candidates = KEYS_BY_LENGTH[length];
  if (candidates === undefined) return undefined;
  for (const key of candidates) if (equalsLowerAt(s, start, key)) return key;
  return undefined;
}

// Names seen on the wire repeat endlessly (Via, From, …); remembering their canonical form
// saves a lower-casing per header. Bounded so that random names cannot grow it.
const seen = new Map<string, string>();
const SEEN_LIMIT = 512;

/** The canonical key of a header name: lower-case, compact forms expanded. */
export function headerKey(name: string): string {
  const known = seen.get(name);
  if (known !== undefined) return known;
  const lower = name.toLowerCase();
  const key = lower.length === 1 ? (COMPACT_FORMS[lower] ?? lower) : lower;
  if (seen.size < SEEN_LIMIT) seen.set(name, key);
  return key;
}

/** How we spell a header we write: "Call-ID", "CSeq", "Max-Forwards", "X-Custom". */
export function headerDisplayName(name: string): string {
  const key = headerKey(name);
  const special = DISPLAY_NAMES[key];
  if (special !== undefined) return special;
  return key.replace(/(^|-)([a-z])/g, (_m, dash: string, ch: string) => dash + ch.toUpperCase());
}
