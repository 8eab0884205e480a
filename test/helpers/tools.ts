import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

/**
 * True when `command` is on PATH. Otherwise the test is skipped with a message naming the
 * Debian package, and under CI=true it fails instead (a skip must not pass CI).
 */
export function requireTool(t: TestContext, command: string, debianPackage: string): boolean {
  const found = spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
  if (found) return true;
  const message = `${command} is missing: apt-get install ${debianPackage}`;
  if (process.env.CI === "true") throw new Error(message);
  t.skip(message);
  return false;
}
