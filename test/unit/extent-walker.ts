/**
 * The extent-tree walker the tests drive (built only on the engine's exports, as the
 * bindings' walker will be, minus the block cache) and a slow linear-scan reference used
 * to judge its answers on corrupted trees. Used by extents.test.ts.
 */
import { expect } from "vitest";
import { Engine } from "../../bindings/wasm.ts";
import type { ExLine, FsInfo } from "./blockmap-oracle.ts";

/** One past the last addressable logical block (EXT_LBLK_END). */
export const END = 4294967295;
/** The walker's own code for "extentBlockCsumVerify said no". */
export const CSUM_FAIL = -100;

/** The engine's reason codes, by name (EXT_ERR_*), read once per engine. */
export type Codes = Record<string, number>;

// ── the walker (what the bindings will do, minus the cache) ───────────────────────────

export type Look =
  | { st: number; phys: number; len: number; unw: boolean; loads: number }
  | { err: number; level: number; loads: number };

export interface Rec extends ExLine {
  /** For index entries: the child's upper bound as the walker computed it. */
  hi?: number;
}

export class ExtWalker {
  readonly x: any;
  private readonly root: number;
  private readonly bufs: number[] = [];
  image!: Buffer;
  iblock!: Buffer;
  ino = 0;
  gen = 0;
  csum = true;

  constructor(readonly e: Engine, readonly info: FsInfo, image: Buffer) {
    this.x = e.x;
    this.root = e.alloc(64);
    for (let i = 0; i <= 6; i++) this.bufs.push(e.alloc(info.blockSize));
    const sb = e.alloc(1024);
    e.u8.set(image.subarray(1024, 2048), sb);
    expect(e.x.csumConfigure(sb)).toBeTruthy();
    this.image = image;
  }

  setFile(iblock: Buffer, ino: number, gen: number): void {
    this.iblock = iblock;
    this.ino = ino;
    this.gen = gen;
  }

  private load(level: number, pblk: number): number {
    const bs = this.info.blockSize;
    const p = this.bufs[level];
    this.e.u8.set(this.image.subarray(pblk * bs, (pblk + 1) * bs), p);
    return p;
  }

  private check(ptr: number, size: number, depth: number, lo: number, hi: number): number {
    return this.x.extNodeCheck(ptr, size, depth, lo, hi, this.info.firstDataBlock, this.info.blocksCount);
  }

  lookup(lblk: number): Look {
    const x = this.x;
    this.e.u8.set(this.iblock, this.root);
    let node = this.root;
    let hi = END;
    let loads = 0;
    let d = this.check(node, 60, -1, 0, END);
    if (d < 0) return { err: d, level: 0, loads };
    let level = 0;
    while (d > 0) {
      const i = x.extIndexFind(node, lblk);
      if (i === -1) return { st: 1, phys: 0, len: (x.extIndexStart(node, 0) >>> 0) - lblk, unw: false, loads };
      if (i < 0) return { err: i, level, loads };
      const child = x.extIndexChild(node, i);
      const clo = x.extIndexStart(node, i) >>> 0;
      const chi = x.extIndexNextStart(node, i, hi);
      level++;
      loads++;
      node = this.load(level, child);
      const r = this.check(node, this.info.blockSize, d - 1, clo, chi);
      if (r !== d - 1) return { err: r, level, loads };
      if (this.csum && !x.extentBlockCsumVerify(node, this.ino, this.gen)) return { err: CSUM_FAIL, level, loads };
      hi = chi;
      d--;
    }
    const s = x.extLeafMap(node, lblk, hi);
    if (s < 0) return { err: s, level, loads };
    return { st: s, phys: x.extMapPhys(), len: x.extMapLen() >>> 0, unw: !!x.extMapUnwritten(), loads };
  }

  /** Consecutive runs from `from` until `to` (or the first error), at most `limit` lookups. */
  runs(from: number, to: number, limit: number): { lblk: number; look: Look }[] {
    const out: { lblk: number; look: Look }[] = [];
    let l = from;
    while (l < to) {
      if (out.length >= limit) throw new Error(`walk from ${from} did not end within ${limit} lookups`);
      const look = this.lookup(l);
      out.push({ lblk: l, look });
      if ("err" in look) break;
      if (!(look.len >= 1) || l + look.len > END) throw new Error(`bad run length ${look.len} at ${l}`);
      l += look.len;
    }
    return out;
  }

  /** Every index entry and extent in debugfs `ex` order, plus the tree blocks. */
  tree(): { recs: Rec[]; nodes: number[] } {
    const x = this.x;
    const recs: Rec[] = [];
    const nodes: number[] = [];
    this.e.u8.set(this.iblock, this.root);
    const max = this.check(this.root, 60, -1, 0, END);
    expect(max, "root check").toBeGreaterThanOrEqual(0);
    const visit = (ptr: number, level: number, depth: number, hi: number) => {
      if (depth > 0) {
        const n = x.extIndexCount(ptr);
        for (let i = 0; i < n; i++) {
          const lstart = x.extIndexStart(ptr, i) >>> 0;
          const child = x.extIndexChild(ptr, i);
          const chi = x.extIndexNextStart(ptr, i, hi);
          recs.push({ level, maxLevel: max, entry: i + 1, entries: n, lstart, lend: chi - 1, pstart: child, len: chi - lstart, uninit: false, hi: chi });
          nodes.push(child);
          const c = this.load(level + 1, child);
          expect(this.check(c, this.info.blockSize, depth - 1, lstart, chi), `node ${child}`).toBe(depth - 1);
          expect(!!x.extentBlockCsumVerify(c, this.ino, this.gen), `csum of node ${child}`).toBe(true);
          visit(c, level + 1, depth - 1, chi);
        }
      } else {
        const n = x.extLeafCount(ptr);
        for (let i = 0; i < n; i++) {
          const lstart = x.extLeafBlock(ptr, i) >>> 0;
          const len = x.extLeafLen(ptr, i) >>> 0;
          const p = x.extLeafStart(ptr, i);
          recs.push({ level, maxLevel: max, entry: i + 1, entries: n, lstart, lend: lstart + len - 1, pstart: p, pend: p + len - 1, len, uninit: !!x.extLeafUnwritten(ptr, i) });
        }
      }
    };
    visit(this.root, 0, max, END);
    return { recs, nodes };
  }
}

