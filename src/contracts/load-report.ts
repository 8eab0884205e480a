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
