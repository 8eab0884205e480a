// Runs every built test file with node:test and proves that each one ran.
//
// Node 20's runner takes no globs and no .ts files, and passes with 0 tests on a folder
// without .js tests; so this lists test/**/*.test.ts, runs their compiled twins under dist/,
// and fails when a source test has no build, a file ran no test, or anything was skipped
// under CI=true (a missing tool must not pass silently there).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const only = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== "fixtures") out.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const sources = findTests(join(root, "test"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
const built = sources.map((f) =>
  join(root, "dist", relative(root, f)).replace(/\.test\.ts$/, ".test.js"),
);
const missing = built.filter((f) => !existsSync(f));
if (sources.length === 0 || missing.length > 0) {
  console.error(`run-tests: ${sources.length} test sources; not built: ${missing.join(", ")}`);
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), "sipsteer-tests-"));
const countsFile = join(work, "counts.json");
const args = [
  "--test",
  "--test-reporter=spec",
  "--test-reporter-destination=stdout",
  `--test-reporter=${join(root, "scripts", "test-count-reporter.mjs")}`,
  `--test-reporter-destination=${countsFile}`,
  ...built,
];
const child = spawn(process.execPath, args, { cwd: root, stdio: "inherit" });
const code = await new Promise((done) => child.on("exit", (c, signal) => done(c ?? signal)));

let counts = { files: {} };
try {
  counts = JSON.parse(readFileSync(countsFile, "utf8"));
} catch {
  console.error("run-tests: the counting reporter wrote nothing");
}
rmSync(work, { recursive: true, force: true });

const problems = [];
let total = 0;
let passed = 0;
let skipped = 0;
for (const file of built) {
  const c = counts.files[file];
  if (c === undefined || c.tests === 0) {
    problems.push(`${relative(root, file)} ran no test`);
    continue;
  }
  total += c.tests;
  passed += c.passed;
  skipped += c.skipped + c.todo;
}
if (process.env.CI === "true" && skipped > 0) {
  problems.push(`${skipped} test(s) skipped under CI=true; install what they name`);
}
console.log(
  `\nrun-tests: ${built.length} files, ${total} tests, ${passed} passed, ${skipped} skipped, exit ${code}`,
);
for (const p of problems) console.error(`run-tests: ${p}`);
process.exit(code === 0 && problems.length === 0 ? 0 : 1);
