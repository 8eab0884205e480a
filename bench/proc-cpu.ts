import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux). */
const CLK_TCK = 100;

/** CPU seconds (user + system) of a process and all its descendants, from /proc. */
export function cpuSeconds(rootPid: number): number {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry), Number(fields[1]));
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // the process ended while we read
    }
  }
  let total = 0;
  for (const [pid, t] of ticks) {
    let p: number | undefined = pid;
    while (p !== undefined && p > 1 && p !== rootPid) p = parents.get(p);
    if (p === rootPid) total += t;
  }
  return total / CLK_TCK;
}

/**
 * CPU seconds of one process's live threads at nanosecond resolution (the scheduler's run time
 * in /proc/<pid>/task/<tid>/schedstat), for windows too short for utime's 10 ms ticks. Time of
 * threads that have ended is not in it: use it on a process whose threads live as long as it.
 */
export function threadCpuSeconds(pid: number): number {
  let ns = 0;
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN; // the process has ended
  }
  for (const tid of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended while we read
    }
  }
  return ns / 1e9;
}
