/**
 * Directory modification (bindings/fs/dir_write.ts over assembly/dir_mod.ts) on real
 * images, judged by e2fsprogs.
 *
 * Every scenario starts from an image made by mke2fs and populated by debugfs (the
 * directory /d, and target inodes: regular files, a symlink, a fifo, so entries carry
 * several file types), runs operations through a DirWriter with test stand-ins for block
 * allocation and the inode (dir-write-fixture.ts), keeps a model of the directory, and
 * then asks e2fsprogs:
 *   - e2fsck -fn exits 0: it checks every directory block, the htree (root and node
 *     limits and counts, hash order, that every leaf's names hash inside the range the
 *     index gives it, that every block is referenced once, tree depth), the leaf and
 *     index checksums, the directory's size and block count, the bitmaps and counts, and
 *     link counts (set from the model with debugfs before the check);
 *   - `debugfs ls -p` lists exactly the model's names with their inodes and types;
 *   - `debugfs htree` shows the expected number of index levels.
 * A negative control shows e2fsck does fail when one entry sits in the wrong leaf.
 *
 * Scenarios: thousands of random names (UTF-8, raw bytes, 1–255 bytes) added, a random
 * half removed, more added — with 1 KiB blocks (conversion to htree, leaf and node splits,
 * a second index level) and 4 KiB, with and without metadata_csum, without the filetype
 * feature; linear directories on volumes without dir_index; names whose hashes collide
 * (found by a birthday search) so leaf splits straddle equal hashes and set the
 * "continued" bit; a third level with large_dir and ENOSPC "directory index full"
 * without it; the rename primitives; rmdir's emptiness test; a new directory's first
 * block; and argument errors.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { MemoryDevice, mount } from "../../bindings/index.ts";
import { FsError } from "../../bindings/fs/errors.ts";
import { scratchDir, tool } from "./e2fs-oracle.ts";
import { awkwardNames, pick, rng } from "./dir-helpers.ts";
import {
  fsckImage, htreeLevels, inodeFlags, linkCounts, listing, makeSetup, withDir, writeOut, type ImageSpec, type Setup,
} from "./dir-write-image.ts";

let scratch: { dir: string; cleanup(): void };
beforeAll(() => {
  scratch = scratchDir("dir-write-");
});
afterAll(() => (process.env.KEEP_SCRATCH ? console.log("scratch", scratch.dir) : scratch?.cleanup()));

type Model = Map<string, [number, number]>;
const INDEX_FL = 0x1000;

/** Add names to /d (random targets), recording them in the model. */
async function addAll(s: Setup, model: Model, names: Buffer[], r: () => number, dirIno = s.inos.get("/d")!): Promise<void> {
  for (const n of names) {
    const t = pick(r, s.targets);
    await withDir(s, dirIno, (h, d) => s.writer.addEntry(h, d, n, t.ino, t.type));
    // debugfs ls -p derives the type from the inode's mode, whatever the entry says.
    model.set(n.toString("hex"), [t.ino, t.type]);
  }
}

/** Remove a random subset of the model's names (fraction of them). */
async function removeSome(s: Setup, model: Model, fraction: number, r: () => number, dirIno = s.inos.get("/d")!): Promise<void> {
  for (const key of [...model.keys()]) {
    if (r() >= fraction) continue;
    const want = model.get(key)![0];
    const got = await withDir(s, dirIno, (h, d) => s.writer.removeEntry(h, d, Buffer.from(key, "hex")));
    expect(got).toBe(want);
    model.delete(key);
  }
}

/** Write the image and check it with e2fsck and debugfs against the model. */
async function judge(s: Setup, model: Model, path = "/d"): Promise<void> {
  await writeOut(s, linkCounts(model));
  const f = fsckImage(s.img);
  if (f.status !== 0) console.error(f.out.slice(0, 4000));
  expect(f.status).toBe(0);
  const listed = listing(s.img, path);
  expect(listed.size).toBe(model.size);
  expect(listed).toEqual(model);
}

