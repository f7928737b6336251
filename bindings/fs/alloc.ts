/**
 * The block and inode allocators of a mounted volume: the I/O and locking around the
 * engine's allocation code (assembly/balloc.ts, assembly/ialloc.ts).
 *
 * Division of labour: the engine decides — which group (from the in-memory descriptor
 * table, no bitmap reads), which bits, what the descriptor becomes — and every engine
 * call is synchronous. This file fetches the one bitmap the engine asked for, holds the
 * group's lock across fetch → initialise → allocate, and records every changed block in
 * the caller's transaction handle: the bitmap, and the descriptor-table block into which
 * the changed descriptor is copied (gdtStoreDesc). Superblock totals are not written
 * here; `totals()` gives them to whoever writes the superblock.
 *
 * Locks (per group, created on use, dropped when idle):
 *   - block mutex: every block allocation or free in the group. It is what stops two
 *     callers from both seeing BLOCK_UNINIT and both zero-filling the bitmap.
 *   - inode lock, shared/exclusive: inode allocation and free take it shared (then the
 *     group's inode mutex, for the same UNINIT reason); the lazy inode-table zeroer takes
 *     it exclusive through `lockGroupInodes(g, "exclusive")`, so no inode is handed out
 *     in a table region while that region is being zeroed.
 *   - frees that span groups take the block mutexes in ascending group order.
 * Everything a holder does between awaits is safe because the engine's find-and-set
 * is one synchronous call. The common inode allocation (allocInodeResident) takes its
 * group's locks with tryLock and its blocks only if resident, and otherwise leaves the
 * work, untouched, to the waiting path.
 *
 * Probing without pinning: a block request may look at many groups on a fragmented
 * volume. Each candidate bitmap is first read through the cache (not the handle) and
 * asked "what would you give?" (ballocFindInBitmap); write access in the handle is taken
 * only for the group that will give blocks, so a long search does not leave hundreds of
 * pinned bitmaps in the transaction.
 *
 * Corruption: a group whose descriptor or bitmap fails its checksum, whose bitmap has no
 * free bit although its descriptor counts some or offers a run over metadata, or whose
 * UNINIT layout disagrees with its free count, is marked unusable for the rest of the mount (and reported in
 * `problems` and the volume's warnings); the search moves on. If nothing else has room
 * the request fails with EFSCORRUPTED naming those groups, else ENOSPC. Frees that would
 * free metadata, free free blocks or inodes, or touch never-initialised groups are
 * refused with EFSCORRUPTED (leaking is recoverable by e2fsck; double-allocating is not).
 *
 * Reserved blocks: by default every free block can be allocated (this library has no
 * notion of a privileged user). `reserveForRoot: true` keeps the superblock's reserved
 * count back, as the kernel does for unprivileged users.
 *
 * Delayed-allocation reservations (resv.ts): blocks promised to buffered file data are
 * out of reach of every allocation except the write-back of the inode that holds them
 * (`resv.beginDraw`); the check is repeated in `claim`, synchronously with the bitmap
 * change, and each block claimed while drawing is taken off that reservation.
 */
import type { Handle, BlockAllocator, BlockRef } from "../journal/handle.ts";
import type { Engine } from "../wasm.ts";
import type { Volume } from "./volume.ts";
import { Mutex, RwLock } from "../sched/locks.ts";
import { FsError, type ErrorCode } from "./errors.ts";
import { Reservations } from "./resv.ts";

export interface AllocatorOptions {
  /** Keep the superblock's reserved blocks out of reach (default false: allocate them too). */
  reserveForRoot?: boolean;
}

export interface AllocatorStats {
  blocksAllocated: number;
  blocksFreed: number;
  inodesAllocated: number;
  inodesFreed: number;
  /** BLOCK_UNINIT / INODE_UNINIT groups whose bitmaps were built on first use. */
  blockGroupsInitialised: number;
  inodeGroupsInitialised: number;
  /** Groups probed without success (fragmentation) during block requests. */
  groupsProbed: number;
  corruptGroups: number;
}

