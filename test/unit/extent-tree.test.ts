/**
 * Extent-tree modification (assembly/extents_mod.ts + bindings/fs/extent_tree.ts).
 *
 * Oracles:
 *  - engine steps on hand-built nodes, with answers that follow from the on-disk format
 *    by plain arithmetic (merges, the 32768 / 32767 limits, splits, reason codes), and
 *    seeded hostile nodes that must yield codes without a trap or a write outside the node;
 *  - whole trees on images made by mke2fs/debugfs: after each phase the inode and
 *    bitmaps are written back and `debugfs ex` must list exactly the mapping of a
 *    per-block JS model (in canonical form: maximal contiguous runs), no leaf may hold two
 *    extents that could have been merged, and `e2fsck -fn` must exit 0 — which it only does
 *    if the tree is valid, i_blocks counts data + tree blocks, and the bitmaps (kept by
 *    the stand-in allocator from the tree's own alloc/free calls) equal what the tree
 *    references: a leaked or dangling tree block fails it;
 *  - depth 5 (reachable only with a test cap on eh_max, which e2fsck refuses): the read
 *    walker (bmap.ts, written separately) must agree with the model block by block, and
 *    e2fsck must pass once the tree has shrunk back to empty.
 */
import { afterAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { MemoryDevice, mount } from "../../bindings/index.ts";
import { Engine } from "../../bindings/wasm.ts";
import type { Volume } from "../../bindings/fs/volume.ts";
import type { Inode } from "../../bindings/fs/inode.ts";
import { CacheHandle, type Handle } from "../../bindings/journal/handle.ts";
import { ExtentTree, type ExtentRoot, type ExtentTreeOptions } from "../../bindings/fs/extent_tree.ts";
import { FsError } from "../../bindings/fs/errors.ts";
import { pick, rng } from "./blockmap-oracle.ts";
import {
  canonical, debugfsEx, exLeaves, makeTreeImage, MapModel, mergeablePairs, type Run, runStatus, syncSuperFree,
  TestAllocator, type TreeImage, writeInode, readImage,
} from "./extent-tree-helpers.ts";

const LIMIT = 2 ** 32;
const cleanups: (() => void)[] = [];
afterAll(() => cleanups.forEach((f) => f()));

// ── engine steps on hand-built nodes ──────────────────────────────────────────────────

type E = [lblk: number, len: number, phys: number, unw?: boolean];

describe("extent tree engine steps", async () => {
  const e = await Engine.create();
  const x = e.x;
  const C = (n: string) => e.constant(n);
  const FULL = C("EXT_MOD_FULL");
  const OVERLAP = C("EXT_MOD_OVERLAP");
  const ARG = C("EXT_MOD_ARG");
  const scratchBytes = x.extModScratchBytes(4096) >>> 0;
  const scr = e.alloc(scratchBytes);
  x.extModSetScratch(scr, scratchBytes);
  const GUARD = 64;
  const buf = e.alloc(4096 + 2 * GUARD);
  const node = buf + GUARD;
  const buf2 = e.alloc(4096 + 2 * GUARD);
  const node2 = buf2 + GUARD;

  function put(ptr: number, size: number, depth: number, items: E[] | [number, number][], max?: number): void {
    const u8 = e.u8;
    u8.fill(0, ptr, ptr + size);
    const dv = e.dv;
    dv.setUint16(ptr, 0xf30a, true);
    dv.setUint16(ptr + 2, items.length, true);
    dv.setUint16(ptr + 4, max ?? (size === 60 ? 4 : Math.floor((size - 12) / 12)), true);
    dv.setUint16(ptr + 6, depth, true);
    items.forEach((it, i) => {
      const p = ptr + 12 + 12 * i;
      dv.setUint32(p, it[0], true);
      if (depth > 0) {
        dv.setUint32(p + 4, it[1] % 2 ** 32, true);
        dv.setUint16(p + 8, Math.floor(it[1] / 2 ** 32), true);
      } else {
        const [, len, phys, unw] = it as E;
        dv.setUint16(p + 4, unw ? len + 32768 : len, true);
        dv.setUint16(p + 6, Math.floor(phys / 2 ** 32), true);
        dv.setUint32(p + 8, phys % 2 ** 32, true);
      }
    });
  }
  function leaf(ptr: number): E[] {
    const dv = e.dv;
    const n = dv.getUint16(ptr + 2, true);
    const out: E[] = [];
    for (let i = 0; i < n; i++) {
      const p = ptr + 12 + 12 * i;
      const raw = dv.getUint16(p + 4, true);
      out.push([dv.getUint32(p, true), raw > 32768 ? raw - 32768 : raw, dv.getUint16(p + 6, true) * 2 ** 32 + dv.getUint32(p + 8, true), raw > 32768]);
    }
    return out;
  }
  function index(ptr: number): [number, number][] {
    const dv = e.dv;
    const n = dv.getUint16(ptr + 2, true);
    const out: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      const p = ptr + 12 + 12 * i;
      out.push([dv.getUint32(p, true), dv.getUint16(p + 8, true) * 2 ** 32 + dv.getUint32(p + 4, true)]);
    }
    return out;
  }
  const norm = (l: E[]) => l.map(([a, b, c, d]) => [a, b, c, !!d]);

  it("inserts in order and merges with the left, right or both neighbours", () => {
    put(node, 60, 0, []);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 10, 1010, 5, 0)).toBe(0);
    expect(x.extModFirstChanged()).toBe(1);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 30, 5000, 2, 0)).toBe(1);
    expect(x.extModFirstChanged()).toBe(0);
    // Left merge: [10,15)@1010 + [15,17)@1015.
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 15, 1015, 2, 0)).toBe(0);
    expect(x.extModMerges()).toBe(1);
    expect(norm(leaf(node))).toEqual([[10, 7, 1010, false], [30, 2, 5000, false]]);
    // Right merge at entry 0 moves the first key.
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 8, 1008, 2, 0)).toBe(0);
    expect(x.extModFirstChanged()).toBe(1);
    expect(x.extModFirstKey() >>> 0).toBe(8);
    expect(norm(leaf(node))).toEqual([[8, 9, 1008, false], [30, 2, 5000, false]]);
    // Both: [17,30) physically 1017.. joins [8,17) and [30,32)? 5000 ≠ 1030, so only left.
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 17, 1017, 13, 0)).toBe(0);
    expect(norm(leaf(node))).toEqual([[8, 22, 1008, false], [30, 2, 5000, false]]);
    put(node, 60, 0, [[0, 4, 100], [6, 4, 106]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 4, 104, 2, 0)).toBe(0);
    expect(x.extModMerges()).toBe(2);
    expect(norm(leaf(node))).toEqual([[0, 10, 100, false]]);
  });

  it("never merges across states or past 32768 written / 32767 unwritten blocks", () => {
    put(node, 60, 0, [[0, 4, 100, true]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 4, 104, 1, 0)).toBe(1);
    expect(norm(leaf(node))).toEqual([[0, 4, 100, true], [4, 1, 104, false]]);
    put(node, 60, 0, [[0, 32767, 100]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 32767, 32867, 1, 0)).toBe(0);
    expect(norm(leaf(node))).toEqual([[0, 32768, 100, false]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 32768, 32868, 1, 0)).toBe(1);
    expect(leaf(node).length).toBe(2);
    put(node, 60, 0, [[0, 32766, 100, true]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 32766, 32866, 1, 1)).toBe(0);
    expect(norm(leaf(node))).toEqual([[0, 32767, 100, true]]);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 32767, 32867, 1, 1)).toBe(1);
    expect(leaf(node).length).toBe(2);
    // Length limits of the inserted extent itself.
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 70000, 1, 32768, 1)).toBe(ARG);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 70000, 1, 0, 0)).toBe(ARG);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 70000, 2 ** 48, 1, 0)).toBe(ARG);
  });

  it("refuses overlaps, ranges past the leaf's bound, and a full leaf (unchanged)", () => {
    put(node, 60, 0, [[0, 4, 100], [10, 4, 200], [20, 4, 300], [30, 4, 400]]);
    const before = e.u8.slice(node, node + 60);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 3, 900, 1, 0)).toBe(OVERLAP);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 8, 900, 3, 0)).toBe(OVERLAP);
    expect(x.extLeafInsert(node, 60, 40, 38, 900, 3, 0)).toBe(OVERLAP);
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 5, 900, 1, 0)).toBe(FULL);
    expect(x.extModPos()).toBe(1);
    expect(e.u8.slice(node, node + 60)).toEqual(before);
    // A merge needs no slot, even in a full leaf.
    expect(x.extLeafInsert(node, 60, 2 ** 32 - 1, 4, 104, 2, 0)).toBe(0);
    expect(leaf(node)[0]).toEqual([0, 6, 100, false]);
  });

  it("removes ranges: whole extents, trimmed edges, a punch that splits one extent", () => {
    put(node, 60, 0, [[0, 10, 100], [20, 10, 200, true], [40, 10, 300]]);
    // Punch [3,5) of the first: split in two, frees 103..104.
    expect(x.extLeafRemove(node, 60, 3, 5)).toBe(4);
    expect(x.extModFreedCount()).toBe(1);
    expect([x.extModFreedPhys(0), x.extModFreedLen(0)]).toEqual([103, 2]);
    expect(norm(leaf(node))).toEqual([[0, 3, 100, false], [5, 5, 105, false], [20, 10, 200, true], [40, 10, 300, false]]);
    // Full leaf: another split is refused, nothing freed or changed.
    const before = e.u8.slice(node, node + 60);
    expect(x.extLeafRemove(node, 60, 22, 23)).toBe(FULL);
    expect(x.extModFreedCount()).toBe(0);
    expect(e.u8.slice(node, node + 60)).toEqual(before);
    // [1, 45): trims the front piece's tail, drops two, trims the last's head.
    expect(x.extLeafRemove(node, 60, 1, 45)).toBe(2);
    expect(x.extModFreedBlocks()).toBe(2 + 5 + 10 + 5);
    expect(norm(leaf(node))).toEqual([[0, 1, 100, false], [45, 5, 305, false]]);
    // Removing the front moves the first key.
    expect(x.extLeafRemove(node, 60, 0, 46)).toBe(1);
    expect(x.extModFirstChanged()).toBe(1);
    expect(x.extModFirstKey() >>> 0).toBe(46);
    expect(x.extLeafRemove(node, 60, 0, 2 ** 32)).toBe(0);
    expect(x.extModFreedBlocks()).toBe(4);
  });

  it("converts sub-ranges (up to three pieces) and merges the converted pieces", () => {
    put(node, 60, 0, [[0, 100, 1000, true]]);
    expect(x.extLeafConvert(node, 60, 10, 20, 0)).toBe(3);
    expect(x.extModConverted()).toBe(10);
    expect(norm(leaf(node))).toEqual([[0, 10, 1000, true], [10, 10, 1010, false], [20, 80, 1020, true]]);
    expect(x.extLeafConvert(node, 60, 20, 30, 0)).toBe(3);
    expect(x.extModMerges()).toBe(1);
    expect(norm(leaf(node))).toEqual([[0, 10, 1000, true], [10, 20, 1010, false], [30, 70, 1030, true]]);
    expect(x.extLeafConvert(node, 60, 0, 10, 0)).toBe(2);
    expect(x.extLeafConvert(node, 60, 30, 100, 0)).toBe(1);
    expect(norm(leaf(node))).toEqual([[0, 100, 1000, false]]);
    // Back to unwritten in the middle (ZERO_RANGE), then nothing to do twice.
    expect(x.extLeafConvert(node, 60, 40, 50, 1)).toBe(3);
    expect(x.extLeafConvert(node, 60, 40, 50, 1)).toBe(3);
    expect(x.extModConverted()).toBe(0);
    expect(x.extModChanged()).toBe(0);
    // A written extent of 32768 becomes 32767 + 1 unwritten.
    put(node, 60, 0, [[0, 32768, 1000]]);
    expect(x.extLeafConvert(node, 60, 0, 32768, 1)).toBe(2);
    expect(norm(leaf(node))).toEqual([[0, 32767, 1000, true], [32767, 1, 33767, true]]);
    // Full root: a 3-way split does not fit.
    put(node, 60, 0, [[0, 10, 100, true], [20, 10, 200], [40, 10, 300], [60, 10, 400]]);
    expect(x.extLeafConvert(node, 60, 2, 4, 0)).toBe(FULL);
    // … but a conversion that merges into its written neighbour fits.
    put(node, 60, 0, [[0, 10, 100], [10, 10, 110, true], [40, 10, 300], [60, 10, 400]]);
    expect(x.extLeafConvert(node, 60, 10, 12, 0)).toBe(4);
    expect(norm(leaf(node))).toEqual([[0, 12, 100, false], [12, 8, 112, true], [40, 10, 300, false], [60, 10, 400, false]]);
    expect(x.extModMerges()).toBe(1);
  });

  it("splits, grows the root, appends and compacts", () => {
    const items: E[] = [];
    for (let i = 0; i < 84; i++) items.push([i * 10, 2, 1000 + i * 10]);
    put(node, 1024, 0, items);
    expect(x.extNodeRoom(node, 1024)).toBe(0);
    expect(x.extNodeSplit(node, 1024, node2, 1024, 42)).toBe(42);
    expect(x.extModFirstKey() >>> 0).toBe(420);
    expect(leaf(node)).toEqual(items.slice(0, 42).map(([a, b, c]) => [a, b, c, false]));
    expect(leaf(node2)).toEqual(items.slice(42).map(([a, b, c]) => [a, b, c, false]));
    expect(e.dv.getUint16(node2 + 4, true)).toBe(84);
    expect(x.extNodeSplit(node, 1024, node2, 1024, 0)).toBe(ARG);
    expect(x.extNodeSplit(node, 60, node2, 1024, 1)).toBe(ARG);
    // Grow: root of 4 extents → one index entry at depth 1.
    put(node, 60, 0, [[5, 1, 50], [7, 1, 70], [9, 1, 90], [11, 1, 110]]);
    expect(x.extRootGrow(node, node2, 1024, 777, 0)).toBe(1);
    expect(index(node)).toEqual([[5, 777]]);
    expect(e.dv.getUint16(node + 6, true)).toBe(1);
    expect(leaf(node2).map((l) => l[0])).toEqual([5, 7, 9, 11]);
    put(node, 60, 5, [[0, 9]]);
    expect(x.extRootGrow(node, node2, 1024, 777, 0)).toBe(C("EXT_MOD_DEPTH"));
    // Index insert / remove / key update keep keys strictly ordered.
    put(node, 1024, 1, [[0, 10], [100, 11]]);
    expect(x.extIndexInsert(node, 1024, 50, 12)).toBe(1);
    expect(x.extIndexInsert(node, 1024, 50, 13)).toBe(OVERLAP);
    expect(x.extIndexSetKey(node, 1024, 1, 100)).toBe(C("EXT_ERR_ORDER"));
    expect(x.extIndexSetKey(node, 1024, 1, 60)).toBe(0);
    expect(x.extIndexRemove(node, 1024, 0)).toBe(2);
    expect(x.extModFirstChanged()).toBe(1);
    expect(index(node)).toEqual([[60, 12], [100, 11]]);
    // Append two leaves into an empty root, then compact the seam.
    put(node, 60, 0, []);
    put(node2, 1024, 0, [[0, 2, 500], [2, 2, 502]]);
    expect(x.extNodeAppend(node, 60, node2, 1024)).toBe(2);
    put(node2, 1024, 0, [[4, 1, 504, true]]);
    expect(x.extNodeAppend(node, 60, node2, 1024)).toBe(3);
    expect(x.extNodeAppend(node, 60, node2, 1024)).toBe(C("EXT_ERR_ORDER"));
    expect(x.extLeafCompact(node, 60)).toBe(2);
    expect(norm(leaf(node))).toEqual([[0, 4, 500, false], [4, 1, 504, true]]);
  });

  it("hostile nodes give codes, never a trap or a write outside the node", () => {
    const r = rng(77);
    const sizes = [60, 1024, 4096];
    for (let iter = 0; iter < 3000; iter++) {
      const size = sizes[iter % 3];
      const u8 = e.u8;
      for (let i = 0; i < size + 2 * GUARD; i++) u8[buf + i] = 0xa5;
      for (let i = 0; i < size; i++) u8[node + i] = Math.floor(r() * 256);
      // Keep a plausible header often, so the entry loops run.
      if (r() < 0.7) {
        e.dv.setUint16(node, 0xf30a, true);
        e.dv.setUint16(node + 2, Math.floor(r() * 6), true);
        e.dv.setUint16(node + 4, Math.floor(r() * 8), true);
        e.dv.setUint16(node + 6, Math.floor(r() * 3), true);
      }
      const a = Math.floor(r() * 2 ** 32);
      const b = Math.floor(r() * 2 ** 32);
      const calls = [
        () => x.extLeafInsert(node, size, 2 ** 32 - 1, a, b, 1 + (a % 40000), a & 1),
        () => x.extLeafRemove(node, size, a, b + 1),
        () => x.extLeafConvert(node, size, a, b + 1, b & 1),
        () => x.extIndexInsert(node, size, a, b),
        () => x.extIndexRemove(node, size, a % 8),
        () => x.extIndexSetKey(node, size, a % 8, b),
        () => x.extLeafCompact(node, size),
        () => x.extNodeRoom(node, size),
        () => x.extRootGrow(node, node2, 1024, b, 0),
        () => x.extNodeSplit(node, size, node2, 1024, a % 8),
      ];
      const rc = e.call(calls[iter % calls.length]) as number;
      expect(typeof rc).toBe("number");
      const after = e.u8;
      let clobbered = 0;
      for (let i = 0; i < GUARD; i++) {
        if (after[buf + i] !== 0xa5) clobbered++;
        if (after[node + size + i] !== 0xa5) clobbered++;
      }
      expect(clobbered).toBe(0);
    }
  });
});

