/**
 * Extent-tree lookup (assembly/extents.ts).
 *
 * Oracles:
 *  - hand-built nodes whose answers follow from the on-disk format by plain arithmetic
 *    (unwritten lengths, hole lengths, every reason code);
 *  - real images made by mke2fs -d from sparse files with thousands of 1-block data
 *    regions (trees of depth 2 with 4 KiB blocks and depth 3 with 1 KiB blocks), plus
 *    unwritten extents made by debugfs `fallocate`. A small walker built only on the
 *    engine's exports (as the bindings will be) must reproduce `debugfs ex` line by line,
 *    `debugfs blocks` as a set, `debugfs bmap` on sampled blocks, and the source file's
 *    bytes (sha256);
 *  - hostile input: seeded corruptions of tree nodes (with and without re-sealed
 *    checksums). Every call must return, every answer must be a valid mapping or a known
 *    reason code, walks must end, answers must equal a slow linear-scan reference, and any
 *    corrupted image that `e2fsck -fn` calls clean must still walk without error.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { CSUM_FAIL, END, ExtWalker, refLookup } from "./extent-walker.ts";
import { debugfs, debugfsScript, scratchDir, tool, toolStatus } from "./e2fs-oracle.ts";
import {
  bmapBatch, blocksOf, fsInfo, type FsInfo, inodeOf, parseEx, pick, type Region, rng, writeSparse,
} from "./blockmap-oracle.ts";


// ── hand-built nodes ──────────────────────────────────────────────────────────────────

type Ext = [lblk: number, eeLen: number, phys: number];
type Idx = [lblk: number, child: number];

/** A node image: header + entries, zero-filled to `size` bytes. */
function node(
  size: number,
  depth: number,
  items: (Ext | Idx)[],
  o: { magic?: number; max?: number; entries?: number } = {},
): Buffer {
  const b = Buffer.alloc(size);
  const cap = size === 60 ? 4 : Math.floor((size - 12) / 12);
  b.writeUInt16LE(o.magic ?? 0xf30a, 0);
  b.writeUInt16LE(o.entries ?? items.length, 2);
  b.writeUInt16LE(o.max ?? cap, 4);
  b.writeUInt16LE(depth, 6);
  items.forEach((it, i) => {
    const e = 12 + 12 * i;
    if (e + 12 > size) return;
    b.writeUInt32LE(it[0] >>> 0, e);
    if (depth > 0) {
      const [, child] = it as Idx;
      b.writeUInt32LE(child % 2 ** 32, e + 4);
      b.writeUInt16LE(Math.floor(child / 2 ** 32), e + 8);
    } else {
      const [, len, phys] = it as Ext;
      b.writeUInt16LE(len, e + 4);
      b.writeUInt16LE(Math.floor(phys / 2 ** 32), e + 6);
      b.writeUInt32LE(phys % 2 ** 32, e + 8);
    }
  });
  return b;
}

let E: Engine;
let C: Record<string, number>;
let P = 0; // 64 KiB scratch for hand-built nodes

beforeAll(async () => {
  E = await Engine.create();
  P = E.alloc(65536 + 64);
  C = {};
  for (const n of [
    "EXT_MAPPED", "EXT_HOLE", "EXT_ERR_SIZE", "EXT_ERR_MAGIC", "EXT_ERR_DEPTH", "EXT_ERR_MAX", "EXT_ERR_ENTRIES",
    "EXT_ERR_ORDER", "EXT_ERR_LEN", "EXT_ERR_PHYS", "EXT_ERR_RANGE",
  ]) C[n] = E.constant(n);
  C.EXT_LBLK_END = E.constant("EXT_LBLK_END");
});

function put(b: Buffer): number {
  E.u8.fill(0, P, P + 65536);
  E.u8.set(b, P);
  return P;
}