interface Variant {
  label: string;
  spec: ImageSpec;
  first: number;
  more: number;
  levels: number;
}

const HTREE: Variant[] = [
  { label: "1k-csum", spec: { blockSize: 1024, csum: true, dirIndex: true }, first: 3200, more: 1600, levels: 1 },
  { label: "1k-nocsum", spec: { blockSize: 1024, csum: false, dirIndex: true }, first: 3200, more: 1600, levels: 1 },
  { label: "4k-csum", spec: { blockSize: 4096, csum: true, dirIndex: true }, first: 3000, more: 1500, levels: 0 },
  { label: "4k-nocsum", spec: { blockSize: 4096, csum: false, dirIndex: true }, first: 3000, more: 1500, levels: 0 },
];

describe("htree directories", () => {
  for (const v of HTREE) {
    it(`${v.label}: ${v.first} names, half removed, ${v.more} more — e2fsck clean, listing exact, ${v.levels + 1} index level(s)`, async () => {
      const s = await makeSetup(scratch.dir, `htree-${v.label}`, v.spec);
      const r = rng(v.first + v.spec.blockSize);
      const names = awkwardNames(v.spec.blockSize + (v.spec.csum ? 1 : 0), v.first + v.more);
      const model: Model = new Map();
      await addAll(s, model, names.slice(0, v.first), r);
      await removeSome(s, model, 0.5, r);
      await addAll(s, model, names.slice(v.first), r);
      await judge(s, model);
      expect(htreeLevels(s.img, "/d")).toBe(v.levels);
      expect(inodeFlags(s.img, "/d") & INDEX_FL).toBe(INDEX_FL);
      // Our own read side finds every name through the index, and no removed one.
      const vol = await mount(MemoryDevice.from(new Uint8Array(readFileSync(s.img))), {});
      const dir = await vol.inodes.get(s.inos.get("/d")!);
      for (const [key, [ino]] of model) expect(await vol.dirs.lookup(dir, Buffer.from(key, "hex"))).toBe(ino);
      for (const n of names.slice(0, v.first)) if (!model.has(n.toString("hex"))) expect(await vol.dirs.lookup(dir, n)).toBe(0);
    });
  }

  it("converts a full one-block directory into a root and two leaves split by hash", async () => {
    const s = await makeSetup(scratch.dir, "convert", { blockSize: 1024, csum: true, dirIndex: true });
    const r = rng(3);
    const names = awkwardNames(31, 200);
    const model: Model = new Map();
    let i = 0;
    // Fill the single block; the add that does not fit converts.
    for (; i < names.length; i++) {
      await addAll(s, model, [names[i]!], r);
      const size = await withDir(s, s.inos.get("/d")!, async (_h, d) => d.inode.size);
      if (size > 1024) break;
    }
    expect(i).toBeGreaterThan(2);
    expect(i).toBeLessThan(names.length);
    await judge(s, model);
    expect(htreeLevels(s.img, "/d")).toBe(0);
    const dump = tool("debugfs", ["-R", "htree /d", s.img]);
    expect(/Number of entries \(count\): 2\n/.exec(dump)).not.toBeNull();
    const stat = tool("debugfs", ["-R", "stat /d", s.img]);
    expect(/Size: 3072\b/.exec(stat)).not.toBeNull();
  });

  it("without the filetype feature, entries carry no types", async () => {
    const s = await makeSetup(scratch.dir, "noft", { blockSize: 1024, csum: false, dirIndex: true, features: ["^filetype"] });
    expect(s.vol.sb.has("filetype")).toBe(false);
    const r = rng(9);
    const names = awkwardNames(909, 1500);
    const model: Model = new Map();
    await addAll(s, model, names, r);
    await removeSome(s, model, 0.3, r);
    // e2fsck insists on type 0 in every entry without the feature; ls -p derives the type
    // from the inode's mode, so it still lists the model's types.
    await judge(s, model);
    expect(htreeLevels(s.img, "/d")).toBe(1);
  });

  it("names with colliding hashes: splits straddle equal hashes (continued bit), all found and removable", async () => {
    const s = await makeSetup(scratch.dir, "collide", { blockSize: 1024, csum: true, dirIndex: true });
    const pairs = findCollisions(s, 1 << 19);
    expect(pairs.length).toBeGreaterThan(20);
    const r = rng(17);
    const filler = awkwardNames(1717, 2500).filter((b) => b.length > 100);
    const names = [...pairs.flat(), ...filler];
    // Shuffle so colliding names arrive at different times.
    for (let i = names.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [names[i], names[j]] = [names[j]!, names[i]!];
    }
    const model: Model = new Map();
    await addAll(s, model, names, r);
    await writeOut(s, linkCounts(model));
    const dump = tool("debugfs", ["-R", "htree /d", s.img]);
    const continued = [...dump.matchAll(/Hash 0x([0-9a-f]{8}), block/g)].filter((m) => parseInt(m[1]!, 16) & 1);
    expect(continued.length).toBeGreaterThan(0);
    // Remove every colliding name but one of each pair, through the continuation walk.
    for (const [a] of pairs) {
      const got = await withDir(s, s.inos.get("/d")!, (h, d) => s.writer.removeEntry(h, d, a));
      expect(got).toBe(model.get(a.toString("hex"))![0]);
      model.delete(a.toString("hex"));
    }
    await judge(s, model);
    const vol = await mount(MemoryDevice.from(new Uint8Array(readFileSync(s.img))), {});
    const dir = await vol.inodes.get(s.inos.get("/d")!);
    for (const [a, b] of pairs) {
      expect(await vol.dirs.lookup(dir, a)).toBe(0);
      expect(await vol.dirs.lookup(dir, b)).toBe(model.get(b.toString("hex"))![0]);
    }
  });

  it("negative control: e2fsck rejects an entry placed in a leaf outside its hash range", async () => {
    const s = await makeSetup(scratch.dir, "control", { blockSize: 1024, csum: true, dirIndex: true });
    const r = rng(4);
    const model: Model = new Map();
    await addAll(s, model, awkwardNames(404, 400), r);
    await judge(s, model);
    // Put one more name straight into the first leaf with the engine, bypassing the index.
    const x = s.vol.engine.x;
    await withDir(s, s.inos.get("/d")!, async (h, d) => {
      const ref = await h.getWriteAccess(d.mapBlock(1));
      const seed = s.vol.engine.alloc(16);
      s.vol.engine.u8.set(s.vol.sb.hashSeed, seed);
      const np = s.vol.engine.alloc(256);
      // A name hashing far above the first leaf's range.
      let name = Buffer.alloc(0);
      for (let k = 0; ; k++) {
        name = Buffer.from(`misplaced-${k}`);
        s.vol.engine.u8.set(name, np);
        if ((x.dxHash(np, name.length, 1, seed) >>> 0) > 0xc0000000) break;
      }
      expect(x.dirAddEntry(ref.ptr, 1024, np, name.length, s.targets[0]!.ino, 1, 1)).toBeGreaterThanOrEqual(0);
      x.dirBlockCsumSet(ref.ptr, d.inode.ino, d.inode.generation);
      h.dirty(ref);
      model.set(name.toString("hex"), [s.targets[0]!.ino, 1]);
    });
    await writeOut(s, linkCounts(model));
    const f = fsckImage(s.img);
    expect(f.status).not.toBe(0);
    expect(f.out).toMatch(/HTREE|hash/i);
  });
});

