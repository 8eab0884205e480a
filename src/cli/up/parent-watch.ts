import { UP_CHILD_ENV } from "./role-process.js";

/**
 * In a role started by `sipsteer up`: when up goes away without stopping it (killed with
 * SIGKILL), the IPC channel closes, and the role stops as on SIGTERM instead of being left
 * listening with nobody to stop it. Does nothing in a process not started by up.
 */
export function stopWhenUpGoes(): void {
  const started = process.env[UP_CHILD_ENV] === "1";
  // Not for the processes the role starts in turn (a proxy's workers).
  delete process.env[UP_CHILD_ENV];
  if (!started || process.channel === undefined) return;
  process.once("disconnect", () => process.kill(process.pid, "SIGTERM"));
  // A 'disconnect' listener holds the event loop open; the role's own sockets are what should.
  process.channel.unref();
}
