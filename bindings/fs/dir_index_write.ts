/**
 * Directories, write side, htree part: inserting into hash-indexed directories — the walk
 * root → nodes → leaf (or the one a create's lookup just made, MissProbe in dcache.ts),
 * the insert, compaction or split of a full leaf, splitting full index nodes top-down,
 * growing the root by a level, and turning a one-block linear directory into an index.
 * The rules (what is read, allocated and sealed when, and why an ENOSPC half-way leaves a
 * valid directory) are in dir_write.ts's header; the shared block helpers in
 * dir_blocks.ts. DirWriter owns one DxWriter and is its only caller; the caller holds
 * the directory's lock (metaLock).
 */
import type { Handle } from "../journal/handle.ts";
import { Missing } from "../cache.ts";
import { FsError } from "./errors.ts";
import type { MissProbe } from "./dcache.ts";
import type { DirBlocks, DirContext } from "./dir_blocks.ts";

/** One level of a walk: the index block, its entries offset, the entry followed. */
export interface Level {
  lblk: number;
  phys: number;
  /** DXR_ENTRIES (root) or DXN_ENTRIES (node). */
  off: number;
  /** Index of the entry followed. */
  i: number;
}

/** A walk through the index: the path (block, entry) per level, for the hash of one name. */
export interface Walk {
  path: Level[];
  levels: number;
  version: number;
  hash: number;
}

/** htree inserts and walks for DirWriter (see the file header). */
export class DxWriter {
  constructor(private readonly b: DirBlocks) {}

  /** appendBlock for an indexed directory, whose index can address 2^28 blocks only. */
  private async appendIndexed(h: Handle, ctx: DirContext): Promise<{ lblk: number; phys: number }> {
    if (this.b.nblocks(ctx) >= 0x0fffffff) throw new FsError("ENOSPC", "directory too large for its index", { syscall: "link" });
    return ctx.appendBlock(h);
  }

  /** Root → nodes → leaf for name; the path of (block, entry) per level. */
  async walk(h: Handle, ctx: DirContext, name: Uint8Array, syscall: string): Promise<Walk> {
    const x = this.b.vol.engine.x;
    const p0 = await this.b.mapped(ctx, 0, syscall);
    const root = await this.b.readIndex(h, ctx, 0, p0, this.b.K.DXR_ENTRIES, syscall);
    const levels = x.dxRootCheck(root.ptr, this.b.bs, this.b.hasTail ? 1 : 0, this.b.maxLevels) as number;
    const version = x.dxEffectiveHashVersion(x.dxHashVersion(root.ptr), this.b.vol.sb.flags) >>> 0;
    if (!x.dxHashSupported(version)) throw new FsError("EOPNOTSUPP", `directory hash version ${version} is not supported`, { syscall });
    const hash = x.dxHash(this.b.np(name), name.length, version, this.b.seedPtr) >>> 0;
    const path: Level[] = [{ lblk: 0, phys: p0, off: this.b.K.DXR_ENTRIES, i: x.dxFind(root.ptr, this.b.bs, this.b.K.DXR_ENTRIES, hash) as number }];
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
    const m = this.b.names.lastMiss;
    if (!m) return undefined;
    this.b.names.lastMiss = undefined;
    if (!this.probeFits(m, ctx, name)) return undefined;
    const path: Level[] = [];
    // Where the lookup found each block (the epoch check says none moved since).
    for (const lv of m.path) path.push({ lblk: lv.lblk, phys: lv.phys, off: lv.off, i: lv.i });
    return { path, levels: m.levels, version: m.version, hash: m.hash };
  }

  /** Is m the miss of this very name in this directory, with no directory changed since? */
  private probeFits(m: MissProbe, ctx: DirContext, name: Uint8Array): boolean {
    const { ino, generation } = ctx.inode;
    if (m.epoch !== this.b.names.epoch || m.dir !== ino || m.gen !== generation || m.path.length !== m.levels + 1) return false;
    if (m.name.length !== name.length) return false;
    for (let k = 0; k < name.length; k++) if (m.name[k] !== name[k]) return false;
    return true;
  }

