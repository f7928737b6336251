/**
 * Test fixtures for the read side: a seeded source tree on the host, and ext2/3/4 images
 * made from it by e2fsprogs (`mke2fs -d`), which the engine must then read back exactly.
 *
 * Why a generated tree and not a checked-in image: the host tree is the *reference*. A
 * test reads a path through our API and compares it with `lstat`/`readlink`/the bytes of
 * the same path on the host, so no expected value ever comes from the engine itself.
 * Everything is drawn from one seed, so a failure reproduces exactly.
 *
 * What the tree holds (see makeTree): nested directories (depth ≥ 6), many small files of
 * awkward sizes, a few 1–8 MiB files of incompressible (AES-CTR) bytes, sparse files
 * (one of 5 GiB with > 2000 separate data regions, so its extent tree needs depth ≥ 2 with
 * 4 KiB blocks and ext2/ext3 need triple-indirect blocks past 4 GiB), a directory of many
 * entries (50,000 for the big test) with names of 1–255 bytes, hard links, fast (< 60
 * bytes) and slow symlinks up to 4000 bytes, symlinks to directories, chains, loops,
 * special files (fifo, char/block devices, a socket), odd names (UTF-8, 255 bytes,
 * spaces, newlines), varied modes (setuid, setgid, sticky), owners, and times
 * (microsecond fractions via utimes, plus exact nanoseconds and dates before 1970 and
 * after 2038 via `touch -d`).
 *
 * What `mke2fs -d` (e2fsprogs 1.47.0) preserves, found by experiment and relied on here:
 *  - type, permission bits (incl. setuid/setgid/sticky), uid, gid, rdev, size, contents,
 *    holes (it skips all-zero blocks), symlink targets, hard links (one inode, right
 *    link count), for every inode *except the root directory*, which gets 0755 0:0 and
 *    the build time;
 *  - atime and mtime in whole seconds only: the nanosecond ("extra") fields are written
 *    as 0, so seconds past 2038 lose their epoch bits (2100 reads back as 1963);
 *  - ctime and crtime are the build time, not the source's.
 * So after mke2fs the builder *stamps* every inode (except the many entries of the big
 * directory, whose mtimes are whole seconds on the host) with `debugfs -w "sif"`: the host
 * mtime's nanoseconds and epoch bits, and arbitrary nanoseconds into atime/ctime/crtime,
 * so that decoding of every extra field is exercised. With 256-byte inodes an image then
 * holds the host mtime exactly; with 128-byte inodes it holds the low 32 bits of the
 * seconds. atime/ctime/crtime are judged against debugfs, not against the host.
 *
 * Why the big directory is built in steps: libext2fs adds names one by one with a linear
 * scan, so `mke2fs -d` on a 50,000-entry directory takes many minutes; bigdir.ts explains
 * the fast route (and e2fsck -fn still judges the result).
 *
 * Ownership: makeTree writes only under the directory it is given; buildImage renames
 * parts of that tree away while mke2fs runs and always puts them back (try/finally).
 */
import {
  chmodSync, chownSync, closeSync, ftruncateSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync,
  openSync, readdirSync, readlinkSync, readSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync, writeSync,
  truncateSync, existsSync,
} from "node:fs";
import { execFileSync } from "node:child_process";
import { createCipheriv, createHash } from "node:crypto";
import { join } from "node:path";
import { run, tool, dumpe2fsHeader } from "./e2fsprogs.ts";
import { debugfsScript, listImage } from "./image-oracle.ts";
import { STAGE_THRESHOLD, stageBigDir, unstageBigDir, mergeBigDir, type StagedBig } from "./bigdir.ts";

// ---------------------------------------------------------------- seeded randomness

