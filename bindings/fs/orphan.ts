/**
 * The on-disk orphan list, and the one routine that finishes an orphan ("inactivation").
 *
 * Why a list at all: an inode whose last name is gone but whose blocks are not yet freed
 * (a file still open, or queued for the background freer in sched/inodegc.ts) is
 * reachable from nowhere. If the machine stops before it is freed, only the orphan list
 * tells the next mount (or e2fsck) that it exists. ext4's classic list is a singly linked
 * chain: the superblock's s_last_orphan names the newest orphan and each orphan's i_dtime
 * names the next. The kernel also puts inodes being truncated on it (nlink > 0): the next
 * mount then finishes the truncation to i_size instead of freeing the inode.
 *
 * Why a predecessor map: removing an inode from a singly linked chain needs its
 * predecessor. Walking from the head for each removal makes freeing n queued orphans cost
 * O(n²) block reads. The first removal walks the chain once and remembers, for every
 * member, who points at it (0 = the superblock); add and remove keep the map exact, so
 * every later removal is O(1). The map is only ever a cache of the chain: it is built from
 * disk, and every change goes to disk in the same transaction as the map update.
 *
 * Inactivation in bounded batches: a file with a million extents must not hold the
 * metadata lock for the whole free. `inactivateStep` frees at most a budget of extents
 * inside the caller's transaction; `inactivate` repeats it, one transaction per step, and
 * inodegc's worker fills one transaction with several small inodes (or one step of a big
 * one). A step removes whole leaves from the front (ExtentTree.removeSome: one visit per
 * leaf, emptied leaf blocks freed with their data, every free of the step merged into a
 * few bitmap runs). After every step the inode is still on the orphan list with i_blocks
 * and its extent tree agreeing — a sparse file whose front is a hole — so any image
 * written between steps is a consistent one whose next mount simply continues. The last
 * step frees what is left, takes the inode off the list and frees the inode itself.
 *
 * Locking: every method that changes the list runs inside a caller's transaction under the
 * volume's metaLock (the map is plain JS state, consistent between awaits because all
 * writers hold that lock). `inactivate` and `completeOrphans` take metaLock themselves,
 * once per batch, and must be called without it.
 *
 * The `orphan_file` feature (mke2fs -O orphan_file): a special inode whose blocks are
 * arrays of orphan inode numbers (each block sealed with a magic and a checksum). Adding is
 * writing a number into a free slot and removing is zeroing it — one block each, no
 * neighbour inode to rewrite, which is why the kernel prefers it. On such volumes `add`
 * uses a free slot and sets the orphan_present flag; `remove` zeroes the slot and clears
 * the flag with the last entry. The slot index (ino → block, slot; free slots per block)
 * is read from the file once, on first use; a block that fails its check is never used.
 * When every slot is taken, or the volume has no usable orphan file, the classic chain
 * serves. Mount-time recovery completes both lists (completeOrphans).
 */
