/**
 * The inputs of bench/read: a seeded tree of incompressible files and a directory of
 * tens of thousands of empty files, each on the host and inside an ext4 image built by
 * native e2fsprogs, so every reader (ours, debugfs, the ext2fs package, the host's own
 * file system) reads exactly the same bytes.
 *
 * Why the tree looks like this (BENCHMARKS.md, workload "populate"/"read"): ~2,000 files,
 * 70 % of 1–16 KiB, 25 % of 16–256 KiB, 5 % of 1–8 MiB, sizes drawn log-uniformly inside
 * each class (real trees have far more small files than large, and log-uniform keeps the
 * total near 400 MiB), spread over three levels of directories. Content is AES-256-CTR
 * keystream: incompressible (no host or VM layer can shortcut it), deterministic from the
 * seed, and produced at memory speed, so making 400 MiB costs about a second. Each file's
 * SHA-256 is recorded as it is made, to check every reader's output once.
 *
 * Why the big directory is built in such a roundabout way: `mke2fs -d` links each file
 * into a linear directory, scanning the directory for a free slot and for a clash every
 * time, which is quadratic — 50,000 entries take ~4 minutes here. debugfs `ln` into a
 * directory that is already an htree takes libext2fs's hashed insert path instead. So:
 * mke2fs -d a tree holding the first 500 entries in /big and the rest in 500-entry side
 * directories (small enough that their own quadratic cost stays low); `e2fsck -fyD` turns
 * /big into an htree; one debugfs session then, for every other entry, runs
 * `ln /side/name /big` (the destination given as the directory, so debugfs does not first
 * look the new name up — that lookup is linear too) and `unlink /side/name` (link counts
 * are left alone by both, so each inode ends with its one link), then removes the empty
 * side directories; a last `e2fsck -fyD` re-packs and re-indexes /big and must leave a
 * volume that `e2fsck -fn` passes. 10–20 seconds here, most of it creating the 50,000 host
 * files. The host copy gets the same layout by renaming the side files into big/.
 */
