// `sipsteer gateway` as an operator runs it: serving with --json, the HTTP side up, SIGTERM
// ends it; a bad config stops start-up naming the field.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { parseGatewayConfig } from "../../src/gateway/index.js";
import { reap, runCli, within } from "../helpers/cli.js";

const work = mkdtempSync(join(tmpdir(), "sipsteer-gw-cli-"));
after(() => rmSync(work, { recursive: true, force: true }));

function configFile(name: string, config: unknown): string {
  const file = join(work, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const GOOD = {
  id: "gw",
  domains: ["sipsteer.test"],
  listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
  allowedDestinations: ["127.0.0.0/8"],
  auth: { enabled: false },
  http: { address: "127.0.0.1", port: 0 },
  upstream: { monitors: ["http://127.0.0.1:9"], fallback: ["sip:127.0.0.1:5999"] },
};

describe("sipsteer gateway", () => {
  test("serves: one JSON line with its SIP listeners and HTTP URL, /healthz and /status answer, SIGTERM exits 0", async () => {
    const run = runCli(["gateway", "-c", configFile("good.json", GOOD), "--json"]);
    try {
      const line = await within(run.firstLine, 15_000);
      assert.ok(line !== undefined, run.stderr);
      const info = JSON.parse(line) as { gateway: string; sip: { port: number }[]; http: string };
      assert.equal(info.gateway, "gw");
      assert.ok(info.sip[0]!.port > 0);
      assert.equal((await fetch(`${info.http}/healthz`)).status, 200);
      const status = (await (await fetch(`${info.http}/status`)).json()) as { id: string };
      assert.equal(status.id, "gw");
      run.child.kill("SIGTERM");
      const exit = await within(run.exit, 10_000);
      assert.deepEqual(exit, { code: 0, signal: null }, run.stderr);
    } finally {
      reap(run);
    }
  });

  test("a bad config stops start-up with exit 2, naming the field", async () => {
    const bad = { ...GOOD, access: { rate: { burst: -1 } } };
    const run = runCli(["gateway", "-c", configFile("bad.json", bad)]);
    try {
      const exit = await within(run.exit, 10_000);
      assert.equal(exit?.code, 2);
      assert.match(run.stderr, /gateway\.access\.rate\.burst/);
    } finally {
      reap(run);
    }
  });

  test("parseGatewayConfig names the field of each kind of mistake", () => {
    assert.throws(() => parseGatewayConfig({ ...GOOD, id: "" }), /^RangeError: gateway\.id:/);
    assert.throws(
      () => parseGatewayConfig({ ...GOOD, upstream: { monitors: [] } }),
      /gateway\.upstream\.monitors/,
    );
    assert.throws(
      () => parseGatewayConfig({ ...GOOD, access: { deny: ["not-a-cidr"] } }),
      /gateway\.access\.deny\.0/,
    );
    assert.throws(() => parseGatewayConfig({ ...GOOD, store: {} }), /gateway: .*store/);
    assert.throws(
      () => parseGatewayConfig({ ...GOOD, attemptTimeoutMs: 0 }),
      /gateway\.attemptTimeoutMs/,
    );
    const parsed = parseGatewayConfig(GOOD);
    assert.equal(parsed.attemptTimeoutMs, 1_000);
    assert.equal(parsed.sip.id, "gw");
  });
});
