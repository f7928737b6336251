/**
 * Metadata checksums (assembly/csum.ts) against e2fsprogs as the oracle.
 *
 * Each image is written by mke2fs/debugfs/e2fsck and passes `e2fsck -fn`, so every
 * checksum in it is right by e2fsprogs' rules. For every superblock (primary and backups),
 * group descriptor (primary and backup tables), initialised bitmap, in-use inode, extent
 * tree block, directory leaf block, htree root and node, and the journal superblock:
 *  - Verify accepts it;
 *  - Compute reproduces the stored value exactly;
 *  - Set, on a copy whose checksum field was zeroed, restores the original bytes;
 *  - one flipped bit in the covered bytes makes Verify fail.
 * Variants cover crc32c with 64-byte descriptors, crc16 (gdt_csum) with 32- and 64-byte
 * descriptors, 128-byte inodes (16-bit inode checksums), 4 KiB blocks, and a
 * metadata_csum_seed volume whose UUID was changed afterwards (seed != crc32c(uuid)).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import {
  buildTree, debugfsScript, fragment, parseGroups, readImage, scratchDir, tool, toolStatus,
} from "./e2fs-oracle.ts";

const le16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const le32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const be32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Obviously-correct bitwise CRC-32C (reflected 0x82F63B78), no inversion: the seed cross-check. */
function crc32cRef(crc: number, data: Uint8Array): number {
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1));
  }
  return crc >>> 0;
}

/**
 * A metadata_csum superblock written into engine memory at a fresh allocation and handed
 * to csumConfigure (which must accept it); the checksum tests' common setup.
 */
function configureCsum(e: Engine, o: { logBlockSize?: number; inodesPerGroup?: number; blocksPerGroup?: number; desc64?: boolean; uuidStep?: [number, number] } = {}): number {
  const C = (n: string) => e.constant(n) >>> 0;
  const sbp = e.alloc(1024);
  const sb = new DataView(e.x.memory.buffer, sbp, 1024);
  sb.setUint16(C("SB_MAGIC"), 0xef53, true);
  sb.setUint32(C("SB_LOG_BLOCK_SIZE"), o.logBlockSize ?? 0, true);
  sb.setUint32(C("SB_REV_LEVEL"), 1, true);
  sb.setUint16(C("SB_INODE_SIZE"), 256, true);
  sb.setUint32(C("SB_INODES_PER_GROUP"), o.inodesPerGroup ?? 2048, true);
  sb.setUint32(C("SB_CLUSTERS_PER_GROUP"), o.blocksPerGroup ?? 8192, true);
  sb.setUint32(C("SB_BLOCKS_PER_GROUP"), o.blocksPerGroup ?? 8192, true);
  sb.setUint32(C("SB_FEATURE_RO_COMPAT"), C("FEATURE_RO_COMPAT_METADATA_CSUM"), true);
  if (o.desc64) {
    sb.setUint32(C("SB_FEATURE_INCOMPAT"), C("FEATURE_INCOMPAT_64BIT"), true);
    sb.setUint16(C("SB_DESC_SIZE"), 64, true);
  }
  sb.setUint8(C("SB_CHECKSUM_TYPE"), 1);
  const [mul, add] = o.uuidStep ?? [31, 7];
  for (let i = 0; i < 16; i++) sb.setUint8(C("SB_UUID") + i, (mul * i + add) & 0xff);
  expect(e.x.csumConfigure(sbp)).toBeTruthy();
  return sbp;
}

interface Counts {
  sb: number; gd: number; bbm: number; ibm: number; inodes: number; extents: number;
  dirLeaves: number; dxRoots: number; dxNodes: number; jsb: number;
}

/** One image loaded for checking, with an engine configured from its superblock. */
class Checker {
  readonly counts: Counts = { sb: 0, gd: 0, bbm: 0, ibm: 0, inodes: 0, extents: 0, dirLeaves: 0, dxRoots: 0, dxNodes: 0, jsb: 0 };
  readonly img: Buffer;
  readonly blockSize: number;
  readonly sb: Buffer;
  private A = 0; // scratch 1 (a block)
  private B = 0; // scratch 2 (a descriptor)

  constructor(readonly e: Engine, readonly path: string) {
    this.img = readImage(path);
    this.sb = this.img.subarray(1024, 2048);
    this.blockSize = 1024 << le32(this.sb, this.C("SB_LOG_BLOCK_SIZE"));
    this.A = e.alloc(65536);
    this.B = e.alloc(4096);
  }

  C(name: string): number {
    return this.e.constant(name) >>> 0;
  }
  get x() {
    return this.e.x;
  }
  has(word: string, flag: string): boolean {
    return (le32(this.sb, this.C(word)) & this.C(flag)) !== 0;
  }
  get metadataCsum(): boolean {
    return this.has("SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_METADATA_CSUM");
  }
  get descSize(): number {
    return this.has("SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_64BIT") ? le16(this.sb, this.C("SB_DESC_SIZE")) : 32;
  }
  get inodeSize(): number {
    return le16(this.sb, this.C("SB_INODE_SIZE"));
  }
  block(n: number): Buffer {
    return this.img.subarray(n * this.blockSize, (n + 1) * this.blockSize);
  }
  /** Copy bytes into engine scratch A (or B) and return the pointer. */
  putA(bytes: Uint8Array): number {
    this.e.u8.fill(0, this.A, this.A + 65536);
    this.e.u8.set(bytes, this.A);
    return this.A;
  }
  putB(bytes: Uint8Array): number {
    this.e.u8.set(bytes, this.B);
    return this.B;
  }
  getA(len: number): Buffer {
    return Buffer.from(this.e.u8.slice(this.A, this.A + len));
  }
  getB(len: number): Buffer {
    return Buffer.from(this.e.u8.slice(this.B, this.B + len));
  }

