/** What is built today, printed by `sipsteer` without a command (and by `npm start`). */
export const BUILD_STATUS: readonly (readonly [part: string, state: string])[] = [
  ["SIP message codec (src/sip/message)", "built: parse, stream framing, edits, serialize"],
  ["SIP transports and transactions", "built: UDP, TCP, TLS, WS, WSS; RFC 3261/6026 transactions"],
  [
    "proxy, registrar, location store",
    "built: sipsteer proxy (RFC 3261 §16, digest, SQLite/Redis)",
  ],
  [
    "load monitor (HTTP, DNS, SIP 302)",
    "built: sipsteer monitor (HTTP select, DNS, SIP 302, push/poll/stream/on-query)",
  ],
  [
    "client SDK and softphone",
    "built: sipsteer call / answer (discovery, register, G.711 audio, VP8 video)",
  ],
  [
    "dashboard and browser phone",
    "built: /dashboard/ and /phone/ on the monitor (tested in Chromium)",
  ],
  [
    "media relay (rtpengine)",
    "in progress: proxies engage it per call (auto/always/never), monitor balances relays, up runs one per proxy",
  ],
  ["gateway", "built: sipsteer gateway (access rules, auth, least-loaded proxy with retry)"],
  [
    "sipsteer up (monitor + 3 proxies)",
    "built: npm start runs it; processes on loopback, a relay per proxy, demo users, --json",
  ],
];

export function formatBuildStatus(): string {
  const width = Math.max(...BUILD_STATUS.map(([part]) => part.length));
  return BUILD_STATUS.map(([part, state]) => `  ${part.padEnd(width)}  ${state}`).join("\n");
}
