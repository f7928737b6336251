// e2fsprogs as the judge of images the browser made (plain .mjs: scripts/test-browser.mjs
// runs under node without a TypeScript loader). Same tools and flags as test/helpers.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Absolute path of an e2fsprogs tool; throws when missing (the test fails loudly). */
export function tool(name) {
  for (const dir of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install e2fsprogs (apt-get install -y e2fsprogs)`);
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20, timeout: 300_000 });
  return { code: r.status ?? 1, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
}

/** e2fsck -fn: forced full check, read-only. Exit 0 means clean. */
export function e2fsck(image) {
  return run(tool("e2fsck"), ["-fn", image]);
}

/** debugfs -R "<request>" on an image, read-only. */
export function debugfs(image, request) {
  return run(tool("debugfs"), ["-R", request, image]);
}
