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
 * each changed block gets its checksum recomputed (or, for a verified leaf that an add
 * changes in a few bytes, patched: dir_blocks.ts addSealed) and h.dirty. Blocks of a
 * linear scan that do not change are released at once, so a scan of a large directory
 * does not pin it whole. Each step that allocates a block leaves a valid directory behind (the block
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
 * Without waiting: addEntryResident does the common add — a leaf with room, every block
 * resident, in an indexed directory right after the name's lookup missed (its MissProbe
 * names the leaf) — synchronously, and declines, having changed nothing, otherwise.
 *
 * Files: this one has the operations and linear directories; dir_index_write.ts
 * (DxWriter) the htree walks and inserts; dir_blocks.ts (DirBlocks) what both share.
 *
 * Caller duties: hold the directory's lock; validate names in the POSIX sense (this file
 * re-checks them defensively); have established that a name being added is absent — an
 * add notices a duplicate only in the block it writes to (EEXIST); keep link counts,
 * times and the inode (the ctx's business). Unsupported here: inline-data, encrypted and
 * casefolded directories (EOPNOTSUPP).
 */
import type { BlockRef, Handle } from "../journal/handle.ts";
import { Missing } from "../cache.ts";
import { FsError } from "./errors.ts";
import { DirBlocks, type DirContext, type DirWriteVolume } from "./dir_blocks.ts";
import { DxWriter } from "./dir_index_write.ts";

export type { DirContext, DirInodeState, DirWriteVolume } from "./dir_blocks.ts";

export class DirWriter {
  private readonly b: DirBlocks;
  private readonly dx: DxWriter;

  constructor(vol: DirWriteVolume) {
    this.b = new DirBlocks(vol);
    this.dx = new DxWriter(this.b);
  }

  // ---- public operations ----

  /** Add name → (ino, fileType) to the directory. */
  async addEntry(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, fileType: number): Promise<void> {
    const sys = "link";
    const type = this.checkAdd(ctx, name, ino, fileType);
    if (this.b.indexed(ctx)) return this.dx.add(h, ctx, name, ino, type);
    if ((ctx.inode.flags >>> 0) & this.b.K.INODE_FL_INDEX) {
      // An index made while dir_index was on: like Linux, stop trusting it and go linear.
      // Its blocks read as "." + ".." and empty blocks (with checksums they lack the leaf
      // tail, which the scan below reports as corruption).
      ctx.setIndexed(false);
      await ctx.markInodeDirty?.(h);
    }
    if (await this.linearAdd(h, ctx, name, ino, type)) return;
    if (this.b.nblocks(ctx) === 1 && this.b.dirIndex && this.b.vol.sb.defHashVersion <= 2) {
      await this.dx.convert(h, ctx);
      return this.dx.add(h, ctx, name, ino, type);
    }
    const nb = await ctx.appendBlock(h);
    const ref = await h.getNewBlock(nb.phys);
    const x = this.b.vol.engine.x;
    x.dirInitBlock(ref.ptr, this.b.bs, this.b.hasTail ? 1 : 0);
    const r = this.b.addTo(ref, name, ino, type);
    if (r < 0) throw this.b.engineError(ctx, `new block ${nb.lblk}`, r, sys);
    this.b.sealLeaf(h, ctx, ref);
    this.b.hint(ctx).set(nb.lblk, this.b.freeIn(ref, false));
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
    if (this.b.indexed(ctx)) return this.dx.addResident(h, ctx, name, ino, type);
    if ((ctx.inode.flags >>> 0) & this.b.K.INODE_FL_INDEX) return false; // addEntry turns it linear first
    return this.linearAddStep(h, ctx, name, ino, type, { lblk: 0 }) === true;
  }

  /** addEntry's argument checks; the file type as stored (0 without the filetype feature). */
  private checkAdd(ctx: DirContext, name: Uint8Array, ino: number, fileType: number): number {
    const sys = "link";
    this.b.checkDir(ctx, sys);
    this.b.checkName(name, sys);
    this.b.checkIno(ino, sys);
    if (!Number.isInteger(fileType) || fileType < 0 || fileType > 7) throw new FsError("EINVAL", `bad file type ${fileType}`, { syscall: sys });
    return this.b.hasFileType ? fileType : 0;
  }

  /** Remove name; returns the inode number it named (ENOENT if absent). */
  async removeEntry(h: Handle, ctx: DirContext, name: Uint8Array): Promise<number> {
    const sys = "unlink";
    this.b.checkDir(ctx, sys);
    this.b.checkName(name, sys);
    const x = this.b.vol.engine.x;
    const ht = this.b.hasTail ? 1 : 0;
    const found = await this.locate(h, ctx, name, sys, async (lblk, phys) => {
      const w = await h.getWriteAccess(phys);
      const off = x.dirRemoveEntry(w.ptr, this.b.bs, this.b.np(name), name.length, ht, this.b.shapedFlag(w)) as number;
      if (off < 0) throw this.b.engineError(ctx, `block ${lblk}`, off, sys);
      this.b.sealLeaf(h, ctx, w);
      if (!this.b.indexed(ctx)) this.b.hint(ctx).set(lblk, this.b.freeIn(w, false));
      return x.dirModLastInode() >>> 0;
    });
    if (found === undefined) throw new FsError("ENOENT", "no such entry", { syscall: sys });
    return found;
  }

  /** Point the existing entry name at (newIno, fileType); returns the inode it named before. */
  async replaceEntry(h: Handle, ctx: DirContext, name: Uint8Array, newIno: number, fileType: number): Promise<number> {
    const sys = "rename";
    this.b.checkDir(ctx, sys);
    this.b.checkName(name, sys);
    this.b.checkIno(newIno, sys);
    if (!Number.isInteger(fileType) || fileType < 0 || fileType > 7) throw new FsError("EINVAL", `bad file type ${fileType}`, { syscall: sys });
    const type = this.b.hasFileType ? fileType : 0;
    const x = this.b.vol.engine.x;
    const found = await this.locate(h, ctx, name, sys, async (lblk, phys) => {
      const w = await h.getWriteAccess(phys);
      const off = x.dirSetEntryInode(w.ptr, this.b.bs, this.b.np(name), name.length, newIno, type, this.b.hasTail ? 1 : 0, this.b.shapedFlag(w)) as number;
      if (off < 0) throw this.b.engineError(ctx, `block ${lblk}`, off, sys);
      this.b.sealLeaf(h, ctx, w);
      return x.dirModLastInode() >>> 0;
    });
    if (found === undefined) throw new FsError("ENOENT", "no such entry", { syscall: sys });
    return found;
  }

  /** Point ".." at parentIno (a directory moved to a new parent); returns the old parent. */
  async setDotDot(h: Handle, ctx: DirContext, parentIno: number): Promise<number> {
    const sys = "rename";
    this.b.checkDir(ctx, sys);
    this.b.checkIno(parentIno, sys);
    const x = this.b.vol.engine.x;
    const phys = await this.b.mapped(ctx, 0, sys);
    if (this.b.indexed(ctx)) await this.b.readIndex(h, ctx, 0, phys, this.b.K.DXR_ENTRIES, sys);
    else this.b.verifyAny(ctx, (await h.getBlock(phys)).ptr, 0, sys);
    const w = await h.getWriteAccess(phys);
    const r = x.dirSetDotDot(w.ptr, this.b.bs, parentIno, this.b.hasTail ? 1 : 0) as number;
    if (r < 0) throw this.b.engineError(ctx, "block 0", r, sys);
    // Block 0 is a root (dx tail) or a leaf (leaf tail) by its shape, whatever INDEX_FL says.
    if (this.b.hasTail && !x.dirBlockHasTail(w.ptr) && (x.dxCountOffset(w.ptr) as number) === this.b.K.DXR_ENTRIES) {
      this.b.sealIndex(h, ctx, w, this.b.K.DXR_ENTRIES);
    } else {
      this.b.sealLeaf(h, ctx, w);
    }
    return x.dirModLastInode() >>> 0;
  }

  /** True if only "." and ".." are live (rmdir's test). Reads through h if given. */
  async isEmpty(ctx: DirContext, h?: Handle): Promise<boolean> {
    const sys = "rmdir";
    this.b.checkDir(ctx, sys);
    const x = this.b.vol.engine.x;
    const n = this.b.nblocks(ctx);
    for (let lblk = 0; lblk < n; lblk++) {
      const phys = await ctx.mapBlock(lblk);
      if (!(phys > 0)) continue;
      const ref = h ? await h.getBlock(phys) : await this.b.vol.cache.get(phys);
      try {
        this.b.verifyAny(ctx, ref.ptr, lblk, sys);
        const r = x.dirIsEmpty(ref.ptr, this.b.bs, this.b.hasTail ? 1 : 0) as number;
        if (r < 0) throw this.b.engineError(ctx, `block ${lblk}`, r, sys);
        if (r === 0) return false;
      } finally {
        if (h) h.release(ref);
        else this.b.vol.cache.release(ref);
      }
    }
    return true;
  }

  /** Write the first block of a new, empty directory ("." → selfIno, ".." → parentIno). */
  async initDirectory(h: Handle, ctx: DirContext, selfIno: number, parentIno: number): Promise<void> {
    const sys = "mkdir";
    this.b.checkIno(selfIno, sys);
    this.b.checkIno(parentIno, sys);
    if (ctx.inode.size !== 0) throw new FsError("EINVAL", `directory inode ${ctx.inode.ino} already has blocks`, { syscall: sys });
    const nb = await ctx.appendBlock(h);
    const ref = await h.getNewBlock(nb.phys);
    const x = this.b.vol.engine.x;
    const r = x.dirInitFirst(ref.ptr, this.b.bs, selfIno, parentIno, this.b.hasFileType ? this.b.K.FT_DIR : 0, this.b.hasTail ? 1 : 0) as number;
    if (r < 0) throw this.b.engineError(ctx, "new block 0", r, sys);
    this.b.sealLeaf(h, ctx, ref);
    this.b.forget(ctx.inode.ino);
  }

  // ---- linear directories ----

  /** Insert into the first block with a large enough slot; false if none has one. */
  private async linearAdd(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): Promise<boolean> {
    const st = { lblk: 0 };
    let held: BlockRef | undefined;
    try {
      for (;;) {
        const r = this.linearAddStep(h, ctx, name, ino, type, st);
        if (held) this.b.vol.cache.release(held);
        held = undefined;
        if (!(r instanceof Missing)) return r;
        // Read it and hold it for the one step that resumes at st.lblk and needs it.
        held = await this.b.vol.cache.get(r.blk);
      }
    } finally {
      if (held) this.b.vol.cache.release(held);
    }
  }

  /**
   * linearAdd over resident blocks, from block st.lblk on: true when inserted, false if
   * no block has a large enough slot, Missing when a block must be read first (st.lblk
   * is where to resume; nothing changed but the advisory hints).
   */
  private linearAddStep(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number, st: { lblk: number }): boolean | Missing {
    const x = this.b.vol.engine.x;
    const need = x.dirRecLenFor(name.length) as number;
    const slots = this.b.hint(ctx);
    const n = this.b.nblocks(ctx);
    for (; st.lblk < n; st.lblk++) {
      const lblk = st.lblk;
      const known = slots.get(lblk);
      if (known !== undefined && known < need) continue;
      const phys = ctx.mapBlockResident(lblk);
      if (phys instanceof Missing) return phys;
      if (!(phys > 0)) continue;
      const ref = this.b.readLeafResident(h, ctx, lblk, phys, "link");
      if (ref instanceof Missing) return ref;
      const free = this.b.freeIn(ref, false);
      if (free < 0) {
        h.release(ref);
        throw this.b.engineError(ctx, `block ${lblk}`, free, "link");
      }
      if (free < need) {
        slots.set(lblk, free);
        h.release(ref);
        continue;
      }
      // Pinned for reading in h is pinned for writing (CacheHandle: one pin per block).
      const w = h.getWriteAccessResident(phys)!;
      const r = this.b.addSealed(h, ctx, w, name, ino, type);
      if (r < 0) throw this.b.engineError(ctx, `block ${lblk}`, r, "link");
      slots.set(lblk, this.b.freeIn(w, false));
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
    const x = this.b.vol.engine.x;
    const ht = this.b.hasTail ? 1 : 0;
    const probe = async (lblk: number, phys: number): Promise<boolean> => {
      const ref = await this.b.readLeaf(h, ctx, lblk, phys, syscall);
      const off = x.dirLookup(ref.ptr, this.b.bs, this.b.np(name), name.length, ht, this.b.shapedFlag(ref), 0) as number;
      if (off < this.b.K.DIR_NOT_FOUND) throw this.b.engineError(ctx, `block ${lblk}`, off, syscall);
      this.b.vol.cache.markShaped(ref);
      if (off < 0) h.release(ref);
      return off >= 0;
    };
    if (this.b.indexed(ctx)) {
      const walk = await this.dx.walk(h, ctx, name, syscall);
      const visited = new Set<number>();
      for (;;) {
        const { lblk, phys } = await this.dx.leafOf(h, ctx, walk, syscall);
        if (visited.has(lblk)) throw this.b.corrupt(ctx, `index revisits leaf ${lblk}`, syscall);
        visited.add(lblk);
        if (await probe(lblk, phys)) return fn(lblk, phys);
        if (!(await this.dx.nextLeaf(h, ctx, walk, syscall))) return undefined;
      }
    }
    const n = this.b.nblocks(ctx);
    for (let lblk = 0; lblk < n; lblk++) {
      const phys = await ctx.mapBlock(lblk);
      if (!(phys > 0)) continue;
      if (await probe(lblk, phys)) return fn(lblk, phys);
    }
    return undefined;
  }

  /** Drop what is remembered about a directory (call when its inode is freed). */
  forget(ino: number): void {
    this.b.forget(ino);
  }
}
