// Calls between clients registered on different proxies of the fleet (DESIGN.md, "Location
// store and the fleet"): two `sipsteer proxy` processes on two loopback addresses share one
// location store (an SQLite file, then Redis); a SIPp callee registers at proxy B, a SIPp
// caller calls it through proxy A, and A reaches it through B by the binding's Path. The
// fleet is not an open relay: a Route is followed only to fleet members, and a domain not
// served is refused to anyone outside the fleet.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket, type Socket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test, type TestContext } from "node:test";
import { stringify } from "yaml";
import type { LoadReport } from "../../src/contracts/index.js";
import type { ProxyConfigInput } from "../../src/proxy/index.js";
import {
  Credentials,
  SipRequest,
  SipResponse,
  createResponse,
  parseDatagram,
} from "../../src/sip/index.js";
import { PROJECT_ROOT } from "../helpers/paths.js";
import { startRedis, type TestRedis } from "../helpers/redis.js";
import { freePort, startSipp, waitForBound, type SippOptions } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const CLI = join(PROJECT_ROOT, "dist", "src", "cli", "main.js");
const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
/** Proxy A and proxy B on loopback addresses of their own; the SIPp peers on 127.0.0.1. */
const ADDRESS_A = "127.0.0.2";
const ADDRESS_B = "127.0.0.3";
/** Proxy logs on stderr (kept for failure messages); `debug` to see every hop. */
const LOG_LEVEL = process.env.SIPSTEER_TEST_LOG_LEVEL ?? "warn";
const PASSWORDS = { alice: "alice-fleet-secret", bob: "bob-fleet-secret" } as const;
const STDERR_KEPT = 64 * 1024;

// ---- proxy processes --------------------------------------------------------------------------

/** The line `sipsteer proxy --json` prints when serving. */
interface ServingLine {
  readonly proxy: string;
  readonly pid: number;
  readonly sip: readonly { protocol: string; address: string; port: number }[];
  readonly http: string;
}

/** A `sipsteer proxy` child process, reaped by stop() or kill(). */
interface ProxyProcess {
  readonly serving: ServingLine;
  readonly child: ChildProcess;
  /** The tail of its stderr (its logs). */
  logs(): string;
  /** SIGTERM (drain, then exit), SIGKILL after `timeoutMs`; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  kill(): void;
}

function running(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

async function startProxyProcess(configFile: string, timeoutMs = 15_000): Promise<ProxyProcess> {
  const child = spawn(
    process.execPath,
    [CLI, "proxy", "--config", configFile, "--json", "--log-level", LOG_LEVEL],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-STDERR_KEPT);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  const kill = () => {
    if (running(child)) child.kill("SIGKILL");
  };
  try {
    const serving = await new Promise<ServingLine>((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(
        () => reject(new Error(`proxy did not start in ${timeoutMs} ms:\n${stderr}`)),
        timeoutMs,
      );
      child.stdout!.on("data", (c: Buffer) => {
        stdout += c.toString();
        const end = stdout.indexOf("\n");
        if (end < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(stdout.slice(0, end)) as ServingLine);
        } catch (e) {
          reject(new Error(`not a JSON line: ${stdout.slice(0, end)}`, { cause: e }));
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`proxy exited with ${code} before serving:\n${stderr}`));
      });
    });
    return {
      serving,
      child,
      logs: () => stderr,
      kill,
      stop: async (stopTimeoutMs = 10_000) => {
        if (running(child)) child.kill("SIGTERM");
        const timer = setTimeout(kill, stopTimeoutMs);
        const code = await exited;
        clearTimeout(timer);
        return code;
      },
    };
  } catch (e) {
    kill();
    throw e;
  }
}

interface FleetOptions {
  readonly dir: string;
  readonly store: ProxyConfigInput["store"];
  /** A credentials file: authentication on. */
  readonly credentialsFile?: string;
}

/** Proxies A and B, each listening on UDP and TCP on one port, each naming the other in `fleet`. */
interface TestFleet {
  readonly a: ProxyProcess;
  readonly b: ProxyProcess;
  readonly portA: number;
  readonly portB: number;
  stop(): Promise<[number | null, number | null]>;
  kill(): void;
}

