/**
 * The block-level directory editors of assembly/dir_mod.ts against obviously-correct
 * references: the literal reading of the directory-block rules in dir-helpers.ts
 * (refParseBlock), a plain record walk written here from the format description, and
 * JavaScript models of the entries and of the index arrays. (Whole directories are judged
 * by e2fsck in dir-write.test.ts; this file pins the per-block behaviour and the hostile-
 * input guarantees.)
 *
 * - Random add / remove / re-point / compact sequences on leaf blocks of 1, 4 and 64 KiB,
 *   with and without a checksum tail: after every step the block is valid, holds exactly
 *   the model's entries at the offsets the engine reported, and "no room" is answered
 *   exactly when no record has enough slack for the name.
 * - Leaf splits: nothing lost or duplicated, every name on the side its hash says, the
 *   continued bit exactly when equal hashes straddle the cut, the halves balanced so the
 *   name being added always fits afterwards.
 * - Index arrays: insert / node split / root growth / conversion against an array model,
 *   with the read side's dxRootCheck / dxNodeCheck accepting every result.
 * - Hostile blocks placed flush against the end of linear memory: every function returns
 *   a code (never traps), and any edit it accepts leaves a block the reference accepts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { awkwardNames, pick, randInt, refParseBlock, rng } from "./dir-helpers.ts";

let e: Engine;
let K: Record<string, number>;
let namePtr = 0;
let seedPtr = 0;
let scratch = 0;

const CONSTS = [
  "DIR_NOT_FOUND", "DIR_ERR_ARG", "DIRM_NOSPC", "DIRM_EXISTS", "DIRM_ERR_NAME", "DIRM_ERR_DX", "DIRM_ERR_NOT_LEAF",
  "DIRM_TOO_FEW", "DIRM_ERR_DOTS", "DXR_ENTRIES", "DXN_ENTRIES",
];

beforeAll(async () => {
  e = await Engine.create();
  K = Object.fromEntries(CONSTS.map((n) => [n, e.constant(n)]));
  namePtr = e.alloc(256);
  seedPtr = e.alloc(16);
  scratch = e.alloc(65536);
  e.u8.set(Uint8Array.from({ length: 16 }, (_, i) => i * 17 + 3), seedPtr);
});

const recLenFor = (n: number) => (8 + n + 3) & ~3;

interface Rec {
  off: number;
  rl: number;
  ino: number;
  nl: number;
}

/** Every record of a valid block in chain order (unused ones too), up to the tail. */
function records(blk: Uint8Array, bs: number, hasTail: boolean): Rec[] {
  const dv = new DataView(blk.buffer, blk.byteOffset, blk.byteLength);
  const end = hasTail ? bs - 12 : bs;
  const out: Rec[] = [];
  for (let off = 0; off < end;) {
    let rl = dv.getUint16(off + 4, true);
    if (bs === 65536 && (rl === 0 || rl === 65535)) rl = 65536;
    out.push({ off, rl, ino: dv.getUint32(off, true), nl: blk[off + 6]! });
    off += rl;
  }
  return out;
}

/** A map of name → [ino, type, …] as one sorted string (cheap to compare and to print). */
function flat(m: Map<string, number[]>): string {
  return [...m].map(([k, v]) => `${k}:${v[0]}:${v[1]}`).sort().join(" ");
}

const slack = (r: Rec) => r.rl - (r.ino ? recLenFor(r.nl) : 0);

function block(p: number, bs: number): Uint8Array {
  return e.u8.slice(p, p + bs);
}

function putName(n: Uint8Array): void {
  e.u8.set(n, namePtr);
}

/** Entries of a valid block as name(hex) → [ino, type, off]. */
function entriesOf(p: number, bs: number, hasTail: boolean): Map<string, [number, number, number]> {
  const ref = refParseBlock(block(p, bs), bs, hasTail, true);
  expect(ref).not.toBeNull();
  return new Map(ref!.map((r) => [r.name.toString("hex"), [r.ino, r.type, r.off]]));
}

