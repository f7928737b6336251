/**
 * Directories, write side: adding, removing and re-pointing names in linear and hash-
 * indexed (htree) directories, "..", the emptiness check for rmdir, and a new
 * directory's first block.
 *
 * Why this shape: the engine (assembly/dir_mod.ts) edits one block per call; this file
 * owns the multi-block protocol — which blocks to visit, when to allocate, the path
 * through the index, checksums — and turns engine codes into FsError. Everything the
 * caller knows better is passed in as a DirContext: the directory's inode state, its
 * block map and a way to append a block (allocation plus extent tree plus i_size), so
 * this file needs neither the allocator nor the extent tree.
 *
 * Protocol rules (the journal will rely on them, see journal/handle.ts): a block is read
 * with h.getBlock (checksum verified, structure validated by the engine — in full once
 * per fill from the device, then by its geometry only: BlockCache.isShaped) and only taken
 * with h.getWriteAccess right before it changes; fresh blocks come from h.getNewBlock;
 * each changed block gets its checksum recomputed and h.dirty. Blocks of a linear scan
 * that do not change are released at once, so a scan of a large directory does not pin
 * it whole. Each step that allocates a block leaves a valid directory behind (the block
 * is linked into the index in the same step), so an ENOSPC half-way through a split
 * leaves an intact, merely deeper, index.
 *
 * Linear directories: first block whose largest free slot fits the name (a per-directory
 * hint of each block's largest slot skips blocks known to be full); otherwise a new
 * block is appended — except that a one-block directory on a dir_index volume is turned
 * into an htree first, as Linux does: block 0 becomes the root holding "." and "..", its
 * entries move to a new leaf, which is split by hash into two.
 *
 * Htree directories: hash the name (root's hash version, made unsigned by s_flags, seeded
 * by s_hash_seed), walk root → nodes → leaf and insert there. A full leaf is compacted if
 * that frees a large enough slot, else split (upper half by hash into a new block, its
 * hash inserted into the parent node). A full parent is split in turn, top-down from the
 * deepest level that has room; a full root gains a level (at most 2 levels, 3 with
 * large_dir; beyond that ENOSPC "directory index full", as Linux answers).
 *
 * Caller duties: hold the directory's lock; validate names in the POSIX sense (this file
 * re-checks them defensively); have established that a name being added is absent — an
 * add notices a duplicate only in the block it writes to (EEXIST); keep link counts,
 * times and the inode (the ctx's business). Unsupported here: inline-data, encrypted and
 * casefolded directories (EOPNOTSUPP).
 */
import type { BlockRef, Handle } from "../journal/handle.ts";
import { Missing, type BlockCache } from "../cache.ts";
import type { Engine } from "../wasm.ts";
import { FsError } from "./errors.ts";
import { dcacheOf, type DentryCache, type MissProbe } from "./dcache.ts";
import type { Superblock } from "./superblock.ts";

/** The directory inode as this file needs it; the ctx keeps it current. */
export interface DirInodeState {
  readonly ino: number;
  readonly generation: number;
  /** i_size in bytes (a whole number of blocks); grows with appendBlock. */
  readonly size: number;
  /** i_flags (INDEX_FL changes through setIndexed). */
  readonly flags: number;
}

/** What the caller supplies for one directory (see the file header). */
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

/** The parts of a mounted volume this file uses. */
export interface DirWriteVolume {
  readonly engine: Engine;
  readonly sb: Superblock;
  readonly blockSize: number;
  readonly cache: BlockCache;
}

interface Level {
  lblk: number;
  phys: number;
  /** DXR_ENTRIES (root) or DXN_ENTRIES (node). */
  off: number;
  /** Index of the entry followed. */
  i: number;
}

interface Walk {
  path: Level[];
  levels: number;
  version: number;
  hash: number;
}

const HINT_DIRS = 256;

export class DirWriter {
  private readonly vol: DirWriteVolume;
  private readonly bs: number;
  private readonly namePtr: number;
  private readonly seedPtr: number;
  private readonly dotsPtr: number;
  private readonly scratch: number;
  private readonly hasTail: boolean;
  private readonly hasFileType: boolean;
  private readonly dirIndex: boolean;
  private readonly maxLevels: number;
  private readonly K: Record<string, number>;
  /** Per directory (ino): generation and the largest free slot of each block seen. */
  private readonly hints = new Map<number, { gen: number; slot: Map<number, number> }>();
  /** The path walk's name cache, told of every change (see sealLeaf). */
  private readonly names: DentryCache;

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

  // ---- public operations ----

