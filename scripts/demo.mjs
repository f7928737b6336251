#!/usr/bin/env node
// `npm run demo`: the main job end to end on this machine. Formats a sparse image with the
// ext4-wasm CLI, has e2fsprogs' e2fsck check it when installed, and lists it with debugfs.
// (Populating from a directory — `mkfs --from DIR` — arrives with the write path.)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = join(root, ".tmp", "demo");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const img = join(work, "demo.img");
const step = (title, cmd, args) => {
  console.log(`\n$ ${[cmd, ...args].map((a) => a.replace(root + "/", "")).join(" ")}   # ${title}`);
  const r = spawnSync(cmd, args, { stdio: "inherit" });
  if (r.status !== 0) {
    console.error(`demo: '${title}' failed (exit ${r.status})`);
    process.exit(1);
  }
};
const sbin = (name) => ["/usr/sbin", "/sbin", "/usr/bin"].map((d) => join(d, name)).find(existsSync);

step("format a 1 GiB sparse image", process.execPath, [join(root, "dist", "cli.js"), "mkfs", img, "1G", "--label", "demo"]);
const e2fsck = sbin("e2fsck");
if (e2fsck) step("check it with Linux's own checker", e2fsck, ["-fn", img]);
else console.log("\n(e2fsck not installed: apt-get install e2fsprogs to have the image checked)");
const debugfs = sbin("debugfs");
if (debugfs) step("list the root directory", debugfs, ["-R", "ls -l /", img]);
console.log(`\nimage: ${img}`);