  /**
   * The four-way check for one structure: verify(original) is true, compute() equals the
   * stored value, set() on a zeroed copy restores the bytes, and flipping each bit in
   * `flips` makes verify() false.
   */
  fourWay(
    what: string,
    bytes: Uint8Array,
    o: {
      verify: (p: number) => boolean;
      compute?: (p: number) => number;
      stored?: number;
      set?: (p: number) => unknown;
      zero?: [offset: number, len: number][];
      flips: number[];
    },
  ): void {
    expect(o.verify(this.putA(bytes)), `${what} verifies`).toBe(true);
    if (o.compute) expect(o.compute(this.putA(bytes)) >>> 0, `${what} compute`).toBe(o.stored! >>> 0);
    if (o.set) {
      const z = Buffer.from(bytes);
      for (const [off, len] of o.zero!) z.fill(0, off, off + len);
      const p = this.putA(z);
      o.set(p);
      expect(this.getA(bytes.length).equals(Buffer.from(bytes)), `${what} set restores the bytes`).toBe(true);
    }
    for (const bit of o.flips) {
      const f = Buffer.from(bytes);
      f[bit >> 3] ^= 1 << (bit & 7);
      expect(o.verify(this.putA(f)), `${what} with bit ${bit} flipped`).toBe(false);
    }
  }

  configure(): void {
    expect(this.x.csumConfigure(this.putA(this.sb))).toBeTruthy();
    expect(!!this.x.csumMetadataEnabled()).toBe(this.metadataCsum);
  }

  checkSuperblocks(dump: string): void {
    const at = [1024];
    for (const m of dump.matchAll(/Backup superblock at (\d+)/g)) at.push(Number(m[1]) * this.blockSize);
    expect(at.length).toBeGreaterThan(1);
    for (const off of at) {
      const sb = this.img.subarray(off, off + 1024);
      const S = this.C("SB_CHECKSUM");
      if (this.metadataCsum) {
        this.fourWay(`superblock at ${off}`, sb, {
          verify: (p) => !!this.x.sbCsumVerify(p),
          compute: (p) => this.x.sbCsumCompute(p),
          stored: le32(sb, S),
          set: (p) => this.x.sbCsumSet(p),
          zero: [[S, 4]],
          flips: [0, 8 * 0x68 + 3, 8 * 0x3fb + 7, 8 * S],
        });
      } else {
        expect(!!this.x.sbCsumVerify(this.putA(sb))).toBe(true);
      }
      this.counts.sb++;
    }
  }