  /** Fill path[from+1 ..] below path[from]: by hash, or (first) through entry 0. */
  private async descend(h: Handle, ctx: DirContext, w: Walk, from: number, first: boolean, syscall: string): Promise<void> {
    const x = this.b.vol.engine.x;
    for (let k = from; k < w.levels; k++) {
      const child = await this.childOf(h, ctx, w.path[k]!, syscall);
      if (w.path.some((lv) => lv.lblk === child)) throw this.b.corrupt(ctx, `index loops through block ${child}`, syscall);
      const phys = await this.b.mapped(ctx, child, syscall);
      const ref = await this.b.readIndex(h, ctx, child, phys, this.b.K.DXN_ENTRIES, syscall);
      const i = first ? 0 : (x.dxFind(ref.ptr, this.b.bs, this.b.K.DXN_ENTRIES, w.hash) as number);
      w.path[k + 1] = { lblk: child, phys, off: this.b.K.DXN_ENTRIES, i };
    }
    w.path.length = w.levels + 1;
  }

  private async childOf(h: Handle, ctx: DirContext, lv: Level, syscall: string): Promise<number> {
    const ref = await h.getBlock(lv.phys);
    const child = this.b.vol.engine.x.dxEntryBlock(ref.ptr, this.b.bs, lv.off, lv.i) >>> 0;
    if (child === 0 || child === 0xffffffff) throw this.b.corrupt(ctx, `index block ${lv.lblk} entry ${lv.i} is bad`, syscall);
    return child;
  }

  async leafOf(h: Handle, ctx: DirContext, w: Walk, syscall: string): Promise<{ lblk: number; phys: number }> {
    const lblk = await this.childOf(h, ctx, w.path[w.levels]!, syscall);
    if (w.path.some((lv) => lv.lblk === lblk)) throw this.b.corrupt(ctx, `index leaf ${lblk} is an index block`, syscall);
    return { lblk, phys: await this.b.mapped(ctx, lblk, syscall) };
  }

  /** Move the walk to the next leaf that may hold the same hash; false if there is none. */
  async nextLeaf(h: Handle, ctx: DirContext, w: Walk, syscall: string): Promise<boolean> {
    const x = this.b.vol.engine.x;
    for (let k = w.levels; k >= 0; k--) {
      const lv = w.path[k]!;
      const ref = await h.getBlock(lv.phys);
      const r = x.dxContinues(ref.ptr, this.b.bs, lv.off, lv.i, w.hash) as number;
      if (r === this.b.K.DX_NEXT_UP) continue;
      if (r === this.b.K.DX_NEXT_STOP) return false;
      if (r !== this.b.K.DX_NEXT_FOLLOW) throw this.b.corrupt(ctx, `index block ${lv.lblk} is malformed (${r})`, syscall);
      lv.i++;
      await this.descend(h, ctx, w, k, true, syscall);
      return true;
    }
    return false;
  }

  /**
   * The insert right after this name's lookup missed (MissProbe), over resident blocks,
   * when the leaf has a slot: true when done, false with nothing changed (the probe is
   * left for add). The same steps as add's first ones, with the leaf the lookup
   * found (the probe's epoch proves neither the index nor the map changed since).
   */
  addResident(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): boolean {
    const sys = "link";
    const m = this.b.names.lastMiss;
    if (!m || !this.probeFits(m, ctx, name)) return false;
    const leaf = m.leaf;
    if (m.path.some((lv) => lv.lblk === leaf)) throw this.b.corrupt(ctx, `index leaf ${leaf} is an index block`, sys);
    const lw = this.b.readLeafResident(h, ctx, leaf, m.leafPhys, sys);
    if (lw instanceof Missing) return false;
    // The slot the lookup found, if it still holds (else the full add, which walks).
    let r = m.fit >= 0 ? this.b.insertSealed(h, ctx, lw, m.fit, name, ino, type) : -1;
    if (r < 0) r = this.b.addSealed(h, ctx, lw, name, ino, type);
    if (r === this.b.K.DIRM_NOSPC) return false;
    if (r < 0) throw this.b.engineError(ctx, `leaf ${leaf}`, r, sys);
    this.b.names.lastMiss = undefined;
    return true;
  }