/** xoshiro128** seeded through splitmix32: small, fast, and the same on every platform. */
export class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }
  /** Uniform u32. */
  u32(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1]!, 5), 7), 9) >>> 0;
    const t = (s[1]! << 9) >>> 0;
    s[2]! ^= s[0]!;
    s[3]! ^= s[1]!;
    s[1]! ^= s[2]!;
    s[0]! ^= s[3]!;
    s[2]! ^= t;
    s[3] = rotl(s[3]!, 11);
    return r;
  }
  /** Uniform integer in [0, n), n ≤ 2^32. */
  int(n: number): number {
    return Math.floor((this.u32() / 4294967296) * n);
  }
  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** Uniform float in [0, 1). */
  float(): number {
    return this.u32() / 4294967296;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  /** n pseudo-random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      out[i] = v;
      if (i + 1 < n) out[i + 1] = v >>> 8;
      if (i + 2 < n) out[i + 2] = v >>> 16;
      if (i + 3 < n) out[i + 3] = v >>> 24;
    }
    return out;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** `n` incompressible bytes, fast (AES-128-CTR keystream keyed by the seed and a label). */
export function noise(seed: number, label: string, n: number): Buffer {
  const key = createHash("sha256").update(`${seed}:${label}`).digest();
  const c = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
  return c.update(Buffer.alloc(n));
}

// ---------------------------------------------------------------- the source tree

export interface TreeOptions {
  seed?: number;
  /** Files in /small (sizes around block and inline boundaries). */
  smallFiles?: number;
  /** Files of 1–8 MiB in /bigfiles. */
  bigFiles?: number;
  /** Entries in /big (0: no /big). */
  bigDirEntries?: number;
  /** Name lengths in /big are drawn from [min, max] bytes. */
  bigDirNameLength?: [number, number];
  /** /huge/sparse-5g: 5 GiB, `hugeRegions` separate data regions. */
  hugeSparse?: boolean;
  hugeRegions?: number;
  /** /longlinks: symlinks with 1500–4000-byte targets (too long for 1 KiB blocks). */
  longSymlinks?: boolean;
  /** fifo, char/block devices, socket in /special. */
  specials?: boolean;
  /** Depth of the /deep chain of directories. */
  depth?: number;
  /** Divide the offsets and sizes of the /sparse files by this (small trees for fuzzing). */
  sparseScale?: number;
}

export interface SparseFile {
  path: string;
  size: number;
  /** [offset, length] of each data region written on the host, sorted. */
  regions: Array<[number, number]>;
}

export interface TreeManifest {
  root: string;
  seed: number;
  /** Top-level optional parts present in this tree ("/big", "/huge", "/longlinks"). */
  parts: string[];
  bigDir?: { path: string; entries: number };
  huge?: SparseFile;
  sparse: SparseFile[];
  bigFiles: string[];
  /** A path at depth ≥ 6. */
  deepest: string;
  /** Symlinks whose resolution loops (stat must fail with ELOOP). */
  loops: string[];
  /** Special files that could not be made here, and why. */
  specialsSkipped: string[];
  notes: string[];
}

const DEFAULTS: Required<TreeOptions> = {
  seed: 1,
  smallFiles: 200,
  bigFiles: 3,
  bigDirEntries: 0,
  bigDirNameLength: [1, 255],
  hugeSparse: true,
  hugeRegions: 2100,
  longSymlinks: true,
  specials: true,
  depth: 8,
  sparseScale: 1,
};

const GiB = 2 ** 30;
const MiB = 2 ** 20;

/** Odd names for /names: UTF-8, 255 bytes, spaces, newlines, punctuation. */
export const ODD_NAMES: readonly string[] = [
  "sp ace", " leading", "trailing ", "new\nline", "tab\tchar", "ü-umlaut", "日本語のファイル", "emoji-😀",
  "a".repeat(255), "€".repeat(85), "é".repeat(127) + "x", "-dash", "#hash", "back\\slash", "quote\"'",
  "semi;colon", "star*?", ".hidden", "..dots", "...", "CAPS", "caps", "percent%20", "x",
];

/**
 * Generate the source tree under `root` (created; must not exist or be empty).
 * Deterministic for a given seed and options, except what the host decides (inode
 * numbers, ctimes, and atimes the host updates when files are read).
 */
export function makeTree(root: string, options: TreeOptions = {}): TreeManifest {
  const o = { ...DEFAULTS, ...options };
  const rng = new Rng(o.seed);
  mkdirSync(root, { recursive: true });
  const m: TreeManifest = {
    root, seed: o.seed, parts: [], sparse: [], bigFiles: [], deepest: "", loops: [], specialsSkipped: [], notes: [],
  };
  const host = (p: string) => join(root, p);
  const dirs: string[] = ["/"];
  const mkdir = (p: string, mode = 0o755) => {
    mkdirSync(host(p));
    chmodSync(host(p), mode);
    dirs.push(p);
  };
  const file = (p: string, data: Uint8Array | string, mode = 0o644) => {
    writeFileSync(host(p), data);
    chmodSync(host(p), mode);
    stampRandomTimes(host(p), rng, false);
  };
  const link = (p: string, target: string) => {
    symlinkSync(target, host(p));
    stampRandomTimes(host(p), rng, true);
  };

  // Depth ≥ 6: /deep/l1/l2/... with a file at every level.
  let d = "/deep";
  mkdir(d);
  for (let i = 1; i <= o.depth; i++) {
    d += `/l${i}`;
    mkdir(d);
    file(`${d}/at-${i}.txt`, `level ${i}\n`.repeat(i * 7));
  }
  m.deepest = `${d}/at-${o.depth}.txt`;

  // Small files with sizes around the boundaries that matter (inline, block, extent).
  mkdir("/small");
  const boundary = [0, 1, 59, 60, 61, 100, 1023, 1024, 1025, 2048, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 65536];
  for (let i = 0; i < o.smallFiles; i++) {
    const size = i < boundary.length ? boundary[i]! : rng.int(i % 3 === 0 ? 40000 : 3000);
    const text = i % 2 === 0;
    const data = text ? Buffer.from(loremBytes(rng, size)) : rng.bytes(size);
    file(`/small/f${String(i).padStart(3, "0")}`, data);
  }

  // 1–8 MiB incompressible files, sizes deliberately not block multiples.
  mkdir("/bigfiles");
  for (let i = 0; i < o.bigFiles; i++) {
    const size = i === 0 ? 8 * MiB - 1 : rng.range(1 * MiB, 8 * MiB);
    const p = `/bigfiles/b${i}.bin`;
    file(p, noise(o.seed, p, size));
    m.bigFiles.push(p);
  }

  // Sparse files: holes at the start, between regions and at the end; data crossing blocks.
  mkdir("/sparse");
  const sc = (n: number) => Math.floor(n / o.sparseScale);
  m.sparse.push(writeSparse(host, "/sparse/holes", sc(16 * MiB) + 1234, [
    [MiB, 5000], [3 * MiB + 100, 3 * 4096], [5 * MiB - 1, 2], [6 * MiB, 1], [7 * MiB + 4095, 4098],
    [8 * MiB, 4096], [9 * MiB + 17, 70000], [11 * MiB, 100], [12 * MiB + 2048, 4096], [13 * MiB, 1],
    [14 * MiB + 1, 8191], [15 * MiB, 4096],
  ].map(([off, len]) => [sc(off!), len!] as [number, number]), rng));
  m.sparse.push(writeSparse(host, "/sparse/tail", sc(3 * MiB) + 777, [[0, 4096], [sc(3 * MiB), 777]], rng));
  m.sparse.push(writeSparse(host, "/sparse/all-hole", sc(10 * MiB), [], rng));
  for (const s of m.sparse) stampRandomTimes(host(s.path), rng, false);

  if (o.hugeSparse) {
    m.parts.push("/huge");
    mkdir("/huge");
    const size = 5 * GiB + 4242;
    const slot = 64 * 1024;
    const used = new Set<number>();
    const regions: Array<[number, number]> = [
      [0, 4096], [4 * GiB - 100, 200], [2 ** 32 + 4096 * 3, 5000], [size - 3000, 3000],
    ];
    for (const [off] of regions) used.add(Math.floor(off / slot));
    while (regions.length < o.hugeRegions) {
      const s = rng.int(Math.floor(size / slot) - 1);
      if (used.has(s) || used.has(s - 1) || used.has(s + 1)) continue;
      used.add(s);
      regions.push([s * slot + rng.int(48 * 1024), rng.range(1, 12000)]);
    }
    m.huge = writeSparse(host, "/huge/sparse-5g", size, regions, rng);
    stampRandomTimes(host(m.huge.path), rng, false);
  }

  // Hard links: one inode, three names in two directories.
  mkdir("/hard");
  file("/hard/a", "hard link target\n");
  linkSync(host("/hard/a"), host("/hard/b"));
  linkSync(host("/hard/a"), host("/deep/l1/hard-c"));
  file("/hard/solo", "one link\n");

  // Symlinks: fast (< 60 bytes), slow, to dirs, absolute, chains, loops, dangling.
  mkdir("/links");
  link("/links/fast-1", "x");
  link("/links/fast-to-file", "../small/f010");
  link("/links/fast-59", "../small/" + "y".repeat(50));
  link("/links/exactly-59", "z".repeat(59));
  link("/links/exactly-60", "z".repeat(60));
  link("/links/slow-61", "../small/f011" + "/.".repeat(24));
  link("/links/slow-200", "w".repeat(200));
  link("/links/slow-1000", ("segment/").repeat(125).slice(0, 1000));
  link("/links/to-dir", "../deep/l1");
  link("/links/abs-to-dir", "/deep/l1/l2");
  link("/links/abs-to-file", "/small/f012");
  link("/links/chain-1", "chain-2");
  link("/links/chain-2", "./chain-3");
  link("/links/chain-3", "../links/chain-4");
  link("/links/chain-4", "to-dir/l2/at-2.txt");
  link("/links/loop-a", "loop-b");
  link("/links/loop-b", "loop-a");
  link("/links/self", "self");
  link("/links/loop-dir", "loop-dir/x");
  link("/links/dangling", "does/not/exist");
  link("/links/utf8-ü", "日本語のファイル");
  m.loops.push("/links/loop-a", "/links/loop-b", "/links/self", "/links/loop-dir");
  if (o.longSymlinks) {
    m.parts.push("/longlinks");
    mkdir("/longlinks");
    link("/longlinks/slow-1500", "q".repeat(1500));
    link("/longlinks/slow-4000", ("../longlinks/").repeat(400).slice(0, 3990) + "slow-1500");
    link("/longlinks/slow-4000-b", "a/".repeat(2000));
  }

  // Special files. mknod needs CAP_MKNOD; without it they are skipped and reported.
  if (o.specials) {
    mkdir("/special");
    const special = (p: string, args: string[]) => {
      try {
        execFileSync(args[0]!, [host(p), ...args.slice(1)], { stdio: "pipe" });
        stampRandomTimes(host(p), rng, false);
      } catch (e) {
        m.specialsSkipped.push(p);
        m.notes.push(`${p}: ${args[0]} failed (${String((e as Error).message).split("\n")[0]})`);
      }
    };
    special("/special/fifo", ["mkfifo"]);
    special("/special/null", ["mknod", "c", "1", "3"]);
    special("/special/loop0", ["mknod", "b", "7", "0"]);
    special("/special/big-minor", ["mknod", "c", "300", "70000"]);
    try {
      execFileSync("python3", ["-c", "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", host("/special/sock")], { stdio: "pipe" });
      stampRandomTimes(host("/special/sock"), rng, false);
    } catch {
      m.specialsSkipped.push("/special/sock");
      m.notes.push("/special/sock: python3 could not bind a unix socket");
    }
  }

  // Odd names, and one odd directory name.
  mkdir("/names");
  for (const n of ODD_NAMES) file(`/names/${n}`, `name: ${n}\n`);
  mkdir("/names/ünïcödé dir");
  file("/names/ünïcödé dir/inside", "x");

  // Modes and owners.
  mkdir("/modes");
  for (const mode of [0o644, 0o755, 0o600, 0o4755, 0o2755, 0o6711, 0o000, 0o444, 0o1644]) {
    file(`/modes/m${mode.toString(8).padStart(4, "0")}`, "mode\n", mode);
  }
  mkdir("/modes/sticky", 0o1777);
  file("/modes/sticky/in", "x");
  mkdir("/modes/private", 0o700);
  mkdir("/modes/setgid-dir", 0o2775);
  // chown needs root; without it the files keep the runner's ids (still compared exactly).
  const own = (p: string, uid: number, gid: number, noFollow = false) => {
    try {
      (noFollow ? lchownSync : chownSync)(host(p), uid, gid);
    } catch (e) {
      m.notes.push(`${p}: chown ${uid}:${gid} failed (${(e as NodeJS.ErrnoException).code}); owners are not exercised`);
    }
  };
  mkdir("/owners");
  for (const [uid, gid] of [[1000, 1000], [65534, 65534], [0, 1000], [12345, 0], [4000000000, 4000000001]] as const) {
    const p = `/owners/u${uid}-g${gid}`;
    file(p, "owner\n");
    own(p, uid, gid);
  }
  mkdir("/owners/dir-1000");
  own("/owners/dir-1000", 1000, 1000);
  link("/owners/link-1000", "../hard/a");
  own("/owners/link-1000", 1000, 1000, true);

  // Times outside the easy range, with exact nanoseconds (touch -d can set them; utimes
  // rounds to microseconds and refuses negative times).
  mkdir("/times");
  const times: Array<[string, bigint]> = [
    ["epoch", 0n], ["ns-odd", 1_600_000_000_123_456_789n], ["pre-1970", -1_000_000_000_123_456_789n],
    ["y2038-last", 2_147_483_647_999_999_999n], ["y2038-after", 2_147_483_648_000_000_001n],
    ["y2100", 4_102_444_800_500_000_000n], ["y2200", 7_258_118_400_000_000_007n],
  ];
  for (const [name, ns] of times) {
    file(`/times/${name}`, name);
    setTimesExact(host(`/times/${name}`), ns, ns);
  }

  if (o.bigDirEntries > 0) {
    m.parts.push("/big");
    mkdir("/big");
    for (const name of bigDirNames(o.seed, o.bigDirEntries, o.bigDirNameLength)) {
      const p = host(`/big/${name}`);
      writeFileSync(p, "");
      // Whole seconds: mke2fs keeps them exactly, so these 50,000 inodes need no stamping.
      const t = 1_500_000_000 + rng.int(300_000_000);
      utimesSync(p, t, t);
    }
    m.bigDir = { path: "/big", entries: o.bigDirEntries };
  }

  // Directory times last, deepest first, so creating children does not disturb them.
  for (const p of dirs.sort((a, b) => b.length - a.length)) stampRandomTimes(host(p), rng, false);
  return m;
}

/** The names of /big: unique, [A-Za-z0-9._-] only (debugfs scripts need no quoting). */
export function bigDirNames(seed: number, n: number, [lo, hi]: [number, number]): string[] {
  const rng = new Rng(seed ^ 0x5eed);
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = i.toString(36);
    // Mostly 8–60 bytes, a quarter up to 150, a few up to the maximum.
    const r = rng.float();
    let len = r < 0.7 ? rng.range(8, 60) : r < 0.95 ? rng.range(60, 150) : rng.range(150, 255);
    len = Math.min(hi, Math.max(lo, len, id.length + 1));
    let name = id + "_";
    while (name.length < len) name += alphabet[rng.int(alphabet.length)];
    names.push(name.slice(0, Math.max(len, id.length + 1)));
  }
  return names;
}

