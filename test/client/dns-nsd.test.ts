// RFC 3263 discovery against a stock authoritative server, NSD (Debian `nsd`), serving an
// operator's zone that is not sipsteer's: the SRV answer is too large for 512 bytes, so it
// comes truncated over UDP and whole over TCP (RFC 7766); NSD is run with minimal responses,
// so the targets' addresses are not in the additional section and each is asked (A, AAAA).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Discovery } from "../../src/client/index.js";
import { openHandles } from "../helpers/handles.js";
import { freePort, waitForBound } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";

const ZONE = "voip.example";
const PROXIES = 20;

function zoneFile(): string {
  const lines = [
    `$ORIGIN ${ZONE}.`,
    "$TTL 60",
    `@ IN SOA ns.${ZONE}. hostmaster.${ZONE}. 1 3600 600 86400 60`,
    `@ IN NS ns.${ZONE}.`,
    "ns IN A 127.0.0.1",
    // The one to try first; the rest share priority 20 by weight.
    `_sip._udp IN SRV 10 0 5070 edge-proxy-number-1.${ZONE}.`,
    "edge-proxy-number-1 IN A 127.0.1.1",
  ];
  for (let i = 2; i <= PROXIES; i++) {
    lines.push(`_sip._udp IN SRV 20 ${i} 5060 edge-proxy-number-${i}.${ZONE}.`);
    lines.push(
      i === PROXIES
        ? `edge-proxy-number-${i} IN AAAA ::1`
        : `edge-proxy-number-${i} IN A 127.0.1.${i}`,
    );
  }
  return lines.join("\n") + "\n";
}

describe("client discovery against a stock DNS server", () => {
  test("DNS discovery with NSD: truncated UDP retried over TCP, addresses asked, RFC 2782 order", async (t) => {
    if (!requireTool(t, "nsd", "nsd")) return;
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-nsd-"));
    const port = await freePort();
    writeFileSync(join(dir, "zone"), zoneFile());
    writeFileSync(
      join(dir, "nsd.conf"),
      [
        "server:",
        "  ip-address: 127.0.0.1",
        `  port: ${port}`,
        '  username: ""',
        `  zonesdir: "${dir}"`,
        `  pidfile: "${dir}/nsd.pid"`,
        '  database: ""',
        `  xfrdfile: "${dir}/xfrd.state"`,
        `  zonelistfile: "${dir}/zone.list"`,
        `  logfile: "${dir}/nsd.log"`,
        "  minimal-responses: yes",
        "remote-control:",
        "  control-enable: no",
        "zone:",
        `  name: "${ZONE}"`,
        '  zonefile: "zone"',
        "",
      ].join("\n"),
    );
    const nsd = spawn("nsd", ["-d", "-c", join(dir, "nsd.conf")], { stdio: "ignore" });
    try {
      await waitForBound(port, "udp");
      await waitForBound(port, "tcp");
      let seed = 7;
      const random = () => {
        seed = (seed * 16807) % 2147483647;
        return seed / 2147483647;
      };
      const discovery = new Discovery(
        { monitors: [`dns:127.0.0.1:${port}/${ZONE}`], transport: "udp", timeoutMs: 5000 },
        { random },
      );
      const { candidates } = await discovery.discover();
      assert.equal(candidates.length, PROXIES);
      assert.deepEqual(candidates[0], {
        id: "edge-proxy-number-1",
        uri: "sip:127.0.1.1:5070",
        host: "127.0.1.1",
        port: 5070,
        transport: "udp",
      });
      assert.deepEqual(
        new Set(candidates.map((c) => c.host)),
        new Set([...Array.from({ length: PROXIES - 1 }, (_, i) => `127.0.1.${i + 1}`), "::1"]),
      );
      assert.equal(candidates.find((c) => c.host === "::1")!.uri, "sip:[::1]:5060");
    } finally {
      if (nsd.exitCode === null && nsd.signalCode === null) {
        const exited = new Promise((r) => nsd.once("exit", r));
        nsd.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    }
    assert.deepEqual(await openHandles(), {});
  });
});
