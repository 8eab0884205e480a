import { z } from "zod";
import { listenerSchema, transactionOptionsSchema, transportOptionsSchema } from "../sip/index.js";

/** RFC 3261 §10.2.1.1: a registration without an expiry lasts an hour. */
export const DEFAULT_EXPIRES_S = 3600;
/** Shortest registration we accept; below it, 423 Interval Too Brief (RFC 3261 §10.3 step 7). */
export const DEFAULT_MIN_EXPIRES_S = 60;
export const DEFAULT_MAX_EXPIRES_S = 7200;
/** How often the load report goes out (DESIGN.md). */
export const DEFAULT_REPORT_INTERVAL_MS = 250;
/** A confirmed dialog with no in-dialog traffic for this long is no longer counted. */
export const DEFAULT_DIALOG_SAFETY_TIMEOUT_MS = 4 * 3_600_000;
/** RFC 3261 §16.6 step 11: Timer C, for INVITEs the proxy forwards. */
export const DEFAULT_TIMER_C_MS = 180_000;
/** SIGTERM waits this long for dialogs to end before stopping. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 60_000;

const member = z.object({
  /** Its proxy id ("p2"), or "gateway". */
  id: z.string().min(1),
  /** SIP URI that reaches it ("sip:127.0.0.12:5060"). */
  uri: z.string().min(1),
  /** Addresses its requests come from; by default the host of `uri`. */
  addresses: z.array(z.string().min(1)).optional(),
});

/** A relay's ng control endpoint: `127.0.0.1:2223`, `[::1]:2223`. */
const ngEndpoint = z
  .string()
  .regex(
    /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/,
    "an IP literal and port, e.g. 127.0.0.1:2223",
  );

/** Per attempt, an ng request to a relay (three attempts before the next relay). */
export const DEFAULT_RELAY_TIMEOUT_MS = 500;
/** A relay that failed is not tried again for new calls for this long. */
export const DEFAULT_RELAY_HOLD_OFF_MS = 5_000;

const pushTarget = z
  .string()
  .regex(/^(https?:\/\/|udp:\/\/)/, "push targets are http(s)://… or udp://host:port");