describe("large directories", () => {
  it("a third index level with large_dir; ENOSPC 'directory index full' without it", async () => {
    const names = longNames(36000);
    const grown = await makeSetup(scratch.dir, "large", { blockSize: 1024, csum: true, dirIndex: true, largeDir: true, mib: 96 });
    const full = await makeSetup(scratch.dir, "full", { blockSize: 1024, csum: true, dirIndex: true, mib: 96 });
    const r = rng(36);
    const mGrown: Model = new Map();
    const mFull: Model = new Map();
    let refused: unknown;
    for (const n of names) {
      const t = pick(r, full.targets);
      await withDir(grown, grown.inos.get("/d")!, (h, d) => grown.writer.addEntry(h, d, n, t.ino, t.type));
      mGrown.set(n.toString("hex"), [t.ino, t.type]);
      if (refused) continue;
      try {
        await withDir(full, full.inos.get("/d")!, (h, d) => full.writer.addEntry(h, d, n, t.ino, t.type));
        mFull.set(n.toString("hex"), [t.ino, t.type]);
      } catch (e) {
        refused = e;
      }
    }
    expect(refused).toBeInstanceOf(FsError);
    expect((refused as FsError).code).toBe("ENOSPC");
    expect((refused as FsError).message).toMatch(/directory index full/);
    await judge(grown, mGrown);
    expect(htreeLevels(grown.img, "/d")).toBe(2);
    await judge(full, mFull);
    expect(htreeLevels(full.img, "/d")).toBe(1);
  });
});

