import { z } from "zod";
import { DEFAULT_ALLOWED_DESTINATIONS, transactionOptionsSchema } from "../sip/index.js";
import { DEFAULT_DISCOVERY_TIMEOUT_MS } from "./discovery.js";

/** Seconds asked for in REGISTER (RFC 3261 §10.2.1); the registrar may grant less. */
export const DEFAULT_REGISTER_EXPIRES_S = 600;
/**
 * Rebalancing moves at a refresh only when another proxy's workload is at least this much
 * (absolute, on the 0…1 scale) below our own proxy's: "markedly less loaded" (DESIGN.md).
 * 0.2 is a fifth of a proxy's capacity — well above the jitter of reports a few hundred ms
 * apart, so that clients do not flap between proxies of nearly equal load.
 */
export const DEFAULT_REBALANCE_THRESHOLD = 0.2;
/** A refresh goes out at this fraction of the granted expiry (RFC 3261 §10.2.4 leaves it open). */
export const REFRESH_AT_FRACTION = 0.5;
/** After every proxy and monitor failed, the agent asks again after this long. */
export const DEFAULT_RETRY_AFTER_FAILURE_MS = 5_000;

export const userAgentConfigSchema = z.object({
  /** User part of our address of record and digest username. */
  user: z.string().min(1),
  password: z.string(),
  /** SIP domain (and digest realm): our AOR is sip:user@domain. */
  domain: z.string().min(1),
  /** The SIP transport to the proxies (the monitor is asked for their URIs on it). */
  transport: z.enum(["udp", "tcp"]).default("udp"),
  /** Monitors, asked in turn: `http://…`, `dns:HOST:PORT/ZONE`, `sip:HOST:PORT`. */
  monitors: z.array(z.string().min(1)).min(1),
  /** Our local address (bound, and written in Via and Contact). */
  address: z.string().min(1).default("127.0.0.1"),
  /** Our local SIP port; 0 picks a free one. */
  port: z.number().int().min(0).max(65535).default(0),
  /** CIDR blocks we may send to (DESIGN.md `allowedDestinations`). */
  allowedDestinations: z.array(z.string().min(1)).default(DEFAULT_ALLOWED_DESTINATIONS),
  /** Seconds asked for in each REGISTER. */
  registerExpiresS: z.number().int().positive().default(DEFAULT_REGISTER_EXPIRES_S),
  /** At a refresh, ask the monitor again and move when another proxy is markedly less loaded. */
  rebalance: z.boolean().default(false),
  /** "Markedly": this much lower workload (absolute, 0…1). */
  rebalanceThreshold: z.number().min(0).max(1).default(DEFAULT_REBALANCE_THRESHOLD),
  /** Each monitor's time to answer. */
  discoveryTimeoutMs: z.number().int().positive().default(DEFAULT_DISCOVERY_TIMEOUT_MS),
  /** Wait before asking again when no proxy could be reached. */
  retryAfterFailureMs: z.number().int().positive().default(DEFAULT_RETRY_AFTER_FAILURE_MS),
  /** SIP timers (T1, T2, T4): a timeout (64 × T1) is how a dead proxy shows over UDP. */
  timers: transactionOptionsSchema.partial().default({}),
  /** Shown in User-Agent headers. */
  userAgentName: z.string().min(1).default("sipsteer-client"),
});

export type UserAgentConfig = z.infer<typeof userAgentConfigSchema>;
export type UserAgentConfigInput = z.input<typeof userAgentConfigSchema>;

/** Validates, applies defaults and freezes; a bad field throws a RangeError naming its path. */
export function parseUserAgentConfig(input: unknown): Readonly<UserAgentConfig> {
  const result = userAgentConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`client.${issue.path.join(".")}: ${issue.message}`);
  }
  return Object.freeze(result.data);
}
