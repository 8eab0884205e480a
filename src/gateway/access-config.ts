import { z } from "zod";
import { DestinationPolicy } from "../sip/index.js";
import { deepFreeze } from "./deep-freeze.js";
import { DEFAULT_SCANNER_AGENTS } from "./scanner-agents.js";

/** Requests per second a source address may send before it gets 503 (0: no rate limit). */
export const DEFAULT_REQUESTS_PER_SECOND = 20;
/** Requests a source may send at once above its rate (the token bucket's size). */
export const DEFAULT_BURST = 60;
/** A source sending more than this many times its rate is dropped instead of answered. */
export const DEFAULT_FLOOD_FACTOR = 5;
/** IPv6 sources are counted per prefix of this length: one host commonly holds a whole /64. */
export const DEFAULT_IPV6_PREFIX_BITS = 64;
/** Retry-After of the 503 sent to a source over its rate. */
export const DEFAULT_RETRY_AFTER_S = 5;
/** Source addresses whose rate is tracked at once; the least recently seen go first. */
export const DEFAULT_MAX_TRACKED_SOURCES = 100_000;
/** Refusals are logged once per source and reason per interval, with a count. */
export const DEFAULT_LOG_INTERVAL_MS = 60_000;
/** Sources logged one by one per interval; refusals from further sources are summed. */
export const DEFAULT_LOG_MAX_SOURCES = 100;

function isCidr(text: string): boolean {
  try {
    new DestinationPolicy([text]);
    return true;
  } catch {
    return false;
  }
}

const cidr = z.string().refine(isCidr, {
  error: (issue) => `${JSON.stringify(issue.input)} is not a CIDR block (e.g. 192.0.2.0/24, ::1)`,
});

export const accessConfigSchema = z.strictObject({
  /** Only these CIDR blocks are admitted; empty: every address. */
  allow: z.array(cidr).default([]),
  /** These CIDR blocks are refused, even when `allow` holds them. */
  deny: z.array(cidr).default([]),
  /** Per source address: a token bucket, and the flood threshold above it. */
  rate: z
    .strictObject({
      requestsPerSecond: z.number().nonnegative().default(DEFAULT_REQUESTS_PER_SECOND),
      burst: z.number().int().positive().default(DEFAULT_BURST),
      floodFactor: z.number().min(1).default(DEFAULT_FLOOD_FACTOR),
      ipv6PrefixBits: z.number().int().min(1).max(128).default(DEFAULT_IPV6_PREFIX_BITS),
    })
    .prefault({}),
  /** User-Agent substrings (any case) of scanners, whose requests are dropped. */
  scanners: z.array(z.string().min(1)).default([...DEFAULT_SCANNER_AGENTS]),
  /** Concurrent dialogs per authenticated user; 0: no limit. */
  maxCallsPerUser: z.number().int().nonnegative().default(0),
  retryAfterS: z.number().int().positive().default(DEFAULT_RETRY_AFTER_S),
  maxTrackedSources: z.number().int().positive().default(DEFAULT_MAX_TRACKED_SOURCES),
  log: z
    .strictObject({
      intervalMs: z.number().int().positive().default(DEFAULT_LOG_INTERVAL_MS),
      maxSources: z.number().int().positive().default(DEFAULT_LOG_MAX_SOURCES),
    })
    .prefault({}),
});

export type AccessConfig = z.infer<typeof accessConfigSchema>;
export type AccessConfigInput = z.input<typeof accessConfigSchema>;

/**
 * Validates the gateway's `access` section, applies defaults and freezes it; a bad field
 * throws naming its path (`gateway.access.rate.burst: …`).
 */
export function parseAccessConfig(input: unknown = {}): Readonly<AccessConfig> {
  const result = accessConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = ["gateway", "access", ...issue.path.map(String)].join(".");
    throw new RangeError(`${path}: ${issue.message}`);
  }
  return deepFreeze(result.data);
}