// ── whole trees on real images ────────────────────────────────────────────────────────

class Ctx {
  readonly model = new MapModel();
  readonly iblock: Uint8Array;
  treeBlocks = 0;
  checkpoints = 0;
  readonly hints: string[] = [];
  private readonly superScratch: number;
  tree!: ExtentTree;

  private constructor(
    readonly t: TreeImage,
    readonly dev: MemoryDevice,
    readonly vol: Volume,
    readonly alloc: TestAllocator,
    readonly generation: number,
    iblock: Uint8Array,
  ) {
    this.iblock = iblock;
    this.superScratch = vol.engine.alloc(1024);
  }

  static async open(blockSize: number, blocks: number, opts: ExtentTreeOptions = {}): Promise<Ctx> {
    const t = makeTreeImage(blockSize, blocks);
    cleanups.push(t.cleanup);
    const dev = MemoryDevice.from(readImage(t.img));
    const vol = await mount(dev, {});
    const inode = await vol.inodes.get(t.ino);
    expect(inode.flags & 0x80000).toBe(0x80000);
    const c = new Ctx(t, dev, vol, new TestAllocator(vol), inode.generation, new Uint8Array(inode.iblock));
    const root: ExtentRoot = {
      ino: t.ino,
      generation: inode.generation,
      iblock: c.iblock,
      goal: () => Math.floor(blocks / 2),
      addBlocks: (d) => { c.treeBlocks += d; },
      markDirty: () => {},
    };
    c.tree = new ExtentTree(vol, root, opts);
    return c;
  }