  /** Primary and backup descriptor tables; bitmaps of initialised groups. */
  checkGroups(dump: string): void {
    const groups = parseGroups(dump);
    const ds = this.descSize;
    const firstData = le32(this.sb, this.C("SB_FIRST_DATA_BLOCK"));
    const tables = [firstData + 1];
    for (const m of dump.matchAll(/Backup superblock at \d+, Group descriptors at (\d+)/g)) tables.push(Number(m[1]));
    const CK = this.C("BG_CHECKSUM");
    for (const t of tables) {
      for (const g of groups) {
        const off = t * this.blockSize + g.group * ds;
        const d = this.img.subarray(off, off + ds);
        this.fourWay(`group ${g.group} desc in table at ${t}`, d, {
          verify: (p) => !!this.x.gdCsumVerify(p, g.group),
          compute: (p) => this.x.gdCsumCompute(p, g.group),
          stored: le16(d, CK),
          set: (p) => this.x.gdCsumSet(p, g.group),
          zero: [[CK, 2]],
          // A bit before the checksum, one in the checksum, and one after it (64-byte only).
          flips: [0, 8 * 0x12 + 2, 8 * CK + 5, ...(ds > 32 ? [8 * 0x20 + 1, 8 * (ds - 1) + 7] : [])],
        });
        // CRCs are linear: the wrong group number changes the result by a fixed, non-zero
        // amount whatever the descriptor holds, so this is deterministic.
        expect(!!this.x.gdCsumVerify(this.putA(d), g.group + 1)).toBe(false);
        // dumpe2fs prints the primary table; backups are older, self-consistent copies.
        if (g.csum !== undefined && t === tables[0]) expect(le16(d, CK)).toBe(g.csum);
        this.counts.gd++;
      }
    }
    if (!this.metadataCsum) return;
    const primary = (g: number) => this.img.subarray((firstData + 1) * this.blockSize + g * ds, (firstData + 1) * this.blockSize + (g + 1) * ds);
    for (const g of groups) {
      const d = primary(g.group);
      const flags = le16(d, this.C("BG_FLAGS"));
      const bcount = le32(this.sb, this.C("SB_CLUSTERS_PER_GROUP")) / 8;
      const icount = le32(this.sb, this.C("SB_INODES_PER_GROUP")) / 8;
      const lo = (f: string) => le16(d, this.C(f));
      const hi = (f: string) => (ds >= 64 ? le16(d, this.C(f)) : 0);
      if (!(flags & this.C("BG_BLOCK_UNINIT"))) {
        const bm = this.block(g.blockBitmap);
        const want = (lo("BG_BLOCK_BITMAP_CSUM_LO") | (hi("BG_BLOCK_BITMAP_CSUM_HI") << 16)) >>> 0;
        expect(want).toBe(g.blockBitmapCsum);
        const full = this.x.blockBitmapCsum(this.putA(bm)) >>> 0;
        expect(ds >= 64 ? full : full & 0xffff).toBe(want);
        const dp = this.putB(d);
        expect(!!this.x.gdBlockBitmapCsumVerify(dp, this.putA(bm))).toBe(true);
        const f = Buffer.from(bm);
        f[bcount - 1] ^= 0x80;
        expect(!!this.x.gdBlockBitmapCsumVerify(dp, this.putA(f))).toBe(false);
        // Bytes past clusters_per_group / 8 are not covered.
        if (bcount < this.blockSize) {
          f[bcount - 1] ^= 0x80;
          f[bcount] ^= 1;
          expect(!!this.x.gdBlockBitmapCsumVerify(dp, this.putA(f))).toBe(true);
        }
        this.counts.bbm++;
      }
      if (!(flags & this.C("BG_INODE_UNINIT"))) {
        const bm = this.block(g.inodeBitmap);
        const want = (lo("BG_INODE_BITMAP_CSUM_LO") | (hi("BG_INODE_BITMAP_CSUM_HI") << 16)) >>> 0;
        expect(want).toBe(g.inodeBitmapCsum);
        const dp = this.putB(d);
        expect(!!this.x.gdInodeBitmapCsumVerify(dp, this.putA(bm))).toBe(true);
        const f = Buffer.from(bm);
        f[icount - 1] ^= 0x10;
        expect(!!this.x.gdInodeBitmapCsumVerify(dp, this.putA(f))).toBe(false);
        this.counts.ibm++;
      }
      // gdSetBitmapCsums on a descriptor with both fields zeroed restores them.
      if (!(flags & (this.C("BG_BLOCK_UNINIT") | this.C("BG_INODE_UNINIT")))) {
        const z = Buffer.from(d);
        for (const f of ["BG_BLOCK_BITMAP_CSUM_LO", "BG_INODE_BITMAP_CSUM_LO"]) z.fill(0, this.C(f), this.C(f) + 2);
        if (ds >= 64) for (const f of ["BG_BLOCK_BITMAP_CSUM_HI", "BG_INODE_BITMAP_CSUM_HI"]) z.fill(0, this.C(f), this.C(f) + 2);
        const dp = this.putB(z);
        const bbp = this.A;
        this.e.u8.set(this.block(g.blockBitmap), bbp);
        const ibp = this.A + this.blockSize;
        this.e.u8.set(this.block(g.inodeBitmap), ibp);
        this.x.gdSetBitmapCsums(dp, bbp, ibp);
        expect(this.getB(ds).equals(Buffer.from(d))).toBe(true);
        // A zero pointer leaves that bitmap's fields alone.
        const dp2 = this.putB(z);
        this.x.gdSetBitmapCsums(dp2, 0, ibp);
        expect(le16(this.getB(ds), this.C("BG_BLOCK_BITMAP_CSUM_LO"))).toBe(0);
        expect(le16(this.getB(ds), this.C("BG_INODE_BITMAP_CSUM_LO"))).toBe(lo("BG_INODE_BITMAP_CSUM_LO"));
      }
    }
  }

  inodeBytes(ino: number): Buffer {
    const ipg = le32(this.sb, this.C("SB_INODES_PER_GROUP"));
    const g = Math.floor((ino - 1) / ipg);
    const ds = this.descSize;
    const firstData = le32(this.sb, this.C("SB_FIRST_DATA_BLOCK"));
    const d = this.img.subarray((firstData + 1) * this.blockSize + g * ds);
    const table = le32(d, this.C("BG_INODE_TABLE_LO")) + (ds >= 64 ? le32(d, this.C("BG_INODE_TABLE_HI")) * 2 ** 32 : 0);
    const off = table * this.blockSize + ((ino - 1) % ipg) * this.inodeSize;
    return this.img.subarray(off, off + this.inodeSize);
  }

  /** All in-use inodes by the inode bitmaps of initialised groups. */
  usedInodes(dump: string): number[] {
    const ipg = le32(this.sb, this.C("SB_INODES_PER_GROUP"));
    const out: number[] = [];
    for (const g of parseGroups(dump)) {
      if (g.flags.includes("INODE_UNINIT")) continue;
      const bm = this.block(g.inodeBitmap);
      for (let i = 0; i < ipg; i++) if (bm[i >> 3] & (1 << (i & 7))) out.push(g.group * ipg + i + 1);
    }
    return out;
  }

