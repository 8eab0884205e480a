// fast-check generators of SIP messages for the property tests.
import fc from "fast-check";

const tokenChar = fc.constantFrom(
  ..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~".split(""),
);
const alnum = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789".split(""));

export const token = fc.string({ unit: tokenChar, minLength: 1, maxLength: 12 });
const label = fc
  .tuple(
    fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz".split("")),
    fc.string({ unit: alnum, maxLength: 8 }),
  )
  .map(([first, rest]) => first + rest);
export const hostname = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join("."));
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join("."));
export const host = fc.oneof(hostname, ipv4, fc.constant("[2001:db8::1]"));
const user = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'()&=+$,".split("")),
  minLength: 1,
  maxLength: 10,
});
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const uriParam = fc.tuple(
  fc.string({ unit: alnum, minLength: 1, maxLength: 6 }),
  fc.option(fc.string({ unit: alnum, minLength: 1, maxLength: 6 }), { nil: undefined }),
);

export const sipUriText = fc
  .record({
    scheme: fc.constantFrom("sip", "sips"),
    user: fc.option(user, { nil: undefined }),
    host,
    port,
    params: fc.array(uriParam, { maxLength: 3 }),
  })
  .map(
    (u) =>
      `${u.scheme}:${u.user === undefined ? "" : `${u.user}@`}${u.host}${u.port === undefined ? "" : `:${u.port}`}` +
      u.params.map(([n, v]) => (v === undefined ? `;${n}` : `;${n}=${v}`)).join(""),
  );

const displayName = fc.option(
  fc.oneof(
    fc.array(token, { minLength: 1, maxLength: 3 }).map((t) => t.join(" ")),
    fc
      .string({ maxLength: 12, unit: fc.constantFrom(...'abc XYZ,;:<>@é"\\'.split("")) })
      .map((s) => `"${s.replace(/["\\]/g, "\\$&")}"`),
  ),
  { nil: undefined },
);

export const nameAddrText = fc
  .tuple(displayName, sipUriText, fc.option(token, { nil: undefined }))
  .map(
    ([name, uri, tag]) =>
      `${name === undefined ? "" : `${name} `}<${uri}>${tag === undefined ? "" : `;tag=${tag}`}`,
  );

const headerValueChar = fc.constantFrom(
  ...'abcdefghijklmnopqrstuvwxyz ABC,;:<>"=/@.-_0123456789\t'.split(""),
);
const extensionHeader = fc.tuple(
  token.map((t) => `X-${t}`),
  fc.string({ unit: headerValueChar, maxLength: 40 }).map((v) => v.trim()),
);

export interface GeneratedMessage {
  readonly bytes: Buffer;
  readonly callId: string;
  readonly extensions: readonly (readonly [string, string])[];
  readonly body: Buffer;
}

const METHODS = ["INVITE", "REGISTER", "OPTIONS", "BYE", "MESSAGE", "SUBSCRIBE", "NOTIFY"];

/** Well-formed requests with random URIs, names, extension headers and bodies. */
export const requestMessage: fc.Arbitrary<GeneratedMessage> = fc
  .record({
    method: fc.constantFrom(...METHODS),
    ruri: sipUriText,
    viaHost: host,
    branch: token,
    from: nameAddrText,
    fromTag: token,
    to: nameAddrText,
    callId: fc
      .tuple(token, fc.option(hostname, { nil: undefined }))
      .map(([a, b]) => (b === undefined ? a : `${a}@${b}`)),
    cseq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    maxForwards: fc.integer({ min: 0, max: 255 }),
    extensions: fc.array(extensionHeader, { maxLength: 5 }),
    body: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    compact: fc.boolean(),
  })
  .map((m) => {
    const fromValue = m.from.includes(";tag=") ? m.from : `${m.from};tag=${m.fromTag}`;
    const lines = [
      `${m.method} ${m.ruri} SIP/2.0`,
      `${m.compact ? "v" : "Via"}: SIP/2.0/UDP ${m.viaHost};branch=z9hG4bK${m.branch}`,
      `Max-Forwards: ${m.maxForwards}`,
      `${m.compact ? "f" : "From"}: ${fromValue}`,
      `${m.compact ? "t" : "To"}: ${m.to}`,
      `${m.compact ? "i" : "Call-ID"}: ${m.callId}`,
      `CSeq: ${m.cseq} ${m.method}`,
      ...m.extensions.map(([n, v]) => `${n}: ${v}`),
      `${m.compact ? "l" : "Content-Length"}: ${m.body.length}`,
      "",
      "",
    ];
    const head = Buffer.from(lines.join("\r\n"), "utf8");
    return {
      bytes: Buffer.concat([head, m.body]),
      callId: m.callId,
      extensions: m.extensions,
      body: m.body,
    };
  });

/** Ways to damage a message: flip, insert, delete, duplicate or truncate bytes. */
export const mutation = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 16 }),
  }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 40 }),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("special" as const),
    at: fc.nat(),
    text: fc.constantFrom(
      "\r\n",
      "\r",
      "\n",
      " ",
      "\t",
      ":",
      ";",
      ",",
      '"',
      "<",
      ">",
      "%",
      "\\",
      "\x00",
      "\r\n ",
      "SIP/2.0",
      "99999999999",
    ),
  }),
);

export type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

export function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : m.at % (out.length + 1);
    switch (m.kind) {
      case "set":
        if (at < out.length) out[at] = m.byte;
        break;
      case "insert":
        out = Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
        break;
      case "delete":
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.length)]);
        break;
      case "repeat":
        out = Buffer.concat([out.subarray(0, at + m.length), out.subarray(at)]);
        break;
      case "truncate":
        out = out.subarray(0, at);
        break;
      case "special":
        out = Buffer.concat([out.subarray(0, at), Buffer.from(m.text, "latin1"), out.subarray(at)]);
        break;
    }
  }
  return out;
}