import { FsError } from "./errors.ts";
import { CacheHandle, type Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import { WState, extentsFlag } from "./wstate.ts";
import { quiesceForFree } from "./treeseq.ts";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const END = 2 ** 32;
/** Chain walks stop here: a longer chain on a volume this size means a cycle. */
const MAX_HOPS = 1 << 24;
/** Extents freed per transaction by inactivate() and inodegc's worker. */
export const BATCH_EXTENTS = 256;

/** The orphan file as add/remove use it (see the file comment). */
interface OrphanFileIndex {
  ino: number;
  generation: number;
  /** Physical block of each usable orphan-file block, and its free slot count. */
  blocks: { phys: number; free: number }[];
  /** Orphan ino → [index into blocks, slot]. */
  slots: Map<number, [number, number]>;
  perBlock: number;
}

export class OrphanList {
  private readonly vol: Volume;
  /** ino → its predecessor in the chain (0 = the superblock); undefined until first needed. */
  private prev: Map<number, number> | undefined;
  /** The orphan file's slot index; null = none usable; undefined until first needed. */
  private file: OrphanFileIndex | null | undefined;

  constructor(vol: Volume) {
    this.vol = vol;
  }

  /** Number of orphans (chain and orphan file; read once if not yet known). Caller holds metaLock. */
  async size(): Promise<number> {
    return (await this.map()).size + ((await this.orphanFile())?.slots.size ?? 0);
  }

  // Read the orphan file's slots once. Entries already there (a crash's leftovers, before
  // mount recovery clears them) are indexed like our own, so removing them works alike.
  private async orphanFile(): Promise<OrphanFileIndex | null> {
    if (this.file !== undefined) return this.file;
    this.file = null;
    const vol = this.vol;
    const sb = vol.sb;
    if (!sb.has("orphan_file") || sb.orphanFileInum === 0) return null;
    const fileIno = sb.orphanFileInum;
    if (fileIno > sb.inodesCount) return null;
    const inode = await vol.inodes.get(fileIno);
    if (!inode.isReg) return null;
    const bs = vol.blockSize;
    const x = vol.engine.x;
    const perBlock = bs / 4 - 2; // the last 8 bytes are the tail: magic + checksum
    const index: OrphanFileIndex = { ino: fileIno, generation: inode.generation, blocks: [], slots: new Map(), perBlock };
    // A real orphan file is a few blocks; the bound keeps a hostile i_size from making
    // this walk the whole address space.
    const nblocks = Math.min(Math.floor(inode.size / bs), 1 << 16);
    for (let lblk = 0; lblk < nblocks; lblk++) {
      const m = await vol.mapper.map(inode, lblk, 1);
      if (m.phys < 0 || m.unwritten) continue;
      const ref = await vol.cache.get(m.phys);
      try {
        if (!x.orphanBlockCsumVerify(ref.ptr, fileIno, inode.generation, m.phys)) continue;
        const b = vol.cache.bytes(ref);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        let free = 0;
        const at = index.blocks.length;
        for (let i = 0; i < perBlock; i++) {
          const o = dv.getUint32(i * 4, true);
          if (o === 0) free++;
          else if (o <= sb.inodesCount && !index.slots.has(o)) index.slots.set(o, [at, i]);
        }
        index.blocks.push({ phys: m.phys, free });
      } finally {
        vol.cache.release(ref);
      }
    }
    this.file = index.blocks.length ? index : null;
    return this.file;
  }

  // Write `value` into slot `slot` of orphan-file block `b` and reseal it, in h.
  private async setSlot(h: Handle, f: OrphanFileIndex, b: number, slot: number, value: number): Promise<void> {
    const blk = f.blocks[b]!;
    const ref = await h.getWriteAccess(blk.phys);
    const bytes = this.vol.cache.bytes(ref);
    new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).setUint32(slot * 4, value >>> 0, true);
    this.vol.engine.call(() => this.vol.engine.x.orphanBlockCsumSet(ref.ptr, f.ino, f.generation, blk.phys));
    h.dirty(ref);
  }

  // A free slot of the orphan file and take it for ino; false when the file is full.
  private async addToFile(h: Handle, f: OrphanFileIndex, ino: number): Promise<boolean> {
    for (let b = 0; b < f.blocks.length; b++) {
      const blk = f.blocks[b]!;
      if (blk.free === 0) continue;
      const ref = await h.getBlock(blk.phys);
      let slot = -1;
      try {
        const bytes = this.vol.cache.bytes(ref);
        const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i < f.perBlock && slot < 0; i++) if (dv.getUint32(i * 4, true) === 0) slot = i;
      } finally {
        h.release(ref);
      }
      if (slot < 0) {
        blk.free = 0; // the count was wrong (the block changed under us): never again
        continue;
      }
      await this.setSlot(h, f, b, slot, ino);
      blk.free--;
      f.slots.set(ino, [b, slot]);
      const bit = this.vol.engine.constant("FEATURE_RO_COMPAT_ORPHAN_PRESENT") >>> 0;
      const ro = this.vol.sb.roCompat;
      if ((ro & bit) === 0) this.vol.sb.set32("SB_FEATURE_RO_COMPAT", (ro | bit) >>> 0);
      return true;
    }
    return false;
  }

  /** The chain's members, newest first. Caller holds metaLock. */
  async members(): Promise<number[]> {
    const prev = await this.map();
    const out: number[] = [];
    for (let cur = this.vol.sb.lastOrphan; cur !== 0 && prev.has(cur) && out.length < prev.size; ) {
      out.push(cur);
      cur = (await this.vol.inodes.get(cur)).dtime;
    }
    return out;
  }

  /** Walk the chain once and index it; a bad link ends the chain there (kept for e2fsck). */
  private async map(): Promise<Map<number, number>> {
    if (this.prev) return this.prev;
    const prev = new Map<number, number>();
    const count = this.vol.sb.inodesCount;
    let before = 0;
    let cur = this.vol.sb.lastOrphan;
    for (let hops = 0; cur !== 0 && hops < MAX_HOPS; hops++) {
      if (cur < 1 || cur > count || prev.has(cur)) {
        this.vol.warnings.push(`orphan list: bad link to inode ${cur} after ${before || "the superblock"}; the rest of the list is ignored`);
        break;
      }
      let next: number;
      try {
        next = (await this.vol.inodes.get(cur)).dtime;
      } catch (e) {
        this.vol.warnings.push(`orphan list: inode ${cur} unreadable (${(e as Error).message}); the rest of the list is ignored`);
        break;
      }
      prev.set(cur, before);
      before = cur;
      cur = next;
    }
    this.prev = prev;
    return prev;
  }

  /**
   * Put s on the orphan list: a free orphan-file slot when the volume has one, else the
   * chain (new head). The caller saves s in the same transaction. Holds metaLock.
   */
  async add(h: Handle, s: WState): Promise<void> {
    const prev = await this.map();
    if (prev.has(s.ino)) return;
    const f = await this.orphanFile();
    if (f && (f.slots.has(s.ino) || (await this.addToFile(h, f, s.ino)))) return;
    const head = this.vol.sb.lastOrphan;
    s.fields.dtime = head;
    if (head !== 0) prev.set(head, s.ino);
    prev.set(s.ino, 0);
    this.vol.setLastOrphan(s.ino);
  }

  /**
   * Take s off the orphan list in O(1): zero its orphan-file slot, or on the chain give its
   * predecessor (or the superblock) s's next and clear s.fields.dtime; the caller saves s
   * in the same transaction. Holds metaLock.
   */
  async remove(h: Handle, s: WState): Promise<void> {
    const f = await this.orphanFile();
    const at = f?.slots.get(s.ino);
    if (f && at) {
      await this.setSlot(h, f, at[0], at[1], 0);
      f.blocks[at[0]]!.free++;
      f.slots.delete(s.ino);
      if (f.slots.size === 0) this.vol.sb.clearFeature("orphan_present");
      return;
    }
    const prev = await this.map();
    const before = prev.get(s.ino);
    if (before === undefined) return;
    const next = s.fields.dtime;
    if (before === 0) {
      this.vol.setLastOrphan(next);
    } else {
      const p = await WState.load(this.vol, before);
      p.fields.dtime = next;
      await p.save(this.vol, h);
    }
    if (next !== 0 && prev.has(next)) prev.set(next, before);
    prev.delete(s.ino);
    s.fields.dtime = 0;
  }

  /** Is ino on the orphan list (chain or orphan file)? Caller holds metaLock. */
  async has(ino: number): Promise<boolean> {
    return (await this.map()).has(ino) || ((await this.orphanFile())?.slots.has(ino) ?? false);
  }
}