async function startFleet(options: FleetOptions): Promise<TestFleet> {
  // Each must know the other's address before it starts: fixed free ports.
  const portA = await freePort();
  const portB = await freePort();
  const config = (
    id: string,
    address: string,
    port: number,
    other: { id: string; address: string; port: number },
  ): ProxyConfigInput => ({
    id,
    domains: [DOMAIN],
    listen: [
      { protocol: "udp", address, port },
      { protocol: "tcp", address, port },
    ],
    allowedDestinations: LOOPBACK,
    fleet: [{ id: other.id, uri: `sip:${other.address}:${other.port}` }],
    auth:
      options.credentialsFile === undefined
        ? { enabled: false }
        : { enabled: true, credentialsFile: options.credentialsFile },
    store: options.store,
    http: { address, port: 0 },
  });
  const fileA = join(options.dir, "proxy-a.yaml");
  const fileB = join(options.dir, "proxy-b.yaml");
  writeFileSync(
    fileA,
    stringify(config("a", ADDRESS_A, portA, { id: "b", address: ADDRESS_B, port: portB })),
  );
  writeFileSync(
    fileB,
    stringify(config("b", ADDRESS_B, portB, { id: "a", address: ADDRESS_A, port: portA })),
  );
  const [a, b] = await Promise.allSettled([startProxyProcess(fileA), startProxyProcess(fileB)]);
  if (a.status === "rejected" || b.status === "rejected") {
    if (a.status === "fulfilled") a.value.kill();
    if (b.status === "fulfilled") b.value.kill();
    throw a.status === "rejected" ? a.reason : (b as PromiseRejectedResult).reason;
  }
  return {
    a: a.value,
    b: b.value,
    portA,
    portB,
    stop: () => Promise.all([a.value.stop(), b.value.stop()]),
    kill: () => {
      a.value.kill();
      b.value.kill();
    },
  };
}

// ---- HTTP: /load and /metrics -------------------------------------------------------------------

async function load(proxy: ProxyProcess): Promise<LoadReport> {
  const response = await fetch(`${proxy.serving.http}/load`);
  assert.equal(response.status, 200);
  return (await response.json()) as LoadReport;
}

