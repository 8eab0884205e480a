import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { isCidr } from "../../monitor/index.js";

/** DESIGN.md: one name is the DNS zone, the SIP domain and the digest realm. */
export const DEFAULT_DOMAIN = "sipsteer.test";
export const DEFAULT_PROXY_COUNT = 3;
/** DESIGN.md's monitor ports on 127.0.0.1. */
export const DEFAULT_MONITOR_ADDRESS = "127.0.0.1";
export const DEFAULT_MONITOR_HTTP_PORT = 8080;
export const DEFAULT_MONITOR_DNS_PORT = 5300;
export const DEFAULT_MONITOR_SIP_PORT = 5060;
/** Proxy n listens on this address plus n: 127.0.0.11, .12, .13 … */
export const DEFAULT_PROXY_ADDRESS_BASE = "127.0.0.10";
/** The standard SIP ports (RFC 3261 §19.1.2), WebSocket 8088 and HTTP 9060 (DESIGN.md). */
export const DEFAULT_PROXY_SIP_PORT = 5060;
export const DEFAULT_PROXY_TLS_PORT = 5061;
export const DEFAULT_PROXY_WS_PORT = 8088;
export const DEFAULT_PROXY_HTTP_PORT = 9060;
/** A stopping proxy waits this long for its dialogs to end (the demo has no calls to keep). */
export const DEFAULT_PROXY_DRAIN_TIMEOUT_MS = 5_000;
/**
 * Relay n (rtpengine, issue 8) sits beside proxy n: its ng control on the proxy's address at
 * this UDP port (rtpengine's customary ng port), its RTP on 127.0.0.1 in a range of its own.
 */
export const DEFAULT_RELAY_NG_PORT = 2223;
/** Relay n relays RTP on ports base + size·(n-1) … base + size·n - 1. */
export const DEFAULT_RELAY_RTP_PORT_BASE = 30_000;
export const DEFAULT_RELAY_RTP_PORTS_EACH = 1_000;
/** The relay binary: Debian's `rtpengine-daemon` puts `rtpengine` on PATH. */
export const DEFAULT_RELAY_BINARY = "rtpengine";
/** After SIGTERM, a child still running this long later is killed. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Every child must serve, and every proxy be eligible at the monitor, within this time. */
export const DEFAULT_READY_TIMEOUT_MS = 30_000;
/** `sipsteer up` runs on loopback: no role sends anywhere else unless told to. */
export const DEFAULT_UP_ALLOWED_DESTINATIONS: readonly string[] = ["127.0.0.0/8", "::1/128"];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const port = z.number().int().min(0).max(65535);

/** A DNS name of letters, digits and hyphens (RFC 1123 labels), at least two labels. */
const domainName = z
  .string()
  .max(253)
  .regex(
    /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+$/,
    "a DNS name such as sipsteer.test",
  )
  .transform((name) => name.toLowerCase());

