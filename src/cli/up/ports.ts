import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { portName, type PlannedPort } from "./plan.js";

/**
 * Binds `address:port` on `protocol` and lets go again: undefined when that worked, else the
 * error code (EADDRINUSE: taken; EADDRNOTAVAIL: no such address on this host; EACCES).
 */
export function tryBind(
  address: string,
  port: number,
  protocol: "udp" | "tcp",
): Promise<{ port: number; error?: undefined } | { port?: undefined; error: string }> {
  return new Promise((resolve) => {
    if (protocol === "udp") {
      const socket = createSocket({ type: address.includes(":") ? "udp6" : "udp4" });
      socket.once("error", (e: NodeJS.ErrnoException) => {
        socket.close();
        resolve({ error: e.code ?? e.message });
      });
      socket.bind({ address, port, exclusive: true }, () => {
        const bound = socket.address().port;
        socket.close(() => resolve({ port: bound }));
      });
      return;
    }
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    server.listen({ host: address, port, exclusive: true }, () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve({ port: bound }));
    });
  });
}

/** Why a port cannot be had, in words. */
function reason(code: string): string {
  if (code === "EADDRINUSE") return "is taken";
  if (code === "EADDRNOTAVAIL") return "cannot be bound: the address is not on this host";
  if (code === "EACCES") return "cannot be bound: permission denied";
  return `cannot be bound: ${code}`;
}

/**
 * The first planned socket that cannot be bound now, as a message naming it (`127.0.0.12:5060/udp
 * is taken (p2 SIP; --proxy-sip-port moves it)`), or undefined when all are free. Ports of 0
 * are left to the children.
 */
export async function firstUnavailablePort(
  ports: readonly PlannedPort[],
): Promise<string | undefined> {
  for (const p of ports) {
    if (p.port === 0) continue;
    const outcome = await tryBind(p.address, p.port, p.protocol);
    if (outcome.error !== undefined) {
      return `${portName(p)} ${reason(outcome.error)} (${p.role}; ${p.option} moves it)`;
    }
  }
  return undefined;
}

/** A port free for both UDP and TCP on every one of `addresses` (checked, then released). */
export async function freePortOnAll(addresses: readonly string[]): Promise<number> {
  const [first, ...rest] = addresses;
  if (first === undefined) throw new Error("freePortOnAll: no address");
  for (let attempt = 0; attempt < 200; attempt++) {
    const picked = await tryBind(first, 0, "tcp");
    if (picked.port === undefined) {
      throw new RangeError(`${first}: cannot be bound: ${picked.error}`);
    }
    const checks = [
      tryBind(first, picked.port, "udp"),
      ...rest.flatMap((a) => [tryBind(a, picked.port, "udp"), tryBind(a, picked.port, "tcp")]),
    ];
    if ((await Promise.all(checks)).every((c) => c.error === undefined)) return picked.port;
  }
  throw new Error(`no port free on ${addresses.join(", ")} after 200 tries`);
}
