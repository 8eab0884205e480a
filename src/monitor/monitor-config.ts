import { BlockList, isIP } from "node:net";
import { z } from "zod";
import { loadReportSchema } from "../contracts/index.js";
import { SipUri, parseUri } from "../sip/index.js";
import { DEFAULT_DNS_ZONE } from "./dns-front.js";
import { isDnsName } from "./dns-wire.js";
import { proxyTableConfigSchema } from "./proxy-table.js";
import { selectorConfigSchema } from "./selector.js";
import { workloadConfigSchema } from "./workload.js";

/** DESIGN.md: the monitor's HTTP API on 127.0.0.1:8080 unless moved. */
export const DEFAULT_HTTP_PORT = 8080;
/** A load report is about 600 bytes; anything much larger is not one. */
export const DEFAULT_REPORT_BODY_LIMIT_BYTES = 64 * 1024;
/** Bad input: held `GET /v1/events` streams are bounded. */
export const DEFAULT_MAX_EVENT_STREAMS = 100;
/** Poll mode: GET /load this often (DESIGN.md's push interval). */
export const DEFAULT_POLL_INTERVAL_MS = 250;
/** A GET /load not answered in this time counts as a failed probe. */
export const DEFAULT_POLL_TIMEOUT_MS = 1000;
/** On-query: a report older than this is refreshed before a select is answered. */
export const DEFAULT_ON_QUERY_MAX_AGE_MS = 1000;
/** On-query: the longest a select waits for those refreshes. */
export const DEFAULT_ON_QUERY_WAIT_MS = 200;
/** Stream mode: the first reconnect waits this long, doubling up to the maximum. */
export const DEFAULT_STREAM_RETRY_MS = 100;
export const DEFAULT_STREAM_RETRY_MAX_MS = 5000;

/** DESIGN.md: every role sends only where this permits; by default everywhere, like the proxy. */
export const DEFAULT_ALLOWED_DESTINATIONS: readonly string[] = ["0.0.0.0/0", "::/0"];

/** A CIDR block (`10.0.0.0/8`, `::1/128`) or a bare IP literal (a single address). */
export function isCidr(text: string): boolean {
  const [address, bits, ...rest] = text.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  const prefix = Number(bits);
  return /^\d+$/.test(bits) && prefix >= 0 && prefix <= (family === 6 ? 128 : 32);
}

/** Collection modes a configured proxy may use (issue 5), mixable. */
export const COLLECTION_MODES = ["push", "poll", "stream", "on-query"] as const;
/** How the monitor learns a configured proxy's load (issue 5: each proxy has an adapter). */
export const PROXY_ADAPTERS = ["sipsteer", "kamailio", "options"] as const;
export type ProxyAdapter = (typeof PROXY_ADAPTERS)[number];
/** The modes of the adapters the monitor asks (kamailio, options): no push, no stream. */
const ASKED_MODES = ["poll", "on-query"] as const;

const proxyIdSchema = z.string().min(1).max(64);

const modesOf = <const M extends readonly [string, ...string[]]>(modes: M) =>
  z
    .array(z.enum(modes))
    .min(1)
    .refine((list) => new Set(list).size === list.length, "a mode is named twice");

