import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The project root (where package.json is), found from the built test's location. */
export const PROJECT_ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("package.json not found above the tests");
    dir = up;
  }
  return dir;
})();

/** A file under test/fixtures/. */
export function fixturePath(...parts: string[]): string {
  return join(PROJECT_ROOT, "test", "fixtures", ...parts);
}
