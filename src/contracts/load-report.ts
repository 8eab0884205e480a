import { z } from "zod";

/** The version of the load report format (DESIGN.md, "Load report"). */
export const LOAD_REPORT_VERSION = 1;

const endpointUri = z.string().min(1);

/**
 * What a proxy says of its workload: pushed to each push target, polled at `GET /load`,
 * streamed at `GET /load/stream`. The proxy and the monitor meet here and nowhere else.
 */
export const loadReportSchema = z.object({
  v: z.literal(LOAD_REPORT_VERSION),
  /** The proxy's id ("p1"). */
  proxy: z.string().min(1).max(64),
  /** A random id of this start of the proxy; `seq` restarts with a new one. */
  boot: z.string().min(1).max(64),
  /** Monotonic within a boot. */
  seq: z.number().int().nonnegative(),
  /** Epoch milliseconds when the report was made. */
  at: z.number().int().nonnegative(),
  /** Milliseconds until the next report is due. */
  interval: z.number().int().positive(),
  state: z.enum(["active", "draining"]),
  /** Early and confirmed dialogs. */
  calls: z.number().int().nonnegative(),
  registrations: z.number().int().nonnegative(),
  transactions: z.number().int().nonnegative(),
  /** Relayed media streams. */
  media: z.number().int().nonnegative(),
  /** Calls started per second over the last 5 s. */
  cps: z.number().nonnegative(),
  /** Cores used, 0…N. */
  cpu: z.number().nonnegative(),
  /** Event-loop utilisation, 0…1. */
  elu: z.number().min(0).max(1),
  store: z.enum(["ok", "degraded", "down"]),
  /** 0 means no limit of that kind. */
  capacity: z.object({
    calls: z.number().int().nonnegative(),
    media: z.number().int().nonnegative(),
  }),
  /** Its SIP URIs per transport, and its WebSocket URL. */
  uris: z.object({
    udp: endpointUri.optional(),
    tcp: endpointUri.optional(),
    tls: endpointUri.optional(),
    ws: endpointUri.optional(),
    wss: endpointUri.optional(),
  }),
});

export type LoadReport = z.infer<typeof loadReportSchema>;

/** The first thing wrong with a value that is not a load report, in zod's words. */
export interface LoadReportIssue {
  /** The field, dotted (`capacity.calls`); empty for the value as a whole. */
  readonly path: string;
  readonly message: string;
}

export type LoadReportResult =
  | { readonly ok: true; readonly report: LoadReport }
  | { readonly ok: false; readonly issue: LoadReportIssue };

/**
 * Validates a load report against {@link loadReportSchema} and returns a fresh copy with only
 * the schema's fields (as zod's parse does). A valid report goes through {@link readLoadReport},
 * a hand-written check of the same rules that costs a fraction of zod's parse (a monitor takes
 * hundreds of reports a second); anything it does not accept is handed to zod, which decides
 * and words the refusal. So the outcome is zod's, to the letter, whichever path it takes.
 */
export function parseLoadReport(input: unknown): LoadReportResult {
  const report = readLoadReport(input);
  if (report !== undefined) return { ok: true, report };
  const parsed = loadReportSchema.safeParse(input);
  // Accepted by zod alone: a string within 64 code points but over 64 UTF-16 units.
  if (parsed.success) return { ok: true, report: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { ok: false, issue: { path: issue.path.map(String).join("."), message: issue.message } };
}

const URI_KEYS = ["udp", "tcp", "tls", "ws", "wss"] as const;

/**
 * The fast path of {@link parseLoadReport}: the report copied field by field when it meets
 * every rule of {@link loadReportSchema}, else undefined. It may refuse what zod would accept
 * (it counts string lengths in UTF-16 units, not code points), never the other way round; the
 * property tests in test/contracts hold it to that.
 */
export function readLoadReport(input: unknown): LoadReport | undefined {
  if (!isRecord(input)) return undefined;
  const { v, proxy, boot, seq, at, interval, state, calls, registrations, transactions, media } =
    input;
  const { cps, cpu, elu, store, capacity, uris } = input;
  if (
    v !== LOAD_REPORT_VERSION ||
    !isId(proxy) ||
    !isId(boot) ||
    !isCount(seq) ||
    !isCount(at) ||
    !isCount(interval) ||
    interval === 0 ||
    (state !== "active" && state !== "draining") ||
    !isCount(calls) ||
    !isCount(registrations) ||
    !isCount(transactions) ||
    !isCount(media) ||
    !isAmount(cps) ||
    !isAmount(cpu) ||
    !isAmount(elu) ||
    elu > 1 ||
    (store !== "ok" && store !== "degraded" && store !== "down") ||
    !isRecord(capacity) ||
    !isRecord(uris)
  ) {
    return undefined;
  }
  const capacityCalls = capacity.calls;
  const capacityMedia = capacity.media;
  if (!isCount(capacityCalls) || !isCount(capacityMedia)) return undefined;
  const endpoints: Record<string, string | undefined> = {};
  for (const key of URI_KEYS) {
    const uri = uris[key];
    if (uri === undefined) {
      // zod keeps an optional key that is there but undefined.
      if (key in uris) endpoints[key] = undefined;
    } else if (typeof uri === "string" && uri.length > 0) {
      endpoints[key] = uri;
    } else {
      return undefined;
    }
  }
  return {
    v,
    proxy,
    boot,
    seq,
    at,
    interval,
    state,
    calls,
    registrations,
    transactions,
    media,
    cps,
    cpu,
    elu,
    store,
    capacity: { calls: capacityCalls, media: capacityMedia },
    uris: endpoints,
  };
}

/** What zod's z.object() takes: an object that is not null nor an array. */
function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** z.string().min(1).max(64), counted in UTF-16 units: what fits in units fits in code points. */
function isId(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= 64;
}

/** z.number().int().nonnegative(): zod's int is a safe integer. */
function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** z.number().nonnegative(): zod's number is finite. */
function isAmount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}
