// The sipsteer command as a child process: run it, read its first stdout line, bound a wait
// on it, and always reap it.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The CLI of the same build as these tests (dist/ in the project, or any other build folder). */
export const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

export interface CliRun {
  readonly child: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first stdout line; rejects when the process exits before writing one. */
  readonly firstLine: Promise<string>;
  stdout: string;
  stderr: string;
}

/** Starts `sipsteer <args>` with stdout and stderr collected. */
export function runCli(args: string[]): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let gotLine: (line: string) => void = () => undefined;
  let noLine: (e: Error) => void = () => undefined;
  const run: CliRun = {
    child,
    exit: new Promise((r) => child.once("exit", (code, signal) => r({ code, signal }))),
    firstLine: new Promise<string>((resolve, reject) => {
      gotLine = resolve;
      noLine = reject;
    }),
    stdout: "",
    stderr: "",
  };
  run.firstLine.catch(() => undefined);
  child.stdout!.setEncoding("utf8").on("data", (c: string) => {
    run.stdout += c;
    const nl = run.stdout.indexOf("\n");
    if (nl >= 0) gotLine(run.stdout.slice(0, nl));
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (run.stderr += c));
  void run.exit.then(({ code }) => noLine(new Error(`exited ${code}: ${run.stderr}`)));
  return run;
}

/** Kills the process if it still runs (tests call this in `finally`). */
export function reap(run: CliRun): void {
  if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
}

/** `promise`, or undefined when it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms))),
  ]).finally(() => clearTimeout(timer));
}
