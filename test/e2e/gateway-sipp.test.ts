// The access gateway (issue 9) with real peers: SIPp phones behind it, three `sipsteer proxy`
// PROCESSES behind it steered by a load monitor, sipvicious aimed at it.
// - authenticated calls succeed (the proxies, which challenge everyone else, trust what the
//   gateway authenticated) and spread over the three proxies by load;
// - unauthenticated, denied-address and over-rate traffic is refused while a good client's
//   calls all succeed;
// - a proxy killed (SIGKILL) during a run costs no more calls than it carried then;
// - svmap, svwar and svcrack get no answer and show in /metrics as scanner refusals.
// Distinct loopback addresses keep the roles apart: the fleet trusts by address, so the
// phones must not share one with the gateway or the proxies.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Gateway, type GatewayStatus } from "../../src/gateway/index.js";
import { Monitor, type ProxyListing } from "../../src/monitor/index.js";
import { Credentials } from "../../src/sip/index.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { eventually } from "../helpers/eventually.js";
import { callArgs, freePort, registerArgs, startSipp, type SippRun } from "../helpers/sipp.js";
import { runSipvicious } from "../helpers/sipvicious.js";
import { requireTool } from "../helpers/tools.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY = { id: "k1", secret: "a-shared-report-secret" };
const GATEWAY_IP = "127.0.0.30";
const PROXY_IPS = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];
/** Phones: the good one, one without credentials, one denied, one over its rate. */
const GOOD_IP = "127.0.0.1";
const NO_AUTH_IP = "127.0.0.41";
const DENIED_IP = "127.0.0.99";
const FAST_IP = "127.0.0.42";
const USERS = { alice: "alice-secret", bob: "bob-secret" };
/** Each proxy's capacity: the monitor's workload is calls over this. */
const CAPACITY = 30;

interface ProxyProcess {
  readonly id: string;
  readonly ip: string;
  readonly port: number;
  run: CliRun;
  http: string;
}

const work = mkdtempSync(join(tmpdir(), "sipsteer-gw-"));
const runs = new Set<CliRun>();
const sipps = new Set<SippRun>();
const proxies: ProxyProcess[] = [];
let monitor: Monitor | undefined;
let gateway: Gateway | undefined;
let gatewayPort = 0;

function credentialsText(): string {
  return Object.entries(USERS)
    .map(([user, password]) => Credentials.line(user, DOMAIN, password))
    .join("\n");
}

async function startProxy(
  id: string,
  ip: string,
  port: number,
  fleet: unknown[],
  push: string,
): Promise<ProxyProcess> {
  const file = join(work, `${id}.json`);
  const credentialsFile = join(work, "credentials");
  writeFileSync(credentialsFile, credentialsText());
  writeFileSync(
    file,
    JSON.stringify({
      id,
      domains: [DOMAIN],
      listen: [{ protocol: "udp", address: ip, port }],
      allowedDestinations: LOOPBACK,
      // The proxies challenge everyone but the fleet: a call through the gateway that got a
      // second challenge here would fail in SIPp.
      auth: { enabled: true, credentialsFile },
      capacity: { calls: CAPACITY },
      // One location store for the fleet (a file the three processes share).
      store: { kind: "sqlite", file: join(work, "location.db") },
      fleet,
      http: { address: "127.0.0.1", port: 0 },
      report: { intervalMs: 250, push: [push], key: KEY },
    }),
  );
  const run = runCli(["proxy", "-c", file, "--json", "--log-level", "warn"]);
  runs.add(run);
  const line = await within(run.firstLine, 15_000);
  assert.ok(line !== undefined, `${id} serving within 15 s: ${run.stderr}`);
  return { id, ip, port, run, http: (JSON.parse(line) as { http: string }).http };
}

function sipp(options: Parameters<typeof startSipp>[0]): SippRun {
  const run = startSipp(options);
  sipps.add(run);
  return run;
}

