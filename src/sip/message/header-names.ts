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