type Release = () => void;

const ROOT_INO = 2;

/** Idle group locks kept for reuse, per kind (see GroupLocks). */
const IDLE_LOCKS = 64;

/**
 * Locks of one kind per group, made on first use. A lock nobody holds or waits for is
 * kept for the next user while fewer than IDLE_LOCKS are idle, and dropped otherwise:
 * a run of creates takes the same group's locks thousands of times (making and dropping
 * them each time was a visible share of a create), while a volume of many groups never
 * keeps more than a few idle ones.
 */
class GroupLocks<L> {
  private readonly locks = new Map<number, { lock: L; users: number }>();
  private readonly make: () => L;
  private idle = 0;

  constructor(make: () => L) {
    this.make = make;
  }

  /** Take group g's lock with `take`; the returned function releases it (once). */
  async acquire(g: number, take: (l: L) => Promise<Release>): Promise<Release> {
    const entry = this.entry(g);
    this.use(entry);
    return this.wrap(g, entry, await take(entry.lock));
  }

  /** acquire() when `take` gets the lock without waiting (it answers undefined otherwise). */
  tryAcquire(g: number, take: (l: L) => Release | undefined): Release | undefined {
    const entry = this.entry(g);
    const release = take(entry.lock);
    if (!release) return undefined; // someone holds it: the entry is in use and stays
    this.use(entry);
    return this.wrap(g, entry, release);
  }

  private entry(g: number): { lock: L; users: number } {
    let e = this.locks.get(g);
    if (!e) {
      e = { lock: this.make(), users: 0 };
      this.locks.set(g, e);
      this.idle++;
    }
    return e;
  }

  private use(entry: { lock: L; users: number }): void {
    if (entry.users++ === 0) this.idle--;
  }

  private wrap(g: number, entry: { lock: L; users: number }, release: Release): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
      if (--entry.users > 0 || this.locks.get(g) !== entry) return;
      if (this.idle < IDLE_LOCKS) this.idle++;
      else this.locks.delete(g);
    };
  }

  /** Locks held or waited for (idle ones kept for reuse do not count). */
  get size(): number {
    let n = 0;
    for (const e of this.locks.values()) if (e.users > 0) n++;
    return n;
  }
}

/** The allocators of one mounted volume. */
export class Allocator implements BlockAllocator {
  /** Corruption found while allocating (one line per group). */
  readonly problems: string[] = [];
  /** Space promised to buffered (delayed-allocation) file data. */
  readonly resv: Reservations;
  private readonly vol: Volume;
  private readonly engine: Engine;
  private readonly x: Engine["x"];
  private readonly groups: number;
  private readonly ipg: number;
  private readonly bpg: number;
  private readonly firstData: number;
  private readonly blocksCount: number;
  private readonly inodesCount: number;
  private readonly reserved: number;
  private readonly flexAware: boolean;
  private readonly BLOCKS_BAD: number;
  private readonly INODES_BAD: number;
  private readonly err: Map<number, string>;
  private readonly blockLocks = new GroupLocks<Mutex>(() => new Mutex());
  private readonly inodeLocks = new GroupLocks<RwLock>(() => new RwLock());
  private readonly inodeMutexes = new GroupLocks<Mutex>(() => new Mutex());
  private readonly counters: AllocatorStats = {
    blocksAllocated: 0, blocksFreed: 0, inodesAllocated: 0, inodesFreed: 0,
    blockGroupsInitialised: 0, inodeGroupsInitialised: 0, groupsProbed: 0, corruptGroups: 0,
  };