  checkInode(ino: number): void {
    const ib = this.inodeBytes(ino);
    const hasHi = this.inodeSize > 128 && le16(ib, this.C("I_EXTRA_ISIZE")) >= 4;
    const LO = this.C("I_CHECKSUM_LO");
    const HI = this.C("I_CHECKSUM_HI");
    if (!this.metadataCsum) {
      expect(!!this.x.inodeCsumVerify(this.putA(ib), ino)).toBe(true);
      return;
    }
    this.fourWay(`inode ${ino}`, ib, {
      verify: (p) => !!this.x.inodeCsumVerify(p, ino),
      compute: (p) => this.x.inodeCsumCompute(p, ino),
      stored: le16(ib, LO) | (hasHi ? le16(ib, HI) << 16 : 0),
      set: (p) => this.x.inodeCsumSet(p, ino),
      zero: hasHi ? [[LO, 2], [HI, 2]] : [[LO, 2]],
      flips: [1, 8 * this.C("I_GENERATION"), 8 * LO + 3, ...(this.inodeSize > 128 ? [8 * (this.inodeSize - 1) + 6] : [])],
    });
    expect(!!this.x.inodeCsumVerify(this.putA(ib), ino + 1)).toBe(false);
    this.counts.inodes++;
  }

  /** Leaf extents of an extent-mapped inode; checks every tree block on the way. */
  extentsOf(ino: number): [lblk: number, len: number, pblk: number][] {
    const ib = this.inodeBytes(ino);
    const gen = le32(ib, this.C("I_GENERATION"));
    const out: [number, number, number][] = [];
    const walk = (node: Uint8Array, isRoot: boolean) => {
      const n = le16(node, this.C("EH_ENTRIES"));
      const depth = le16(node, this.C("EH_DEPTH"));
      if (!isRoot) this.checkExtentBlock(node, ino, gen);
      for (let i = 0; i < n; i++) {
        const e = 12 + 12 * i;
        if (depth > 0) {
          walk(this.block(le32(node, e + this.C("EI_LEAF_LO")) + le16(node, e + this.C("EI_LEAF_HI")) * 2 ** 32), false);
        } else {
          const raw = le16(node, e + this.C("EE_LEN"));
          out.push([
            le32(node, e + this.C("EE_BLOCK")),
            raw > 32768 ? raw - 32768 : raw,
            le32(node, e + this.C("EE_START_LO")) + le16(node, e + this.C("EE_START_HI")) * 2 ** 32,
          ]);
        }
      }
    };
    walk(ib.subarray(this.C("I_BLOCK"), this.C("I_BLOCK") + 60), true);
    return out;
  }

  checkExtentBlock(node: Uint8Array, ino: number, gen: number): void {
    if (!this.metadataCsum) {
      expect(!!this.x.extentBlockCsumVerify(this.putA(node), ino, gen)).toBe(true);
      return;
    }
    const tail = 12 + 12 * le16(node, this.C("EH_MAX"));
    const entries = le16(node, this.C("EH_ENTRIES"));
    this.fourWay(`extent block of inode ${ino}`, node, {
      verify: (p) => !!this.x.extentBlockCsumVerify(p, ino, gen),
      compute: (p) => this.x.extentBlockCsumCompute(p, ino, gen),
      stored: le32(node, tail),
      set: (p) => this.x.extentBlockCsumSet(p, ino, gen),
      zero: [[tail, 4]],
      flips: [0, 8 * (12 + 12 * entries - 1), 8 * (tail - 1) + 7, 8 * tail],
    });
    // Bytes after the tail are not covered.
    if (tail + 4 < this.blockSize) {
      const f = Buffer.from(node);
      f[this.blockSize - 1] ^= 1;
      expect(!!this.x.extentBlockCsumVerify(this.putA(f), ino, gen)).toBe(true);
    }
    expect(!!this.x.extentBlockCsumVerify(this.putA(node), ino, gen ^ 1)).toBe(false);
    this.counts.extents++;
  }

  /** Every block of a directory: htree root/nodes and leaves. */
  checkDirectory(ino: number): void {
    const ib = this.inodeBytes(ino);
    const gen = le32(ib, this.C("I_GENERATION"));
    const indexed = (le32(ib, this.C("I_FLAGS")) & this.C("INODE_FL_INDEX")) !== 0;
    for (const [lblk, len, pblk] of this.extentsOf(ino)) {
      for (let i = 0; i < len; i++) {
        const b = this.block(pblk + i);
        // Classify from the bytes, independently of dxCountOffset.
        const isRoot = indexed && lblk + i === 0;
        const isNode = indexed && !isRoot && le32(b, 0) === 0 && le16(b, 4) === this.blockSize && b[6] === 0;
        const countOffset = isRoot ? 0x20 : isNode ? 8 : -1;
        // An empty leaf without a tail looks like a dx node, so dxCountOffset is only
        // meaningful inside an indexed directory.
        if (indexed) expect(this.x.dxCountOffset(this.putA(b)), `dxCountOffset of dir ${ino} block ${lblk + i}`).toBe(countOffset);
        if (countOffset >= 0) this.checkDxBlock(b, ino, gen, countOffset, isRoot);
        else this.checkDirLeaf(b, ino, gen);
      }
    }
  }

