// The monitor's media relays (issue 8, "Several relays, balanced by the monitor"): the `relays`
// config, the rtpengine adapter against scripted ng peers on the injected clock, and
// `GET /v1/select?kind=media` and `GET /v1/relays` — relays kept apart from the proxies, so no
// SIP answer (HTTP transport select, DNS, SIP redirect) ever names one. The same against real
// rtpengine processes is in relays-rtpengine.test.ts.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { describe, it } from "node:test";
import { decode, encode } from "dns-packet";
import { relaySelectAnswerSchema, type RelaySelectAnswer } from "../../src/contracts/index.js";
import { bdecode, bencode, type BencodeValue } from "../../src/media/rtpengine/index.js";
import {
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_POLL_TIMEOUT_MS,
  Monitor,
  PORTS_PER_SESSION,
  parseMonitorConfig,
  relaySize,
  relayWorkload,
  type MonitorConfigInput,
  type RelayListing,
} from "../../src/monitor/index.js";
import { eventually } from "../helpers/eventually.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];

describe("monitor config: relays", () => {
  it("defaults to none, and fills an entry's adapter, capacity and timings", () => {
    assert.deepEqual(parseMonitorConfig({}).relays, []);
    const { relays } = parseMonitorConfig({
      relays: [
        { id: "r1", ng: "127.0.0.1:2223" },
        {
          id: "r2",
          adapter: "rtpengine",
          ng: "[::1]:2224",
          capacity: { sessions: 500 },
          pollIntervalMs: 100,
          pollTimeoutMs: 300,
        },
      ],
    });
    assert.deepEqual(relays, [
      {
        id: "r1",
        adapter: "rtpengine",
        ng: "127.0.0.1:2223",
        capacity: { sessions: 0 },
        pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
        pollTimeoutMs: DEFAULT_POLL_TIMEOUT_MS,
      },
      {
        id: "r2",
        adapter: "rtpengine",
        ng: "[::1]:2224",
        capacity: { sessions: 500 },
        pollIntervalMs: 100,
        pollTimeoutMs: 300,
      },
    ]);
    assert.ok(Object.isFrozen(relays[0]!.capacity));
  });

  it("refuses a bad entry naming its field", () => {
    const cases: [unknown, RegExp][] = [
      [{ id: "r1" }, /^monitor\.relays\.0\.ng: required/],
      [{ id: "r1", ng: "localhost:2223" }, /^monitor\.relays\.0\.ng: an IP literal and a port/],
      [{ id: "r1", ng: "127.0.0.1" }, /^monitor\.relays\.0\.ng: an IP literal/],
      [{ id: "r1", ng: "::1:2223" }, /^monitor\.relays\.0\.ng: an IP literal/],
      [{ id: "r1", ng: "[127.0.0.1]:2223" }, /^monitor\.relays\.0\.ng: an IP literal/],
      [{ id: "r1", ng: "127.0.0.1:0" }, /^monitor\.relays\.0\.ng: port 0/],
      [{ id: "r1", ng: "127.0.0.1:70000" }, /^monitor\.relays\.0\.ng: port 70000/],
      [{ id: "", ng: "127.0.0.1:2223" }, /^monitor\.relays\.0\.id: /],
      [{ id: "r1", ng: "127.0.0.1:2223", adapter: "kamailio" }, /relays\.0\.adapter: .*rtpengine/],
      [
        { id: "r1", ng: "127.0.0.1:2223", capacity: { sessions: -1 } },
        /^monitor\.relays\.0\.capacity\.sessions: /,
      ],
      [
        { id: "r1", ng: "127.0.0.1:2223", capacity: { sessions: 1.5 } },
        /^monitor\.relays\.0\.capacity\.sessions: /,
      ],
      [
        { id: "r1", ng: "127.0.0.1:2223", pollIntervalMs: 0 },
        /^monitor\.relays\.0\.pollIntervalMs/,
      ],
      [{ id: "r1", ng: "127.0.0.1:2223", pollTimeoutMs: -5 }, /^monitor\.relays\.0\.pollTimeoutMs/],
    ];
    for (const [entry, message] of cases) {
      assert.throws(
        () => parseMonitorConfig({ relays: [entry] }),
        { message },
        JSON.stringify(entry),
      );
    }
    assert.throws(
      () =>
        parseMonitorConfig({
          relays: [
            { id: "r1", ng: "127.0.0.1:2223" },
            { id: "r1", ng: "127.0.0.1:2224" },
          ],
        }),
      { message: "monitor.relays.1.id: duplicate r1" },
    );
  });

  it("refuses a relay whose ng host is outside allowedDestinations", () => {
    assert.throws(
      () =>
        parseMonitorConfig({
          allowedDestinations: LOOPBACK,
          relays: [
            { id: "r1", ng: "127.0.0.1:2223" },
            { id: "r2", ng: "10.0.0.5:2223" },
          ],
        }),
      { message: "monitor.relays.1.ng: 10.0.0.5 is outside allowedDestinations" },
    );
    assert.throws(
      () =>
        parseMonitorConfig({
          allowedDestinations: ["127.0.0.0/8"],
          relays: [{ id: "r", ng: "[::1]:1" }],
        }),
      { message: "monitor.relays.0.ng: ::1 is outside allowedDestinations" },
    );
    assert.equal(
      parseMonitorConfig({ allowedDestinations: LOOPBACK, relays: [{ id: "r", ng: "[::1]:1" }] })
        .relays.length,
      1,
    );
  });
});

