import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join, resolve } from "node:path";

/**
 * The absolute path of `name` as a shell would run it: a name with a slash is a path (taken
 * from the current folder when relative), any other is looked up in `PATH`. Undefined when no
 * executable file is there.
 */
export function findExecutable(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const candidates = name.includes("/")
    ? [resolve(name)]
    : (env.PATH ?? "")
        .split(delimiter)
        .filter((dir) => dir !== "")
        .map((dir) => resolve(join(dir, name)));
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // Not there, or not executable: the next one.
    }
  }
  return undefined;
}
