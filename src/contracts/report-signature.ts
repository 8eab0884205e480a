import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";

/**
 * How pushed load reports are signed (DESIGN.md): HMAC-SHA256 over the exact body bytes with
 * a shared key named by an id. Over HTTP in the header
 * `Sipsteer-Signature: keyid=<id>, sig=<hex>`; over UDP as the datagram
 * `<keyid> <hex>\n<body>`.
 */
export const SIGNATURE_HEADER = "sipsteer-signature";

export interface SigningKey {
  readonly id: string;
  readonly secret: string;
}

export function signatureOf(body: Buffer, secret: string): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/** The HTTP header value for `body`. */
export function signatureHeader(body: Buffer, key: SigningKey): string {
  return `keyid=${key.id}, sig=${signatureOf(body, key.secret)}`;
}

/** Reads `keyid=…, sig=…`; undefined when it is not that. */
export function parseSignatureHeader(value: string): { keyId: string; sig: string } | undefined {
  const m = /^\s*keyid=([A-Za-z0-9._-]{1,64})\s*,\s*sig=([0-9a-f]{64})\s*$/.exec(value);
  return m === null ? undefined : { keyId: m[1]!, sig: m[2]! };
}

/** The UDP datagram for `body`. */
export function signedDatagram(body: Buffer, key: SigningKey): Buffer {
  return Buffer.concat([Buffer.from(`${key.id} ${signatureOf(body, key.secret)}\n`), body]);
}

/** Splits a signed datagram; undefined when it is not one. */
export function parseSignedDatagram(
  datagram: Buffer,
): { keyId: string; sig: string; body: Buffer } | undefined {
  const nl = datagram.indexOf(0x0a);
  if (nl < 0 || nl > 200) return undefined;
  const m = /^([A-Za-z0-9._-]{1,64}) ([0-9a-f]{64})$/.exec(datagram.toString("latin1", 0, nl));
  return m === null ? undefined : { keyId: m[1]!, sig: m[2]!, body: datagram.subarray(nl + 1) };
}

/**
 * A key's secret made once into a KeyObject, for {@link verifySignature}: HMAC with a string
 * secret prepares the key anew on every call.
 */
export function signingSecret(secret: string): KeyObject {
  return createSecretKey(Buffer.from(secret, "utf8"));
}

/**
 * Constant-time check of `sig` (64 lowercase hex digits, as the header and the datagram carry
 * it) against the body's HMAC under `secret` (a string, or the KeyObject of
 * {@link signingSecret}: the same key, cheaper to use).
 */
export function verifySignature(body: Buffer, sig: string, secret: string | KeyObject): boolean {
  // The hex digests are compared as bytes: cheaper than decoding both from hex, and as exact.
  const expected = Buffer.from(createHmac("sha256", secret).update(body).digest("hex"), "latin1");
  const given = Buffer.from(sig, "latin1");
  return given.length === expected.length && timingSafeEqual(given, expected);
}
