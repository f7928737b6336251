/**
 * BlockMapper: logical → physical block mapping for a file, walking extent trees (any
 * depth) and ext2/ext3 indirect maps through the block cache.
 *
 * The engine checks one node at a time (assembly/extents.ts, indirect.ts explain the
 * protocols); this file supplies the loads. Every child block is validated against what
 * its parent promised before it is used, extent blocks' checksums are verified with
 * metadata_csum, and any failure is EFSCORRUPTED naming the inode — the walk then stops,
 * so a corrupt tree costs at most its depth in reads and never loops.
 *
 * Each map() answers one run: from lblk, how many blocks share one answer (contiguous
 * physical blocks, or a hole, or an unwritten extent). Callers iterate runs; long extents
 * therefore cost one walk each, not one per block.
 *
 * The i_block copy: the engine functions read nodes from linear memory, so the inode's
 * 60-byte root is copied into a scratch buffer for each walk (the inode's own bytes live
 * in a JS copy, see inode.ts).
 *
 * Synchronous first: a walk reads only resident blocks and answers Missing for one that
 * is not (cache.ts); `mapResident` hands that answer to callers with a synchronous fast
 * path, `map` reads what is missing and walks again. Most maps — a directory's blocks
 * during a create, a file's extents in its inode — need no read, and then cost no
 * promise. The scratch buffer is used only inside one synchronous walk.
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import { Missing, type CacheRef } from "../cache.ts";

export interface Mapping {
  /** Blocks (≥ 1) from the asked lblk that this answer covers. */
  len: number;
  /** Physical block of lblk, or -1 for a hole. */
  phys: number;
  unwritten: boolean;
}

export class BlockMapper {
  private readonly vol: Volume;
  private readonly scratch: number;
  private readonly blocksCount: number;
  private readonly firstData: number;
  private readonly csum: boolean;
  private readonly EXTENTS_FL: number;
  private readonly EXT_LBLK_END: number;
  private readonly EXT_MAPPED: number;
  private readonly EXT_HOLE: number;

  constructor(vol: Volume) {
    this.vol = vol;
    this.scratch = vol.engine.alloc(64);
    this.blocksCount = vol.sb.blocksCount;
    this.firstData = vol.blockSize === 1024 ? 1 : 0;
    this.csum = vol.sb.has("metadata_csum");
    // Read once: Engine.constant reads a WebAssembly.Global, and every map needs these.
    this.EXTENTS_FL = vol.engine.constant("INODE_FL_EXTENTS") >>> 0;
    this.EXT_LBLK_END = vol.engine.constant("EXT_LBLK_END");
    this.EXT_MAPPED = vol.engine.constant("EXT_MAPPED");
    this.EXT_HOLE = vol.engine.constant("EXT_HOLE");
  }

  private corrupt(inode: Inode, why: string): FsError {
    return new FsError("EFSCORRUPTED", `inode ${inode.ino}: ${why}`, { syscall: "bmap" });
  }

  /** Map logical block lblk of inode; the answer covers min(len, want) or more blocks. Any caller. */
  map(inode: Inode, lblk: number, want = 1): Promise<Mapping> {
    let r: Mapping | Missing;
    try {
      r = this.mapResident(inode, lblk, want);
    } catch (e) {
      return Promise.reject(e); // failures arrive as rejections, as from an async function
    }
    if (!(r instanceof Missing)) return Promise.resolve(r);
    return this.vol.cache.resident(() => this.mapResident(inode, lblk, want));
  }

  /**
   * map() over resident blocks only: the mapping, or Missing when a tree block must be
   * read first (then call map). Throws what map throws. Any caller.
   */
  mapResident(inode: Inode, lblk: number, want = 1): Mapping | Missing {
    if (!Number.isInteger(lblk) || lblk < 0) throw new FsError("EINVAL", `bad logical block ${lblk}`, { syscall: "bmap" });
    if (lblk > 0xfffffffe) return { len: Math.max(1, want), phys: -1, unwritten: false };
    const extents = (inode.flags & this.EXTENTS_FL) !== 0;
    return extents ? this.mapExtent(inode, lblk) : this.mapIndirect(inode, lblk, want);
  }