function loremBytes(rng: Rng, n: number): string {
  const words = ["ext4", "extent", "inode", "block", "journal", "htree", "dirent", "bitmap", "group", "superblock"];
  let s = "";
  while (s.length < n) s += rng.pick(words) + (rng.int(12) === 0 ? "\n" : " ");
  return s.slice(0, n);
}

function writeSparse(host: (p: string) => string, path: string, size: number, regions: Array<[number, number]>, rng: Rng): SparseFile {
  const fd = openSync(host(path), "w");
  try {
    ftruncateSync(fd, size);
    for (const [off, len] of regions) {
      const data = rng.bytes(len);
      data[0] |= 1; // never an all-zero region (mke2fs would turn it into a hole)
      writeSync(fd, data, 0, len, off);
    }
  } finally {
    closeSync(fd);
  }
  return { path, size, regions: [...regions].sort((a, b) => a[0] - b[0]) };
}

/** Random atime/mtime in 2001–2030 with microsecond fractions (what utimes can store). */
function stampRandomTimes(p: string, rng: Rng, noFollow: boolean): void {
  const mtime = 1_000_000_000 + rng.int(900_000_000) + rng.int(1_000_000) / 1e6;
  const atime = mtime + rng.int(1000);
  (noFollow ? lutimesSync : utimesSync)(p, atime, mtime);
}

