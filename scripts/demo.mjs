#!/usr/bin/env node
// `npm run demo`: the main job end to end on this machine. Builds an ext4 image from a
// sample directory tree with the ext4-wasm CLI (`mkfs --from`), has e2fsprogs' e2fsck check
// it when installed, and lists it — with debugfs and with ext4-wasm itself.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync, symlinkSync } from "node:fs";
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

// A small sample tree: config files, a script, a nested directory, a symlink, some data.
const tree = join(work, "rootfs");
mkdirSync(join(tree, "etc", "app"), { recursive: true });
mkdirSync(join(tree, "usr", "local", "bin"), { recursive: true });
writeFileSync(join(tree, "etc", "hostname"), "demo-box\n");
writeFileSync(join(tree, "etc", "app", "config.json"), JSON.stringify({ port: 8080, workers: 4 }, null, 2) + "\n");
writeFileSync(join(tree, "usr", "local", "bin", "hello"), "#!/bin/sh\necho hello from ext4-wasm\n", { mode: 0o755 });
writeFileSync(join(tree, "usr", "local", "data.bin"), new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24));
symlinkSync("usr/local/bin", join(tree, "bin"));
const cli = join(root, "dist", "cli.js");
step("build a 1 GiB sparse image from a directory", process.execPath, [cli, "mkfs", img, "1G", "--label", "demo", "--from", tree]);
const e2fsck = sbin("e2fsck");
if (e2fsck) step("check it with Linux's own checker", e2fsck, ["-fn", img]);
else console.log("\n(e2fsck not installed: apt-get install e2fsprogs to have the image checked)");
const debugfs = sbin("debugfs");
if (debugfs) step("list the root directory with debugfs", debugfs, ["-R", "ls -l /", img]);
step("list it with ext4-wasm", process.execPath, [cli, "ls", "-l", `${img}:/usr/local/bin`]);
step("read a file back", process.execPath, [cli, "cat", `${img}:/etc/app/config.json`]);
console.log(`\nimage: ${img}`);
