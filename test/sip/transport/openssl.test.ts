// TLS and WSS against a client that is not ours: openssl s_client (SIPp in Debian has no TLS).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { SmallUas } from "../../helpers/small-uas.js";
import { rawRequest } from "../../helpers/sip-messages.js";
import { makeTestCertificate, type TestCertificate } from "../../helpers/tls-cert.js";
import { requireTool } from "../../helpers/tools.js";

let cert: TestCertificate;
before(() => {
  cert = makeTestCertificate();
});
after(() => cert.dispose());

/** Runs s_client, writes `input`, and collects output until `until` shows (or 10 s pass). */
async function sClient(port: number, input: string, until: RegExp): Promise<string> {
  const child = spawn(
    "openssl",
    [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      "-CAfile",
      cert.certFile,
      "-verify_return_error",
      "-ign_eof",
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let output = "";
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${String(until)} in:\n${output}`)),
        10_000,
      );
      const collect = (chunk: Buffer) => {
        output += chunk.toString("latin1");
        if (until.test(output)) {
          clearTimeout(timer);
          resolve(output);
        }
      };
      child.stdout.on("data", collect);
      child.stderr.on("data", collect);
      child.once("exit", () => {
        clearTimeout(timer);
        if (until.test(output)) resolve(output);
        else reject(new Error(`s_client exited:\n${output}`));
      });
      child.stdin.write(input);
    });
  } finally {
    child.kill("SIGKILL");
  }
}

describe("openssl s_client as the peer", () => {
  test("an OPTIONS over TLS gets 200 OK, and the certificate verifies", async (t) => {
    if (!requireTool(t, "openssl", "openssl")) return;
    const uas = new SmallUas({
      listen: [
        {
          protocol: "tls",
          address: "127.0.0.1",
          port: 0,
          tls: { certFile: cert.certFile, keyFile: cert.keyFile },
        },
      ],
    });
    await uas.start();
    try {
      const output = await sClient(
        uas.port("tls"),
        rawRequest("SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKssl1"),
        /SIP\/2\.0 200 OK\r\n[\s\S]*Content-Length: 0\r\n\r\n/,
      );
      assert.match(output, /Verify return code: 0 \(ok\)/);
      // sent-by is the source address and there is no rport: no received (RFC 3261 §18.2.1).
      assert.match(output, /Via: SIP\/2\.0\/TLS 127\.0\.0\.1:5061;branch=z9hG4bKssl1\r\n/);
      assert.equal(uas.answered.get("OPTIONS"), 1);
    } finally {
      await uas.stop();
    }
  });

  test("a WSS handshake offering the sip subprotocol is accepted (RFC 7118)", async (t) => {
    if (!requireTool(t, "openssl", "openssl")) return;
    const uas = new SmallUas({
      listen: [
        {
          protocol: "wss",
          address: "127.0.0.1",
          port: 0,
          tls: { certFile: cert.certFile, keyFile: cert.keyFile },
        },
      ],
    });
    await uas.start();
    try {
      const upgrade = [
        "GET / HTTP/1.1",
        `Host: 127.0.0.1:${uas.port("wss")}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: sip",
        "",
        "",
      ].join("\r\n");
      const output = await sClient(uas.port("wss"), upgrade, /Sec-WebSocket-Protocol: sip\r\n/);
      assert.match(output, /HTTP\/1\.1 101 Switching Protocols/);
      assert.match(output, /Verify return code: 0 \(ok\)/);
    } finally {
      await uas.stop();
    }
  });
});
