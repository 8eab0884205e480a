// The pure parts of `sipsteer up`: its settings (file and options, the options winning, errors
// naming the option or the field), the plan of addresses and ports of DESIGN.md, and the
// data folder's users and default place.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { upInfoSchema } from "../../src/contracts/index.js";
import { defaultDataDir, numberedUsers } from "../../src/cli/up/data-folder.js";
import { findExecutable } from "../../src/cli/up/executable.js";
import { formatSummary } from "../../src/cli/up/up-output.js";
import {
  clashingPorts,
  planUp,
  plannedPorts,
  withSharedPortsChosen,
} from "../../src/cli/up/plan.js";
import { parseUpConfig, resolvePathsFrom } from "../../src/cli/up/up-config.js";
import { usersCsv } from "../../src/cli/up/sipp-files.js";

describe("sipsteer up - settings", () => {
  test("defaults are DESIGN.md's names and addresses", () => {
    const plan = planUp(parseUpConfig({}));
    assert.equal(plan.domain, "sipsteer.test");
    assert.deepEqual(plan.monitor, {
      address: "127.0.0.1",
      httpPort: 8080,
      dnsPort: 5300,
      sipPort: 5060,
    });
    assert.deepEqual(
      plan.proxies.map((p) => [
        p.id,
        p.name,
        p.address,
        p.sipPort,
        p.wsPort,
        p.httpPort,
        p.tlsPort,
      ]),
      [
        ["p1", "p1.sipsteer.test", "127.0.0.11", 5060, 8088, 9060, undefined],
        ["p2", "p2.sipsteer.test", "127.0.0.12", 5060, 8088, 9060, undefined],
        ["p3", "p3.sipsteer.test", "127.0.0.13", 5060, 8088, 9060, undefined],
      ],
    );
  });

  test("options override the file; a TLS certificate adds the TLS port", () => {
    const config = parseUpConfig({
      file: {
        proxies: 2,
        domain: "Example.NET",
        proxy: { sipPort: 5070, tls: { certFile: "/c.pem", keyFile: "/k.pem" } },
      },
      options: { proxies: "4", proxySipPort: "5080", addressBase: "127.0.1.0" },
    });
    const plan = planUp(config);
    assert.equal(plan.domain, "example.net");
    assert.deepEqual(
      plan.proxies.map((p) => [p.address, p.sipPort, p.tlsPort, p.name]),
      [1, 2, 3, 4].map((n) => [`127.0.1.${n}`, 5080, 5061, `p${n}.example.net`]),
    );
  });

  test("a bad value names the option it came from, or the field of the file", () => {
    const cases: [Parameters<typeof parseUpConfig>[0], RegExp][] = [
      [{ options: { proxies: "0" } }, /^--proxies: /],
      [{ options: { httpPort: "eighty" } }, /^--http-port: expected an integer, got eighty$/],
      [{ options: { proxyWsPort: "70000" } }, /^--proxy-ws-port: /],
      [
        { file: { monitor: { dnsPort: -1 } }, fileName: "up.yaml" },
        /^up\.yaml: up\.monitor\.dnsPort: /,
      ],
      [{ file: { proxy: { tls: { certFile: "/c.pem" } } } }, /^up\.proxy\.tls\.keyFile: /],
      [{ file: { prxies: 2 } }, /^up\.prxies: /],
      [{ file: { allowedDestinations: ["10.0.0.0/40"] } }, /^up\.allowedDestinations\.0: /],
      [{ file: { proxies: 100, proxy: { addressBase: "127.0.0.200" } } }, /^up\.proxies: /],
      [{ file: [1, 2] }, /expected a mapping/],
      [{ options: { relayNgPort: "x" } }, /^--relay-ng-port: expected an integer, got x$/],
      [
        { file: { proxies: 6, relay: { rtpPortBase: 60_000 } } },
        /^up\.relay\.rtpPortBase: relay 6's RTP ports would end at 65999: past 65535$/,
      ],
      [{ file: { relay: { rtpPortsEach: 2 } } }, /^up\.relay\.rtpPortsEach: /],
      [{ file: { relays: "yes" } }, /^up\.relays: /],
    ];
    for (const [sources, message] of cases) {
      assert.throws(() => parseUpConfig(sources), { message }, JSON.stringify(sources));
    }
  });

  test("relative paths of a config file are taken from its folder", () => {
    assert.deepEqual(
      resolvePathsFrom(
        { data: "d", proxy: { tls: { certFile: "c.pem", keyFile: "/k.pem" } } },
        "/etc/up",
      ),
      { data: "/etc/up/d", proxy: { tls: { certFile: "/etc/up/c.pem", keyFile: "/k.pem" } } },
    );
    // A relay binary with a slash is a path; without one, a command looked up on PATH.
    assert.deepEqual(resolvePathsFrom({ relay: { binary: "bin/rtpengine" } }, "/etc/up"), {
      relay: { binary: "/etc/up/bin/rtpengine" },
    });
    assert.deepEqual(resolvePathsFrom({ relay: { binary: "rtpengine" } }, "/etc/up"), {
      relay: { binary: "rtpengine" },
    });
  });

  test("relays: on by default; --no-relays (passed on as false) and relays: false turn them off", () => {
    const on = parseUpConfig({});
    assert.equal(on.relays, true);
    assert.deepEqual(on.relay, {
      binary: "rtpengine",
      ngPort: 2223,
      rtpPortBase: 30_000,
      rtpPortsEach: 1000,
      sessions: 0,
    });
    assert.equal(parseUpConfig({ options: { relays: "false" } }).relays, false);
    assert.equal(parseUpConfig({ file: { relays: false } }).relays, false);
    // The option wins over the file, as every other.
    assert.equal(
      parseUpConfig({ file: { relays: true }, options: { relays: "false" } }).relays,
      false,
    );
    assert.equal(
      parseUpConfig({ options: { rtpengine: "/opt/rtpengine" } }).relay.binary,
      "/opt/rtpengine",
    );
  });
});

