#!/usr/bin/env node
// `npm run web`: serve the ext4-wasm web page (web/) and the browser bundle (dist/) on
// localhost, and print the URL. A small node:http static server — nothing to install.
//
// Only a few directories are served (web/, dist/, build/, test/browser/ and the browser
// tests' generated bundles in .tmp/browser-test/), each request path is normalised and
// must stay inside one of them, and the server binds the loopback address only. Files are
// sent with no-store caching so a rebuild shows on reload. scripts/test-browser.mjs
// imports startServer() to serve the same page to Playwright.
import { createServer } from "node:http";
import { createReadStream, statSync } from "node:fs";
import { dirname, extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const SERVED = ["web", "dist", "build", "test/browser", ".tmp/browser-test"];
const TYPES = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".wasm": "application/wasm", ".map": "application/json", ".json": "application/json",
  ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon",
};

/** Map a URL path to a served file, or null (outside the served directories). */
function resolvePath(urlPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath.split("?")[0]);
  } catch {
    return null;
  }
  if (p === "/" || p === "") p = "/web/index.html";
  if (p.includes("\0")) return null;
  const rel = normalize(p).replace(/^[/\\]+/, "");
  const allowed = SERVED.some((d) => rel === d || rel.startsWith(d + sep) || rel.startsWith(d + "/"));
  if (!allowed || rel.split(/[/\\]/).includes("..")) return null;
  let file = join(root, rel);
  try {
    if (statSync(file).isDirectory()) file = join(file, "index.html");
    return statSync(file).isFile() ? file : null;
  } catch {
    return null;
  }
}

/** Start the server on 127.0.0.1:`port` (0 = any free port); resolves to { server, url }. */
export function startServer({ port = 8080, host = "127.0.0.1" } = {}) {
  const server = createServer((req, res) => {
    const file = req.method === "GET" || req.method === "HEAD" ? resolvePath(req.url ?? "/") : null;
    if (!file) {
      res.writeHead(req.method === "GET" || req.method === "HEAD" ? 404 : 405, { "content-type": "text/plain" });
      res.end("not found\n");
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[extname(file)] ?? "application/octet-stream",
      "content-length": statSync(file).size,
      "cache-control": "no-store",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      resolve({ server, url: `http://${host}:${bound}/` });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const { values } = parseArgs({ options: { port: { type: "string", default: process.env.PORT ?? "8080" } } });
  const { url } = await startServer({ port: Number(values.port) });
  console.log(`ext4-wasm web page: ${url}  (Ctrl-C to stop)`);
}