function isFastSymlink(s: WState): boolean {
  return (s.fields.mode & S_IFMT) === S_IFLNK && s.fields.size < 60 && s.fields.blocks512 === 0;
}

/** What one inactivation step did (inactivateStep). */
export interface StepResult {
  /** The inode is finished: freed (or truncated to i_size) and off the orphan list. */
  done: boolean;
  /** Extents this step freed (at least 1): the caller's batch budget spent. */
  used: number;
}

/**
 * One step of finishing the orphan `ino`, inside the caller's transaction h (caller holds
 * metaLock): free up to `budget` extents from the tail; when everything left fits, finish
 * it — with nlink 0 free its blocks and the inode, with links left truncate to i_size —
 * and take it off the orphan list. Between steps the inode is a consistent orphan.
 */
export async function inactivateStep(vol: Volume, h: Handle, ino: number, budget: number): Promise<StepResult> {
  const bs = vol.blockSize;
  const s = await WState.load(vol, ino);
  const orphans = vol.writeParts.orphans;
  if (s.fields.mode === 0) {
    // Already freed (a stale list entry): only the list needs fixing.
    await orphans.remove(h, s);
    await s.save(vol, h);
    return { done: true, used: 1 };
  }
  const linked = s.fields.nlink > 0;
  // With links, only the blocks past i_size go (the kernel's truncate-orphan case).
  const keepBlocks = linked ? Math.ceil(s.fields.size / bs) : 0;
  let used = 1;
  // Requests of a direct write whose last handle closed under it land first.
  if (!isFastSymlink(s)) await quiesceForFree(vol, h, s);
  if (!isFastSymlink(s) && (s.fields.flags & extentsFlag(vol)) !== 0) {
    // Whole leaves from the front, up to the budget, in one pass over them. A partial
    // step leaves an ordinary sparse file: a valid tree with a hole where the freed leaves
    // were, i_blocks in step, i_size unchanged (for a truncate orphan, the blocks below
    // i_size are never touched).
    const r = await vol.writeParts.tree(s).removeSome(h, vol.writeParts.alloc, keepBlocks, END, Math.max(1, budget));
    s.fields.blocks512 = Math.max(0, s.fields.blocks512 - (r.freed * bs) / 512);
    used = Math.max(1, r.extents);
    if (r.next < END) {
      await s.save(vol, h);
      return { done: false, used };
    }
  }
  vol.fileData.discard(ino);
  await orphans.remove(h, s);
  if (linked) {
    if (!isFastSymlink(s)) await vol.writeParts.removeBlocks(h, s, keepBlocks, END);
    await s.save(vol, h);
  } else {
    await vol.ops.release(h, s);
  }
  return { done: true, used };
}