/** Set a host path's atime and mtime to exact nanoseconds (any sign), or throw. */
export function setTimesExact(p: string, atimeNs: bigint, mtimeNs: bigint): void {
  const fmt = (ns: bigint) => {
    const neg = ns < 0n;
    const a = neg ? -ns : ns;
    return `@${neg ? "-" : ""}${a / 1_000_000_000n}.${String(a % 1_000_000_000n).padStart(9, "0")}`;
  };
  execFileSync("touch", ["-h", "-a", "-d", fmt(atimeNs), p]);
  execFileSync("touch", ["-h", "-m", "-d", fmt(mtimeNs), p]);
  const st = lstatSync(p, { bigint: true });
  if (st.mtimeNs !== mtimeNs) throw new Error(`touch could not set mtime of ${p} to ${mtimeNs} ns (got ${st.mtimeNs})`);
}

// ---------------------------------------------------------------- walking the host tree

export interface HostEntry {
  /** Volume path ("/a/b"). */
  path: string;
  st: import("node:fs").BigIntStats;
  target?: string;
}

/** Every path under the tree root (root included), skipping the excluded top-level parts. */
export function walkHost(root: string, exclude: readonly string[] = []): HostEntry[] {
  const out: HostEntry[] = [];
  const visit = (p: string) => {
    const st = lstatSync(join(root, p), { bigint: true });
    const e: HostEntry = { path: p, st };
    if (st.isSymbolicLink()) e.target = readlinkSync(join(root, p), "utf8");
    out.push(e);
    if (st.isDirectory()) {
      for (const name of readdirSync(join(root, p)).sort()) {
        const child = p === "/" ? `/${name}` : `${p}/${name}`;
        if (!exclude.includes(child)) visit(child);
      }
    }
  };
  visit("/");
  return out;
}

