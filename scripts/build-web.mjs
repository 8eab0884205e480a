// Bundles the pages under web/ (the dashboard and the browser phone) with esbuild into
// dist/web/<page>/: index.html, app.js and the CSS they use. The monitor serves what is there.
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { build } from "esbuild";

const root = resolve(import.meta.dirname, "..");
const require = createRequire(import.meta.url);
const pages = ["dashboard", "phone"];
/** Files a page takes from its dependencies, copied beside its bundle. */
const extra = { dashboard: [[require.resolve("uplot/dist/uPlot.min.css"), "uplot.css"]] };

for (const page of pages) {
  const from = join(root, "web", page);
  const to = join(root, "dist", "web", page);
  mkdirSync(to, { recursive: true });
  await build({
    entryPoints: [join(from, "main.ts")],
    outfile: join(to, "app.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    sourcemap: true,
    minify: true,
    legalComments: "linked",
    logLevel: "warning",
  });
  for (const name of readdirSync(from)) {
    if (name.endsWith(".html") || name.endsWith(".css"))
      copyFileSync(join(from, name), join(to, name));
  }
  for (const [file, name] of extra[page] ?? []) {
    mkdirSync(dirname(join(to, name)), { recursive: true });
    copyFileSync(file, join(to, name));
  }
}