/**
 * Finish the orphan `ino`: inactivateStep, BATCH_EXTENTS per transaction, metaLock taken
 * per step (mount-time recovery). Call without metaLock; the volume must be writable.
 */
export async function inactivate(vol: Volume, ino: number): Promise<void> {
  for (let done = false; !done; ) {
    done = await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        return (await inactivateStep(vol, h, ino, BATCH_EXTENTS)).done;
      } finally {
        await h.stop();
      }
    });
  }
}

/**
 * Mount-time recovery: finish every orphan a crash left (the classic chain, then the
 * orphan file's entries). Resolves when the lists are empty. Call without metaLock, on a
 * writable volume, before the background services start.
 */
export async function completeOrphans(vol: Volume): Promise<number> {
  let done = 0;
  const chain = await vol.metaLock.run(() => vol.writeParts.orphans.members());
  for (const ino of chain) {
    await inactivate(vol, ino);
    done++;
  }
  done += await completeOrphanFile(vol);
  if (done > 0) {
    // The list may have been cut short by a bad link: drop what is left of it.
    await vol.metaLock.run(async () => {
      if ((await vol.writeParts.orphans.size()) === 0 && vol.sb.lastOrphan !== 0) vol.setLastOrphan(0);
    });
  }
  return done;
}

/** Entries of the orphan_file inode: complete each, clear its slot, clear orphan_present. */
async function completeOrphanFile(vol: Volume): Promise<number> {
  const sb = vol.sb;
  if (!sb.has("orphan_file")) return 0;
  const fileIno = sb.orphanFileInum;
  if (fileIno === 0) return 0;
  const bs = vol.blockSize;
  const x = vol.engine.x;
  const file = await vol.inodes.get(fileIno);
  if (!file.isReg) throw new FsError("EFSCORRUPTED", `orphan file inode ${fileIno} is not a regular file`, { syscall: "mount" });
  const blocks = Math.floor(file.size / bs);
  const perBlock = bs / 4 - 2; // the last 8 bytes are the tail: magic + checksum
  let done = 0;
  for (let lblk = 0; lblk < blocks; lblk++) {
    const m = await vol.mapper.map(file, lblk, 1);
    if (m.phys < 0 || m.unwritten) continue;
    const entries: number[] = [];
    {
      const ref = await vol.cache.get(m.phys);
      try {
        const b = vol.cache.bytes(ref);
        const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (!x.orphanBlockCsumVerify(ref.ptr, fileIno, file.generation, m.phys)) {
          // Entries of a block that fails its check cannot be trusted; e2fsck decides.
          vol.warnings.push(`orphan file block ${lblk} (block ${m.phys}): bad magic or checksum, its entries are ignored`);
          continue;
        }
        for (let i = 0; i < perBlock; i++) {
          const ino = dv.getUint32(i * 4, true);
          if (ino !== 0) entries.push(ino);
        }
      } finally {
        vol.cache.release(ref);
      }
    }
    if (entries.length === 0) continue;
    for (const ino of entries) {
      if (ino < 1 || ino > sb.inodesCount || ino === fileIno) continue;
      await inactivateUnlisted(vol, ino);
      done++;
    }
    // Every slot of this block is finished: zero them and reseal the block.
    await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        const ref = await h.getWriteAccess(m.phys);
        const b = vol.cache.bytes(ref);
        b.fill(0, 0, perBlock * 4);
        vol.engine.call(() => x.orphanBlockCsumSet(ref.ptr, fileIno, file.generation, m.phys));
        h.dirty(ref);
      } finally {
        await h.stop();
      }
    });
  }
  if (sb.has("orphan_present")) sb.clearFeature("orphan_present");
  return done;
}

/** Finish an orphan that is not on the classic chain (an orphan-file entry). */
async function inactivateUnlisted(vol: Volume, ino: number): Promise<void> {
  // Listing it first (its existing orphan-file slot when the index has it, else a new
  // entry) lets inactivate() take its one path and keeps it listed (crash-safe) between
  // batches, whatever happens to the slot the recovery read it from.
  await vol.metaLock.run(async () => {
    const h = new CacheHandle(vol.cache);
    try {
      const s = await WState.load(vol, ino);
      if (s.fields.mode === 0) return;
      await vol.writeParts.orphans.add(h, s);
      await s.save(vol, h);
    } finally {
      await h.stop();
    }
  });
  if (await vol.metaLock.run(() => vol.writeParts.orphans.has(ino))) await inactivate(vol, ino);
}