// ── a slow reference for hostile input: linear scans over the raw bytes ──────────────

function refCheck(C: Codes, b: Buffer, size: number, expect: number, lo: number, hi: number, fdb: number, bc: number): number {
  const cap = size === 60 ? 4 : Math.floor((size - 12) / 12);
  if (b.readUInt16LE(0) !== 0xf30a) return C.EXT_ERR_MAGIC;
  const depth = b.readUInt16LE(6);
  if (depth > 5 || (expect >= 0 && depth !== expect)) return C.EXT_ERR_DEPTH;
  const max = b.readUInt16LE(4);
  if (max === 0 || max > cap) return C.EXT_ERR_MAX;
  const n = b.readUInt16LE(2);
  if (n > max || (depth > 0 && n === 0)) return C.EXT_ERR_ENTRIES;
  const top = Math.min(hi, END);
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const e = 12 + 12 * i;
    const key = b.readUInt32LE(e);
    if (i === 0 && expect >= 0 && key !== lo) return C.EXT_ERR_RANGE;
    if (depth > 0) {
      if (key <= prev) return C.EXT_ERR_ORDER;
      if (key < lo || key >= top) return C.EXT_ERR_RANGE;
      const child = b.readUInt16LE(e + 8) * 2 ** 32 + b.readUInt32LE(e + 4);
      if (child < fdb || child >= bc) return C.EXT_ERR_PHYS;
      prev = key;
    } else {
      const raw = b.readUInt16LE(e + 4);
      const len = raw > 32768 ? raw - 32768 : raw;
      if (len === 0) return C.EXT_ERR_LEN;
      if (key < prev) return C.EXT_ERR_ORDER;
      if (key < lo || key + len > top) return C.EXT_ERR_RANGE;
      const p = b.readUInt16LE(e + 6) * 2 ** 32 + b.readUInt32LE(e + 8);
      if (p < fdb || p + len > bc) return C.EXT_ERR_PHYS;
      prev = key + len;
    }
  }
  return depth;
}

/** Lookup by linear scan; checksums judged by the engine's verified csum.ts (not under test here). */
export function refLookup(C: Codes, w: ExtWalker, lblk: number, csumOk: (blk: number) => boolean): Look {
  const { blockSize: bs, firstDataBlock: fdb, blocksCount: bc } = w.info;
  let b = w.iblock;
  let d = refCheck(C, b, 60, -1, 0, END, fdb, bc);
  if (d < 0) return { err: d, level: 0, loads: 0 };
  let hi = END;
  let level = 0;
  while (d > 0) {
    const n = b.readUInt16LE(2);
    let i = -1;
    for (let k = 0; k < n; k++) if (b.readUInt32LE(12 + 12 * k) <= lblk) i = k;
    if (i < 0) return { st: 1, phys: 0, len: b.readUInt32LE(12) - lblk, unw: false, loads: level };
    const e = 12 + 12 * i;
    const child = b.readUInt16LE(e + 8) * 2 ** 32 + b.readUInt32LE(e + 4);
    const clo = b.readUInt32LE(e);
    const chi = i + 1 < n ? b.readUInt32LE(e + 12) : Math.min(hi, END);
    level++;
    b = w.image.subarray(child * bs, (child + 1) * bs);
    const r = refCheck(C, b, bs, d - 1, clo, chi, fdb, bc);
    if (r !== d - 1) return { err: r, level, loads: level };
    if (w.csum && !csumOk(child)) return { err: CSUM_FAIL, level, loads: level };
    hi = chi;
    d--;
  }
  const top = Math.min(hi, END);
  if (!(lblk < top)) return { err: C.EXT_ERR_RANGE, level, loads: level };
  const n = b.readUInt16LE(2);
  let next = top;
  for (let k = 0; k < n; k++) {
    const e = 12 + 12 * k;
    const s = b.readUInt32LE(e);
    const raw = b.readUInt16LE(e + 4);
    const len = raw > 32768 ? raw - 32768 : raw;
    if (lblk >= s && lblk < s + len) {
      const p = b.readUInt16LE(e + 6) * 2 ** 32 + b.readUInt32LE(e + 8);
      return { st: 0, phys: p + (lblk - s), len: Math.min(s + len, top) - lblk, unw: raw > 32768, loads: level };
    }
    if (s > lblk && s < next) next = s;
  }
  return { st: 1, phys: 0, len: next - lblk, unw: false, loads: level };
}
