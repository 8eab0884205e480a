import { z } from "zod";
import { parseProxyConfig, proxyConfigSchema, type ProxyConfig } from "../proxy/proxy-config.js";
import { parseAccessConfig, type AccessConfig } from "./access-config.js";
import { parseUpstreamConfig, type UpstreamConfig } from "./upstream-config.js";

/** A proxy that sends nothing at all (not even 100 Trying) for this long is given up. */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 1_000;
export const DEFAULT_GATEWAY_HTTP_PORT = 9070;

/**
 * The gateway's config: the SIP side it shares with a proxy (listeners, domains and digest
 * realms, credentials, fleet, transport, timers, media relay), its access rules, where it
 * forwards (`upstream`), and its HTTP side.
 */
export const gatewayConfigSchema = proxyConfigSchema
  .pick({
    id: true,
    domains: true,
    listen: true,
    allowedDestinations: true,
    transport: true,
    fleet: true,
    auth: true,
    timers: true,
    timerCMs: true,
    dialogSafetyTimeoutMs: true,
    media: true,
    flowTokenSecret: true,
    drainTimeoutMs: true,
  })
  .extend({
    http: z
      .object({ address: z.string().min(1), port: z.number().int().min(0).max(65535) })
      .default({ address: "127.0.0.1", port: DEFAULT_GATEWAY_HTTP_PORT }),
    /** Checked in full by parseAccessConfig (its errors name `gateway.access.…`). */
    access: z.unknown().optional(),
    upstream: z.unknown(),
    attemptTimeoutMs: z.number().int().positive().default(DEFAULT_ATTEMPT_TIMEOUT_MS),
  })
  .strict();

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;

export interface GatewayConfig {
  readonly id: string;
  readonly http: { readonly address: string; readonly port: number };
  readonly attemptTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly access: Readonly<AccessConfig>;
  readonly upstream: Readonly<UpstreamConfig>;
  /** The SIP side, as the proxy engine takes it. */
  readonly sip: Readonly<ProxyConfig>;
}

/** Validates, applies defaults and freezes; a bad field throws naming its path (`gateway.…`). */
export function parseGatewayConfig(input: unknown): Readonly<GatewayConfig> {
  const result = gatewayConfigSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = issue.path.length === 0 ? "gateway" : `gateway.${issue.path.join(".")}`;
    throw new RangeError(`${path}: ${issue.message}`);
  }
  const { http, access, upstream, attemptTimeoutMs, ...sip } = result.data;
  let proxy: Readonly<ProxyConfig>;
  try {
    proxy = parseProxyConfig(sip);
  } catch (e) {
    throw new RangeError((e as Error).message.replace(/^proxy\./, "gateway."), { cause: e });
  }
  return Object.freeze({
    id: proxy.id,
    http: Object.freeze({ ...http }),
    attemptTimeoutMs,
    drainTimeoutMs: proxy.drainTimeoutMs,
    access: parseAccessConfig(access ?? {}),
    upstream: parseUpstreamConfig(upstream),
    sip: proxy,
  });
}