  async add(h: Handle, ctx: DirContext, name: Uint8Array, ino: number, type: number): Promise<void> {
    const sys = "link";
    const x = this.b.vol.engine.x;
    const ht = this.b.hasTail ? 1 : 0;
    const need = x.dirRecLenFor(name.length) as number;
    const w = this.probed(ctx, name) ?? (await this.walk(h, ctx, name, sys));
    const leaf = await this.leafOf(h, ctx, w, sys);
    await this.b.readLeaf(h, ctx, leaf.lblk, leaf.phys, sys);
    // The common case in one engine call: the leaf has a slot (and the name is not in it).
    const lw = await h.getWriteAccess(leaf.phys);
    const r0 = this.b.addSealed(h, ctx, lw, name, ino, type);
    if (r0 >= 0) return;
    if (r0 !== this.b.K.DIRM_NOSPC) throw this.b.engineError(ctx, `leaf ${leaf.lblk}`, r0, sys);
    // No single slot fits; packing the live entries may free one.
    const total = this.b.freeIn(lw, true);
    if (total < 0) throw this.b.engineError(ctx, `leaf ${leaf.lblk}`, total, sys);
    if (total >= need) {
      x.dirCompact(lw.ptr, this.b.bs, ht, this.b.shapedFlag(lw));
      const r = this.b.addTo(lw, name, ino, type);
      if (r < 0) throw this.b.engineError(ctx, `leaf ${leaf.lblk}`, r, sys);
      this.b.sealLeaf(h, ctx, lw);
      return;
    }
    // The leaf is full: make room in its index node, then split it.
    await this.makeRoom(h, ctx, w);
    const nb = await this.appendIndexed(h, ctx);
    const dst = await h.getNewBlock(nb.phys);
    const src = await h.getWriteAccess(leaf.phys);
    const moved = x.dxSplitLeaf(src.ptr, dst.ptr, this.b.bs, w.version, this.b.seedPtr, ht, this.b.scratch) as number;
    if (moved < 0) throw this.b.engineError(ctx, `leaf ${leaf.lblk}`, moved, sys);
    const split = x.dxLastSplitHash() >>> 0;
    await this.insertIndex(h, ctx, w.path[w.levels]!, split, nb.lblk);
    const target = w.hash >= ((split & ~1) >>> 0) ? dst : src;
    const r = this.b.addTo(target, name, ino, type);
    this.b.sealLeaf(h, ctx, src);
    this.b.sealLeaf(h, ctx, dst);
    if (r < 0) throw this.b.engineError(ctx, `leaf after split`, r, sys);
  }

  /** Insert [hash → lblk] after the followed entry of level lv (which has room). */
  private async insertIndex(h: Handle, ctx: DirContext, lv: Level, hash: number, lblk: number): Promise<void> {
    const pw = await h.getWriteAccess(lv.phys);
    const r = this.b.vol.engine.x.dxInsertEntry(pw.ptr, lv.off, this.b.bs, lv.i, hash, lblk) as number;
    if (r < 0) throw this.b.engineError(ctx, `index block ${lv.lblk}`, r, "link");
    this.b.sealIndex(h, ctx, pw, lv.off);
  }

  private async isFull(h: Handle, lv: Level): Promise<boolean> {
    const x = this.b.vol.engine.x;
    const ref = await h.getBlock(lv.phys);
    const limit = lv.off === this.b.K.DXR_ENTRIES ? x.dxRootLimit(this.b.bs, this.b.hasTail ? 1 : 0) : x.dxNodeLimit(this.b.bs, this.b.hasTail ? 1 : 0);
    return (x.dxCount(ref.ptr, this.b.bs, lv.off) as number) >= (limit as number);
  }