  checkDirLeaf(b: Uint8Array, ino: number, gen: number): void {
    if (!this.metadataCsum) {
      expect(!!this.x.dirBlockCsumVerify(this.putA(b), ino, gen)).toBe(true);
      return;
    }
    const t = this.blockSize - 12;
    expect(!!this.x.dirBlockHasTail(this.putA(b))).toBe(true);
    this.fourWay(`dir ${ino} leaf`, b, {
      verify: (p) => !!this.x.dirBlockCsumVerify(p, ino, gen),
      compute: (p) => this.x.dirBlockCsumCompute(p, ino, gen),
      stored: le32(b, t + this.C("DET_CHECKSUM")),
      set: (p) => this.x.dirBlockCsumSet(p, ino, gen),
      zero: [[t + 8, 4]],
      flips: [0, 8 * 8, 8 * (t - 1) + 7, 8 * (t + 7), 8 * (t + 8)],
    });
    // dirBlockTailInit writes the same fake entry e2fsprogs wrote (checksum aside).
    const z = Buffer.from(b);
    z.fill(0xa5, t, this.blockSize);
    const p = this.putA(z);
    this.x.dirBlockTailInit(p);
    this.x.dirBlockCsumSet(p, ino, gen);
    expect(this.getA(this.blockSize).equals(Buffer.from(b))).toBe(true);
    this.counts.dirLeaves++;
  }

  checkDxBlock(b: Uint8Array, ino: number, gen: number, countOffset: number, isRoot: boolean): void {
    const limit = le16(b, countOffset);
    const count = le16(b, countOffset + 2);
    const tail = countOffset + limit * 8;
    if (!this.metadataCsum) {
      expect(!!this.x.dxNodeCsumVerify(this.putA(b), ino, gen, countOffset)).toBe(true);
      return;
    }
    this.fourWay(`dir ${ino} dx ${isRoot ? "root" : "node"}`, b, {
      verify: (p) => !!this.x.dxNodeCsumVerify(p, ino, gen, countOffset),
      compute: (p) => this.x.dxNodeCsumCompute(p, ino, gen, countOffset),
      stored: le32(b, tail + 4),
      set: (p) => this.x.dxNodeCsumSet(p, ino, gen, countOffset),
      zero: [[tail + 4, 4]],
      // First byte, last byte of the used entries, dt_reserved, dt_checksum.
      flips: [0, 8 * (countOffset + count * 8 - 1) + 7, 8 * tail + 2, 8 * (tail + 4)],
    });
    // Bytes of unused entry slots (between count and limit) are not covered.
    if (count < limit) {
      const f = Buffer.from(b);
      f[countOffset + count * 8] ^= 0x40;
      expect(!!this.x.dxNodeCsumVerify(this.putA(f), ino, gen, countOffset)).toBe(true);
    }
    if (isRoot) this.counts.dxRoots++;
    else this.counts.dxNodes++;
  }

  checkJournal(): void {
    const [, , pblk] = this.extentsOf(8)[0];
    const jsb = this.block(pblk).subarray(0, 1024);
    const S = this.C("JSB_CHECKSUM");
    expect(be32(jsb, 0)).toBe(this.C("JBD2_MAGIC_NUMBER"));
    const v3 = (be32(jsb, this.C("JSB_FEATURE_INCOMPAT")) & this.C("JBD2_FEATURE_INCOMPAT_CSUM_V3")) !== 0;
    if (!v3) {
      expect(!!this.x.jsbCsumVerify(this.putA(jsb))).toBe(true);
      return;
    }
    this.fourWay("journal superblock", jsb, {
      verify: (p) => !!this.x.jsbCsumVerify(p),
      compute: (p) => this.x.jsbCsumCompute(p),
      stored: be32(jsb, S),
      set: (p) => this.x.jsbCsumSet(p),
      zero: [[S, 4]],
      flips: [0, 8 * 0x30, 8 * S + 1, 8 * 0x100, 8 * 1023 + 7],
    });
    this.counts.jsb++;
  }

  /** Everything in the image. */
  checkAll(): Counts {
    const dump = tool("dumpe2fs", [this.path]);
    this.configure();
    this.checkSuperblocks(dump);
    this.checkGroups(dump);
    for (const ino of this.usedInodes(dump)) {
      const ib = this.inodeBytes(ino);
      if (le16(ib, this.C("I_LINKS_COUNT")) === 0 && le16(ib, this.C("I_MODE")) === 0 && ino > 11) continue;
      this.checkInode(ino);
      const mode = le16(ib, this.C("I_MODE")) & this.C("S_IFMT");
      const extents = (le32(ib, this.C("I_FLAGS")) & this.C("INODE_FL_EXTENTS")) !== 0;
      if (!extents) continue;
      if (mode === this.C("S_IFDIR")) this.checkDirectory(ino);
      else this.extentsOf(ino);
    }
    this.checkJournal();
    return this.counts;
  }
}