export const proxyConfigSchema = z.object({
  /**
   * Processes to run (node:cluster), "auto" for one per core. With more than one, they share
   * the UDP sockets, the first holds the stream listeners, and a primary serves the HTTP API.
   */
  workers: z.union([z.number().int().min(1).max(64), z.literal("auto")]).default(1),
  /**
   * With several workers, each also has a UDP port of its own beside each UDP listener (its
   * Via and Record-Route name it, so a dialog stays with one worker): worker k of N uses
   * workerPortBase + i*N + k for the i-th UDP listener. Absent: free ports chosen at start.
   */
  workerPortBase: z.number().int().min(1).max(65535).optional(),
  /** This proxy's id in the fleet and in its load reports. */
  id: z.string().min(1).max(64),
  /** Domains served (and digest realms): "sipsteer.test". */
  domains: z.array(z.string().min(1)).min(1),
  listen: z.array(listenerSchema).min(1),
  /** CIDR blocks the proxy may send to (DESIGN.md). */
  allowedDestinations: z.array(z.string().min(1)).default(["0.0.0.0/0", "::/0"]),
  /** Connection limits, timeouts, codec bounds and TLS client checks of the SIP transport. */
  transport: transportOptionsSchema
    .omit({ listen: true, allowedDestinations: true })
    .partial()
    .default({}),
  /** Other proxies and the gateway: their Route and Path are followed, their requests trusted. */
  fleet: z.array(member).default([]),
  /** Domains we forward to though we do not serve them (else: 403, not an open relay). */
  relayDomains: z.array(z.string().min(1)).default([]),
  auth: z
    .object({
      enabled: z.boolean().default(true),
      /** The credentials file (user:realm:ha1-md5:ha1-sha256 per line). */
      credentialsFile: z.string().min(1).optional(),
      nonceTtlMs: z.number().int().positive().default(300_000),
      /**
       * Challenges offered, most preferred first (RFC 8760). MD5 leads by default: many phones
       * (and SIPp) answer only the first challenge and know only MD5; put SHA-256 first, or
       * alone, where every client speaks it.
       */
      algorithms: z
        .array(z.enum(["MD5", "SHA-256"]))
        .min(1)
        .default(["MD5", "SHA-256"]),
      /** Refuse credentials whose digest-uri is not the Request-URI (see DigestServer). */
      checkDigestUri: z.boolean().default(false),
      /** Failed attempts (per source address, or per user) in `windowMs` before slowing down. */
      slowAfter: z.number().int().positive().default(5),
      /** … and before refusing with 403 for `banMs`. */
      banAfter: z.number().int().positive().default(20),
      windowMs: z.number().int().positive().default(60_000),
      banMs: z.number().int().positive().default(300_000),
    })
    .default({
      enabled: true,
      nonceTtlMs: 300_000,
      algorithms: ["MD5", "SHA-256"],
      checkDigestUri: false,
      slowAfter: 5,
      banAfter: 20,
      windowMs: 60_000,
      banMs: 300_000,
    }),
  registrar: z
    .object({
      defaultExpires: z.number().int().positive().default(DEFAULT_EXPIRES_S),
      minExpires: z.number().int().positive().default(DEFAULT_MIN_EXPIRES_S),
      maxExpires: z.number().int().positive().default(DEFAULT_MAX_EXPIRES_S),
    })
    .default({
      defaultExpires: DEFAULT_EXPIRES_S,
      minExpires: DEFAULT_MIN_EXPIRES_S,
      maxExpires: DEFAULT_MAX_EXPIRES_S,
    }),
  store: z
    .discriminatedUnion("kind", [
      z.object({ kind: z.literal("sqlite"), file: z.string().min(1) }),
      z.object({
        kind: z.literal("redis"),
        url: z.string().min(1),
        prefix: z.string().default("sipsteer:"),
      }),
    ])
    .default({ kind: "sqlite", file: ":memory:" }),
  timers: transactionOptionsSchema.default({
    t1Ms: 500,
    t2Ms: 4000,
    t4Ms: 5000,
    tryingDelayMs: 200,
  }),
  timerCMs: z.number().int().positive().default(DEFAULT_TIMER_C_MS),
  dialogSafetyTimeoutMs: z.number().int().positive().default(DEFAULT_DIALOG_SAFETY_TIMEOUT_MS),
  /** 0: no limit of that kind (DESIGN.md workload). */
  capacity: z
    .object({
      calls: z.number().int().nonnegative().default(0),
      media: z.number().int().nonnegative().default(0),
    })
    .default({ calls: 0, media: 0 }),
  http: z
    .object({ address: z.string().min(1), port: z.number().int().min(0).max(65535) })
    .default({ address: "127.0.0.1", port: 9060 }),
  report: z
    .object({
      intervalMs: z.number().int().positive().default(DEFAULT_REPORT_INTERVAL_MS),
      push: z.array(pushTarget).default([]),
      /** Shared HMAC key for pushed reports. */
      key: z.object({ id: z.string().min(1), secret: z.string().min(16) }).optional(),
    })
    .default({ intervalMs: DEFAULT_REPORT_INTERVAL_MS, push: [] }),
  /**
   * The media relay (rtpengine, issue 8): when a call's media goes through one (`always`,
   * `never`, or `auto`: when the two sides cannot talk directly), which relays there are, and
   * the monitors asked for the least-loaded one (GET /v1/select?kind=media).
   */
  media: z
    .object({
      relay: z.enum(["auto", "always", "never"]).default("auto"),
      relays: z.array(z.object({ id: z.string().min(1).max(64), ng: ngEndpoint })).default([]),
      monitors: z.array(z.url({ protocol: /^https?$/ })).default([]),
      timeoutMs: z.number().int().positive().default(DEFAULT_RELAY_TIMEOUT_MS),
      holdOffMs: z.number().int().nonnegative().default(DEFAULT_RELAY_HOLD_OFF_MS),
    })
    .default({
      relay: "auto",
      relays: [],
      monitors: [],
      timeoutMs: DEFAULT_RELAY_TIMEOUT_MS,
      holdOffMs: DEFAULT_RELAY_HOLD_OFF_MS,
    }),
  /** Bearer token of POST /admin/drain and /admin/undrain. */
  adminToken: z.string().min(16).optional(),
  drainTimeoutMs: z.number().int().positive().default(DEFAULT_DRAIN_TIMEOUT_MS),
  /** Key of the flow tokens in our Path and Record-Route URIs; random per start when absent. */
  flowTokenSecret: z.string().min(16).optional(),
});

export type ProxyConfig = z.infer<typeof proxyConfigSchema>;
export type ProxyConfigInput = z.input<typeof proxyConfigSchema>;

/** Validates, applies defaults and freezes; a bad field throws naming its path. */
export function parseProxyConfig(input: unknown): Readonly<ProxyConfig> {
  const result = proxyConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`proxy.${issue.path.join(".")}: ${issue.message}`);
  }
  const c = result.data;
  if (c.registrar.minExpires > c.registrar.maxExpires) {
    throw new RangeError("proxy.registrar.minExpires: must not exceed maxExpires");
  }
  if (c.report.push.length > 0 && c.report.key === undefined) {
    throw new RangeError("proxy.report.key: pushed reports are signed; give a key");
  }
  return Object.freeze(c);
}