  private mapExtent(inode: Inode, lblk: number): Mapping | Missing {
    const { engine, cache, blockSize } = this.vol;
    const x = engine.x;
    engine.u8.set(inode.iblock, this.scratch);
    let node = this.scratch;
    let lo = 0;
    let hi = this.EXT_LBLK_END;
    let depth = x.extNodeCheck(node, 60, -1, lo, hi, this.firstData, this.blocksCount) as number;
    if (depth < 0) throw this.corrupt(inode, `bad extent tree root (${depth})`);
    let ref: CacheRef | undefined;
    try {
      while (depth > 0) {
        const i = x.extIndexFind(node, lblk) as number;
        if (i < 0) {
          const next = x.extIndexStart(node, 0) >>> 0;
          return { len: Math.max(1, next - lblk), phys: -1, unwritten: false };
        }
        const child = x.extIndexChild(node, i) as number;
        const clo = x.extIndexStart(node, i) >>> 0;
        const chi = x.extIndexNextStart(node, i, hi) as number;
        if (ref) cache.release(ref);
        ref = cache.peek(child);
        if (!ref) return new Missing(child);
        const d = x.extNodeCheck(ref.ptr, blockSize, depth - 1, clo, chi, this.firstData, this.blocksCount) as number;
        if (d !== depth - 1) throw this.corrupt(inode, `bad extent block ${child} (${d})`);
        if (this.csum && !x.extentBlockCsumVerify(ref.ptr, inode.ino, inode.generation)) {
          throw this.corrupt(inode, `extent block ${child} checksum mismatch`);
        }
        node = ref.ptr;
        lo = clo;
        hi = chi;
        depth = d;
      }
      const r = x.extLeafMap(node, lblk, hi) as number;
      if (r === this.EXT_MAPPED) {
        return { len: x.extMapLen() >>> 0, phys: x.extMapPhys() as number, unwritten: x.extMapUnwritten() !== 0 };
      }
      if (r === this.EXT_HOLE) return { len: Math.max(1, x.extMapLen() >>> 0), phys: -1, unwritten: false };
      throw this.corrupt(inode, `extent leaf lookup failed (${r})`);
    } finally {
      if (ref) cache.release(ref);
    }
  }

  private mapIndirect(inode: Inode, lblk: number, want: number): Mapping | Missing {
    const { engine, cache, blockSize } = this.vol;
    const x = engine.x;
    const depth = x.indPath(lblk, blockSize) as number;
    if (depth < 0) return { len: Math.max(1, want), phys: -1, unwritten: false };
    engine.u8.set(inode.iblock, this.scratch);
    let node = this.scratch;
    let room = 15 - (x.indPathOffset(0) >>> 0);
    if (depth === 0) room = 12 - (x.indPathOffset(0) >>> 0);
    let p = x.indEntry(node, x.indPathOffset(0)) >>> 0;
    let ref: CacheRef | undefined;
    try {
      for (let level = 1; level <= depth; level++) {
        if (p === 0) return { len: Math.max(1, x.indPathRemain(level - 1) as number), phys: -1, unwritten: false };
        if (!x.indPointerValid(p, this.blocksCount, this.firstData)) throw this.corrupt(inode, `indirect pointer ${p} outside the volume`);
        if (ref) cache.release(ref);
        ref = cache.peek(p);
        if (!ref) return new Missing(p);
        node = ref.ptr;
        room = blockSize / 4 - (x.indPathOffset(level) >>> 0);
        p = x.indEntry(node, x.indPathOffset(level)) >>> 0;
      }
      const off = x.indPathOffset(depth) >>> 0;
      const count = Math.max(1, Math.min(room, want));
      const run = x.indRunLength(node, off, count, p) >>> 0;
      if (p === 0) return { len: Math.max(1, run), phys: -1, unwritten: false };
      const last = p + Math.max(1, run) - 1;
      if (!x.indPointerValid(p, this.blocksCount, this.firstData) || !x.indPointerValid(last, this.blocksCount, this.firstData)) {
        throw this.corrupt(inode, `block pointer ${p} outside the volume`);
      }
      return { len: Math.max(1, run), phys: p, unwritten: false };
    } finally {
      if (ref) cache.release(ref);
    }
  }
}