describe("leaf edits against the reference", () => {
  for (const bs of [1024, 4096, 65536]) {
    for (const hasTail of [true, false]) {
      it(`${bs}-byte blocks${hasTail ? " with tail" : ""}: random add/remove/set/compact sequences`, () => {
        const x = e.x;
        const r = rng(bs + (hasTail ? 1 : 0));
        const names = awkwardNames(bs + 7, bs === 65536 ? 1500 : 300);
        const p = e.alloc(bs);
        const ht = hasTail ? 1 : 0;
        expect(x.dirInitBlock(p, bs, ht)).toBe(0);
        const model = new Map<string, [number, number]>();
        let nospc = 0;
        // Fill the block first (checked once at the end), then mix operations on it.
        for (const n of names) {
          putName(n);
          const ino = randInt(r, 1, 2 ** 32 - 1);
          const got = x.dirAddEntry(p, bs, namePtr, n.length, ino, 1, ht) as number;
          if (got === K.DIRM_NOSPC) break;
          expect(got).toBeGreaterThanOrEqual(0);
          model.set(n.toString("hex"), [ino >>> 0, 1]);
        }
        expect(flat(entriesOf(p, bs, hasTail))).toBe(flat(model));
        const steps = bs === 65536 ? 800 : 2000;
        for (let step = 0; step < steps; step++) {
          const op = randInt(r, 0, 9);
          const before = block(p, bs);
          if (op < 5) {
            const n = pick(r, names);
            const key = n.toString("hex");
            const ino = randInt(r, 1, 2 ** 32 - 1);
            const type = randInt(r, 0, 7);
            putName(n);
            const got = x.dirAddEntry(p, bs, namePtr, n.length, ino, type, ht) as number;
            const fits = records(before, bs, hasTail).some((rec) => slack(rec) >= recLenFor(n.length));
            if (model.has(key)) {
              expect(got).toBe(K.DIRM_EXISTS);
            } else if (!fits) {
              expect(got).toBe(K.DIRM_NOSPC);
              nospc++;
            } else {
              expect(got).toBeGreaterThanOrEqual(0);
              model.set(key, [ino >>> 0, type]);
              expect(entriesOf(p, bs, hasTail).get(key)?.[2]).toBe(got);
            }
            if (got < 0) expect(Buffer.compare(block(p, bs), before)).toBe(0);
          } else if (op < 8) {
            const present = model.size > 0 && r() < 0.8;
            const key = present ? pick(r, [...model.keys()]) : Buffer.from(`absent${step}`).toString("hex");
            const n = Buffer.from(key, "hex");
            putName(n);
            const off = present ? entriesOf(p, bs, hasTail).get(key)![2] : -1;
            if (op < 7) {
              const got = x.dirRemoveEntry(p, bs, namePtr, n.length, ht) as number;
              expect(got).toBe(present ? off : K.DIR_NOT_FOUND);
              if (present) {
                expect(x.dirModLastInode() >>> 0).toBe(model.get(key)![0]);
                model.delete(key);
              }
            } else {
              const ino = randInt(r, 1, 1000);
              const got = x.dirSetEntryInode(p, bs, namePtr, n.length, ino, 3, ht) as number;
              expect(got).toBe(present ? off : K.DIR_NOT_FOUND);
              if (present) {
                expect(x.dirModLastInode() >>> 0).toBe(model.get(key)![0]);
                model.set(key, [ino, 3]);
              }
            }
          } else if (op === 8) {
            const recs = records(before, bs, hasTail);
            expect(x.dirFreeSpace(p, bs, ht, 0)).toBe(Math.max(0, ...recs.map(slack)));
            const total = recs.reduce((a, rec) => a + slack(rec), 0);
            expect(x.dirFreeSpace(p, bs, ht, 1)).toBe(total);
            expect(x.dirIsEmpty(p, bs, ht)).toBe(model.size === 0 ? 1 : 0);
          } else {
            const recs = records(before, bs, hasTail);
            const total = recs.reduce((a, rec) => a + slack(rec), 0);
            expect(x.dirCompact(p, bs, ht)).toBe(total);
            const after = records(block(p, bs), bs, hasTail);
            // Live records packed in their old order, the last one holding all the slack.
            expect(after.filter((rec) => rec.ino).length).toBe(model.size);
            expect(after.slice(0, -1).every((rec) => slack(rec) === 0)).toBe(true);
          }
          expect(flat(entriesOf(p, bs, hasTail))).toBe(flat(model));
        }
        expect(nospc).toBeGreaterThan(0);
      });
    }
  }

  it("first block, '..' and emptiness", () => {
    const x = e.x;
    for (const bs of [1024, 65536]) {
      for (const ht of [0, 1]) {
        const p = e.alloc(bs);
        expect(x.dirInitFirst(p, bs, 12, 2, 2, ht)).toBe(0);
        const ref = refParseBlock(block(p, bs), bs, ht === 1, true)!;
        expect(ref.map((r) => [r.name.toString(), r.ino, r.type, r.off])).toEqual([[".", 12, 2, 0], ["..", 2, 2, 12]]);
        expect(x.dirIsEmpty(p, bs, ht)).toBe(1);
        expect(x.dirSetDotDot(p, bs, 99, ht)).toBe(12);
        expect(x.dirModLastInode()).toBe(2);
        putName(Buffer.from("f"));
        expect(x.dirAddEntry(p, bs, namePtr, 1, 13, 1, ht)).toBe(24);
        expect(x.dirIsEmpty(p, bs, ht)).toBe(0);
        expect(refParseBlock(block(p, bs), bs, ht === 1, true)!.map((r) => r.ino)).toEqual([12, 99, 13]);
        // A block without the dots is refused by dirSetDotDot.
        const q = e.alloc(bs);
        x.dirInitBlock(q, bs, ht);
        expect(x.dirSetDotDot(q, bs, 5, ht)).toBe(K.DIRM_ERR_DOTS);
      }
    }
  });

  it("rejects bad arguments without writing", () => {
    const x = e.x;
    const p = e.alloc(1024);
    x.dirInitBlock(p, 1024, 1);
    const before = block(p, 1024);
    for (const n of [Buffer.from("a/b"), Buffer.from("a\0")]) {
      putName(n);
      expect(x.dirAddEntry(p, 1024, namePtr, n.length, 5, 1, 1)).toBe(K.DIRM_ERR_NAME);
    }
    putName(Buffer.from("ok"));
    expect(x.dirAddEntry(p, 1024, namePtr, 0, 5, 1, 1)).toBe(K.DIRM_ERR_NAME);
    expect(x.dirAddEntry(p, 1024, namePtr, 256, 5, 1, 1)).toBe(K.DIRM_ERR_NAME);
    expect(x.dirAddEntry(p, 1024, namePtr, 2, 0, 1, 1)).toBe(K.DIR_ERR_ARG);
    expect(x.dirAddEntry(p, 1024, namePtr, 2, 5, 8, 1)).toBe(K.DIR_ERR_ARG);
    expect(x.dirAddEntry(p, 1000, namePtr, 2, 5, 1, 1)).toBe(K.DIR_ERR_ARG);
    // A block that validates only as an index block is not a leaf.
    const root = e.alloc(1024);
    x.dxInitRoot(root, 1024, 12, 2, 2, 1, 0, 1, 1);
    expect(x.dirAddEntry(root, 1024, namePtr, 2, 5, 1, 1)).toBe(K.DIRM_ERR_NOT_LEAF);
    expect(Buffer.compare(block(p, 1024), before)).toBe(0);
  });
});