describe("relay workload and size", () => {
  const stats = (sessions: number, used: number, total: number) => ({
    sessions,
    packetRate: 0,
    byteRate: 0,
    errorRate: 0,
    uptimeS: 1,
    managedSessions: 0,
    rejectedSessions: 0,
    ports: { used, free: total - used, total },
  });

  it("is sessions/capacity with a capacity, else the share of ports in use", () => {
    assert.equal(relayWorkload(stats(3, 12, 200), 10), 0.3);
    assert.equal(relaySize(stats(3, 12, 200), 10), 10);
    assert.equal(relayWorkload(stats(3, 12, 200), 0), 0.06);
    assert.equal(relaySize(stats(3, 12, 200), 0), 200 / PORTS_PER_SESSION);
    assert.equal(relayWorkload(stats(0, 0, 0), 0), 0);
    assert.equal(relaySize(stats(0, 0, 0), 0), 0);
  });
});

/**
 * A scripted rtpengine on loopback: answers `ping` and `statistics` (its sessions, ports and
 * uptime as set) unless `silent`; `restart()` sets its uptime back to 0.
 */
class NgPeer {
  sessions = 0;
  ports = { used: 0, total: 200 };
  silent = false;
  /** Requests seen, by command. */
  readonly seen = new Map<string, number>();
  #bootAt = Date.now() - 60_000;

  private constructor(
    readonly socket: Socket,
    readonly port: number,
  ) {
    socket.on("message", (msg, rinfo) => {
      const space = msg.indexOf(0x20);
      const cookie = msg.toString("latin1", 0, space);
      const request = bdecode(msg.subarray(space + 1)) as Record<string, BencodeValue>;
      const command = String(request["command"]);
      this.seen.set(command, (this.seen.get(command) ?? 0) + 1);
      if (this.silent) return;
      const reply: Record<string, BencodeValue> =
        command === "ping" ? { result: "pong" } : { result: "ok", statistics: this.#statistics() };
      socket.send(
        Buffer.concat([Buffer.from(`${cookie} `), bencode(reply)]),
        rinfo.port,
        rinfo.address,
      );
    });
  }

  static async start(): Promise<NgPeer> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    return new NgPeer(socket, socket.address().port);
  }

  get ng(): string {
    return `127.0.0.1:${this.port}`;
  }