async function status(): Promise<GatewayStatus> {
  const res = await fetch(`${gateway!.httpUrl}/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as GatewayStatus;
}

async function registerBob(uasPort: number): Promise<void> {
  const reg = await sipp({
    scenario: "register-contact-uac.xml",
    transport: "u1",
    remote: `${GATEWAY_IP}:${gatewayPort}`,
    localPort: await freePort(),
    calls: 1,
    extraArgs: registerArgs("bob", uasPort, USERS.bob),
  }).result;
  assert.equal(reg.failed, 0, `bob registers through the gateway: ${reg.output}`);
  assert.equal(reg.successful, 1);
}

/** A SIPp callee for `calls` calls, registered as bob through the gateway. */
async function startBob(calls: number): Promise<SippRun> {
  const port = await freePort();
  const uas = sipp({ scenario: "call-uas.xml", transport: "u1", localPort: port, calls });
  await registerBob(port);
  return uas;
}

/** alice's calls through the gateway, with her credentials. */
async function aliceCalls(calls: number, rate: number, holdMs: number): Promise<SippRun> {
  return sipp({
    scenario: "call-uac-gateway.xml",
    transport: "u1",
    remote: `${GATEWAY_IP}:${gatewayPort}`,
    localIp: GOOD_IP,
    localPort: await freePort(),
    calls,
    rate,
    timeoutMs: 90_000,
    extraArgs: [...callArgs("bob", holdMs, "alice"), "-au", "alice", "-ap", USERS.alice],
  });
}

function diff(after: Record<string, number>, before: Record<string, number>) {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}

before(async () => {
  // Each test checks its tools (requireTool fails under CI=true); without SIPp, no set-up.
  if (spawnSync("sh", ["-c", "command -v sipp"], { stdio: "ignore" }).status !== 0) return;
  const monitorPort = await freePort();
  gatewayPort = await freePort();
  const ports = [await freePort(), await freePort(), await freePort()];
  const members = PROXY_IPS.map((ip, i) => ({ id: `p${i + 1}`, uri: `sip:${ip}:${ports[i]}` }));
  const gatewayMember = { id: "gw", uri: `sip:${GATEWAY_IP}:${gatewayPort}` };
  monitor = new Monitor({
    http: { address: "127.0.0.1", port: monitorPort },
    keys: [KEY],
    allowedDestinations: LOOPBACK,
    proxies: members.map((m) => m.id),
  });
  await monitor.start();
  const push = `${monitor.httpUrl}/v1/reports`;
  for (const [i, m] of members.entries()) {
    const others = members.filter((o) => o !== m);
    proxies.push(
      await startProxy(m.id, PROXY_IPS[i]!, ports[i]!, [gatewayMember, ...others], push),
    );
  }
  await eventually(
    async () => {
      const res = await fetch(`${monitor!.httpUrl}/v1/proxies`);
      const body = (await res.json()) as { proxies: ProxyListing[] };
      return body.proxies.filter((p) => p.eligible).length === 3 ? true : undefined;
    },
    15_000,
    "three proxies eligible at the monitor",
  );
  gateway = new Gateway(
    {
      id: "gw",
      domains: [DOMAIN],
      listen: [{ protocol: "udp", address: GATEWAY_IP, port: gatewayPort }],
      allowedDestinations: LOOPBACK,
      fleet: members,
      http: { address: "127.0.0.1", port: 0 },
      access: {
        deny: [`${DENIED_IP}/32`],
        rate: { requestsPerSecond: 50, burst: 50 },
        log: { intervalMs: 1_000 },
      },
      upstream: { monitors: [monitor.httpUrl] },
    },
    { credentials: Credentials.parse(credentialsText()) },
  );
  await gateway.start();
});

after(async () => {
  for (const s of sipps) s.kill();
  await gateway?.stop();
  for (const run of runs) reap(run);
  await monitor?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe("gateway with SIPp phones and three proxy processes", () => {
  test("authenticated calls through the gateway all succeed and spread over the three proxies by load", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const calls = 45;
    const before = await status();
    const bob = await startBob(calls);
    const alice = await (await aliceCalls(calls, 15, 2_000)).result;
    assert.equal(alice.failed, 0, `no call failed: ${alice.output}`);
    assert.equal(alice.successful, calls);
    assert.equal((await bob.result).failed, 0);

    const now = await status();
    const spread = diff(now.forwarded.callsByProxy, before.forwarded.callsByProxy);
    t.diagnostic(`first hop per proxy: ${JSON.stringify(spread)}`);
    // bob's proxy carries every call as the callee's side (the others forward to it by his
    // Path), so by load it is the one the monitor sends the fewest callers to; the other two
    // share the callers evenly.
    const bobs = Object.entries(now.upstream.pinnedByProxy).find(([, n]) => n > 0)![0];
    const others = ["p1", "p2", "p3"].filter((id) => id !== bobs);
    for (const id of others) {
      const n = spread[id] ?? 0;
      assert.ok(n >= calls / 3, `${id} carried ${n} of ${calls}: ${JSON.stringify(spread)}`);
    }
    for (const id of others) assert.ok((spread[bobs] ?? 0) <= spread[id]!, JSON.stringify(spread));
    assert.ok(
      (now.auth?.accepted ?? 0) > (before.auth?.accepted ?? 0),
      "the gateway authenticated",
    );
    assert.equal(now.registrations, 1, "bob's registration is pinned to one proxy");
    await eventually(
      async () => ((await status()).dialogs === 0 ? true : undefined),
      5_000,
      "no dialog left",
    );
  });

  test("unauthenticated, denied-address and over-rate traffic is refused while a good client keeps being served", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const remote = `${GATEWAY_IP}:${gatewayPort}`;
    const before = await status();
    const bob = await startBob(20);
    const good = await aliceCalls(20, 5, 1_000);
    const noAuth = sipp({
      scenario: "invite-expect-407-uac.xml",
      transport: "u1",
      remote,
      localIp: NO_AUTH_IP,
      localPort: await freePort(),
      calls: 20,
      rate: 10,
      extraArgs: callArgs("bob", 0, "mallory"),
    });
    const denied = sipp({
      scenario: "invite-expect-403-uac.xml",
      transport: "u1",
      remote,
      localIp: DENIED_IP,
      localPort: await freePort(),
      calls: 20,
      rate: 10,
      extraArgs: callArgs("bob", 0, "alice"),
    });
    // 400 OPTIONS at 200/s against 50/s with a burst of 50: most get 503 (under the flood
    // threshold of 5 × 50/s, so they are answered, not dropped).
    const fast = sipp({
      scenario: "options-uac.xml",
      transport: "u1",
      remote,
      localIp: FAST_IP,
      localPort: await freePort(),
      calls: 400,
      rate: 200,
      extraArgs: ["-s", "probe", "-recv_timeout", "2000"],
    });
    const [g, n, d, f] = await Promise.all([good, noAuth, denied, fast].map((r) => r.result));
    assert.equal(g!.failed, 0, `the good client's calls all succeed: ${g!.output}`);
    assert.equal(g!.successful, 20);
    assert.equal((await bob.result).failed, 0);
    assert.equal(n!.failed, 0, `every unauthenticated INVITE got 407: ${n!.output}`);
    assert.equal(n!.successful, 20);
    assert.equal(d!.failed, 0, `every INVITE from the denied address got 403: ${d!.output}`);
    assert.equal(d!.successful, 20);
    assert.ok(
      f!.failed >= 100,
      `most of the fast client's OPTIONS were refused: ${f!.successful} answered, ${f!.failed} refused`,
    );
    assert.ok(f!.successful >= 50, `its burst and rate were served: ${f!.successful}`);

    const now = await status();
    const refused = diff(now.access.refused, before.access.refused);
    // Each INVITE got 403; its ACK, from the same address, was dropped.
    assert.equal(refused["denied-address"], 40, JSON.stringify(refused));
    assert.ok(refused.rate! >= f!.failed, JSON.stringify(refused));
    assert.ok((now.auth?.challenges ?? 0) - (before.auth?.challenges ?? 0) >= 20 + 20);
    // Neither the denied nor the unauthenticated phone reached a proxy.
    assert.equal(now.forwarded.dialogs - before.forwarded.dialogs, 20);
  });

  test("a proxy killed during a run costs no more calls than it carried when it died", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const calls = 60;
    const bob = await startBob(calls);
    const pinned = (await status()).upstream.pinnedByProxy;
    // Not bob's own proxy: calls to bob go through it, whichever proxy the caller gets.
    const victim = proxies.find((p) => (pinned[p.id] ?? 0) === 0)!;
    const alice = await aliceCalls(calls, 10, 3_000);
    await new Promise((r) => setTimeout(r, 2_500));
    const load = (await (await fetch(`${victim.http}/load`)).json()) as { calls: number };
    victim.run.child.kill("SIGKILL");
    await within(victim.run.exit, 5_000);
    const result = await alice.result;
    const lost = result.failed;
    t.diagnostic(`${victim.id} killed carrying ${load.calls} calls; ${lost} of ${calls} failed`);
    t.diagnostic(`gateway forwarded: ${JSON.stringify((await status()).forwarded)}`);
    assert.equal(result.successful + lost, calls, result.output);
    // A call counts at a proxy once its location lookup is done: one more may have reached
    // it between that reading and the SIGKILL (calls arrive every 100 ms).
    assert.ok(
      lost <= load.calls + 1,
      `${lost} calls failed; ${victim.id} carried ${load.calls} when killed`,
    );
    await bob.result;
    const now = await status();
    assert.ok(now.upstream.heldOff.includes(victim.id) || now.forwarded.retries > 0 || lost === 0);
  });

  test("svmap, svwar and svcrack get no answer from the gateway and show in its metrics", async (t) => {
    if (!requireTool(t, "svmap", "sipvicious")) return;
    const before = (await status()).access.refused.scanner;
    const scans = [
      runSipvicious("svmap", gatewayPort, [], 20_000, GATEWAY_IP),
      runSipvicious("svwar", gatewayPort, ["-e", "100-101"], 20_000, GATEWAY_IP),
      runSipvicious("svcrack", gatewayPort, ["-u", "100", "-r", "1-2"], 12_000, GATEWAY_IP),
    ];
    t.after(() => scans.forEach((s) => s.kill()));
    const [map, war] = await Promise.all(scans.map((s) => s.result));
    // svmap lists the SIP devices that answered: none.
    assert.doesNotMatch(map!.output, /\| SIP\/2\.0/, map!.output);
    assert.doesNotMatch(war!.output, /\| (reqauth|noauth)/i, war!.output);
    const scanner = (await status()).access.refused.scanner;
    assert.ok(scanner - before >= 3, `scanner refusals ${before} → ${scanner}`);
    const metrics = await (await fetch(`${gateway!.httpUrl}/metrics`)).text();
    const line = metrics
      .split("\n")
      .find(
        (l) =>
          l.startsWith("sipsteer_gateway_requests_refused_total") && l.includes('reason="scanner"'),
      );
    assert.ok(line !== undefined, metrics);
    assert.ok(Number(line.split(" ").pop()) >= 3, line);
  });

  test("a registration stays with its proxy until that proxy fails, then moves; calls to it go on", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const pinnedTo = async () =>
      Object.entries((await status()).upstream.pinnedByProxy).find(([, n]) => n > 0)?.[0];
    const first = await pinnedTo();
    assert.ok(first !== undefined, "bob is pinned");
    const bob = await startBob(10);
    assert.equal(await pinnedTo(), first, "a refresh stays on the same proxy");
    const home = proxies.find((p) => p.id === first)!;
    home.run.child.kill("SIGKILL");
    await within(home.run.exit, 5_000);
    // The next refresh finds its proxy silent and moves to a live one.
    bob.kill();
    const moved = await startBob(10);
    const now = await pinnedTo();
    assert.ok(now !== undefined && now !== first, `moved from ${first} to ${now}`);
    const alice = await (await aliceCalls(10, 5, 500)).result;
    assert.equal(alice.failed, 0, alice.output);
    assert.equal(alice.successful, 10);
    assert.equal((await moved.result).failed, 0);
  });
});