  /**
   * Make sure the deepest index level on the path has room for one more entry: grow the
   * root if every level is full, then split full nodes top-down, keeping the path on the
   * half that covers the name's hash.
   */
  private async makeRoom(h: Handle, ctx: DirContext, w: Walk): Promise<void> {
    const x = this.b.vol.engine.x;
    const sys = "link";
    let j = w.levels;
    while (j >= 0 && (await this.isFull(h, w.path[j]!))) j--;
    if (j === w.levels) return;
    if (j < 0) {
      if (w.levels + 1 >= this.b.maxLevels) throw new FsError("ENOSPC", "directory index full", { syscall: sys });
      const nb = await this.appendIndexed(h, ctx);
      const node = await h.getNewBlock(nb.phys);
      const root = await h.getWriteAccess(w.path[0]!.phys);
      const r = x.dxGrowRoot(root.ptr, node.ptr, this.b.bs, nb.lblk, this.b.hasTail ? 1 : 0, this.b.maxLevels) as number;
      if (r < 0) throw this.b.engineError(ctx, "index root", r, sys);
      this.b.sealIndex(h, ctx, root, this.b.K.DXR_ENTRIES);
      this.b.sealIndex(h, ctx, node, this.b.K.DXN_ENTRIES);
      w.levels = r;
      w.path.splice(1, 0, { lblk: nb.lblk, phys: nb.phys, off: this.b.K.DXN_ENTRIES, i: w.path[0]!.i });
      w.path[0]!.i = 0;
      j = 1;
    }
    for (let k = j + 1; k <= w.levels; k++) {
      const lv = w.path[k]!;
      const nb = await this.appendIndexed(h, ctx);
      const dst = await h.getNewBlock(nb.phys);
      const src = await h.getWriteAccess(lv.phys);
      const cut = x.dxSplitNode(src.ptr, dst.ptr, this.b.bs, this.b.hasTail ? 1 : 0) as number;
      if (cut < 0) throw this.b.engineError(ctx, `index block ${lv.lblk}`, cut, sys);
      const split = x.dxLastSplitHash() >>> 0;
      this.b.sealIndex(h, ctx, src, this.b.K.DXN_ENTRIES);
      this.b.sealIndex(h, ctx, dst, this.b.K.DXN_ENTRIES);
      const parent = w.path[k - 1]!;
      await this.insertIndex(h, ctx, parent, split, nb.lblk);
      if (lv.i >= cut) {
        w.path[k] = { lblk: nb.lblk, phys: nb.phys, off: this.b.K.DXN_ENTRIES, i: lv.i - cut };
        parent.i++;
      }
    }
  }

  /**
   * Turn a one-block linear directory into an htree: block 0 becomes the root, its
   * entries move to a new leaf, which is then split by hash into two.
   */
  async convert(h: Handle, ctx: DirContext): Promise<void> {
    const sys = "link";
    const x = this.b.vol.engine.x;
    const ht = this.b.hasTail ? 1 : 0;
    const p0 = await this.b.mapped(ctx, 0, sys);
    const b0 = await this.b.readLeaf(h, ctx, 0, p0, sys);
    // Check "." and ".." before allocating, so a refusal leaves nothing behind.
    const dotOff = x.dirLookup(b0.ptr, this.b.bs, this.b.dotsPtr, 1, ht, 0, 0) as number;
    const dotdotOff = x.dirLookup(b0.ptr, this.b.bs, this.b.dotsPtr, 2, ht, 0, 0) as number;
    if (dotOff !== 0 || dotdotOff !== (x.dirEntryRecLen(b0.ptr, this.b.bs, 0) as number)) {
      throw this.b.corrupt(ctx, "block 0 does not start with '.' and '..'", sys);
    }
    const version = this.b.vol.sb.defHashVersion;
    const nb1 = await ctx.appendBlock(h);
    const leaf1 = await h.getNewBlock(nb1.phys);
    const root = await h.getWriteAccess(p0);
    const moved = x.dxConvertRoot(root.ptr, leaf1.ptr, this.b.bs, version, nb1.lblk, ht, ht) as number;
    if (moved < 0) throw this.b.engineError(ctx, "block 0", moved, sys);
    this.b.sealLeaf(h, ctx, leaf1);
    this.b.sealIndex(h, ctx, root, this.b.K.DXR_ENTRIES);
    ctx.setIndexed(true);
    await ctx.markInodeDirty?.(h);
    this.b.forget(ctx.inode.ino);
    if (moved < 2) return;
    const nb2 = await this.appendIndexed(h, ctx);
    const leaf2 = await h.getNewBlock(nb2.phys);
    const eff = x.dxEffectiveHashVersion(version, this.b.vol.sb.flags) >>> 0;
    const r = x.dxSplitLeaf(leaf1.ptr, leaf2.ptr, this.b.bs, eff, this.b.seedPtr, ht, this.b.scratch) as number;
    if (r < 0) throw this.b.engineError(ctx, `leaf ${nb1.lblk}`, r, sys);
    const ri = x.dxInsertEntry(root.ptr, this.b.K.DXR_ENTRIES, this.b.bs, 0, x.dxLastSplitHash() >>> 0, nb2.lblk) as number;
    if (ri < 0) throw this.b.engineError(ctx, "index root", ri, sys);
    this.b.sealLeaf(h, ctx, leaf1);
    this.b.sealLeaf(h, ctx, leaf2);
    this.b.sealIndex(h, ctx, root, this.b.K.DXR_ENTRIES);
  }
}
