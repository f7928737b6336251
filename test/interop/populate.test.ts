/**
 * `mkfs --from` / copyIn round trip, judged by e2fsprogs: a generated host tree (the
 * read tests' fixture: 50,000 names in one directory, deep nesting, hard links, fast and
 * slow symlinks, sparse files, odd names, modes incl. setuid/setgid/sticky, owners, times
 * outside 1970–2038) goes into a fresh image twice — through the CLI
 * (`node dist/cli.js mkfs IMG 2G --from DIR`) and through the API (mkfs + mount +
 * copyIn) — and each image must pass `e2fsck -fn`, hold exactly the host tree as debugfs
 * sees it (names, inode sharing, modes, owners, link counts, sizes, mtimes), give back
 * every file's bytes and every symlink's target through `debugfs rdump`, keep sparse
 * files sparse, and have the big directory htree-indexed.
 *
 * The host tree is the reference; nothing expected comes from the engine. Special files
 * are made with mknod (or, on a volume without it, skipped and reported); atimes are not
 * compared (reading the tree moves host atimes under relatime). POPULATE_HUGE=1 adds
 * the 5 GiB sparse file with 2100 data regions (slower: copyIn reads its holes).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join, dirname } from "node:path";
import { existsSync, statSync, readdirSync, lstatSync, readFileSync, readlinkSync, mkdirSync, openSync, readSync, closeSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import "../../bindings/node.ts";
import { mkfs, mount } from "../../bindings/index.ts";
import { FileDevice } from "../../bindings/devices/node-file.ts";
import { copyIn, writable, type CopyInResult } from "../../bindings/node-copyin.ts";
import { makeTree, walkHost, type TreeManifest, type HostEntry } from "../helpers/fixtures.ts";
import { e2fsck, tempDir, run, tool } from "../helpers/e2fsprogs.ts";
import { listImage, statInodes, decodeTime, htreeLevels } from "../helpers/image-oracle.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const tmp = tempDir("populate-");
afterAll(() => tmp.cleanup());
const HUGE = process.env.POPULATE_HUGE === "1";
const BIG_ENTRIES = 50_000;

let tree: TreeManifest;
/** A second tree without /big for the API run (the CLI run covers the big directory). */
let small: TreeManifest;
const hostEntries = new Map<TreeManifest, HostEntry[]>();
/** How to start the CLI: the bundle when fresh (rebuilt if stale), else tsx on the sources. */
let cli: string[];

function newestSource(dir: string): number {
  let t = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newestSource(p) : name.endsWith(".ts") ? st.mtimeMs : 0);
  }
  return t;
}

beforeAll(async () => {
  const src = join(tmp.dir, "src");
  tree = makeTree(src, { seed: 7, bigDirEntries: BIG_ENTRIES, hugeSparse: HUGE, smallFiles: 150, bigFiles: 2 });
  small = makeTree(join(tmp.dir, "small"), { seed: 8, bigDirEntries: 0, hugeSparse: HUGE, smallFiles: 300, bigFiles: 3, longSymlinks: false });
  const bundle = join(root, "dist", "cli.js");
  const stale = !existsSync(bundle) || statSync(bundle).mtimeMs < newestSource(join(root, "bindings"));
  if (stale) {
    try {
      execFileSync(process.execPath, [join(root, "scripts", "build.mjs"), "--quiet"], { cwd: root, stdio: "pipe" });
    } catch (e) {
      // Someone else's half-finished file can break the whole build; the sources still run.
      console.warn(`populate: build failed, running the CLI from source with tsx:\n${String((e as { stderr?: Buffer }).stderr ?? e).slice(0, 2000)}`);
    }
  }
  cli = existsSync(bundle) && statSync(bundle).mtimeMs >= newestSource(join(root, "bindings"))
    ? [process.execPath, bundle]
    : [process.execPath, "--import", "tsx", join(root, "bindings", "cli.ts")];
}, 300_000);

/** Host entries that the image must hold (special files are skipped without mknod). */
function expected(t: TreeManifest, skippedSpecials: boolean): HostEntry[] {
  if (!hostEntries.has(t)) hostEntries.set(t, walkHost(t.root));
  return hostEntries.get(t)!.filter((e) => !(skippedSpecials && !e.st.isFile() && !e.st.isDirectory() && !e.st.isSymbolicLink()));
}