  /** Add name → (ino, fileType) to the directory. */
  async addEntry(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, fileType: number): Promise<void> {
    const sys = "link";
    const type = this.checkAdd(ctx, name, ino, fileType);
    if (this.indexed(ctx)) return this.dxAdd(h, ctx, name, ino, type);
    if ((ctx.inode.flags >>> 0) & this.K.INODE_FL_INDEX) {
      // An index made while dir_index was on: like Linux, stop trusting it and go linear.
      // Its blocks read as "." + ".." and empty blocks (with checksums they lack the leaf
      // tail, which the scan below reports as corruption).
      ctx.setIndexed(false);
      await ctx.markInodeDirty?.(h);
    }
    if (await this.linearAdd(h, ctx, name, ino, type)) return;
    if (this.nblocks(ctx) === 1 && this.dirIndex && this.vol.sb.defHashVersion <= 2) {
      await this.convert(h, ctx);
      return this.dxAdd(h, ctx, name, ino, type);
    }
    const nb = await ctx.appendBlock(h);
    const ref = await h.getNewBlock(nb.phys);
    const x = this.vol.engine.x;
    x.dirInitBlock(ref.ptr, this.bs, this.hasTail ? 1 : 0);
    const r = this.addTo(ref, name, ino, type);
    if (r < 0) throw this.engineError(ctx, `new block ${nb.lblk}`, r, sys);
    this.sealLeaf(h, ctx, ref);
    this.hint(ctx).set(nb.lblk, this.freeIn(ref, false));
  }

  /**
   * addEntry's common case without waiting: true when done; false with nothing changed
   * when it needs a block that is not resident, a new block, a conversion or a split —
   * then call addEntry. Indexed directories: only right after this name's lookup
   * missed (the MissProbe gives the leaf), as in every create. Throws addEntry's
   * refusals and corruption errors. Same duties as addEntry.
   */
  addEntryResident(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, fileType: number): boolean {
    const type = this.checkAdd(ctx, name, ino, fileType);
    if (this.indexed(ctx)) return this.dxAddResident(h, ctx, name, ino, type);
    if ((ctx.inode.flags >>> 0) & this.K.INODE_FL_INDEX) return false; // addEntry turns it linear first
    return this.linearAddStep(h, ctx, name, ino, type, { lblk: 0 }) === true;
  }

  /** addEntry's argument checks; the file type as stored (0 without the filetype feature). */
  private checkAdd(ctx: DirContext, name: Uint8Array, ino: number, fileType: number): number {
    const sys = "link";
    this.checkDir(ctx, sys);
    this.checkName(name, sys);
    this.checkIno(ino, sys);
    if (!Number.isInteger(fileType) || fileType < 0 || fileType > 7) throw new FsError("EINVAL", `bad file type ${fileType}`, { syscall: sys });
    return this.hasFileType ? fileType : 0;
  }

  /** Remove name; returns the inode number it named (ENOENT if absent). */
  async removeEntry(h: Handle, ctx: DirContext, name: Uint8Array): Promise<number> {
    const sys = "unlink";
    this.checkDir(ctx, sys);
    this.checkName(name, sys);
    const x = this.vol.engine.x;
    const ht = this.hasTail ? 1 : 0;
    const found = await this.locate(h, ctx, name, sys, async (lblk, phys) => {
      const w = await h.getWriteAccess(phys);
      const off = x.dirRemoveEntry(w.ptr, this.bs, this.np(name), name.length, ht, this.shapedFlag(w)) as number;
      if (off < 0) throw this.engineError(ctx, `block ${lblk}`, off, sys);
      this.sealLeaf(h, ctx, w);
      if (!this.indexed(ctx)) this.hint(ctx).set(lblk, this.freeIn(w, false));
      return x.dirModLastInode() >>> 0;
    });
    if (found === undefined) throw new FsError("ENOENT", "no such entry", { syscall: sys });
    return found;
  }

  /** Point the existing entry name at (newIno, fileType); returns the inode it named before. */
  async replaceEntry(h: Handle, ctx: DirContext, name: Uint8Array, newIno: number, fileType: number): Promise<number> {
    const sys = "rename";
    this.checkDir(ctx, sys);
    this.checkName(name, sys);
    this.checkIno(newIno, sys);
    if (!Number.isInteger(fileType) || fileType < 0 || fileType > 7) throw new FsError("EINVAL", `bad file type ${fileType}`, { syscall: sys });
    const type = this.hasFileType ? fileType : 0;
    const x = this.vol.engine.x;
    const found = await this.locate(h, ctx, name, sys, async (lblk, phys) => {
      const w = await h.getWriteAccess(phys);
      const off = x.dirSetEntryInode(w.ptr, this.bs, this.np(name), name.length, newIno, type, this.hasTail ? 1 : 0, this.shapedFlag(w)) as number;
      if (off < 0) throw this.engineError(ctx, `block ${lblk}`, off, sys);
      this.sealLeaf(h, ctx, w);
      return x.dirModLastInode() >>> 0;
    });
    if (found === undefined) throw new FsError("ENOENT", "no such entry", { syscall: sys });
    return found;
  }