export const upConfigSchema = z
  .strictObject({
    /** Zone, domain and realm. */
    domain: domainName.default(DEFAULT_DOMAIN),
    /** The data folder; absent: $XDG_DATA_HOME/sipsteer or ~/.local/share/sipsteer. */
    data: z.string().min(1).optional(),
    proxies: z.number().int().min(1).max(100).default(DEFAULT_PROXY_COUNT),
    /** Numbered users (user0001 …) beside alice, bob and carol. */
    users: z.number().int().min(0).max(100_000).default(0),
    /** Log level of every child (their logs go to files in the data folder). */
    logLevel: z.enum(LOG_LEVELS).default("info"),
    /** CIDR blocks every role may send to. */
    allowedDestinations: z
      .array(z.string().refine(isCidr, "a CIDR block such as 127.0.0.0/8"))
      .min(1)
      .default([...DEFAULT_UP_ALLOWED_DESTINATIONS]),
    monitor: z
      .strictObject({
        address: z.ipv4().default(DEFAULT_MONITOR_ADDRESS),
        httpPort: port.default(DEFAULT_MONITOR_HTTP_PORT),
        dnsPort: port.default(DEFAULT_MONITOR_DNS_PORT),
        sipPort: port.default(DEFAULT_MONITOR_SIP_PORT),
      })
      .prefault({}),
    proxy: z
      .strictObject({
        addressBase: z.ipv4().default(DEFAULT_PROXY_ADDRESS_BASE),
        sipPort: port.default(DEFAULT_PROXY_SIP_PORT),
        /** Used only with `tls`. */
        tlsPort: port.default(DEFAULT_PROXY_TLS_PORT),
        wsPort: port.default(DEFAULT_PROXY_WS_PORT),
        httpPort: port.default(DEFAULT_PROXY_HTTP_PORT),
        /** A certificate and key (PEM files) for a TLS listener on every proxy; absent: no TLS. */
        tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
        drainTimeoutMs: z.number().int().positive().default(DEFAULT_PROXY_DRAIN_TIMEOUT_MS),
        /**
         * Digest challenges the proxies offer, most preferred first. Some stock phones give up
         * on a 401 carrying any algorithm they do not know (baresip 1.0 on SHA-256): `[MD5]`.
         */
        authAlgorithms: z
          .array(z.enum(["MD5", "SHA-256"]))
          .min(1)
          .refine((a) => new Set(a).size === a.length, "an algorithm is named twice")
          .default(["MD5", "SHA-256"]),
      })
      .prefault({}),
    /** One media relay (rtpengine) per proxy; false: none. */
    relays: z.boolean().default(true),
    relay: z
      .strictObject({
        /** A name looked up on PATH, or a path to the binary. */
        binary: z.string().min(1).default(DEFAULT_RELAY_BINARY),
        /** UDP, on each proxy's address; 0: a free one, the same on every address. */
        ngPort: port.default(DEFAULT_RELAY_NG_PORT),
        rtpPortBase: z.number().int().min(1024).max(65535).default(DEFAULT_RELAY_RTP_PORT_BASE),
        /** Ports of each relay's range (each call leg takes two: RTP and RTCP). */
        rtpPortsEach: z.number().int().min(4).max(64_000).default(DEFAULT_RELAY_RTP_PORTS_EACH),
        /** Sessions per relay: beyond it rtpengine answers `load limit`; 0: no limit. */
        sessions: z.number().int().min(0).default(0),
      })
      .prefault({}),
    stopTimeoutMs: z.number().int().positive().default(DEFAULT_STOP_TIMEOUT_MS),
    readyTimeoutMs: z.number().int().positive().default(DEFAULT_READY_TIMEOUT_MS),
  })
  .superRefine((c, ctx) => {
    const last = Number(c.proxy.addressBase.split(".")[3]) + c.proxies;
    if (last > 254) {
      ctx.addIssue({
        code: "custom",
        path: ["proxies"],
        message: `proxy ${c.proxies} would be at .${last}: past the end of ${c.proxy.addressBase}'s block`,
      });
    }
    const lastRtp = c.relay.rtpPortBase + c.proxies * c.relay.rtpPortsEach - 1;
    if (c.relays && lastRtp > 65535) {
      ctx.addIssue({
        code: "custom",
        path: ["relay", "rtpPortBase"],
        message: `relay ${c.proxies}'s RTP ports would end at ${lastRtp}: past 65535`,
      });
    }
  });

export type UpConfig = z.infer<typeof upConfigSchema>;

/** Where each command-line option lands in the config, to name the option in errors. */
export const UP_OPTION_PATHS = {
  domain: ["domain"],
  data: ["data"],
  proxies: ["proxies"],
  users: ["users"],
  logLevel: ["logLevel"],
  httpPort: ["monitor", "httpPort"],
  dnsPort: ["monitor", "dnsPort"],
  sipPort: ["monitor", "sipPort"],
  addressBase: ["proxy", "addressBase"],
  proxySipPort: ["proxy", "sipPort"],
  proxyTlsPort: ["proxy", "tlsPort"],
  proxyWsPort: ["proxy", "wsPort"],
  proxyHttpPort: ["proxy", "httpPort"],
  relays: ["relays"],
  relayNgPort: ["relay", "ngPort"],
  relayRtpPortBase: ["relay", "rtpPortBase"],
  rtpengine: ["relay", "binary"],
} as const satisfies Record<string, readonly string[]>;

export type UpOptionName = keyof typeof UP_OPTION_PATHS;
export type UpOptionValues = Partial<Record<UpOptionName, string>>;