/**
 * Resolve a volume path on the host tree the way the kernel does inside a chroot at
 * `root`: absolute symlink targets restart at the tree root, '..' at the root stays
 * there, at most 40 links, components of at most 255 bytes. Returns the volume path of
 * the object, or the errno code.
 */
export function resolveInTree(root: string, path: string, followLast: boolean): string | "ENOENT" | "ENOTDIR" | "ELOOP" | "ENAMETOOLONG" {
  let hops = 0;
  const parts = path.split("/").filter((s) => s !== "" && s !== ".");
  const cur: string[] = [];
  while (parts.length) {
    const name = parts.shift()!;
    if (Buffer.byteLength(name) > 255) return "ENAMETOOLONG";
    if (name === "..") {
      cur.pop();
      continue;
    }
    const here = "/" + [...cur, name].join("/");
    let st;
    try {
      st = lstatSync(join(root, here));
    } catch {
      return "ENOENT";
    }
    if (st.isSymbolicLink() && (parts.length > 0 || followLast)) {
      if (++hops > 40) return "ELOOP";
      const t = readlinkSync(join(root, here), "utf8");
      if (t.startsWith("/")) cur.length = 0;
      parts.unshift(...t.split("/").filter((s) => s !== "" && s !== "."));
      continue;
    }
    if (parts.length > 0 && !st.isDirectory()) return "ENOTDIR";
    cur.push(name);
  }
  return "/" + cur.join("/");
}

