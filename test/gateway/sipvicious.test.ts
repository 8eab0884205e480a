// The real sipvicious (Debian `sipvicious` 0.3.3) against a UDP socket on 127.0.0.1 that puts
// each datagram through the codec and the gateway's access rules (issue 9): svmap, svwar and
// svcrack are classified as scanners and dropped, so they get no answer at all.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { describe, it } from "node:test";
import { AccessControl, type Verdict } from "../../src/gateway/index.js";
import { parseDatagram } from "../../src/sip/index.js";
import { FakeClock } from "../helpers/fake-clock.js";
import { runSipvicious, type SipviciousTool } from "../helpers/sipvicious.js";
import { requireTool } from "../helpers/tools.js";

interface Seen {
  method: string;
  userAgent: string | undefined;
  from: string | undefined;
  verdict: Verdict;
}

async function listen(ac: AccessControl, seen: Seen[], onRequest: () => void): Promise<Socket> {
  const socket = createSocket("udp4");
  socket.on("message", (bytes, rinfo) => {
    const message = parseDatagram(bytes);
    if (message === null || message.type !== "request") return;
    seen.push({
      method: message.method,
      userAgent: message.getHeader("User-Agent"),
      from: message.getHeader("From"),
      verdict: ac.check(message, { address: rinfo.address, port: rinfo.port }),
    });
    onRequest();
  });
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  return socket;
}

describe("gateway access control - sipvicious", () => {
  it("classifies what svmap, svwar and svcrack send as scanner, and drops it", async (t) => {
    if (!requireTool(t, "svmap", "sipvicious")) return;
    const ac = new AccessControl({ clock: new FakeClock() });
    // Unanswered, each sends one request and gives up: svmap and svwar after 3 s; svcrack
    // would wait 10 s (a fixed socket timeout) for its 401, so it is stopped once it has sent.
    const runs: [SipviciousTool, string[]][] = [
      ["svmap", []],
      ["svmap", ["-m", "INVITE"]],
      ["svwar", ["-e", "100-101"]],
      ["svcrack", ["-u", "100", "-r", "1-2"]],
    ];
    const seen = runs.map(() => [] as Seen[]);
    const children: ReturnType<typeof runSipvicious>[] = [];
    const sockets = await Promise.all(
      seen.map((s, i) => listen(ac, s, () => runs[i]![0] === "svcrack" && children[i]?.kill())),
    );
    for (const [i, [tool, args]] of runs.entries()) {
      children.push(runSipvicious(tool, sockets[i]!.address().port, args));
    }
    t.after(() => {
      for (const c of children) c.kill();
      for (const s of sockets) s.close();
      ac.dispose();
    });
    const results = await Promise.all(children.map((c) => c.result));
    for (const [i, [tool, args]] of runs.entries()) {
      const what = `${tool} ${args.join(" ")}`;
      assert.ok(seen[i]!.length > 0, `${what} sent nothing: ${results[i]!.output}`);
      for (const s of seen[i]!) {
        assert.equal(s.userAgent, "friendly-scanner", what);
        assert.deepEqual(s.verdict, { admit: false, action: "drop", reason: "scanner" }, what);
      }
    }
    assert.deepEqual(
      seen.map((s) => s[0]!.method),
      ["OPTIONS", "INVITE", "REGISTER", "REGISTER"],
    );
    // svmap names itself in From; svwar and svcrack put the extension there.
    assert.match(seen[0]![0]!.from!, /^"sipvicious"<sip:100@1\.1\.1\.1>;tag=/);
    assert.match(seen[3]![0]!.from!, /^"100" <sip:100@127\.0\.0\.1>;tag=/);
    const total = seen.reduce((n, s) => n + s.length, 0);
    const stats = ac.stats();
    assert.equal(stats.refused.scanner, total);
    assert.equal(stats.admitted, 0);
  });
});