describe("insert at a slot a lookup found (dirInsertAt)", () => {
  for (const bs of [1024, 4096]) {
    for (const ht of [0, 1]) {
      it(`${bs}-byte leaves${ht ? " with tail" : ""}: the same block as dirAddEntry, and wrong slots write nothing outside it`, () => {
        const x = e.x;
        const r = rng(bs * 3 + ht);
        const names = awkwardNames(bs + 11, 200);
        const p = e.alloc(bs);
        const q = e.alloc(bs); // the same edits through dirAddEntry
        x.dirInitBlock(p, bs, ht);
        x.dirInitBlock(q, bs, ht);
        let inserted = 0;
        for (const n of names) {
          putName(n);
          const need = recLenFor(n.length);
          expect(x.dirLookup(p, bs, namePtr, n.length, ht, 0, need)).toBe(K.DIR_NOT_FOUND);
          const fit = x.dirCheckedFit() as number;
          const ino = randInt(r, 1, 2 ** 31);
          const want = x.dirAddEntry(q, bs, namePtr, n.length, ino, 1, ht, 0, 0) as number;
          if (fit < 0) {
            expect(want).toBe(K.DIRM_NOSPC);
            break;
          }
          expect(x.dirInsertAt(p, bs, fit, namePtr, n.length, ino, 1, ht, 0)).toBe(want);
          expect(Buffer.compare(block(p, bs), block(q, bs))).toBe(0);
          inserted++;
        }
        expect(inserted).toBeGreaterThan(10);
        // Any other offset: a code or an insert inside the block, never a write outside.
        const guard = e.alloc(bs + 64);
        for (let trial = 0; trial < 400; trial++) {
          const at = randInt(r, 0, bs + 8);
          const blk = guard + 32;
          e.u8.set(block(q, bs), blk);
          e.u8.fill(0xa5, guard, blk);
          e.u8.fill(0xa5, blk + bs, blk + bs + 32);
          putName(Buffer.from("zz"));
          const got = e.call(() => x.dirInsertAt(blk, bs, at, namePtr, 2, 7, 1, ht, 0)) as number;
          expect(typeof got).toBe("number");
          expect(e.u8.subarray(guard, blk).every((b) => b === 0xa5)).toBe(true);
          expect(e.u8.subarray(blk + bs, blk + bs + 32).every((b) => b === 0xa5)).toBe(true);
        }
      });
    }
  }
});

