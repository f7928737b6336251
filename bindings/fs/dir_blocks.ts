/**
 * Directories, write side: the block-level helpers that DirWriter (dir_write.ts: the
 * operations, linear directories) and DxWriter (dir_index_write.ts: htree inserts and
 * walks) share — reading a leaf or index block with its checks, sealing a changed block
 * (checksum, dirty, the name cache told), the engine calls that edit a leaf, error
 * codes, the per-directory free-slot hints — and the types a caller supplies.
 *
 * Ownership: one DirBlocks per mounted volume (made by DirWriter), holding engine buffers
 * (the name, the hash seed, a split's scratch block) that are used only inside one
 * synchronous engine call each (see np). Members are public for those two files only.
 * The protocol rules (read, getWriteAccess right before a change, seal after it) are in
 * dir_write.ts's header.
 */
import type { BlockRef, Handle } from "../journal/handle.ts";
import { Missing, type BlockCache } from "../cache.ts";
import type { Engine } from "../wasm.ts";
import { FsError } from "./errors.ts";
import { dcacheOf, type DentryCache } from "./dcache.ts";
import type { Superblock } from "./superblock.ts";

/** The directory inode as the writer needs it; the ctx keeps it current. */
export interface DirInodeState {
  readonly ino: number;
  readonly generation: number;
  /** i_size in bytes (a whole number of blocks); grows with appendBlock. */
  readonly size: number;
  /** i_flags (INDEX_FL changes through setIndexed). */
  readonly flags: number;
}

/** What the caller supplies for one directory (see dir_write.ts). */
export interface DirContext {
  readonly inode: DirInodeState;
  /** Physical block of logical block lblk, or -1 (any value <= 0) for a hole. */
  mapBlock(lblk: number): number | Promise<number>;
  /** mapBlock without waiting: Missing when a block of the map must be read first. */
  mapBlockResident(lblk: number): number | Missing;
  /** Allocate a block, map it at the end of the directory, grow i_size by one block. */
  appendBlock(h: Handle): Promise<{ lblk: number; phys: number }>;
  /** Set or clear INDEX_FL in the inode state. */
  setIndexed(on: boolean): void;
  /** Called after setIndexed, for callers that write the inode eagerly. */
  markInodeDirty?(h: Handle): void | Promise<void>;
}

/** The parts of a mounted volume the directory writer uses. */
export interface DirWriteVolume {
  readonly engine: Engine;
  readonly sb: Superblock;
  readonly blockSize: number;
  readonly cache: BlockCache;
}

const HINT_DIRS = 256;

/** Shared block helpers of the directory writer (see the file header). */
export class DirBlocks {
  readonly vol: DirWriteVolume;
  readonly bs: number;
  readonly namePtr: number;
  readonly seedPtr: number;
  readonly dotsPtr: number;
  readonly scratch: number;
  readonly hasTail: boolean;
  readonly hasFileType: boolean;
  readonly dirIndex: boolean;
  readonly maxLevels: number;
  readonly K: Record<string, number>;
  /** Per directory (ino): generation and the largest free slot of each block seen. */
  readonly hints = new Map<number, { gen: number; slot: Map<number, number> }>();
  /** The path walk's name cache, told of every change (see sealLeaf). */
  readonly names: DentryCache;

  constructor(vol: DirWriteVolume) {
    this.vol = vol;
    this.names = dcacheOf(vol.cache);
    this.bs = vol.blockSize;
    const e = vol.engine;
    this.namePtr = e.alloc(256);
    this.seedPtr = e.alloc(16);
    this.dotsPtr = e.alloc(2);
    this.scratch = e.alloc(this.bs);
    e.u8.set(vol.sb.hashSeed, this.seedPtr);
    e.u8.set([0x2e, 0x2e], this.dotsPtr);
    this.hasTail = vol.sb.has("metadata_csum");
    this.hasFileType = vol.sb.has("filetype");
    this.dirIndex = vol.sb.has("dir_index");
    this.maxLevels = e.x.dxMaxLevels(vol.sb.incompat) >>> 0;
    const names = [
      "DXR_ENTRIES", "DXN_ENTRIES", "DIR_NOT_FOUND", "DIRM_NOSPC", "DIRM_EXISTS", "DX_NEXT_UP", "DX_NEXT_STOP",
      "DX_NEXT_FOLLOW", "INODE_FL_INDEX", "INODE_FL_ENCRYPT", "INODE_FL_CASEFOLD", "INODE_FL_INLINE_DATA", "FT_DIR",
    ];
    this.K = Object.fromEntries(names.map((n) => [n, e.constant(n)]));
    e.x.dirSetInodeLimit(vol.sb.inodesCount);
  }