describe("metadata checksums match e2fsprogs", () => {
  const tmp = scratchDir("ext4-csum-");
  const tree = join(tmp.dir, "tree");
  afterAll(() => tmp.cleanup());
  beforeAll(() => buildTree(tree));

  /** mke2fs -d, fragment big.bin, give inodes non-zero generations, index, csum the journal. */
  function make(name: string, mkfsArgs: string[], size = "32M", after?: (path: string) => void): string {
    const path = join(tmp.dir, name);
    tool("mke2fs", ["-t", "ext4", "-F", "-q", ...mkfsArgs, "-d", tree, path, size]);
    fragment(path, "/big.bin", 1000);
    // Non-zero generations make a wrong per-inode seed visible. debugfs recomputes the
    // inode checksum; e2fsck -fy below then rewrites the extent and directory checksums.
    debugfsScript(path, [
      "sif /big.bin generation 0x9e3779b9", "sif /many generation 0x7f4a7c15", "sif /sub generation 0x1234567",
    ]);
    const fix = toolStatus("e2fsck", ["-fyD", path]);
    expect(fix.status, fix.out).toBeLessThanOrEqual(1);
    debugfsScript(path, ["jo -c", "jc"]);
    after?.(path);
    const clean = toolStatus("e2fsck", ["-fn", path]);
    expect(clean.status, clean.out).toBe(0);
    return path;
  }

  async function check(path: string): Promise<Counts> {
    const e = await Engine.create();
    return new Checker(e, path).checkAll();
  }

  it("metadata_csum, 64bit, 1 KiB blocks: every structure, including a 2-level htree and a depth-2 extent tree", async () => {
    const c = await check(make("m1k.img", ["-b", "1024"]));
    expect(c.sb).toBeGreaterThanOrEqual(2);
    expect(c.gd).toBeGreaterThan(4);
    expect(c.bbm).toBeGreaterThan(0);
    expect(c.ibm).toBeGreaterThan(0);
    expect(c.inodes).toBeGreaterThan(600);
    expect(c.extents).toBeGreaterThanOrEqual(7);
    expect(c.dxRoots).toBeGreaterThanOrEqual(1);
    expect(c.dxNodes).toBeGreaterThanOrEqual(1);
    expect(c.dirLeaves).toBeGreaterThan(100);
    expect(c.jsb).toBe(1);
  });

  it("metadata_csum, 64bit, 4 KiB blocks", async () => {
    const c = await check(make("m4k.img", ["-b", "4096", "-g", "2048"], "64M"));
    expect(c.sb).toBeGreaterThanOrEqual(2);
    expect(c.extents).toBeGreaterThanOrEqual(1);
    expect(c.dxRoots).toBeGreaterThanOrEqual(1);
    expect(c.jsb).toBe(1);
  });

  it("128-byte inodes: 16-bit inode checksums", async () => {
    const path = make("i128.img", ["-b", "1024", "-I", "128"]);
    const e = await Engine.create();
    const k = new Checker(e, path);
    expect(k.inodeSize).toBe(128);
    const c = k.checkAll();
    expect(c.inodes).toBeGreaterThan(600);
    // The stored value has no high half: Compute must give exactly 16 bits.
    k.configure();
    expect(e.x.inodeCsumCompute(k.putA(k.inodeBytes(2)), 2) >>> 0).toBeLessThan(0x10000);
  });

  it("gdt_csum (crc16) with 32-byte descriptors", async () => {
    const path = make("crc16-32.img", ["-b", "1024", "-O", "^metadata_csum,^64bit,uninit_bg"]);
    const e = await Engine.create();
    const k = new Checker(e, path);
    expect(k.descSize).toBe(32);
    const c = k.checkAll();
    expect(c.gd).toBeGreaterThan(4);
    expect(e.x.csumMetadataEnabled()).toBeFalsy();
  });

  it("gdt_csum (crc16) with 64-byte descriptors covers the bytes after bg_checksum", async () => {
    const path = make("crc16-64.img", ["-b", "1024", "-O", "^metadata_csum,uninit_bg"]);
    const e = await Engine.create();
    const k = new Checker(e, path);
    expect(k.descSize).toBe(64);
    expect(k.checkAll().gd).toBeGreaterThan(4);
  });

  it("metadata_csum_seed after a UUID change: the seed comes from s_checksum_seed", async () => {
    const path = make("seed.img", ["-b", "1024", "-O", "metadata_csum_seed"], "32M", (p) => {
      tool("tune2fs", ["-U", "0b7a5c3e-1111-4222-8333-944455556666", p]);
    });
    const e = await Engine.create();
    const k = new Checker(e, path);
    const seed = le32(k.sb, k.C("SB_CHECKSUM_SEED"));
    const fromUuid = crc32cRef(0xffffffff, k.sb.subarray(0x68, 0x78));
    expect(seed).not.toBe(fromUuid); // otherwise this test would prove nothing
    k.checkAll();
    expect(e.x.csumSeedValue() >>> 0).toBe(seed);
  });

  it("without csum_seed the seed is crc32c(~0, uuid)", async () => {
    const path = make("plain.img", ["-b", "1024"]);
    const e = await Engine.create();
    const k = new Checker(e, path);
    k.configure();
    expect(e.x.csumSeedValue() >>> 0).toBe(crc32cRef(0xffffffff, k.sb.subarray(0x68, 0x78)));
  });
});

