// The monitor's SIP redirect front (issue 5, DESIGN.md "Client query") against REAL proxies on
// loopback pushing their reports: 302 with the ranked proxies as Contacts, a stateless UAS
// (retransmissions answered from its cache of answers, the ACK absorbed, CANCEL per §9.2,
// responses routed per §18.2.2), OPTIONS, 503 with no eligible proxy, TCP, a burst spread by
// the least-loaded correction, SIPp following the 302, a bounded cache, and nothing left open
// after stop().
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import type { SigningKey } from "../../src/contracts/index.js";
import {
  Monitor,
  RedirectFront,
  type MonitorConfigInput,
  type SelectAnswer,
} from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import type { ProxyConfigInput } from "../../src/proxy/proxy-config.js";
import type { SipResponse } from "../../src/sip/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { openHandles } from "../helpers/handles.js";
import { RawUdp } from "../helpers/sip-caller.js";
import { freePort, startSipp } from "../helpers/sipp.js";
import { eventually } from "../helpers/eventually.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY: SigningKey = { id: "k1", secret: "a-shared-report-secret" };
const INTERVAL_MS = 100;
/** Short SIP timers (T1 50 ms: the front keeps its answers 64 × T1, 3.2 s). */
const SIP_TIMERS = { t1Ms: 50 };

function monitorConfig(over: Partial<MonitorConfigInput> = {}): MonitorConfigInput {
  return {
    http: { address: "127.0.0.1", port: 0 },
    keys: [KEY],
    allowedDestinations: LOOPBACK,
    sip: {
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: 0 },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
    },
    ...over,
  };
}

function proxyConfig(id: string, push: string, over: Partial<ProxyConfigInput> = {}) {
  return {
    id,
    domains: [DOMAIN],
    listen: [{ protocol: "udp" as const, address: "127.0.0.1", port: 0 }],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    report: { intervalMs: INTERVAL_MS, push: [push], key: KEY },
    ...over,
  };
}

function sipPort(monitor: Monitor, protocol: "udp" | "tcp"): number {
  return monitor.sipListeners.find((l) => l.protocol === protocol)!.port;
}

function hostPort(proxy: Proxy, protocol: "udp" | "tcp" = "udp"): string {
  const l = proxy.listeners.find((x) => x.protocol === protocol)!;
  return `${l.address}:${l.port}`;
}

let counter = 0;

