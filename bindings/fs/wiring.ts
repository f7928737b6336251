/**
 * Wiring: the write path's parts assembled for one volume.
 *
 * ops.ts (namespace) and data.ts (file data) are written against small interfaces
 * (WriteParts, DataParts); this file implements them with the real pieces — the block and
 * inode allocator (alloc.ts), the extent tree (extent_tree.ts) and the directory writer
 * (dir_write.ts) — and supplies the per-inode contexts those pieces need: an ExtentRoot
 * over a WState's block map, a DirContext whose appendBlock allocates near the
 * directory's last block and maps it through the extent tree.
 *
 * i_blocks accounting: tree blocks are counted by the extent tree through addBlocks;
 * data blocks here (allocated in data.ts / writeSmallData, freed counts returned by
 * remove).
 */
import type { Handle } from "../journal/handle.ts";
import { FsError } from "./errors.ts";
import { Allocator } from "./alloc.ts";
import { ExtentTree, newExtentTreeStats, type ExtentRoot, type ExtentTreeStats } from "./extent_tree.ts";
import { DirWriter, type DirContext, type DirInodeState } from "./dir_write.ts";
import { Missing } from "../cache.ts";
import type { Mapping } from "./bmap.ts";
import type { Volume } from "./volume.ts";
import type { WState } from "./wstate.ts";
import type { WriteParts } from "./ops.ts";
import type { DataParts } from "./data.ts";
import { OrphanList } from "./orphan.ts";
import { treeSeqOf } from "./treeseq.ts";
import type { InodeGc } from "../sched/inodegc.ts";

export class WriteWiring implements WriteParts, DataParts {
  readonly alloc: Allocator;
  readonly dirs: DirWriter;
  readonly treeStats: ExtentTreeStats = newExtentTreeStats();
  /** The on-disk orphan chain (unlinked-but-open and queued inodes). */
  readonly orphans: OrphanList;
  readonly vol: Volume;
  private readonly bs: number;
  private readonly INDEX_FL: number;
  private readonly EXTENTS_FL: number;

  constructor(vol: Volume) {
    this.vol = vol;
    this.bs = vol.blockSize;
    this.alloc = new Allocator(vol);
    this.dirs = new DirWriter(vol);
    this.orphans = new OrphanList(vol);
    this.INDEX_FL = vol.engine.constant("INODE_FL_INDEX") >>> 0;
    this.EXTENTS_FL = vol.engine.constant("INODE_FL_EXTENTS") >>> 0;
  }

  /** The extent tree of s (which must be extent-mapped). */
  tree(s: WState): ExtentTree {
    if ((s.fields.flags & this.EXTENTS_FL) === 0) {
      throw new FsError("EOPNOTSUPP", `inode ${s.ino} uses an ext2/ext3 block map; changing its blocks is not supported`, { syscall: "write" });
    }
    const root: ExtentRoot = {
      ino: s.ino,
      generation: s.generation,
      iblock: s.iblock,
      goal: () => this.alloc.goalForInode(s.ino, s.isDir),
      addBlocks: (delta) => {
        s.fields.blocks512 += (delta * this.bs) / 512;
      },
      markDirty: () => {},
    };
    // Lock-free readers of s re-read when its map changes under them (treeseq.ts).
    const seq = treeSeqOf(this.vol);
    return new ExtentTree(this.vol, root, { stats: this.treeStats, onChange: (h) => seq.enter(h, s.ino) });
  }

  // ---- WriteParts ----
  allocInode(h: Handle, parentIno: number, isDir: boolean): Promise<number> {
    return this.alloc.allocInode(h, parentIno, isDir);
  }
  allocInodeResident(h: Handle, parentIno: number, isDir: boolean): number {
    return this.alloc.allocInodeResident(h, parentIno, isDir);
  }
  freeInode(h: Handle, ino: number, isDir: boolean): Promise<void> {
    this.dirs.forget(ino);
    this.vol.inodes.forget(ino);
    return this.alloc.freeInode(h, ino, isDir);
  }
  async truncateBlocks(h: Handle, s: WState, fromLblk: number): Promise<void> {
    await this.removeBlocks(h, s, fromLblk, 2 ** 32);
  }
  async writeSmallData(h: Handle, s: WState, data: Uint8Array): Promise<void> {
    await this.vol.fileData.writeNew(h, s, 0, data);
  }
  freeBlocks(h: Handle, start: number, len: number): Promise<void> {
    return this.alloc.freeBlocks(h, start, len);
  }

  private dirCtx(dir: WState): DirContext {
    return new WStateDir(this, dir);
  }

  /** appendBlock of a directory context: a block near its last one, mapped at its end. */
  async appendDirBlock(h: Handle, dir: WState): Promise<{ lblk: number; phys: number }> {
    const lblk = Math.ceil(dir.fields.size / this.bs);
    const goal = await this.goal(dir, lblk);
    const { start } = await this.alloc.allocBlocks(h, goal, 1, 1);
    try {
      await this.tree(dir).insert(h, this.alloc, lblk, start, 1, false);
    } catch (e) {
      await this.alloc.freeBlocks(h, start, 1).catch(() => {});
      throw e;
    }
    await this.vol.cache.invalidate(start).catch(() => false);
    dir.fields.blocks512 += this.bs / 512;
    dir.fields.size = (lblk + 1) * this.bs;
    return { lblk, phys: start };
  }