describe("incremental leaf checksums (dirAddEntry with patchCsum)", () => {
  // The patched checksum must equal a full sum of the changed block, which the tests
  // above hold to e2fsprogs' values. Random adds (and removes, re-sealed in full, so the
  // free space takes every shape) into leaves of 1, 4 and 64 KiB.
  for (const bs of [1024, 4096, 65536]) {
    it(`${bs}-byte leaves: every patched checksum equals the full sum`, async () => {
      const e = await Engine.create();
      configureCsum(e, { logBlockSize: Math.log2(bs) - 10 });
      const p = e.alloc(bs);
      const name = e.alloc(256);
      const x = e.x;
      const [ino, gen] = [12345, 0xdeadbeef];
      expect(x.dirInitBlock(p, bs, 1)).toBe(0);
      expect(x.dirBlockCsumSet(p, ino, gen)).toBeTruthy();
      const stored = () => new DataView(e.x.memory.buffer).getUint32(p + bs - 4, true);
      let seed = bs;
      const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
      const live: Uint8Array[] = [];
      let patched = 0;
      for (let step = 0; step < (bs === 65536 ? 3000 : 1500); step++) {
        if (live.length && rand(3) === 0) {
          const n = live.splice(rand(live.length), 1)[0]!;
          e.u8.set(n, name);
          expect(x.dirRemoveEntry(p, bs, name, n.length, 1, 0)).toBeGreaterThanOrEqual(0);
          expect(x.dirBlockCsumSet(p, ino, gen)).toBeTruthy();
          continue;
        }
        const n = new TextEncoder().encode(`n${step}-${"x".repeat(rand(60))}`);
        e.u8.set(n, name);
        const before = stored();
        const r = x.dirAddEntry(p, bs, name, n.length, 100 + step, 1, 1, 0, 1) as number;
        if (r < 0) {
          expect(r).toBe(e.constant("DIRM_NOSPC"));
          expect(stored()).toBe(before); // nothing written, checksum untouched
          continue;
        }
        live.push(n);
        patched++;
        expect(stored()).toBe(x.dirBlockCsumCompute(p, ino, gen) >>> 0);
        expect(x.dirBlockCsumVerify(p, ino, gen)).toBeTruthy();
      }
      expect(patched).toBeGreaterThan(100);
    });
  }
});

describe("incremental inode bitmap checksums (gdPatchInodeBitmapCsum)", () => {
  // Setting one bit of an inode bitmap at a time, the patched descriptor checksum must be
  // what a full sum stores; with 32-byte descriptors (the high half not stored) and when
  // the caller does not vouch for the old value, the function must sum in full itself.
  for (const [what, desc64, known] of [["64-byte descriptors", true, true], ["32-byte descriptors", false, true], ["unknown old value", true, false]] as const) {
    it(`${what}: after every bit set, the stored checksum verifies`, async () => {
      const e = await Engine.create();
      configureCsum(e, { logBlockSize: 2, inodesPerGroup: 8192, blocksPerGroup: 32768, desc64, uuidStep: [13, 1] });
      const x = e.x;
      const bm = e.alloc(4096);
      const d = e.alloc(64);
      const u8 = () => e.u8;
      for (let i = 0; i < 1024; i++) u8()[bm + i] = (i * 37) & 0x0f; // some bits already set
      x.gdSetBitmapCsums(d, 0, bm);
      expect(x.gdInodeBitmapCsumVerify(d, bm)).toBeTruthy();
      let seed = 7;
      for (let step = 0; step < 400; step++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const bit = seed % 8192;
        const at = bm + (bit >> 3);
        const before = x.crc32cUpdate(0, at, 1) >>> 0;
        u8()[at] |= 1 << (bit & 7);
        const after = x.crc32cUpdate(0, at, 1) >>> 0;
        x.gdPatchInodeBitmapCsum(d, bm, (bit >> 3) + 1, before, after, known ? 1 : 0);
        expect(x.gdInodeBitmapCsumVerify(d, bm), `step ${step}, bit ${bit}`).toBeTruthy();
      }
    });
  }
});

