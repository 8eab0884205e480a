// The sipsteer command as a user runs it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { PROJECT_ROOT, fixturePath } from "../helpers/paths.js";

const run = promisify(execFile);
const CLI = join(PROJECT_ROOT, "dist", "src", "cli", "main.js");

async function sipsteer(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [CLI, ...args], { timeout: 30_000 });
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code?: number; stdout?: string };
    return { code: err.code ?? -1, stdout: err.stdout ?? "" };
  }
}

describe("sipsteer", () => {
  test("without a command, prints the help and what is built", async () => {
    const { code, stdout } = await sipsteer();
    assert.equal(code, 0);
    assert.match(stdout, /Usage: sipsteer/);
    assert.match(stdout, /What is built so far:/);
    assert.match(stdout, /SIP message codec/);
  });

  test("--version prints the package version", async () => {
    const { stdout } = await sipsteer("--version");
    assert.match(stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  test("parse accepts a valid message and exits 0", async () => {
    const { code, stdout } = await sipsteer("parse", fixturePath("rfc4475", "wsinv.dat"));
    assert.equal(code, 0);
    assert.match(stdout, /accepted/);
    assert.match(stdout, /method: INVITE/);
    assert.match(stdout, /vias: 3/);
  });

  test("parse reports a refused message with its answer and exits 1", async () => {
    const { code, stdout } = await sipsteer(
      "parse",
      "--json",
      fixturePath("rfc4475", "badvers.dat"),
    );
    assert.equal(code, 1);
    const verdict = JSON.parse(stdout.trim()) as {
      ok: boolean;
      summary: { code: string; answer: string };
    };
    assert.equal(verdict.ok, false);
    assert.equal(verdict.summary.code, "SIP_ERR_VERSION");
    assert.match(verdict.summary.answer, /^505 /);
  });

  test("parse --stream frames several messages by Content-Length", async () => {
    const { code, stdout } = await sipsteer(
      "parse",
      "--stream",
      "--json",
      fixturePath("rfc4475", "wsinv.dat"),
    );
    assert.equal(code, 0);
    assert.equal(stdout.trim().split("\n").length, 1);
  });
});