describe("extents: hand-built nodes", () => {
  it("exports the constants the walker relies on", () => {
    expect(C.EXT_LBLK_END).toBe(END);
    const codes = Object.entries(C).filter(([k]) => k.startsWith("EXT_ERR_")).map(([, v]) => v);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toBeLessThan(-1);
  });

  it("capacity: 4 in i_block, (size - 12) / 12 in a block, nothing else", () => {
    expect(E.x.extNodeCapacity(60)).toBe(4);
    for (const bs of [1024, 2048, 4096, 8192, 16384, 32768, 65536]) expect(E.x.extNodeCapacity(bs)).toBe(Math.floor((bs - 12) / 12));
    for (const bad of [0, 12, 59, 61, 512, 1000, 3000, 131072]) expect(E.x.extNodeCapacity(bad)).toBe(C.EXT_ERR_SIZE);
  });

  // ee_len 32768 is written (the longest), 32769 is unwritten of length 1, 65535 unwritten of 32767.
  const leaf: Ext[] = [
    [10, 5, 1000],
    [20, 32768, 2 ** 40 + 7],
    [40000, 32769, 50000],
    [50000, 65535, 60000],
  ];
  const upper = 100000;

  it("leaf accessors: true lengths and the unwritten bit", () => {
    const p = put(node(60, 0, leaf));
    expect(E.x.extNodeCheck(p, 60, -1, 0, END, 1, 2 ** 41)).toBe(0);
    expect(E.x.extLeafCount(p)).toBe(4);
    expect(E.x.extIndexCount(p)).toBe(C.EXT_ERR_DEPTH);
    expect([0, 1, 2, 3].map((i) => E.x.extLeafLen(p, i) >>> 0)).toEqual([5, 32768, 1, 32767]);
    expect([0, 1, 2, 3].map((i) => !!E.x.extLeafUnwritten(p, i))).toEqual([false, false, true, true]);
    expect([0, 1, 2, 3].map((i) => E.x.extLeafStart(p, i))).toEqual([1000, 2 ** 40 + 7, 50000, 60000]);
    expect([0, 1, 2, 3].map((i) => E.x.extLeafBlock(p, i) >>> 0)).toEqual([10, 20, 40000, 50000]);
    // Out-of-range indexes read nothing and return sentinels.
    for (const i of [-1, 4, 5, 1000]) {
      expect(E.x.extLeafLen(p, i)).toBe(0);
      expect(E.x.extLeafStart(p, i)).toBe(-1);
      expect(E.x.extLeafBlock(p, i) >>> 0).toBe(0xffffffff);
      expect(!!E.x.extLeafUnwritten(p, i)).toBe(false);
    }
  });

  it("extLeafMap agrees with a per-block arithmetic model", () => {
    const p = put(node(60, 0, leaf));
    // The model: block → [phys, unwritten] from the list above, every other block a hole.
    const model = (l: number): [number, boolean] | undefined => {
      for (const [s, raw, ph] of leaf) {
        const len = raw > 32768 ? raw - 32768 : raw;
        if (l >= s && l < s + len) return [ph + (l - s), raw > 32768];
      }
      return undefined;
    };
    const probes = new Set<number>([0, 9, 10, 14, 15, 19, 20, 20 + 32767, 20 + 32768, 39999, 40000, 40001, 49999, 50000,
      50000 + 32766, 50000 + 32767, upper - 1]);
    const r = rng(7);
    for (let i = 0; i < 300; i++) probes.add(pick(r, 0, upper - 1));
    for (const l of probes) {
      const st = E.x.extLeafMap(p, l, upper);
      const len = E.x.extMapLen() >>> 0;
      const m = model(l);
      if (m) {
        expect(st, `lblk ${l}`).toBe(C.EXT_MAPPED);
        expect(E.x.extMapPhys()).toBe(m[0]);
        expect(!!E.x.extMapUnwritten()).toBe(m[1]);
      } else {
        expect(st, `lblk ${l}`).toBe(C.EXT_HOLE);
        expect(E.x.extMapPhys()).toBe(0);
        expect(!!E.x.extMapUnwritten()).toBe(false);
      }
      // len is the longest run starting at l with the same kind (contiguous phys / hole).
      let n = 1;
      while (l + n < upper) {
        const q = model(l + n);
        if (m ? !q || q[0] !== m[0] + n || q[1] !== m[1] : q) break;
        n++;
      }
      expect(len, `run length at ${l}`).toBe(n);
    }
    expect(E.x.extLeafMap(p, upper, upper)).toBe(C.EXT_ERR_RANGE);
    expect(E.x.extLeafMap(p, 0xffffffff, 2 ** 32)).toBe(C.EXT_ERR_RANGE);
    // An empty leaf is one hole up to the bound; the bound is capped at 2^32 - 1.
    const q = put(node(60, 0, []));
    expect(E.x.extLeafMap(q, 0, 2 ** 32)).toBe(C.EXT_HOLE);
    expect(E.x.extMapLen() >>> 0).toBe(END);
    expect(E.x.extLeafMap(q, END - 1, 2 ** 40)).toBe(C.EXT_HOLE);
    expect(E.x.extMapLen() >>> 0).toBe(1);
    expect(E.x.extMapIndex()).toBe(0);
  });

  it("index accessors: find, start, child, next start", () => {
    const p = put(node(4096, 1, [[5, 100], [100, 2 ** 47 + 3], [1000, 300]]));
    expect(E.x.extNodeCheck(p, 4096, 1, 5, 5000, 0, 2 ** 48)).toBe(1);
    expect(E.x.extIndexCount(p)).toBe(3);
    expect(E.x.extLeafCount(p)).toBe(C.EXT_ERR_DEPTH);
    expect(E.x.extLeafMap(p, 10, 5000)).toBe(C.EXT_ERR_DEPTH);
    const find = (l: number) => E.x.extIndexFind(p, l);
    expect([0, 4, 5, 99, 100, 999, 1000, 4999, END - 1].map(find)).toEqual([-1, -1, 0, 0, 1, 1, 2, 2, 2]);
    expect([0, 1, 2].map((i) => E.x.extIndexStart(p, i) >>> 0)).toEqual([5, 100, 1000]);
    expect([0, 1, 2].map((i) => E.x.extIndexChild(p, i))).toEqual([100, 2 ** 47 + 3, 300]);
    expect([0, 1, 2].map((i) => E.x.extIndexNextStart(p, i, 5000))).toEqual([100, 1000, 5000]);
    expect(E.x.extIndexNextStart(p, 2, 2 ** 33)).toBe(END);
    for (const i of [-1, 3, 99]) {
      expect(E.x.extIndexChild(p, i)).toBe(-1);
      expect(E.x.extIndexStart(p, i) >>> 0).toBe(0xffffffff);
      expect(E.x.extIndexNextStart(p, i, 5000)).toBe(-1);
    }
    const leafNode = put(node(60, 0, [[0, 1, 10]]));
    expect(E.x.extIndexFind(leafNode, 0)).toBe(C.EXT_ERR_DEPTH);
    expect(E.x.extIndexChild(leafNode, 0)).toBe(-1);
  });

  it("extNodeCheck: one hand-made node per reason code", () => {
    const ok = (b: Buffer, size: number, d: number, lo = 0, hi = END, fdb = 1, bc = 1 << 20) =>
      E.x.extNodeCheck(put(b), size, d, lo, hi, fdb, bc);
    const good = node(1024, 0, [[100, 4, 500], [104, 1, 600]]);
    expect(ok(good, 1024, 0, 100, 200)).toBe(0);
    expect(ok(good, 1000, 0, 100, 200)).toBe(C.EXT_ERR_SIZE);
    expect(ok(good, 60, 0, 100, 200)).toBe(C.EXT_ERR_MAX); // eh_max 84 does not fit i_block
    expect(ok(node(60, 0, [[100, 4, 500], [104, 1, 600]]), 60, 0, 100, 200)).toBe(0);
    expect(ok(node(1024, 0, [], { magic: 0xf30b }), 1024, 0)).toBe(C.EXT_ERR_MAGIC);
    expect(ok(node(1024, 6, [[0, 10]]), 1024, -1)).toBe(C.EXT_ERR_DEPTH);
    expect(ok(node(1024, 5, [[0, 10]]), 1024, -1)).toBe(5);
    expect(ok(good, 1024, 1, 100, 200)).toBe(C.EXT_ERR_DEPTH);
    expect(ok(node(1024, 0, [], { max: 0 }), 1024, 0)).toBe(C.EXT_ERR_MAX);
    expect(ok(node(60, 0, [], { max: 5 }), 60, -1)).toBe(C.EXT_ERR_MAX);
    expect(ok(node(4096, 0, [], { max: 340 }), 4096, 0)).toBe(0);
    expect(ok(node(4096, 0, [], { max: 341 }), 4096, 0)).toBe(C.EXT_ERR_MAX);
    expect(ok(node(4096, 0, [], { max: 2 }), 4096, 0)).toBe(0); // the kernel accepts a smaller eh_max
    expect(ok(node(1024, 0, [[0, 1, 10], [1, 1, 11], [2, 1, 12]], { max: 2 }), 1024, -1)).toBe(C.EXT_ERR_ENTRIES);
    expect(ok(node(1024, 1, []), 1024, 1)).toBe(C.EXT_ERR_ENTRIES);
    expect(ok(node(1024, 0, []), 1024, 0, 7, 9)).toBe(0); // an empty leaf is a hole
    expect(ok(node(1024, 1, [[0, 10], [0, 11]]), 1024, -1)).toBe(C.EXT_ERR_ORDER);
    expect(ok(node(1024, 1, [[0, 10], [5, 11], [4, 12]]), 1024, -1)).toBe(C.EXT_ERR_ORDER);
    expect(ok(node(1024, 0, [[0, 4, 10], [3, 1, 20]]), 1024, -1)).toBe(C.EXT_ERR_ORDER);
    expect(ok(node(1024, 0, [[0, 4, 10], [4, 1, 20]]), 1024, -1)).toBe(0); // touching is fine
    expect(ok(node(1024, 0, [[5, 1, 20], [0, 4, 10]]), 1024, -1)).toBe(C.EXT_ERR_ORDER);
    expect(ok(node(1024, 0, [[0, 0, 10]]), 1024, -1)).toBe(C.EXT_ERR_LEN);
    expect(ok(node(1024, 0, [[0, 32768, 10]]), 1024, -1)).toBe(0); // 32768 written blocks
    expect(ok(node(1024, 0, [[0, 1, 0]]), 1024, -1, 0, END, 1)).toBe(C.EXT_ERR_PHYS);
    expect(ok(node(1024, 0, [[0, 1, 0]]), 1024, -1, 0, END, 0)).toBe(0);
    expect(ok(node(1024, 0, [[0, 10, 1000]]), 1024, -1, 0, END, 1, 1010)).toBe(0);
    expect(ok(node(1024, 0, [[0, 11, 1000]]), 1024, -1, 0, END, 1, 1010)).toBe(C.EXT_ERR_PHYS);
    expect(ok(node(1024, 0, [[0, 32768 + 11, 1000]]), 1024, -1, 0, END, 1, 1010)).toBe(C.EXT_ERR_PHYS);
    expect(ok(node(1024, 0, [[0, 1, 2 ** 32 + 5]]), 1024, -1)).toBe(C.EXT_ERR_PHYS); // ee_start_hi counts
    expect(ok(node(1024, 1, [[0, 1 << 20]]), 1024, -1)).toBe(C.EXT_ERR_PHYS);
    expect(ok(node(1024, 1, [[0, 2 ** 33 + 1]]), 1024, -1, 0, END, 0, 2 ** 40)).toBe(1);
    // Logical range: first key must equal lo below the root; nothing at or past hi.
    expect(ok(good, 1024, 0, 99, 200)).toBe(C.EXT_ERR_RANGE);
    expect(ok(good, 1024, -1, 99, 200)).toBe(0);
    expect(ok(good, 1024, 0, 100, 105)).toBe(0); // the last extent ends exactly at hi
    expect(ok(good, 1024, 0, 100, 104)).toBe(C.EXT_ERR_RANGE);
    expect(ok(node(1024, 1, [[100, 10], [150, 11]]), 1024, 1, 100, 150)).toBe(C.EXT_ERR_RANGE);
    expect(ok(node(1024, 1, [[100, 10], [149, 11]]), 1024, 1, 100, 150)).toBe(1);
    expect(ok(node(60, 0, [[END - 1, 1, 10]]), 60, -1)).toBe(0);
    expect(ok(node(60, 0, [[END - 1, 2, 10]]), 60, -1)).toBe(C.EXT_ERR_RANGE);
    expect(ok(node(60, 0, [[END, 1, 10]]), 60, -1)).toBe(C.EXT_ERR_RANGE);
    expect(ok(good, 1024, 0, 100, NaN)).toBe(C.EXT_ERR_RANGE);
    expect(ok(good, 1024, 0, NaN, 200)).toBe(C.EXT_ERR_RANGE);
    expect(ok(good, 1024, 0, 100, 200, NaN)).toBe(C.EXT_ERR_PHYS);
    expect(ok(good, 1024, 0, 100, 200, 1, NaN)).toBe(C.EXT_ERR_PHYS);
    expect(E.x.extLeafMap(put(good), 100, NaN)).toBe(C.EXT_ERR_RANGE);
  });
});

