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
 * metadata lock for the whole free. `inactivate` frees extents from the tail,
 * `batchExtents` at a time, one transaction each; after every batch the inode is still on
 * the orphan list with i_size, i_blocks and its extent tree agreeing (each batch is a
 * truncate to the first logical block it freed), so any image written between batches is
 * a consistent one whose next mount simply continues. The last transaction frees what is
 * left, takes the inode off the list and frees the inode itself.
 *
 * Locking: every method that changes the list runs inside a caller's transaction under the
 * volume's metaLock (the map is plain JS state, consistent between awaits because all
 * writers hold that lock). `inactivate` and `completeOrphans` take metaLock themselves,
 * once per batch, and must be called without it.
 *
 * The `orphan_file` feature (a special inode holding arrays of orphan numbers, mke2fs
 * -O orphan_file) is read at mount: its entries are completed like chain members and the
 * slots cleared. Our own unlinks keep using the classic chain, which the kernel and e2fsck
 * accept on orphan_file volumes as well.
 */
import { FsError } from "./errors.ts";
import { CacheHandle, type Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import { WState } from "./wstate.ts";
import { quiesceForFree } from "./treeseq.ts";

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const END = 2 ** 32;
/** Chain walks stop here: a longer chain on a volume this size means a cycle. */
const MAX_HOPS = 1 << 24;
/** Default extents freed per transaction by inactivate(). */
export const BATCH_EXTENTS = 256;

export class OrphanList {
  private readonly vol: Volume;
  /** ino → its predecessor in the chain (0 = the superblock); undefined until first needed. */
  private prev: Map<number, number> | undefined;

  constructor(vol: Volume) {
    this.vol = vol;
  }

  /** Number of inodes on the chain (walks it once if not yet known). Caller holds metaLock. */
  async size(): Promise<number> {
    return (await this.map()).size;
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

  /** Put s on the chain (new head); the caller saves s in the same transaction. Holds metaLock. */
  async add(_h: Handle, s: WState): Promise<void> {
    const prev = await this.map();
    if (prev.has(s.ino)) return;
    const head = this.vol.sb.lastOrphan;
    s.fields.dtime = head;
    if (head !== 0) prev.set(head, s.ino);
    prev.set(s.ino, 0);
    this.vol.setLastOrphan(s.ino);
  }

  /**
   * Take s off the chain in O(1): its predecessor (or the superblock) gets s's next, and
   * s.fields.dtime is cleared; the caller saves s in the same transaction. Holds metaLock.
   */
  async remove(h: Handle, s: WState): Promise<void> {
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

  /** Is ino on the chain? Caller holds metaLock. */
  async has(ino: number): Promise<boolean> {
    return (await this.map()).has(ino);
  }
}

/** First logical block of each mapped extent of s, ascending (read-only walk). */
async function extentStarts(vol: Volume, s: WState): Promise<number[]> {
  const starts: number[] = [];
  const inode = s.asInode();
  for (let lblk = 0; lblk < END; ) {
    const m = await vol.mapper.map(inode, lblk, END - lblk);
    if (m.phys >= 0) starts.push(lblk);
    lblk += Math.max(1, m.len);
  }
  return starts;
}

function isFastSymlink(s: WState): boolean {
  return (s.fields.mode & S_IFMT) === S_IFLNK && s.fields.size < 60 && s.fields.blocks512 === 0;
}

export interface InactivateOptions {
  /** Extents freed per transaction (default BATCH_EXTENTS). */
  batchExtents?: number;
  /** Asked between batches; false = stop now, leaving the inode on the orphan list. */
  keepGoing?: () => boolean;
  /** Called after every committed batch transaction (for stats). */
  onBatch?: () => void;
}

/**
 * Finish the orphan `ino`: with nlink 0 free its blocks (tail first, in batches) and the
 * inode; with links left, truncate its blocks to i_size. Either way it leaves the orphan
 * list. Returns false when keepGoing stopped it early (still an orphan, consistent).
 * Call without metaLock (taken per batch); the volume must be writable.
 */
export async function inactivate(vol: Volume, ino: number, o: InactivateOptions = {}): Promise<boolean> {
  const batch = Math.max(1, o.batchExtents ?? BATCH_EXTENTS);
  const bs = vol.blockSize;
  let starts: number[] | undefined;
  for (;;) {
    const done = await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        const s = await WState.load(vol, ino);
        const orphans = vol.writeParts.orphans;
        if (s.fields.mode === 0) {
          // Already freed (a stale list entry): only the list needs fixing.
          await orphans.remove(h, s);
          await s.save(vol, h);
          return true;
        }
        const linked = s.fields.nlink > 0;
        // With links, only the blocks past i_size go (the kernel's truncate-orphan case).
        const keepBlocks = linked ? Math.ceil(s.fields.size / bs) : 0;
        if (!isFastSymlink(s)) {
          // Requests of a direct write whose last handle closed under it land first.
          await quiesceForFree(vol, h, s);
          starts ??= (await extentStarts(vol, s)).filter((l) => l >= keepBlocks);
          if (starts.length > batch) {
            const from = starts[starts.length - batch]!;
            starts.length -= batch;
            await vol.writeParts.removeBlocks(h, s, from, END);
            if (!linked) s.fields.size = Math.min(s.fields.size, from * bs);
            await s.save(vol, h);
            return false;
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
        return true;
      } finally {
        await h.stop();
      }
    });
    o.onBatch?.();
    if (done) return true;
    if (o.keepGoing && !o.keepGoing()) return false;
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
  // Putting it on the chain first lets inactivate() take its one path, and keeps it listed
  // (crash-safe) between batches once the orphan-file slot is cleared.
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
