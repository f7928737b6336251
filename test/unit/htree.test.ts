/**
 * Directory hashes (assembly/htree_hash.ts) and htree index reading (assembly/htree.ts)
 * against e2fsprogs as the oracle.
 *
 * - Hashes: thousands of names (ASCII, UTF-8, raw bytes >= 0x80, every length 1..255)
 *   under all six hash versions and several seeds, compared with `debugfs dx_hash`, run as
 *   one batched debugfs session.
 * - Real indexed directories: mke2fs -d builds a directory of 3000 awkward names, e2fsck
 *   -fD indexes it (two levels at 1 KiB blocks) with half_md4 / tea / legacy, signed and
 *   unsigned, with and without metadata_csum, and at 4 KiB (one level). The index blocks
 *   must read back exactly as `debugfs htree` prints them; every name must be found by the
 *   documented root → node → leaf walk (including the continuation protocol) with the
 *   right inode; names not in the directory must not be; iterating every block must yield
 *   exactly the `debugfs ls -p` listing. The wrong hash version must lose names (so the
 *   walk test can fail).
 * - Hostile index blocks: hundreds of seeded mutations of real root and node blocks placed
 *   flush against the end of linear memory: every call returns normally, validity agrees
 *   with a literal reading of the rules, and valid blocks search like a linear scan.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { scratchDir, tool } from "./e2fs-oracle.ts";
import {
  awkwardNames, decodeRecords, listDir, loadDir, pick, populate, randInt, rng, type DirImage,
} from "./dir-helpers.ts";

let e: Engine;
let scratch: { dir: string; cleanup(): void };
let K: Record<string, number>;

const CONSTS = [
  "DXR_ENTRIES", "DXN_ENTRIES", "DX_NEXT_STOP", "DX_NEXT_FOLLOW", "DX_NEXT_UP", "DX_ERR_ARG", "DX_ERR_LEVELS",
  "DX_ERR_HASH_UNSUPPORTED", "DX_ERR_HASH_VERSION", "DX_ERR_LIMIT", "DX_ERR_COUNT", "DX_ERR_ORDER",
  "DX_ERR_NODE_HEADER", "DX_ERR_ROOT_DOTS", "DX_ERR_ROOT_INFO", "DIR_NOT_FOUND", "DIR_ITER_MIN_CAP",
  "SB_HASH_SEED", "SB_FLAGS", "SB_FEATURE_INCOMPAT", "SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_METADATA_CSUM",
  "DX_HASH_SIPHASH",
];

beforeAll(async () => {
  e = await Engine.create();
  scratch = scratchDir("htree-");
  K = Object.fromEntries(CONSTS.map((n) => [n, e.constant(n)]));
});
afterAll(() => (process.env.KEEP_SCRATCH ? console.log("scratch", scratch.dir) : scratch?.cleanup()));

/** Copy bytes into a fresh engine buffer. */
function put(bytes: Uint8Array): number {
  const p = e.alloc(Math.max(bytes.length, 1));
  e.u8.set(bytes, p);
  return p;
}

// ── hashes vs debugfs dx_hash ───────────────────────────────────────────────────────────