function invite(peer: RawUdp, callId = `redir-${counter + 1}`) {
  counter++;
  const branch = `z9hG4bK-r${counter}`;
  return [
    `INVITE sip:bob@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=${branch};rport`,
    "Max-Forwards: 70",
    `From: <sip:alice@${DOMAIN}>;tag=a${counter}`,
    `To: <sip:bob@${DOMAIN}>`,
    `Call-ID: ${callId}`,
    "CSeq: 1 INVITE",
    `Contact: <sip:alice@127.0.0.1:${peer.port}>`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

/** RFC 3261 §17.1.1.3: the ACK for a non-2xx final response reuses the INVITE's branch. */
function ackFor(response: SipResponse, peer: RawUdp): string {
  return [
    `ACK sip:bob@${DOMAIN} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${peer.port};branch=${response.topVia!.branch!};rport`,
    "Max-Forwards: 70",
    `From: ${response.getHeader("from")!}`,
    `To: ${response.getHeader("to")!}`,
    `Call-ID: ${response.callId}`,
    "CSeq: 1 ACK",
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

function responses(peer: RawUdp, callId: string, status?: number): SipResponse[] {
  return peer.received.items
    .map((d) => d.message)
    .filter(
      (m): m is SipResponse =>
        m?.type === "response" &&
        m.callId === callId &&
        (status === undefined || (m as SipResponse).status === status),
    );
}

async function finalFor(peer: RawUdp, callId: string): Promise<SipResponse> {
  return eventually(
    () => responses(peer, callId).find((r) => r.status >= 200),
    3000,
    `a final response to ${callId}`,
  );
}

function contactsOf(response: SipResponse): string[] {
  return response.getHeaders("contact").flatMap((v) => v.split(/,(?=\s*<)/).map((c) => c.trim()));
}

/** A monitor with the SIP front and `n` real proxies pushing to it, all eligible. */
async function withFleet(
  n: number,
  body: (ctx: { monitor: Monitor; proxies: Proxy[] }) => Promise<void>,
  proxyOver: (i: number) => Partial<ProxyConfigInput> = () => ({}),
): Promise<void> {
  const monitor = new Monitor(monitorConfig(), { sipTimers: SIP_TIMERS });
  const started: Proxy[] = [];
  try {
    await monitor.start();
    for (let i = 1; i <= n; i++) {
      const proxy = new Proxy(proxyConfig(`p${i}`, `${monitor.httpUrl}/v1/reports`, proxyOver(i)));
      started.push(proxy);
      await proxy.start();
    }
    await eventually(
      () => (monitor.table.eligible().length === n ? true : undefined),
      5000,
      `${n} eligible proxies`,
    );
    await body({ monitor, proxies: started });
  } finally {
    for (const proxy of started) await proxy.stop();
    await monitor.stop();
  }
  assert.deepEqual(await openHandles(), {});
}

describe("monitor SIP redirect front with real proxies", () => {
  // DESIGN.md: INVITE is answered 302 with the ranked proxies as Contacts with q-values, each
  // keeping the Request-URI's user.
  test("INVITE gets 302: least-loaded proxy first, the others with lower q", async () => {
    await withFleet(3, async ({ monitor, proxies }) => {
      const peer = await RawUdp.bind();
      try {
        const best = monitor.selector.ranked("udp")[0]!.proxy;
        const bestProxy = proxies.find((p) => p.config.id === best)!;
        const callId = "redir-first";
        await peer.send(invite(peer, callId), sipPort(monitor, "udp"));
        const final = await finalFor(peer, callId);
        assert.equal(final.status, 302);
        assert.equal(final.reason, "Moved Temporarily");
        assert.ok(final.to.tag !== undefined, "the 302 carries a To tag");
        const contacts = contactsOf(final);
        assert.equal(contacts.length, 3);
        assert.equal(contacts[0], `<sip:bob@${hostPort(bestProxy)}>;q=1.0`);
        const others = proxies.filter((p) => p !== bestProxy).map((p) => `sip:bob@${hostPort(p)}`);
        assert.deepEqual(
          contacts
            .slice(1)
            .map((c) => /^<([^>]+)>/.exec(c)![1])
            .sort(),
          others.sort(),
        );
        assert.deepEqual(
          contacts.map((c) => /;q=([\d.]+)$/.exec(c)![1]),
          ["1.0", "0.9", "0.8"],
        );
        assert.equal(monitor.selector.timesChosen(best), 1, "the redirect counts as a send");
      } finally {
        await peer.close();
      }
    });
  });

  // RFC 3261 §8.2.7: a stateless UAS answers every copy of a request; the front keeps its
  // answers, so a retransmitted INVITE (same branch) gets the very same 302, which is one
  // send to the selector. It does not retransmit the 302 itself, and the ACK is absorbed.
  test("a retransmitted INVITE gets the identical 302, counted once; the ACK is absorbed", async () => {
    await withFleet(2, async ({ monitor }) => {
      const peer = await RawUdp.bind();
      try {
        const port = sipPort(monitor, "udp");
        const callId = "redir-retrans";
        const text = invite(peer, callId);
        await peer.send(text, port);
        await finalFor(peer, callId);
        // Timer G would have fired at 50, 150 and 350 ms: the front does not resend alone.
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(responses(peer, callId, 302).length, 1, "no 302 without a new INVITE");
        await peer.send(text, port);
        await peer.send(text, port);
        await eventually(
          () => (responses(peer, callId, 302).length >= 3 ? true : undefined),
          3000,
          "a 302 for each copy of the INVITE",
        );
        const copies = peer.received.items.filter((d) => d.message?.callId === callId);
        assert.equal(copies.length, 3);
        for (const c of copies) assert.deepEqual(c.bytes, copies[0]!.bytes, "the same bytes");
        await peer.send(ackFor(copies[0]!.message as SipResponse, peer), port);
        await new Promise((r) => setTimeout(r, 300));
        assert.equal(
          peer.received.items.filter((d) => d.message?.callId === callId).length,
          3,
          "nothing answers the ACK",
        );
        const chosen = [...monitor.selector.chosenCounts().values()].reduce((a, b) => a + b, 0);
        assert.equal(chosen, 1, "one redirect, however many copies");
      } finally {
        await peer.close();
      }
    });
  });

  // A branch is meant to be unique in space and time (RFC 3261 §8.1.1.7), but a client that
  // reuses one (a counter restarted with its process) must not get another call's answer:
  // the same branch in another call (another Call-ID) is a new request, answered and counted.
  test("a branch seen before in another call gets its own 302", async () => {
    await withFleet(1, async ({ monitor }) => {
      const peer = await RawUdp.bind();
      try {
        const port = sipPort(monitor, "udp");
        const first = invite(peer, "redir-branch-a");
        const branch = /branch=([^;]+)/.exec(first)![1]!;
        await peer.send(first, port);
        await finalFor(peer, "redir-branch-a");
        const again = invite(peer, "redir-branch-b").replace(/branch=[^;]+/, `branch=${branch}`);
        await peer.send(again, port);
        const second = await finalFor(peer, "redir-branch-b");
        assert.equal(second.status, 302);
        assert.equal(second.callId, "redir-branch-b");
        const chosen = [...monitor.selector.chosenCounts().values()].reduce((a, b) => a + b, 0);
        assert.equal(chosen, 2);
      } finally {
        await peer.close();
      }
    });
  });

  // RFC 3261 §9.2: a CANCEL matching a request already answered gets 200 (with the To tag of
  // that answer); the INVITE's 302 stands.
  test("a CANCEL after the 302 gets 200 with the 302's To tag", async () => {
    await withFleet(1, async ({ monitor }) => {
      const peer = await RawUdp.bind();
      try {
        const port = sipPort(monitor, "udp");
        const callId = "redir-late-cancel";
        const text = invite(peer, callId);
        await peer.send(text, port);
        const redirected = await finalFor(peer, callId);
        assert.equal(redirected.status, 302);
        await peer.send(
          text.replace("INVITE sip:", "CANCEL sip:").replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL"),
          port,
        );
        const ok = await eventually(
          () => responses(peer, callId).find((r) => r.cseq.method === "CANCEL"),
          3000,
          "the answer to the CANCEL",
        );
        assert.equal(ok.status, 200);
        assert.equal(ok.to.tag, redirected.to.tag);
        assert.equal(responses(peer, callId, 487).length, 0);
      } finally {
        await peer.close();
      }
    });
  });

  // RFC 3261 §18.2.2: without rport a UDP response goes to the source address and the Via's
  // sent-by port; with rport (RFC 3581) to the source port.
  test("the answer goes to the Via's sent-by port without rport, to the source port with it", async () => {
    await withFleet(1, async ({ monitor }) => {
      const sender = await RawUdp.bind();
      const named = await RawUdp.bind();
      try {
        const port = sipPort(monitor, "udp");
        const text = invite(sender, "redir-sent-by").replace(
          `Via: SIP/2.0/UDP 127.0.0.1:${sender.port};`,
          `Via: SIP/2.0/UDP 127.0.0.1:${named.port};`,
        );
        await sender.send(text.replace(";rport", ""), port);
        assert.equal((await finalFor(named, "redir-sent-by")).status, 302);
        await sender.send(
          invite(sender, "redir-rport").replace(
            `127.0.0.1:${sender.port};`,
            `127.0.0.1:${named.port};`,
          ),
          port,
        );
        const final = await finalFor(sender, "redir-rport");
        assert.equal(final.topVia!.rport, sender.port);
        assert.equal(final.topVia!.received, "127.0.0.1");
        assert.equal(responses(sender, "redir-sent-by").length, 0);
      } finally {
        await sender.close();
        await named.close();
      }
    });
  });

  test("OPTIONS is answered 200 with Allow", async () => {
    await withFleet(1, async ({ monitor }) => {
      const peer = await RawUdp.bind();
      try {
        const text = invite(peer, "redir-options")
          .replace("INVITE sip:", "OPTIONS sip:")
          .replace("CSeq: 1 INVITE", "CSeq: 1 OPTIONS");
        await peer.send(text, sipPort(monitor, "udp"));
        const final = await finalFor(peer, "redir-options");
        assert.equal(final.status, 200);
        assert.match(final.getHeader("allow") ?? "", /INVITE/);
      } finally {
        await peer.close();
      }
    });
  });

  // DESIGN.md: any request that opens a transaction is redirected, REGISTER too (a client of
  // ours follows it; stock phones find their registrar by DNS). Non-INVITE: no ACK, no resend.
  test("REGISTER gets 302 to the ranked proxies; its userless Request-URI gives userless Contacts", async () => {
    await withFleet(2, async ({ monitor, proxies }) => {
      const peer = await RawUdp.bind();
      try {
        const best = monitor.selector.ranked("udp")[0]!.proxy;
        const bestProxy = proxies.find((p) => p.config.id === best)!;
        const text = invite(peer, "redir-register")
          .replace(`INVITE sip:bob@${DOMAIN}`, `REGISTER sip:${DOMAIN}`)
          .replace("CSeq: 1 INVITE", "CSeq: 1 REGISTER")
          .replace(`To: <sip:bob@${DOMAIN}>`, `To: <sip:alice@${DOMAIN}>`)
          .replace("Content-Length: 0", "Expires: 600\r\nContent-Length: 0");
        await peer.send(text, sipPort(monitor, "udp"));
        const final = await finalFor(peer, "redir-register");
        assert.equal(final.status, 302);
        assert.equal(final.cseq.method, "REGISTER");
        const contacts = contactsOf(final);
        assert.equal(contacts.length, 2);
        assert.equal(contacts[0], `<sip:${hostPort(bestProxy)}>;q=1.0`);
        assert.equal(monitor.selector.timesChosen(best), 1, "the redirect counts as a send");
      } finally {
        await peer.close();
      }
    });
  });

  // RFC 3261 §16.3 step 3: Max-Forwards 0 is refused with 483 (except OPTIONS).
  test("Max-Forwards 0 gets 483; a CANCEL with no INVITE gets 481", async () => {
    await withFleet(1, async ({ monitor }) => {
      const peer = await RawUdp.bind();
      try {
        const port = sipPort(monitor, "udp");
        await peer.send(
          invite(peer, "redir-mf0").replace("Max-Forwards: 70", "Max-Forwards: 0"),
          port,
        );
        assert.equal((await finalFor(peer, "redir-mf0")).status, 483);
        const cancel = invite(peer, "redir-cancel")
          .replace("INVITE sip:", "CANCEL sip:")
          .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
        await peer.send(cancel, port);
        assert.equal((await finalFor(peer, "redir-cancel")).status, 481);
      } finally {
        await peer.close();
      }
    });
  });

  test("no eligible proxy: 503 with Retry-After", async () => {
    const monitor = new Monitor(monitorConfig({ proxies: ["p1"] }), { sipTimers: SIP_TIMERS });
    const peer = await RawUdp.bind();
    try {
      await monitor.start();
      await peer.send(invite(peer, "redir-none"), sipPort(monitor, "udp"));
      const final = await finalFor(peer, "redir-none");
      assert.equal(final.status, 503);
      assert.equal(final.getHeader("retry-after"), "1");
    } finally {
      await peer.close();
      await monitor.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  test("over TCP the Contact is the proxy's TCP URI with the user kept", async () => {
    await withFleet(
      2,
      async ({ monitor, proxies }) => {
        const port = sipPort(monitor, "tcp");
        const socket = connect(port, "127.0.0.1");
        try {
          await new Promise<void>((resolve, reject) => {
            socket.once("connect", resolve);
            socket.once("error", reject);
          });
          let text = "";
          socket.on("data", (c: Buffer) => (text += c.toString()));
          const local = socket.localPort!;
          socket.write(
            [
              `INVITE sip:bob@${DOMAIN} SIP/2.0`,
              `Via: SIP/2.0/TCP 127.0.0.1:${local};branch=z9hG4bK-tcp1`,
              "Max-Forwards: 70",
              `From: <sip:alice@${DOMAIN}>;tag=t1`,
              `To: <sip:bob@${DOMAIN}>`,
              "Call-ID: redir-tcp",
              "CSeq: 1 INVITE",
              "Content-Length: 0",
              "",
              "",
            ].join("\r\n"),
          );
          await eventually(
            () => (/SIP\/2\.0 302/.test(text) ? true : undefined),
            3000,
            "a 302 over TCP",
          );
          const p1 = proxies[0]!;
          const contact = /^Contact: (.*)$/im.exec(text)![1]!.trim();
          assert.equal(contact, `<sip:bob@${hostPort(p1, "tcp")};transport=tcp>;q=1.0`);
        } finally {
          socket.destroy();
        }
      },
      (i) =>
        i === 1
          ? {
              listen: [
                { protocol: "udp", address: "127.0.0.1", port: 0 },
                { protocol: "tcp", address: "127.0.0.1", port: 0 },
              ],
            }
          : {},
    );
  });

  // Issue 5: a burst of queries between two reports is spread by spare capacity through the
  // same least-loaded correction as GET /v1/select.
  test("a burst of 300 INVITEs is spread across three equal proxies", async () => {
    await withFleet(
      3,
      async ({ monitor, proxies }) => {
        const peer = await RawUdp.bind();
        try {
          const port = sipPort(monitor, "udp");
          const ids: string[] = [];
          for (let i = 0; i < 300; i++) {
            const callId = `burst-${i}`;
            ids.push(callId);
            await peer.send(invite(peer, callId), port);
          }
          await eventually(
            () => (ids.every((id) => responses(peer, id, 302).length > 0) ? true : undefined),
            5000,
            "300 redirects",
          );
          const counts = new Map<string, number>();
          for (const id of ids) {
            const first = /^<sip:bob@([^>]+)>/.exec(
              contactsOf(responses(peer, id, 302)[0]!)[0]!,
            )![1]!;
            counts.set(first, (counts.get(first) ?? 0) + 1);
          }
          for (const proxy of proxies) {
            const n = counts.get(hostPort(proxy)) ?? 0;
            assert.ok(n >= 70 && n <= 130, `${proxy.config.id} got ${n} of 300`);
          }
        } finally {
          await peer.close();
        }
      },
      () => ({ capacity: { calls: 100, media: 0 } }),
    );
  });

  test("SIPp follows the 302: 200 calls at 100/s, none failed", async () => {
    await withFleet(2, async ({ monitor }) => {
      const run = startSipp({
        scenario: "redirect-uac.xml",
        transport: "u1",
        remote: `127.0.0.1:${sipPort(monitor, "udp")}`,
        localPort: await freePort(),
        calls: 200,
        rate: 100,
        extraArgs: ["-s", "bob"],
        timeoutMs: 30_000,
      });
      try {
        const result = await run.result;
        assert.equal(result.failed, 0, result.output);
        assert.equal(result.successful, 200, result.output);
      } finally {
        run.kill();
      }
      const chosen = [...monitor.selector.chosenCounts().values()].reduce((a, b) => a + b, 0);
      assert.equal(chosen, 200);
    });
  });

  test("sipsteer monitor --json names the redirect address; it answers 503 before any report", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-redirect-cli-"));
    const config = join(dir, "monitor.yaml");
    writeFileSync(
      config,
      [
        "http: { address: 127.0.0.1, port: 0 }",
        "sip: { listen: [{ protocol: udp, address: 127.0.0.1, port: 0 }] }",
        `allowedDestinations: ["127.0.0.0/8"]`,
        "",
      ].join("\n"),
    );
    const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
    const child = spawn(process.execPath, [cli, "monitor", "-c", config, "--json"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const peer = await RawUdp.bind();
    try {
      let out = "";
      child.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
      const line = await eventually(
        () => (out.includes("\n") ? out.slice(0, out.indexOf("\n")) : undefined),
        10_000,
        "the JSON line",
      );
      const info = JSON.parse(line) as { monitor: { redirect?: string } };
      const m = /^sip:127\.0\.0\.1:(\d+)$/.exec(info.monitor.redirect ?? "");
      assert.ok(m !== null, `redirect in ${line}`);
      assert.notEqual(m[1], "0");
      await peer.send(invite(peer, "redir-cli"), Number(m[1]));
      const final = await finalFor(peer, "redir-cli");
      assert.equal(final.status, 503);
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await peer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // RFC 3261 §9.2: a CANCEL matching a pending INVITE gets 200, and the INVITE 487. The front's
  // INVITE is pending only while on-query collection (freshen) is awaited.
  test("a CANCEL while freshen is awaited: 200 for it, 487 for the INVITE, no 302", async () => {
    let release: () => void = () => undefined;
    const answer: SelectAnswer = {
      proxy: "p1",
      uri: "sip:127.0.0.11:5060",
      workload: 0,
      age_ms: 0,
      ttl: 1,
      alternates: [],
    };
    const front = new RedirectFront({
      listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
      allowedDestinations: LOOPBACK,
      select: () => answer,
      freshen: () => new Promise<void>((r) => (release = r)),
      timers: SIP_TIMERS,
    });
    const peer = await RawUdp.bind();
    try {
      await front.start();
      const port = front.listeners[0]!.port;
      const text = invite(peer, "redir-pending");
      await peer.send(text, port);
      await new Promise((r) => setTimeout(r, 50));
      const cancel = text
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
      await peer.send(cancel, port);
      const finals = await eventually(
        () => {
          const got = responses(peer, "redir-pending").filter((r) => r.status >= 200);
          return got.some((r) => r.status === 487) && got.some((r) => r.status === 200)
            ? got
            : undefined;
        },
        3000,
        "200 for the CANCEL and 487 for the INVITE",
      );
      assert.equal(finals.find((r) => r.status === 200)!.cseq.method, "CANCEL");
      assert.equal(finals.find((r) => r.status === 487)!.cseq.method, "INVITE");
      release();
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(responses(peer, "redir-pending", 302).length, 0);
    } finally {
      release();
      await peer.close();
      await front.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });

  // The answers kept for retransmissions are bounded: a ring of answerCacheBytes holds the
  // newest, none older than 64 × T1 on the clock, so a burst of distinct requests leaves
  // nothing behind once its retransmissions can no longer come.
  test("1,000 distinct INVITEs leave a bounded cache of the newest, empty after 64 × T1", async () => {
    const clock = new FakeClock();
    let selects = 0;
    const front = new RedirectFront({
      listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
      allowedDestinations: LOOPBACK,
      select: () => {
        selects++;
        return {
          proxy: "p1",
          uri: "sip:127.0.0.11:5060",
          workload: 0,
          age_ms: 0,
          ttl: 1,
          alternates: [{ proxy: "p2", uri: "sip:127.0.0.12:5060", workload: 0 }],
        };
      },
      answerCacheBytes: 64 * 1024,
      clock,
    });
    const peer = await RawUdp.bind();
    try {
      await front.start();
      const port = front.listeners[0]!.port;
      const texts: string[] = [];
      for (let batch = 0; batch < 20; batch++) {
        for (let i = 0; i < 50; i++) {
          const text = invite(peer, `redir-many-${batch * 50 + i}`);
          texts.push(text);
          await peer.send(text, port);
        }
        const want = (batch + 1) * 50;
        await eventually(
          () => (peer.received.items.length >= want ? true : undefined),
          5000,
          `${want} redirects`,
        );
      }
      assert.equal(selects, 1000);
      // The ring holds what fits of the newest answers (each kept with its method's name).
      const perAnswer = peer.received.items[999]!.bytes.length + "INVITE".length;
      const kept = front.cachedAnswers;
      assert.ok(kept > 0 && kept <= Math.floor((64 * 1024) / perAnswer), `${kept} kept`);
      // The newest INVITE's retransmission is answered from the cache, the oldest's anew.
      await peer.send(texts[999]!, port);
      await eventually(
        () => (peer.received.items.length >= 1001 ? true : undefined),
        3000,
        "the 302 again",
      );
      assert.deepEqual(peer.received.items[1000]!.bytes, peer.received.items[999]!.bytes);
      assert.equal(selects, 1000);
      await peer.send(texts[0]!, port);
      await eventually(
        () => (peer.received.items.length >= 1002 ? true : undefined),
        3000,
        "a new 302",
      );
      assert.equal(selects, 1001);
      clock.tick(64 * 500);
      assert.ok(front.cachedAnswers > 0, "kept for 64 × T1");
      clock.tick(1);
      assert.equal(front.cachedAnswers, 0, "none after 64 × T1");
    } finally {
      await peer.close();
      await front.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});
