import { z } from "zod";
import { deepFreeze } from "./deep-freeze.js";
import { readMonitorTarget } from "./monitor-target.js";
import { UPSTREAM_TRANSPORTS, readProxyUri } from "./proxy-uri.js";

/** How long one monitor has to answer a select (or SRV query) before the next is asked. */
export const DEFAULT_SELECT_TIMEOUT_MS = 300;
/** A proxy that timed out or answered 503 gets no new work for this long. */
export const DEFAULT_HOLD_OFF_MS = 5_000;
/** A registration's pin is forgotten when not refreshed for this long (above the usual 1 h). */
export const DEFAULT_PIN_TTL_MS = 2 * 60 * 60 * 1000;
/** Registrations pinned at once; the least recently pinned go first. */
export const DEFAULT_MAX_PINS = 100_000;

const monitorText = z.string().superRefine((text, ctx) => {
  const read = readMonitorTarget(text);
  if ("problem" in read)
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(text)}: ${read.problem}` });
});

/** A fallback proxy: its SIP URI (the URI is its id), or `{ id, uri }`. */
const fallbackEntry = z
  .union([z.string(), z.strictObject({ id: z.string().min(1), uri: z.string() })])
  .superRefine((entry, ctx) => {
    const uri = typeof entry === "string" ? entry : entry.uri;
    const read = readProxyUri(uri, "udp");
    if (!("problem" in read)) return;
    ctx.addIssue({
      code: "custom",
      path: typeof entry === "string" ? [] : ["uri"],
      message: `${JSON.stringify(uri)}: ${read.problem}`,
    });
  });

export const upstreamConfigSchema = z.strictObject({
  /**
   * Monitors (replicas) asked in this order: `http://HOST:PORT` (its `GET /v1/select`) or
   * `dns:HOST:PORT/ZONE` (its DNS front's SRV records), mixed as wished.
   */
  monitors: z
    .array(monitorText)
    .min(1, { error: "at least one monitor (http://… or dns:HOST:PORT/ZONE)" }),
  /** The proxies' transport asked for (`?transport=`, or `_sip._udp` / `_sip._tcp`). */
  transport: z.enum(UPSTREAM_TRANSPORTS).default("udp"),
  selectTimeoutMs: z.number().int().positive().default(DEFAULT_SELECT_TIMEOUT_MS),
  holdOffMs: z.number().int().nonnegative().default(DEFAULT_HOLD_OFF_MS),
  /**
   * Proxies used when no monitor answers, in order: a SIP URI (its id is the URI) or
   * `{ id, uri }` (the id the monitor knows it by, so that failures and pins are shared).
   */
  fallback: z.array(fallbackEntry).default([]),
  pinTtlMs: z.number().int().positive().default(DEFAULT_PIN_TTL_MS),
  maxPins: z.number().int().positive().default(DEFAULT_MAX_PINS),
});

export type UpstreamConfig = z.infer<typeof upstreamConfigSchema>;
export type UpstreamConfigInput = z.input<typeof upstreamConfigSchema>;

/**
 * Validates the gateway's `upstream` section (where it forwards to), applies defaults and
 * freezes it; a bad field throws naming its path (`gateway.upstream.monitors.0: …`).
 */
export function parseUpstreamConfig(input: unknown = {}): Readonly<UpstreamConfig> {
  const result = upstreamConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = ["gateway", "upstream", ...issue.path.map(String)].join(".");
    throw new RangeError(`${path}: ${issue.message}`);
  }
  return deepFreeze(result.data);
}
