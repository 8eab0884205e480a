// The monitor's DNS front (issue 5, DESIGN.md "Client query") against REAL peers: three sipsteer
// proxies on loopback pushing their reports, the stock resolver `dig` over UDP and TCP, and
// baresip — a stock phone — that finds its registrar by NAPTR/SRV with the monitor as its DNS
// server and registers at the proxy the monitor ranks first.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { decode, encode } from "dns-packet";
import type { SigningKey } from "../../src/contracts/index.js";
import { Monitor, parseMonitorConfig, type MonitorConfigInput } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import { Credentials } from "../../src/sip/index.js";
import { reap, runCli, within } from "../helpers/cli.js";
import { openHandles } from "../helpers/handles.js";
import { SipPhone } from "../helpers/sip-caller.js";
import { requireTool } from "../helpers/tools.js";

const ZONE = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };
const INTERVAL_MS = 100;
const PASSWORDS = { alice: "alice-dns-secret", bob: "bob-dns-secret" };
/** Workload = registrations / 10, so that bindings made by the test set the proxies' load. */
const BY_REGISTRATIONS = { terms: [{ metric: "registrations" as const, per: 10 }] };

async function eventually<T>(check: () => T | undefined, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Dig {
  readonly status: string;
  readonly flags: readonly string[];
  /** Records per section, each split on whitespace: name, TTL, class, type, data… */
  readonly answer: readonly string[][];
  readonly authority: readonly string[][];
  readonly additional: readonly string[][];
  readonly output: string;
}

function section(output: string, name: string): string[][] {
  const start = output.indexOf(`;; ${name} SECTION:\n`);
  if (start < 0) return [];
  const body = output.slice(start).split("\n").slice(1);
  const end = body.findIndex((line) => line.trim() === "");
  return body
    .slice(0, end < 0 ? undefined : end)
    .filter((line) => !line.startsWith(";"))
    .map((line) => line.split(/\s+/));
}

/** The real dig against the monitor: `dig @127.0.0.1 -p PORT +norecurse ARGS…`. */
function dig(port: number, ...args: string[]): Promise<Dig> {
  return new Promise((resolve, reject) => {
    execFile(
      "dig",
      ["@127.0.0.1", "-p", String(port), "+norecurse", "+time=2", "+tries=2", ...args],
      { timeout: 15_000 },
      (error, stdout) => {
        const status = /status: (\w+)/.exec(stdout)?.[1];
        if (status === undefined) {
          reject(new Error(`dig ${args.join(" ")}: no answer\n${stdout}${String(error ?? "")}`));
          return;
        }
        resolve({
          status,
          flags: (/;; flags: ([a-z ]*);/.exec(stdout)?.[1] ?? "").split(" ").filter(Boolean),
          answer: section(stdout, "ANSWER"),
          authority: section(stdout, "AUTHORITY"),
          additional: section(stdout, "ADDITIONAL"),
          output: stdout,
        });
      },
    );
  });
}

interface Fleet {
  readonly monitor: Monitor;
  readonly proxies: readonly Proxy[];
  /** The DNS front's UDP port. */
  readonly port: number;
  /** Its TCP port: the UDP port's twin unless that was taken (then another free one). */
  readonly tcpPort: number;
}

function monitorConfig(over: Partial<MonitorConfigInput> = {}): MonitorConfigInput {
  return {
    http: { address: "127.0.0.1", port: 0 },
    keys: [KEY],
    allowedDestinations: LOOPBACK,
    dns: {
      zone: ZONE,
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: 0 },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
    },
    workload: BY_REGISTRATIONS,
    ...over,
  };
}

/** A monitor with the DNS front and three real proxies (127.0.0.11–13) pushing to it. */
async function startFleet(): Promise<Fleet> {
  const monitor = new Monitor(monitorConfig());
  const proxies: Proxy[] = [];
  try {
    await monitor.start();
    const credentials = Credentials.parse(
      [
        Credentials.line("alice", ZONE, PASSWORDS.alice),
        Credentials.line("bob", ZONE, PASSWORDS.bob),
      ].join("\n"),
    );
    for (let i = 1; i <= 3; i++) {
      const address = `127.0.0.1${i}`;
      const proxy = new Proxy(
        {
          id: `p${i}`,
          domains: [ZONE],
          listen: [
            { protocol: "udp", address, port: 0 },
            { protocol: "tcp", address, port: 0 },
          ],
          allowedDestinations: LOOPBACK,
          // baresip 1.0 (libre) gives up on a REGISTER whose 401 carries any challenge other
          // than MD5, so these proxies offer MD5 alone.
          auth: { enabled: true, algorithms: ["MD5"] },
          http: { address: "127.0.0.1", port: 0 },
          report: { intervalMs: INTERVAL_MS, push: [`${monitor.httpUrl}/v1/reports`], key: KEY },
        },
        { credentials },
      );
      proxies.push(proxy);
      await proxy.start();
    }
    await eventually(
      () => (monitor.table.eligible().length === 3 ? true : undefined),
      5000,
      "3 eligible proxies",
    );
  } catch (e) {
    await stopFleet({ monitor, proxies, port: 0, tcpPort: 0 });
    throw e;
  }
  const port = monitor.dnsListeners.find((l) => l.protocol === "udp")!.port;
  const tcpPort = monitor.dnsListeners.find((l) => l.protocol === "tcp")!.port;
  return { monitor, proxies, port, tcpPort };
}