// ── real images ───────────────────────────────────────────────────────────────────────

interface Built {
  img: string;
  info: FsInfo;
  image: Buffer;
  files: Map<string, { src: string; regions: Region[] }>;
}

/**
 * An ext4 image whose /frag has `n` one-block data regions separated by random gaps
 * (one extent each), /mixed has two data runs, /pre has no data; then debugfs fallocate
 * adds unwritten extents: a few holes of /frag, a range of /mixed, all of /pre.
 */
function buildExt4(dir: string, bs: number, n: number, gapMax: number, sizeMiB: number, preBlocks: number, seed: number): Built {
  const src = join(dir, `src${bs}`);
  tool("mkdir", ["-p", src]);
  const r = rng(seed);
  const frag: Region[] = [];
  let l = pick(r, 1, 5);
  for (let i = 0; i < n; i++) {
    frag.push({ lblk: l, blocks: 1 });
    l += 1 + pick(r, 1, gapMax);
  }
  writeSparse(join(src, "frag"), frag, bs, seed + 1, (l + 3) * bs);
  const mixed: Region[] = [{ lblk: 0, blocks: 4 }, { lblk: 50, blocks: 3 }];
  writeSparse(join(src, "mixed"), mixed, bs, seed + 2, 80 * bs);
  writeSparse(join(src, "pre"), [], bs, seed + 3, preBlocks * bs);
  const img = join(dir, `ext4-${bs}.img`);
  tool("mke2fs", ["-q", "-F", "-t", "ext4", "-b", String(bs), "-d", src, img, `${sizeMiB}M`]);
  // Unwritten extents: inside 12 of /frag's holes (each strictly between two regions).
  const lines: string[] = [];
  for (let k = 0; k < 12; k++) {
    const i = Math.floor(((k + 0.5) / 12) * (n - 1));
    const a = frag[i].lblk + 1;
    const b = frag[i + 1].lblk - 1;
    if (b >= a) lines.push(`fallocate /frag ${a} ${pick(r, a, b)}`);
  }
  lines.push("fallocate /mixed 10 30", `fallocate /pre 0 ${preBlocks - 1}`);
  debugfsScript(img, lines);
  const fsck = toolStatus("e2fsck", ["-fn", img]);
  expect(fsck.status, fsck.out).toBe(0);
  return {
    img, info: fsInfo(img), image: readFileSync(img),
    files: new Map([["/frag", { src: join(src, "frag"), regions: frag }], ["/mixed", { src: join(src, "mixed"), regions: mixed }], ["/pre", { src: join(src, "pre"), regions: [] }]]),
  };
}

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** File content rebuilt from the walker's runs: written extents from the image, zeros elsewhere. */
function contentHash(w: ExtWalker, size: number): string {
  const bs = w.info.blockSize;
  const h = createHash("sha256");
  const zeros = Buffer.alloc(1 << 20);
  const blocks = Math.ceil(size / bs);
  let left = size;
  for (const { lblk, look } of w.runs(0, blocks, 10_000_000)) {
    if ("err" in look) throw new Error(`lookup ${lblk} failed: ${look.err}`);
    const n = Math.min(look.len, blocks - lblk);
    let bytes = Math.min(n * bs, left);
    if (look.st === 0 && !look.unw) {
      h.update(w.image.subarray(look.phys * bs, look.phys * bs + bytes));
    } else {
      while (bytes > 0) {
        const k = Math.min(bytes, zeros.length);
        h.update(zeros.subarray(0, k));
        bytes -= k;
        left -= k;
      }
      continue;
    }
    left -= bytes;
  }
  return h.digest("hex");
}

