import { spawn, type ChildProcess } from "node:child_process";
import { freePort, waitForBound } from "./sipp.js";

/** A throw-away Redis server on loopback (Debian redis-server), reaped by stop(). */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  const child = spawn(
    "redis-server",
    [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "yes",
    ],
    { stdio: "ignore" },
  );
  try {
    await waitForBound(port, "tcp");
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