  async op<T>(fn: (h: Handle) => Promise<T>): Promise<T> {
    const h = new CacheHandle(this.vol.cache);
    try {
      return await fn(h);
    } finally {
      await h.stop();
    }
  }

  /** Allocate len blocks (contiguous, near goal) and map them at lblk. */
  async insert(lblk: number, len: number, unwritten: boolean, goal: number): Promise<number> {
    return this.op(async (h) => {
      const r = await this.alloc.allocBlocks(h, goal, len, len);
      await this.tree.insert(h, this.alloc, lblk, r.start, len, unwritten);
      this.model.insert(lblk, r.start, len, unwritten);
      return r.start;
    });
  }

  async remove(from: number, to: number): Promise<void> {
    const freed = await this.op((h) => this.tree.remove(h, this.alloc, from, to));
    expect(freed).toBe(this.model.remove(from, Math.min(to, LIMIT)));
  }

  async convert(lblk: number, len: number, unwritten: boolean): Promise<void> {
    const n = await this.op((h) => this.tree.convert(h, this.alloc, lblk, len, unwritten));
    expect(n).toBe(this.model.convert(lblk, lblk + len, unwritten));
  }

  /** Write everything back and let debugfs and e2fsck judge. Returns the leaves listed. */
  async checkpoint(opts: { fsck?: boolean } = {}): Promise<Run[][]> {
    this.checkpoints++;
    const bs = this.vol.blockSize;
    expect(this.alloc.allocated - this.alloc.freed).toBe(this.model.blocks + this.treeBlocks);
    await writeInode(this.vol, this.t.ino, this.iblock, this.model.blocks + this.treeBlocks, this.model.end() * bs);
    await this.vol.cache.flush();
    const image = this.dev.bytes();
    syncSuperFree(this.vol, image, this.superScratch);
    writeFileSync(this.t.img, image);
    const ex = debugfsEx(this.t.img, this.t.ino);
    const leaves = exLeaves(ex);
    expect(canonical(leaves.flat())).toEqual(this.model.runs());
    expect(mergeablePairs(leaves)).toEqual([]);
    expect(ex.length ? ex[0].maxLevel : 0).toBe(this.tree.depth());
    // Tree blocks listed by debugfs = index lines' children = what we accounted.
    const indexLines = ex.filter((l) => l.level < l.maxLevel).length;
    expect(indexLines).toBe(this.treeBlocks);
    if (opts.fsck !== false) {
      const f = runStatus("e2fsck", ["-fn", this.t.img]);
      // "could be narrower / shorter" are optimisation offers (exit status stays 0): a
      // tree built by random writes has half-full nodes, as the kernel's does.
      const hint = /extent tree \(at level \d+\) could be (narrower|shorter)/.exec(f.out);
      if (hint) this.hints.push(hint[0]);
      expect(f.out).not.toMatch(/Fix\?|Clear\?|Ignore\?|Salvage\?|ERROR|corrupt/i);
      expect(f.status, f.out).toBe(0);
    }
    return leaves;
  }
}