/** `proxyHttpPort` → `--proxy-http-port`. */
export function flagOf(option: UpOptionName): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

const NUMERIC_OPTIONS = new Set<UpOptionName>([
  "proxies",
  "users",
  "httpPort",
  "dnsPort",
  "sipPort",
  "proxySipPort",
  "proxyTlsPort",
  "proxyWsPort",
  "proxyHttpPort",
  "relayNgPort",
  "relayRtpPortBase",
]);
/** Given as `--no-relays`, which main.ts passes on as "false". */
const BOOLEAN_OPTIONS = new Set<UpOptionName>(["relays"]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `value` with `path` set to `leaf`, copying the objects along the way. */
function setPath(value: unknown, path: readonly string[], leaf: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return leaf;
  const base = isRecord(value) ? value : {};
  return { ...base, [head]: setPath(base[head], rest, leaf) };
}

/**
 * The config file's relative paths (`data`, `proxy.tls.certFile`, `proxy.tls.keyFile`, and
 * `relay.binary` when it names a path, not a command on PATH) made relative to the file's
 * folder, as a reader of the file expects; other values are left alone.
 */
export function resolvePathsFrom(file: unknown, dir: string): unknown {
  if (!isRecord(file)) return file;
  const at = (value: unknown) =>
    typeof value === "string" && value !== "" && !isAbsolute(value) ? resolve(dir, value) : value;
  let out: Record<string, unknown> = {
    ...file,
    ...("data" in file ? { data: at(file.data) } : {}),
  };
  const proxy = file.proxy;
  if (isRecord(proxy) && isRecord(proxy.tls)) {
    const tls = { ...proxy.tls, certFile: at(proxy.tls.certFile), keyFile: at(proxy.tls.keyFile) };
    out = { ...out, proxy: { ...proxy, tls } };
  }
  const relay = file.relay;
  if (isRecord(relay) && typeof relay.binary === "string" && relay.binary.includes("/")) {
    out = { ...out, relay: { ...relay, binary: at(relay.binary) } };
  }
  return out;
}

export interface UpConfigSources {
  /** The parsed YAML config file, if one was given. */
  readonly file?: unknown;
  /** Its name, for errors. */
  readonly fileName?: string;
  /** Command-line options as given (strings); they override the file. */
  readonly options?: UpOptionValues;
}

/**
 * Merges the config file and the command-line options (the options win), validates and
 * freezes. A bad value throws naming where it came from: the option (`--proxy-sip-port:`) or
 * the field of the file (`up.yaml: proxy.sipPort:`).
 */
export function parseUpConfig(sources: UpConfigSources): Readonly<UpConfig> {
  const file = sources.file ?? {};
  if (!isRecord(file)) {
    throw new RangeError(`${sources.fileName ?? "config"}: expected a mapping of up's settings`);
  }
  let merged: unknown = file;
  const fromOptions = new Map<string, UpOptionName>();
  for (const [name, raw] of Object.entries(sources.options ?? {}) as [UpOptionName, string][]) {
    if (raw === undefined) continue;
    const path = UP_OPTION_PATHS[name];
    const value =
      NUMERIC_OPTIONS.has(name) && /^\d+$/.test(raw)
        ? Number(raw)
        : BOOLEAN_OPTIONS.has(name) && (raw === "true" || raw === "false")
          ? raw === "true"
          : raw;
    merged = setPath(merged, path, value);
    fromOptions.set(path.join("."), name);
  }
  const result = upConfigSchema.safeParse(merged);
  if (result.success) return deepFreeze(result.data);
  const issue = result.error.issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys" && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  const option = fromOptions.get(path.join("."));
  if (option !== undefined) {
    const received = NUMERIC_OPTIONS.has(option) ? "an integer" : "a valid value";
    const message =
      issue.code === "invalid_type"
        ? `expected ${received}, got ${sources.options?.[option]}`
        : issue.message;
    throw new RangeError(`${flagOf(option)}: ${message}`);
  }
  const where = sources.fileName === undefined ? "up" : `${sources.fileName}: up`;
  throw new RangeError(`${[where, ...path].join(".")}: ${issue.message}`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
