import { z } from "zod";

/** The `kind` of `GET /v1/select` that asks for a media relay (issue 8). */
export const MEDIA_KIND = "media";

const relayId = z.string().min(1).max(64);
/** rtpengine's ng control address, `host:port` (`[::1]:2223` for IPv6). */
const ngAddress = z.string().min(1);

/** One relay after the chosen one, least loaded first. */
export const relayAlternateSchema = z.object({
  relay: relayId,
  ng: ngAddress,
  workload: z.number().nonnegative(),
});

/**
 * The monitor's answer to `GET /v1/select?kind=media`: the least-loaded eligible media relay
 * for one new call, with the others ranked (a proxy that meets `load limit` tries the next).
 * The proxy and the monitor meet here. Keys may be added, never renamed.
 */
export const relaySelectAnswerSchema = z.object({
  kind: z.literal(MEDIA_KIND),
  relay: relayId,
  ng: ngAddress,
  /** The workload the choice was based on (corrected for sends, except with `literal`). */
  workload: z.number().nonnegative(),
  /** Age of that relay's newest statistics, ms. */
  age_ms: z.number().int().nonnegative(),
  /** Seconds the answer may be reused: ask again for each call. */
  ttl: z.number().int().positive(),
  alternates: z.array(relayAlternateSchema),
});

export type RelayAlternate = z.infer<typeof relayAlternateSchema>;
export type RelaySelectAnswer = z.infer<typeof relaySelectAnswerSchema>;