describe("corrupt input is refused, never read out of bounds", () => {
  it("csumConfigure rejects unusable geometry and then verifies nothing", async () => {
    const e = await Engine.create();
    const C = (n: string) => e.constant(n) >>> 0;
    const p = e.alloc(4096);
    const sb = new DataView(e.x.memory.buffer, p, 1024);
    const good = () => {
      new Uint8Array(e.x.memory.buffer, p, 1024).fill(0);
      sb.setUint16(C("SB_MAGIC"), 0xef53, true);
      sb.setUint32(C("SB_REV_LEVEL"), 1, true);
      sb.setUint16(C("SB_INODE_SIZE"), 256, true);
      sb.setUint32(C("SB_INODES_PER_GROUP"), 2048, true);
      sb.setUint32(C("SB_CLUSTERS_PER_GROUP"), 8192, true);
      sb.setUint32(C("SB_BLOCKS_PER_GROUP"), 8192, true);
      sb.setUint32(C("SB_FEATURE_RO_COMPAT"), C("FEATURE_RO_COMPAT_METADATA_CSUM"), true);
      sb.setUint8(C("SB_CHECKSUM_TYPE"), 1);
    };
    good();
    expect(e.x.csumConfigure(p)).toBeTruthy();
    const bad: [string, () => void][] = [
      ["magic", () => sb.setUint16(C("SB_MAGIC"), 0x1234, true)],
      ["log block size", () => sb.setUint32(C("SB_LOG_BLOCK_SIZE"), 30, true)],
      ["inode size", () => sb.setUint16(C("SB_INODE_SIZE"), 200, true)],
      ["inode size > block", () => sb.setUint16(C("SB_INODE_SIZE"), 2048, true)],
      ["inodes per group", () => sb.setUint32(C("SB_INODES_PER_GROUP"), 8193, true)],
      ["clusters per group", () => sb.setUint32(C("SB_CLUSTERS_PER_GROUP"), 1 << 20, true)],
      ["checksum type", () => sb.setUint8(C("SB_CHECKSUM_TYPE"), 2)],
      ["desc size", () => {
        sb.setUint32(C("SB_FEATURE_INCOMPAT"), C("FEATURE_INCOMPAT_64BIT"), true);
        sb.setUint16(C("SB_DESC_SIZE"), 48, true);
      }],
    ];
    for (const [what, corrupt] of bad) {
      good();
      corrupt();
      expect(e.x.csumConfigure(p), what).toBeFalsy();
      expect(e.x.gdCsumVerify(p + 2048, 0), what).toBeFalsy();
      expect(e.x.inodeCsumVerify(p + 2048, 12), what).toBeFalsy();
    }
    expect(e.failed).toBe(false);
  });

  it("extent, directory and htree blocks with impossible sizes do not verify", async () => {
    const e = await Engine.create();
    const C = (n: string) => e.constant(n) >>> 0;
    configureCsum(e); // 1 KiB blocks
    const b = e.alloc(1024);
    const dv = () => new DataView(e.x.memory.buffer, b, 1024);
    // eh_max whose tail would land past the block.
    dv().setUint16(C("EH_MAGIC"), 0xf30a, true);
    dv().setUint16(C("EH_MAX"), 0xffff, true);
    expect(e.x.extentBlockCsumVerify(b, 12, 0)).toBeFalsy();
    expect(e.x.extentBlockCsumSet(b, 12, 0)).toBeFalsy();
    dv().setUint16(C("EH_MAX"), 84, true); // 12 + 84·12 + 4 = 1024: fits exactly
    expect(e.x.extentBlockCsumSet(b, 12, 0)).toBeTruthy();
    expect(e.x.extentBlockCsumVerify(b, 12, 0)).toBeTruthy();
    dv().setUint16(C("EH_MAX"), 85, true);
    expect(e.x.extentBlockCsumVerify(b, 12, 0)).toBeFalsy();
    // A directory block without a tail.
    new Uint8Array(e.x.memory.buffer, b, 1024).fill(0);
    dv().setUint16(C("DE_REC_LEN"), 1024, true);
    expect(e.x.dirBlockHasTail(b)).toBeFalsy();
    expect(e.x.dirBlockCsumVerify(b, 2, 0)).toBeFalsy();
    expect(e.x.dirBlockCsumSet(b, 2, 0)).toBeFalsy();
    // htree node: limit past the block, count > limit, count offset past the block.
    expect(e.x.dxCountOffset(b)).toBe(8);
    dv().setUint16(8 + C("DX_LIMIT"), 200, true);
    dv().setUint16(8 + C("DX_COUNT"), 1, true);
    expect(e.x.dxNodeCsumVerify(b, 2, 0, 8)).toBeFalsy();
    expect(e.x.dxNodeCsumSet(b, 2, 0, 8)).toBeFalsy();
    dv().setUint16(8 + C("DX_LIMIT"), 126, true); // 8 + 126·8 + 8 = 1024
    dv().setUint16(8 + C("DX_COUNT"), 127, true);
    expect(e.x.dxNodeCsumVerify(b, 2, 0, 8)).toBeFalsy();
    dv().setUint16(8 + C("DX_COUNT"), 126, true);
    expect(e.x.dxNodeCsumSet(b, 2, 0, 8)).toBeTruthy();
    expect(e.x.dxNodeCsumVerify(b, 2, 0, 8)).toBeTruthy();
    expect(e.x.dxNodeCsumVerify(b, 2, 0, 1022)).toBeFalsy();
    expect(e.x.dxNodeCsumVerify(b, 2, 0, 0xfffffff0)).toBeFalsy();
    expect(e.failed).toBe(false);
  });

  it("a journal superblock without csum v2/v3 verifies; with an unknown checksum type it does not", async () => {
    const e = await Engine.create();
    const C = (n: string) => e.constant(n) >>> 0;
    const p = e.alloc(1024);
    const dv = new DataView(e.x.memory.buffer, p, 1024);
    dv.setUint32(C("JH_MAGIC"), C("JBD2_MAGIC_NUMBER"));
    dv.setUint32(C("JH_BLOCKTYPE"), C("JBD2_SUPERBLOCK_V2"));
    expect(e.x.jsbCsumVerify(p)).toBeTruthy();
    dv.setUint32(C("JSB_FEATURE_INCOMPAT"), C("JBD2_FEATURE_INCOMPAT_CSUM_V3"));
    dv.setUint8(C("JSB_CHECKSUM_TYPE"), C("JBD2_CRC32C_CHKSUM"));
    expect(e.x.jsbCsumVerify(p)).toBeFalsy();
    e.x.jsbCsumSet(p);
    expect(e.x.jsbCsumVerify(p)).toBeTruthy();
    dv.setUint8(C("JSB_CHECKSUM_TYPE"), C("JBD2_CRC32_CHKSUM"));
    expect(e.x.jsbCsumVerify(p)).toBeFalsy();
  });
});