/** A field an adapter cannot do without: "required by the kamailio adapter" when absent. */
const requiredBy =
  (adapter: ProxyAdapter, otherwise: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? `required by the ${adapter} adapter` : otherwise;

const collectionTimings = {
  pollIntervalMs: z.number().int().positive().default(DEFAULT_POLL_INTERVAL_MS),
  pollTimeoutMs: z.number().int().positive().default(DEFAULT_POLL_TIMEOUT_MS),
  onQueryMaxAgeMs: z.number().int().positive().default(DEFAULT_ON_QUERY_MAX_AGE_MS),
};

/** Where clients are sent, per transport (the load report's `uris`). */
const urisSchema = loadReportSchema.shape.uris;

/** A sipsteer proxy (the default adapter): its pushes, GET /load, GET /load/stream. */
const sipsteerProxySchema = z
  .object({
    id: proxyIdSchema,
    adapter: z.literal("sipsteer").default("sipsteer"),
    /** The proxy's HTTP base URL (GET /load, /load/stream); needed by poll, stream, on-query. */
    http: z
      .url({ protocol: /^https?$/, error: "an http(s):// URL" })
      .transform((url) => url.replace(/\/+$/, ""))
      .optional(),
    modes: modesOf(COLLECTION_MODES).default(["push"]),
    ...collectionTimings,
  })
  .superRefine((proxy, ctx) => {
    if (proxy.http === undefined && proxy.modes.some((m) => m !== "push")) {
      ctx.addIssue({
        code: "custom",
        path: ["http"],
        message: "required by poll, stream and on-query",
      });
    }
  });

/**
 * A Kamailio polled over JSON-RPC 2.0 (xhttp + jsonrpcs): `dlg.stats_active` for its calls,
 * its capacity from here, its URIs from here.
 */
const kamailioProxySchema = z.object({
  id: proxyIdSchema,
  adapter: z.literal("kamailio"),
  /** The JSON-RPC endpoint, e.g. `http://10.0.0.5:5071/RPC`. */
  rpc: z.url({
    protocol: /^https?$/,
    error: requiredBy("kamailio", "an http(s):// URL such as http://host:5071/RPC"),
  }),
  capacity: z.object(
    { calls: z.number().int().positive() },
    { error: requiredBy("kamailio", "{ calls: number }") },
  ),
  uris: z
    .object(urisSchema.shape, {
      error: requiredBy("kamailio", "its URIs per transport, e.g. { udp: sip:10.0.0.5:5060 }"),
    })
    .refine((uris) => Object.values(uris).some((u) => u !== undefined), "name at least one URI"),
  modes: modesOf(ASKED_MODES).default(["poll"]),
  ...collectionTimings,
});

/** Where OPTIONS pings go: a `sip:` URI's host, port (5060) and transport (udp or tcp). */
export interface OptionsTarget {
  readonly protocol: "udp" | "tcp";
  /** An IP literal (IPv6 without brackets) or a name resolved at each ping. */
  readonly host: string;
  readonly port: number;
}

/** The OPTIONS target a `sip` field names, or why it names none. */
export function optionsTargetOf(
  sip: string,
): { ok: true; target: OptionsTarget } | { ok: false; message: string } {
  let uri;
  try {
    uri = parseUri(sip);
  } catch {
    return { ok: false, message: "a SIP URI such as sip:10.0.0.5:5060;transport=udp" };
  }
  if (!(uri instanceof SipUri) || uri.scheme !== "sip") {
    return { ok: false, message: "a sip: URI (sips: and other schemes are not pinged)" };
  }
  const transport = uri.transport ?? "udp";
  if (transport !== "udp" && transport !== "tcp") {
    return { ok: false, message: `transport=${transport}: OPTIONS go over udp or tcp` };
  }
  return { ok: true, target: { protocol: transport, host: uri.hostname, port: uri.port ?? 5060 } };
}

/**
 * Any SIP server, watched by OPTIONS pings: health and latency from the answers, the workload
 * from `Sipsteer-Load` when the answer has one; a 503 is full load until its Retry-After.
 */
const optionsProxySchema = z.object({
  id: proxyIdSchema,
  adapter: z.literal("options"),
  /** The OPTIONS target, e.g. `sip:10.0.0.5:5060;transport=udp`. */
  sip: z.string({ error: requiredBy("options", "a SIP URI") }).superRefine((sip, ctx) => {
    const parsed = optionsTargetOf(sip);
    if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.message });
  }),
  /** Where clients are sent; by default the `sip` URI, for its transport. */
  uris: urisSchema.optional(),
  /** How many clients it holds at full load (for the correction of sends); 0: unknown. */
  capacity: z.object({ calls: z.number().int().nonnegative() }).default({ calls: 0 }),
  /** The workload of a 200 without `Sipsteer-Load` (0: taken as idle). */
  assumedWorkload: z.number().min(0).max(1).default(0),
  modes: modesOf(ASKED_MODES).default(["poll"]),
  ...collectionTimings,
});

/** A proxy known up front with how the monitor collects its load (its `adapter`). */
const collectedProxySchema = z.discriminatedUnion(
  "adapter",
  [sipsteerProxySchema, kamailioProxySchema, optionsProxySchema],
  { error: `one of ${PROXY_ADAPTERS.join(", ")}` },
);