describe.each([
  { bs: 4096, n: 2000, gapMax: 64, sizeMiB: 128, pre: 9000, seed: 11, minDepth: 2 },
  { bs: 1024, n: 36000, gapMax: 6, sizeMiB: 160, pre: 40000, seed: 23, minDepth: 3 },
])("extents: real ext4 image, $bs-byte blocks", ({ bs, n, gapMax, sizeMiB, pre, seed, minDepth }) => {
  const scratch = scratchDir("ext4wasm-extents-");
  let B: Built;
  let W: ExtWalker;
  let e: Engine;
  const files = ["/frag", "/mixed", "/pre"];
  const locs = new Map<string, ReturnType<typeof inodeOf>>();

  beforeAll(async () => {
    B = buildExt4(scratch.dir, bs, n, gapMax, sizeMiB, pre, seed);
    e = await Engine.create();
    W = new ExtWalker(e, B.info, B.image);
    for (const f of files) locs.set(f, inodeOf(B.img, B.image, f, B.info));
  });
  afterAll(() => scratch.cleanup());

  const use = (f: string) => {
    const loc = locs.get(f)!;
    W.image = B.image;
    W.csum = true;
    W.setFile(Buffer.from(loc.record.subarray(0x28, 0x28 + 60)), loc.ino, loc.generation);
    return loc;
  };

  it.each(files)("%s: the whole tree matches debugfs ex, line by line", (f) => {
    use(f);
    const ex = parseEx(debugfs(B.img, `ex ${f}`));
    const { recs } = W.tree();
    expect(recs.length).toBe(ex.length);
    if (f === "/frag") expect(ex[0].maxLevel).toBeGreaterThanOrEqual(minDepth);
    if (f !== "/mixed") expect(ex.some((l) => l.uninit)).toBe(true);
    for (let i = 0; i < ex.length; i++) {
      const a = recs[i];
      const b = ex[i];
      const where = `${f} line ${i}`;
      expect([a.level, a.maxLevel, a.entry, a.entries, a.lstart, a.pstart, a.uninit], where)
        .toEqual([b.level, b.maxLevel, b.entry, b.entries, b.lstart, b.pstart, b.uninit]);
      if (a.level === b.maxLevel) {
        expect([a.lend, a.pend, a.len], where).toEqual([b.lend, b.pend, b.len]);
      } else if (a.hi !== END) {
        // debugfs bounds the root's last child by i_size instead of 2^32 - 1; the rest must agree.
        expect([a.lend, a.len], where).toEqual([b.lend, b.len]);
      }
    }
  });

  it.each(files)("%s: tree and data blocks match debugfs blocks", (f) => {
    use(f);
    const { recs, nodes } = W.tree();
    const mine = [...nodes];
    for (const r of recs) if (r.pend !== undefined) for (let p = r.pstart; p <= r.pend; p++) mine.push(p);
    const theirs = blocksOf(B.img, f);
    expect(mine.sort((a, b) => a - b)).toEqual(theirs.sort((a, b) => a - b));
  });

  it.each(files)("%s: sampled blocks match debugfs bmap", (f) => {
    const loc = use(f);
    const { recs } = W.tree();
    const leaves = recs.filter((r) => r.pend !== undefined);
    const r = rng(seed * 7 + f.length);
    const sample = new Set<number>([0, 1, Math.ceil(loc.size / bs), Math.ceil(loc.size / bs) + 1000]);
    for (let k = 0; k < 60 && leaves.length; k++) {
      const x = leaves[pick(r, 0, leaves.length - 1)];
      for (const l of [x.lstart - 1, x.lstart, x.lend, x.lend + 1]) if (l >= 0) sample.add(l);
    }
    for (let k = 0; k < 150; k++) sample.add(pick(r, 0, Math.ceil(loc.size / bs) + 10));
    const list = [...sample];
    const ref = bmapBatch(B.img, f, list);
    list.forEach((l, i) => {
      const look = W.lookup(l);
      if ("err" in look) throw new Error(`lookup ${l}: ${look.err}`);
      if (ref[i].pblk === 0) expect(look.st, `${f} ${l} is a hole`).toBe(C.EXT_HOLE);
      else expect([look.st, look.phys, look.unw], `${f} ${l}`).toEqual([C.EXT_MAPPED, ref[i].pblk, ref[i].uninit]);
    });
  });

  it.each(files)("%s: content rebuilt from the runs equals the source file (sha256)", (f) => {
    const loc = use(f);
    const srcPath = B.files.get(f)!.src;
    const src = readFileSync(srcPath);
    expect(loc.size).toBe(src.length);
    expect(contentHash(W, loc.size)).toBe(sha(src));
    // Every run is consecutive and the walk ends at 2^32 - 1 in a bounded number of steps.
    const runs = W.runs(0, END, 200_000);
    const last = runs[runs.length - 1];
    expect("err" in last.look).toBe(false);
    expect(last.lblk + (last.look as { len: number }).len).toBe(END);
    for (const { look } of runs) expect(look.loads).toBeLessThanOrEqual(5);
  });

  it("hostile: seeded corruptions of /frag's nodes never trap, never loop, match the slow reference", () => {
    const loc = use("/frag");
    const { recs, nodes } = W.tree();
    const depth = recs[0].maxLevel;
    const info = B.info;
    const loOf = new Map<number, number>();
    const hiOf = new Map<number, number>();
    for (const r of recs) if (r.pend === undefined) {
      loOf.set(r.pstart, r.lstart);
      hiOf.set(r.pstart, r.hi!);
    }
    const extStarts = recs.filter((r) => r.pend !== undefined).map((r) => r.lstart);
    const scratchPtr = e.alloc(bs);
    const seal = (blk: number) => {
      // Re-compute the tail checksum so the structure checks, not the checksum, must catch it.
      e.u8.set(B.image.subarray(blk * bs, (blk + 1) * bs), scratchPtr);
      if (e.x.extentBlockCsumSet(scratchPtr, loc.ino, loc.generation)) {
        B.image.set(e.u8.subarray(scratchPtr, scratchPtr + bs), blk * bs);
      }
    };
    const csumOk = (blk: number) => {
      e.u8.set(B.image.subarray(blk * bs, (blk + 1) * bs), scratchPtr);
      return !!e.x.extentBlockCsumVerify(scratchPtr, loc.ino, loc.generation);
    };
    const known = new Set([C.EXT_ERR_MAGIC, C.EXT_ERR_DEPTH, C.EXT_ERR_MAX, C.EXT_ERR_ENTRIES, C.EXT_ERR_ORDER,
      C.EXT_ERR_LEN, C.EXT_ERR_PHYS, C.EXT_ERR_RANGE, CSUM_FAIL]);
    const seen = new Map<number, number>();
    let clean = 0;
    const r = rng(seed + 1000);
    const rounds = 250;
    for (let round = 0; round < rounds; round++) {
      // The target: the root (in i_block) or one tree block.
      const rootTarget = r() < 0.15;
      const blk = rootTarget ? -1 : nodes[pick(r, 0, nodes.length - 1)];
      const iblockSaved = Buffer.from(W.iblock);
      const saved = rootTarget ? undefined : Buffer.from(B.image.subarray(blk * bs, (blk + 1) * bs));
      const buf = rootTarget ? W.iblock : B.image.subarray(blk * bs, (blk + 1) * bs);
      const size = rootTarget ? 60 : bs;
      const entries = Math.min(buf.readUInt16LE(2), Math.floor((size - 12) / 12));
      const ent = () => 12 + 12 * pick(r, 0, Math.max(0, entries - 1));
      const kind = pick(r, 0, 9);
      switch (kind) {
        case 0: for (let k = pick(r, 1, 4); k > 0; k--) buf[pick(r, 0, 11)] ^= 1 << pick(r, 0, 7); break;
        case 1: buf.writeUInt16LE([0, entries + 1, 0xffff, pick(r, 0, 0xffff), Math.max(0, entries - 1)][pick(r, 0, 4)], 2); break;
        case 2: buf.writeUInt16LE([0, 1, Math.floor((size - 12) / 12) + 1, 0xffff, pick(r, 0, 400)][pick(r, 0, 4)], 4); break;
        case 3: buf.writeUInt16LE(pick(r, 0, 7), 6); break;
        case 4: { // a key
          const o = ent();
          const v = buf.readUInt32LE(o);
          buf.writeUInt32LE([0, v + 1, Math.max(0, v - 1), pick(r, 0, 2 ** 32 - 1), END][pick(r, 0, 4)] >>> 0, o);
          break;
        }
        case 5: { // a child or physical block: self, an ancestor, random, out of range, huge
          const o = ent();
          const isLeaf = buf.readUInt16LE(6) === 0;
          const target = [blk < 0 ? nodes[0] : blk, nodes[0], pick(r, 0, info.blocksCount - 1), info.blocksCount, 0, 2 ** 40 + 3][pick(r, 0, 5)];
          if (isLeaf) {
            buf.writeUInt16LE(Math.floor(target / 2 ** 32) & 0xffff, o + 6);
            buf.writeUInt32LE(target % 2 ** 32, o + 8);
          } else {
            buf.writeUInt32LE(target % 2 ** 32, o + 4);
            buf.writeUInt16LE(Math.floor(target / 2 ** 32) & 0xffff, o + 8);
          }
          break;
        }
        case 6: buf.writeUInt16LE([0, 32768, 32769, 65535, pick(r, 1, 65535)][pick(r, 0, 4)], ent() + 4); break;
        case 7: { // swap two entries
          const a = ent();
          const b = ent();
          const t = Buffer.from(buf.subarray(a, a + 12));
          buf.copy(buf, a, b, b + 12);
          t.copy(buf, b);
          break;
        }
        default: for (let k = pick(r, 1, 8); k > 0; k--) buf[pick(r, 0, Math.min(size, 12 + 12 * (entries + 1)) - 1)] = pick(r, 0, 255);
      }
      if (!rootTarget && r() < 0.75) seal(blk);
      // 1. A walk of the runs around the damaged node ends, with consecutive valid runs.
      const lo = rootTarget ? 0 : loOf.get(blk) ?? 0;
      const hi = rootTarget ? END : hiOf.get(blk) ?? END;
      const runs = W.runs(Math.max(0, lo - 3), hi === END ? END : hi + 3, 4 * extStarts.length + 20);
      // 2. Sampled lookups equal the slow reference exactly, and each answer is valid.
      const probes = [lo, hi - 1, ...runs.slice(0, 50).map((x) => x.lblk)];
      for (let k = 0; k < 40; k++) probes.push(extStarts[pick(r, 0, extStarts.length - 1)]);
      for (let k = 0; k < 20; k++) probes.push(pick(r, 0, END - 1));
      for (const l of probes) {
        if (!(l >= 0 && l < END)) continue;
        const a = W.lookup(l);
        const b = refLookup(C, W, l, csumOk);
        const { loads: _a, ...ma } = a;
        const { loads: _b, ...mb } = b;
        expect(ma, `seed ${seed} round ${round} kind ${kind} lblk ${l}`).toEqual(mb);
        expect(a.loads).toBeLessThanOrEqual(depth);
        if ("err" in a) {
          expect(known.has(a.err), `code ${a.err}`).toBe(true);
          seen.set(a.err, (seen.get(a.err) ?? 0) + 1);
        } else {
          expect(a.len).toBeGreaterThanOrEqual(1);
          expect(l + a.len).toBeLessThanOrEqual(END);
          if (a.st === C.EXT_MAPPED) {
            expect(a.phys).toBeGreaterThanOrEqual(info.firstDataBlock);
            expect(a.phys + a.len).toBeLessThanOrEqual(info.blocksCount);
          }
        }
      }
      if (!runs.some((x) => "err" in x.look)) clean++;
      // Restore.
      if (saved) B.image.set(saved, blk * bs);
      W.iblock.set(iblockSaved);
    }
    // The corruptions exercised every reason code (a test that never rejects proves nothing).
    for (const c of known) expect(seen.get(c) ?? 0, `reason ${c} seen`).toBeGreaterThan(0);
    expect(clean).toBeGreaterThan(0);
    expect(clean).toBeLessThan(rounds);
  });

  it("hostile: a child pointing at itself or at its parent is refused by the depth rule", () => {
    const loc = use("/frag");
    const { recs } = W.tree();
    const depth = recs[0].maxLevel;
    const idx = recs.filter((r) => r.pend === undefined);
    // A node at level 1 and one of its children (itself an index node when depth ≥ 2).
    const parent = idx.find((r) => r.level === 0)!.pstart;
    const ptr = e.alloc(bs);
    const patch = (blk: number, child: number) => {
      e.u8.set(B.image.subarray(blk * bs, (blk + 1) * bs), ptr);
      const dv = new DataView(e.u8.buffer, ptr, bs);
      dv.setUint32(12 + 4, child, true);
      expect(e.x.extentBlockCsumSet(ptr, loc.ino, loc.generation)).toBeTruthy();
      const saved = Buffer.from(B.image.subarray(blk * bs, (blk + 1) * bs));
      B.image.set(e.u8.subarray(ptr, ptr + bs), blk * bs);
      return () => B.image.set(saved, blk * bs);
    };
    const first = idx.find((r) => r.level === 1)!;
    const attempt = (blk: number, child: number, expectLevel: number) => {
      const undo = patch(blk, child);
      try {
        expect(W.lookup(first.lstart)).toMatchObject({ err: C.EXT_ERR_DEPTH, level: expectLevel });
      } finally {
        undo();
      }
    };
    attempt(parent, parent, 2); // a level-1 node whose first child is itself
    const sibling = idx.find((r) => r.level === 0 && r.pstart !== parent);
    if (sibling) attempt(parent, sibling.pstart, 2); // … or a node of its own depth
    if (depth >= 3) attempt(first.pstart, parent, 3); // a level-2 index node pointing back at its parent
    expect("err" in W.lookup(first.lstart)).toBe(false);
  });

  it("hostile: images e2fsck calls clean after a corruption still walk without error", () => {
    const loc = use("/frag");
    const { recs, nodes } = W.tree();
    const sp = e.alloc(bs);
    const fd = openSync(B.img, "r+");
    const r = rng(seed + 2000);
    let cleanImages = 0;
    let rejectedByFsck = 0;
    try {
      for (let round = 0; round < 24; round++) {
        const blk = nodes[pick(r, 0, nodes.length - 1)];
        const saved = Buffer.from(B.image.subarray(blk * bs, (blk + 1) * bs));
        const buf = B.image.subarray(blk * bs, (blk + 1) * bs);
        const entries = buf.readUInt16LE(2);
        const ent = 12 + 12 * pick(r, 0, entries - 1);
        // Half harmless-looking edits (eh_generation, ei_unused, unused slots), half harmful.
        switch (round % 6) {
          case 0: buf.writeUInt32LE(pick(r, 1, 2 ** 32 - 1), 8); break;
          case 1: if (buf.readUInt16LE(6) > 0) buf.writeUInt16LE(pick(r, 1, 0xffff), ent + 10); else buf[8] ^= 1; break;
          case 2: if (entries < buf.readUInt16LE(4)) buf[12 + 12 * entries + pick(r, 0, 11)] ^= 0xff; else buf[9] ^= 4; break;
          case 3: buf.writeUInt16LE(entries + 1, 2); break;
          case 4: buf.writeUInt32LE(buf.readUInt32LE(ent) + 1, ent); break;
          default: buf[pick(r, 12, 12 + 12 * entries - 1)] ^= 1 << pick(r, 0, 7);
        }
        // Keep the checksum right so that e2fsck judges the structure, not the crc.
        e.u8.set(buf, sp);
        expect(e.x.extentBlockCsumSet(sp, loc.ino, loc.generation)).toBeTruthy();
        B.image.set(e.u8.subarray(sp, sp + bs), blk * bs);
        writeSync(fd, B.image, blk * bs, bs, blk * bs);
        const fsck = toolStatus("e2fsck", ["-fn", B.img]);
        const runs = W.runs(0, END, 4 * recs.length + 20);
        const walkOk = !runs.some((x) => "err" in x.look);
        if (fsck.status === 0) {
          cleanImages++;
          expect(walkOk, `round ${round}: e2fsck accepts block ${blk} but the walk fails`).toBe(true);
        } else {
          rejectedByFsck++;
        }
        B.image.set(saved, blk * bs);
        writeSync(fd, saved, 0, bs, blk * bs);
      }
    } finally {
      closeSync(fd);
    }
    expect(cleanImages).toBeGreaterThan(0);
    expect(rejectedByFsck).toBeGreaterThan(0);
    expect(toolStatus("e2fsck", ["-fn", B.img]).status).toBe(0);
  });
});
