import { z } from "zod";
import { proxyTableConfigSchema } from "./proxy-table.js";
import { selectorConfigSchema } from "./selector.js";
import { workloadConfigSchema } from "./workload.js";

/** DESIGN.md: the monitor's HTTP API on 127.0.0.1:8080 unless moved. */
export const DEFAULT_HTTP_PORT = 8080;
/** A load report is about 600 bytes; anything much larger is not one. */
export const DEFAULT_REPORT_BODY_LIMIT_BYTES = 64 * 1024;
/** Bad input: held `GET /v1/events` streams are bounded. */
export const DEFAULT_MAX_EVENT_STREAMS = 100;

const endpointSchema = z.object({
  address: z.string().min(1),
  /** 0: a free port chosen at start. */
  port: z.number().int().min(0).max(65535),
});

const signingKeySchema = z.object({
  /** The id a push names (`keyid=` over HTTP, the first word of a UDP datagram). */
  id: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "1–64 letters, digits, '.', '_' or '-'"),
  secret: z.string().min(16),
});

export const monitorConfigSchema = z.object({
  http: endpointSchema.default({ address: "127.0.0.1", port: DEFAULT_HTTP_PORT }),
  /** Where signed UDP pushes are taken; absent: no UDP push endpoint. */
  udpPush: endpointSchema.optional(),
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
  /** Bearer token of the /v1/admin calls; absent: every admin call is refused. */
  adminToken: z.string().min(16).optional(),
  /** Proxy ids known up front (stale until their first report). */
  proxies: proxyTableConfigSchema.shape.proxies,
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

export type MonitorConfig = z.infer<typeof monitorConfigSchema>;
export type MonitorConfigInput = z.input<typeof monitorConfigSchema>;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Validates, applies defaults and freezes; a bad field throws `monitor.<path>: message`. */
export function parseMonitorConfig(input: unknown): Readonly<MonitorConfig> {
  const result = monitorConfigSchema.safeParse(input ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new RangeError(`${["monitor", ...issue.path.map(String)].join(".")}: ${issue.message}`);
  }
  return deepFreeze(result.data);
}
