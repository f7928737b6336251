/**
 * ext2/ext3 block maps (assembly/indirect.ts).
 *
 * Oracles:
 *  - plain arithmetic on the format (range starts 12, 12 + a, 12 + a + a², subtree
 *    spans a^k) for indPath / indPathRemain / indLimit, and hand-built pointer arrays;
 *  - real ext2 and ext3 images made by mke2fs -d: a dense file deep in the
 *    double-indirect range and a sparse file with data in every range up to the triple
 *    indirect one. A walker built only on the engine's exports must reproduce the BLOCKS
 *    section of `debugfs stat` (every data block and every IND/DIND/TIND block), `debugfs
 *    blocks`, `debugfs bmap` on sampled blocks, and the source file's bytes (sha256);
 *  - hostile input: seeded corruptions of indirect blocks and i_block pointers (random
 *    values, pointers to other indirect blocks and to themselves, out of range). Walks end,
 *    and every answer equals a slow reference that reads the raw bytes by arithmetic.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { scratchDir, tool, toolStatus } from "./e2fs-oracle.ts";
import {
  bmapBatch, blocksOf, fsInfo, type FsInfo, inodeOf, pick, type Region, rng, statBlocks, writeSparse,
} from "./blockmap-oracle.ts";

// ── the format by arithmetic (the reference for the unit tests) ───────────────────────

/** Start of each range: direct, single, double, triple, and the end of the map. */
function ranges(bs: number): number[] {
  const a = bs / 4;
  return [0, 12, 12 + a, 12 + a + a * a, 12 + a + a * a + a * a * a];
}

/** Depth and offsets of lblk; depth -1 past the triple range. */
function refPath(lblk: number, bs: number): { depth: number; offs: number[] } {
  const a = bs / 4;
  const R = ranges(bs);
  if (lblk < 12) return { depth: 0, offs: [lblk] };
  for (let d = 1; d <= 3; d++) {
    if (lblk < R[d + 1]) {
      const r = lblk - R[d];
      const offs = [11 + d];
      for (let k = d - 1; k >= 0; k--) offs.push(Math.floor(r / a ** k) % a);
      return { depth: d, offs };
    }
  }
  return { depth: -1, offs: [] };
}

/** Blocks from lblk to the end of the subtree under the pointer at `level` of its path. */
function refRemain(lblk: number, bs: number, level: number): number {
  const a = bs / 4;
  const { depth } = refPath(lblk, bs);
  if (depth === 0) return 1;
  const base = ranges(bs)[depth];
  const span = a ** (depth - level);
  const start = base + Math.floor((lblk - base) / span) * span;
  return start + span - lblk;
}

let E: Engine;
let C: Record<string, number>;

beforeAll(async () => {
  E = await Engine.create();
  C = {};
  for (const n of ["IND_N_DIRECT", "IND_SLOT_SINGLE", "IND_SLOT_DOUBLE", "IND_SLOT_TRIPLE", "IND_ERR_RANGE", "IND_ERR_BLOCK_SIZE"]) {
    C[n] = E.constant(n);
  }
});