describe("leaf split", () => {
  for (const [bs, hasTail, version] of [[1024, true, 1], [1024, false, 2], [4096, true, 0], [65536, false, 4]] as const) {
    it(`${bs}-byte leaves${hasTail ? " with tail" : ""}, hash version ${version}`, () => {
      const x = e.x;
      const ht = hasTail ? 1 : 0;
      const r = rng(bs * 3 + version);
      const src = e.alloc(bs);
      const dst = e.alloc(bs);
      const hashOf = (n: Uint8Array) => {
        putName(n);
        return x.dxHash(namePtr, n.length, version, seedPtr) >>> 0;
      };
      for (let round = 0; round < 30; round++) {
        x.dirInitBlock(src, bs, ht);
        const names = awkwardNames(round * 1000 + bs, bs === 65536 ? 3000 : 200);
        // (Equal-hash runs need real collisions: dir-write.test.ts finds and uses them.)
        const inside = new Map<string, number>();
        let pending: Buffer | undefined;
        for (const n of names) {
          putName(n);
          const got = x.dirAddEntry(src, bs, namePtr, n.length, randInt(r, 1, 9999), 1, ht) as number;
          if (got === K.DIRM_NOSPC) {
            pending = n;
            break;
          }
          expect(got).toBeGreaterThanOrEqual(0);
          inside.set(n.toString("hex"), hashOf(n));
        }
        if (!pending) continue;
        const moved = x.dxSplitLeaf(src, dst, bs, version, seedPtr, ht, scratch) as number;
        expect(moved).toBeGreaterThan(0);
        const split = x.dxLastSplitHash() >>> 0;
        const cut = (split & ~1) >>> 0;
        const a = refParseBlock(block(src, bs), bs, hasTail, true)!;
        const b = refParseBlock(block(dst, bs), bs, hasTail, true)!;
        expect(a).not.toBeNull();
        expect(b).not.toBeNull();
        expect(b.length).toBe(moved);
        const all = [...a, ...b].map((en) => en.name.toString("hex")).sort();
        expect(all).toEqual([...inside.keys()].sort());
        for (const en of b) expect(hashOf(en.name)).toBeGreaterThanOrEqual(cut);
        for (const en of a) expect(hashOf(en.name)).toBeLessThanOrEqual(cut);
        const straddles = a.some((en) => hashOf(en.name) === cut);
        expect((split & 1) === 1).toBe(straddles);
        // The pending name fits on its side afterwards.
        const target = hashOf(pending) >= cut ? dst : src;
        putName(pending);
        expect(x.dirAddEntry(target, bs, namePtr, pending.length, 7, 1, ht)).toBeGreaterThanOrEqual(0);
      }
    });
  }

  it("refuses fewer than two entries and a missing scratch area", () => {
    const x = e.x;
    const src = e.alloc(1024);
    const dst = e.alloc(1024);
    x.dirInitBlock(src, 1024, 1);
    expect(x.dxSplitLeaf(src, dst, 1024, 1, seedPtr, 1, scratch)).toBe(K.DIRM_TOO_FEW);
    putName(Buffer.from("one"));
    x.dirAddEntry(src, 1024, namePtr, 3, 5, 1, 1);
    expect(x.dxSplitLeaf(src, dst, 1024, 1, seedPtr, 1, scratch)).toBe(K.DIRM_TOO_FEW);
    expect(x.dxSplitLeaf(src, dst, 1024, 1, seedPtr, 1, 0)).toBe(K.DIR_ERR_ARG);
    expect(x.dxSplitLeaf(src, dst, 1024, 6, seedPtr, 1, scratch)).toBe(K.DIR_ERR_ARG);
  });
});