async function verifyImage(tree: TreeManifest, img: string, label: string, skippedSpecials: boolean): Promise<void> {
  const fsck = await e2fsck(img);
  expect(fsck.code, `${label}: e2fsck -fn:\n${fsck.stdout}\n${fsck.stderr}`).toBe(0);

  const want = expected(tree, skippedSpecials);
  const listing = await listImage(img);
  listing.delete("/lost+found"); // made by mkfs; the tree has none
  for (const [k, v] of [...listing]) if (v.ino === 0) listing.delete(k); // empty slots
  for (const k of [...listing.keys()]) if (k.startsWith("/lost+found/")) listing.delete(k);
  expect([...listing.keys()].sort(), `${label}: names`).toEqual(want.map((e) => e.path).sort());

  // Modes (with setuid/setgid/sticky), owners, hard links = one inode.
  const inoOfHost = new Map<string, number>();
  for (const e of want) {
    const i = listing.get(e.path)!;
    expect({ p: e.path, mode: i.mode.toString(8), uid: i.uid, gid: i.gid }, label).toEqual({
      p: e.path, mode: Number(e.st.mode).toString(8), uid: Number(e.st.uid), gid: Number(e.st.gid),
    });
    const key = `${e.st.dev}:${e.st.ino}`;
    const seen = inoOfHost.get(key);
    if (seen !== undefined) expect(i.ino, `${label}: ${e.path} must be a hard link`).toBe(seen);
    inoOfHost.set(key, i.ino);
  }
  expect(new Set(inoOfHost.values()).size, `${label}: one inode per host inode`).toBe(inoOfHost.size);

  // Link counts, sizes, exact mtimes, sparseness. Time mismatches are collected (and
  // reported together at the end) so that one wrong date does not hide the rest.
  const problems: string[] = [];
  const byIno = new Map<number, HostEntry>();
  for (const e of want) byIno.set(listing.get(e.path)!.ino, e);
  const facts = await statInodes(img, [...byIno.keys()]);
  for (const [ino, e] of byIno) {
    const f = facts.get(ino)!;
    expect(f, `${label}: stat <${ino}> (${e.path})`).toBeDefined();
    if (!e.st.isDirectory()) {
      expect({ p: e.path, links: f.links, size: f.size }, label).toEqual({ p: e.path, links: Number(e.st.nlink), size: Number(e.st.size) });
    } else {
      const subdirs = readdirSync(join(tree.root, e.path), { withFileTypes: true }).filter((d) => d.isDirectory()).length;
      const extra = e.path === "/" ? 1 : 0; // lost+found
      expect({ p: e.path, links: f.links }, label).toEqual({ p: e.path, links: 2 + subdirs + extra });
    }
    const d = decodeTime(f.mtime!) - e.st.mtimeNs;
    if (d !== 0n) problems.push(`mtime of ${e.path}: image ${decodeTime(f.mtime!)} ns, host ${e.st.mtimeNs} ns`);
    if (e.st.isCharacterDevice() || e.st.isBlockDevice()) {
      // Host dev_t (glibc layout) → major:minor, against what debugfs reads from i_block.
      const rdev = Number(e.st.rdev);
      const major = Math.floor(rdev / 256) & 0xfff;
      const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
      expect({ p: e.path, device: f.device }, label).toEqual({ p: e.path, device: [major, minor] });
    }
    if (e.st.isFile()) {
      // 512-byte sectors: never more than the host's data blocks plus extent-tree overhead.
      const hostBlocks = Number(e.st.blocks);
      expect(f.blockcount, `${label}: ${e.path} must stay sparse (image ${f.blockcount} sectors, host ${hostBlocks})`).toBeLessThanOrEqual(hostBlocks + 64);
    }
  }

  // The big directory is indexed.
  if (tree.bigDir) expect(await htreeLevels(img, tree.bigDir.path), `${label}: ${tree.bigDir.path} must be an htree`).toBeGreaterThanOrEqual(0);

  // Bytes and targets through rdump.
  const out = join(tmp.dir, `${label}.rdump`);
  mkdirSync(out);
  const r = await run(tool("debugfs"), ["-R", `rdump / ${out}`, img], 600_000);
  expect(r.code, `${label}: rdump failed: ${r.stderr}`).toBe(0);
  for (const e of want) {
    // rdump writes no special files; their type, mode and device were checked above.
    if (e.path === "/" || !(e.st.isFile() || e.st.isDirectory() || e.st.isSymbolicLink())) continue;
    const h = join(out, e.path);
    const src = join(tree.root, e.path);
    const st = lstatSync(h);
    if (e.st.isSymbolicLink()) {
      expect(readlinkSync(h, "utf8"), `${label}: target of ${e.path}`).toBe(e.target);
    } else if (e.st.isFile()) {
      expect(st.size, `${label}: size of ${e.path}`).toBe(Number(e.st.size));
      if (e.st.size > 64n * 1024n * 1024n) {
        expect(sameRegions(h, src, tree.huge?.regions ?? []), `${label}: data regions of ${e.path}`).toBe(true);
      } else if (!readFileSync(h).equals(readFileSync(src))) {
        problems.push(`contents of ${e.path} differ`);
      }
    } else if (e.st.isDirectory()) {
      expect(st.isDirectory(), `${label}: ${e.path} is a directory`).toBe(true);
    }
  }
  expect(problems, label).toEqual([]);
}