describe("indirect: arithmetic", () => {
  it("constants", () => {
    expect([C.IND_N_DIRECT, C.IND_SLOT_SINGLE, C.IND_SLOT_DOUBLE, C.IND_SLOT_TRIPLE]).toEqual([12, 12, 13, 14]);
    expect(C.IND_ERR_RANGE).toBe(-1);
    expect(C.IND_ERR_BLOCK_SIZE).toBeLessThan(-1);
  });

  it.each([1024, 2048, 4096, 65536])("indPath / indPathOffset / indPathRemain with %i-byte blocks", (bs) => {
    const R = ranges(bs);
    const probes = new Set<number>([0, 11, 2 ** 32 - 1, 2 ** 32 - 2]);
    for (const s of R) for (const d of [-2, -1, 0, 1, 2]) if (s + d >= 0 && s + d < 2 ** 32) probes.add(s + d);
    const a = bs / 4;
    for (const s of [R[2], R[3]]) for (const k of [1, 2, a - 1, a, a + 1, a * a - 1, a * a]) if (s + k < 2 ** 32) probes.add(s + k);
    const r = rng(bs);
    for (let i = 0; i < 2000; i++) probes.add(Math.floor(r() * Math.min(R[4] * 1.01, 2 ** 32)));
    for (const l of probes) {
      const ref = refPath(l, bs);
      const d = E.x.indPath(l, bs);
      expect(d, `lblk ${l}`).toBe(ref.depth);
      if (d < 0) {
        expect(E.x.indPathOffset(0) >>> 0).toBe(0xffffffff);
        expect(E.x.indPathRemain(0)).toBe(-1);
        continue;
      }
      for (let k = 0; k <= d; k++) {
        expect(E.x.indPathOffset(k) >>> 0, `lblk ${l} level ${k}`).toBe(ref.offs[k]);
        expect(E.x.indPathRemain(k), `lblk ${l} remain ${k}`).toBe(refRemain(l, bs, k));
      }
      expect(E.x.indPathOffset(d + 1) >>> 0).toBe(0xffffffff);
      expect(E.x.indPathOffset(-1) >>> 0).toBe(0xffffffff);
      expect(E.x.indPathRemain(d + 1)).toBe(-1);
    }
    expect(E.x.indLimit(bs)).toBe(Math.min(R[4], 2 ** 32));
  });

  it("known boundaries for 1 KiB and 4 KiB blocks", () => {
    // From the format description: 1 KiB: double from 268, triple from 65804; 4 KiB: 1036, 1049612.
    expect([11, 12, 267, 268, 65803, 65804].map((l) => E.x.indPath(l, 1024))).toEqual([0, 1, 1, 2, 2, 3]);
    expect([1035, 1036, 1049611, 1049612].map((l) => E.x.indPath(l, 4096))).toEqual([1, 2, 2, 3]);
    expect(E.x.indPath(1049612 + 1024 ** 3 - 1, 4096)).toBe(3);
    expect(E.x.indPath(1049612 + 1024 ** 3, 4096)).toBe(C.IND_ERR_RANGE);
    expect(E.x.indPath(16843020 - 1, 1024)).toBe(3);
    expect(E.x.indPath(16843020, 1024)).toBe(C.IND_ERR_RANGE);
    expect(E.x.indPath(0xffffffff, 65536)).toBe(3);
    for (const bad of [0, 512, 1000, 3072, 131072]) {
      expect(E.x.indPath(5, bad)).toBe(C.IND_ERR_BLOCK_SIZE);
      expect(E.x.indLimit(bad)).toBe(C.IND_ERR_BLOCK_SIZE);
      expect(E.x.indPathOffset(0) >>> 0).toBe(0xffffffff);
    }
  });

  it("indEntry, indRunLength and indPointerValid on a hand-built block", () => {
    const p = E.alloc(64);
    const vals = [5, 6, 7, 0, 0, 0, 9, 10, 0xfffffffe, 0xffffffff, 0, 100, 101, 103];
    const dv = new DataView(E.u8.buffer);
    vals.forEach((v, i) => dv.setUint32(p + 4 * i, v, true));
    expect(vals.map((_, i) => E.x.indEntry(p, i) >>> 0)).toEqual(vals);
    const run = (i: number, n: number, first: number) => E.x.indRunLength(p, i, n, first) >>> 0;
    expect(run(0, 14, 5)).toBe(3);
    expect(run(0, 2, 5)).toBe(2); // count bounds it
    expect(run(0, 0, 5)).toBe(0);
    expect(run(1, 13, 6)).toBe(2);
    expect(run(0, 14, 4)).toBe(0); // first pointer is not firstPhys
    expect(run(3, 11, 0)).toBe(3); // a run of holes
    expect(run(10, 4, 0)).toBe(1);
    expect(run(6, 8, 9)).toBe(2);
    expect(run(8, 6, 0xfffffffe)).toBe(2); // 0xFFFFFFFE, 0xFFFFFFFF, then no wrap to 0
    expect(run(11, 3, 100)).toBe(2);
    const v = (b: number, bc: number, fdb: number) => !!E.x.indPointerValid(b, bc, fdb);
    expect([v(1, 100, 1), v(0, 100, 1), v(0, 100, 0), v(99, 100, 1), v(100, 100, 1), v(2 ** 32, 2 ** 33, 0), v(NaN, 100, 0), v(5, NaN, 0)])
      .toEqual([true, false, true, true, false, true, false, false]);
  });
});

// ── the walker (what the bindings will do, minus the cache) ───────────────────────────

type Look =
  | { st: "data" | "hole"; phys: number; len: number }
  | { st: "err"; level: number; skip: number }
  | { st: "end" };

const KIND: string[][] = [[], ["IND"], ["DIND", "IND"], ["TIND", "DIND", "IND"]];