describe("linear directories (no dir_index)", () => {
  for (const csum of [true, false]) {
    it(`${csum ? "with" : "without"} metadata_csum: add, remove half, add — e2fsck clean, never indexed`, async () => {
      const s = await makeSetup(scratch.dir, `linear-${csum}`, { blockSize: 1024, csum, dirIndex: false });
      const r = rng(csum ? 1 : 2);
      const names = awkwardNames(csum ? 5 : 6, 1200);
      const model: Model = new Map();
      await addAll(s, model, names.slice(0, 800), r);
      await removeSome(s, model, 0.5, r);
      await addAll(s, model, names.slice(800), r);
      await judge(s, model);
      expect(htreeLevels(s.img, "/d")).toBe(-1);
      expect(inodeFlags(s.img, "/d") & INDEX_FL).toBe(0);
    });
  }

  it("a multi-block linear directory on a dir_index volume stays linear", async () => {
    const s = await makeSetup(scratch.dir, "expanded", { blockSize: 1024, csum: true, dirIndex: true, expandTo: 3 });
    const size = await withDir(s, s.inos.get("/d")!, async (_h, d) => d.inode.size);
    expect(size).toBe(3072);
    const r = rng(14);
    const model: Model = new Map();
    await addAll(s, model, awkwardNames(14, 500), r);
    await removeSome(s, model, 0.4, r);
    await judge(s, model);
    expect(htreeLevels(s.img, "/d")).toBe(-1);
    expect(inodeFlags(s.img, "/d") & INDEX_FL).toBe(0);
  });

  it("reuses freed space before growing", async () => {
    const s = await makeSetup(scratch.dir, "reuse", { blockSize: 1024, csum: true, dirIndex: false });
    const r = rng(12);
    const names = awkwardNames(12, 600);
    const model: Model = new Map();
    await addAll(s, model, names.slice(0, 300), r);
    const size = async () => withDir(s, s.inos.get("/d")!, async (_h, d) => d.inode.size);
    const before = await size();
    await removeSome(s, model, 1, r);
    await addAll(s, model, names.slice(0, 300), r);
    expect(await size()).toBe(before);
    await judge(s, model);
  });
});