export type SipsteerProxyConfig = z.infer<typeof sipsteerProxySchema>;
export type KamailioProxyConfig = z.infer<typeof kamailioProxySchema>;
export type OptionsProxyConfig = z.infer<typeof optionsProxySchema>;
export type CollectedProxyConfig = z.infer<typeof collectedProxySchema>;

/** A configured proxy: an id (push only) or its collection settings. */
const configuredProxySchema = z.union([proxyIdSchema, collectedProxySchema]);
export type ConfiguredProxy = z.infer<typeof configuredProxySchema>;

/** The id of a configured proxy, whichever way it was written. */
export function configuredProxyId(proxy: ConfiguredProxy): string {
  return typeof proxy === "string" ? proxy : proxy.id;
}

/** How the monitor learns a media relay's load (issue 8): rtpengine's ng `statistics`. */
export const RELAY_ADAPTERS = ["rtpengine"] as const;
export type RelayAdapter = (typeof RELAY_ADAPTERS)[number];

/** A relay's ng control address, split: an IP literal (IPv6 without brackets) and a UDP port. */
export interface NgEndpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * The ng endpoint a relay's `ng` names (`127.0.0.1:2223`, `[::1]:2223`), or why it names none.
 * Nothing is resolved: rtpengine's ng socket is reached at an IP literal.
 */
export function ngEndpointOf(
  ng: string,
): { ok: true; endpoint: NgEndpoint } | { ok: false; message: string } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(ng);
  const address = match?.[1] ?? match?.[2];
  const family = address === undefined ? 0 : isIP(address);
  if (match === null || family === 0 || (match[1] !== undefined && family !== 6)) {
    return {
      ok: false,
      message: "an IP literal and a port, such as 127.0.0.1:2223 or [::1]:2223",
    };
  }
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return { ok: false, message: `port ${match[3]}: not 1–65535` };
  return { ok: true, endpoint: { address: address!, port } };
}

/**
 * A media relay (issue 8), kept apart from the proxies: it is never a SIP destination, only
 * the answer of `GET /v1/select?kind=media`. The `rtpengine` adapter polls its ng `statistics`
 * and `ping`.
 */
const relaySchema = z.object({
  id: proxyIdSchema,
  adapter: z
    .literal("rtpengine", { error: `one of ${RELAY_ADAPTERS.join(", ")}` })
    .default("rtpengine"),
  /** rtpengine's ng control socket, `host:port` with an IP literal (`[::1]:2223` for IPv6). */
  ng: z
    .string({ error: "required: the relay's ng address, such as 127.0.0.1:2223" })
    .superRefine((ng, ctx) => {
      const parsed = ngEndpointOf(ng);
      if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.message });
    }),
  /** Sessions it holds at full load (0: no limit; the workload then reads its ports in use). */
  capacity: z.object({ sessions: z.number().int().nonnegative().default(0) }).prefault({}),
  pollIntervalMs: collectionTimings.pollIntervalMs,
  pollTimeoutMs: collectionTimings.pollTimeoutMs,
});

export type RelayConfig = z.infer<typeof relaySchema>;
export type RelayConfigInput = z.input<typeof relaySchema>;

const endpointSchema = z.object({
  address: z.string().min(1),
  /** 0: a free port chosen at start. */
  port: z.number().int().min(0).max(65535),
});

/** A listener of the SIP redirect front. */
const sipListenerSchema = endpointSchema.extend({ protocol: z.enum(["udp", "tcp"]) });

/** A listener of the DNS front. */
const dnsListenerSchema = endpointSchema.extend({ protocol: z.enum(["udp", "tcp"]) });

/** The DNS front: the zone it is authoritative for, where it listens, its NS address. */
const dnsSchema = z.object({
  /** DESIGN.md: the same name as the SIP domain and digest realm. */
  zone: z
    .string()
    .transform((zone) => zone.toLowerCase().replace(/\.$/, ""))
    .refine(isDnsName, "a DNS name such as sipsteer.test")
    .default(DEFAULT_DNS_ZONE),
  listen: z.array(dnsListenerSchema).min(1),
  /** `ns.<zone>`'s address; by default the first listener's (127.0.0.1 for a wildcard). */
  nameServer: z
    .object({
      address: z
        .string()
        .refine((address) => isIP(address) !== 0, "an IP address")
        .optional(),
    })
    .optional(),
});

