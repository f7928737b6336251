#!/usr/bin/env node
// The browser half of `npm test`: Chromium (Debian's /usr/bin/chromium, headless, driven
// by playwright-core) against the page and bundle served on localhost.
//
//  1. Conformance: test/browser/conformance.html runs the shared cases
//     (test/conformance/suite.ts) on chromium/memory (page) and chromium/opfs (worker),
//     plus the openVolume() proxy checks; every image a case returns comes back gzipped
//     and is judged here by `e2fsck -fn` (and `debugfs cat` where the case names files).
//  2. The web page (test/browser/web-page.mjs): a folder set on the file input becomes a
//     downloaded image, checked with e2fsck and debugfs against the folder; an image is
//     opened, browsed and edited. Screenshots land in test/.artifacts/.
//
// Ends with a plain "N passed, N failed" line; exits non-zero on any failure, and when
// Chromium is missing (loudly: CI installs it, so a silent skip would hide the browser).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "./web.mjs";
import { runWebPageTests } from "../test/browser/web-page.mjs";
import { e2fsck, debugfs } from "../test/browser/oracle.mjs";
import { haveChromium, launchChromium, reportMissingChromium } from "./chromium.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, ".tmp", "browser-test");
const artifacts = join(root, "test", ".artifacts");
let passed = 0;
let failed = 0;

function report(name, ok, detail = "") {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "  ✓" : "  ✗"} ${name}${detail ? `\n      ${detail.split("\n").join("\n      ")}` : ""}`);
}

function finish() {
  console.log(`\nbrowser: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

if (!haveChromium()) {
  reportMissingChromium("THE BROWSER TESTS");
  failed++;
  finish();
}

// ---- build what the browser loads: the bundles (when stale) and the test bundles ----

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}
const bundle = join(root, "dist", "browser.js");
const sources = Math.max(newest(join(root, "bindings")), newest(join(root, "assembly")));
if (!existsSync(bundle) || statSync(bundle).mtimeMs < sources) {
  console.log("building the bundles (dist/browser.js is missing or older than the sources)…");
  execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), "--quiet"], { cwd: root, stdio: "inherit" });
}

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
mkdirSync(artifacts, { recursive: true });
const esbuild = await import("esbuild");
await esbuild.build({
  entryPoints: [join(root, "test/browser/conformance-page.ts"), join(root, "test/browser/conformance-worker.ts")],
  outdir: outDir,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  logLevel: "warning",
  nodePaths: process.env.NODE_PATH ? process.env.NODE_PATH.split(":") : [],
  // The tests must exercise the served bundle, not a second copy of the sources.
  plugins: [{
    name: "use-dist-bundle",
    setup(b) {
      b.onResolve({ filter: /bindings[\\/]browser\.ts$/ }, () => ({ path: "/dist/browser.js", external: true }));
    },
  }],
});

// ---- run ----

const { server, url } = await startServer({ port: 0 });
const browser = await launchChromium();
console.log(`chromium ${browser.version()} against ${url}`);

try {
  console.log("conformance (shared suite + openVolume):");
  const context = await browser.newContext();
  const page = await context.newPage();
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  let results = [];
  try {
    await page.goto(new URL("/test/browser/conformance.html", url).href);
    await page.waitForFunction(() => typeof window.runConformance === "function", null, { timeout: 30_000 });
    results = await page.evaluate(() => window.runConformance());
  } catch (e) {
    report("conformance page ran", false, `${e.message}\n${log.join("\n")}`);
  }
  const imgDir = join(outDir, "images");
  mkdirSync(imgDir, { recursive: true });
  for (const [i, r] of results.entries()) {
    const name = `${r.target}: ${r.name} [${Math.round(r.ms)} ms in the browser]`;
    if (!r.ok) {
      report(name, false, r.error);
      continue;
    }
    if (!r.image) {
      report(name, true);
      continue;
    }
    const img = join(imgDir, `${i}-${r.target.replace(/\W+/g, "_")}.img`);
    writeFileSync(img, gunzipSync(Buffer.from(r.image, "base64")));
    const fsck = e2fsck(img);
    const problems = fsck.code === 0 ? [] : [`e2fsck -fn exit ${fsck.code}:\n${fsck.stdout}${fsck.stderr}`];
    for (const [path, want] of Object.entries(r.files ?? {})) {
      const got = debugfs(img, `cat ${path}`);
      if (got.stdout !== want) problems.push(`debugfs cat ${path}: ${JSON.stringify(got.stdout.slice(0, 200))}, wanted ${JSON.stringify(want)}`);
    }
    report(`${name} (e2fsck -fn${r.files ? " + debugfs" : ""})`, problems.length === 0, problems.join("\n"));
  }
  if (results.length === 0 && failed === 0) report("conformance produced results", false, log.join("\n"));
  await context.close();

  console.log("web page:");
  await runWebPageTests({ browser, url, report, artifacts, tmp: outDir });
} finally {
  await browser.close();
  server.close();
}
finish();