  constructor(vol: Volume, opts: AllocatorOptions = {}) {
    this.vol = vol;
    this.engine = vol.engine;
    const x = (this.x = vol.engine.x);
    const c = (name: string) => this.engine.constant(name);
    this.err = new Map([
      [c("ALLOC_ERR_NOT_READY"), "the allocator is not initialised"],
      [c("ALLOC_ERR_UNSUPPORTED"), "unsupported layout"],
      [c("ALLOC_ERR_ARG"), "outside the group"],
      [c("ALLOC_ERR_STATE"), "the group's bitmap is uninitialised"],
      [c("ALLOC_ERR_CORRUPT"), "the bitmap disagrees with the group's free count"],
      [c("ALLOC_ERR_METADATA"), "the range covers filesystem metadata"],
      [c("ALLOC_ERR_DOUBLE_FREE"), "already free"],
      [c("ALLOC_ERR_RESERVED_INO"), "a reserved inode"],
      [c("ALLOC_ERR_COUNTS"), "the uninitialised group's free count disagrees with its layout"],
      [c("ALLOC_ERR_DESC_CSUM"), "the group descriptor's checksum does not match"],
    ]);
    const rc = this.engine.call(() => x.allocInit(vol.sb.ptr)) as number;
    if (rc < 0) {
      if (-rc === c("ALLOC_ERR_UNSUPPORTED")) {
        throw new FsError("EOPNOTSUPP", "cannot allocate on this volume: bigalloc and sparse_super2 are not supported for writing");
      }
      throw new FsError("EIO", `allocator setup failed: ${this.reason(rc)}`);
    }
    this.groups = x.geoGroupCount() >>> 0;
    this.ipg = x.geoInodesPerGroup() >>> 0;
    this.bpg = x.geoBlocksPerGroup() >>> 0;
    this.firstData = x.geoFirstDataBlock() >>> 0;
    this.blocksCount = vol.sb.blocksCount;
    this.inodesCount = vol.sb.inodesCount;
    this.reserved = opts.reserveForRoot ? vol.sb.reservedBlocks : 0;
    this.flexAware = vol.sb.has("flex_bg");
    this.BLOCKS_BAD = c("ALLOC_GROUP_BLOCKS_BAD");
    this.INODES_BAD = c("ALLOC_GROUP_INODES_BAD");
    this.resv = new Reservations(vol.blockSize, () => (x.allocFreeBlocksTotal() as number) - this.reserved);
    // Groups mount found unusable. (A descriptor whose checksum fails is caught by the
    // engine when its group is first tried: ALLOC_ERR_DESC_CSUM.)
    for (const g of vol.badGroups) x.allocMarkGroup(g, this.BLOCKS_BAD | this.INODES_BAD);
  }

  // ── public API ──────────────────────────────────────────────────────────────────────

  /**
   * Allocate up to `want` contiguous blocks (at least `minLen`) as close to `goal` as the
   * free space allows. Throws ENOSPC when no run of minLen is free, EFSCORRUPTED when the
   * only candidates turned out corrupt, EINVAL for bad arguments.
   */
  async allocBlocks(h: Handle, goal: number, want: number, minLen = 1): Promise<{ start: number; len: number }> {
    if (!Number.isSafeInteger(want) || want < 1) throw this.inval("allocBlocks", `bad block count ${String(want)}`);
    if (!Number.isSafeInteger(minLen) || minLen < 1 || minLen > want) {
      throw this.inval("allocBlocks", `bad minimum length ${String(minLen)} for a request of ${want}`);
    }
    const x = this.x;
    if (!Number.isSafeInteger(goal) || goal < this.firstData || goal >= this.blocksCount) goal = this.firstData;
    const goalGroup = Math.floor((goal - this.firstData) / this.bpg);
    const goalOff = goal - this.firstData - goalGroup * this.bpg;
    // One call hands out one run, which lies inside one group.
    want = Math.min(want, this.bpg);
    minLen = Math.min(minLen, want);
    {
      const avail = this.available();
      if (avail < minLen) {
        const held = this.reserved + this.resv.untouchable;
        throw this.nospc("allocBlocks", `no run of ${minLen} free block(s) left (${x.allocFreeBlocksTotal()} free, ${held} of them reserved)`);
      }
      want = Math.min(want, avail);
    }
    const tried = new Set<number>();
    const corrupt: string[] = [];
    for (const threshold of want > minLen ? [want, minLen] : [want]) {
      for (let pos = 0; ; ) {
        const g = x.ballocScan(goalGroup, pos, threshold, this.flexAware ? 1 : 0) as number;
        if (g < 0) break;
        pos = (x.ballocScanPos() >>> 0) + 1;
        if (tried.has(g)) continue;
        tried.add(g);
        const got = await this.tryBlocks(h, g, g === goalGroup ? goalOff : 0, want, minLen, corrupt);
        if (got) {
          this.counters.blocksAllocated += got.len;
          return got;
        }
      }
    }
    if (corrupt.length) {
      throw new FsError("EFSCORRUPTED", `no space outside corrupt block groups: ${corrupt.join("; ")}`, { syscall: "allocBlocks" });
    }
    throw this.nospc("allocBlocks", `no run of ${minLen} free block(s) left (${x.allocFreeBlocksTotal()} free)`);
  }