const signingKeySchema = z.object({
  /** The id a push names (`keyid=` over HTTP, the first word of a UDP datagram). */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1–64 letters, digits, '.', '_' or '-'"),
  secret: z.string().min(16),
});

const monitorConfigFields = z.object({
  http: endpointSchema.default({ address: "127.0.0.1", port: DEFAULT_HTTP_PORT }),
  /** Serve the dashboard (/dashboard/) and the browser phone (/phone/) on the HTTP side. */
  web: z.boolean().default(true),
  /** Where signed UDP pushes are taken; absent: no UDP push endpoint. */
  udpPush: endpointSchema.optional(),
  /**
   * The SIP redirect front (DESIGN.md "Client query"): UDP and/or TCP listeners answering
   * INVITE with 302 to the ranked proxies; absent: no SIP front.
   */
  sip: z.object({ listen: z.array(sipListenerSchema).min(1) }).optional(),
  /**
   * The DNS front (DESIGN.md "Client query"): authoritative for `zone`, SRV/A/NAPTR to the
   * least-loaded proxies over UDP and TCP; absent: no DNS front.
   */
  dns: dnsSchema.optional(),
  /** Keys that pushed reports may be signed with (several, so that keys can be rotated). */
  keys: z
    .array(signingKeySchema)
    .default([])
    .superRefine((keys, ctx) => {
      const seen = new Set<string>();
      keys.forEach((key, i) => {
        if (seen.has(key.id)) {
          ctx.addIssue({ code: "custom", path: [i, "id"], message: `duplicate ${key.id}` });
        }
        seen.add(key.id);
      });
    }),
  /**
   * CIDR blocks the monitor may contact: a poll, stream or on-query proxy whose `http` host is
   * outside them is never contacted.
   */
  allowedDestinations: z
    .array(z.string().refine(isCidr, "a CIDR block such as 127.0.0.0/8"))
    .default([...DEFAULT_ALLOWED_DESTINATIONS]),
  /** Bearer token of the /v1/admin calls; absent: every admin call is refused. */
  adminToken: z.string().min(16).optional(),
  /**
   * Proxies known up front (stale until their first report): an id (a sipsteer proxy that
   * pushes) or an object with its `adapter`: sipsteer (default; `{ id, http, modes, … }`),
   * kamailio (`{ id, rpc, capacity, uris, … }`) or options (`{ id, sip, … }`).
   */
  proxies: z
    .array(configuredProxySchema)
    .default([])
    .superRefine((proxies, ctx) => {
      const seen = new Set<string>();
      proxies.forEach((proxy, i) => {
        const id = configuredProxyId(proxy);
        if (seen.has(id)) ctx.addIssue({ code: "custom", path: [i], message: `duplicate ${id}` });
        seen.add(id);
      });
    }),
  /**
   * Media relays (issue 8) answered to `GET /v1/select?kind=media`, never to a SIP client:
   * `{ id, adapter: rtpengine, ng: "host:port", capacity: { sessions }, pollIntervalMs,
   * pollTimeoutMs }`. Their ng hosts must be inside `allowedDestinations`.
   */
  relays: z
    .array(relaySchema)
    .default([])
    .superRefine((relays, ctx) => {
      const seen = new Set<string>();
      relays.forEach((relay, i) => {
        if (seen.has(relay.id)) {
          ctx.addIssue({ code: "custom", path: [i, "id"], message: `duplicate ${relay.id}` });
        }
        seen.add(relay.id);
      });
    }),
  /** On-query: the longest a select waits for stale reports to be refreshed. */
  onQueryWaitMs: z.number().int().min(0).max(10_000).default(DEFAULT_ON_QUERY_WAIT_MS),
  /** Stream mode's reconnect backoff: first wait, doubling up to the maximum. */
  streamRetryMs: z.number().int().positive().default(DEFAULT_STREAM_RETRY_MS),
  streamRetryMaxMs: z.number().int().positive().default(DEFAULT_STREAM_RETRY_MAX_MS),
  /** Whether a valid report from an unknown proxy adds it. */
  allowJoin: z.boolean().default(true),
  /** The rest of the ProxyTable's settings (clock window, staleness, probes, size). */
  table: proxyTableConfigSchema.omit({ proxies: true, allowJoin: true }).prefault({}),
  /** Selection policy and its correction. */
  select: selectorConfigSchema.prefault({}),
  /** The workload formula. */
  workload: workloadConfigSchema.prefault({}),
  reportBodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(DEFAULT_REPORT_BODY_LIMIT_BYTES),
  maxEventStreams: z.number().int().positive().default(DEFAULT_MAX_EVENT_STREAMS),
});