// ---------------------------------------------------------------- images

export interface ImageVariant {
  name: string;
  fsType: "ext2" | "ext3" | "ext4";
  blockSize: 1024 | 2048 | 4096;
  inodeSize: 128 | 256;
  /** mke2fs -O value ("^metadata_csum,^64bit"). */
  features?: string;
  /** Inode count (-N); mke2fs's ratio otherwise. */
  inodes?: number;
  sizeMiB: number;
  /** Optional tree parts copied into this image (the others are left out). */
  include: string[];
}

/** The variants read.test.ts checks; the big directory only in the default one. */
export const IMAGE_VARIANTS: readonly ImageVariant[] = [
  { name: "ext4", fsType: "ext4", blockSize: 4096, inodeSize: 256, inodes: 65536, sizeMiB: 512, include: ["/big", "/huge", "/longlinks"] },
  { name: "ext2", fsType: "ext2", blockSize: 4096, inodeSize: 256, sizeMiB: 256, include: ["/huge", "/longlinks"] },
  { name: "ext3", fsType: "ext3", blockSize: 4096, inodeSize: 256, sizeMiB: 256, include: ["/huge", "/longlinks"] },
  { name: "ext4-1k", fsType: "ext4", blockSize: 1024, inodeSize: 256, sizeMiB: 256, include: ["/huge"] },
  { name: "ext4-nocsum-no64", fsType: "ext4", blockSize: 4096, inodeSize: 256, features: "^metadata_csum,^64bit", sizeMiB: 256, include: ["/huge", "/longlinks"] },
  { name: "ext4-i128", fsType: "ext4", blockSize: 4096, inodeSize: 128, sizeMiB: 256, include: ["/huge", "/longlinks"] },
];