  /** Return blocks [start, start + len) to the free pool (refusing double frees and metadata). */
  async freeBlocks(h: Handle, start: number, len: number): Promise<void> {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || len < 1) {
      throw this.inval("freeBlocks", `bad range ${String(start)}+${String(len)}`);
    }
    if (start < this.firstData || start + len > this.blocksCount) {
      throw this.corrupted("freeBlocks", `blocks ${start}..${start + len - 1} lie outside the volume`);
    }
    const x = this.x;
    const pieces: { g: number; off: number; len: number }[] = [];
    for (let b = start; b < start + len; ) {
      const g = Math.floor((b - this.firstData) / this.bpg);
      const off = b - this.firstData - g * this.bpg;
      const n = Math.min(start + len - b, this.bpg - off);
      pieces.push({ g, off, len: n });
      b += n;
    }
    const releases: Release[] = [];
    try {
      for (const p of pieces) releases.push(await this.blockLocks.acquire(p.g, (m) => m.lock()));
      const refs: { bitmap: BlockRef; gdt: BlockRef }[] = [];
      for (const p of pieces) {
        const where = `blocks ${start}..${start + len - 1} (group ${p.g})`;
        if (x.allocGroupState(p.g) & this.BLOCKS_BAD) throw this.corrupted("freeBlocks", `${where}: the group is marked corrupt`);
        if (x.ballocNeedsInit(p.g)) throw this.corrupted("freeBlocks", `${where}: the group was never allocated from (BLOCK_UNINIT)`);
        const bitmap = await h.getWriteAccess(x.groupBlockBitmapF(p.g) as number);
        if (!this.bitmapOk(p.g, bitmap, false)) {
          this.markBad(p.g, this.BLOCKS_BAD, "block bitmap checksum mismatch");
          throw this.corrupted("freeBlocks", `${where}: block bitmap checksum mismatch`);
        }
        const rc = x.ballocFree(bitmap.ptr, p.g, p.off, p.len, 0) as number;
        if (rc < 0) throw this.corrupted("freeBlocks", `${where}: ${this.reason(rc)}`);
        refs.push({ bitmap, gdt: await h.getWriteAccess(x.gdtDescBlock(p.g) as number) });
      }
      // Every piece checked: apply them all (nothing can fail in between).
      pieces.forEach((p, i) => {
        const { bitmap, gdt } = refs[i]!;
        const rc = this.engine.call(() => x.ballocFree(bitmap.ptr, p.g, p.off, p.len, 1)) as number;
        if (rc < 0) throw new FsError("EIO", `freeBlocks: group ${p.g} changed under its lock (${this.reason(rc)})`);
        x.gdtStoreDesc(p.g, gdt.ptr);
        h.dirty(bitmap);
        h.dirty(gdt);
      });
      this.counters.blocksFreed += len;
    } finally {
      for (const r of releases.reverse()) r();
    }
  }

  /**
   * Allocate an inode for a new file (isDir false) or directory in directory parentIno.
   * Throws ENOSPC when no inode is free, EFSCORRUPTED when only corrupt groups had some.
   */
  async allocInode(h: Handle, parentIno: number, isDir: boolean): Promise<number> {
    return this.allocInodeResident(h, parentIno, isDir) || this.allocInodeWaiting(h, parentIno, isDir);
  }

  /**
   * allocInode without waiting: the inode number when the group the engine picks is
   * unlocked and its bitmap and descriptor block are resident (nearly every create),
   * else 0 with nothing changed (then call allocInode). Inside h.
   */
  allocInodeResident(h: Handle, parentIno: number, isDir: boolean): number {
    const x = this.x;
    const g = x.iallocPickGroup(this.groupOf(parentIno), isDir ? 1 : 0, isDir && parentIno === ROOT_INO ? 1 : 0) as number;
    if (g < 0) return 0; // allocInode reports why
    const shared = this.inodeLocks.tryAcquire(g, (l) => l.tryLockShared());
    if (!shared) return 0;
    const mutex = this.inodeMutexes.tryAcquire(g, (m) => m.tryLock());
    try {
      if (!mutex) return 0;
      // A group that fails its checks is left to allocInode, which records and reports it.
      if (x.allocGroupState(g) & this.INODES_BAD || (x.groupFreeInodes(g) >>> 0) === 0 || x.iallocNeedsInit(g)) return 0;
      const bitmap = h.getWriteAccessResident(x.groupInodeBitmapF(g) as number);
      const gdt = bitmap && h.getWriteAccessResident(x.gdtDescBlock(g) as number);
      if (!bitmap || !gdt || !this.bitmapOk(g, bitmap, true)) return 0;
      // Nothing taken (an engine error leaves the bitmap alone): allocInode redoes it and reports.
      const ino = this.takeInode(h, g, bitmap, gdt, isDir);
      if (ino <= 0) return 0;
      this.counters.inodesAllocated++;
      return ino;
    } finally {
      mutex?.();
      shared();
    }
  }

  /** The group of a parent inode, validated (allocInode's argument check). */
  private groupOf(parentIno: number): number {
    if (!Number.isSafeInteger(parentIno) || parentIno < 1 || parentIno > this.inodesCount) {
      throw this.inval("allocInode", `bad parent inode ${String(parentIno)}`);
    }
    return Math.floor((parentIno - 1) / this.ipg);
  }

  /** allocInode's general path: any group, reading and initialising bitmaps as needed. */
  private async allocInodeWaiting(h: Handle, parentIno: number, isDir: boolean): Promise<number> {
    const x = this.x;
    const parentGroup = this.groupOf(parentIno);
    const topLevel = isDir && parentIno === ROOT_INO;
    const corrupt: string[] = [];
    // Each failed round either finds a group full (raced: its count is now 0, so it is
    // not picked again) or marks it corrupt: the loop ends within groups + 1 rounds.
    for (let round = 0; round <= this.groups; round++) {
      const g = x.iallocPickGroup(parentGroup, isDir ? 1 : 0, topLevel ? 1 : 0) as number;
      if (g < 0) break;
      const ino = await this.tryInode(h, g, isDir, corrupt);
      if (ino > 0) {
        this.counters.inodesAllocated++;
        return ino;
      }
    }
    if (corrupt.length) {
      throw new FsError("EFSCORRUPTED", `no free inode outside corrupt groups: ${corrupt.join("; ")}`, { syscall: "allocInode" });
    }
    throw this.nospc("allocInode", "no free inodes left");
  }

  /** Free inode `ino` (a directory if isDir). Refuses reserved inodes and double frees. */
  async freeInode(h: Handle, ino: number, isDir: boolean): Promise<void> {
    if (!Number.isSafeInteger(ino) || ino < 1 || ino > this.inodesCount) throw this.inval("freeInode", `bad inode number ${String(ino)}`);
    const x = this.x;
    const g = Math.floor((ino - 1) / this.ipg);
    const index = ino - 1 - g * this.ipg;
    const release = await this.lockInodeGroup(g);
    try {
      if (x.allocGroupState(g) & this.INODES_BAD) throw this.corrupted("freeInode", `inode ${ino}: its group ${g} is marked corrupt`);
      if (x.iallocNeedsInit(g)) throw this.corrupted("freeInode", `inode ${ino} is not allocated (group ${g} is INODE_UNINIT)`);
      const bitmap = await h.getWriteAccess(x.groupInodeBitmapF(g) as number);
      if (!this.bitmapOk(g, bitmap, true)) {
        this.markBad(g, this.INODES_BAD, "inode bitmap checksum mismatch");
        throw this.corrupted("freeInode", `inode ${ino}: inode bitmap checksum mismatch in group ${g}`);
      }
      const gdt = await h.getWriteAccess(x.gdtDescBlock(g) as number);
      const rc = this.engine.call(() => x.iallocFree(bitmap.ptr, g, index, isDir ? 1 : 0)) as number;
      if (rc < 0) {
        const code: ErrorCode = -rc === this.engine.constant("ALLOC_ERR_RESERVED_INO") ? "EINVAL" : "EFSCORRUPTED";
        throw new FsError(code, `cannot free inode ${ino}: ${this.reason(rc)}`, { syscall: "freeInode" });
      }
      x.gdtStoreDesc(g, gdt.ptr);
      h.dirty(bitmap);
      h.dirty(gdt);
      this.counters.inodesFreed++;
    } finally {
      release();
    }
  }

  /** Goal block for the first data block of inode `ino` (see ballocInodeGoal). */
  goalForInode(ino: number, isDir: boolean): number {
    const g = Number.isSafeInteger(ino) && ino >= 1 && ino <= this.inodesCount ? Math.floor((ino - 1) / this.ipg) : 0;
    return this.x.ballocInodeGoal(g, isDir ? 1 : 0) as number;
  }

  /** Volume totals as the descriptors say now (for the superblock and statfs). */
  totals(): { freeBlocks: number; freeInodes: number; dirs: number } {
    const x = this.x;
    return {
      freeBlocks: x.allocFreeBlocksTotal() as number,
      freeInodes: x.allocFreeInodesTotal() as number,
      dirs: x.allocDirsTotal() as number,
    };
  }

  stats(): AllocatorStats & { liveLocks: number } {
    return { ...this.counters, liveLocks: this.blockLocks.size + this.inodeLocks.size + this.inodeMutexes.size };
  }

  /**
   * Take group g's inode lock: "exclusive" keeps every inode allocation and free out of
   * the group until released (the lazy inode-table zeroer); "shared" is what allocation
   * itself takes.
   */
  lockGroupInodes(g: number, mode: "shared" | "exclusive"): Promise<Release> {
    return this.inodeLocks.acquire(g, (l) => (mode === "exclusive" ? l.lockExclusive() : l.lockShared()));
  }

  /** Take group g's block-allocation mutex (nothing allocates or frees blocks there meanwhile). */
  lockGroupBlocks(g: number): Promise<Release> {
    return this.blockLocks.acquire(g, (m) => m.lock());
  }

  // ── internals ───────────────────────────────────────────────────────────────────────

  private async lockInodeGroup(g: number): Promise<Release> {
    const shared = await this.lockGroupInodes(g, "shared");
    const mutex = await this.inodeMutexes.acquire(g, (m) => m.lock());
    return () => {
      mutex();
      shared();
    };
  }

  // Try group g for a block run; null if it has none (or proved corrupt, then recorded).
  private async tryBlocks(
    h: Handle, g: number, goalOff: number, want: number, minLen: number, corrupt: string[],
  ): Promise<{ start: number; len: number } | null> {
    const x = this.x;
    const release = await this.lockGroupBlocks(g);
    try {
      if (x.allocGroupState(g) & this.BLOCKS_BAD) return null;
      if ((x.groupFreeBlocks(g) >>> 0) < minLen) return null;
      const bbBlk = x.groupBlockBitmapF(g) as number;
      const gdtBlk = x.gdtDescBlock(g) as number;
      if (x.ballocNeedsInit(g)) {
        const rc = x.ballocInitCheck(g) as number;
        if (rc < 0) return this.groupFailed(g, this.BLOCKS_BAD, `block group ${g}: ${this.reason(rc)}`, corrupt);
        const { bitmap, gdt } = await this.initBitmap(h, g, bbBlk, gdtBlk, (p) => x.ballocInitBitmap(p, g) as number, "block");
        this.counters.blockGroupsInitialised++;
        return this.claim(h, g, bitmap, gdt, goalOff, want, minLen, corrupt);
      }
      // Probe through the cache; pin in the handle only if this group will give blocks.
      const probe = await this.vol.cache.get(bbBlk);
      let found: number;
      try {
        if (!this.bitmapOk(g, probe, false)) {
          return this.groupFailed(g, this.BLOCKS_BAD, `block group ${g}: block bitmap checksum mismatch`, corrupt);
        }
        found = this.engine.call(() => x.ballocFindInBitmap(probe.ptr, g, goalOff, want, minLen)) as number;
      } finally {
        this.vol.cache.release(probe);
      }
      if (found < 0) return this.groupFailed(g, this.BLOCKS_BAD, `block group ${g}: ${this.reason(found)}`, corrupt);
      if (found === 0) {
        this.counters.groupsProbed++;
        return null;
      }
      const bitmap = await h.getWriteAccess(bbBlk);
      const gdt = await h.getWriteAccess(gdtBlk);
      return this.claim(h, g, bitmap, gdt, goalOff, want, minLen, corrupt);
    } finally {
      release();
    }
  }

  // Allocate in group g's bitmap (write access held) and record both blocks.
  private claim(
    h: Handle, g: number, bitmap: BlockRef, gdt: BlockRef, goalOff: number, want: number, minLen: number, corrupt: string[],
  ): { start: number; len: number } | null {
    const x = this.x;
    // Re-checked here, synchronously with the claim, so concurrent requests cannot
    // together dip into the reserves.
    const avail = this.available();
    if (avail < minLen) return null;
    want = Math.min(want, avail);
    const n = this.engine.call(() => x.ballocInBitmap(bitmap.ptr, g, goalOff, want, minLen)) as number;
    if (n < 0) return this.groupFailed(g, this.BLOCKS_BAD, `block group ${g}: ${this.reason(n)}`, corrupt);
    if (n === 0) return null;
    this.resv.drew(n);
    x.gdtStoreDesc(g, gdt.ptr);
    h.dirty(bitmap);
    h.dirty(gdt);
    return { start: x.ballocResultStart() as number, len: n };
  }

  // First use of an UNINIT group (its lock held, its layout checked): build its block or
  // inode bitmap with `init`, store the descriptor, and record both blocks in h.
  private async initBitmap(
    h: Handle, g: number, bitmapBlk: number, gdtBlk: number, init: (ptr: number) => number, kind: "block" | "inode",
  ): Promise<{ bitmap: BlockRef; gdt: BlockRef }> {
    const bitmap = await h.getNewBlock(bitmapBlk);
    const gdt = await h.getWriteAccess(gdtBlk);
    const rc = this.engine.call(() => init(bitmap.ptr)) as number;
    if (rc < 0) throw new FsError("EIO", `${kind} group ${g} changed under its lock (${this.reason(rc)})`);
    this.x.gdtStoreDesc(g, gdt.ptr);
    h.dirty(bitmap);
    h.dirty(gdt);
    return { bitmap, gdt };
  }

  // Blocks this request may take: free, less the root reserve and others' reservations.
  private available(): number {
    return (this.x.allocFreeBlocksTotal() as number) - this.reserved - this.resv.untouchable;
  }

  // Try group g for an inode; 0 if it has none (raced, or proved corrupt).
  private async tryInode(h: Handle, g: number, isDir: boolean, corrupt: string[]): Promise<number> {
    const x = this.x;
    const release = await this.lockInodeGroup(g);
    try {
      if (x.allocGroupState(g) & this.INODES_BAD) return 0;
      if ((x.groupFreeInodes(g) >>> 0) === 0) return 0;
      const ibBlk = x.groupInodeBitmapF(g) as number;
      const gdtBlk = x.gdtDescBlock(g) as number;
      let bitmap: BlockRef;
      let gdt: BlockRef;
      if (x.iallocNeedsInit(g)) {
        const rc = x.iallocInitCheck(g) as number;
        if (rc < 0) return this.groupFailed(g, this.INODES_BAD, `inode group ${g}: ${this.reason(rc)}`, corrupt) ?? 0;
        ({ bitmap, gdt } = await this.initBitmap(h, g, ibBlk, gdtBlk, (p) => x.iallocInitBitmap(p, g) as number, "inode"));
        this.counters.inodeGroupsInitialised++;
      } else {
        bitmap = await h.getWriteAccess(ibBlk);
        if (!this.bitmapOk(g, bitmap, true)) {
          return this.groupFailed(g, this.INODES_BAD, `inode group ${g}: inode bitmap checksum mismatch`, corrupt) ?? 0;
        }
        gdt = await h.getWriteAccess(gdtBlk);
      }
      const r = this.takeInode(h, g, bitmap, gdt, isDir);
      if (r < 0) return this.groupFailed(g, this.INODES_BAD, `inode group ${g}: ${this.reason(r)}`, corrupt) ?? 0;
      return r;
    } finally {
      release();
    }
  }

  // Take an inode in group g (its locks held, bitmap and descriptor block held in h) and
  // record both blocks: the inode number, 0 if the group is full, or the engine's error
  // code (< 0, nothing changed). Every caller has the bitmap's checksum right in the
  // descriptor (bitmapOk, or a bitmap the engine just built), so the engine patches it.
  private takeInode(h: Handle, g: number, bitmap: BlockRef, gdt: BlockRef, isDir: boolean): number {
    const x = this.x;
    const r = this.engine.call(() => x.iallocInBitmap(bitmap.ptr, g, isDir ? 1 : 0, 1)) as number;
    if (r <= 0) return r;
    x.gdtStoreDesc(g, gdt.ptr);
    h.dirty(bitmap);
    h.dirty(gdt);
    return x.iallocResultIno() as number;
  }

  /**
   * Does group g's block (inode: false) or inode bitmap, pinned, match the checksum in
   * its descriptor? Summed once per fill from the device (BlockCache.isVerified): a
   * resident bitmap changes only through the engine's allocation calls, each of which
   * re-sums it into the descriptor, so a verified pair stays matched. The owner recorded
   * is inode 0 (inode bitmaps) or 1 (block bitmaps) with the group as generation —
   * inodes 0 and 1 never own directory blocks, the other users of verify-once.
   */
  private bitmapOk(g: number, ref: BlockRef, inodes: boolean): boolean {
    const x = this.x;
    const cache = this.vol.cache;
    const owner = inodes ? 0 : 1;
    if (cache.isVerified(ref, owner, g)) return true;
    const ok = !!(inodes ? x.gdInodeBitmapCsumVerify(x.gdPtr(g), ref.ptr) : x.gdBlockBitmapCsumVerify(x.gdPtr(g), ref.ptr));
    if (ok) cache.markVerified(ref, owner, g);
    return ok;
  }

  private groupFailed(g: number, bits: number, message: string, corrupt: string[]): null {
    corrupt.push(message);
    this.markBad(g, bits, message);
    return null;
  }

  private markBad(g: number, bits: number, message: string): void {
    if ((this.x.allocGroupState(g) & bits) === bits) return;
    this.x.allocMarkGroup(g, bits);
    this.counters.corruptGroups++;
    this.problems.push(message);
    this.vol.warnings.push(`allocation: ${message}; the group is no longer used for new allocations (run e2fsck)`);
  }

  private reason(rc: number): string {
    return this.err.get(-rc) ?? `engine error ${rc}`;
  }

  private inval(syscall: string, message: string): FsError {
    return new FsError("EINVAL", message, { syscall });
  }
  private nospc(syscall: string, message: string): FsError {
    return new FsError("ENOSPC", message, { syscall });
  }
  private corrupted(syscall: string, message: string): FsError {
    return new FsError("EFSCORRUPTED", message, { syscall });
  }
}