/** Compare only the listed regions of two (huge, sparse) files. */
function sameRegions(a: string, b: string, regions: Array<[number, number]>): boolean {
  const fa = openSync(a, "r");
  const fb = openSync(b, "r");
  try {
    for (const [off, len] of regions) {
      const x = Buffer.alloc(len);
      const y = Buffer.alloc(len);
      readSync(fa, x, 0, len, off);
      readSync(fb, y, 0, len, off);
      if (!x.equals(y)) return false;
    }
    return true;
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

describe("populate: mkfs --from and copyIn, judged by e2fsck and debugfs", () => {
  it("ext4-wasm mkfs IMG 2G --from DIR", { timeout: 600_000 }, async () => {
    const img = join(tmp.dir, "cli.img");
    const t0 = performance.now();
    const r = await run(cli[0]!, [...cli.slice(1), "mkfs", img, "2G", "--from", tree.root], 600_000);
    const secs = (performance.now() - t0) / 1000;
    expect(r.code, `mkfs --from failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/Copied from .*: \d+ files, \d+ directories, \d+ symlinks, \d+ hard links/);
    expect(r.stdout).toMatch(/MiB\/s|KiB\/s|GiB\/s/);
    // No progress bar when stderr is not a terminal; only skipped special files there.
    expect(r.stderr).not.toMatch(/\r/);
    console.log(`populate (CLI): ${secs.toFixed(1)} s\n${r.stdout}`);
    await verifyImage(tree, img, "cli", !/special files/.test(r.stdout));
  });

  it("mkfs + mount + copyIn (API, 1 KiB blocks)", { timeout: 600_000 }, async () => {
    const img = join(tmp.dir, "api.img");
    const dev = await FileDevice.open(img, { size: 512 * 2 ** 20, create: true });
    let res: CopyInResult;
    const skipped: string[] = [];
    let calls = 0;
    try {
      await mkfs(dev, { blockSize: 1024 });
      const vol = writable(await mount(dev, {}));
      const t0 = performance.now();
      res = await copyIn(vol, small.root, "/", {
        onProgress: () => calls++,
        onSkip: (p) => skipped.push(p.slice(small.root.length)),
      });
      await vol.unmount();
      const secs = (performance.now() - t0) / 1000;
      console.log(`populate (API): ${res.files} files, ${res.dirs} dirs, ${(res.bytes / 2 ** 20).toFixed(1)} MiB in ${secs.toFixed(1)} s`);
    } finally {
      await dev.close();
    }
    const want = expected(small, false);
    const specials = want.filter((e) => !e.st.isFile() && !e.st.isDirectory() && !e.st.isSymbolicLink()).map((e) => e.path);
    const files = new Set(want.filter((e) => e.st.isFile()).map((e) => `${e.st.dev}:${e.st.ino}`)).size;
    expect(res.files, "distinct regular files copied").toBe(files);
    expect(res.dirs).toBe(want.filter((e) => e.st.isDirectory()).length);
    expect(res.symlinks).toBe(want.filter((e) => e.st.isSymbolicLink()).length);
    expect(calls, "a progress report per entry copied").toBe(want.length - skipped.length);
    if (res.specials === 0) expect(skipped.sort()).toEqual(specials.sort());
    await verifyImage(small, img, "api", res.specials === 0);
  });

  // The path copyIn takes for any other WritableVolume (open + write + truncate, then
  // chown/chmod/utimes): the same volume behind an object that is not ours, so the
  // one-transaction fast path (writerOf) does not apply.
  it("copyIn through the plain WritableVolume interface", { timeout: 600_000 }, async () => {
    const img = join(tmp.dir, "generic.img");
    const dev = await FileDevice.open(img, { size: 512 * 2 ** 20, create: true });
    let res: CopyInResult;
    try {
      await mkfs(dev, {});
      const vol = writable(await mount(dev, {}));
      const plain: Record<string, unknown> = { blockSize: vol.blockSize, umask: (vol as unknown as { umask: number }).umask };
      for (const k of ["lstat", "stat", "readdir", "readlink", "readFile", "mkdir", "writeFile", "appendFile", "open", "rm", "rmdir", "unlink", "rename",
        "link", "symlink", "chmod", "chown", "utimes", "truncate", "sync", "unmount", "lchown", "lutimes", "mknod"] as const) {
        const f = (vol as unknown as Record<string, (...a: unknown[]) => unknown>)[k];
        if (typeof f === "function") plain[k] = f.bind(vol);
      }
      res = await copyIn(plain as unknown as typeof vol, small.root, "/");
      await vol.unmount();
    } finally {
      await dev.close();
    }
    expect(res.files).toBe(new Set(expected(small, false).filter((e) => e.st.isFile()).map((e) => `${e.st.dev}:${e.st.ino}`)).size);
    await verifyImage(small, img, "generic", res.specials === 0);
  });
});