  /** Drop what is remembered about a directory (call when its inode is freed). */
  forget(ino: number): void {
    this.hints.delete(ino);
    this.names.dropDir(ino);
  }

  // ---- checks and small helpers ----

  checkDir(ctx: DirContext, syscall: string): void {
    const f = ctx.inode.flags >>> 0;
    if (f & this.K.INODE_FL_INLINE_DATA) throw new FsError("EOPNOTSUPP", "inline-data directories are not supported", { syscall });
    if (f & this.K.INODE_FL_ENCRYPT) throw new FsError("EOPNOTSUPP", "encrypted directories are not supported", { syscall });
    if (f & this.K.INODE_FL_CASEFOLD) throw new FsError("EOPNOTSUPP", "casefolded directories are not supported", { syscall });
    const size = ctx.inode.size;
    if (!(Number.isSafeInteger(size) && size > 0 && size % this.bs === 0 && size / this.bs <= 2 ** 32)) {
      throw this.corrupt(ctx, `impossible directory size ${size}`, syscall);
    }
  }

  /**
   * Copy the name into engine memory and return its address. Called inside the argument
   * list of the engine call that reads it, so no await can come between (another
   * operation may use the buffer while this one waits for a block).
   */
  np(name: Uint8Array): number {
    this.vol.engine.u8.set(name, this.namePtr);
    return this.namePtr;
  }

