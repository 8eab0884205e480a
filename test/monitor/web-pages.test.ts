// The monitor's page serving: the built pages by name, / to the dashboard, 404 for anything
// else (no path from a request reaches the file system), and a page not built left out.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import Fastify from "fastify";
import { loadWebPages, serveWebPages } from "../../src/monitor/web-pages.js";

describe("web pages", () => {
  test("serves the built pages by name and nothing else", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sipsteer-web-"));
    const app = Fastify();
    try {
      mkdirSync(join(dir, "dashboard"));
      writeFileSync(join(dir, "dashboard", "index.html"), "<title>d</title>");
      writeFileSync(join(dir, "dashboard", "app.js"), "export {};");
      writeFileSync(join(dir, "dashboard", "notes.bin"), "x");
      writeFileSync(join(dir, "secret.txt"), "no");
      const pages = loadWebPages(dir);
      assert.deepEqual([...pages.keys()], ["dashboard"], "the phone was not built: left out");
      serveWebPages(app, pages);

      const index = await app.inject("/dashboard/");
      assert.equal(index.statusCode, 200);
      assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
      assert.equal(index.body, "<title>d</title>");
      const script = await app.inject("/dashboard/app.js");
      assert.equal(script.headers["content-type"], "text/javascript; charset=utf-8");
      assert.equal((await app.inject("/")).headers.location, "/dashboard/");
      assert.equal((await app.inject("/dashboard")).headers.location, "/dashboard/");
      for (const url of [
        "/dashboard/notes.bin",
        "/dashboard/..%2Fsecret.txt",
        "/dashboard/../secret.txt",
        "/phone/",
        "/dashboard/nothing.js",
      ]) {
        assert.equal((await app.inject(url)).statusCode, 404, url);
      }
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
