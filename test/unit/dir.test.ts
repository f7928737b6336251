/**
 * Linear directory blocks (assembly/dir.ts) against e2fsprogs and a literal reading of the
 * format rules.
 *
 * Images: mke2fs -d builds an unindexed directory of 400 awkward names (UTF-8, raw bytes
 * >= 0x80, 255-byte names, subdirectories and symlinks); debugfs then deletes a third of
 * them, leaving merged records and unused first entries whose old names are still in the
 * block; e2fsck -fn must pass. Variants: ext4 with metadata_csum (leaf tails), without it,
 * 4 KiB blocks, and ext2 without the filetype feature.
 *
 * Checks: every block validates; iterating every block yields exactly `debugfs ls -p`;
 * entries come out in block order at the offsets the reference parse finds; streaming with
 * the minimum output buffer yields the same sequence; every name is found in its block at
 * its offset and nowhere else; deleted names are not found although their bytes remain.
 * Then a thousand seeded corruptions per variant, each block placed flush against the end
 * of linear memory: every call returns normally, validity agrees with the reference, and
 * valid blocks iterate and look up exactly as the reference says.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { scratchDir, tool } from "./e2fs-oracle.ts";
import {
  awkwardNames, decodeRecords, fsck, listDir, loadDir, pick, populate, randInt, refParseBlock, rng,
  type DirImage, type RefEntry,
} from "./dir-helpers.ts";

let e: Engine;
let scratch: { dir: string; cleanup(): void };
let K: Record<string, number>;
let srcDir = "";
let names: Buffer[] = [];
const NAMES = 400;

const CONSTS = [
  "DIR_NOT_FOUND", "DIR_ERR_REC_LEN", "DIR_ERR_ALIGN", "DIR_ERR_OVERRUN", "DIR_ERR_NAME_LEN", "DIR_ERR_NAME",
  "DIR_ERR_TAIL", "DIR_ERR_INODE", "DIR_ERR_ARG", "DIR_ITER_MIN_CAP", "DIR_REC_HEADER", "SB_INODES_COUNT",
  "SB_FEATURE_RO_COMPAT", "SB_FEATURE_INCOMPAT", "FEATURE_RO_COMPAT_METADATA_CSUM", "FEATURE_INCOMPAT_FILETYPE",
];

beforeAll(async () => {
  e = await Engine.create();
  scratch = scratchDir("dir-");
  K = Object.fromEntries(CONSTS.map((n) => [n, e.constant(n)]));
  srcDir = join(scratch.dir, "src");
  names = awkwardNames(11, NAMES);
  populate(join(srcDir, "d"), names);
});
afterAll(() => scratch?.cleanup());

interface Variant {
  label: string;
  args: string[];
}
const VARIANTS: Variant[] = [
  { label: "ext4, metadata_csum, 1 KiB", args: ["-t", "ext4", "-b", "1024", "-O", "^dir_index"] },
  { label: "ext4, no metadata_csum, 1 KiB", args: ["-t", "ext4", "-b", "1024", "-O", "^dir_index,^metadata_csum"] },
  { label: "ext4, metadata_csum, 4 KiB", args: ["-t", "ext4", "-b", "4096", "-O", "^dir_index"] },
  { label: "ext2 without filetype, 1 KiB", args: ["-t", "ext2", "-b", "1024", "-O", "^dir_index,^filetype"] },
];

interface Loaded {
  d: DirImage;
  ptr: number;
  hasTail: boolean;
  hasFileType: boolean;
  deleted: Buffer[];
  inodesCount: number;
}

/** Names debugfs's command parser passes through untouched. */
const safeForDebugfs = (n: Buffer) => /^[A-Za-z0-9_][A-Za-z0-9_.]*$/.test(n.toString("latin1"));

