// Keeps WebRTC on this machine: only loopback ICE candidates (127.0.0.0/8, ::1) are offered
// or taken (RFC 8839 §5.1 candidate lines), and the connection addresses that would name
// another interface are written as loopback too, so that no SDP of ours names a routable
// address.

const IPV4_LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

export function isLoopback(address: string): boolean {
  return IPV4_LOOPBACK.test(address) || address === "::1";
}

/** The connection address of an `a=candidate:` line (its fifth field), or undefined. */
export function candidateAddress(line: string): string | undefined {
  if (!line.startsWith("a=candidate:")) return undefined;
  return line.split(" ")[4];
}

/** An SDP with every non-loopback candidate removed and c=/a=rtcp addresses made loopback. */
export function loopbackOnly(sdp: string): string {
  const out: string[] = [];
  for (const line of sdp.split(/\r?\n/)) {
    const candidate = candidateAddress(line);
    if (candidate !== undefined) {
      if (isLoopback(candidate)) out.push(line);
      continue;
    }
    out.push(loopbackConnection(line));
  }
  return out.join("\r\n");
}

/** The loopback candidates of an SDP (what the page shows and the tests check). */
export function candidatesOf(sdp: string): string[] {
  return sdp
    .split(/\r?\n/)
    .map(candidateAddress)
    .filter((a): a is string => a !== undefined);
}

function loopbackConnection(line: string): string {
  const c = /^(c=IN |a=rtcp:\d+ IN )(IP4|IP6) (\S+)$/.exec(line);
  if (c === null || isLoopback(c[3]!)) return line;
  return `${c[1]}IP4 127.0.0.1`;
}
