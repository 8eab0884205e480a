/** Resource kinds that a role leaving something open would show (sockets, servers, timers). */
const WATCHED = new Set([
  "TCPServerWrap",
  "TCPSocketWrap",
  "TCPWrap",
  "UDPWrap",
  "TLSWrap",
  "Timeout",
  "HTTPINCOMINGMESSAGE",
]);

/** Counts of the watched resources, after letting pending closes finish. */
export async function openHandles(): Promise<Record<string, number>> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
  const counts: Record<string, number> = {};
  for (const kind of process.getActiveResourcesInfo()) {
    if (WATCHED.has(kind)) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  // The setTimeout above has fired; any Timeout left is someone else's.
  return counts;
}