/** One counter or gauge of GET /metrics (0 when absent). */
async function metric(proxy: ProxyProcess, name: string): Promise<number> {
  const text = await (await fetch(`${proxy.serving.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Polls GET /load until `done` holds; fails with the last report after `timeoutMs`. */
async function loadUntil(
  proxy: ProxyProcess,
  what: string,
  done: (report: LoadReport) => boolean,
  timeoutMs = 5000,
): Promise<LoadReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const report = await load(proxy);
    if (done(report)) return report;
    if (Date.now() > deadline) {
      assert.fail(`proxy ${proxy.serving.proxy}: ${what} not reached: ${JSON.stringify(report)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- SIPp ---------------------------------------------------------------------------------------

interface CallRun {
  readonly transport: "u1" | "t1";
  /** The user registered at B and called through A. */
  readonly callee: string;
  readonly calls: number;
  readonly rate: number;
  /** With authentication on: the caller is alice and answers 407, the REGISTER answers 401. */
  readonly auth?: boolean;
}

async function sipp(options: SippOptions) {
  const run = startSipp(options);
  try {
    return await run.result;
  } finally {
    run.kill();
  }
}

/**
 * A SIPp callee on 127.0.0.1, registered at proxy B (register-contact-uac.xml), and a SIPp
 * caller sending `calls` calls for it to proxy A. Asserts every call was set up, answered and
 * ended at both ends.
 */
async function callAcrossFleet(fleet: TestFleet, run: CallRun): Promise<void> {
  const calleePort = await freePort();
  const callee = startSipp({
    scenario: "call-uas.xml",
    transport: run.transport,
    localPort: calleePort,
    calls: run.calls,
    timeoutMs: 60_000,
  });
  try {
    await waitForBound(calleePort, run.transport === "u1" ? "udp" : "tcp");
    const registered = await sipp({
      scenario: "register-contact-uac.xml",
      transport: run.transport,
      remote: `${ADDRESS_B}:${fleet.portB}`,
      localPort: await freePort(),
      calls: 1,
      timeoutMs: 10_000,
      extraArgs: [
        "-s",
        run.callee,
        "-key",
        "domain",
        DOMAIN,
        "-key",
        "contact_host",
        "127.0.0.1",
        "-key",
        "contact_port",
        String(calleePort),
        // The digest-uri is the Request-URI (RFC 3261 §22.4), not SIPp's default remote address.
        ...(run.auth === true
          ? ["-au", run.callee, "-ap", PASSWORDS.bob, "-auth_uri", DOMAIN]
          : []),
      ],
    });
    assert.equal(
      registered.successful,
      1,
      `REGISTER at B failed:\n${registered.output}\n--- proxy B log:\n${fleet.b.logs()}`,
    );

    const caller = await sipp({
      scenario: "call-uac.xml",
      transport: run.transport,
      remote: `${ADDRESS_A}:${fleet.portA}`,
      localPort: await freePort(),
      calls: run.calls,
      rate: run.rate,
      timeoutMs: 60_000,
      extraArgs: [
        "-s",
        run.callee,
        "-key",
        "domain",
        DOMAIN,
        "-key",
        "caller",
        "alice",
        "-d",
        "0",
        ...(run.auth === true
          ? ["-au", "alice", "-ap", PASSWORDS.alice, "-auth_uri", `${run.callee}@${DOMAIN}`]
          : []),
      ],
    });
    const diagnosis = () =>
      `caller:\n${caller.output}\n--- proxy A log:\n${fleet.a.logs()}\n--- proxy B log:\n${fleet.b.logs()}`;
    assert.equal(caller.failed, 0, diagnosis());
    assert.equal(caller.successful, run.calls, diagnosis());
    assert.equal(caller.code, 0, diagnosis());
    const answered = await callee.result;
    assert.equal(answered.successful, run.calls, `callee:\n${answered.output}`);
    assert.equal(answered.failed, 0, `callee:\n${answered.output}`);
  } finally {
    callee.kill();
  }
}

/** Runs the calls and checks on each proxy's GET /load and /metrics that they went through both. */
async function callAndCheckBothProxies(
  t: TestContext,
  fleet: TestFleet,
  run: CallRun,
): Promise<void> {
  if (!requireTool(t, "sipp", "sip-tester")) return;
  const receivedBefore = await Promise.all(
    [fleet.a, fleet.b].map((p) => metric(p, "sipsteer_proxy_sip_received_total")),
  );
  await callAcrossFleet(fleet, run);

  // Each call's INVITE, 180, 200, ACK, BYE and 200 crossed both proxies: at least 6 messages
  // each received (more with an auth round or retransmissions).
  const receivedAfter = await Promise.all(
    [fleet.a, fleet.b].map((p) => metric(p, "sipsteer_proxy_sip_received_total")),
  );
  assert.ok(
    receivedAfter[0]! - receivedBefore[0]! >= 6 * run.calls,
    "proxy A did not see the calls",
  );
  assert.ok(
    receivedAfter[1]! - receivedBefore[1]! >= 6 * run.calls,
    "proxy B did not see the calls",
  );
  // cps counts whole seconds already past: it shows the calls within about a second.
  for (const proxy of [fleet.a, fleet.b]) {
    await loadUntil(proxy, "cps > 0", (r) => r.cps > 0, 3000);
    // Every dialog ended with its BYE: no call is left counted on either proxy.
    await loadUntil(proxy, "calls back to 0", (r) => r.calls === 0);
  }
}

// ---- raw requests from a client outside the fleet ----------------------------------------------

let rawCounter = 0;

interface RawRequest {
  readonly method: string;
  readonly uri: string;
  /** The To URI; by default the Request-URI when it names a user. */
  readonly to?: string;
  readonly extra?: readonly string[];
}

/** Sends one non-INVITE request from 127.0.0.1 (not a fleet member) and awaits its final response. */
async function sendRaw(
  to: { address: string; port: number },
  request: RawRequest,
  timeoutMs = 5000,
): Promise<SipResponse> {
  const socket: Socket = createSocket("udp4");
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
    const port = socket.address().port;
    rawCounter++;
    const callId = `fleet-raw-${rawCounter}-${process.pid}`;
    const toUri = request.to ?? (request.uri.includes("@") ? request.uri : `sip:bob@${DOMAIN}`);
    const text = [
      `${request.method} ${request.uri} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-fleet-${rawCounter};rport`,
      "Max-Forwards: 70",
      `From: <sip:mallory@outside.test>;tag=m${rawCounter}`,
      `To: <${toUri}>`,
      `Call-ID: ${callId}`,
      `CSeq: 1 ${request.method}`,
      ...(request.extra ?? []),
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n");
    const final = new Promise<SipResponse>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no final response to ${request.method} in ${timeoutMs} ms`)),
        timeoutMs,
      );
      socket.on("message", (bytes: Buffer) => {
        const message = parseDatagram(bytes);
        if (message instanceof SipResponse && message.callId === callId && message.status >= 200) {
          resolve(message);
        }
      });
    });
    socket.send(text, to.port, to.address);
    return await final;
  } finally {
    clearTimeout(timer);
    socket.close();
  }
}

/**
 * A UDP peer on a loopback address that counts the requests reaching it and answers each
 * with 200 (so that a request wrongly sent there ends at once rather than by timeout).
 */
async function udpPeer(
  address: string,
): Promise<{ port: number; received: () => number; close: () => void }> {
  const socket = createSocket("udp4");
  let received = 0;
  socket.on("message", (bytes: Buffer, from) => {
    const message = parseDatagram(bytes);
    if (!(message instanceof SipRequest)) return;
    received++;
    if (message.method === "ACK") return;
    socket.send(
      createResponse(message, 200, { toTag: "peer" }).toBuffer(),
      from.port,
      from.address,
    );
  });
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return { port: socket.address().port, received: () => received, close: () => socket.close() };
}

// ---- the tests ----------------------------------------------------------------------------------

describe(
  "fleet on one shared SQLite file: calls from proxy A to a client registered at proxy B",
  { concurrency: false },
  () => {
    let dir: string;
    let fleet: TestFleet | undefined;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "sipsteer-fleet-"));
      fleet = await startFleet({
        dir,
        store: { kind: "sqlite", file: join(dir, "location.sqlite") },
      });
    });
    after(async () => {
      fleet?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    test("over UDP: 200 calls through A and B, all answered and ended", async (t) => {
      await callAndCheckBothProxies(t, fleet!, {
        transport: "u1",
        callee: "bob",
        calls: 200,
        rate: 200,
      });
      // A sees B's registration in the store they share.
      await loadUntil(fleet!.a, "registrations ≥ 1", (r) => r.registrations >= 1, 3000);
    });

    test("over TCP: register at B and call through A over TCP, 50 calls", async (t) => {
      await callAndCheckBothProxies(t, fleet!, {
        transport: "t1",
        callee: "carol",
        calls: 50,
        rate: 100,
      });
    });

    test("a Route naming a fleet member is followed for a client outside the fleet", async () => {
      const f = fleet!;
      const before = await metric(f.b, "sipsteer_proxy_sip_received_total");
      const ok = await sendRaw(
        { address: ADDRESS_A, port: f.portA },
        {
          method: "OPTIONS",
          uri: `sip:${ADDRESS_B}:${f.portB}`,
          extra: [`Route: <sip:${ADDRESS_B}:${f.portB};lr>`],
        },
      );
      assert.equal(ok.status, 200);
      assert.match(ok.getHeader("sipsteer-load") ?? "", /^\d\.\d\d$/);
      assert.ok(
        (await metric(f.b, "sipsteer_proxy_sip_received_total")) > before,
        "B never saw it",
      );
    });

    test("not an open relay: a Route to a host outside the fleet gets 403 and is not followed", async () => {
      const f = fleet!;
      const sink = await udpPeer("127.0.0.99");
      try {
        const refused = await sendRaw(
          { address: ADDRESS_A, port: f.portA },
          {
            method: "MESSAGE",
            uri: `sip:bob@${DOMAIN}`,
            extra: [`Route: <sip:127.0.0.99:${sink.port};lr>`],
          },
        );
        assert.equal(refused.status, 403);
        assert.equal(sink.received(), 0);
      } finally {
        sink.close();
      }
    });

    test("not an open relay: a Path naming a host outside the fleet is not followed", async () => {
      const f = fleet!;
      // A client outside the fleet registers dave with a Path of its own making: a proxy on
      // the path would write Path, a client does not, and only fleet members are followed.
      const sink = await udpPeer("127.0.0.99");
      const contact = await udpPeer("127.0.0.1");
      try {
        await sendRaw(
          { address: ADDRESS_A, port: f.portA },
          {
            method: "REGISTER",
            uri: `sip:${DOMAIN}`,
            to: `sip:dave@${DOMAIN}`,
            extra: [
              `Contact: <sip:dave@127.0.0.1:${contact.port}>`,
              `Path: <sip:127.0.0.99:${sink.port};lr>`,
              "Supported: path",
              "Expires: 600",
            ],
          },
        );
        const answered = await sendRaw(
          { address: ADDRESS_A, port: f.portA },
          { method: "MESSAGE", uri: `sip:dave@${DOMAIN}` },
        );
        assert.equal(sink.received(), 0, `sent along a foreign Path (answer: ${answered.status})`);
      } finally {
        sink.close();
        contact.close();
      }
    });

    test("not an open relay: a request for a domain not served gets 403 Relaying Denied", async () => {
      const refused = await sendRaw(
        { address: ADDRESS_A, port: fleet!.portA },
        { method: "MESSAGE", uri: "sip:bob@elsewhere.test" },
      );
      assert.equal(refused.status, 403);
      assert.equal(refused.reason, "Relaying Denied");
    });

    test("SIGTERM: both proxy processes drain and exit 0", async () => {
      assert.deepEqual(await fleet!.stop(), [0, 0]);
    });
  },
);

describe(
  "fleet on Redis with digest authentication: the fleet member's INVITE is not challenged again",
  { concurrency: false },
  () => {
    let dir: string;
    let redis: TestRedis | undefined;
    let fleet: TestFleet | undefined;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "sipsteer-fleet-"));
    });
    after(async () => {
      fleet?.kill();
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test("over UDP: 200 authenticated calls through A and B, only A challenges", async (t) => {
      if (!requireTool(t, "redis-server", "redis-server")) return;
      if (!requireTool(t, "sipp", "sip-tester")) return;
      redis = await startRedis();
      const credentialsFile = join(dir, "credentials");
      writeFileSync(
        credentialsFile,
        `${Credentials.line("alice", DOMAIN, PASSWORDS.alice)}\n${Credentials.line("bob", DOMAIN, PASSWORDS.bob)}\n`,
      );
      fleet = await startFleet({
        dir,
        store: { kind: "redis", url: redis.url, prefix: `fleet-${process.pid}:` },
        credentialsFile,
      });
      await callAndCheckBothProxies(t, fleet, {
        transport: "u1",
        callee: "bob",
        calls: 200,
        rate: 200,
        auth: true,
      });
      // A challenged each INVITE once; B challenged only the REGISTER, never A's forwards.
      assert.equal(await metric(fleet.a, "sipsteer_proxy_auth_challenges_total"), 200);
      assert.equal(await metric(fleet.a, "sipsteer_proxy_auth_failures_total"), 0);
      assert.equal(await metric(fleet.b, "sipsteer_proxy_auth_challenges_total"), 1);
      assert.equal(await metric(fleet.b, "sipsteer_proxy_auth_accepted_total"), 1);
      assert.deepEqual(await fleet.stop(), [0, 0]);
    });
  },
);