  /** Point ".." at parentIno (a directory moved to a new parent); returns the old parent. */
  async setDotDot(h: Handle, ctx: DirContext, parentIno: number): Promise<number> {
    const sys = "rename";
    this.checkDir(ctx, sys);
    this.checkIno(parentIno, sys);
    const x = this.vol.engine.x;
    const phys = await this.mapped(ctx, 0, sys);
    if (this.indexed(ctx)) await this.readIndex(h, ctx, 0, phys, this.K.DXR_ENTRIES, sys);
    else this.verifyAny(ctx, (await h.getBlock(phys)).ptr, 0, sys);
    const w = await h.getWriteAccess(phys);
    const r = x.dirSetDotDot(w.ptr, this.bs, parentIno, this.hasTail ? 1 : 0) as number;
    if (r < 0) throw this.engineError(ctx, "block 0", r, sys);
    // Block 0 is a root (dx tail) or a leaf (leaf tail) by its shape, whatever INDEX_FL says.
    if (this.hasTail && !x.dirBlockHasTail(w.ptr) && (x.dxCountOffset(w.ptr) as number) === this.K.DXR_ENTRIES) {
      this.sealIndex(h, ctx, w, this.K.DXR_ENTRIES);
    } else {
      this.sealLeaf(h, ctx, w);
    }
    return x.dirModLastInode() >>> 0;
  }

  /** True if only "." and ".." are live (rmdir's test). Reads through h if given. */
  async isEmpty(ctx: DirContext, h?: Handle): Promise<boolean> {
    const sys = "rmdir";
    this.checkDir(ctx, sys);
    const x = this.vol.engine.x;
    const n = this.nblocks(ctx);
    for (let lblk = 0; lblk < n; lblk++) {
      const phys = await ctx.mapBlock(lblk);
      if (!(phys > 0)) continue;
      const ref = h ? await h.getBlock(phys) : await this.vol.cache.get(phys);
      try {
        this.verifyAny(ctx, ref.ptr, lblk, sys);
        const r = x.dirIsEmpty(ref.ptr, this.bs, this.hasTail ? 1 : 0) as number;
        if (r < 0) throw this.engineError(ctx, `block ${lblk}`, r, sys);
        if (r === 0) return false;
      } finally {
        if (h) h.release(ref);
        else this.vol.cache.release(ref);
      }
    }
    return true;
  }

  /** Write the first block of a new, empty directory ("." → selfIno, ".." → parentIno). */
  async initDirectory(h: Handle, ctx: DirContext, selfIno: number, parentIno: number): Promise<void> {
    const sys = "mkdir";
    this.checkIno(selfIno, sys);
    this.checkIno(parentIno, sys);
    if (ctx.inode.size !== 0) throw new FsError("EINVAL", `directory inode ${ctx.inode.ino} already has blocks`, { syscall: sys });
    const nb = await ctx.appendBlock(h);
    const ref = await h.getNewBlock(nb.phys);
    const x = this.vol.engine.x;
    const r = x.dirInitFirst(ref.ptr, this.bs, selfIno, parentIno, this.hasFileType ? this.K.FT_DIR : 0, this.hasTail ? 1 : 0) as number;
    if (r < 0) throw this.engineError(ctx, "new block 0", r, sys);
    this.sealLeaf(h, ctx, ref);
    this.forget(ctx.inode.ino);
  }

  /** Drop what is remembered about a directory (call when its inode is freed). */
  forget(ino: number): void {
    this.hints.delete(ino);
    this.names.dropDir(ino);
  }

  // ---- checks and small helpers ----