export const monitorConfigSchema = monitorConfigFields.superRefine((config, ctx) => {
  // A relay is contacted from start-up on and by nothing else: one outside the list is a
  // mistake in the config (unlike a proxy, which may push or be allowed later).
  config.relays.forEach((relay, i) => {
    const parsed = ngEndpointOf(relay.ng);
    if (parsed.ok && !hostAllowed(parsed.endpoint.address, config.allowedDestinations)) {
      ctx.addIssue({
        code: "custom",
        path: ["relays", i, "ng"],
        message: `${parsed.endpoint.address} is outside allowedDestinations`,
      });
    }
  });
});

export type MonitorConfig = z.infer<typeof monitorConfigSchema>;
export type MonitorConfigInput = z.input<typeof monitorConfigSchema>;

/**
 * Whether the monitor may contact `http` (a proxy's base URL) under `allowed` (valid CIDRs).
 * Nothing is resolved: the host must be an IP literal inside a block. A host name passes only
 * when the list holds both 0.0.0.0/0 and ::/0, where any address it resolves to is allowed.
 */
export function destinationAllowed(http: string, allowed: readonly string[]): boolean {
  return hostAllowed(new URL(http).hostname.replace(/^\[(.*)\]$/, "$1"), allowed);
}

/** As destinationAllowed, for a bare host (an IP literal, IPv6 without brackets, or a name). */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const family = isIP(host);
  if (family === 0) return allowed.includes("0.0.0.0/0") && allowed.includes("::/0");
  const list = new BlockList();
  for (const cidr of allowed) {
    const [address, bits] = cidr.split("/") as [string, string | undefined];
    const type = isIP(address) === 6 ? "ipv6" : "ipv4";
    list.addSubnet(address, bits === undefined ? (type === "ipv6" ? 128 : 32) : Number(bits), type);
  }
  return list.check(host, family === 6 ? "ipv6" : "ipv4");
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * A union (a proxy written as an id or an object) fails as a whole; name the field inside the
 * option that got furthest instead, so that `proxies.0.pollIntervalMs` is what the user reads.
 */
function innermostIssue(issue: z.core.$ZodIssue): { path: PropertyKey[]; message: string } {
  if (issue.code !== "invalid_union" || issue.errors.length === 0) {
    return { path: issue.path, message: issue.message };
  }
  const deepest = issue.errors
    .map((issues) => issues[0])
    .filter((inner) => inner !== undefined)
    .reduce((a, b) => (b.path.length > a.path.length ? b : a));
  const inner = innermostIssue(deepest);
  return { path: [...issue.path, ...inner.path], message: inner.message };
}

/** Validates, applies defaults and freezes; a bad field throws `monitor.<path>: message`. */
export function parseMonitorConfig(input: unknown): Readonly<MonitorConfig> {
  const result = monitorConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const { path, message } = innermostIssue(result.error.issues[0]!);
    throw new RangeError(`${["monitor", ...path.map(String)].join(".")}: ${message}`);
  }
  return deepFreeze(result.data);
}

/**
 * One proxy as the config's `proxies` list takes it (an id, or an object with its adapter and
 * collection), for an admin add at run time; a bad field throws `<field>.<path>: message`.
 */
export function parseConfiguredProxy(input: unknown, field = "proxy"): ConfiguredProxy {
  const result = configuredProxySchema.safeParse(input);
  if (!result.success) {
    const { path, message } = innermostIssue(result.error.issues[0]!);
    throw new RangeError(`${[field, ...path.map(String)].join(".")}: ${message}`);
  }
  return deepFreeze(result.data);
}