function load(v: Variant, idx: number): Loaded {
  const img = join(scratch.dir, `d${idx}.img`);
  tool("mke2fs", ["-F", "-q", ...v.args, "-d", srcDir, img, "8M"]);
  // Delete a third of the deletable names: records merge into their predecessors, or
  // become unused first entries, with the old bytes left in place.
  const r = rng(100 + idx);
  const deleted = names.filter((n, i) => safeForDebugfs(n) && i % 50 !== 0 && r() < 0.6);
  tool("debugfs", ["-w", "-f", "-", img], deleted.map((n) => `rm /d/${n.toString("latin1")}`).join("\n") + "\n");
  expect(fsck(img, ["-fn"])).toBe(0);
  const d = loadDir(img, "/d");
  const hasTail = (d.sb.readUInt32LE(K.SB_FEATURE_RO_COMPAT) & K.FEATURE_RO_COMPAT_METADATA_CSUM) !== 0;
  const hasFileType = (d.sb.readUInt32LE(K.SB_FEATURE_INCOMPAT) & K.FEATURE_INCOMPAT_FILETYPE) !== 0;
  const ptr = e.alloc(d.data.length);
  e.u8.set(d.data, ptr);
  return { d, ptr, hasTail, hasFileType, deleted, inodesCount: d.sb.readUInt32LE(K.SB_INODES_COUNT) };
}

const key = (name: Buffer, ino: number, type: number) => `${name.toString("hex")}/${ino}/${type}`;

/** Every record dirIterate yields for one block, resuming until the block is done. */
function iterateBlock(p: number, bs: number, L: Loaded, cap: number, out: number, startOff = 0) {
  const recs: { ino: number; type: number; name: Buffer }[] = [];
  let off = startOff;
  let calls = 0;
  while (off < bs) {
    const n = e.x.dirIterate(p, bs, off, out, cap, L.hasTail, L.hasFileType);
    expect(n).toBeGreaterThanOrEqual(0);
    const next = e.x.dirIterateNextOffset() >>> 0;
    // Progress: a call either yields something or finishes the block.
    expect(n > 0 || next >= bs).toBe(true);
    expect(next).toBeGreaterThan(off);
    recs.push(...decodeRecords(e.u8.subarray(out, out + cap), n));
    off = next;
    calls++;
  }
  return { recs, calls };
}

