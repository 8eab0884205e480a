// `sipsteer monitor -c monitor.yaml --json`: the monitor role as a process. It prints one JSON
// line when serving, takes signed pushes from a real sipsteer proxy and answers selects, stops
// on SIGTERM with exit code 0 and frees its ports; a bad config exits 2 naming the field.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Proxy } from "../../src/proxy/index.js";
import { reap, runCli, within } from "../helpers/cli.js";
import { eventually } from "../helpers/eventually.js";
import { tcpPortFree, udpPortFree } from "../helpers/sipp.js";

const DOMAIN = "sipsteer.test";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY = { id: "k1", secret: "a-shared-report-secret" };

describe("sipsteer monitor (CLI)", () => {
  test("serves: one JSON line, /healthz, a real proxy's pushes make it selectable; SIGTERM exits 0 and frees its ports", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-monitor-cli-"));
    const config = join(dir, "monitor.yaml");
    writeFileSync(
      config,
      [
        "http: { address: 127.0.0.1, port: 0 }",
        "udpPush: { address: 127.0.0.1, port: 0 }",
        "keys:",
        `  - { id: ${KEY.id}, secret: ${KEY.secret} }`,
        `allowedDestinations: ["127.0.0.0/8", "::1/128"]`,
        "",
      ].join("\n"),
    );
    const run = runCli(["monitor", "-c", config, "--json", "--log-level", "warn"]);
    let proxy: Proxy | undefined;
    try {
      const line = await within(run.firstLine, 10_000);
      assert.ok(line !== undefined, `a JSON line within 10 s: ${run.stderr}`);
      const info = JSON.parse(line) as { monitor: { http: string; udpPush?: string }; pid: number };
      assert.deepEqual(Object.keys(info).sort(), ["monitor", "pid"]);
      assert.equal(info.pid, run.child.pid);
      assert.match(info.monitor.http, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(info.monitor.http, "http://127.0.0.1:0");
      assert.match(info.monitor.udpPush ?? "", /^udp:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(info.monitor.udpPush, "udp://127.0.0.1:0");
      assert.equal((await fetch(`${info.monitor.http}/healthz`)).status, 200);

      proxy = new Proxy({
        id: "p1",
        domains: [DOMAIN],
        listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
        allowedDestinations: LOOPBACK,
        auth: { enabled: false },
        http: { address: "127.0.0.1", port: 0 },
        report: { intervalMs: 100, push: [`${info.monitor.http}/v1/reports`], key: KEY },
      });
      await proxy.start();
      const answer = await eventually(
        async () => {
          const res = await fetch(`${info.monitor.http}/v1/select?transport=udp`);
          if (res.status !== 200) {
            await res.body?.cancel();
            return undefined;
          }
          return (await res.json()) as { proxy: string; uri: string };
        },
        5000,
        "p1 selectable",
      );
      assert.equal(answer.proxy, "p1");
      assert.match(answer.uri, /^sip:127\.0\.0\.1:\d+/);

      const httpPort = Number(new URL(info.monitor.http).port);
      const udpPort = Number(new URL(info.monitor.udpPush!).port);
      const sentAt = Date.now();
      run.child.kill("SIGTERM");
      const exited = await within(run.exit, 5000);
      assert.ok(exited !== undefined, `exited within 5 s of SIGTERM: ${run.stderr}`);
      assert.deepEqual(exited, { code: 0, signal: null }, run.stderr);
      assert.ok(Date.now() - sentAt < 5000);
      assert.equal(await tcpPortFree(httpPort), true, "the HTTP port is free");
      assert.equal(await udpPortFree(udpPort), true, "the UDP push port is free");
    } finally {
      await proxy?.stop();
      reap(run);
      await run.exit;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a bad config file: exit code 2, stderr naming the field", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-monitor-cli-"));
    const cases: [string, string[], string][] = [
      [
        "short key secret",
        ["http: { address: 127.0.0.1, port: 0 }", "keys:", "  - { id: k1, secret: short }"],
        "monitor.keys.0.secret",
      ],
      ["http port x", ["http: { address: 127.0.0.1, port: x }"], "monitor.http.port"],
      [
        "bad allowed destination",
        ["http: { address: 127.0.0.1, port: 0 }", "allowedDestinations: ['127.0.0.0/40']"],
        "monitor.allowedDestinations.0",
      ],
      ["missing file", [], "--config"],
    ];
    const runs = cases.map(([name, lines, field]) => {
      const file = join(dir, `${name.replace(/\W+/g, "-")}.yaml`);
      if (lines.length > 0) writeFileSync(file, `${lines.join("\n")}\n`);
      return { name, field, run: runCli(["monitor", "-c", file, "--json"]) };
    });
    try {
      for (const { name, field, run } of runs) {
        const exited = await within(run.exit, 10_000);
        assert.ok(exited !== undefined, `${name}: exits`);
        assert.equal(exited.code, 2, `${name}: exit code; stderr: ${run.stderr}`);
        assert.ok(run.stderr.includes(field), `${name}: stderr names ${field}: ${run.stderr}`);
        assert.equal(run.stdout, "", `${name}: no JSON line`);
      }
    } finally {
      for (const { run } of runs) reap(run);
      await Promise.all(runs.map(({ run }) => run.exit));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