describe("sipsteer up - plan", () => {
  test("every socket is listed, with the option that moves it; clashes are found", () => {
    const plan = planUp(parseUpConfig({ options: { proxies: "1" } }));
    const ports = plannedPorts(plan).map((p) => `${p.address}:${p.port}/${p.protocol} ${p.option}`);
    assert.deepEqual(ports, [
      "127.0.0.1:8080/tcp --http-port",
      "127.0.0.1:5300/udp --dns-port",
      "127.0.0.1:5300/tcp --dns-port",
      "127.0.0.1:5060/udp --sip-port",
      "127.0.0.1:5060/tcp --sip-port",
      "127.0.0.11:5060/udp --proxy-sip-port",
      "127.0.0.11:5060/tcp --proxy-sip-port",
      "127.0.0.11:8088/tcp --proxy-ws-port",
      "127.0.0.11:9060/tcp --proxy-http-port",
      "127.0.0.11:2223/udp --relay-ng-port",
    ]);
    assert.equal(clashingPorts(plannedPorts(plan)), undefined);
    const clash = clashingPorts(
      plannedPorts(planUp(parseUpConfig({ options: { proxyWsPort: "9060" } }))),
    );
    assert.deepEqual(
      clash?.map((p) => p.role),
      ["p1 SIP over WebSocket", "p1 HTTP"],
    );
    // An address base of 127.0.0.0 puts p1 on the monitor's address.
    const overlap = clashingPorts(
      plannedPorts(
        planUp(parseUpConfig({ options: { addressBase: "127.0.0.0", proxySipPort: "5060" } })),
      ),
    );
    assert.deepEqual(
      overlap?.map((p) => p.role),
      ["monitor SIP redirect", "p1 SIP"],
    );
  });

  test("ports of 0 shared by UDP and TCP are chosen once, the proxies' on every proxy address", async () => {
    const plan = planUp(
      parseUpConfig({ options: { sipPort: "0", dnsPort: "0", proxySipPort: "0", httpPort: "0" } }),
    );
    const asked: string[][] = [];
    let next = 40_000;
    const chosen = await withSharedPortsChosen(plan, async (addresses) => {
      asked.push([...addresses]);
      return next++;
    });
    assert.deepEqual(asked, [
      ["127.0.0.1"],
      ["127.0.0.1"],
      ["127.0.0.11", "127.0.0.12", "127.0.0.13"],
    ]);
    assert.equal(chosen.monitor.dnsPort, 40_000);
    assert.equal(chosen.monitor.sipPort, 40_001);
    assert.equal(chosen.monitor.httpPort, 0, "TCP alone: left to the child");
    assert.deepEqual(
      chosen.proxies.map((p) => p.sipPort),
      [40_002, 40_002, 40_002],
    );
  });
});

