// The monitor's pages (issue 7): the dashboard at /dashboard/ and the browser phone at /phone/,
// as scripts/build-web.mjs bundled them into dist/web. The files are read once at start and
// served from memory by name; nothing else under the folder is reachable, so no path from a
// request ever touches the file system.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";

export const WEB_PAGES = ["dashboard", "phone"] as const;
export type WebPage = (typeof WEB_PAGES)[number];

/** dist/web, beside dist/src where this module is built. */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL("../../web/", import.meta.url));

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
};

interface PageFile {
  readonly body: Buffer;
  readonly type: string;
}

/** Reads every page's files; a page whose folder is missing (not built) is left out. */
export function loadWebPages(root: string = DEFAULT_WEB_ROOT): Map<WebPage, Map<string, PageFile>> {
  const pages = new Map<WebPage, Map<string, PageFile>>();
  for (const page of WEB_PAGES) {
    const dir = join(root, page);
    if (!existsSync(join(dir, "index.html"))) continue;
    const files = new Map<string, PageFile>();
    for (const name of readdirSync(dir)) {
      const type = CONTENT_TYPES[extname(name)];
      if (type !== undefined) files.set(name, { body: readFileSync(join(dir, name)), type });
    }
    pages.set(page, files);
  }
  return pages;
}

/** Routes GET /<page>/ and /<page>/<file> for each loaded page, and / to the dashboard. */
export function serveWebPages(
  app: FastifyInstance,
  pages: ReadonlyMap<WebPage, ReadonlyMap<string, PageFile>>,
): void {
  const send = (reply: FastifyReply, file: PageFile | undefined) => {
    if (file === undefined) return reply.code(404).send({ error: "no such file" });
    return reply
      .header("content-type", file.type)
      .header("cache-control", "no-cache")
      .send(file.body);
  };
  for (const [page, files] of pages) {
    app.get(`/${page}`, async (_request, reply) => reply.redirect(`/${page}/`));
    app.get(`/${page}/`, async (_request, reply) => send(reply, files.get("index.html")));
    app.get(`/${page}/:file`, async (request, reply) =>
      send(reply, files.get((request.params as { file: string }).file)),
    );
  }
  if (pages.has("dashboard")) {
    app.get("/", async (_request, reply) => reply.redirect("/dashboard/"));
  }
}