  checkName(name: Uint8Array, syscall: string): void {
    if (!(name instanceof Uint8Array) || name.length === 0) throw new FsError("EINVAL", "empty name", { syscall });
    if (name.length > 255) throw new FsError("ENAMETOOLONG", "name longer than 255 bytes", { syscall });
    if (name.includes(0) || name.includes(0x2f)) throw new FsError("EINVAL", "name contains '/' or NUL", { syscall });
    if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) {
      throw new FsError("EINVAL", "'.' and '..' are not ordinary entries", { syscall });
    }
  }

  checkIno(ino: number, syscall: string): void {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.vol.sb.inodesCount) {
      throw new FsError("EINVAL", `inode number ${ino} outside 1..${this.vol.sb.inodesCount}`, { syscall });
    }
  }

  indexed(ctx: DirContext): boolean {
    return this.dirIndex && ((ctx.inode.flags >>> 0) & this.K.INODE_FL_INDEX) !== 0;
  }

  nblocks(ctx: DirContext): number {
    return ctx.inode.size / this.bs;
  }

  hint(ctx: DirContext): Map<number, number> {
    const { ino, generation } = ctx.inode;
    let e = this.hints.get(ino);
    if (e && e.gen !== generation) e = undefined;
    if (e) {
      this.hints.delete(ino);
    } else {
      e = { gen: generation, slot: new Map() };
      if (this.hints.size >= HINT_DIRS) this.hints.delete(this.hints.keys().next().value!);
    }
    this.hints.set(ino, e);
    return e.slot;
  }

  corrupt(ctx: DirContext, why: string, syscall: string): FsError {
    return new FsError("EFSCORRUPTED", `directory inode ${ctx.inode.ino}: ${why}`, { syscall });
  }

  engineError(ctx: DirContext, where: string, rc: number, syscall: string): FsError {
    if (rc === this.K.DIRM_EXISTS) return new FsError("EEXIST", "entry exists", { syscall });
    return this.corrupt(ctx, `${where} is malformed (engine code ${rc})`, syscall);
  }

  async mapped(ctx: DirContext, lblk: number, syscall: string): Promise<number> {
    if (!(lblk >= 0 && lblk < this.nblocks(ctx))) throw this.corrupt(ctx, `index points at block ${lblk} outside the directory`, syscall);
    const phys = await ctx.mapBlock(lblk);
    if (!(phys > 0)) throw this.corrupt(ctx, `block ${lblk} is a hole`, syscall);
    return phys;
  }

  /** Read a leaf (or linear block) and verify its checksum tail. */
  async readLeaf(h: Handle, ctx: DirContext, lblk: number, phys: number, syscall: string): Promise<BlockRef> {
    return this.checkLeaf(h, ctx, await h.getBlock(phys), lblk, syscall);
  }

  /** readLeaf without waiting: Missing (nothing pinned) when the block is not resident. */
  readLeafResident(h: Handle, ctx: DirContext, lblk: number, phys: number, syscall: string): BlockRef | Missing {
    const ref = h.getBlockResident(phys);
    return ref ? this.checkLeaf(h, ctx, ref, lblk, syscall) : new Missing(phys);
  }

  /** readLeaf's check of the pinned block: its checksum tail, once per fill from the device. */
  checkLeaf(h: Handle, ctx: DirContext, ref: BlockRef, lblk: number, syscall: string): BlockRef {
    const { ino, generation } = ctx.inode;
    // Once per fill from the device (BlockCache.isVerified says why that is enough).
    if (!this.hasTail || this.vol.cache.isVerified(ref, ino, generation)) return ref;
    const x = this.vol.engine.x;
    if (x.dirBlockHasTail(ref.ptr)) {
      if (!x.dirBlockCsumVerify(ref.ptr, ino, generation)) {
        h.release(ref);
        throw this.corrupt(ctx, `block ${lblk} checksum mismatch`, syscall);
      }
      this.vol.cache.markVerified(ref, ino, generation);
    }
    return ref;
  }

  /** Read an index block (root: off DXR_ENTRIES, node: DXN_ENTRIES), validate and verify it. */
  async readIndex(h: Handle, ctx: DirContext, lblk: number, phys: number, off: number, syscall: string): Promise<BlockRef> {
    const ref = await h.getBlock(phys);
    const x = this.vol.engine.x;
    const ok = off === this.K.DXR_ENTRIES
      ? (x.dxRootCheck(ref.ptr, this.bs, this.hasTail ? 1 : 0, this.maxLevels) as number) >= 0
      : (x.dxNodeCheck(ref.ptr, this.bs, this.hasTail ? 1 : 0) as number) >= 0;
    if (!ok) throw this.corrupt(ctx, `index block ${lblk} is malformed`, syscall);
    const { ino, generation } = ctx.inode;
    if (this.hasTail && !this.vol.cache.isVerified(ref, ino, generation)) {
      if (!x.dxNodeCsumVerify(ref.ptr, ino, generation, off)) throw this.corrupt(ctx, `index block ${lblk} checksum mismatch`, syscall);
      this.vol.cache.markVerified(ref, ino, generation);
    }
    return ref;
  }

  /** Checksum check for a block of unknown kind (isEmpty): leaf tail or dx tail. */
  verifyAny(ctx: DirContext, ptr: number, lblk: number, syscall: string): void {
    if (!this.hasTail) return;
    const x = this.vol.engine.x;
    const { ino, generation } = ctx.inode;
    if (x.dirBlockHasTail(ptr)) {
      if (!x.dirBlockCsumVerify(ptr, ino, generation)) throw this.corrupt(ctx, `block ${lblk} checksum mismatch`, syscall);
      return;
    }
    const off = x.dxCountOffset(ptr) as number;
    if (off >= 0 && !x.dxNodeCsumVerify(ptr, ino, generation, off)) {
      throw this.corrupt(ctx, `index block ${lblk} checksum mismatch`, syscall);
    }
  }

  // Every changed directory block passes through one of these two: the place where the
  // path walk's name cache (dcache.ts) learns that this directory's names changed.
  // summed: the engine already brought the leaf's checksum up to date (addSealed).
  sealLeaf(h: Handle, ctx: DirContext, ref: BlockRef, summed = false): void {
    if (this.hasTail && !summed) this.vol.engine.x.dirBlockCsumSet(ref.ptr, ctx.inode.ino, ctx.inode.generation);
    h.dirty(ref);
    this.names.dropDir(ctx.inode.ino);
  }

  sealIndex(h: Handle, ctx: DirContext, ref: BlockRef, off: number): void {
    if (this.hasTail) this.vol.engine.x.dxNodeCsumSet(ref.ptr, ctx.inode.ino, ctx.inode.generation, off);
    h.dirty(ref);
    this.names.dropDir(ctx.inode.ino);
  }

  /** The engine's `shaped` argument for a pinned leaf: checked in full since its last fill. */
  shapedFlag(ref: BlockRef): number {
    return this.vol.cache.isShaped(ref) ? 1 : 0;
  }

  /**
   * dirAddEntry on a pinned leaf. The engine checks the block before it can answer
   * anything but a bad-argument code, so success, NOSPC and EXISTS all prove the block
   * well-formed: remember that, and later calls only re-walk its geometry.
   */
  addTo(ref: BlockRef, name: Uint8Array, ino: number, type: number, patchCsum = false): number {
    const cache = this.vol.cache;
    const r = this.vol.engine.x.dirAddEntry(ref.ptr, this.bs, this.np(name), name.length, ino, type, this.hasTail ? 1 : 0, this.shapedFlag(ref), patchCsum ? 1 : 0) as number;
    if (r >= 0 || r === this.K.DIRM_NOSPC || r === this.K.DIRM_EXISTS) cache.markShaped(ref);
    return r;
  }

  /**
   * addTo, then sealLeaf on success, for a leaf unchanged since it was last sealed or
   * verified — the common insert. When its checksum is known right (verified for this
   * directory since its last fill; every change since was sealed in the same step), the
   * engine patches the checksum for the few bytes it wrote instead of the whole block
   * being summed again (assembly/csum.ts dirBlockCsumPatch). Returns addTo's code.
   */
  addSealed(h: Handle, ctx: DirContext, ref: BlockRef, name: Uint8Array, ino: number, type: number): number {
    const patch = this.hasTail && this.vol.cache.isVerified(ref, ctx.inode.ino, ctx.inode.generation);
    const r = this.addTo(ref, name, ino, type, patch);
    if (r >= 0) this.sealLeaf(h, ctx, ref, patch);
    return r;
  }

  /**
   * addSealed into the slot at byte `at` that a lookup of this very name found on this
   * block (dirLookup's fit, carried by the MissProbe), without walking the block again
   * (assembly/dir_mod.ts dirInsertAt checks the one record). Only for a block still
   * "shaped" — not refilled from the device since the lookup walked it — whose probe is
   * current (no directory changed since): then the block is exactly what the lookup saw.
   * Returns dirInsertAt's code; on a failure nothing was written (use addSealed).
   */
  insertSealed(h: Handle, ctx: DirContext, ref: BlockRef, at: number, name: Uint8Array, ino: number, type: number): number {
    if (!this.vol.cache.isShaped(ref)) return this.K.DIRM_NOSPC;
    const patch = this.hasTail && this.vol.cache.isVerified(ref, ctx.inode.ino, ctx.inode.generation);
    const r = this.vol.engine.x.dirInsertAt(ref.ptr, this.bs, at, this.np(name), name.length, ino, type, this.hasTail ? 1 : 0, patch ? 1 : 0) as number;
    if (r >= 0) this.sealLeaf(h, ctx, ref, patch);
    return r;
  }

  /** dirFreeSpace of a pinned leaf (largest slot, or total), recording a passed check. */
  freeIn(ref: BlockRef, total: boolean): number {
    const r = this.vol.engine.x.dirFreeSpace(ref.ptr, this.bs, this.hasTail ? 1 : 0, total ? 1 : 0, this.shapedFlag(ref)) as number;
    if (r >= 0) this.vol.cache.markShaped(ref);
    return r;
  }
}