  setDirIndexed(dir: WState, on: boolean): void {
    dir.fields.flags = on ? (dir.fields.flags | this.INDEX_FL) >>> 0 : (dir.fields.flags & ~this.INDEX_FL) >>> 0;
  }

  addEntryResident(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): boolean {
    return this.dirs.addEntryResident(h, this.dirCtx(dir), name, ino, fileType);
  }
  addEntry(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): Promise<void> {
    return this.dirs.addEntry(h, this.dirCtx(dir), name, ino, fileType);
  }
  removeEntry(h: Handle, dir: WState, name: Uint8Array): Promise<number> {
    return this.dirs.removeEntry(h, this.dirCtx(dir), name);
  }
  replaceEntry(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): Promise<number> {
    return this.dirs.replaceEntry(h, this.dirCtx(dir), name, ino, fileType);
  }
  async setDotDot(h: Handle, dir: WState, parentIno: number): Promise<void> {
    await this.dirs.setDotDot(h, this.dirCtx(dir), parentIno);
  }
  isEmpty(dir: WState): Promise<boolean> {
    return this.dirs.isEmpty(this.dirCtx(dir));
  }
  initDirectory(h: Handle, dir: WState, selfIno: number, parentIno: number): Promise<void> {
    return this.dirs.initDirectory(h, this.dirCtx(dir), selfIno, parentIno);
  }
  isOpen(ino: number): boolean {
    return this.vol.isOpen(ino);
  }
  async addOrphan(h: Handle, s: WState): Promise<void> {
    await this.orphans.add(h, s);
  }
  /**
   * inodegc on: hand s (no links, no open handle) to the background freer — on the orphan
   * list in this transaction (unless already there), saved, queued — and return true.
   * inodegc off: false, the caller frees it now. Caller holds metaLock inside h.
   */
  async deferRelease(h: Handle, s: WState): Promise<boolean> {
    const gc = this.vol.background.get<InodeGc>("inodegc");
    if (!gc) return false;
    await this.orphans.add(h, s);
    await s.save(this.vol, h);
    gc.queue(h, s.ino);
    return true;
  }
  /**
   * After transaction h released metaLock: backpressure owed by its deferRelease, if any
   * (a promise then; nothing — no promise to await — for the common transaction).
   */
  settle(h: Handle): Promise<void> | undefined {
    const gc = this.vol.background.get<InodeGc>("inodegc");
    return gc?.owes(h) ? gc.settle(h) : undefined;
  }

  // ---- DataParts ----
  allocBlocks(h: Handle, goal: number, want: number, minLen?: number): Promise<{ start: number; len: number }> {
    return this.alloc.allocBlocks(h, goal, want, minLen);
  }
  insertExtent(h: Handle, s: WState, lblk: number, phys: number, len: number, unwritten: boolean): Promise<void> {
    return this.tree(s).insert(h, this.alloc, lblk, phys, len, unwritten);
  }
  async removeBlocks(h: Handle, s: WState, fromLblk: number, toLblk: number): Promise<void> {
    if ((s.fields.flags & this.EXTENTS_FL) === 0) {
      if (s.fields.blocks512 === 0 || (s.fields.mode & 0o170000) === 0o120000) return; // fast symlink, nothing mapped
    }
    const freed = await this.tree(s).remove(h, this.alloc, fromLblk, toLblk);
    s.fields.blocks512 = Math.max(0, s.fields.blocks512 - (freed * this.bs) / 512);
  }
  async goal(s: WState, lblk: number): Promise<number> {
    if (lblk > 0) {
      const m = await this.vol.mapper.map(s.asInode(), lblk - 1, 1);
      if (m.phys >= 0) return m.phys + 1;
    }
    return this.alloc.goalForInode(s.ino, s.isDir);
  }
}

/**
 * A directory's WState as the DirContext the directory writer needs (one small object
 * per directory operation; the methods live on the prototype). Its inode state is
 * itself: the getters read the WState, which the writer's appendBlock and setIndexed
 * change.
 */
class WStateDir implements DirContext, DirInodeState {
  constructor(private readonly w: WriteWiring, private readonly dir: WState) {}

  get inode(): DirInodeState { return this; }
  get ino(): number { return this.dir.ino; }
  get generation(): number { return this.dir.generation; }
  get size(): number { return this.dir.fields.size; }
  get flags(): number { return this.dir.fields.flags >>> 0; }

  async mapBlock(lblk: number): Promise<number> {
    return physOf(await this.w.vol.mapper.map(this.dir.asInode(), lblk, 1));
  }
  mapBlockResident(lblk: number): number | Missing {
    const m = this.w.vol.mapper.mapResident(this.dir.asInode(), lblk, 1);
    return m instanceof Missing ? m : physOf(m);
  }
  appendBlock(h: Handle): Promise<{ lblk: number; phys: number }> {
    return this.w.appendDirBlock(h, this.dir);
  }
  setIndexed(on: boolean): void {
    this.w.setDirIndexed(this.dir, on);
  }
}

/** A directory block's physical number, or -1 for a hole or an unwritten (never written) block. */
function physOf(m: Mapping): number {
  return m.phys >= 0 && !m.unwritten ? m.phys : -1;
}