describe("dxHash matches debugfs dx_hash", () => {
  it("for every version 0..5, several seeds, names of every length and byte class", () => {
    const r = rng(1234);
    const uuid = () => {
      const h = Array.from({ length: 16 }, () => randInt(r, 0, 255).toString(16).padStart(2, "0")).join("");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    };
    const seeds = ["00000000-0000-0000-0000-000000000000", uuid(), uuid(), "ffffffff-ffff-ffff-ffff-ffffffffffff"];
    // debugfs splits its command line on whitespace and treats '"' as quoting; the "--"
    // we put before the name stops option parsing. Everything else passes through as bytes.
    const ok = (b: Buffer) => !b.some((c) => c <= 0x20 || c === 0x22 || c === 0x7f);
    const names = awkwardNames(99, 400).filter(ok);
    for (let len = 1; len <= 255; len++) {
      // Every length, so each chunk boundary (16 for tea, 32 for half_md4) and pad value
      // occurs; bytes alternate between ASCII and >= 0x80.
      names.push(Buffer.from(Array.from({ length: len }, () => (r() < 0.5 ? randInt(r, 0x21, 0x7e) : randInt(r, 0x80, 0xff)))
        .map((c) => (c === 0x22 || c === 0x2f ? 0x41 : c))));
    }
    expect(names.length).toBeGreaterThan(600);

    const img = join(scratch.dir, "hash.img");
    tool("mke2fs", ["-q", "-F", img, "1M"]);
    const cmds: Buffer[] = [];
    const jobs: { name: Buffer; version: number; seed: string }[] = [];
    for (const seed of seeds) {
      for (let version = 0; version <= 5; version++) {
        for (const name of names) {
          cmds.push(Buffer.concat([Buffer.from(`dx_hash -h ${version} -s ${seed} -- `), name, Buffer.from("\n")]));
          jobs.push({ name, version, seed });
        }
      }
    }
    const cmdFile = join(scratch.dir, "hash.cmd");
    writeFileSync(cmdFile, Buffer.concat(cmds));
    const out = execFileSync("debugfs", ["-f", cmdFile, img], {
      env: { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH}` }, maxBuffer: 256 << 20, stdio: ["ignore", "pipe", "pipe"],
    }).toString("latin1");
    const results = out.split("\n").filter((l) => l.startsWith("Hash of "))
      .map((l) => /is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)$/.exec(l))
      .map((m) => (m ? { hash: parseInt(m[1], 16), minor: parseInt(m[2], 16) } : undefined));
    expect(results.length).toBe(jobs.length);

    const namePtr = e.alloc(256);
    const seedPtr = e.alloc(16);
    let mismatches = 0;
    let signedDiffers = 0;
    jobs.forEach((job, i) => {
      const u8 = e.u8;
      u8.set(job.name, namePtr);
      u8.set(Buffer.from(job.seed.replace(/-/g, ""), "hex"), seedPtr);
      const hash = e.x.dxHash(namePtr, job.name.length, job.version, seedPtr) >>> 0;
      const minor = e.x.dxHashMinor() >>> 0;
      const want = results[i];
      if (!want || want.hash !== hash || want.minor !== minor) {
        if (mismatches++ < 5) {
          console.error(job.version, job.seed, job.name.toString("hex"), want, hash.toString(16), minor.toString(16));
        }
      }
      if (job.version < 3) {
        // Count names where the signed and unsigned variants differ (bytes >= 0x80).
        const other = e.x.dxHash(namePtr, job.name.length, job.version + 3, seedPtr) >>> 0;
        if (other !== hash) signedDiffers++;
      }
    });
    expect(mismatches).toBe(0);
    expect(signedDiffers).toBeGreaterThan(1000);
  });

  it("a zero seed pointer means the default seed; siphash and unknown versions are unsupported", () => {
    const name = Buffer.from("héllo wörld");
    const namePtr = put(name);
    const zero = put(new Uint8Array(16));
    for (let v = 0; v <= 5; v++) {
      expect(e.x.dxHashSupported(v)).toBe(1);
      const a = e.x.dxHash(namePtr, name.length, v, 0) >>> 0;
      const am = e.x.dxHashMinor() >>> 0;
      expect(e.x.dxHash(namePtr, name.length, v, zero) >>> 0).toBe(a);
      expect(e.x.dxHashMinor() >>> 0).toBe(am);
    }
    for (const v of [K.DX_HASH_SIPHASH, 7, 255, 0xffffffff]) {
      expect(e.x.dxHashSupported(v)).toBe(0);
      expect(e.x.dxHash(namePtr, name.length, v, 0)).toBe(0);
      expect(e.x.dxHashMinor()).toBe(0);
    }
  });
});

// ── real indexed directories ─────────────────────────────────────────────────────────────

interface Variant {
  label: string;
  bs: number;
  mkfs: string[];
  /** s_def_hash_version, set before e2fsck -D indexes (mke2fs 1.47.0 has no -E hash_alg). */
  hashAlg?: string;
  unsigned?: boolean;
  levels: number;
  version: number; // the hash_version e2fsck stores in the root
}

const VARIANTS: Variant[] = [
  { label: "half_md4, metadata_csum, 1 KiB", bs: 1024, mkfs: [], levels: 1, version: 1 },
  { label: "tea, metadata_csum, 1 KiB", bs: 1024, mkfs: [], hashAlg: "tea", levels: 1, version: 2 },
  { label: "legacy, metadata_csum, 1 KiB", bs: 1024, mkfs: [], hashAlg: "legacy", levels: 1, version: 0 },
  { label: "half_md4 unsigned, 1 KiB", bs: 1024, mkfs: [], unsigned: true, levels: 1, version: 1 },
  { label: "tea unsigned, no metadata_csum, 1 KiB", bs: 1024, mkfs: ["-O", "^metadata_csum"], hashAlg: "tea", unsigned: true, levels: 1, version: 2 },
  { label: "half_md4, no metadata_csum, 1 KiB", bs: 1024, mkfs: ["-O", "^metadata_csum"], levels: 1, version: 1 },
  { label: "half_md4, metadata_csum, 4 KiB", bs: 4096, mkfs: [], levels: 0, version: 1 },
];

const BIG_NAMES = 3000;
let srcDir = "";
let bigNames: Buffer[] = [];
let bigTypes = new Map<string, number>();

function sourceTree(): string {
  if (!srcDir) {
    srcDir = join(scratch.dir, "src");
    mkdirSync(srcDir);
    bigNames = awkwardNames(42, BIG_NAMES);
    bigTypes = populate(join(srcDir, "big"), bigNames);
  }
  return srcDir;
}

// "(**)" marks an entry whose hash has the continued bit set.
const ENTRY_LINE = /^Entry #(\d+): Hash 0x([0-9a-f]+)(?: \(\*\*\))?, block (\d+)$/;

/** The index blocks `debugfs htree` prints: logical block → count, limit, entries. */
function parseHtreeDump(text: string) {
  const lines = text.split("\n");
  const blocks = new Map<number, { count: number; limit: number; entries: { hash: number; block: number }[] }>();
  let levels = -1;
  let version = -1;
  for (let i = 0; i < lines.length; i++) {
    let m = /Indirect levels: (\d+)/.exec(lines[i]);
    if (m) levels = Number(m[1]);
    m = /Hash Version: (\d+)/.exec(lines[i]);
    if (m) version = Number(m[1]);
    m = /^Number of entries \(count\): (\d+)$/.exec(lines[i]);
    if (!m) continue;
    const count = Number(m[1]);
    const limit = Number(/^Number of entries \(limit\): (\d+)$/.exec(lines[i + 1])![1]);
    // The root's group comes first; a node's group follows its parent's entry line.
    const hdr = ENTRY_LINE.exec(lines[i - 1]);
    const block = blocks.size === 0 ? 0 : Number(hdr![3]);
    const entries: { hash: number; block: number }[] = [];
    let j = i + 2;
    if (lines[j].startsWith("Checksum:")) j++;
    while (entries.length < count) {
      const em = ENTRY_LINE.exec(lines[j++]);
      if (!em || Number(em[1]) !== entries.length) throw new Error(`htree dump: ${lines[j - 1]}`);
      entries.push({ hash: parseInt(em[2], 16), block: Number(em[3]) });
    }
    blocks.set(block, { count, limit, entries });
  }
  return { levels, version, blocks };
}

interface Loaded {
  v: Variant;
  d: DirImage;
  ptr: number; // the directory's logical blocks, consecutively, in engine memory
  seedPtr: number;
  csum: boolean;
  maxLevels: number;
  version: number; // effective
}

const execAsync = promisify(execFile);
const ENV = { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ""}`, LC_ALL: "C" };

/** Run a tool; resolves to its exit status (e2fsck exits 1 after fixing, which is expected). */
async function runStatus(cmd: string, args: string[]): Promise<number> {
  try {
    await execAsync(cmd, args, { env: ENV, maxBuffer: 64 << 20 });
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === "number") return code;
    throw err;
  }
}

let built: Promise<void> | undefined;

/**
 * Build every variant's image, concurrently: one mke2fs -d per (block size, features)
 * base, then per variant a copy whose default hash / signedness is set before e2fsck -fD
 * indexes it (mke2fs 1.47.0 has no -E hash_alg), and which e2fsck -fn must then pass.
 */
function buildAll(): Promise<void> {
  built ??= (async () => {
    const src = sourceTree();
    const bases = new Map<string, Promise<string>>();
    await Promise.all(VARIANTS.map(async (v, i) => {
      const key = `${v.bs}:${v.mkfs.join(",")}`;
      if (!bases.has(key)) {
        bases.set(key, (async () => {
          const base = join(scratch.dir, `base${bases.size}.img`);
          const st = await runStatus("mke2fs", ["-t", "ext4", "-F", "-q", "-b", String(v.bs), "-N", "8192", ...v.mkfs, "-d", src, base, "40M"]);
          if (st !== 0) throw new Error(`mke2fs ${key}: ${st}`);
          return base;
        })());
      }
      const img = join(scratch.dir, `v${i}.img`);
      copyFileSync(await bases.get(key)!, img);
      if (v.hashAlg) expect(await runStatus("debugfs", ["-w", "-R", `ssv def_hash_version ${v.hashAlg}`, img])).toBe(0);
      if (v.unsigned) expect(await runStatus("debugfs", ["-w", "-R", "ssv flags 2", img])).toBe(0);
      expect(await runStatus("e2fsck", ["-fyD", img])).toBeLessThanOrEqual(1);
      expect(await runStatus("e2fsck", ["-fn", img])).toBe(0);
    }));
  })();
  return built;
}

async function loadVariant(idx: number): Promise<Loaded> {
  await buildAll();
  const v = VARIANTS[idx];
  const d = loadDir(join(scratch.dir, `v${idx}.img`), "/big");
  const ptr = put(d.data);
  const seedPtr = put(d.sb.subarray(K.SB_HASH_SEED, K.SB_HASH_SEED + 16));
  const csum = (d.sb.readUInt32LE(K.SB_FEATURE_RO_COMPAT) & K.FEATURE_RO_COMPAT_METADATA_CSUM) !== 0;
  const maxLevels = e.x.dxMaxLevels(d.sb.readUInt32LE(K.SB_FEATURE_INCOMPAT));
  const version = e.x.dxEffectiveHashVersion(e.x.dxHashVersion(ptr), d.sb.readUInt32LE(K.SB_FLAGS));
  return { v, d, ptr, seedPtr, csum, maxLevels, version };
}

/**
 * The lookup protocol documented in assembly/htree.ts, step by step. Returns the inode
 * and how many leaves were read, or null if the name is not in the directory.
 */
function walk(L: Loaded, name: Buffer, version = L.version): { ino: number; leaves: number; leaf: number } | null {
  const x = e.x;
  const bs = L.d.blockSize;
  const nblocks = L.d.blocks.length;
  const namePtr = scratchName(name);
  const levels = x.dxRootCheck(L.ptr, bs, L.csum, L.maxLevels);
  expect(levels).toBeGreaterThanOrEqual(0);
  const h = x.dxHash(namePtr, name.length, version, L.seedPtr) >>> 0;
  const blockPtr = (b: number) => {
    expect(b).toBeGreaterThan(0);
    expect(b).toBeLessThan(nblocks);
    return L.ptr + b * bs;
  };
  const path: { ptr: number; off: number; i: number }[] = [];
  let ptr = L.ptr;
  let off = K.DXR_ENTRIES;
  for (let lvl = 0; ; lvl++) {
    const i = x.dxFind(ptr, bs, off, h);
    expect(i).toBeGreaterThanOrEqual(0);
    path.push({ ptr, off, i });
    if (lvl === levels) break;
    ptr = blockPtr(x.dxEntryBlock(ptr, bs, off, i) >>> 0);
    off = K.DXN_ENTRIES;
    expect(x.dxNodeCheck(ptr, bs, L.csum)).toBe(0);
  }
  for (let leaves = 1; leaves <= nblocks; leaves++) {
    const last = path[path.length - 1];
    const leafNo = x.dxEntryBlock(last.ptr, bs, last.off, last.i) >>> 0;
    const leaf = blockPtr(leafNo);
    const r = x.dirLookup(leaf, bs, namePtr, name.length, L.csum);
    if (r >= 0) return { ino: x.dirEntryInode(leaf, bs, r) >>> 0, leaves, leaf: leafNo };
    expect(r).toBe(K.DIR_NOT_FOUND);
    let k = path.length - 1;
    let res = 0;
    for (; k >= 0; k--) {
      res = x.dxContinues(path[k].ptr, bs, path[k].off, path[k].i, h);
      expect(res).toBeGreaterThanOrEqual(0);
      if (res !== K.DX_NEXT_UP) break;
    }
    if (k < 0 || res === K.DX_NEXT_STOP) return null;
    expect(res).toBe(K.DX_NEXT_FOLLOW);
    path[k].i++;
    for (let j = k + 1; j < path.length; j++) {
      const p = blockPtr(x.dxEntryBlock(path[j - 1].ptr, bs, path[j - 1].off, path[j - 1].i) >>> 0);
      expect(x.dxNodeCheck(p, bs, L.csum)).toBe(0);
      path[j] = { ptr: p, off: K.DXN_ENTRIES, i: 0 };
    }
  }
  throw new Error("walk did not terminate");
}

let namePtrCache = 0;
function scratchName(name: Buffer): number {
  if (!namePtrCache) namePtrCache = e.alloc(256);
  e.u8.set(name, namePtrCache);
  return namePtrCache;
}

describe.each(VARIANTS.map((v, i) => [v.label, v, i] as const))("indexed directory: %s", (_label, v, idx) => {
  let L: Loaded;
  beforeAll(async () => {
    L = await loadVariant(idx);
  }, 120_000);

  it("index blocks read back as debugfs htree prints them", () => {
    const dump = parseHtreeDump(tool("debugfs", ["-R", "htree /big", L.d.img]));
    expect(dump.levels).toBe(v.levels);
    expect(dump.version).toBe(v.version);
    expect(e.x.dxHashVersion(L.ptr)).toBe(v.version);
    expect(L.version).toBe(v.unsigned ? v.version + 3 : v.version);
    const bs = L.d.blockSize;
    expect(e.x.dxRootCheck(L.ptr, bs, L.csum, L.maxLevels)).toBe(v.levels);
    expect(dump.blocks.size).toBeGreaterThan(v.levels > 0 ? 2 : 0);
    for (const [blk, info] of dump.blocks) {
      const p = L.ptr + blk * bs;
      const off = blk === 0 ? K.DXR_ENTRIES : K.DXN_ENTRIES;
      if (blk !== 0) expect(e.x.dxNodeCheck(p, bs, L.csum)).toBe(0);
      const limit = blk === 0 ? e.x.dxRootLimit(bs, L.csum) : e.x.dxNodeLimit(bs, L.csum);
      expect(limit).toBe(info.limit);
      expect(e.x.dxCount(p, bs, off)).toBe(info.count);
      info.entries.forEach((ent, i) => {
        expect(e.x.dxEntryHash(p, bs, off, i) >>> 0).toBe(ent.hash);
        expect(e.x.dxEntryBlock(p, bs, off, i) >>> 0).toBe(ent.block);
        // Each entry's own hash (and one above) lands on it, unless a duplicate follows.
        if (i > 0 && (i + 1 === info.count || info.entries[i + 1].hash !== ent.hash)) {
          expect(e.x.dxFind(p, bs, off, ent.hash)).toBe(i);
        }
        if (i + 1 < info.count && info.entries[i + 1].hash > ent.hash + 1) {
          expect(e.x.dxFind(p, bs, off, ent.hash + 1)).toBe(i);
        }
      });
      expect(e.x.dxEntryBlock(p, bs, off, info.count) >>> 0).toBe(0xffffffff);
    }
  });

  it("finds every name by the root → node → leaf walk, with the right inode", () => {
    const listed = listDir(L.d.img, "/big");
    expect(listed.length).toBe(BIG_NAMES + 2);
    let extraLeaves = 0;
    for (const ent of listed) {
      if (ent.name.equals(Buffer.from(".")) || ent.name.equals(Buffer.from(".."))) continue;
      const got = walk(L, ent.name);
      expect(got, ent.name.toString("hex")).not.toBeNull();
      expect(got!.ino).toBe(ent.ino);
      extraLeaves += got!.leaves - 1;
    }
    // Names that are not there are not found (a fresh name lands in a leaf and misses).
    for (const n of awkwardNames(777, 600)) {
      if (bigTypes.has(n.toString("hex"))) continue;
      expect(walk(L, n)).toBeNull();
    }
    expect(extraLeaves).toBeLessThan(50);
  });

  it("loses names when hashed with the wrong version (the walk really depends on the hash)", () => {
    const wrong = L.version >= 3 ? L.version - 3 : L.version + 3; // flip signedness
    const other = (L.version % 3 + 1) % 3 + (L.version >= 3 ? 3 : 0); // another algorithm
    let lostSign = 0;
    let lostAlg = 0;
    for (const n of bigNames.slice(0, 1500)) {
      if (!walk(L, n, wrong)) lostSign++;
      if (!walk(L, n, other)) lostAlg++;
    }
    // Only names with bytes >= 0x80 hash differently when signedness flips.
    expect(lostSign).toBeGreaterThan(100);
    expect(lostAlg).toBeGreaterThan(1000);
  });

  it("iterating every block yields exactly the debugfs listing", () => {
    const bs = L.d.blockSize;
    const out = e.alloc(bs * 2);
    const seen: string[] = [];
    let dots = 0;
    for (let b = 0; b < L.d.blocks.length; b++) {
      const p = L.ptr + b * bs;
      expect(e.x.dirBlockCheck(p, bs, L.csum)).toBe(0);
      let off = 0;
      while (off < bs) {
        const n = e.x.dirIterate(p, bs, off, out, bs * 2, L.csum, true);
        expect(n).toBeGreaterThanOrEqual(0);
        for (const r of decodeRecords(e.u8.subarray(out, out + bs * 2), n)) {
          const isDot = r.name.equals(Buffer.from(".")) || r.name.equals(Buffer.from(".."));
          if (isDot) {
            expect(b).toBe(0);
            dots++;
          }
          seen.push(`${r.name.toString("hex")}/${r.ino}/${r.type}`);
        }
        off = e.x.dirIterateNextOffset();
      }
    }
    expect(dots).toBe(2);
    const want = listDir(L.d.img, "/big").map((l) => `${l.name.toString("hex")}/${l.ino}/${l.type}`);
    expect(seen.sort()).toEqual(want.sort());
    // And the types are the ones the source tree has.
    for (const l of listDir(L.d.img, "/big")) {
      const t = bigTypes.get(l.name.toString("hex"));
      if (t !== undefined) expect(l.type).toBe(t);
    }
  });

  if (idx === 0) {
    it("survives hundreds of seeded mutations of its root and node blocks", () => mutateIndex(L));
  }
});

// ── hash collisions: the continuation bit ───────────────────────────────────────────────

/**
 * Pairs of distinct 255-byte ASCII names with the same legacy hash, found by brute force
 * with a few-line transcription of the legacy hash (checked against debugfs below). A
 * 1 KiB leaf holds three 264-byte entries, so e2fsck -D must split some pairs across two
 * leaves and mark the second leaf's index entry with the "continued" bit.
 */
function legacyCollisions(pairs: number): Buffer[][] {
  const stem = Buffer.from("c" + "y".repeat(250));
  let h0 = 0x12a3fe2d;
  let h1 = 0x37abe8f9;
  const step = (c: number) => {
    let h = (h1 + ((h0 ^ Math.imul(c, 7152373)) >>> 0)) >>> 0;
    if (h & 0x80000000) h = (h - 0x7fffffff) >>> 0;
    h1 = h0;
    h0 = h;
  };
  for (const c of stem) step(c);
  const s0 = h0;
  const s1 = h1;
  const alphabet = Buffer.from("abcdefghijklmnopqrstuvwxyz0123456789");
  const seen = new Map<number, number>();
  const out: Buffer[][] = [];
  const A = alphabet.length;
  for (let n = 0; n < A ** 4 && out.length < pairs; n++) {
    h0 = s0;
    h1 = s1;
    const tail = [alphabet[n % A], alphabet[Math.floor(n / A) % A], alphabet[Math.floor(n / A ** 2) % A], alphabet[Math.floor(n / A ** 3) % A]];
    for (const c of tail) step(c);
    const other = seen.get(h0);
    const name = (m: number) => Buffer.concat([stem, Buffer.from([alphabet[m % A], alphabet[Math.floor(m / A) % A], alphabet[Math.floor(m / A ** 2) % A], alphabet[Math.floor(m / A ** 3) % A]])]);
    if (other !== undefined) out.push([name(other), name(n)]);
    else seen.set(h0, n);
  }
  return out;
}

describe("hash collisions across leaves (legacy hash, continuation bit)", () => {
  let L: Loaded;
  let pairs: Buffer[][] = [];
  beforeAll(async () => {
    pairs = legacyCollisions(45);
    expect(pairs.length).toBe(45);
    const src = join(scratch.dir, "csrc");
    const names = [...pairs.flat(), ...awkwardNames(5, 150).map((n) => Buffer.concat([Buffer.from("z"), n]).subarray(0, 255))];
    populate(join(src, "big"), names);
    const img = join(scratch.dir, "coll.img");
    expect(await runStatus("mke2fs", ["-t", "ext4", "-F", "-q", "-b", "1024", "-d", src, img, "8M"])).toBe(0);
    expect(await runStatus("debugfs", ["-w", "-R", "ssv def_hash_version legacy", img])).toBe(0);
    expect(await runStatus("e2fsck", ["-fyD", img])).toBeLessThanOrEqual(1);
    expect(await runStatus("e2fsck", ["-fn", img])).toBe(0);
    const d = loadDir(img, "/big");
    L = {
      v: { label: "collisions", bs: 1024, mkfs: [], levels: 0, version: 0 }, d, ptr: put(d.data),
      seedPtr: put(d.sb.subarray(K.SB_HASH_SEED, K.SB_HASH_SEED + 16)),
      csum: (d.sb.readUInt32LE(K.SB_FEATURE_RO_COMPAT) & K.FEATURE_RO_COMPAT_METADATA_CSUM) !== 0,
      maxLevels: 2, version: 0,
    };
  }, 60_000);

  it("the pairs really collide, per debugfs and per dxHash", () => {
    const img = L.d.img;
    for (const [a, b] of pairs.slice(0, 5)) {
      const ha = /is (0x[0-9a-f]+)/.exec(tool("debugfs", ["-R", `dx_hash -h 0 ${a.toString()}`, img]))![1];
      const hb = /is (0x[0-9a-f]+)/.exec(tool("debugfs", ["-R", `dx_hash -h 0 ${b.toString()}`, img]))![1];
      expect(ha).toBe(hb);
    }
    for (const [a, b] of pairs) {
      const x = e.x.dxHash(put(a), 255, 0, 0) >>> 0;
      expect(e.x.dxHash(put(b), 255, 0, 0) >>> 0).toBe(x);
    }
  });

  it("finds both names of every pair, following continued leaves", () => {
    const dump = parseHtreeDump(tool("debugfs", ["-R", "htree /big", L.d.img]));
    const root = dump.blocks.get(0)!;
    const continued = root.entries.filter((en) => en.hash & 1).length;
    expect(continued).toBeGreaterThan(3);
    const listed = new Map(listDir(L.d.img, "/big").map((l) => [l.name.toString("hex"), l.ino]));
    let followed = 0;
    for (const n of pairs.flat()) {
      const got = walk(L, n);
      expect(got).not.toBeNull();
      expect(got!.ino).toBe(listed.get(n.toString("hex")));
      if (got!.leaves > 1) followed++;
    }
    expect(followed).toBeGreaterThanOrEqual(continued);
    // A name with a colliding hash that is not there walks the continued leaves and stops.
    const absent = legacyCollisions(60).slice(45).flat();
    for (const n of absent) expect(walk(L, n)).toBeNull();
  });
});

// ── hostile index blocks ─────────────────────────────────────────────────────────────────

/** The rules of a dx root / node, read literally from the format description. */
function refDxCheck(b: Uint8Array, bs: number, root: boolean, csum: boolean, maxLevels: number): number | null {
  const u16 = (o: number) => b[o] | (b[o + 1] << 8);
  const u32 = (o: number) => (u16(o) | (u16(o + 2) << 16)) >>> 0;
  let off: number;
  let levels = 0;
  if (root) {
    if (u32(0) === 0 || u16(4) !== 12 || b[6] !== 1 || b[8] !== 0x2e) return null;
    if (u32(12) === 0 || u16(16) !== bs - 12 || b[18] !== 2 || b[20] !== 0x2e || b[21] !== 0x2e) return null;
    if (u32(24) !== 0 || b[29] !== 8 || (b[31] & 1) !== 0) return null;
    if (b[28] > 2) return null;
    levels = b[30];
    if (levels >= maxLevels) return null;
    off = 32;
  } else {
    if (u32(0) !== 0 || u16(4) !== bs || b[6] !== 0) return null;
    off = 8;
  }
  const limit = u16(off);
  const count = u16(off + 2);
  const want = Math.floor((bs - off - (csum ? 8 : 0)) / 8);
  if (limit !== want || count === 0 || count > limit) return null;
  for (let i = 2; i < count; i++) if (u32(off + 8 * i) < u32(off + 8 * (i - 1))) return null;
  return levels;
}

function mutateIndex(L: Loaded) {
  const bs = L.d.blockSize;
  const f = e; // same instance: a trap would mark it failed and fail every later call
  const x = f.x;
  const originals: { bytes: Uint8Array; root: boolean }[] = [{ bytes: L.d.data.subarray(0, bs), root: true }];
  const nodeBlocks = new Set<number>();
  const cnt = x.dxCount(L.ptr, bs, K.DXR_ENTRIES);
  for (let i = 0; i < cnt; i++) nodeBlocks.add(x.dxEntryBlock(L.ptr, bs, K.DXR_ENTRIES, i) >>> 0);
  for (const nb of [...nodeBlocks].slice(0, 3)) {
    originals.push({ bytes: L.d.data.subarray(nb * bs, (nb + 1) * bs), root: false });
  }
  // Everything allocated first; then the block goes flush against the end of memory.
  const out = f.alloc(4096);
  const heapTop = x.memAlloc(16) + 16;
  const memEnd = x.memory.buffer.byteLength;
  const p = memEnd - bs;
  expect(heapTop).toBeLessThanOrEqual(p);

  const r = rng(2024);
  let valid = 0;
  let invalid = 0;
  for (let n = 0; n < 800; n++) {
    const o = pick(r, originals);
    const b = Uint8Array.from(o.bytes);
    const eo = o.root ? 32 : 8;
    const fields = o.root
      ? [4, 5, 6, 8, 16, 17, 18, 20, 24, 28, 29, 30, 31, eo, eo + 1, eo + 2, eo + 3]
      : [0, 4, 5, 6, eo, eo + 1, eo + 2, eo + 3];
    const flips = randInt(r, 1, 3);
    for (let k = 0; k < flips; k++) {
      const mode = randInt(r, 0, 3);
      if (mode === 0) b[pick(r, fields)] = randInt(r, 0, 255);
      else if (mode === 1) b[pick(r, fields)] ^= 1 << randInt(r, 0, 7);
      else if (mode === 2) b[eo + 8 * randInt(r, 1, 20) + randInt(r, 0, 3)] = randInt(r, 0, 255); // a hash byte
      else b[randInt(r, 0, bs - 1)] = randInt(r, 0, 255);
    }
    if (r() < 0.1) b[30] = 2; // indirect_levels 2: legal only with largedir
    f.u8.set(b, p);
    const maxLevels = r() < 0.5 ? 2 : 3;
    const want = refDxCheck(b, bs, o.root, L.csum, maxLevels);
    const got = f.call(() => (o.root ? x.dxRootCheck(p, bs, L.csum, maxLevels) : x.dxNodeCheck(p, bs, L.csum)));
    if (want === null) {
      expect(got).toBeLessThan(0);
      invalid++;
    } else {
      expect(got).toBe(want);
      valid++;
    }
    // Searches and accessors return normally whatever the block holds.
    for (let q = 0; q < 8; q++) {
      const h = r() < 0.5 ? (r() * 2 ** 32) >>> 0 : (b[eo + 8 + 0] | (b[eo + 9] << 8) | (b[eo + 10] << 16) | (b[eo + 11] << 24)) >>> 0;
      const count = f.call(() => x.dxCount(p, bs, eo));
      const i = f.call(() => x.dxFind(p, bs, eo, h));
      if (count < 0) {
        expect(i).toBe(count);
      } else {
        expect(i).toBeGreaterThanOrEqual(0);
        expect(i).toBeLessThan(count);
        if (want !== null) {
          // A valid block searches like the obvious linear scan.
          let lin = 0;
          for (let j = 1; j < count; j++) if ((x.dxEntryHash(p, bs, eo, j) >>> 0) <= h) lin = j;
          expect(i).toBe(lin);
        }
      }
      const idx = randInt(r, 0, 70000);
      f.call(() => x.dxEntryBlock(p, bs, eo, idx));
      f.call(() => x.dxEntryHash(p, bs, eo, idx));
      f.call(() => x.dxContinues(p, bs, eo, idx % 300, h));
      // Index blocks seen by a linear reader.
      f.call(() => x.dirBlockCheck(p, bs, L.csum));
      f.call(() => x.dirIterate(p, bs, 0, out, 4096, L.csum, true));
    }
  }
  expect(valid).toBeGreaterThan(50);
  expect(invalid).toBeGreaterThan(300);
}

describe("dxFind and dxContinues on synthetic index blocks", () => {
  it("agree with a linear scan and the continuation rule", () => {
    const bs = 1024;
    const blk = e.alloc(bs);
    const r = rng(5);
    for (let t = 0; t < 400; t++) {
      const b = new Uint8Array(bs);
      const dv = new DataView(b.buffer);
      const count = randInt(r, 1, 126);
      dv.setUint32(0, 0, true);
      dv.setUint16(4, bs, true);
      dv.setUint16(8, 126, true);
      dv.setUint16(10, count, true);
      // Sorted hashes with runs of duplicates and continued bits, as collisions make.
      const hashes = [0];
      let h = randInt(r, 0, 1000);
      for (let i = 1; i < count; i++) {
        if (r() < 0.7) h += randInt(r, 1, 2 ** 24);
        hashes.push(Math.min(h, 0xffffffff) >>> 0 | (r() < 0.3 ? 1 : 0));
      }
      for (let i = 1; i < count; i++) hashes[i] = Math.max(hashes[i], hashes[i - 1]);
      for (let i = 0; i < count; i++) {
        if (i > 0) dv.setUint32(8 + 8 * i, hashes[i], true);
        dv.setUint32(8 + 8 * i + 4, 1000 + i, true);
      }
      e.u8.set(b, blk);
      expect(e.x.dxNodeCheck(blk, bs, true)).toBe(0);
      for (let q = 0; q < 20; q++) {
        const target = (r() < 0.5 ? pick(r, hashes) & ~1 : (r() * 2 ** 32) >>> 0 & ~1) >>> 0;
        let want = 0;
        for (let i = 1; i < count; i++) if (hashes[i] <= target) want = i;
        const i = e.x.dxFind(blk, bs, K.DXN_ENTRIES, target);
        expect(i).toBe(want);
        expect(e.x.dxEntryBlock(blk, bs, K.DXN_ENTRIES, i) >>> 0).toBe(1000 + i);
        const c = e.x.dxContinues(blk, bs, K.DXN_ENTRIES, i, target);
        if (i + 1 === count) expect(c).toBe(K.DX_NEXT_UP);
        else expect(c).toBe(((hashes[i + 1] & ~1) >>> 0) === target ? K.DX_NEXT_FOLLOW : K.DX_NEXT_STOP);
      }
    }
  });

  it("reject bad arguments", () => {
    const blk = e.alloc(1024);
    expect(e.x.dxFind(blk, 1000, K.DXN_ENTRIES, 0)).toBe(K.DX_ERR_ARG);
    expect(e.x.dxFind(blk, 1024, 12, 0)).toBe(K.DX_ERR_ARG);
    expect(e.x.dxRootCheck(blk, 3000, true, 2)).toBe(K.DX_ERR_ARG);
    expect(e.x.dxNodeCheck(blk, 0, true)).toBe(K.DX_ERR_ARG);
    expect(e.x.dxMaxLevels(0)).toBe(2);
    expect(e.x.dxMaxLevels(0x4000)).toBe(3);
  });
});