import { createCipheriv, createHash } from "node:crypto";
import { mkdirSync, readdirSync, renameSync, rmdirSync, writeFileSync, closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { GiB, KiB, MiB, mustRun, runCommand } from "./lib.ts";

export interface TreeFile {
  /** Path relative to the tree root, '/'-separated, no leading slash. */
  path: string;
  size: number;
  sha256: string;
}

export interface Tree {
  root: string;
  files: TreeFile[];
  dirs: number;
  bytes: number;
}

/** Small, fast, seeded PRNG (mulberry32): file sizes and placement only. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The size classes of BENCHMARKS.md: [share, min, max] in bytes. */
const CLASSES: [number, number, number][] = [
  [0.7, 1 * KiB, 16 * KiB],
  [0.25, 16 * KiB, 256 * KiB],
  [0.05, 1 * MiB, 8 * MiB],
];

/**
 * Write a tree of `count` files under `root` (which must not exist), seeded; returns every
 * file with its size and SHA-256. Directory layout: 8 top directories × 6 × 4 below them
 * (248 directories), files spread uniformly over them and the root.
 */
export function generateTree(root: string, count: number, seed: number): Tree {
  const rand = prng(seed);
  const key = createHash("sha256").update(`ext4-wasm bench/read seed ${seed}`).digest();
  const dirs: string[] = [""];
  for (let a = 0; a < 8; a++) {
    dirs.push(`d${a}`);
    for (let b = 0; b < 6; b++) {
      dirs.push(`d${a}/s${b}`);
      for (let c = 0; c < 4; c++) dirs.push(`d${a}/s${b}/t${c}`);
    }
  }
  mkdirSync(root);
  for (const d of dirs) if (d) mkdirSync(join(root, d));
  // Exact class counts, shuffled, so the total does not swing with the seed's luck.
  const classOf: number[] = [];
  for (let k = 0; k < CLASSES.length; k++) {
    const n = k === CLASSES.length - 1 ? count - classOf.length : Math.round(count * CLASSES[k]![0]);
    for (let i = 0; i < n; i++) classOf.push(k);
  }
  for (let i = classOf.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [classOf[i], classOf[j]] = [classOf[j]!, classOf[i]!];
  }
  const files: TreeFile[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const [, lo, hi] = CLASSES[classOf[i]!]!;
    const size = Math.floor(lo * Math.pow(hi / lo, rand()));
    const dir = dirs[Math.floor(rand() * dirs.length)]!;
    const path = (dir ? dir + "/" : "") + `file-${String(i).padStart(5, "0")}.bin`;
    // One keystream per file: the IV's high word is the file index, the counter runs below it.
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(i, 0);
    const data = createCipheriv("aes-256-ctr", key, iv).update(Buffer.alloc(size));
    writeFileSync(join(root, path), data);
    files.push({ path, size, sha256: createHash("sha256").update(data).digest("hex") });
    bytes += size;
  }
  return { root, files, dirs: dirs.length - 1, bytes };
}

/** Image size for a tree: data rounded to blocks, plus room for metadata and the journal. */
export function imageSizeFor(tree: Tree): number {
  const blocks = tree.files.reduce((n, f) => n + Math.ceil(f.size / 4096), 0);
  const bytes = blocks * 4096 * 1.15 + 96 * MiB;
  // Never under 1 GiB (sparse, so free): smaller images get mke2fs's "small" profile.
  return Math.max(GiB, Math.ceil(bytes / MiB) * MiB);
}

/** `mke2fs -t ext4 -d root img size`, then `e2fsck -fn` must pass. */
export async function buildImage(mke2fs: string, e2fsck: string, root: string, img: string, size: number, extra: string[] = []): Promise<void> {
  await mustRun(mke2fs, ["-q", "-t", "ext4", "-F", ...extra, "-d", root, img, String(Math.ceil(size / KiB)) + "k"], { timeoutMs: 600_000 });
  await fsckClean(e2fsck, img);
}

async function fsckClean(e2fsck: string, img: string): Promise<void> {
  const r = await runCommand(e2fsck, ["-fn", img], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`e2fsck -fn ${img} exited ${r.code}:\n${(r.stdout + r.stderr).slice(0, 2000)}`);
}

/** `e2fsck -fyD`: exit 0 (nothing to do) or 1 (repaired/optimised) are both success. */
async function fsckOptimise(e2fsck: string, img: string): Promise<void> {
  const r = await runCommand(e2fsck, ["-fyD", img], { timeoutMs: 600_000 });
  if (r.code !== 0 && r.code !== 1) throw new Error(`e2fsck -fyD ${img} exited ${r.code}:\n${(r.stdout + r.stderr).slice(0, 2000)}`);
}

export interface BigDir {
  /** Host directory holding the entries (`<hostRoot>/big`). */
  hostDir: string;
  /** Path of the directory inside the image. */
  imageDir: string;
  names: string[];
}

const SIDE = 500;

/**
 * Make `entries` empty files named entry-NNNNNN in `<hostRoot>/big` on the host and in
 * /big of a new image `img`, indexed as an htree (see the essay for how). Throws unless the
 * image passes `e2fsck -fn` and /big carries the index flag.
 */
export async function buildBigDir(tools: { mke2fs: string; e2fsck: string; debugfs: string }, hostRoot: string, img: string, entries: number): Promise<BigDir> {
  const name = (i: number) => `entry-${String(i).padStart(6, "0")}`;
  const side = (s: number) => `side${String(s).padStart(3, "0")}`;
  const sides = Math.ceil(entries / SIDE) - 1;
  mkdirSync(hostRoot);
  mkdirSync(join(hostRoot, "big"));
  for (let s = 1; s <= sides; s++) mkdirSync(join(hostRoot, side(s)));
  const where = (i: number) => (i < SIDE ? "big" : side(Math.floor(i / SIDE)));
  for (let i = 0; i < entries; i++) closeSync(openSync(join(hostRoot, where(i), name(i)), "w"));

  // Inodes: one per entry plus slack. At least 1 GiB (a sparse file: only metadata is
  // written) so mke2fs picks its default profile — 4 KiB blocks, 256-byte inodes — and not
  // the "small" one (1 KiB blocks) that images under 512 MiB get.
  const inodes = entries + 2 * SIDE;
  const size = Math.max(GiB, Math.ceil((inodes * 256 * 1.5 + 64 * MiB) / MiB) * MiB);
  await mustRun(tools.mke2fs, ["-q", "-t", "ext4", "-F", "-N", String(inodes), "-d", hostRoot, img, String(size / KiB) + "k"], { timeoutMs: 600_000 });
  await fsckOptimise(tools.e2fsck, img);
  const cmds: string[] = [];
  for (let i = SIDE; i < entries; i++) cmds.push(`ln /${where(i)}/${name(i)} /big`, `unlink /${where(i)}/${name(i)}`);
  for (let s = 1; s <= sides; s++) cmds.push(`rmdir /${side(s)}`);
  const cmdFile = img + ".debugfs-cmds";
  writeFileSync(cmdFile, cmds.join("\n") + "\n");
  const r = await runCommand(tools.debugfs, ["-w", "-f", cmdFile, img], { timeoutMs: 600_000 });
  const errors = r.stderr.split("\n").filter((l) => l && !l.startsWith("debugfs "));
  if (r.code !== 0 || errors.length) throw new Error(`debugfs building /big failed (${r.code}): ${errors.slice(0, 5).join(" / ")}`);
  await fsckOptimise(tools.e2fsck, img);
  await fsckClean(tools.e2fsck, img);
  const st = await mustRun(tools.debugfs, ["-R", "stat /big", img]);
  const flags = Number(/Flags:\s*(0x[0-9a-f]+)/i.exec(st.stdout)?.[1] ?? "0");
  if (!(flags & 0x1000)) throw new Error(`/big in ${img} is not hash-indexed (flags ${flags.toString(16)})`);

  // The host copy: same names, all in big/.
  for (let s = 1; s <= sides; s++) {
    const d = join(hostRoot, side(s));
    for (const n of readdirSync(d)) renameSync(join(d, n), join(hostRoot, "big", n));
    rmdirSync(d);
  }
  const names = Array.from({ length: entries }, (_, i) => name(i));
  return { hostDir: join(hostRoot, "big"), imageDir: "/big", names };
}