async function stopFleet(fleet: Fleet): Promise<void> {
  for (const proxy of fleet.proxies) await proxy.stop();
  await fleet.monitor.stop();
}

function udpPort(proxy: Proxy): number {
  return proxy.listeners.find((l) => l.protocol === "udp")!.port;
}

/** `n` bindings of bob at `proxy` (distinct contacts), so that its workload is n/10. */
async function loadWith(phone: SipPhone, proxy: Proxy, n: number): Promise<void> {
  const address = proxy.listeners[0]!.address;
  for (let i = 0; i < n; i++) {
    const response = await phone.register(
      { protocol: "udp", address, port: udpPort(proxy) },
      {
        user: "bob",
        password: PASSWORDS.bob,
        contact: `sip:bob-${proxy.config.id}-${i}@127.0.0.1:${phone.port()}`,
        expires: 600,
      },
    );
    assert.equal(response.status, 200, `REGISTER ${i} at ${proxy.config.id}`);
  }
}

function srvTargets(d: Dig): string[][] {
  // name TTL IN SRV priority weight port target
  return d.answer.filter((r) => r[3] === "SRV").map((r) => [r[4]!, r[5]!, r[6]!, r[7]!]);
}

describe("monitor DNS front with real proxies, dig and baresip", () => {
  let fleet: Fleet;
  let phone: SipPhone;

  // p1 holds 3 bindings (workload 0.3), p2 one (0.1), p3 none: the ranking is p3, p2, p1.
  before(async () => {
    fleet = await startFleet();
    phone = await SipPhone.start({ user: "bob" });
    const [p1, p2] = fleet.proxies;
    await loadWith(phone, p1!, 3);
    await loadWith(phone, p2!, 1);
    await eventually(
      () => {
        const order = fleet.monitor.selector.ranked("udp").map((r) => `${r.proxy}=${r.workload}`);
        return order.join(" ") === "p3=0 p2=0.1 p1=0.3" ? true : undefined;
      },
      10_000,
      "the reports to show the bindings",
    );
  });

  after(async () => {
    await phone?.stop();
    if (fleet !== undefined) await stopFleet(fleet);
  });

  test("SOA and NS at the apex, the name server's address as glue, authoritative", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const soa = await dig(fleet.port, ZONE, "SOA");
    assert.equal(soa.status, "NOERROR");
    assert.ok(soa.flags.includes("aa"), soa.output);
    assert.deepEqual(soa.answer[0]?.slice(3, 6), ["SOA", `ns.${ZONE}.`, `hostmaster.${ZONE}.`]);
    const ns = await dig(fleet.port, ZONE, "NS");
    assert.deepEqual(ns.answer[0]?.slice(3), ["NS", `ns.${ZONE}.`]);
    assert.deepEqual(ns.additional[0]?.slice(3), ["A", "127.0.0.1"]);
  });

  test("SRV follows the load: the least loaded first (priority 10), then by rank, weights from spare", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const before = fleet.monitor.selector.timesChosen("p3");
    const srv = await dig(fleet.port, `_sip._udp.${ZONE}`, "SRV");
    assert.equal(srv.status, "NOERROR");
    assert.ok(srv.flags.includes("aa"));
    const records = srvTargets(srv);
    assert.deepEqual(
      records.map(([priority, , , target]) => [priority, target]),
      [
        ["10", `p3.${ZONE}.`],
        ["20", `p2.${ZONE}.`],
        ["20", `p1.${ZONE}.`],
      ],
      srv.output,
    );
    const weights = records.map(([, weight]) => Number(weight));
    assert.ok(weights[0]! > weights[1]! && weights[1]! > weights[2]!, `weights ${weights}`);
    const ports = fleet.proxies.map((p) => String(udpPort(p)));
    assert.deepEqual(
      records.map(([, , port]) => port),
      [ports[2], ports[1], ports[0]],
    );
    const ttl = Number(srv.answer[0]![1]);
    assert.ok(ttl >= 1 && ttl <= 5, `TTL ${ttl}`);
    // The targets' addresses ride along, so that a phone needs no second query.
    assert.deepEqual(
      srv.additional.filter((r) => r[3] === "A").map((r) => [r[0], r[4]]),
      [
        [`p3.${ZONE}.`, "127.0.0.13"],
        [`p2.${ZONE}.`, "127.0.0.12"],
        [`p1.${ZONE}.`, "127.0.0.11"],
      ],
    );
    assert.equal(fleet.monitor.selector.timesChosen("p3"), before + 1, "counted as a send");
  });

  test("over TCP: the same answers (SRV for _sip._tcp, the proxies' TCP ports)", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const srv = await dig(fleet.tcpPort, "+tcp", `_sip._tcp.${ZONE}`, "SRV");
    assert.equal(srv.status, "NOERROR", srv.output);
    const tcpPorts = fleet.proxies.map((p) =>
      String(p.listeners.find((l) => l.protocol === "tcp")!.port),
    );
    assert.deepEqual(
      srvTargets(srv).map(([, , port, target]) => [target, port]),
      [
        [`p3.${ZONE}.`, tcpPorts[2]],
        [`p2.${ZONE}.`, tcpPorts[1]],
        [`p1.${ZONE}.`, tcpPorts[0]],
      ],
    );
    const soa = await dig(fleet.tcpPort, "+tcp", ZONE, "SOA");
    assert.equal(soa.answer[0]?.[3], "SOA");
  });

  test("A of the proxies' names, whatever the letters' case; NAPTR for the transports served", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    for (let i = 1; i <= 3; i++) {
      const a = await dig(fleet.port, `P${i}.SipSteer.Test`, "A");
      assert.equal(a.status, "NOERROR");
      assert.deepEqual(
        a.answer.map((r) => r.slice(3)),
        [["A", `127.0.0.1${i}`]],
      );
    }
    const naptr = await dig(fleet.port, ZONE, "NAPTR");
    assert.deepEqual(
      naptr.answer.map((r) => r.slice(3)),
      [
        ["NAPTR", "90", "50", '"s"', '"SIP+D2T"', '""', `_sip._tcp.${ZONE}.`],
        ["NAPTR", "100", "50", '"s"', '"SIP+D2U"', '""', `_sip._udp.${ZONE}.`],
      ],
      naptr.output,
    );
  });

  test("NODATA for names without the type, NXDOMAIN for others, REFUSED outside the zone", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    for (const [name, type] of [
      [`p1.${ZONE}`, "AAAA"],
      [`_sip._udp.${ZONE}`, "A"],
      [ZONE, "MX"],
    ] as const) {
      const d = await dig(fleet.port, name, type);
      assert.equal(d.status, "NOERROR", `${name} ${type}`);
      assert.equal(d.answer.length, 0, `${name} ${type}`);
      assert.equal(d.authority[0]?.[3], "SOA", `${name} ${type}: SOA in authority`);
    }
    const nx = await dig(fleet.port, `p9.${ZONE}`, "A");
    assert.equal(nx.status, "NXDOMAIN");
    assert.ok(nx.flags.includes("aa"));
    assert.equal(nx.authority[0]?.[3], "SOA");
    const refused = await dig(fleet.port, "example.com", "A");
    assert.equal(refused.status, "REFUSED");
  });

  test("a malformed datagram changes nothing: the next query is answered, both are counted", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const socket = createSocket("udp4");
    try {
      await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
      const replies: Buffer[] = [];
      socket.on("message", (m) => replies.push(m));
      const good = encode({ type: "query", id: 77, questions: [{ name: ZONE, type: "SOA" }] });
      // Too short for a header: dropped. A header and a cut question: FORMERR.
      socket.send(Buffer.from([1, 2, 3]), fleet.port, "127.0.0.1");
      socket.send(good.subarray(0, good.length - 3), fleet.port, "127.0.0.1");
      socket.send(Buffer.alloc(400, 0xff), fleet.port, "127.0.0.1");
      await eventually(() => (replies.length >= 1 ? true : undefined), 3000, "FORMERR");
      const formerr = decode(replies[0]!) as ReturnType<typeof decode> & { rcode?: string };
      assert.equal(formerr.id, 77);
      assert.equal(formerr.rcode, "FORMERR");
    } finally {
      socket.close();
    }
    const soa = await dig(fleet.port, ZONE, "SOA");
    assert.equal(soa.status, "NOERROR");
    const metrics = await (await fetch(`${fleet.monitor.httpUrl}/metrics`)).text();
    assert.match(metrics, /sipsteer_monitor_dns_queries_total\{rcode="FORMERR"\} 1\b/);
    assert.match(metrics, /sipsteer_monitor_dns_queries_total\{rcode="NOERROR"\} \d+/);
    // The 3-byte datagram and the one that claims to be a response (QR set): dropped.
    assert.match(metrics, /sipsteer_monitor_dns_dropped_total 2\b/);
  });

  // DESIGN.md: "Phones register at the proxy they find by DNS". baresip resolves the domain of
  // its account by NAPTR, then SRV, then A (RFC 3263), with the monitor as its DNS server.
  test("baresip registers at the proxy the monitor ranks first, found through its DNS", async (t) => {
    if (!requireTool(t, "baresip", "baresip-core")) return;
    const { monitor, proxies } = fleet;
    const ranked = (["udp", "tcp"] as const).map((tr) => monitor.selector.ranked(tr)[0]?.proxy);
    assert.deepEqual(ranked, ["p3", "p3"], "p3 is the least loaded on either transport");
    const registrationsBefore = proxies.map((p) => p.report().registrations);
    assert.deepEqual(registrationsBefore, [3, 1, 0]);
    const chosenBefore = monitor.selector.timesChosen("p3");

    const dir = mkdtempSync(join(tmpdir(), "sipsteer-baresip-dns-"));
    writeFileSync(
      join(dir, "config"),
      [
        "poll_method epoll",
        "sip_listen 127.0.0.1:0",
        `dns_server 127.0.0.1:${fleet.port}`,
        "module_path /usr/lib/baresip/modules",
        "module g711.so",
        "module ausine.so",
        "module_app account.so",
        "audio_player ausine,nil",
        "audio_source ausine,nil",
        "audio_alert ausine,nil",
        "",
      ].join("\n"),
    );
    writeFileSync(
      join(dir, "accounts"),
      `<sip:alice@${ZONE}>;auth_pass=${PASSWORDS.alice};regint=600\n`,
    );
    const child = spawn("baresip", ["-f", dir, "-t", "60"], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (output += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (output += c));
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    try {
      await eventually(
        () => (proxies[2]!.report().registrations === 1 ? true : undefined),
        15_000,
        "alice's binding at p3",
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\nbaresip said:\n${output}`);
      });
      assert.match(output, /200 OK/);
      assert.deepEqual(
        proxies.map((p) => p.report().registrations),
        [3, 1, 1],
        "alice is bound at p3 only",
      );
      assert.ok(monitor.selector.timesChosen("p3") > chosenBefore, "baresip's SRV query chose p3");
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const done = await within(exited, 5000);
      if (done === undefined) child.kill("SIGKILL");
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("monitor DNS front without eligible proxies", () => {
  // Issue 5: "With no eligible proxy, the answer says so (… DNS SERVFAIL …)".
  test("SERVFAIL once every proxy is drained, and again once they are stopped; nothing left open after stop", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const fleet = await startFleet();
    try {
      assert.equal((await dig(fleet.port, `_sip._udp.${ZONE}`, "SRV")).status, "NOERROR");
      for (const proxy of fleet.proxies) proxy.drain();
      await eventually(
        () => (fleet.monitor.table.eligible().length === 0 ? true : undefined),
        5000,
        "every proxy draining",
      );
      for (const name of ["_sip._udp", "_sip._tcp"]) {
        const d = await dig(fleet.port, `${name}.${ZONE}`, "SRV");
        assert.equal(d.status, "SERVFAIL", d.output);
        assert.equal(d.answer.length, 0);
      }
      // NAPTR names no transport then; the apex is still answered.
      const naptr = await dig(fleet.port, ZONE, "NAPTR");
      assert.equal(naptr.status, "NOERROR");
      assert.equal(naptr.answer.length, 0);
      assert.equal((await dig(fleet.port, ZONE, "SOA")).status, "NOERROR");

      for (const proxy of fleet.proxies) proxy.undrain();
      await eventually(
        () => (fleet.monitor.table.eligible().length === 3 ? true : undefined),
        5000,
        "every proxy back",
      );
      for (const proxy of fleet.proxies) await proxy.stop();
      // Stopped proxies go stale after 3 missed intervals.
      await eventually(
        () => (fleet.monitor.table.eligible().length === 0 ? true : undefined),
        5000,
        "every proxy stale",
      );
      const d = await dig(fleet.tcpPort, "+tcp", `_sip._udp.${ZONE}`, "SRV");
      assert.equal(d.status, "SERVFAIL", d.output);
    } finally {
      await stopFleet(fleet);
    }
    assert.deepEqual(await openHandles(), {});
  });
});

describe("monitor DNS front with on-query collection", () => {
  // Issue 5, claim 12: collection on a client's query — a stale report is refreshed first.
  test("an SRV query fetches the report of an on-query proxy before answering, so dig gets it at once", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const proxy = new Proxy({
      id: "pq",
      domains: [ZONE],
      listen: [{ protocol: "udp", address: "127.0.0.14", port: 0 }],
      allowedDestinations: LOOPBACK,
      auth: { enabled: false },
      http: { address: "127.0.0.1", port: 0 },
      // It pushes nowhere and reports seldom: only the monitor's GET /load makes a report.
      report: { intervalMs: 60_000, push: [] },
    });
    let monitor: Monitor | undefined;
    try {
      await proxy.start();
      monitor = new Monitor(
        monitorConfig({
          workload: undefined,
          proxies: [{ id: "pq", http: proxy.httpUrl, modes: ["on-query"], onQueryMaxAgeMs: 300 }],
        }),
      );
      await monitor.start();
      assert.equal(monitor.table.eligible().length, 0, "no report yet");
      const port = monitor.dnsListeners.find((l) => l.protocol === "udp")!.port;
      const srv = await dig(port, `_sip._udp.${ZONE}`, "SRV");
      assert.equal(srv.status, "NOERROR", srv.output);
      assert.deepEqual(
        srvTargets(srv).map(([priority, , port_, target]) => [priority, port_, target]),
        [["10", String(udpPort(proxy)), `pq.${ZONE}.`]],
      );
      assert.ok(monitor.collectorCounters().polls >= 1, "polled on the query");
    } finally {
      await monitor?.stop();
      await proxy.stop();
    }
  });
});

describe("monitor DNS config and CLI", () => {
  test("a bad zone or listener names its field", () => {
    const base = { http: { address: "127.0.0.1", port: 0 } };
    const listen = [{ protocol: "udp", address: "127.0.0.1", port: 0 }];
    assert.throws(
      () => parseMonitorConfig({ ...base, dns: { zone: "bad_zone.test", listen } }),
      /monitor\.dns\.zone: /,
    );
    assert.throws(
      () => parseMonitorConfig({ ...base, dns: { listen: [] } }),
      /monitor\.dns\.listen/,
    );
    assert.throws(
      () => parseMonitorConfig({ ...base, dns: { listen, nameServer: { address: "ns1" } } }),
      /monitor\.dns\.nameServer\.address: /,
    );
    const ok = parseMonitorConfig({ ...base, dns: { zone: "Fleet.Example.", listen } });
    assert.equal(ok.dns?.zone, "fleet.example");
    assert.equal(parseMonitorConfig({ ...base, dns: { listen } }).dns?.zone, ZONE);
  });

  test("sipsteer monitor --json names the DNS address and zone; dig gets SOA, and SERVFAIL before any report", async (t) => {
    if (!requireTool(t, "dig", "bind9-dnsutils")) return;
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-dns-cli-"));
    const config = join(dir, "monitor.yaml");
    writeFileSync(
      config,
      [
        "http: { address: 127.0.0.1, port: 0 }",
        "dns:",
        `  zone: ${ZONE}`,
        "  listen: [{ protocol: udp, address: 127.0.0.1, port: 0 }]",
        `allowedDestinations: ["127.0.0.0/8"]`,
        "",
      ].join("\n"),
    );
    const run = runCli(["monitor", "-c", config, "--json", "--log-level", "warn"]);
    try {
      const line = await within(run.firstLine, 10_000);
      assert.ok(line !== undefined, `a JSON line within 10 s: ${run.stderr}`);
      const info = JSON.parse(line) as { monitor: { dns?: string; zone?: string } };
      assert.equal(info.monitor.zone, ZONE);
      const m = /^127\.0\.0\.1:(\d+)$/.exec(info.monitor.dns ?? "");
      assert.ok(m !== null && m[1] !== "0", `dns in ${line}`);
      const port = Number(m[1]);
      assert.equal((await dig(port, ZONE, "SOA")).status, "NOERROR");
      assert.equal((await dig(port, `_sip._udp.${ZONE}`, "SRV")).status, "SERVFAIL");
      run.child.kill("SIGTERM");
      assert.deepEqual(await within(run.exit, 5000), { code: 0, signal: null }, run.stderr);
    } finally {
      reap(run);
      await run.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
