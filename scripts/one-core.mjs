// Runs a benchmark pinned to one CPU core (taskset, from util-linux) when that is available,
// so that "per core" figures do not borrow the other core for GC threads. Without taskset it
// runs unpinned and says so.
import { spawnSync } from "node:child_process";

const [script, ...args] = process.argv.slice(2);
const probe = spawnSync("taskset", ["--version"], { stdio: "ignore" });
const pinned = probe.status === 0;
const command = pinned ? "taskset" : process.execPath;
const commandArgs = pinned ? ["-c", "0", process.execPath, script, ...args] : [script, ...args];
if (!pinned) console.log("(taskset not found: running on all cores)");
const result = spawnSync(command, commandArgs, { stdio: "inherit" });
process.exit(result.status ?? 1);