describe("rename primitives, emptiness, new directories", () => {
  for (const indexed of [false, true]) {
    it(`moves a directory between ${indexed ? "indexed" : "linear"} parents: add, remove, replace, '..'`, async () => {
      const s = await makeSetup(scratch.dir, `rename-${indexed}`, { blockSize: 1024, csum: true, dirIndex: true }, ["a", "b", "a/sub", "a/sub2"]);
      const [a, b, sub, sub2] = ["/a", "/b", "/a/sub", "/a/sub2"].map((p) => s.inos.get(p)!);
      const r = rng(21);
      const model: Model = new Map();
      if (indexed) await addAll(s, model, awkwardNames(2121, 600), r, b);
      // mv /a/sub /b/moved
      const moved = Buffer.from("moved");
      await withDir(s, b!, (h, d) => s.writer.addEntry(h, d, moved, sub!, 2));
      expect(await withDir(s, a!, (h, d) => s.writer.removeEntry(h, d, Buffer.from("sub")))).toBe(sub);
      expect(await withDir(s, sub!, (h, d) => s.writer.setDotDot(h, d, b!))).toBe(a);
      model.set(moved.toString("hex"), [sub!, 2]);
      // mv /a/sub2 /b/moved: replace the target in place; sub's entry goes away.
      expect(await withDir(s, b!, (h, d) => s.writer.replaceEntry(h, d, moved, sub2!, 2))).toBe(sub);
      expect(await withDir(s, a!, (h, d) => s.writer.removeEntry(h, d, Buffer.from("sub2")))).toBe(sub2);
      expect(await withDir(s, sub2!, (h, d) => s.writer.setDotDot(h, d, b!))).toBe(a);
      model.set(moved.toString("hex"), [sub2!, 2]);
      // sub is now unreachable: give its name back in /b (as the rename's undo would).
      await withDir(s, b!, (h, d) => s.writer.addEntry(h, d, Buffer.from("sub"), sub!, 2));
      model.set(Buffer.from("sub").toString("hex"), [sub!, 2]);
      // Link counts: /a lost two subdirectories, /b gained two.
      await writeOut(s, linkCounts(new Map([...model].filter(([, [ino]]) => ino !== sub && ino !== sub2))));
      tool("debugfs", ["-w", "-f", "-", s.img], `sif <${a}> links_count 2\nsif <${b}> links_count 4\n`);
      const f = fsckImage(s.img);
      if (f.status !== 0) console.error(f.out.slice(0, 3000));
      expect(f.status).toBe(0);
      expect(listing(s.img, "/b")).toEqual(model);
      expect(listing(s.img, "/a").size).toBe(0);
      expect(tool("debugfs", ["-R", "ls -p /b/moved", s.img])).toMatch(new RegExp(`^/${b}/040755/0/0/\\.\\./`, "m"));
      expect(htreeLevels(s.img, "/b")).toBe(indexed ? 0 : -1);
    });
  }

  it("isEmpty: true for '.' and '..' only, false with one entry, true again once every entry is removed", async () => {
    const s = await makeSetup(scratch.dir, "empty", { blockSize: 1024, csum: true, dirIndex: true });
    const d = s.inos.get("/d")!;
    const empty = () => withDir(s, d, (h, dir) => s.writer.isEmpty(dir, h));
    expect(await empty()).toBe(true);
    expect(await withDir(s, d, async (_h, dir) => s.writer.isEmpty(dir))).toBe(true);
    const model: Model = new Map();
    const r = rng(8);
    await addAll(s, model, [Buffer.from("x")], r);
    expect(await empty()).toBe(false);
    await removeSome(s, model, 1, r);
    expect(await empty()).toBe(true);
    // An htree directory emptied of 2000 names (its leaves and nodes stay) is empty too.
    await addAll(s, model, awkwardNames(88, 2000), r);
    expect(await empty()).toBe(false);
    const lastKey = [...model.keys()].pop()!;
    const last = model.get(lastKey)!;
    model.delete(lastKey);
    await removeSome(s, model, 1, r);
    model.set(lastKey, last);
    expect(await empty()).toBe(false);
    await removeSome(s, model, 1, r);
    expect(await empty()).toBe(true);
    await judge(s, model);
    expect(htreeLevels(s.img, "/d")).toBe(1);
  });

  it("initDirectory writes a first block e2fsck accepts", async () => {
    for (const csum of [true, false]) {
      const s = await makeSetup(scratch.dir, `init-${csum}`, { blockSize: 4096, csum, dirIndex: true }, ["e"]);
      const e = s.inos.get("/e")!;
      await withDir(s, e, async (h, d) => {
        await d.truncateAll(h);
        await s.writer.initDirectory(h, d, e, 2);
        expect(d.inode.size).toBe(4096);
      });
      const model: Model = new Map();
      await addAll(s, model, [Buffer.from("child")], rng(1), e);
      await judge(s, model, "/e");
      const raw = tool("debugfs", ["-R", "ls -p /e", s.img]);
      expect(raw).toMatch(new RegExp(`^/${e}/040755/0/0/\\./`, "m"));
      expect(raw).toMatch(/^\/2\/040755\/0\/0\/\.\.\//m);
      // Twice is refused: the directory already has a block.
      await expect(withDir(s, e, (h, d) => s.writer.initDirectory(h, d, e, 2))).rejects.toMatchObject({ code: "EINVAL" });
    }
  });

  it("argument errors: names, inode numbers, types, absent and duplicate names", async () => {
    const s = await makeSetup(scratch.dir, "errors", { blockSize: 1024, csum: true, dirIndex: true });
    const d = s.inos.get("/d")!;
    const t = s.targets[0]!;
    const add = (n: Uint8Array, ino = t.ino, ft = 1) => withDir(s, d, (h, dir) => s.writer.addEntry(h, dir, n, ino, ft));
    await expect(add(new Uint8Array(0))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(new Uint8Array(256).fill(0x61))).rejects.toMatchObject({ code: "ENAMETOOLONG" });
    await expect(add(Buffer.from("a/b"))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from("a\0b"))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from("."))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from(".."))).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from("ok"), 0)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from("ok"), s.vol.sb.inodesCount + 1)).rejects.toMatchObject({ code: "EINVAL" });
    await expect(add(Buffer.from("ok"), t.ino, 8)).rejects.toMatchObject({ code: "EINVAL" });
    await add(new Uint8Array(255).fill(0x62));
    await add(Buffer.from("dup"));
    await expect(add(Buffer.from("dup"))).rejects.toMatchObject({ code: "EEXIST" });
    await expect(withDir(s, d, (h, dir) => s.writer.removeEntry(h, dir, Buffer.from("nope")))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(withDir(s, d, (h, dir) => s.writer.replaceEntry(h, dir, Buffer.from("nope"), t.ino, 1))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(withDir(s, d, (h, dir) => s.writer.removeEntry(h, dir, Buffer.from("..")))).rejects.toMatchObject({ code: "EINVAL" });
    const model: Model = new Map([
      [Buffer.alloc(255, 0x62).toString("hex"), [t.ino, 1]],
      [Buffer.from("dup").toString("hex"), [t.ino, 1]],
    ]);
    await judge(s, model);
  });
});