class IndWalker {
  readonly x: any;
  private readonly root: number;
  private readonly bufs: number[] = [];
  image: Buffer;
  iblock!: Buffer;
  /** Indirect blocks the walk passed through: "KIND:pblk". */
  readonly meta = new Set<string>();
  loads = 0;

  constructor(readonly e: Engine, readonly info: FsInfo, image: Buffer) {
    this.x = e.x;
    this.root = e.alloc(64);
    for (let i = 0; i < 4; i++) this.bufs.push(e.alloc(info.blockSize));
    this.image = image;
  }

  private valid(p: number): boolean {
    return !!this.x.indPointerValid(p, this.info.blocksCount, this.info.firstDataBlock);
  }

  lookup(lblk: number): Look {
    const { x } = this;
    const bs = this.info.blockSize;
    const d = x.indPath(lblk, bs);
    if (d < 0) return { st: "end" };
    this.e.u8.set(this.iblock, this.root);
    let node = this.root;
    let p = x.indEntry(node, x.indPathOffset(0)) >>> 0;
    for (let level = 1; level <= d; level++) {
      if (p === 0) {
        // A zero pointer: a hole over the rest of its subtree, and over each following
        // zero pointer's whole subtree (a^(d - L) blocks each) in the same block.
        let len = x.indPathRemain(level - 1);
        if (level > 1) {
          const off = x.indPathOffset(level - 1) >>> 0;
          const zeros = x.indRunLength(node, off, bs / 4 - off, 0) >>> 0;
          len += (zeros - 1) * (bs / 4) ** (d - level + 1);
        }
        return { st: "hole", phys: 0, len };
      }
      if (!this.valid(p)) return { st: "err", level: level - 1, skip: x.indPathRemain(level - 1) };
      this.meta.add(`${KIND[d][level - 1]}:${p}`);
      node = this.bufs[level];
      this.e.u8.set(this.image.subarray(p * bs, (p + 1) * bs), node);
      this.loads++;
      p = x.indEntry(node, x.indPathOffset(level)) >>> 0;
    }
    const off = x.indPathOffset(d) >>> 0;
    const room = (d === 0 ? 12 : bs / 4) - off;
    if (p === 0) return { st: "hole", phys: 0, len: x.indRunLength(node, off, room, 0) >>> 0 };
    if (!this.valid(p)) return { st: "err", level: d, skip: 1 };
    let n = x.indRunLength(node, off, room, p) >>> 0;
    // A run is only as long as its blocks stay inside the volume.
    while (n > 1 && !this.valid(p + n - 1)) n--;
    return { st: "data", phys: p, len: n };
  }

  /**
   * Runs from `from` up to `to` (default: the end of the map); errors skip the bad
   * pointer's subtree. Stops after `limit` lookups: each step advances by at least one
   * block, so the limit only caps time, it never hides a loop.
   */
  runs(from: number, limit: number, to = 2 ** 32): { lblk: number; look: Look }[] {
    const out: { lblk: number; look: Look }[] = [];
    let l = from;
    while (l < to && out.length < limit) {
      const look = this.lookup(l);
      if (look.st === "end") break;
      out.push({ lblk: l, look });
      const step = look.st === "err" ? look.skip : look.len;
      if (!(step >= 1)) throw new Error(`no progress at ${l}`);
      l += step;
    }
    return out;
  }
}

/** The slow reference: raw bytes by arithmetic; "err" for an out-of-volume pointer on the way. */
function refMap(w: IndWalker, lblk: number): { st: "data"; phys: number } | { st: "hole" | "err" | "end" } {
  const { blockSize: bs, blocksCount: bc, firstDataBlock: fdb } = w.info;
  const { depth, offs } = refPath(lblk, bs);
  if (depth < 0) return { st: "end" };
  let p = w.iblock.readUInt32LE(4 * offs[0]);
  for (let k = 1; k <= depth; k++) {
    if (p === 0) return { st: "hole" };
    if (p < fdb || p >= bc) return { st: "err" };
    p = w.image.readUInt32LE(p * bs + 4 * offs[k]);
  }
  if (p === 0) return { st: "hole" };
  if (p < fdb || p >= bc) return { st: "err" };
  return { st: "data", phys: p };
}

// ── real images ───────────────────────────────────────────────────────────────────────

interface Case {
  name: string;
  type: "ext2" | "ext3";
  bs: number;
  sizeMiB: number;
  denseBlocks: number;
  sparse: number[];
}