export const FIXTURE_UUID = "6c1f8e2a-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
export const FIXTURE_HASH_SEED = "1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809";

export interface BuiltImage {
  path: string;
  variant: ImageVariant;
  tree: TreeManifest;
  blockSize: number;
  inodeSize: number;
  features: Set<string>;
  /** Optional parts of the tree left out of this image. */
  excluded: string[];
  /** True when inodes carry nanoseconds (stamped from the host). */
  nsTimes: boolean;
  buildMs: number;
}

/**
 * Build `variant` from `tree` at `imagePath` (sparse file): mke2fs -d, the big-directory
 * merge when needed, `e2fsck -fyD` (indexes directories), time stamping, and a final
 * `e2fsck -fn` that must pass. Throws with the tools' output on any failure.
 */
export async function buildImage(tree: TreeManifest, variant: ImageVariant, imagePath: string): Promise<BuiltImage> {
  const t0 = performance.now();
  const excluded = tree.parts.filter((p) => !variant.include.includes(p));
  const hidden = `${tree.root}.hidden-${variant.name}`;
  const stage = tree.bigDir && !excluded.includes(tree.bigDir.path) && tree.bigDir.entries > STAGE_THRESHOLD
    ? { dir: join(tree.root, tree.bigDir.path) } : null;
  let staged: StagedBig | null = null;
  mkdirSync(hidden, { recursive: true });
  try {
    for (const p of excluded) renameSync(join(tree.root, p), join(hidden, p));
    if (stage) staged = stageBigDir(stage.dir, variant.blockSize, variant.features?.includes("^metadata_csum") !== true && variant.fsType === "ext4", setTimesExact);
    rmSync(imagePath, { force: true });
    writeFileSync(imagePath, "");
    truncateSync(imagePath, variant.sizeMiB * MiB);
    const args = ["-q", "-F", "-t", variant.fsType, "-b", String(variant.blockSize), "-I", String(variant.inodeSize),
      "-U", FIXTURE_UUID, "-E", `hash_seed=${FIXTURE_HASH_SEED}`];
    if (variant.inodes) args.push("-N", String(variant.inodes));
    if (variant.features) args.push("-O", variant.features);
    args.push("-d", tree.root, imagePath);
    const r = await run(tool("mke2fs"), args);
    if (r.code !== 0) throw new Error(`mke2fs ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  } finally {
    if (staged) unstageBigDir(staged, setTimesExact);
    for (const p of excluded) if (existsSync(join(hidden, p))) renameSync(join(hidden, p), join(tree.root, p));
    rmSync(hidden, { recursive: true, force: true });
  }
  if (staged) await mergeBigDir(imagePath, tree.bigDir!.path, staged);
  const fix = await run(tool("e2fsck"), ["-fyD", imagePath]);
  if (fix.code > 1) throw new Error(`e2fsck -fyD ${imagePath} failed (${fix.code}):\n${fix.stdout}\n${fix.stderr}`);

  const h = await dumpe2fsHeader(imagePath);
  const features = new Set((h.get("Filesystem features") ?? "").split(/\s+/).filter(Boolean));
  const inodeSize = Number(h.get("Inode size"));
  const nsTimes = inodeSize > 128;
  if (nsTimes) await stampTimes(imagePath, tree, excluded);
  const check = await run(tool("e2fsck"), ["-fn", imagePath]);
  if (check.code !== 0) throw new Error(`e2fsck -fn ${imagePath} (${variant.name}) is not clean (${check.code}):\n${check.stdout}\n${check.stderr}`);
  return {
    path: imagePath, variant, tree, blockSize: Number(h.get("Block size")), inodeSize, features, excluded, nsTimes,
    buildMs: performance.now() - t0,
  };
}

/**
 * Write host nanoseconds into every inode's mtime_extra (and epoch bits), and arbitrary
 * nanoseconds into atime/ctime/crtime, so the image holds times an engine must decode
 * exactly. Skips the big directory's entries (whole seconds on the host already).
 */
async function stampTimes(img: string, tree: TreeManifest, excluded: readonly string[]): Promise<void> {
  const listing = await listImage(img, { skipChildrenOf: tree.bigDir ? [tree.bigDir.path] : [] });
  const rng = new Rng(tree.seed ^ 0x7133);
  const cmds: string[] = [];
  const seen = new Set<number>();
  for (const e of walkHost(tree.root, excluded)) {
    if (tree.bigDir && e.path.startsWith(tree.bigDir.path + "/")) continue;
    if (e.path === "/") continue;
    const img = listing.get(e.path);
    if (!img || seen.has(img.ino)) continue;
    seen.add(img.ino);
    const mt = e.st.mtimeNs;
    const sec = mt >= 0n ? mt / 1_000_000_000n : -((-mt + 999_999_999n) / 1_000_000_000n);
    const nsec = Number(mt - sec * 1_000_000_000n);
    const lo = BigInt.asIntN(32, sec);
    const epoch = Number((sec - lo) >> 32n) & 3;
    cmds.push(`sif <${img.ino}> mtime_extra ${(nsec * 4 + epoch) >>> 0}`);
    cmds.push(`sif <${img.ino}> atime_extra ${(rng.int(1_000_000_000) * 4) >>> 0}`);
    cmds.push(`sif <${img.ino}> ctime_extra ${(rng.int(1_000_000_000) * 4 + (img.ino % 17 === 0 ? 1 : 0)) >>> 0}`);
    cmds.push(`sif <${img.ino}> crtime_extra ${(rng.int(1_000_000_000) * 4) >>> 0}`);
  }
  const r = await debugfsScript(img, cmds, { write: true });
  const errs = r.stderr.split("\n").filter((l) => l && !/^debugfs [\d.]+ /.test(l));
  if (errs.length) throw new Error(`stamping times failed:\n${errs.slice(0, 10).join("\n")}`);
}