describe("sipsteer up - relays", () => {
  test("relay n beside proxy n: ng on its address, RTP on 127.0.0.1 in a range of its own", () => {
    const plan = planUp(
      parseUpConfig({ file: { relay: { rtpPortBase: 40_000, rtpPortsEach: 500, sessions: 20 } } }),
    );
    assert.deepEqual(
      plan.relays.map((r) => [
        r.id,
        r.proxy,
        `${r.ngAddress}:${r.ngPort}`,
        r.rtpAddress,
        r.rtpMin,
        r.rtpMax,
        r.sessions,
      ]),
      [
        ["r1", "p1", "127.0.0.11:2223", "127.0.0.1", 40_000, 40_499, 20],
        ["r2", "p2", "127.0.0.12:2223", "127.0.0.1", 40_500, 40_999, 20],
        ["r3", "p3", "127.0.0.13:2223", "127.0.0.1", 41_000, 41_499, 20],
      ],
    );
    assert.deepEqual(planUp(parseUpConfig({ file: { relays: false } })).relays, []);
    // A relay's ng port on a proxy's SIP port is a clash, named.
    const clash = clashingPorts(
      plannedPorts(planUp(parseUpConfig({ options: { proxies: "1", relayNgPort: "5060" } }))),
    );
    assert.deepEqual(
      clash?.map((p) => p.role),
      ["p1 SIP", "r1 ng control"],
    );
  });

  test("an ng port of 0 is chosen once for every relay, never the proxies' SIP port (UDP on the same addresses)", async () => {
    const plan = planUp(
      parseUpConfig({ options: { proxies: "2", proxySipPort: "0", relayNgPort: "0" } }),
    );
    const asked: string[][] = [];
    // The chooser hands out the proxies' port again first: the relays must not take it.
    const answers = [40_000, 40_000, 40_001];
    const chosen = await withSharedPortsChosen(plan, async (addresses) => {
      asked.push([...addresses]);
      return answers.shift()!;
    });
    assert.deepEqual(asked.slice(-3), [
      ["127.0.0.11", "127.0.0.12"],
      ["127.0.0.11", "127.0.0.12"],
      ["127.0.0.11", "127.0.0.12"],
    ]);
    assert.deepEqual(
      chosen.proxies.map((p) => p.sipPort),
      [40_000, 40_000],
    );
    assert.deepEqual(
      chosen.relays.map((r) => r.ngPort),
      [40_001, 40_001],
    );
  });

  test("the rtpengine binary is found on PATH or at a path, and only when it is an executable file", () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-exe-"));
    try {
      const exe = join(dir, "rtpengine");
      writeFileSync(exe, "#!/bin/sh\n");
      chmodSync(exe, 0o755);
      const plain = join(dir, "plain");
      writeFileSync(plain, "");
      assert.equal(findExecutable("rtpengine", { PATH: `/nonexistent:${dir}` }), exe);
      assert.equal(findExecutable(exe, { PATH: "" }), exe);
      assert.equal(findExecutable("rtpengine", { PATH: "/nonexistent" }), undefined);
      assert.equal(findExecutable("plain", { PATH: dir }), undefined, "not executable");
      assert.equal(findExecutable(dir, { PATH: "" }), undefined, "a folder");
      assert.equal(findExecutable("/nonexistent/rtpengine"), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the summary has a line per relay, or says why there is none", () => {
    const info = upInfoSchema.parse({
      domain: "sipsteer.test",
      data: "/d",
      adminToken: "0123456789abcdef",
      pid: 1,
      monitor: {
        http: "http://127.0.0.1:8080",
        zone: "sipsteer.test",
        redirect: "sip:127.0.0.1:5060",
        pid: 2,
      },
      proxies: [
        {
          id: "p1",
          name: "p1.sipsteer.test",
          sip: {
            udp: "sip:127.0.0.11:5060",
            tcp: "sip:127.0.0.11:5060;transport=tcp",
            ws: "ws://127.0.0.11:8088",
          },
          http: "http://127.0.0.11:9060",
          pid: 3,
        },
      ],
      relays: [{ id: "r1", ng: "127.0.0.11:2223", rtp: { min: 30_000, max: 30_999 }, pid: 4 }],
      users: [{ user: "alice", password: "pw", aor: "sip:alice@sipsteer.test" }],
      files: { credentials: "/c", usersCsv: "/u", sippRegister: "/s", logs: "/l" },
    });
    assert.match(
      formatSummary(info),
      /\n {2}r1 {3}ng 127\.0\.0\.11:2223 +pid 4 +RTP 127\.0\.0\.1:30000–30999\n/,
    );
    const none = formatSummary(
      { ...info, relays: [] },
      {
        noRelays:
          "rtpengine not found (Debian package rtpengine-daemon: apt-get install rtpengine-daemon)",
      },
    );
    assert.match(
      none,
      /Media relays .*\n {2}none: rtpengine not found \(Debian package rtpengine-daemon/,
    );
  });
});

describe("sipsteer up - data folder", () => {
  test("numbered users have four digits or as many as their count needs", () => {
    assert.deepEqual(numberedUsers(3), ["user0001", "user0002", "user0003"]);
    assert.equal(numberedUsers(12_345).at(-1), "user12345");
    assert.equal(numberedUsers(12_345)[0], "user00001");
    assert.deepEqual(numberedUsers(0), []);
  });

  test("the default folder follows XDG_DATA_HOME, else ~/.local/share", () => {
    assert.equal(defaultDataDir({ XDG_DATA_HOME: "/x/data" }, "/home/u"), "/x/data/sipsteer");
    assert.equal(defaultDataDir({}, "/home/u"), "/home/u/.local/share/sipsteer");
    // A relative XDG_DATA_HOME is invalid by the spec and ignored.
    assert.equal(
      defaultDataDir({ XDG_DATA_HOME: "rel" }, "/home/u"),
      "/home/u/.local/share/sipsteer",
    );
  });

  test("the SIPp CSV: SEQUENTIAL, then user;password;domain;[authentication …]", () => {
    assert.equal(
      usersCsv([{ user: "alice", password: "pw1" }], "sipsteer.test"),
      "SEQUENTIAL\n# user;password;domain;auth (fields 0 to 3)\n" +
        "alice;pw1;sipsteer.test;[authentication username=alice password=pw1]\n",
    );
  });
});
