// `sipsteer up` as a user runs it: the real CLI as a child process, which starts a real
// monitor and real proxies as its own children on 127.0.0.1 and 127.0.0.11…, with a temporary
// data folder and free ports. One run serves several checks (each start is four processes).
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import YAML from "yaml";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { upInfoSchema, type UpInfo } from "../../src/contracts/index.js";
import { Credentials, ha1 } from "../../src/sip/index.js";
import { reap, runCli, within, type CliRun } from "../helpers/cli.js";
import { freePort, startSipp } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { alive, freePortOn, portFree, until } from "../helpers/up.js";

const PROXY_ADDRESSES = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
const READY_MS = 60_000;
const STOP_MS = 20_000;

/** Every socket the `--json` line names: [address, port, protocol]. */
function socketsOf(info: UpInfo): [string, number, "udp" | "tcp"][] {
  const at = (uri: string) => {
    const m = /(\d+\.\d+\.\d+\.\d+):(\d+)/.exec(uri);
    assert.ok(m !== null, `an address in ${uri}`);
    return [m[1]!, Number(m[2])] as const;
  };
  const sockets: [string, number, "udp" | "tcp"][] = [
    [...at(info.monitor.http), "tcp"],
    [...at(info.monitor.redirect), "udp"],
    [...at(info.monitor.redirect), "tcp"],
    [...at(info.monitor.dns!), "udp"],
    [...at(info.monitor.dns!), "tcp"],
  ];
  for (const p of info.proxies) {
    sockets.push([...at(p.sip.udp), "udp"], [...at(p.sip.tcp), "tcp"]);
    sockets.push([...at(p.sip.ws), "tcp"], [...at(p.http), "tcp"]);
  }
  return sockets;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

describe("sipsteer up (CLI)", () => {
  let dir: string;
  let data: string;
  /** What the first run printed, for the second run to compare with. */
  let first: UpInfo | undefined;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "sipsteer-up-"));
    data = join(dir, "data");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("--json with a YAML config: the line has every key once every proxy is eligible; alice registers over SIPp from the users CSV; the proxies share the store; SIGTERM stops every process and frees every port", async (t) => {
    const sipPort = await freePortOn(PROXY_ADDRESSES);
    const config = join(dir, "up.yaml");
    // The options below override the file's users (2 → 5).
    writeFileSync(
      config,
      [
        "proxies: 3",
        "users: 2",
        "logLevel: warn",
        "monitor: { httpPort: 0, dnsPort: 0, sipPort: 0 }",
        "proxy: { wsPort: 0, httpPort: 0, authAlgorithms: [MD5] }",
        // The relays have their own tests (up-relays.test.ts).
        "relays: false",
        "",
      ].join("\n"),
    );
    const run = runCli([
      "up",
      "-c",
      config,
      "--data",
      data,
      "--users",
      "5",
      "--proxy-sip-port",
      String(sipPort),
      "--json",
    ]);
    try {
      const line = await within(run.firstLine, READY_MS);
      assert.ok(line !== undefined, `a JSON line within ${READY_MS} ms: ${run.stderr}`);
      const raw = JSON.parse(line) as Record<string, unknown>;
      for (const key of ["domain", "data", "adminToken", "monitor", "proxies", "users"]) {
        assert.ok(key in raw, `the line has ${key}`);
      }
      const info = upInfoSchema.parse(raw);
      first = info;
      assert.equal(info.domain, "sipsteer.test");
      assert.equal(info.data, data);
      assert.equal(info.pid, run.child.pid);
      assert.deepEqual(info.relays, [], "relays: false in the file");
      assert.match(info.monitor.http, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(info.monitor.redirect, /^sip:127\.0\.0\.1:\d+$/);
      assert.equal(info.monitor.zone, "sipsteer.test");
      assert.match(info.monitor.dns ?? "", /^127\.0\.0\.1:\d+$/);
      assert.equal(info.monitor.dashboard, `${info.monitor.http}/dashboard/`);
      assert.equal(info.monitor.phone, `${info.monitor.http}/phone/`);
      const dashboard = await fetch(info.monitor.dashboard!);
      assert.equal(dashboard.status, 200);
      assert.match(await dashboard.text(), /<title>sipsteer fleet<\/title>/);
      assert.deepEqual(
        info.proxies.map((p) => [p.id, p.name]),
        [1, 2, 3].map((n) => [`p${n}`, `p${n}.sipsteer.test`]),
      );
      info.proxies.forEach((p, i) => {
        const address = PROXY_ADDRESSES[i]!;
        assert.equal(p.sip.udp, `sip:${address}:${sipPort}`);
        assert.equal(p.sip.tcp, `sip:${address}:${sipPort};transport=tcp`);
        assert.match(p.sip.ws, new RegExp(`^ws://${address.replaceAll(".", "\\.")}:\\d+$`));
        assert.match(p.http, new RegExp(`^http://${address.replaceAll(".", "\\.")}:\\d+$`));
      });
      assert.deepEqual(
        info.users.map((u) => u.user),
        ["alice", "bob", "carol", "user0001", "user0002", "user0003", "user0004", "user0005"],
      );
      for (const u of info.users) {
        assert.equal(u.aor, `sip:${u.user}@sipsteer.test`);
        assert.ok(u.password.length >= 12, `${u.user} has a generated password`);
      }
      assert.equal(new Set(info.users.map((u) => u.password)).size, info.users.length);

      // Every proxy is eligible at the monitor, and a select names one of them.
      const listing = await getJson<{ proxies: { id: string; eligible: boolean }[] }>(
        `${info.monitor.http}/v1/proxies`,
      );
      assert.deepEqual(listing.proxies.map((p) => [p.id, p.eligible]).sort(), [
        ["p1", true],
        ["p2", true],
        ["p3", true],
      ]);
      const select = await getJson<{ proxy: string; uri: string }>(
        `${info.monitor.http}/v1/select?transport=udp`,
      );
      assert.ok(
        info.proxies.some((p) => p.id === select.proxy && p.sip.udp === select.uri),
        `select answers a proxy of the line: ${JSON.stringify(select)}`,
      );

      // The data folder: the CSV with every user, the credentials with both HA1 values.
      const csv = readFileSync(info.files.usersCsv, "utf8").trim().split("\n");
      assert.equal(csv[0], "SEQUENTIAL");
      const rows = csv.filter((l) => !l.startsWith("#")).slice(1);
      assert.ok(rows.length >= 5, `5+ users in the CSV: ${rows.length}`);
      for (const u of info.users) {
        assert.ok(
          rows.includes(
            `${u.user};${u.password};sipsteer.test;[authentication username=${u.user} password=${u.password}]`,
          ),
          `${u.user} in the CSV`,
        );
      }
      const credentials = Credentials.parse(readFileSync(info.files.credentials, "utf8"));
      const alice = info.users[0]!;
      assert.equal(
        credentials.ha1("alice", "sipsteer.test", "MD5"),
        ha1("MD5", "alice", "sipsteer.test", alice.password),
      );
      assert.equal(
        credentials.ha1("alice", "sipsteer.test", "SHA-256"),
        ha1("SHA-256", "alice", "sipsteer.test", alice.password),
      );
      const p1 = YAML.parse(readFileSync(join(data, "p1.yaml"), "utf8")) as {
        auth: { algorithms: string[] };
      };
      assert.deepEqual(p1.auth.algorithms, ["MD5"], "the file's authAlgorithms reach the proxies");
      const secrets = readFileSync(join(data, "secrets.json"), "utf8");
      assert.ok(secrets.includes(info.adminToken), "the admin token is kept in the data folder");

      // A real REGISTER with digest auth: SIPp takes alice, bob and carol from the CSV.
      if (requireTool(t, "sipp", "sip-tester")) {
        const p1 = info.proxies[0]!;
        const sipp = startSipp({
          scenario: info.files.sippRegister,
          transport: "u1",
          remote: p1.sip.udp.replace(/^sip:/, ""),
          localPort: await freePort(),
          calls: 3,
          extraArgs: ["-inf", info.files.usersCsv],
          timeoutMs: 30_000,
        });
        try {
          const result = await sipp.result;
          assert.equal(result.failed, 0, result.output);
          assert.equal(result.successful, 3, result.output);
        } finally {
          sipp.kill();
        }
        // Registered at p1, counted by p3: one location store.
        await until("p3 counts the bindings made at p1", async () => {
          const load = await getJson<{ registrations: number }>(`${info.proxies[2]!.http}/load`);
          return load.registrations >= 3;
        });
      }

      const sockets = socketsOf(info);
      const pids = [info.monitor.pid, ...info.proxies.map((p) => p.pid)];
      assert.ok(pids.every(alive), "every child runs");
      run.child.kill("SIGTERM");
      const exited = await within(run.exit, STOP_MS);
      assert.ok(exited !== undefined, `exited within ${STOP_MS} ms of SIGTERM: ${run.stderr}`);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
      assert.doesNotMatch(run.stderr, /killed after/);
      assert.deepEqual(
        pids.filter(alive),
        [],
        "no child left (up waited for each, so none is a zombie)",
      );
      for (const [address, port, protocol] of sockets) {
        assert.equal(
          await portFree(address, port, protocol),
          true,
          `${address}:${port}/${protocol} is free`,
        );
      }
    } finally {
      reap(run);
      await run.exit;
    }
  });

  test("a second run on the same data folder keeps the passwords and the admin token; the summary names every address and user; a child that dies stops the others, exit 1 naming it", async () => {
    assert.ok(first !== undefined, "the first run printed its line");
    const sipPort = await freePortOn(PROXY_ADDRESSES.slice(0, 1));
    const run: CliRun = runCli([
      "up",
      "--data",
      data,
      "--proxies",
      "1",
      "--users",
      "5",
      "--http-port",
      "0",
      "--dns-port",
      "0",
      "--sip-port",
      "0",
      "--proxy-sip-port",
      String(sipPort),
      "--proxy-ws-port",
      "0",
      "--proxy-http-port",
      "0",
      "--log-level",
      "warn",
      "--no-relays",
    ]);
    try {
      await until(
        "the summary",
        async () => run.stdout.includes("Ctrl-C stops everything"),
        READY_MS,
      );
      const out = run.stdout;
      for (const u of first.users.slice(0, 5)) {
        assert.ok(
          out.includes(`${u.aor}`) && out.includes(u.password),
          `${u.user} and the same password`,
        );
      }
      assert.match(out, /… and 3 more in .*users\.csv/);
      assert.match(out, /Media relays .*\n {2}none: turned off/);
      assert.ok(out.includes(first.adminToken), "the same admin token");
      assert.ok(out.includes(`sip:127.0.0.11:${sipPort} (UDP, TCP)`), out);
      assert.match(out, /HTTP API {7}http:\/\/127\.0\.0\.1:\d+/);
      assert.match(out, /SIP redirect {3}sip:127\.0\.0\.1:\d+/);
      assert.match(out, /Dashboard {6}http:\/\/127\.0\.0\.1:\d+\/dashboard\//);
      assert.match(out, /Browser phone {2}http:\/\/127\.0\.0\.1:\d+\/phone\//);
      assert.match(out, /DNS {12}127\.0\.0\.1:\d+ {3}zone sipsteer\.test/);
      assert.match(out, /sipp 127\.0\.0\.11:\d+ -sf .*sipp-register\.xml -inf .*users\.csv/);
      assert.match(out, /sipsteer call bob --monitor http:\/\/127\.0\.0\.1:\d+ --user alice/);

      const monitorPid = Number(/Monitor \(pid (\d+)\)/.exec(out)?.[1]);
      const proxyPid = Number(/p1 +p1\.sipsteer\.test +pid (\d+)/.exec(out)?.[1]);
      assert.ok(alive(monitorPid) && alive(proxyPid), `pids in the summary: ${out}`);
      process.kill(proxyPid, "SIGKILL");
      const exited = await within(run.exit, STOP_MS);
      assert.ok(exited !== undefined, `up exits when p1 dies: ${run.stderr}`);
      assert.equal(exited.code, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`p1 \\(pid ${proxyPid}\\) was killed by SIGKILL`));
      assert.equal(alive(monitorPid), false, "the monitor was stopped too");
    } finally {
      reap(run);
      await run.exit;
    }
  });

  test("up killed outright (SIGKILL): its children notice and stop by themselves", async () => {
    const run = runCli([
      "up",
      "--data",
      join(dir, "killed"),
      "--proxies",
      "1",
      "--http-port",
      "0",
      "--dns-port",
      "0",
      "--sip-port",
      "0",
      "--proxy-sip-port",
      "0",
      "--proxy-ws-port",
      "0",
      "--proxy-http-port",
      "0",
      "--no-relays",
      "--json",
    ]);
    let pids: number[] = [];
    try {
      const line = await within(run.firstLine, READY_MS);
      assert.ok(line !== undefined, `a JSON line: ${run.stderr}`);
      const info = upInfoSchema.parse(JSON.parse(line));
      pids = [info.monitor.pid, ...info.proxies.map((p) => p.pid)];
      run.child.kill("SIGKILL");
      await run.exit;
      await until("every child gone", async () => pids.every((pid) => !alive(pid)), STOP_MS);
    } finally {
      reap(run);
      await run.exit;
      for (const pid of pids.filter(alive)) process.kill(pid, "SIGKILL");
    }
  });

  test("a port already taken: exit 2 naming it, before anything starts", async () => {
    const port = await freePortOn(PROXY_ADDRESSES);
    const fresh = join(dir, "never-made");
    const holder: Socket = createSocket("udp4");
    await new Promise<void>((r) => holder.bind(port, "127.0.0.12", () => r()));
    const run = runCli([
      "up",
      "--data",
      fresh,
      "--proxy-sip-port",
      String(port),
      "--http-port",
      "0",
      "--dns-port",
      "0",
      "--sip-port",
      "0",
      "--json",
    ]);
    try {
      const exited = await within(run.exit, STOP_MS);
      assert.ok(exited !== undefined, "exits");
      assert.equal(exited.code, 2, run.stderr);
      assert.match(run.stderr, new RegExp(`sipsteer up: 127\\.0\\.0\\.12:${port}/udp is taken`));
      assert.match(run.stderr, /--proxy-sip-port/);
      assert.equal(run.stdout, "");
      assert.equal(existsSync(fresh), false, "no data folder: nothing was started");
    } finally {
      reap(run);
      await run.exit;
      holder.close();
    }
  });

  test("a bad setting: exit 2 naming the option or the field of the file", async () => {
    const cases: [name: string, file: string[] | undefined, args: string[], named: string][] = [
      ["port out of range", ["proxy: { sipPort: 70000 }"], [], "up.proxy.sipPort"],
      ["unknown field", ["prxies: 2"], [], "up.prxies"],
      ["unknown digest", ["proxy: { authAlgorithms: [SHA-1] }"], [], "up.proxy.authAlgorithms.0"],
      ["bad domain", ["domain: 'not a name'"], [], "up.domain"],
      ["no proxies", undefined, ["--proxies", "0"], "--proxies"],
      ["port not a number", undefined, ["--http-port", "x"], "--http-port"],
      ["bad log level", undefined, ["--log-level", "loud"], "--log-level"],
      ["missing file", [], [], "--config"],
    ];
    const runs = cases.map(([name, lines, args, named]) => {
      const file = join(dir, `${name.replace(/\W+/g, "-")}.yaml`);
      if (lines !== undefined && lines.length > 0) writeFileSync(file, `${lines.join("\n")}\n`);
      const config = lines === undefined ? [] : ["-c", file];
      return { name, named, run: runCli(["up", ...config, ...args, "--data", join(dir, "bad")]) };
    });
    try {
      for (const { name, named, run } of runs) {
        const exited = await within(run.exit, STOP_MS);
        assert.ok(exited !== undefined, `${name}: exits`);
        assert.equal(exited.code, 2, `${name}: exit code; stderr: ${run.stderr}`);
        assert.ok(run.stderr.includes(named), `${name}: stderr names ${named}: ${run.stderr}`);
        assert.equal(run.stdout, "", `${name}: nothing on stdout`);
      }
      assert.equal(existsSync(join(dir, "bad")), false, "no data folder made");
    } finally {
      for (const { run } of runs) reap(run);
      await Promise.all(runs.map(({ run }) => run.exit));
    }
  });
});
