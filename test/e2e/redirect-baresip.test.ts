// A stock phone follows the monitor's SIP redirect (DESIGN.md "Client query", issue 5): baresip
// dials bob at the monitor's SIP address, gets the 302 with the ranked proxies as Contacts,
// and sends its INVITE to the first one, which routes it to bob's binding; the call is set up
// through the proxy the monitor ranked first.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Monitor } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import { eventually } from "../helpers/eventually.js";
import { DOMAIN, LOOPBACK, SipPhone } from "../helpers/sip-caller.js";
import { requireTool } from "../helpers/tools.js";

const KEY = { id: "k1", secret: "a-shared-report-secret" };

describe("baresip follows the monitor's 302", () => {
  test("an INVITE to the monitor's SIP address is set up through the proxy it ranks first", async (t) => {
    if (!requireTool(t, "baresip", "baresip-core")) return;
    const monitor = new Monitor({
      http: { address: "127.0.0.1", port: 0 },
      keys: [KEY],
      allowedDestinations: LOOPBACK,
      sip: { listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
    });
    const proxies: Proxy[] = [];
    const phones: SipPhone[] = [];
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-baresip-302-"));
    let child: ReturnType<typeof spawn> | undefined;
    try {
      await monitor.start();
      for (const id of ["p1", "p2"]) {
        const proxy = new Proxy({
          id,
          domains: [DOMAIN],
          listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
          allowedDestinations: LOOPBACK,
          auth: { enabled: false },
          http: { address: "127.0.0.1", port: 0 },
          report: { intervalMs: 100, push: [`${monitor.httpUrl}/v1/reports`], key: KEY },
        });
        proxies.push(proxy);
        await proxy.start();
        // bob is registered at each proxy (their stores are their own here).
        const bob = await SipPhone.start({ user: "bob" });
        phones.push(bob);
        const { address, port } = proxy.listeners[0]!;
        const registered = await bob.register({ protocol: "udp", address, port }, {});
        assert.equal(registered.status, 200);
      }
      await eventually(
        () => (monitor.table.eligible().length === 2 ? true : undefined),
        5000,
        "both proxies eligible",
      );

      writeFileSync(
        join(dir, "config"),
        [
          "poll_method epoll",
          "sip_listen 127.0.0.1:0",
          "module_path /usr/lib/baresip/modules",
          "module g711.so",
          "module ausine.so",
          "module_app account.so",
          "module_app menu.so",
          "audio_player ausine,nil",
          "audio_source ausine,nil",
          "audio_alert ausine,nil",
          "",
        ].join("\n"),
      );
      // No registration: this phone only places the call.
      writeFileSync(join(dir, "accounts"), "<sip:alice@127.0.0.1>;regint=0\n");
      const redirect = monitor.sipListeners[0]!;
      const dial = `/dial sip:bob@127.0.0.1:${redirect.port}`;
      child = spawn("baresip", ["-f", dir, "-e", dial, "-t", "30"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout!.setEncoding("utf8").on("data", (c: string) => (output += c));
      child.stderr!.setEncoding("utf8").on("data", (c: string) => (output += c));

      await eventually(
        () => (/Call established/.test(output) ? true : undefined),
        15_000,
        "baresip's call established",
      ).catch((e: unknown) => {
        throw new Error(`${String(e)}\nbaresip said:\n${output}`);
      });
      // The proxy the redirect ranked first is the one its answer counted as a send.
      const chosen = [...monitor.selector.chosenCounts()];
      assert.equal(chosen.length, 1, `one proxy chosen: ${chosen}`);
      assert.equal(chosen[0]![1], 1, "the 302 was counted as one send");
      const first = chosen[0]![0];
      const firstIndex = first === "p1" ? 0 : 1;
      const invites = phones.map(
        (p) => p.requests.items.filter((i) => i.request.method === "INVITE").length,
      );
      assert.equal(invites[firstIndex], 1, `bob got the INVITE at ${first}: ${invites}`);
      assert.equal(invites[1 - firstIndex], 0, "and only there");
      assert.equal(proxies[firstIndex]!.report().calls, 1, `the call runs through ${first}`);
    } finally {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child!.once("exit", r));
        child.kill("SIGKILL");
        await exited;
      }
      for (const phone of phones) await phone.stop();
      for (const proxy of proxies) await proxy.stop();
      await monitor.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