// ── helpers ──────────────────────────────────────────────────────────────────────────────

/** `count` distinct 255-byte ASCII names (the fewest entries per leaf, the most leaves). */
function longNames(count: number): Buffer[] {
  const r = rng(255);
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from({ length: count }, (_, i) => {
    const head = `L${i}-`;
    let tail = "";
    while (tail.length < 255 - head.length) tail += alphabet[Math.floor(r() * alphabet.length)];
    return Buffer.from(head + tail);
  });
}

/**
 * Pairs of distinct long names with equal major hashes under the volume's hash (root
 * version = s_def_hash_version, made unsigned by s_flags, seeded by s_hash_seed): a
 * birthday search over `tries` candidates.
 */
function findCollisions(s: Setup, tries: number): [Buffer, Buffer][] {
  const e = s.vol.engine;
  const x = e.x;
  const version = x.dxEffectiveHashVersion(s.vol.sb.defHashVersion, s.vol.sb.flags) >>> 0;
  const seed = e.alloc(16);
  const np = e.alloc(256);
  e.u8.set(s.vol.sb.hashSeed, seed);
  const pad = "_".repeat(180);
  const seen = new Map<number, number>();
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i < tries; i++) {
    const name = Buffer.from(`c${i}${pad}`);
    e.u8.set(name, np);
    const hash = x.dxHash(np, name.length, version, seed) >>> 0;
    const j = seen.get(hash);
    if (j !== undefined) pairs.push([Buffer.from(`c${j}${pad}`), name]);
    else seen.set(hash, i);
  }
  return pairs;
}