// ── index arrays ─────────────────────────────────────────────────────────────────────────

/** The [hash, block] entries of an index array (entry 0's hash reads as 0). */
function indexOf(p: number, off: number): [number, number][] {
  const dv = e.dv;
  const count = dv.getUint16(p + off + 2, true);
  return Array.from({ length: count }, (_, i) => [i ? dv.getUint32(p + off + i * 8, true) : 0, dv.getUint32(p + off + i * 8 + 4, true)]);
}

describe("index edits against an array model", () => {
  for (const [bs, csum] of [[1024, true], [4096, false]] as const) {
    it(`${bs}-byte blocks${csum ? " with dx tail" : ""}: insert, split nodes, grow the root, up to the level limit`, () => {
      const x = e.x;
      const hc = csum ? 1 : 0;
      const r = rng(bs + 5);
      const root = e.alloc(bs);
      expect(x.dxInitRoot(root, bs, 12, 2, 2, 1, 0, 1, hc)).toBe(0);
      expect(x.dxRootCheck(root, bs, hc, 2)).toBe(0);
      const rootLimit = x.dxRootLimit(bs, hc) as number;
      const model: [number, number][] = [[0, 1]];
      let block = 2;
      while (model.length < rootLimit) {
        const i = randInt(r, 0, model.length - 1);
        const lo = i === 0 ? 0 : model[i]![0];
        const hi = i + 1 < model.length ? model[i + 1]![0] : 0xffffffff;
        const hash = lo + Math.floor(r() * (hi - lo + 1));
        expect(x.dxInsertEntry(root, K.DXR_ENTRIES, bs, i, hash, block)).toBe(model.length + 1);
        model.splice(i + 1, 0, [hash, block++]);
        expect(indexOf(root, K.DXR_ENTRIES)).toEqual(model);
      }
      expect(x.dxRootCheck(root, bs, hc, 2)).toBe(0);
      expect(x.dxInsertEntry(root, K.DXR_ENTRIES, bs, 0, 0, 99)).toBe(K.DIRM_NOSPC);
      // Order violations and oversized blocks are refused.
      const node = e.alloc(bs);
      x.dxInitNode(node, bs, 1, hc);
      x.dxInsertEntry(node, K.DXN_ENTRIES, bs, 0, 100, 2);
      expect(x.dxInsertEntry(node, K.DXN_ENTRIES, bs, 1, 50, 3)).toBe(K.DIR_ERR_ARG);
      expect(x.dxInsertEntry(node, K.DXN_ENTRIES, bs, 0, 150, 3)).toBe(K.DIR_ERR_ARG);
      expect(x.dxInsertEntry(node, K.DXN_ENTRIES, bs, 0, 50, 0x10000000)).toBe(K.DIR_ERR_ARG);
      expect(x.dxInsertEntry(node, K.DXN_ENTRIES, bs, 5, 150, 3)).toBe(K.DIR_ERR_ARG);

      // Grow: every root entry moves to the node; the root points at it, one level deeper.
      const n1 = e.alloc(bs);
      expect(x.dxGrowRoot(root, n1, bs, 500, hc, 2)).toBe(1);
      expect(indexOf(root, K.DXR_ENTRIES)).toEqual([[0, 500]]);
      expect(indexOf(n1, K.DXN_ENTRIES)).toEqual(model);
      expect(x.dxRootCheck(root, bs, hc, 2)).toBe(1);
      expect(x.dxNodeCheck(n1, bs, hc)).toBe(0);
      expect(x.dxGrowRoot(root, e.alloc(bs), bs, 501, hc, 2)).toBe(K.DIRM_NOSPC);
      // Split the node: upper half to a new node, its first hash for the parent.
      const n2 = e.alloc(bs);
      const k = x.dxSplitNode(n1, n2, bs, hc) as number;
      expect(k).toBe(model.length >> 1);
      expect(x.dxLastSplitHash() >>> 0).toBe(model[k]![0]);
      expect(indexOf(n1, K.DXN_ENTRIES)).toEqual(model.slice(0, k));
      expect(indexOf(n2, K.DXN_ENTRIES)).toEqual([[0, model[k]![1]], ...model.slice(k + 1)]);
      expect(x.dxNodeCheck(n1, bs, hc)).toBe(0);
      expect(x.dxNodeCheck(n2, bs, hc)).toBe(0);
      expect(x.dxInsertEntry(root, K.DXR_ENTRIES, bs, 0, model[k]![0], 600)).toBe(2);
      // With large_dir a third level is allowed, not a fourth.
      const n3 = e.alloc(bs);
      expect(x.dxGrowRoot(root, n3, bs, 700, hc, 3)).toBe(2);
      expect(indexOf(n3, K.DXN_ENTRIES)).toEqual([[0, 500], [model[k]![0], 600]]);
      expect(x.dxGrowRoot(root, e.alloc(bs), bs, 701, hc, 3)).toBe(K.DIRM_NOSPC);
    });
  }

  it("converts a linear first block into a root and one leaf", () => {
    const x = e.x;
    for (const ht of [0, 1]) {
      const b0 = e.alloc(1024);
      const leaf = e.alloc(1024);
      x.dirInitFirst(b0, 1024, 12, 2, 2, ht);
      const names = awkwardNames(55, 40);
      const want = new Map<string, number>();
      for (const n of names) {
        putName(n);
        const got = x.dirAddEntry(b0, 1024, namePtr, n.length, want.size + 20, 1, ht) as number;
        if (got < 0) break;
        want.set(n.toString("hex"), want.size + 20);
      }
      // Remove one to leave a hole in the chain.
      const gone = [...want.keys()][1]!;
      putName(Buffer.from(gone, "hex"));
      x.dirRemoveEntry(b0, 1024, namePtr, gone.length / 2, ht);
      want.delete(gone);
      expect(x.dxConvertRoot(b0, leaf, 1024, 1, 1, ht, ht)).toBe(want.size);
      expect(x.dxRootCheck(b0, 1024, ht, 2)).toBe(0);
      expect(indexOf(b0, K.DXR_ENTRIES)).toEqual([[0, 1]]);
      expect(e.dv.getUint32(b0, true)).toBe(12);
      expect(e.dv.getUint32(b0 + 12, true)).toBe(2);
      const ref = refParseBlock(block(leaf, 1024), 1024, ht === 1, true)!;
      expect(new Map(ref.map((en) => [en.name.toString("hex"), en.ino]))).toEqual(want);
      // Not a first block: refused before anything is written.
      const plain = e.alloc(1024);
      x.dirInitBlock(plain, 1024, ht);
      expect(x.dxConvertRoot(plain, leaf, 1024, 1, 1, ht, ht)).toBe(K.DIRM_ERR_DOTS);
    }
  });
});

