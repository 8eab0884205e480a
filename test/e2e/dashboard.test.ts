// The dashboard in a real browser: Debian's Chromium opens the monitor's /dashboard/ over a
// fleet of three sipsteer proxies pushing reports; the table lists all three; SIPp holds calls
// on p1 and its row and its chart series rise; the Drain button (with the admin token) drains
// p2 and the table and the state-change log say so; Undrain brings it back. A screenshot is
// saved for the README.
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { Monitor } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import { launchChromium, requireChromium } from "../helpers/browser.js";
import { holdCalls, registerContact, startCallee } from "../helpers/held-calls.js";
import { PROJECT_ROOT as root } from "../helpers/paths.js";
import { freePort, type SippRun } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import { eventually } from "../helpers/eventually.js";

const LOOPBACK = ["127.0.0.0/8", "::1/128"];
const KEY = { id: "k1", secret: "a-shared-report-secret" };
const ADMIN_TOKEN = "dashboard-test-admin-token";
const CAPACITY = 10;
const CALLS = 4;
const SCREENSHOT = join(root, "docs", "screenshots", "dashboard.png");

// What the page functions below use of the browser (the tests compile without the DOM lib).
interface PageElement {
  readonly textContent: string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { readonly length: number };
};
declare const window: {
  sipsteerChart?: { data: (number | null)[][]; series: { label?: string }[] };
};

/** The text of a proxy's cell, as the page shows it. */
async function cellOf(page: Page, proxy: string, column: string): Promise<string> {
  return (await page.textContent(`tr[data-proxy="${proxy}"] td.${column}`)) ?? "";
}

/** The newest value the chart holds for a proxy (uPlot's data, by series label). */
async function chartValue(page: Page, proxy: string): Promise<number | null> {
  return page.evaluate((id) => {
    const chart = window.sipsteerChart;
    if (chart === undefined) return null;
    const i = chart.series.findIndex((s) => s.label === id);
    const values = i < 0 ? undefined : chart.data[i];
    return values === undefined ? null : (values[values.length - 1] ?? null);
  }, proxy);
}

describe("the dashboard in Chromium", () => {
  let monitor: Monitor | undefined;
  const proxies: Proxy[] = [];
  let browser: Browser | undefined;
  const runs: SippRun[] = [];

  before(async () => {
    monitor = new Monitor({
      http: { address: "127.0.0.1", port: 0 },
      keys: [KEY],
      adminToken: ADMIN_TOKEN,
      allowedDestinations: LOOPBACK,
      workload: { terms: [{ metric: "calls", per: CAPACITY }] },
    });
    await monitor.start();
    for (let i = 1; i <= 3; i++) {
      const address = `127.0.0.1${i}`;
      const port = await freePort();
      const proxy = new Proxy({
        id: `p${i}`,
        domains: ["sipsteer.test"],
        listen: [{ protocol: "udp", address, port }],
        allowedDestinations: LOOPBACK,
        auth: { enabled: false },
        http: { address: "127.0.0.1", port: 0 },
        report: { intervalMs: 200, push: [`${monitor.httpUrl}/v1/reports`], key: KEY },
      });
      proxies.push(proxy);
      await proxy.start();
    }
    await eventually(
      () => (monitor!.table.eligible().length === 3 ? true : undefined),
      10_000,
      "three eligible proxies",
    );
  });

  after(async () => {
    for (const run of runs) run.kill();
    await browser?.close();
    for (const proxy of proxies) await proxy.stop();
    await monitor?.stop();
  });

  test("lists the proxies, follows load and drain live, and drains with the token", async (t) => {
    if (!requireChromium(t) || !requireTool(t, "sipp", "sip-tester")) return;
    assert.ok(monitor?.dashboardUrl !== undefined, "the monitor serves the dashboard");
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(monitor.dashboardUrl);
    await page.waitForSelector("#connection.live");
    await page.waitForFunction(() => document.querySelectorAll("#proxies tbody tr").length === 3);
    for (const id of ["p1", "p2", "p3"]) {
      assert.equal(await cellOf(page, id, "state"), "eligible");
      assert.equal(await cellOf(page, id, "calls"), "0");
    }

    // Calls held on p1: its row and its chart series rise without a reload.
    const p1 = proxies[0]!;
    const p1Address = `${p1.listeners[0]!.address}:${p1.listeners[0]!.port}`;
    const callee = await startCallee(CALLS);
    runs.push(callee);
    await registerContact(p1Address, "bob", callee.port);
    const caller = await holdCalls({ remote: p1Address, user: "bob", calls: CALLS, holdMs: 6000 });
    runs.push(caller);
    await page.waitForFunction(
      (calls) =>
        document.querySelector('tr[data-proxy="p1"] td.calls')?.textContent === String(calls),
      CALLS,
      { timeout: 15_000 },
    );
    assert.equal(await cellOf(page, "p1", "workload"), (CALLS / CAPACITY).toFixed(3));
    assert.equal(await cellOf(page, "p2", "calls"), "0");
    await eventually(
      async () => ((await chartValue(page, "p1")) === CALLS / CAPACITY ? true : undefined),
      5_000,
      "the chart to show p1's workload",
    );
    assert.equal(await chartValue(page, "p2"), 0);

    // Drain p2 from the page: without the token it is refused, with it the row and log change.
    await page.click('tr[data-proxy="p2"] button');
    await page.waitForSelector("#admin-error:not([hidden])");
    assert.match((await page.textContent("#admin-error")) ?? "", /401/);
    await page.fill("#token", ADMIN_TOKEN);
    await page.click('tr[data-proxy="p2"] button');
    await page.waitForFunction(
      () => document.querySelector('tr[data-proxy="p2"] td.state')?.textContent === "draining",
    );
    await page.waitForFunction(() =>
      [...document.querySelectorAll("#log li")].some((li) =>
        /p2\s+draining/.test(li.textContent ?? ""),
      ),
    );
    assert.equal(await page.textContent('tr[data-proxy="p2"] button'), "Undrain");
    assert.equal(monitor.table.view("p2")?.draining, true);
    mkdirSync(join(root, "docs", "screenshots"), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.click('tr[data-proxy="p2"] button');
    await page.waitForFunction(
      () => document.querySelector('tr[data-proxy="p2"] td.state')?.textContent === "eligible",
    );
    await page.waitForFunction(() =>
      [...document.querySelectorAll("#log li")].some((li) =>
        /p2\s+undrained/.test(li.textContent ?? ""),
      ),
    );

    // The calls end: p1 goes back to 0 on the page.
    const result = await caller.result;
    assert.equal(result.failed, 0, result.output);
    await page.waitForFunction(
      () => document.querySelector('tr[data-proxy="p1"] td.calls')?.textContent === "0",
      undefined,
      { timeout: 15_000 },
    );
    assert.deepEqual(errors, []);
  });
});