describe.each(VARIANTS.map((v, i) => [v.label, v, i] as const))("directory blocks: %s", (_label, v, idx) => {
  let L: Loaded;
  let bs: number;
  let nb: number;
  let ref: RefEntry[][];
  beforeAll(() => {
    L = load(v, idx);
    bs = L.d.blockSize;
    nb = L.d.blocks.length;
    ref = [];
    for (let b = 0; b < nb; b++) {
      const parsed = refParseBlock(L.d.data.subarray(b * bs, (b + 1) * bs), bs, L.hasTail, L.hasFileType);
      expect(parsed).not.toBeNull();
      ref.push(parsed!);
    }
  }, 60_000);

  it("every block validates, with and without the tail expectation as the reference says", () => {
    expect(nb).toBeGreaterThan(v.label.includes("4 KiB") ? 3 : 20);
    for (let b = 0; b < nb; b++) {
      const p = L.ptr + b * bs;
      expect(e.x.dirBlockCheck(p, bs, L.hasTail)).toBe(0);
      const other = refParseBlock(L.d.data.subarray(b * bs, (b + 1) * bs), bs, !L.hasTail, L.hasFileType);
      expect(e.x.dirBlockCheck(p, bs, !L.hasTail) === 0).toBe(other !== null);
    }
    // A volume without checksums has no tails: demanding one must fail.
    if (!L.hasTail) expect(e.x.dirBlockCheck(L.ptr, bs, true)).toBe(K.DIR_ERR_TAIL);
  });

  it("iterating every block yields exactly the debugfs listing, in block order", () => {
    const cap = 65536;
    const out = e.alloc(cap);
    const seen: string[] = [];
    for (let b = 0; b < nb; b++) {
      const { recs, calls } = iterateBlock(L.ptr + b * bs, bs, L, cap, out);
      expect(calls).toBe(1);
      expect(recs.map((r) => key(r.name, r.ino, r.type))).toEqual(ref[b].map((r) => key(r.name, r.ino, r.type)));
      for (const r of recs) seen.push(L.hasFileType ? key(r.name, r.ino, r.type) : key(r.name, r.ino, 0));
      if (!L.hasFileType) expect(recs.every((r) => r.type === 0)).toBe(true);
    }
    const listed = listDir(L.d.img, "/d").map((l) => key(l.name, l.ino, L.hasFileType ? l.type : 0));
    expect(seen.sort()).toEqual(listed.sort());
    expect(listed.length).toBe(NAMES - L.deleted.length + 2);
  });

  it("streams with the smallest output buffer and resumes mid-entry", () => {
    const cap = K.DIR_ITER_MIN_CAP;
    const out = e.alloc(cap);
    expect(e.x.dirIterate(L.ptr, bs, 0, out, cap - 1, L.hasTail, L.hasFileType)).toBe(K.DIR_ERR_ARG);
    let multi = 0;
    for (let b = 0; b < nb; b++) {
      const p = L.ptr + b * bs;
      const { recs, calls } = iterateBlock(p, bs, L, cap, out);
      if (calls > 1) multi++;
      expect(recs.map((r) => key(r.name, r.ino, r.type))).toEqual(ref[b].map((r) => key(r.name, r.ino, r.type)));
      // A start offset inside entry k resumes at entry k + 1.
      ref[b].forEach((ent, k) => {
        const inside = iterateBlock(p, bs, L, cap, out, ent.off + 4).recs;
        expect(inside.map((r) => r.name.toString("hex"))).toEqual(ref[b].slice(k + 1).map((r) => r.name.toString("hex")));
      });
    }
    expect(multi).toBeGreaterThan(0);
  });

  it("looks up every name in its block only, and never a deleted one", () => {
    const namePtr = e.alloc(256);
    const where = new Map<string, { b: number; ent: RefEntry }>();
    ref.forEach((ents, b) => ents.forEach((ent) => where.set(ent.name.toString("hex"), { b, ent })));
    const probe = (n: Buffer, b: number) => {
      e.u8.set(n, namePtr);
      return e.x.dirLookup(L.ptr + b * bs, bs, namePtr, n.length, L.hasTail);
    };
    for (const n of names) {
      const w = where.get(n.toString("hex"));
      const isDeleted = L.deleted.some((x) => x.equals(n));
      expect(w === undefined).toBe(isDeleted);
      for (let b = 0; b < nb; b++) {
        const got = probe(n, b);
        if (w && w.b === b) {
          expect(got).toBe(w.ent.off);
          const p = L.ptr + b * bs;
          expect(e.x.dirEntryInode(p, bs, got) >>> 0).toBe(w.ent.ino);
          expect(e.x.dirEntryNameLen(p, bs, got)).toBe(n.length);
          expect(e.x.dirEntryType(p, bs, got, L.hasFileType)).toBe(w.ent.type);
          expect(e.x.dirEntryRecLen(p, bs, got)).toBeGreaterThanOrEqual(e.x.dirRecLenFor(n.length));
          const np = e.x.dirEntryNamePtr(p, got);
          expect(Buffer.from(e.u8.subarray(np, np + n.length)).equals(n)).toBe(true);
        } else {
          expect(got).toBe(K.DIR_NOT_FOUND);
        }
      }
    }
    // Deleted names whose bytes are still in a block (an unused first entry keeps its
    // name) must not match.
    let ghosts = 0;
    for (const n of L.deleted) {
      if (L.d.data.includes(n)) ghosts++;
    }
    expect(ghosts).toBeGreaterThan(0);
    // Prefixes and extensions of real names are different names.
    for (const n of names.slice(0, 50)) {
      const w = where.get(n.toString("hex"));
      if (!w) continue;
      if (n.length > 1) {
        const pre = n.subarray(0, n.length - 1);
        const pw = where.get(pre.toString("hex"));
        expect(probe(pre, w.b)).toBe(pw && pw.b === w.b ? pw.ent.off : K.DIR_NOT_FOUND);
      }
      if (n.length < 255) expect(probe(Buffer.concat([n, Buffer.from("~")]), w.b)).toBe(K.DIR_NOT_FOUND);
    }
    expect(probe(Buffer.alloc(0), 0)).toBe(K.DIR_NOT_FOUND);
  });

  it("rejects entries naming inodes above the configured limit", () => {
    e.x.dirSetInodeLimit(L.inodesCount);
    for (let b = 0; b < nb; b++) expect(e.x.dirBlockCheck(L.ptr + b * bs, bs, L.hasTail)).toBe(0);
    let rejected = 0;
    for (let b = 0; b < nb; b++) {
      const max = Math.max(0, ...ref[b].map((r) => r.ino));
      if (max <= 1) continue;
      e.x.dirSetInodeLimit(max - 1);
      expect(e.x.dirBlockCheck(L.ptr + b * bs, bs, L.hasTail)).toBe(K.DIR_ERR_INODE);
      rejected++;
    }
    e.x.dirSetInodeLimit(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it("survives a thousand seeded corruptions, agreeing with the reference", () => corrupt(L, ref, idx));
});

// ── corruption ───────────────────────────────────────────────────────────────────────────

function corrupt(L: Loaded, ref: RefEntry[][], idx: number) {
  const bs = L.d.blockSize;
  const out = e.alloc(65536);
  const namePtr = e.alloc(256);
  const heapTop = e.x.memAlloc(16) + 16;
  const memEnd = e.x.memory.buffer.byteLength;
  const p = memEnd - bs; // any read past the block is past the end of memory: a trap
  expect(heapTop).toBeLessThanOrEqual(p);
  const r = rng(900 + idx);
  let valid = 0;
  let invalid = 0;
  const codes = new Set<number>();
  for (let n = 0; n < 1000; n++) {
    const b = randInt(r, 0, ref.length - 1);
    const blk = Uint8Array.from(L.d.data.subarray(b * bs, (b + 1) * bs));
    const dv = new DataView(blk.buffer);
    // Entry offsets of the original chain (live and unused), to aim at header fields.
    const offs: number[] = [];
    for (let o = 0; o < bs - (L.hasTail ? 12 : 0);) {
      offs.push(o);
      o += dv.getUint16(o + 4, true) || bs;
    }
    const flips = randInt(r, 1, 2);
    for (let k = 0; k < flips; k++) {
      const o = pick(r, offs);
      switch (randInt(r, 0, 7)) {
        case 0: dv.setUint16(o + 4, pick(r, [0, 1, 4, 8, 11, 12, 13, 16, bs - o, bs - o + 4, bs - o - 12, bs, 65535, randInt(r, 0, 65535)]), true); break;
        case 1: blk[o + 4 + randInt(r, 0, 1)] ^= 1 << randInt(r, 0, 7); break;
        case 2: blk[o + 6] = pick(r, [0, 1, 2, 4, 5, 200, 255, randInt(r, 0, 255)]); break;
        case 3: dv.setUint32(o, pick(r, [0, 1, 2, 11, 0xffffffff, randInt(r, 0, 2 ** 31)]), true); break;
        case 4: blk[o + 7] = randInt(r, 0, 255); break;
        case 5: blk[o + 8 + randInt(r, 0, 3)] = pick(r, [0, 0x2f, 0x2e, 0x80]); break;
        case 6: blk[bs - 12 + randInt(r, 0, 11)] = randInt(r, 0, 255); break; // the tail
        default: blk[randInt(r, 0, bs - 1)] = randInt(r, 0, 255); break;
      }
    }
    e.u8.set(blk, p);
    const hasTail = r() < 0.9 ? L.hasTail : !L.hasTail;
    const want = refParseBlock(blk, bs, hasTail, L.hasFileType);
    const got = e.call(() => e.x.dirBlockCheck(p, bs, hasTail));
    if (want === null) {
      expect(got).toBeLessThan(-1);
      codes.add(got);
      invalid++;
    } else {
      expect(got).toBe(0);
      valid++;
    }
    // Iteration from a random start with a random buffer size.
    const start = r() < 0.5 ? 0 : randInt(r, 0, bs + 8);
    const cap = r() < 0.1 ? randInt(r, 0, 260) : randInt(r, 261, 4096);
    const cnt = e.call(() => e.x.dirIterate(p, bs, start, out, cap, hasTail, L.hasFileType));
    if (cap < 261) expect(cnt).toBe(K.DIR_ERR_ARG);
    else if (want === null) expect(cnt).toBe(got);
    else {
      const expectRecs = want.filter((x) => x.off >= start);
      expect(cnt).toBeGreaterThanOrEqual(0);
      const recs = decodeRecords(e.u8.subarray(out, out + cap), cnt);
      expect(recs.map((x) => key(x.name, x.ino, x.type))).toEqual(expectRecs.slice(0, cnt).map((x) => key(x.name, x.ino, x.type)));
      if (cnt < expectRecs.length) expect(e.x.dirIterateNextOffset()).toBe(expectRecs[cnt].off);
      else expect(e.x.dirIterateNextOffset()).toBe(bs);
    }
    // Lookups of the block's original names (and of one that is certainly absent).
    for (const ent of [...ref[b].slice(0, 3), { name: Buffer.from("no such name") } as RefEntry]) {
      e.u8.set(ent.name, namePtr);
      const off = e.call(() => e.x.dirLookup(p, bs, namePtr, ent.name.length, hasTail));
      if (want === null) expect(off).toBe(got);
      else {
        const hit = want.find((x) => x.name.equals(ent.name));
        expect(off).toBe(hit ? hit.off : K.DIR_NOT_FOUND);
      }
    }
    // Accessors at arbitrary offsets never read outside the block.
    const o = randInt(r, 0, bs + 16);
    e.call(() => [e.x.dirEntryInode(p, bs, o), e.x.dirEntryRecLen(p, bs, o), e.x.dirEntryNameLen(p, bs, o), e.x.dirEntryType(p, bs, o, true)]);
  }
  expect(valid).toBeGreaterThan(50);
  expect(invalid).toBeGreaterThan(300);
  expect(codes.size).toBeGreaterThanOrEqual(L.hasTail ? 6 : 5);
}

// ── synthetic blocks: 64 KiB rec_len encoding, htree shapes, arguments ──────────────────

describe("synthetic directory blocks", () => {
  /** A block with entries [inode, name, recLen (stored)] laid end to end. */
  function build(bs: number, ents: [number, string, number][], tail = false): Uint8Array {
    const b = new Uint8Array(bs);
    const dv = new DataView(b.buffer);
    let o = 0;
    for (const [ino, name, rl] of ents) {
      dv.setUint32(o, ino, true);
      dv.setUint16(o + 4, rl, true);
      b[o + 6] = name.length;
      b[o + 7] = 1;
      b.set(Buffer.from(name), o + 8);
      o += rl === 0 || rl === 65535 ? 65536 : rl;
    }
    if (tail) {
      dv.setUint16(bs - 8, 12, true);
      b[bs - 5] = 0xde;
    }
    return b;
  }
  const run = (b: Uint8Array, bs: number, hasTail: boolean) => {
    const p = e.alloc(bs);
    e.u8.set(b, p);
    const out = e.alloc(4096);
    const check = e.x.dirBlockCheck(p, bs, hasTail);
    const n = e.x.dirIterate(p, bs, 0, out, 4096, hasTail, true);
    const ref = refParseBlock(b, bs, hasTail, true);
    expect(check === 0).toBe(ref !== null);
    return { check, recs: n >= 0 ? decodeRecords(e.u8.subarray(out, out + 4096), n).map((x) => x.name.toString()) : n };
  };

  it("decodes whole-block rec_len of 64 KiB blocks (stored as 0 or 65535)", () => {
    const bs = 65536;
    expect(run(build(bs, [[5, "a", 0]]), bs, false)).toEqual({ check: 0, recs: ["a"] });
    expect(run(build(bs, [[5, "a", 65535]]), bs, false)).toEqual({ check: 0, recs: ["a"] });
    expect(run(build(bs, [[5, "a", 12], [6, "b", 65524]]), bs, false)).toEqual({ check: 0, recs: ["a", "b"] });
    // An htree node (unused entry spanning the block) is accepted where a tail is expected.
    expect(run(build(bs, [[0, "", 0]]), bs, true)).toEqual({ check: 0, recs: [] });
    expect(run(build(bs, [[5, "a", 12], [6, "b", 65512]], true), bs, true)).toEqual({ check: 0, recs: ["a", "b"] });
    // The special values mean nothing at smaller block sizes.
    expect(run(build(4096, [[5, "a", 0]]), 4096, false).check).toBe(K.DIR_ERR_REC_LEN);
  });

  it("accepts htree root and node shapes in checksummed directories, yielding only . and ..", () => {
    const bs = 1024;
    const root = build(bs, [[2, ".", 12], [2, "..", bs - 12]]);
    root.fill(0xab, 24); // index data in the slack of ".."
    expect(run(root, bs, true)).toEqual({ check: 0, recs: [".", ".."] });
    const node = build(bs, [[0, "", bs]]);
    node.fill(0xcd, 8);
    expect(run(node, bs, true)).toEqual({ check: 0, recs: [] });
    // A live entry spanning the block is no htree block: a tail is missing.
    expect(run(build(bs, [[7, "x", bs]]), bs, true).check).toBe(K.DIR_ERR_TAIL);
    expect(run(build(bs, [[7, "x", bs - 12]], true), bs, true)).toEqual({ check: 0, recs: ["x"] });
  });

  it("reports each kind of damage with its own code", () => {
    const bs = 1024;
    expect(run(build(bs, [[5, "abc", 8], [6, "d", bs - 8]]), bs, false).check).toBe(K.DIR_ERR_REC_LEN);
    expect(run(build(bs, [[5, "abcdefghi", 16], [6, "d", bs - 16]]), bs, false).check).toBe(K.DIR_ERR_REC_LEN);
    expect(run(build(bs, [[5, "abc", 14], [6, "d", bs - 14]]), bs, false).check).toBe(K.DIR_ERR_ALIGN);
    expect(run(build(bs, [[5, "abc", 12], [6, "d", bs]]), bs, false).check).toBe(K.DIR_ERR_OVERRUN);
    expect(run(build(bs, [[5, "", bs]]), bs, false).check).toBe(K.DIR_ERR_NAME_LEN);
    expect(run(build(bs, [[5, "a/b", bs]]), bs, false).check).toBe(K.DIR_ERR_NAME);
    expect(run(build(bs, [[5, "a\0b", bs]]), bs, false).check).toBe(K.DIR_ERR_NAME);
    expect(run(build(bs, [[5, "abc", bs - 12]]), bs, true).check).toBe(K.DIR_ERR_TAIL);
    // An unused entry may keep any name bytes.
    expect(run(build(bs, [[0, "a/b", 12], [5, "ok", bs - 12]]), bs, false)).toEqual({ check: 0, recs: ["ok"] });
  });

  it("rejects bad block sizes", () => {
    const p = e.alloc(4096);
    for (const bs of [0, 512, 1000, 3072, 131072]) {
      expect(e.x.dirBlockCheck(p, bs, false)).toBe(K.DIR_ERR_ARG);
      expect(e.x.dirLookup(p, bs, p, 1, false)).toBe(K.DIR_ERR_ARG);
      expect(e.x.dirIterate(p, bs, 0, p, 4096, false, true)).toBe(K.DIR_ERR_ARG);
    }
    expect(e.x.dirRecLenFor(1)).toBe(12);
    expect(e.x.dirRecLenFor(4)).toBe(12);
    expect(e.x.dirRecLenFor(5)).toBe(16);
    expect(e.x.dirRecLenFor(255)).toBe(264);
  });
});