  private checkDir(ctx: DirContext, syscall: string): void {
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
  private np(name: Uint8Array): number {
    this.vol.engine.u8.set(name, this.namePtr);
    return this.namePtr;
  }

  private checkName(name: Uint8Array, syscall: string): void {
    if (!(name instanceof Uint8Array) || name.length === 0) throw new FsError("EINVAL", "empty name", { syscall });
    if (name.length > 255) throw new FsError("ENAMETOOLONG", "name longer than 255 bytes", { syscall });
    if (name.includes(0) || name.includes(0x2f)) throw new FsError("EINVAL", "name contains '/' or NUL", { syscall });
    if (name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e))) {
      throw new FsError("EINVAL", "'.' and '..' are not ordinary entries", { syscall });
    }
  }

  private checkIno(ino: number, syscall: string): void {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.vol.sb.inodesCount) {
      throw new FsError("EINVAL", `inode number ${ino} outside 1..${this.vol.sb.inodesCount}`, { syscall });
    }
  }

  private indexed(ctx: DirContext): boolean {
    return this.dirIndex && ((ctx.inode.flags >>> 0) & this.K.INODE_FL_INDEX) !== 0;
  }

  private nblocks(ctx: DirContext): number {
    return ctx.inode.size / this.bs;
  }

  private hint(ctx: DirContext): Map<number, number> {
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

  private corrupt(ctx: DirContext, why: string, syscall: string): FsError {
    return new FsError("EFSCORRUPTED", `directory inode ${ctx.inode.ino}: ${why}`, { syscall });
  }

  private engineError(ctx: DirContext, where: string, rc: number, syscall: string): FsError {
    if (rc === this.K.DIRM_EXISTS) return new FsError("EEXIST", "entry exists", { syscall });
    return this.corrupt(ctx, `${where} is malformed (engine code ${rc})`, syscall);
  }

  private async mapped(ctx: DirContext, lblk: number, syscall: string): Promise<number> {
    if (!(lblk >= 0 && lblk < this.nblocks(ctx))) throw this.corrupt(ctx, `index points at block ${lblk} outside the directory`, syscall);
    const phys = await ctx.mapBlock(lblk);
    if (!(phys > 0)) throw this.corrupt(ctx, `block ${lblk} is a hole`, syscall);
    return phys;
  }

  /** Read a leaf (or linear block) and verify its checksum tail. */
  private async readLeaf(h: Handle, ctx: DirContext, lblk: number, phys: number, syscall: string): Promise<BlockRef> {
    return this.checkLeaf(h, ctx, await h.getBlock(phys), lblk, syscall);
  }

  /** readLeaf without waiting: Missing (nothing pinned) when the block is not resident. */
  private readLeafResident(h: Handle, ctx: DirContext, lblk: number, phys: number, syscall: string): BlockRef | Missing {
    const ref = h.getBlockResident(phys);
    return ref ? this.checkLeaf(h, ctx, ref, lblk, syscall) : new Missing(phys);
  }

  /** readLeaf's check of the pinned block: its checksum tail, once per fill from the device. */
  private checkLeaf(h: Handle, ctx: DirContext, ref: BlockRef, lblk: number, syscall: string): BlockRef {
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
  private async readIndex(h: Handle, ctx: DirContext, lblk: number, phys: number, off: number, syscall: string): Promise<BlockRef> {
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
  private verifyAny(ctx: DirContext, ptr: number, lblk: number, syscall: string): void {
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
  private sealLeaf(h: Handle, ctx: DirContext, ref: BlockRef, summed = false): void {
    if (this.hasTail && !summed) this.vol.engine.x.dirBlockCsumSet(ref.ptr, ctx.inode.ino, ctx.inode.generation);
    h.dirty(ref);
    this.names.dropDir(ctx.inode.ino);
  }

  private sealIndex(h: Handle, ctx: DirContext, ref: BlockRef, off: number): void {
    if (this.hasTail) this.vol.engine.x.dxNodeCsumSet(ref.ptr, ctx.inode.ino, ctx.inode.generation, off);
    h.dirty(ref);
    this.names.dropDir(ctx.inode.ino);
  }

  /** The engine's `shaped` argument for a pinned leaf: checked in full since its last fill. */
  private shapedFlag(ref: BlockRef): number {
    return this.vol.cache.isShaped(ref) ? 1 : 0;
  }

  /**
   * dirAddEntry on a pinned leaf. The engine checks the block before it can answer
   * anything but a bad-argument code, so success, NOSPC and EXISTS all prove the block
   * well-formed: remember that, and later calls only re-walk its geometry.
   */
  private addTo(ref: BlockRef, name: Uint8Array, ino: number, type: number, patchCsum = false): number {
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
  private addSealed(h: Handle, ctx: DirContext, ref: BlockRef, name: Uint8Array, ino: number, type: number): number {
    const patch = this.hasTail && this.vol.cache.isVerified(ref, ctx.inode.ino, ctx.inode.generation);
    const r = this.addTo(ref, name, ino, type, patch);
    if (r >= 0) this.sealLeaf(h, ctx, ref, patch);
    return r;
  }

  /** dirFreeSpace of a pinned leaf (largest slot, or total), recording a passed check. */
  private freeIn(ref: BlockRef, total: boolean): number {
    const r = this.vol.engine.x.dirFreeSpace(ref.ptr, this.bs, this.hasTail ? 1 : 0, total ? 1 : 0, this.shapedFlag(ref)) as number;
    if (r >= 0) this.vol.cache.markShaped(ref);
    return r;
  }

  // ---- linear directories ----

  /** Insert into the first block with a large enough slot; false if none has one. */
  private async linearAdd(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): Promise<boolean> {
    const st = { lblk: 0 };
    let held: BlockRef | undefined;
    try {
      for (;;) {
        const r = this.linearAddStep(h, ctx, name, ino, type, st);
        if (held) this.vol.cache.release(held);
        held = undefined;
        if (!(r instanceof Missing)) return r;
        // Read it and hold it for the one step that resumes at st.lblk and needs it.
        held = await this.vol.cache.get(r.blk);
      }
    } finally {
      if (held) this.vol.cache.release(held);
    }
  }

  /**
   * linearAdd over resident blocks, from block st.lblk on: true when inserted, false if
   * no block has a large enough slot, Missing when a block must be read first (st.lblk
   * is where to resume; nothing changed but the advisory hints).
   */
  private linearAddStep(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number, st: { lblk: number }): boolean | Missing {
    const x = this.vol.engine.x;
    const need = x.dirRecLenFor(name.length) as number;
    const slots = this.hint(ctx);
    const n = this.nblocks(ctx);
    for (; st.lblk < n; st.lblk++) {
      const lblk = st.lblk;
      const known = slots.get(lblk);
      if (known !== undefined && known < need) continue;
      const phys = ctx.mapBlockResident(lblk);
      if (phys instanceof Missing) return phys;
      if (!(phys > 0)) continue;
      const ref = this.readLeafResident(h, ctx, lblk, phys, "link");
      if (ref instanceof Missing) return ref;
      const free = this.freeIn(ref, false);
      if (free < 0) {
        h.release(ref);
        throw this.engineError(ctx, `block ${lblk}`, free, "link");
      }
      if (free < need) {
        slots.set(lblk, free);
        h.release(ref);
        continue;
      }
      // Pinned for reading in h is pinned for writing (CacheHandle: one pin per block).
      const w = h.getWriteAccessResident(phys)!;
      const r = this.addSealed(h, ctx, w, name, ino, type);
      if (r < 0) throw this.engineError(ctx, `block ${lblk}`, r, "link");
      slots.set(lblk, this.freeIn(w, false));
      return true;
    }
    return false;
  }

  /**
   * Find the block holding name and run fn on it (block already checked);
   * undefined if the name is not in the directory.
   */
  private async locate<T>(
    h: Handle, ctx: DirContext, name: Uint8Array, syscall: string, fn: (lblk: number, phys: number) => Promise<T>,
  ): Promise<T | undefined> {
    const x = this.vol.engine.x;
    const ht = this.hasTail ? 1 : 0;
    const probe = async (lblk: number, phys: number): Promise<boolean> => {
      const ref = await this.readLeaf(h, ctx, lblk, phys, syscall);
      const off = x.dirLookup(ref.ptr, this.bs, this.np(name), name.length, ht, this.shapedFlag(ref)) as number;
      if (off < this.K.DIR_NOT_FOUND) throw this.engineError(ctx, `block ${lblk}`, off, syscall);
      this.vol.cache.markShaped(ref);
      if (off < 0) h.release(ref);
      return off >= 0;
    };
    if (this.indexed(ctx)) {
      const walk = await this.walk(h, ctx, name, syscall);
      const visited = new Set<number>();
      for (;;) {
        const { lblk, phys } = await this.leafOf(h, ctx, walk, syscall);
        if (visited.has(lblk)) throw this.corrupt(ctx, `index revisits leaf ${lblk}`, syscall);
        visited.add(lblk);
        if (await probe(lblk, phys)) return fn(lblk, phys);
        if (!(await this.nextLeaf(h, ctx, walk, syscall))) return undefined;
      }
    }
    const n = this.nblocks(ctx);
    for (let lblk = 0; lblk < n; lblk++) {
      const phys = await ctx.mapBlock(lblk);
      if (!(phys > 0)) continue;
      if (await probe(lblk, phys)) return fn(lblk, phys);
    }
    return undefined;
  }

  // ---- htree directories ----

  /** appendBlock for an indexed directory, whose index can address 2^28 blocks only. */
  private async appendIndexed(h: Handle, ctx: DirContext): Promise<{ lblk: number; phys: number }> {
    if (this.nblocks(ctx) >= 0x0fffffff) throw new FsError("ENOSPC", "directory too large for its index", { syscall: "link" });
    return ctx.appendBlock(h);
  }

  /** Root → nodes → leaf for name; the path of (block, entry) per level. */
  private async walk(h: Handle, ctx: DirContext, name: Uint8Array, syscall: string): Promise<Walk> {
    const x = this.vol.engine.x;
    const p0 = await this.mapped(ctx, 0, syscall);
    const root = await this.readIndex(h, ctx, 0, p0, this.K.DXR_ENTRIES, syscall);
    const levels = x.dxRootCheck(root.ptr, this.bs, this.hasTail ? 1 : 0, this.maxLevels) as number;
    const version = x.dxEffectiveHashVersion(x.dxHashVersion(root.ptr), this.vol.sb.flags) >>> 0;
    if (!x.dxHashSupported(version)) throw new FsError("EOPNOTSUPP", `directory hash version ${version} is not supported`, { syscall });
    const hash = x.dxHash(this.np(name), name.length, version, this.seedPtr) >>> 0;
    const path: Level[] = [{ lblk: 0, phys: p0, off: this.K.DXR_ENTRIES, i: x.dxFind(root.ptr, this.bs, this.K.DXR_ENTRIES, hash) as number }];
    const w: Walk = { path, levels, version, hash };
    await this.descend(h, ctx, w, 0, false, syscall);
    return w;
  }

  /**
   * The walk of the lookup that just missed this name in this directory (MissProbe in
   * dcache.ts), if no directory changed since — a create's insert then skips the second
   * walk. The probe is consumed either way. Caller holds the directory's lock.
   */
  private probed(ctx: DirContext, name: Uint8Array): Walk | undefined {
    const m = this.names.lastMiss;
    if (!m) return undefined;
    this.names.lastMiss = undefined;
    if (!this.probeFits(m, ctx, name)) return undefined;
    const path: Level[] = [];
    // Where the lookup found each block (the epoch check says none moved since).
    for (const lv of m.path) path.push({ lblk: lv.lblk, phys: lv.phys, off: lv.off, i: lv.i });
    return { path, levels: m.levels, version: m.version, hash: m.hash };
  }

  /** Is m the miss of this very name in this directory, with no directory changed since? */
  private probeFits(m: MissProbe, ctx: DirContext, name: Uint8Array): boolean {
    const { ino, generation } = ctx.inode;
    if (m.epoch !== this.names.epoch || m.dir !== ino || m.gen !== generation || m.path.length !== m.levels + 1) return false;
    if (m.name.length !== name.length) return false;
    for (let k = 0; k < name.length; k++) if (m.name[k] !== name[k]) return false;
    return true;
  }

  /** Fill path[from+1 ..] below path[from]: by hash, or (first) through entry 0. */
  private async descend(h: Handle, ctx: DirContext, w: Walk, from: number, first: boolean, syscall: string): Promise<void> {
    const x = this.vol.engine.x;
    for (let k = from; k < w.levels; k++) {
      const child = await this.childOf(h, ctx, w.path[k]!, syscall);
      if (w.path.some((lv) => lv.lblk === child)) throw this.corrupt(ctx, `index loops through block ${child}`, syscall);
      const phys = await this.mapped(ctx, child, syscall);
      const ref = await this.readIndex(h, ctx, child, phys, this.K.DXN_ENTRIES, syscall);
      const i = first ? 0 : (x.dxFind(ref.ptr, this.bs, this.K.DXN_ENTRIES, w.hash) as number);
      w.path[k + 1] = { lblk: child, phys, off: this.K.DXN_ENTRIES, i };
    }
    w.path.length = w.levels + 1;
  }

  private async childOf(h: Handle, ctx: DirContext, lv: Level, syscall: string): Promise<number> {
    const ref = await h.getBlock(lv.phys);
    const child = this.vol.engine.x.dxEntryBlock(ref.ptr, this.bs, lv.off, lv.i) >>> 0;
    if (child === 0 || child === 0xffffffff) throw this.corrupt(ctx, `index block ${lv.lblk} entry ${lv.i} is bad`, syscall);
    return child;
  }

  private async leafOf(h: Handle, ctx: DirContext, w: Walk, syscall: string): Promise<{ lblk: number; phys: number }> {
    const lblk = await this.childOf(h, ctx, w.path[w.levels]!, syscall);
    if (w.path.some((lv) => lv.lblk === lblk)) throw this.corrupt(ctx, `index leaf ${lblk} is an index block`, syscall);
    return { lblk, phys: await this.mapped(ctx, lblk, syscall) };
  }

  /** Move the walk to the next leaf that may hold the same hash; false if there is none. */
  private async nextLeaf(h: Handle, ctx: DirContext, w: Walk, syscall: string): Promise<boolean> {
    const x = this.vol.engine.x;
    for (let k = w.levels; k >= 0; k--) {
      const lv = w.path[k]!;
      const ref = await h.getBlock(lv.phys);
      const r = x.dxContinues(ref.ptr, this.bs, lv.off, lv.i, w.hash) as number;
      if (r === this.K.DX_NEXT_UP) continue;
      if (r === this.K.DX_NEXT_STOP) return false;
      if (r !== this.K.DX_NEXT_FOLLOW) throw this.corrupt(ctx, `index block ${lv.lblk} is malformed (${r})`, syscall);
      lv.i++;
      await this.descend(h, ctx, w, k, true, syscall);
      return true;
    }
    return false;
  }

  /**
   * The insert right after this name's lookup missed (MissProbe), over resident blocks,
   * when the leaf has a slot: true when done, false with nothing changed (the probe is
   * left for dxAdd). The same steps as dxAdd's first ones, with the leaf the lookup
   * found (the probe's epoch proves neither the index nor the map changed since).
   */
  private dxAddResident(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): boolean {
    const sys = "link";
    const m = this.names.lastMiss;
    if (!m || !this.probeFits(m, ctx, name)) return false;
    const leaf = m.leaf;
    if (m.path.some((lv) => lv.lblk === leaf)) throw this.corrupt(ctx, `index leaf ${leaf} is an index block`, sys);
    const lw = this.readLeafResident(h, ctx, leaf, m.leafPhys, sys);
    if (lw instanceof Missing) return false;
    const r = this.addSealed(h, ctx, lw, name, ino, type);
    if (r === this.K.DIRM_NOSPC) return false;
    if (r < 0) throw this.engineError(ctx, `leaf ${leaf}`, r, sys);
    this.names.lastMiss = undefined;
    return true;
  }

  private async dxAdd(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): Promise<void> {
    const sys = "link";
    const x = this.vol.engine.x;
    const ht = this.hasTail ? 1 : 0;
    const need = x.dirRecLenFor(name.length) as number;
    const w = this.probed(ctx, name) ?? (await this.walk(h, ctx, name, sys));
    const leaf = await this.leafOf(h, ctx, w, sys);
    await this.readLeaf(h, ctx, leaf.lblk, leaf.phys, sys);
    // The common case in one engine call: the leaf has a slot (and the name is not in it).
    const lw = await h.getWriteAccess(leaf.phys);
    const r0 = this.addSealed(h, ctx, lw, name, ino, type);
    if (r0 >= 0) return;
    if (r0 !== this.K.DIRM_NOSPC) throw this.engineError(ctx, `leaf ${leaf.lblk}`, r0, sys);
    // No single slot fits; packing the live entries may free one.
    const total = this.freeIn(lw, true);
    if (total < 0) throw this.engineError(ctx, `leaf ${leaf.lblk}`, total, sys);
    if (total >= need) {
      x.dirCompact(lw.ptr, this.bs, ht, this.shapedFlag(lw));
      const r = this.addTo(lw, name, ino, type);
      if (r < 0) throw this.engineError(ctx, `leaf ${leaf.lblk}`, r, sys);
      this.sealLeaf(h, ctx, lw);
      return;
    }
    // The leaf is full: make room in its index node, then split it.
    await this.makeRoom(h, ctx, w);
    const nb = await this.appendIndexed(h, ctx);
    const dst = await h.getNewBlock(nb.phys);
    const src = await h.getWriteAccess(leaf.phys);
    const moved = x.dxSplitLeaf(src.ptr, dst.ptr, this.bs, w.version, this.seedPtr, ht, this.scratch) as number;
    if (moved < 0) throw this.engineError(ctx, `leaf ${leaf.lblk}`, moved, sys);
    const split = x.dxLastSplitHash() >>> 0;
    await this.insertIndex(h, ctx, w.path[w.levels]!, split, nb.lblk);
    const target = w.hash >= ((split & ~1) >>> 0) ? dst : src;
    const r = this.addTo(target, name, ino, type);
    this.sealLeaf(h, ctx, src);
    this.sealLeaf(h, ctx, dst);
    if (r < 0) throw this.engineError(ctx, `leaf after split`, r, sys);
  }

  /** Insert [hash → lblk] after the followed entry of level lv (which has room). */
  private async insertIndex(h: Handle, ctx: DirContext, lv: Level, hash: number, lblk: number): Promise<void> {
    const pw = await h.getWriteAccess(lv.phys);
    const r = this.vol.engine.x.dxInsertEntry(pw.ptr, lv.off, this.bs, lv.i, hash, lblk) as number;
    if (r < 0) throw this.engineError(ctx, `index block ${lv.lblk}`, r, "link");
    this.sealIndex(h, ctx, pw, lv.off);
  }

  private async isFull(h: Handle, lv: Level): Promise<boolean> {
    const x = this.vol.engine.x;
    const ref = await h.getBlock(lv.phys);
    const limit = lv.off === this.K.DXR_ENTRIES ? x.dxRootLimit(this.bs, this.hasTail ? 1 : 0) : x.dxNodeLimit(this.bs, this.hasTail ? 1 : 0);
    return (x.dxCount(ref.ptr, this.bs, lv.off) as number) >= (limit as number);
  }

  /**
   * Make sure the deepest index level on the path has room for one more entry: grow the
   * root if every level is full, then split full nodes top-down, keeping the path on the
   * half that covers the name's hash.
   */
  private async makeRoom(h: Handle, ctx: DirContext, w: Walk): Promise<void> {
    const x = this.vol.engine.x;
    const sys = "link";
    let j = w.levels;
    while (j >= 0 && (await this.isFull(h, w.path[j]!))) j--;
    if (j === w.levels) return;
    if (j < 0) {
      if (w.levels + 1 >= this.maxLevels) throw new FsError("ENOSPC", "directory index full", { syscall: sys });
      const nb = await this.appendIndexed(h, ctx);
      const node = await h.getNewBlock(nb.phys);
      const root = await h.getWriteAccess(w.path[0]!.phys);
      const r = x.dxGrowRoot(root.ptr, node.ptr, this.bs, nb.lblk, this.hasTail ? 1 : 0, this.maxLevels) as number;
      if (r < 0) throw this.engineError(ctx, "index root", r, sys);
      this.sealIndex(h, ctx, root, this.K.DXR_ENTRIES);
      this.sealIndex(h, ctx, node, this.K.DXN_ENTRIES);
      w.levels = r;
      w.path.splice(1, 0, { lblk: nb.lblk, phys: nb.phys, off: this.K.DXN_ENTRIES, i: w.path[0]!.i });
      w.path[0]!.i = 0;
      j = 1;
    }
    for (let k = j + 1; k <= w.levels; k++) {
      const lv = w.path[k]!;
      const nb = await this.appendIndexed(h, ctx);
      const dst = await h.getNewBlock(nb.phys);
      const src = await h.getWriteAccess(lv.phys);
      const cut = x.dxSplitNode(src.ptr, dst.ptr, this.bs, this.hasTail ? 1 : 0) as number;
      if (cut < 0) throw this.engineError(ctx, `index block ${lv.lblk}`, cut, sys);
      const split = x.dxLastSplitHash() >>> 0;
      this.sealIndex(h, ctx, src, this.K.DXN_ENTRIES);
      this.sealIndex(h, ctx, dst, this.K.DXN_ENTRIES);
      const parent = w.path[k - 1]!;
      await this.insertIndex(h, ctx, parent, split, nb.lblk);
      if (lv.i >= cut) {
        w.path[k] = { lblk: nb.lblk, phys: nb.phys, off: this.K.DXN_ENTRIES, i: lv.i - cut };
        parent.i++;
      }
    }
  }

  /**
   * Turn a one-block linear directory into an htree: block 0 becomes the root, its
   * entries move to a new leaf, which is then split by hash into two.
   */
  private async convert(h: Handle, ctx: DirContext): Promise<void> {
    const sys = "link";
    const x = this.vol.engine.x;
    const ht = this.hasTail ? 1 : 0;
    const p0 = await this.mapped(ctx, 0, sys);
    const b0 = await this.readLeaf(h, ctx, 0, p0, sys);
    // Check "." and ".." before allocating, so a refusal leaves nothing behind.
    const dotOff = x.dirLookup(b0.ptr, this.bs, this.dotsPtr, 1, ht, 0) as number;
    const dotdotOff = x.dirLookup(b0.ptr, this.bs, this.dotsPtr, 2, ht, 0) as number;
    if (dotOff !== 0 || dotdotOff !== (x.dirEntryRecLen(b0.ptr, this.bs, 0) as number)) {
      throw this.corrupt(ctx, "block 0 does not start with '.' and '..'", sys);
    }
    const version = this.vol.sb.defHashVersion;
    const nb1 = await ctx.appendBlock(h);
    const leaf1 = await h.getNewBlock(nb1.phys);
    const root = await h.getWriteAccess(p0);
    const moved = x.dxConvertRoot(root.ptr, leaf1.ptr, this.bs, version, nb1.lblk, ht, ht) as number;
    if (moved < 0) throw this.engineError(ctx, "block 0", moved, sys);
    this.sealLeaf(h, ctx, leaf1);
    this.sealIndex(h, ctx, root, this.K.DXR_ENTRIES);
    ctx.setIndexed(true);
    await ctx.markInodeDirty?.(h);
    this.forget(ctx.inode.ino);
    if (moved < 2) return;
    const nb2 = await this.appendIndexed(h, ctx);
    const leaf2 = await h.getNewBlock(nb2.phys);
    const eff = x.dxEffectiveHashVersion(version, this.vol.sb.flags) >>> 0;
    const r = x.dxSplitLeaf(leaf1.ptr, leaf2.ptr, this.bs, eff, this.seedPtr, ht, this.scratch) as number;
    if (r < 0) throw this.engineError(ctx, `leaf ${nb1.lblk}`, r, sys);
    const ri = x.dxInsertEntry(root.ptr, this.K.DXR_ENTRIES, this.bs, 0, x.dxLastSplitHash() >>> 0, nb2.lblk) as number;
    if (ri < 0) throw this.engineError(ctx, "index root", ri, sys);
    this.sealLeaf(h, ctx, leaf1);
    this.sealLeaf(h, ctx, leaf2);
    this.sealIndex(h, ctx, root, this.K.DXR_ENTRIES);
  }
}
