import { z } from "zod";
import type { UpInfo } from "../../contracts/index.js";
import type { PreparedData } from "./data-folder.js";
import { RELAY_RTP_ADDRESS, type UpPlan } from "./plan.js";

/** What `sipsteer monitor --json` prints (the fields up reads). */
export const monitorLineSchema = z.object({
  monitor: z.object({
    http: z.string().min(1),
    redirect: z.string().min(1),
    dns: z.string().min(1).optional(),
    dashboard: z.string().min(1).optional(),
    phone: z.string().min(1).optional(),
  }),
  /** Where a monitor with a DNS front may also name it. */
  dns: z.string().min(1).optional(),
  pid: z.number().int().positive(),
});
export type MonitorLine = z.infer<typeof monitorLineSchema>;

/** What `sipsteer proxy --json` prints (the fields up reads). */
export const proxyLineSchema = z.object({
  proxy: z.string().min(1),
  pid: z.number().int().positive(),
  sip: z.array(
    z.object({
      protocol: z.string(),
      address: z.string(),
      port: z.number().int(),
      advertise: z.string().optional(),
    }),
  ),
  http: z.string().min(1),
});
export type ProxyLine = z.infer<typeof proxyLineSchema>;

/** What `sipsteer relays --json` prints. */
export const relaysLineSchema = z.object({
  relays: z.array(
    z.object({
      id: z.string().min(1),
      ng: z.string().min(1),
      rtp: z.object({ min: z.number().int(), max: z.number().int() }),
      pid: z.number().int().positive(),
    }),
  ),
  pid: z.number().int().positive(),
});
export type RelaysLine = z.infer<typeof relaysLineSchema>;

/** Reads a child's `--json` line with `schema`; a line off the schema is a bug, named. */
export function readLine<T>(schema: z.ZodType<T>, line: unknown, who: string): T {
  const result = schema.safeParse(line);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  throw new Error(`${who}'s --json line: ${issue.path.join(".")}: ${issue.message}`);
}

/** The proxy's URI on one transport, as its load report writes them. */
function uriOf(line: ProxyLine, protocol: string): string | undefined {
  const l = line.sip.find((x) => x.protocol === protocol);
  if (l === undefined) return undefined;
  const host = l.advertise ?? l.address;
  const h = host.includes(":") ? `[${host}]` : host;
  if (protocol === "udp") return `sip:${h}:${l.port}`;
  if (protocol === "tcp") return `sip:${h}:${l.port};transport=tcp`;
  if (protocol === "tls") return `sips:${h}:${l.port}`;
  return `${protocol}://${h}:${l.port}`;
}

/** DESIGN.md's `up --json` line from what the children said when serving. */
export function buildUpInfo(options: {
  readonly plan: UpPlan;
  readonly data: PreparedData;
  readonly monitor: MonitorLine;
  readonly proxies: readonly ProxyLine[];
  readonly relays: RelaysLine["relays"];
}): UpInfo {
  const { plan, data, monitor } = options;
  const dns = monitor.monitor.dns ?? monitor.dns;
  return {
    domain: plan.domain,
    data: data.files.dir,
    adminToken: data.secrets.adminToken,
    pid: process.pid,
    monitor: {
      http: monitor.monitor.http,
      ...(dns === undefined ? {} : { dns }),
      zone: plan.domain,
      redirect: monitor.monitor.redirect,
      ...(monitor.monitor.dashboard === undefined ? {} : { dashboard: monitor.monitor.dashboard }),
      ...(monitor.monitor.phone === undefined ? {} : { phone: monitor.monitor.phone }),
      pid: monitor.pid,
    },
    proxies: plan.proxies.map((p, i) => {
      const line = options.proxies[i]!;
      const tls = uriOf(line, "tls");
      return {
        id: p.id,
        name: p.name,
        sip: {
          udp: uriOf(line, "udp") ?? "",
          tcp: uriOf(line, "tcp") ?? "",
          ...(tls === undefined ? {} : { tls }),
          ws: uriOf(line, "ws") ?? "",
        },
        http: line.http,
        pid: line.pid,
      };
    }),
    relays: options.relays.map((r) => ({
      id: r.id,
      ng: r.ng,
      rtp: { min: r.rtp.min, max: r.rtp.max },
      pid: r.pid,
    })),
    users: data.users.map((u) => ({ user: u.user, password: u.password, aor: u.aor })),
    files: {
      credentials: data.files.credentials,
      usersCsv: data.files.usersCsv,
      sippRegister: data.files.sippRegister,
      logs: data.files.logs,
    },
  };
}

/** How many users the summary lists by name; the rest are in the CSV. */
const LISTED_USERS = 5;