/** A random hole of length len in [0, span) (the model decides). */
function freeSpot(c: Ctx, r: () => number, span: number, len: number): number {
  for (;;) {
    const l = pick(r, 0, span - len);
    if (c.model.isFree(l, len)) return l;
  }
}

describe("extent trees on real images (debugfs + e2fsck oracle)", () => {
  it("grows to depth 3 with 1 KiB blocks from random inserts, then punches and truncates back to empty", async () => {
    const c = await Ctx.open(1024, 196608);
    const r = rng(2024);
    const SPAN = 1 << 21;
    let last: { lblk: number; len: number; phys: number; unw: boolean } | undefined;
    let maxDepth = 0;
    for (let i = 0; i < 30000; i++) {
      const len = r() < 0.8 ? 1 : pick(r, 2, 6);
      const unw = r() < 0.2;
      let lblk: number;
      let goal: number;
      const mode = r();
      if (last && mode < 0.06 && c.model.isFree(last.lblk + last.len, len)) {
        // Continue the previous extent (a merge if the allocator gives the next blocks).
        lblk = last.lblk + last.len;
        goal = last.phys + last.len;
      } else if (last && mode < 0.1 && last.lblk >= len && c.model.isFree(last.lblk - len, len)) {
        lblk = last.lblk - len;
        goal = last.phys - len;
      } else {
        lblk = freeSpot(c, r, SPAN, len);
        goal = pick(r, 0, 196607);
      }
      const u = last && lblk === last.lblk + last.len ? last.unw : unw;
      const phys = await c.insert(lblk, len, u, goal);
      last = { lblk, len, phys, unw: u };
      maxDepth = Math.max(maxDepth, c.tree.depth());
    }
    expect(c.tree.depth()).toBeGreaterThanOrEqual(3);
    const leaves = await c.checkpoint();
    const extents = leaves.flat().length;
    console.log(`random inserts: ${extents} extents in ${leaves.length} leaves, depth ${c.tree.depth()}, ` +
      `${c.treeBlocks} tree blocks, ${c.tree.stats.splits} splits, ${c.tree.stats.grows} grows, ${c.tree.stats.merges} merges`);
    expect(c.tree.stats.merges).toBeGreaterThan(100);

    // Punches: small ones split extents, wide ones empty whole leaves.
    const keys = () => [...c.model.m.keys()];
    for (let i = 0; i < 600; i++) {
      const ks = keys();
      const at = ks[Math.floor(r() * ks.length)];
      const wide = r() < 0.15;
      const from = Math.max(0, at - (wide ? pick(r, 0, 20000) : pick(r, 0, 1)));
      const to = at + (wide ? pick(r, 1, 40000) : pick(r, 1, 2));
      await c.remove(from, to);
    }
    await c.checkpoint();
    // Truncates from the end, down to nothing.
    let end = c.model.end();
    while (end > 0) {
      end = Math.floor(end * (0.4 + 0.5 * r()));
      if (end < 50) end = 0;
      await c.remove(end, LIMIT);
      if (c.tree.depth() === 1 || end === 0) await c.checkpoint();
    }
    expect(c.model.blocks).toBe(0);
    expect(c.tree.depth()).toBe(0);
    expect(c.treeBlocks).toBe(0);
    expect(c.iblock[2] | (c.iblock[3] << 8)).toBe(0);
    await c.checkpoint();
    console.log(`shrink: ${c.tree.stats.collapses} collapses, ${c.tree.stats.treeBlocksFreed} tree blocks freed, ${c.checkpoints} e2fsck runs; ` +
      `e2fsck optimisation offers: ${c.hints.length ? [...new Set(c.hints)].join("; ") : "none"}`);
  });

  it("front inserts rewrite index keys up to the root (and merge at entry 0)", async () => {
    const c = await Ctx.open(1024, 65536);
    // 600 one-block extents with holes: appended in order (full leaves), depth 2.
    for (let i = 0; i < 600; i++) await c.insert(100000 + 2 * i, 1, false, 20000 + 3 * i);
    expect(c.tree.depth()).toBe(2);
    await c.checkpoint();
    // Reverse order below the first key: every insert lands in front of the leftmost
    // leaf; pairs allocated together make the second insert a merge at entry 0.
    for (let i = 0; i < 150; i++) {
      const base = 99990 - 5 * i;
      const phys = await c.op(async (h) => (await c.alloc.allocBlocks(h, 40000 + 4 * i, 2, 2)).start);
      await c.op((h) => c.tree.insert(h, c.alloc, base + 1, phys + 1, 1, false));
      await c.op((h) => c.tree.insert(h, c.alloc, base, phys, 1, false));
      c.model.insert(base, phys, 2, false);
    }
    const leaves = await c.checkpoint();
    expect(leaves[0][0]).toMatchObject({ lblk: 99990 - 5 * 149, len: 2 });
    // Remove the leftmost extents one by one: the first key moves up every time.
    for (let i = 149; i >= 100; i--) await c.remove(99990 - 5 * i, 99990 - 5 * i + 1);
    await c.checkpoint();
  });

  it("unwritten extents: fallocate, convert sub-ranges both ways, punch — merged and e2fsck-clean", async () => {
    const c = await Ctx.open(1024, 131072);
    const r = rng(99);
    const SPAN = 400000;
    // Preallocate: unwritten runs (contiguous where the allocator allows).
    for (let i = 0; i < 60; i++) {
      const len = pick(r, 100, 2000);
      const lblk = freeSpot(c, r, SPAN, len);
      let done = 0;
      while (done < len) {
        const piece = Math.min(len - done, 32767);
        const got = await c.op(async (h) => {
          const a = await c.alloc.allocBlocks(h, pick(r, 0, 131071), piece, 1);
          await c.tree.insert(h, c.alloc, lblk + done, a.start, a.len, true);
          return a;
        });
        c.model.insert(lblk + done, got.start, got.len, true);
        done += got.len;
      }
    }
    await c.checkpoint();
    let ks: number[] = [];
    for (let i = 0; i < 4000; i++) {
      if (i % 50 === 0) ks = [...c.model.m.keys()];
      const at = ks[Math.floor(r() * ks.length)]; // may be stale: any block will do
      const len = pick(r, 1, 64);
      const kind = r();
      if (kind < 0.75) await c.convert(at, len, false);
      else if (kind < 0.9) await c.convert(at, len, true);
      else if (kind < 0.97) await c.remove(at, at + len);
      else {
        const l = freeSpot(c, r, SPAN, len);
        await c.insert(l, len, r() < 0.5, pick(r, 0, 131071));
      }
      if (i % 1000 === 999) await c.checkpoint();
    }
    const leaves = await c.checkpoint();
    console.log(`unwritten workout: ${leaves.flat().length} extents in ${leaves.length} leaves, depth ${c.tree.depth()}, ` +
      `${c.tree.stats.blocksConverted} blocks converted, ${c.tree.stats.merges} merges`);
    await c.remove(0, LIMIT);
    await c.checkpoint();
  });

  it("merge bound: 1000 random 32 KiB writes converted in a 32 MiB fallocated region", async () => {
    const c = await Ctx.open(4096, 32768);
    const phys = await c.op(async (h) => (await c.alloc.allocBlocks(h, 10000, 8192, 8192)).start);
    await c.op((h) => c.tree.insert(h, c.alloc, 0, phys, 8192, true));
    c.model.insert(0, phys, 8192, true);
    const r = rng(3);
    const slots = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const s = pick(r, 0, 1023);
      slots.add(s);
      await c.convert(s * 8, 8, false);
    }
    const leaves = await c.checkpoint();
    const extents = leaves.flat().length;
    // All blocks are physically contiguous, so the fewest extents possible is the
    // number of written/unwritten runs; merges stop only at leaf boundaries.
    const runs = c.model.runs().length;
    const gaps = c.model.runs().filter((x) => x.unwritten).length;
    const writtenRuns = runs - gaps;
    console.log(`merge bound: ${extents} extents (${writtenRuns} written runs + ${gaps} unwritten gaps = ${runs} minimum) ` +
      `in ${leaves.length} leaves; ${slots.size} distinct slots written; without merging ≥ ${slots.size + gaps}`);
    expect(extents).toBeLessThanOrEqual(runs + leaves.length - 1);
    expect(writtenRuns).toBeLessThanOrEqual(gaps + 1);
  });

  it("depth 5 with small nodes (test cap on eh_max): EFBIG past it, read walker agrees, shrinks to empty", async () => {
    const c = await Ctx.open(1024, 65536, { nodeMax: 4 });
    const r = rng(5);
    const inode = { ino: c.t.ino, generation: c.generation, iblock: c.iblock, flags: 0x80000 } as unknown as Inode;
    const verify = async () => {
      const runs = c.model.runs();
      for (const run of runs) {
        for (const b of [run.lblk, run.lblk + run.len - 1]) {
          const m = await c.vol.mapper.map(inode, b);
          expect(m.phys).toBe(run.phys + (b - run.lblk));
          expect(m.unwritten).toBe(run.unwritten);
        }
        const hole = run.lblk + run.len;
        if (!c.model.m.has(hole)) expect((await c.vol.mapper.map(inode, hole)).phys).toBe(-1);
      }
      // Our own listing must be the model too.
      expect(canonical(await c.tree.extents())).toEqual(runs);
    };
    let efbig: FsError | undefined;
    let inserted = 0;
    for (let i = 0; i < 8000 && !efbig; i++) {
      const len = pick(r, 1, 4);
      const lblk = freeSpot(c, r, 1 << 22, len);
      const unw = r() < 0.3;
      await c.op(async (h) => {
        const a = await c.alloc.allocBlocks(h, pick(r, 0, 65535), len, len);
        try {
          await c.tree.insert(h, c.alloc, lblk, a.start, len, unw);
          c.model.insert(lblk, a.start, len, unw);
          inserted++;
        } catch (e) {
          if (!(e instanceof FsError && e.code === "EFBIG")) throw e;
          efbig = e;
          await c.alloc.freeBlocks(h, a.start, len);
        }
      });
      if (i % 500 === 0) await verify();
    }
    expect(efbig?.code).toBe("EFBIG");
    expect(c.tree.depth()).toBe(5);
    console.log(`small nodes: depth 5 reached, EFBIG after ${inserted} extents, ${c.treeBlocks} tree blocks`);
    await verify();
    // The tree refused to grow but is intact: more inserts that fit still work.
    // Punch and truncate back to nothing, checking as we go. Punches inside extents of
    // full 4-entry leaves must split leaves first.
    const splitsBefore = c.tree.stats.splits;
    let refusedPunches = 0;
    for (let i = 0; i < 300 && c.model.blocks > 0; i++) {
      const ks = [...c.model.m.keys()];
      const at = ks[Math.floor(r() * ks.length)];
      if (r() < 0.6) {
        // A punch strictly inside one extent needs a slot; when the path is full at depth
        // 5 it is refused with the mapping untouched (only this one leaf was involved).
        const freed = await c.op((h) => c.tree.remove(h, c.alloc, at, at + 1)).catch((e) => {
          if (e instanceof FsError && e.code === "EFBIG") return -1;
          throw e;
        });
        if (freed >= 0) expect(freed).toBe(c.model.remove(at, at + 1));
        else {
          refusedPunches++;
          await verify();
        }
      } else await c.remove(Math.max(0, at - pick(r, 0, 3000)), at + pick(r, 1, 3000));
      if (i % 50 === 0) await verify();
    }
    expect(c.tree.stats.splits).toBeGreaterThan(splitsBefore);
    console.log(`small nodes: ${c.tree.stats.splits - splitsBefore} splits made room for punches, ${refusedPunches} punches refused at full depth`);
    await c.remove(0, LIMIT);
    expect(c.tree.depth()).toBe(0);
    expect(c.treeBlocks).toBe(0);
    await verify();
    // Empty again: e2fsck can judge the bitmaps (every tree block given back).
    await c.checkpoint();
  });

  it("refuses bad arguments and overlaps, and stays intact when ENOSPC stops a split", async () => {
    const c = await Ctx.open(1024, 32768);
    for (let i = 0; i < 300; i++) await c.insert(1000 + 3 * i, 2, i % 5 === 0, 5000 + 7 * i);
    const before = await c.tree.extents();
    const err = async (p: Promise<unknown>, code: string) => {
      const e = await p.then(() => undefined, (e) => e);
      expect(e).toBeInstanceOf(FsError);
      expect((e as FsError).code).toBe(code);
    };
    await c.op(async (h) => {
      await err(c.tree.insert(h, c.alloc, 1001, 20000, 1), "EEXIST");
      await err(c.tree.insert(h, c.alloc, 999, 20000, 2), "EEXIST");
      await err(c.tree.insert(h, c.alloc, 10, 20000, 0), "EINVAL");
      await err(c.tree.insert(h, c.alloc, 10, 20000, 32768, true), "EINVAL");
      await err(c.tree.insert(h, c.alloc, 10, 40000, 1), "EINVAL");
      await err(c.tree.insert(h, c.alloc, 2 ** 32 - 1, 20000, 1), "EINVAL");
      await err(c.tree.insert(h, c.alloc, -1, 20000, 1), "EINVAL");
      await err(c.tree.remove(h, c.alloc, 0.5, 10), "EINVAL");
      await err(c.tree.convert(h, c.alloc, 5, 0, false), "EINVAL");
    });
    expect(await c.tree.extents()).toEqual(before);
    // An allocator that has no blocks left: inserts needing a split fail, nothing changes.
    const broke = {
      allocBlocks: async () => { throw new FsError("ENOSPC", "full"); },
      freeBlocks: (h: Handle, s: number, l: number) => c.alloc.freeBlocks(h, s, l),
    };
    const r = rng(11);
    let refused = 0;
    for (let i = 0; i < 200; i++) {
      const lblk = freeSpot(c, r, 3000, 1);
      const a = await c.op((h) => c.alloc.allocBlocks(h, 9000, 1, 1));
      const ok = await c.op((h) => c.tree.insert(h, broke, lblk, a.start, 1, false)).then(() => true, (e) => {
        expect((e as FsError).code).toBe("ENOSPC");
        return false;
      });
      if (ok) c.model.insert(lblk, a.start, 1, false);
      else {
        refused++;
        await c.op((h) => c.alloc.freeBlocks(h, a.start, 1));
      }
    }
    expect(refused).toBeGreaterThan(0);
    expect(canonical(await c.tree.extents())).toEqual(c.model.runs());
    await c.checkpoint();
  });

  it("corrupt tree blocks and roots give EFSCORRUPTED, never a crash", async () => {
    const c = await Ctx.open(1024, 32768);
    for (let i = 0; i < 200; i++) await c.insert(2 * i, 1, false, 3000 + 2 * i);
    expect(c.tree.depth()).toBe(1);
    await c.checkpoint();
    const leafBlk = new DataView(c.iblock.buffer, c.iblock.byteOffset).getUint32(16, true);
    const poke = async (off: number, value: number) => {
      const ref = await c.vol.cache.get(leafBlk);
      const old = c.vol.engine.u8[ref.ptr + off];
      c.vol.engine.u8[ref.ptr + off] = value;
      c.vol.cache.release(ref);
      return old;
    };
    const expectCorrupt = async () => {
      const ops: ((h: Handle) => Promise<unknown>)[] = [
        (h: Handle) => c.tree.insert(h, c.alloc, 1, 20000, 1),
        (h: Handle) => c.tree.remove(h, c.alloc, 0, 10),
        (h: Handle) => c.tree.convert(h, c.alloc, 0, 10, true),
        (h: Handle) => c.tree.map(0, h),
      ];
      for (const f of ops) {
        const e = await c.op(f).then(() => undefined, (e) => e);
        expect(e).toBeInstanceOf(FsError);
        expect((e as FsError).code).toBe("EFSCORRUPTED");
      }
    };
    // Bad magic, then a stray byte under a valid header (checksum), then entries > max.
    let old = await poke(0, 0x00);
    await expectCorrupt();
    await poke(0, old);
    old = await poke(40, 0x5a ^ 0xff);
    await expectCorrupt();
    await poke(40, old);
    old = await poke(2, 0xff);
    await expectCorrupt();
    await poke(2, old);
    // The root: eh_max beyond 4, then a child pointer past the volume.
    const save = c.iblock.slice();
    c.iblock[4] = 5;
    await expectCorrupt();
    c.iblock.set(save);
    new DataView(c.iblock.buffer, c.iblock.byteOffset).setUint32(16, 99999999, true);
    await expectCorrupt();
    c.iblock.set(save);
    // Healed: everything works again and e2fsck agrees.
    await c.remove(0, 50);
    await c.checkpoint();
  });
});