// ── hostile input ────────────────────────────────────────────────────────────────────────

describe("hostile blocks", () => {
  it("every function returns a code at the end of memory; accepted edits leave valid blocks", () => {
    const x = e.x;
    const bs = 1024;
    const r = rng(666);
    // Valid material: a full leaf, a first block, a root and a node.
    const leaf = e.alloc(bs);
    x.dirInitBlock(leaf, bs, 1);
    for (const n of awkwardNames(6, 60)) {
      putName(n);
      if ((x.dirAddEntry(leaf, bs, namePtr, n.length, 33, 1, 1) as number) < 0) break;
    }
    const first = e.alloc(bs);
    x.dirInitFirst(first, bs, 12, 2, 2, 0);
    const root = e.alloc(bs);
    x.dxInitRoot(root, bs, 12, 2, 2, 1, 0, 1, 1);
    for (let i = 0; i < 40; i++) x.dxInsertEntry(root, K.DXR_ENTRIES, bs, i, (i + 1) * 1000, i + 2);
    const node = e.alloc(bs);
    x.dxInitNode(node, bs, 1, 1);
    for (let i = 0; i < 40; i++) x.dxInsertEntry(node, K.DXN_ENTRIES, bs, i, (i + 1) * 1000, i + 2);
    const sources = [leaf, first, root, node].map((p) => block(p, bs));
    const dst = e.alloc(bs);
    const memEnd = x.memory.buffer.byteLength;
    const p = memEnd - bs;
    expect(x.memAlloc(16) + 16).toBeLessThanOrEqual(p);
    putName(Buffer.from("newname"));
    let accepted = 0;
    for (let n = 0; n < 3000; n++) {
      const blk = Uint8Array.from(pick(r, sources));
      const dv = new DataView(blk.buffer);
      for (let k = randInt(r, 1, 3); k > 0; k--) {
        const o = randInt(r, 0, bs - 4);
        switch (randInt(r, 0, 3)) {
          case 0: dv.setUint16(o & ~3, pick(r, [0, 1, 8, 12, 0xffff, bs, bs - 12, randInt(r, 0, 0xffff)]), true); break;
          case 1: blk[o] = randInt(r, 0, 255); break;
          case 2: dv.setUint16(pick(r, [4, 16, 0x20, 0x22, 0x08, 0x0a, 0x1e]), randInt(r, 0, 0xffff), true); break;
          default: blk[pick(r, [6, 18, 0x1d, 0x1f])] = randInt(r, 0, 255); break;
        }
      }
      const ht = r() < 0.8 ? 1 : 0;
      e.u8.set(blk, p);
      const fn = randInt(r, 0, 11);
      let rc = 0;
      switch (fn) {
        case 0: rc = x.dirAddEntry(p, bs, namePtr, 7, 9, 1, ht); break;
        case 1: rc = x.dirRemoveEntry(p, bs, namePtr, 7, ht); break;
        case 2: rc = x.dirSetEntryInode(p, bs, namePtr, 7, 9, 1, ht); break;
        case 3: rc = x.dirSetDotDot(p, bs, 9, ht); break;
        case 4: rc = x.dirIsEmpty(p, bs, ht); break;
        case 5: rc = x.dirFreeSpace(p, bs, ht, randInt(r, 0, 1)); break;
        case 6: rc = x.dirCompact(p, bs, ht); break;
        case 7: rc = x.dxSplitLeaf(p, dst, bs, 1, seedPtr, ht, scratch); break;
        case 8: rc = x.dxInsertEntry(p, pick(r, [K.DXR_ENTRIES, K.DXN_ENTRIES]), bs, randInt(r, 0, 50), randInt(r, 0, 2 ** 31), 77); break;
        case 9: rc = x.dxSplitNode(p, dst, bs, ht); break;
        case 10: rc = x.dxGrowRoot(p, dst, bs, 88, ht, 3); break;
        default: rc = x.dxConvertRoot(p, dst, bs, 1, 5, ht, ht); break;
      }
      expect(typeof rc).toBe("number");
      // Leaf edits that succeed must leave a block the reference accepts.
      if (fn <= 3 || fn === 6 || fn === 7) {
        if (rc >= 0) {
          accepted++;
          expect(refParseBlock(block(p, bs), bs, ht === 1, true)).not.toBeNull();
          if (fn === 7) expect(refParseBlock(block(dst, bs), bs, ht === 1, true)).not.toBeNull();
        } else {
          // Nothing is written when a block is refused.
          expect(Buffer.compare(block(p, bs), blk)).toBe(0);
        }
      }
      if ((fn === 9 || fn === 10) && rc >= 0) {
        expect(x.dxNodeCheck(dst, bs, ht)).toBe(0);
      }
      if (fn === 11 && rc >= 0) {
        expect(x.dxRootCheck(p, bs, ht, 3)).toBe(0);
        expect(refParseBlock(block(dst, bs), bs, ht === 1, true)).not.toBeNull();
      }
    }
    expect(accepted).toBeGreaterThan(100);
  });
});