const cases: Case[] = [
  {
    name: "ext2, 1 KiB blocks", type: "ext2", bs: 1024, sizeMiB: 48, denseBlocks: 3000,
    sparse: [0, 1, 5, 11, 12, 20, 21, 22, 267, 268, 269, 300, 1000, 1001, 1002, 65803, 65804, 65805, 70000, 70001, 70002,
      131339, 131340, 131341, 200000, 262000],
  },
  {
    name: "ext3, 1 KiB blocks", type: "ext3", bs: 1024, sizeMiB: 48, denseBlocks: 2500,
    sparse: [3, 12, 267, 268, 5000, 65804, 65805, 65806, 65807, 99999, 140000],
  },
  {
    name: "ext3, 4 KiB blocks", type: "ext3", bs: 4096, sizeMiB: 64, denseBlocks: 1600,
    sparse: [0, 11, 12, 1035, 1036, 1037, 1049611, 1049612, 1049613, 1049612 + 1048576 + 5, 1049612 + 3 * 1048576 + 1024 + 7],
  },
];

describe.each(cases)("indirect: real $name image", ({ type, bs, sizeMiB, denseBlocks, sparse }) => {
  const scratch = scratchDir("ext4wasm-indirect-");
  let img = "";
  let info: FsInfo;
  let image: Buffer;
  let e: Engine;
  let W: IndWalker;
  const srcs = new Map<string, { path: string; regions: Region[] }>();
  const files = ["/dense", "/sparse"];

  beforeAll(async () => {
    const src = join(scratch.dir, "src");
    tool("mkdir", ["-p", src]);
    const dense: Region[] = [{ lblk: 0, blocks: denseBlocks }];
    // Coalesce adjacent sparse blocks into regions.
    const sp: Region[] = [];
    for (const l of sparse) {
      const last = sp[sp.length - 1];
      if (last && last.lblk + last.blocks === l) last.blocks++;
      else sp.push({ lblk: l, blocks: 1 });
    }
    writeSparse(join(src, "dense"), dense, bs, 1, denseBlocks * bs - 100);
    writeSparse(join(src, "sparse"), sp, bs, 2, (sparse[sparse.length - 1] + 1) * bs + 5);
    srcs.set("/dense", { path: join(src, "dense"), regions: dense });
    srcs.set("/sparse", { path: join(src, "sparse"), regions: sp });
    img = join(scratch.dir, "fs.img");
    tool("mke2fs", ["-q", "-F", "-t", type, "-b", String(bs), "-d", src, img, `${sizeMiB}M`]);
    const fsck = toolStatus("e2fsck", ["-fn", img]);
    expect(fsck.status, fsck.out).toBe(0);
    info = fsInfo(img);
    image = readFileSync(img);
    e = await Engine.create();
    W = new IndWalker(e, info, image);
  });
  afterAll(() => scratch.cleanup());

  const use = (f: string) => {
    const loc = inodeOf(img, image, f, info);
    const flags = loc.record.readUInt32LE(0x20);
    expect(flags & 0x80000, "not extent-mapped").toBe(0);
    W.image = image;
    W.iblock = Buffer.from(loc.record.subarray(0x28, 0x28 + 60));
    W.meta.clear();
    return loc;
  };

  it.each(files)("%s: every block and every IND/DIND/TIND block match debugfs stat and blocks", (f) => {
    use(f);
    const runs = W.runs(0, 100_000);
    const data = new Map<number, number>();
    for (const { lblk, look } of runs) {
      expect(look.st, `lblk ${lblk}`).not.toBe("err");
      if (look.st === "data") for (let k = 0; k < look.len; k++) data.set(lblk + k, look.phys + k);
    }
    const ref = statBlocks(img, f);
    expect([...data.entries()]).toEqual([...ref.data.entries()].sort((a, b) => a[0] - b[0]));
    const meta = [...W.meta].sort();
    expect(meta).toEqual(ref.meta.map((m) => `${m.kind}:${m.pblk}`).sort());
    if (f === "/dense") expect(meta.some((m) => m.startsWith("DIND"))).toBe(true);
    if (f === "/sparse") expect(meta.some((m) => m.startsWith("TIND"))).toBe(true);
    const all = [...data.values(), ...meta.map((m) => Number(m.split(":")[1]))].sort((a, b) => a - b);
    expect(all).toEqual(blocksOf(img, f).sort((a, b) => a - b));
    // The walk skips holes by whole subtrees: far fewer lookups than blocks in the map.
    expect(runs.length).toBeLessThan(200);
  });

  it.each(files)("%s: sampled blocks match debugfs bmap", (f) => {
    const loc = use(f);
    const r = rng(bs + f.length);
    const last = Math.ceil(loc.size / bs) + 3;
    const sample = new Set<number>();
    for (const s of [...ranges(bs), ...sparse]) for (const d of [-1, 0, 1]) if (s + d >= 0 && s + d < Math.min(last, 2 ** 32)) sample.add(s + d);
    for (let k = 0; k < 300; k++) sample.add(pick(r, 0, last));
    const list = [...sample];
    const ref = bmapBatch(img, f, list);
    list.forEach((l, i) => {
      const look = W.lookup(l);
      if (ref[i].pblk === 0) expect(look.st, `${f} ${l}`).toBe("hole");
      else expect(look, `${f} ${l}`).toMatchObject({ st: "data", phys: ref[i].pblk });
    });
  });

  it.each(files)("%s: content rebuilt from the runs equals the source (sha256)", (f) => {
    const loc = use(f);
    const src = srcs.get(f)!;
    expect(statSync(src.path).size).toBe(loc.size);
    const runs = W.runs(0, 100_000);
    // Data blocks in logical order, from the image via our mapping and from the source file.
    const mine = createHash("sha256");
    const theirs = createHash("sha256");
    const mapped: number[] = [];
    for (const { lblk, look } of runs) {
      if (look.st !== "data") continue;
      for (let k = 0; k < look.len; k++) mapped.push(lblk + k);
      mine.update(image.subarray(look.phys * bs, (look.phys + look.len) * bs));
    }
    const expected: number[] = [];
    const fd = openSync(src.path, "r");
    try {
      const buf = Buffer.alloc(bs);
      for (const g of src.regions) {
        for (let k = 0; k < g.blocks; k++) {
          expected.push(g.lblk + k);
          buf.fill(0);
          readSync(fd, buf, 0, bs, (g.lblk + k) * bs);
          theirs.update(buf);
        }
      }
    } finally {
      closeSync(fd);
    }
    expect(mapped).toEqual(expected);
    // The image stores whole blocks; the source's last block is zero-padded above.
    expect(mine.digest("hex")).toBe(theirs.digest("hex"));
    // Whole-file hash too, where the file is small enough to stream.
    if (loc.size <= 512 * 2 ** 20) {
      const h = createHash("sha256");
      const zeros = Buffer.alloc(bs);
      let pos = 0;
      const blocks = Math.ceil(loc.size / bs);
      for (const { lblk, look } of runs) {
        if (lblk >= blocks) break;
        const n = Math.min(look.st === "err" ? 0 : (look as { len: number }).len, blocks - lblk);
        for (let k = 0; k < n; k++) {
          const take = Math.min(bs, loc.size - pos);
          h.update(look.st === "data" ? image.subarray((look.phys + k) * bs, (look.phys + k) * bs + take) : zeros.subarray(0, take));
          pos += take;
        }
      }
      expect(pos).toBe(loc.size);
      expect(h.digest("hex")).toBe(createHash("sha256").update(readFileSync(src.path)).digest("hex"));
    }
  });

  it("hostile: seeded corruptions of the map never trap, never loop, match the slow reference", () => {
    use("/sparse");
    W.runs(0, 100_000);
    const metaBlocks = [...W.meta].map((m) => Number(m.split(":")[1]));
    use("/dense");
    W.runs(0, 100_000);
    const denseMeta = [...W.meta].map((m) => Number(m.split(":")[1]));
    const r = rng(bs * 3 + 1);
    const apb = bs / 4;
    let errors = 0;
    let rounds = 0;
    for (const f of files) {
      const targets = f === "/sparse" ? metaBlocks : denseMeta;
      const loc = use(f);
      const iblock = Buffer.from(loc.record.subarray(0x28, 0x28 + 60));
      for (let round = 0; round < 60; round++, rounds++) {
        W.iblock = Buffer.from(iblock);
        const blk = r() < 0.2 ? -1 : targets[pick(r, 0, targets.length - 1)];
        const saved = blk < 0 ? undefined : Buffer.from(image.subarray(blk * bs, (blk + 1) * bs));
        const node = blk < 0 ? W.iblock : image.subarray(blk * bs, (blk + 1) * bs);
        const slots = blk < 0 ? 15 : apb;
        for (let k = pick(r, 1, 6); k > 0; k--) {
          const at = 4 * pick(r, 0, slots - 1);
          const v = [
            0, pick(r, 0, 2 ** 32 - 1), info.blocksCount, info.blocksCount - 1, info.firstDataBlock - 1 >>> 0,
            blk < 0 ? 0 : blk, targets[pick(r, 0, targets.length - 1)], node.readUInt32LE(at) + 1,
          ][pick(r, 0, 7)];
          node.writeUInt32LE(v >>> 0, at);
        }
        if (r() < 0.3) node[pick(r, 0, node.length - 1)] ^= 1 << pick(r, 0, 7);
        const loads0 = W.loads;
        const runs = W.runs(0, 20_000);
        expect(W.loads - loads0).toBeLessThanOrEqual(3 * runs.length);
        for (let i = 1; i < runs.length; i++) expect(runs[i].lblk).toBeGreaterThan(runs[i - 1].lblk);
        const probes: number[] = [];
        for (const { lblk, look } of runs.slice(0, 400)) {
          probes.push(lblk);
          if (look.st === "data" || look.st === "hole") {
            probes.push(lblk + look.len - 1);
            if (look.len > 2) probes.push(pick(r, lblk, lblk + look.len - 1));
          }
          if (look.st === "err") errors++;
        }
        for (let k = 0; k < 100; k++) probes.push(pick(r, 0, Math.min(ranges(bs)[4], 2 ** 32) - 1));
        for (const l of probes) {
          const ref = refMap(W, l);
          const look = W.lookup(l);
          const where = `${f} round ${round} lblk ${l}`;
          if (ref.st === "data") {
            expect(look, where).toMatchObject({ st: "data", phys: ref.phys });
            const run = look as { phys: number; len: number };
            // Every block of the returned run is where the reference says.
            for (const k of [run.len - 1, Math.floor(run.len / 2)]) {
              expect(refMap(W, l + k), `${where} +${k}`).toEqual({ st: "data", phys: run.phys + k });
            }
          } else {
            expect(look.st, where).toBe(ref.st);
            if (look.st === "hole") {
              expect(refMap(W, l + look.len - 1).st, `${where} hole end`).toBe("hole");
            }
          }
        }
        if (saved) image.set(saved, blk * bs);
      }
    }
    expect(rounds).toBe(120);
    expect(errors).toBeGreaterThan(0);
  });

  it("hostile: pointers aimed at their own block or at an ancestor cannot make a walk loop", () => {
    const loc = use("/sparse");
    W.runs(0, 100_000);
    const tind = [...W.meta].find((m) => m.startsWith("TIND"));
    const dind = [...W.meta].find((m) => m.startsWith("DIND"));
    expect(tind && dind).toBeTruthy();
    const t = Number(tind!.split(":")[1]);
    const d = Number(dind!.split(":")[1]);
    const savedT = Buffer.from(image.subarray(t * bs, (t + 1) * bs));
    const savedD = Buffer.from(image.subarray(d * bs, (d + 1) * bs));
    try {
      for (let i = 0; i < bs / 4; i += 3) image.writeUInt32LE(t, t * bs + 4 * i); // TIND → itself
      for (let i = 1; i < bs / 4; i += 2) image.writeUInt32LE(d, d * bs + 4 * i); // DIND → itself
      W.iblock = Buffer.from(loc.record.subarray(0x28, 0x28 + 60));
      W.iblock.writeUInt32LE(t, 4 * 13); // the double slot → the TIND block
      const R = ranges(bs);
      const a = bs / 4;
      let lookups = 0;
      for (const start of [R[2], R[2] + 7 * a + 3, R[3], R[3] + 3 * a * a, R[3] + 6 * a * a + 5 * a]) {
        const loads0 = W.loads;
        const runs = W.runs(start, 3000, start + 2 * a * a);
        lookups += runs.length;
        // At most one load per level per lookup: depth bounds every walk.
        expect(W.loads - loads0).toBeLessThanOrEqual(3 * runs.length);
        for (const { lblk, look } of runs.slice(0, 600)) {
          const ref = refMap(W, lblk);
          if (ref.st === "data") expect(look).toMatchObject({ st: "data", phys: ref.phys });
          else expect(look.st, `lblk ${lblk}`).toBe(ref.st);
        }
      }
      expect(lookups).toBeGreaterThan(100);
    } finally {
      image.set(savedT, t * bs);
      image.set(savedD, d * bs);
    }
  });
});