  restart(): void {
    this.#bootAt = Date.now();
    this.sessions = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  #statistics(): Record<string, BencodeValue> {
    return {
      currentstatistics: {
        sessionsown: this.sessions,
        packetrate: 50 * this.sessions,
        byterate: 0,
      },
      totalstatistics: { uptime: String(Math.floor((Date.now() - this.#bootAt) / 1000)) },
      interfaces: [
        {
          name: "default",
          ports: {
            used: this.ports.used,
            free: this.ports.total - this.ports.used,
            totals: this.ports.total,
          },
        },
      ],
    };
  }
}

const POLL_MS = 100;
const TIMEOUT_MS = 300;
const PROBE_THRESHOLD = 2;

interface Rig {
  readonly monitor: Monitor;
  readonly clock: FakeClock;
  readonly peers: readonly NgPeer[];
}

async function withRelays(
  relays: (peers: readonly NgPeer[]) => MonitorConfigInput["relays"],
  n: number,
  body: (rig: Rig) => Promise<void>,
  over: Partial<MonitorConfigInput> = {},
): Promise<void> {
  const clock = new FakeClock();
  const peers: NgPeer[] = [];
  let monitor: Monitor | undefined;
  try {
    for (let i = 0; i < n; i++) peers.push(await NgPeer.start());
    monitor = new Monitor(
      {
        http: { address: "127.0.0.1", port: 0 },
        allowedDestinations: LOOPBACK,
        table: { probeThreshold: PROBE_THRESHOLD },
        relays: relays(peers),
        ...over,
      },
      { clock },
    );
    await monitor.start();
    await body({ monitor, clock, peers });
  } finally {
    await monitor?.stop();
    for (const peer of peers) await peer.close();
  }
  assert.equal(clock.pending, 0, "a timer left on the clock");
  assert.deepEqual(await openHandles(), {});
}

const relay = (id: string, peer: NgPeer, sessions = 10) => ({
  id,
  ng: peer.ng,
  capacity: { sessions },
  pollIntervalMs: POLL_MS,
  pollTimeoutMs: TIMEOUT_MS,
});

/** Runs the clock on by `ms` in steps, letting I/O and promise chains run between them. */
async function advance(clock: FakeClock, ms: number, step = 10): Promise<void> {
  for (let t = 0; t < ms; t += step) {
    clock.tick(Math.min(step, ms - t));
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
}

async function listing(monitor: Monitor): Promise<RelayListing[]> {
  const res = await fetch(`${monitor.httpUrl}/v1/relays`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { relays: RelayListing[] }).relays;
}

/** Polls answered and taken, by advancing the clock a poll interval at a time. */
async function untilListed(
  rig: Rig,
  ready: (relays: RelayListing[]) => boolean,
  what: string,
): Promise<RelayListing[]> {
  return eventually(
    async () => {
      const relays = await listing(rig.monitor);
      if (ready(relays)) return relays;
      await advance(rig.clock, POLL_MS);
      return undefined;
    },
    5000,
    what,
    1,
  );
}

const byId = (relays: RelayListing[], id: string): RelayListing => relays.find((r) => r.id === id)!;

async function selectMedia(monitor: Monitor): Promise<RelaySelectAnswer> {
  const res = await fetch(`${monitor.httpUrl}/v1/select?kind=media`);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(res.headers.get("cache-control"), "no-store");
  return relaySelectAnswerSchema.parse(await res.json());
}

describe("rtpengine adapter against scripted ng peers (injected clock)", () => {
  it("answers kind=media with the less-loaded relay: sessions/capacity, or ports in use without a capacity", async () => {
    await withRelays(
      (p) => [relay("r1", p[0]!, 10), relay("r2", p[1]!, 0)],
      2,
      async (rig) => {
        const [p1, p2] = rig.peers as [NgPeer, NgPeer];
        p1.sessions = 3;
        p2.sessions = 10;
        p2.ports = { used: 40, total: 200 };
        await advance(rig.clock, 0);
        const relays = await untilListed(
          rig,
          (r) => r.every((x) => x.eligible),
          "both relays eligible",
        );
        assert.equal(byId(relays, "r1").workload, 0.3);
        assert.equal(byId(relays, "r2").workload, 0.2);
        assert.deepEqual(byId(relays, "r2").ports, { used: 40, free: 160, total: 200 });
        assert.equal(byId(relays, "r1").sessions, 3);
        assert.equal(byId(relays, "r1").packet_rate, 150);
        assert.equal(byId(relays, "r1").adapter, "rtpengine");
        assert.equal(byId(relays, "r1").ng, p1.ng);
        assert.equal(byId(relays, "r1").state, "eligible");
        assert.ok(p1.seen.get("ping")! >= 1 && p1.seen.get("statistics")! >= 1);

        const answer = await selectMedia(rig.monitor);
        assert.equal(answer.kind, "media");
        assert.equal(answer.relay, "r2");
        assert.equal(answer.ng, p2.ng);
        assert.equal(answer.workload, 0.2);
        assert.equal(answer.ttl, 1);
        assert.ok(answer.age_ms >= 0 && answer.age_ms <= 2 * POLL_MS, String(answer.age_ms));
        assert.deepEqual(answer.alternates, [{ relay: "r1", ng: p1.ng, workload: 0.3 }]);

        // r2 fills up: r1 is now the less loaded.
        p2.ports = { used: 120, total: 200 };
        await untilListed(rig, (r) => byId(r, "r2").workload === 0.6, "r2 at 0.6");
        assert.equal((await selectMedia(rig.monitor)).relay, "r1");

        const metrics = await (await fetch(`${rig.monitor.httpUrl}/metrics`)).text();
        assert.match(metrics, /^sipsteer_monitor_relays_known 2$/m);
        assert.match(metrics, /^sipsteer_monitor_relays_eligible 2$/m);
        assert.match(metrics, /^sipsteer_monitor_relay_selects_total\{relay="r1"\} 1$/m);
        assert.match(metrics, /^sipsteer_monitor_relay_selects_total\{relay="r2"\} 1$/m);
        assert.match(metrics, /^sipsteer_monitor_relay_sessions\{relay="r1"\} 3$/m);
        assert.equal(byId(await listing(rig.monitor), "r1").times_chosen, 1);
      },
    );
  });

  it("spreads a burst of selects by the herd correction, as for proxies (literal herds it)", async () => {
    for (const policy of ["least-loaded", "literal"] as const) {
      await withRelays(
        (p) => [relay("r1", p[0]!, 4), relay("r2", p[1]!, 4)],
        2,
        async (rig) => {
          await advance(rig.clock, 0);
          await untilListed(rig, (r) => r.every((x) => x.eligible), "both relays eligible");
          const chosen: string[] = [];
          for (let i = 0; i < 4; i++) chosen.push((await selectMedia(rig.monitor)).relay);
          const count = (id: string) => chosen.filter((c) => c === id).length;
          if (policy === "least-loaded") {
            assert.deepEqual([count("r1"), count("r2")], [2, 2], chosen.join());
          } else {
            assert.equal(Math.max(count("r1"), count("r2")), 4, chosen.join());
          }
        },
        { select: { policy } },
      );
    }
  });

  it("skips a relay that stops answering (stale at once, down after k failed rounds) and takes it back when it answers again", async () => {
    await withRelays(
      (p) => [relay("r1", p[0]!), relay("r2", p[1]!)],
      2,
      async (rig) => {
        const [p1, p2] = rig.peers as [NgPeer, NgPeer];
        p1.sessions = 5;
        p2.sessions = 1;
        await advance(rig.clock, 0);
        await untilListed(rig, (r) => r.every((x) => x.eligible), "both relays eligible");
        assert.equal((await selectMedia(rig.monitor)).relay, "r2");

        p2.silent = true;
        // Three poll intervals without an answer: stale, not chosen.
        await advance(rig.clock, 3 * POLL_MS + TIMEOUT_MS);
        let r2 = byId(await listing(rig.monitor), "r2");
        assert.equal(r2.eligible, false);
        for (let i = 0; i < 5; i++) {
          const answer = await selectMedia(rig.monitor);
          assert.equal(answer.relay, "r1");
          assert.deepEqual(answer.alternates, []);
        }
        // k rounds timed out: down.
        await advance(rig.clock, PROBE_THRESHOLD * (TIMEOUT_MS + POLL_MS));
        r2 = byId(await listing(rig.monitor), "r2");
        assert.equal(r2.state, "down");
        assert.equal(r2.health, "down");
        assert.ok(r2.failures >= PROBE_THRESHOLD, String(r2.failures));
        assert.match(r2.last_failure ?? "", /NG_TIMEOUT/);
        const boot = r2.boot;

        // The same rtpengine answers again: up after k good rounds, the same boot.
        p2.silent = false;
        r2 = byId(await untilListed(rig, (r) => byId(r, "r2").eligible, "r2 eligible again"), "r2");
        assert.equal(r2.boot, boot);
        assert.equal((await selectMedia(rig.monitor)).relay, "r2");
      },
    );
  });

  it("takes a restarted relay (its uptime went back) at its first answer, not after k", async () => {
    // k is large here, so that coming back by k good rounds and by a new boot differ plainly.
    const K = 5;
    await withRelays(
      (p) => [relay("r1", p[0]!)],
      1,
      async (rig) => {
        const [p1] = rig.peers as [NgPeer];
        await advance(rig.clock, 0);
        const before = byId(await untilListed(rig, (r) => r[0]!.eligible, "r1 eligible"), "r1");
        p1.silent = true;
        await advance(rig.clock, K * (TIMEOUT_MS + POLL_MS) + POLL_MS);
        const down = byId(await listing(rig.monitor), "r1");
        assert.equal(down.state, "down");

        p1.restart();
        p1.silent = false;
        const after = byId(
          await untilListed(rig, (r) => r[0]!.eligible, "r1 eligible after its restart"),
          "r1",
        );
        assert.notEqual(after.boot, before.boot);
        // The round in flight at the restart (unanswered) and one answered round.
        assert.ok(after.polls - down.polls <= 2, `${after.polls - down.polls} rounds`);
      },
      { table: { probeThreshold: K } },
    );
  });

  it("answers 503 with Retry-After when no relay is eligible, 400 naming an unknown kind; SIP selects, DNS and the redirect never name a relay", async () => {
    await withRelays(
      (p) => [relay("r1", p[0]!)],
      1,
      async (rig) => {
        const { monitor } = rig;
        const get = (path: string) => fetch(`${monitor.httpUrl}${path}`);

        // Before its first answer the relay is stale: none eligible.
        let res = await get("/v1/select?kind=media");
        assert.equal(res.status, 503);
        assert.equal(res.headers.get("retry-after"), "1");
        assert.deepEqual(await res.json(), {
          error: "no eligible media relay",
          reason: "no-relay",
        });

        await advance(rig.clock, 0);
        await untilListed(rig, (r) => r[0]!.eligible, "r1 eligible");
        assert.equal((await selectMedia(monitor)).relay, "r1");
        // `transport` does not apply to a relay and is not read.
        res = await get("/v1/select?kind=media&transport=udp");
        assert.equal(res.status, 200);
        await res.body?.cancel();

        res = await get("/v1/select?kind=video");
        assert.equal(res.status, 400);
        const bad = (await res.json()) as { error: string; reason: string };
        assert.equal(bad.reason, "bad-kind");
        assert.match(bad.error, /"video"/);
        assert.match(bad.error, /sip, media/);
        res = await get("/v1/select?kind=media&kind=sip");
        assert.equal(res.status, 400);
        await res.body?.cancel();

        // The relay is eligible, yet no SIP client is ever sent to it.
        for (const path of [
          "/v1/select",
          "/v1/select?transport=udp",
          "/v1/select?kind=sip",
          "/v1/select?kind=sip&transport=tcp",
        ]) {
          res = await get(path);
          assert.equal(res.status, 503, path);
          assert.match(((await res.json()) as { error: string }).error, /no eligible proxy/);
        }
        assert.equal(monitor.table.size, 0);
        const proxies = (await (await get("/v1/proxies")).json()) as { proxies: unknown[] };
        assert.deepEqual(proxies.proxies, []);
        assert.equal((await get("/readyz")).status, 503);

        const dns = monitor.dnsListeners.find((l) => l.protocol === "udp")!;
        const srv = await dnsQuery(dns.port, "_sip._udp.sipsteer.test", "SRV");
        assert.equal(srv.rcode, "SERVFAIL");
        assert.deepEqual(srv.answers, []);
        const a = await dnsQuery(dns.port, "r1.sipsteer.test", "A");
        assert.equal(a.rcode, "NXDOMAIN");

        const sip = monitor.sipListeners.find((l) => l.protocol === "udp")!;
        const redirect = await sipInvite(sip.port);
        assert.match(redirect, /^SIP\/2\.0 503 /);
        assert.doesNotMatch(redirect, new RegExp(rig.peers[0]!.ng.replace(/\./g, "\\.")));
      },
      {
        dns: { listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
        sip: { listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
      },
    );
  });

  it("with no relays configured, kind=media is a 503 and /v1/relays is empty", async () => {
    await withRelays(
      () => [],
      0,
      async ({ monitor }) => {
        const res = await fetch(`${monitor.httpUrl}/v1/select?kind=media`);
        assert.equal(res.status, 503);
        await res.body?.cancel();
        assert.deepEqual(await listing(monitor), []);
      },
    );
  });
});

/** One DNS query over UDP to the monitor's front. */
async function dnsQuery(
  port: number,
  name: string,
  type: "SRV" | "A",
): Promise<{ rcode: string; answers: unknown[] }> {
  const socket = createSocket("udp4");
  try {
    const reply = new Promise<Buffer>((resolve) => socket.once("message", resolve));
    const query = encode({ type: "query", id: 7, questions: [{ type, name }] });
    await new Promise<void>((resolve, reject) =>
      socket.send(query, port, "127.0.0.1", (e) => (e ? reject(e) : resolve())),
    );
    // dns-packet decodes the header's rcode, which its types leave out.
    const packet = decode(await reply) as ReturnType<typeof decode> & { rcode?: string };
    return { rcode: packet.rcode ?? "NOERROR", answers: packet.answers ?? [] };
  } finally {
    socket.close();
  }
}

/** An INVITE to the monitor's SIP redirect front over UDP; its final response as text. */
async function sipInvite(port: number): Promise<string> {
  const socket = createSocket("udp4");
  try {
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const local = socket.address().port;
    const invite = [
      "INVITE sip:bob@sipsteer.test SIP/2.0",
      `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-relay1;rport`,
      "Max-Forwards: 70",
      "From: <sip:alice@sipsteer.test>;tag=a1",
      "To: <sip:bob@sipsteer.test>",
      "Call-ID: relay-kept-apart",
      "CSeq: 1 INVITE",
      `Contact: <sip:alice@127.0.0.1:${local}>`,
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    const final = new Promise<string>((resolve) =>
      socket.on("message", (msg) => {
        const text = msg.toString("utf8");
        if (!/^SIP\/2\.0 1\d\d /.test(text)) resolve(text);
      }),
    );
    socket.send(invite, port, "127.0.0.1");
    return await final;
  } finally {
    socket.close();
  }
}
