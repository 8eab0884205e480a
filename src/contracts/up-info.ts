import { z } from "zod";

/**
 * The one line `sipsteer up --json` prints once every proxy is eligible at the monitor
 * (DESIGN.md, "Names and addresses of `sipsteer up`"). Keys may be added, never renamed.
 */
export const upInfoSchema = z.object({
  /** DNS zone, SIP domain and digest realm. */
  domain: z.string().min(1),
  /** The data folder: configs, credentials, secrets, the location store, logs. */
  data: z.string().min(1),
  /** Bearer token of the monitor's and the proxies' admin calls. */
  adminToken: z.string().min(16),
  /** The `sipsteer up` process itself. */
  pid: z.number().int().positive(),
  monitor: z.object({
    http: z.string().min(1),
    /** `HOST:PORT` of the DNS front, once the monitor serves DNS. */
    dns: z.string().min(1).optional(),
    zone: z.string().min(1),
    /** The SIP redirect front (`sip:127.0.0.1:5060`, UDP and TCP). */
    redirect: z.string().min(1),
    dashboard: z.string().min(1).optional(),
    phone: z.string().min(1).optional(),
    pid: z.number().int().positive(),
  }),
  proxies: z.array(
    z.object({
      id: z.string().min(1),
      /** Its DNS name, `p<n>.<domain>`. */
      name: z.string().min(1),
      sip: z.object({
        udp: z.string().min(1),
        tcp: z.string().min(1),
        tls: z.string().min(1).optional(),
        ws: z.string().min(1),
      }),
      http: z.string().min(1),
      pid: z.number().int().positive(),
    }),
  ),
  /**
   * The media relays (rtpengine), one per proxy: `r<n>` beside `p<n>`, its ng control socket
   * (UDP, `HOST:PORT`), the UDP port range it relays RTP in, its pid. Empty when up runs
   * without relays (`relays: false`, or no rtpengine binary).
   */
  relays: z.array(
    z.object({
      id: z.string().min(1),
      ng: z.string().min(1),
      rtp: z.object({ min: z.number().int().positive(), max: z.number().int().positive() }),
      pid: z.number().int().positive(),
    }),
  ),
  users: z.array(
    z.object({ user: z.string().min(1), password: z.string().min(1), aor: z.string().min(1) }),
  ),
  /** Files in the data folder a user of the demo reaches for. */
  files: z.object({
    credentials: z.string().min(1),
    /** SIPp `-inf` file: `SEQUENTIAL`, then `user;password;domain;auth` per line. */
    usersCsv: z.string().min(1),
    /** A SIPp REGISTER scenario (digest auth) that reads the users file. */
    sippRegister: z.string().min(1),
    logs: z.string().min(1),
  }),
});

export type UpInfo = z.infer<typeof upInfoSchema>;
