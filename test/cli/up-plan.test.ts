// The pure parts of `sipsteer up`: its settings (file and options, the options winning, errors
// naming the option or the field), the plan of addresses and ports of DESIGN.md, and the
// data folder's users and default place.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { defaultDataDir, numberedUsers } from "../../src/cli/up/data-folder.js";
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