/** `sip:127.0.0.11:5060` → `127.0.0.11:5060` */
function hostPort(uri: string): string {
  return uri.replace(/^sips?:/, "").replace(/;.*$/, "");
}

/**
 * The readable summary `sipsteer up` prints once every proxy is eligible. `noRelays` says why
 * there are none, when there are none.
 */
export function formatSummary(info: UpInfo, notes: { readonly noRelays?: string } = {}): string {
  const m = info.monitor;
  const first = info.proxies[0]!;
  const alice = info.users.find((u) => u.user === "alice") ?? info.users[0]!;
  const bob = info.users.find((u) => u.user === "bob") ?? alice;
  const pad = (text: string, width: number) => text.padEnd(width);
  const out: string[] = [];
  out.push(
    `sipsteer up: a monitor and ${info.proxies.length} ${info.proxies.length === 1 ? "proxy" : "proxies"} for ${info.domain}, every proxy eligible.`,
    `Data folder: ${info.data}`,
    "",
    `Monitor (pid ${m.pid})`,
    `  HTTP API       ${m.http}   (GET /v1/select?transport=udp, /v1/proxies, /v1/events, /metrics)`,
    m.dns === undefined
      ? `  DNS            not served by this monitor yet (zone ${m.zone} configured)`
      : `  DNS            ${m.dns}   zone ${m.zone}   (dig @${m.dns.replace(/:(\d+)$/, " -p $1")} _sip._udp.${m.zone} SRV)`,
    `  SIP redirect   ${m.redirect}   (UDP and TCP: INVITE gets 302 to the least-loaded proxies)`,
    `  Dashboard      ${m.dashboard ?? "not served (the pages are not built: npm run build)"}`,
    `  Browser phone  ${m.phone ?? "not served"}   (a user of the list below, camera and microphone)`,
    "",
    "Proxies (registrar and proxy for the domain; they share one location store)",
  );
  for (const p of info.proxies) {
    out.push(
      `  ${pad(p.id, 4)} ${pad(p.name, 20)} pid ${pad(String(p.pid), 8)}` +
        `SIP ${p.sip.udp} (UDP, TCP)${p.sip.tls === undefined ? "" : `  TLS ${p.sip.tls}`}` +
        `  WS ${p.sip.ws}  HTTP ${p.http}`,
    );
  }
  out.push("", "Media relays (rtpengine; the monitor answers GET /v1/select?kind=media)");
  if (info.relays.length === 0) out.push(`  none: ${notes.noRelays ?? "not started"}`);
  for (const r of info.relays) {
    out.push(
      `  ${pad(r.id, 4)} ng ${pad(r.ng, 20)} pid ${pad(String(r.pid), 8)}` +
        `RTP ${RELAY_RTP_ADDRESS}:${r.rtp.min}–${r.rtp.max}`,
    );
  }
  out.push("", `Users (domain and digest realm ${info.domain})`);
  const width = Math.max(...info.users.slice(0, LISTED_USERS).map((u) => u.aor.length));
  for (const u of info.users.slice(0, LISTED_USERS)) {
    out.push(`  ${pad(u.aor, width)}   password ${u.password}`);
  }
  if (info.users.length > LISTED_USERS) {
    out.push(`  … and ${info.users.length - LISTED_USERS} more in ${info.files.usersCsv}`);
  }
  out.push(
    `  SIPp file: ${info.files.usersCsv} (SEQUENTIAL; user;password;domain;[authentication …])`,
    "",
    `Admin token (monitor /v1/admin/…, proxies /admin/drain): ${info.adminToken}`,
    "",
    "How to call",
    `  Ask the monitor where to go:   curl '${m.http}/v1/select?transport=udp'`,
    `  A SIP phone registers ${alice.user} (password ${alice.password}) at that proxy,` +
      ` e.g. ${hostPort(first.sip.udp)}, and calls sip:${bob.user}@${info.domain} there;`,
    `  or sends its INVITE to sip:${bob.user}@${hostPort(m.redirect)} and follows the 302.`,
    `  With the sipsteer CLI softphone:`,
    `    sipsteer call ${bob.user} --monitor ${m.http} --user ${alice.user} --password ${alice.password}`,
    `  SIPp, registering the first ${Math.min(3, info.users.length)} users of the CSV at ${first.id}:`,
    `    sipp ${hostPort(first.sip.udp)} -sf ${info.files.sippRegister} -inf ${info.files.usersCsv} -i 127.0.0.1 -m ${Math.min(3, info.users.length)}`,
    "",
    `Logs: ${info.files.logs}/<role>.log (warnings also here). Ctrl-C stops everything.`,
    "",
  );
  return out.join("\n");
}
