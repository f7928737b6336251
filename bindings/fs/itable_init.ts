/**
 * Lazy inode-table initialisation for one volume: the request that the shared scheduler
 * (sched/lazyinit.ts) runs, one group per turn, and the BackgroundService that registers
 * and unregisters it as the volume's lifecycle moves (background.ts).
 *
 * Why: mkfs leaves inode tables unzeroed so that formatting a huge device is instant. That
 * is safe while the descriptors' itable_unused / INODE_UNINIT are trustworthy — e2fsck and
 * the kernel never look past them — but if a descriptor checksum is ever damaged, e2fsck
 * scans whole tables and old bytes there look like broken inodes. So the mounted volume
 * zeroes the never-used part of every table in the background and records it with the
 * ITABLE_ZEROED group flag.
 *
 * One turn (zeroGroup), one group:
 *   1. take the group's inode-allocation lock EXCLUSIVELY (allocation and free take it
 *      shared, alloc.ts), so no inode is handed out in the region while it is zeroed;
 *   2. compute the region: the blocks after the ones covering the group's possibly-used
 *      inodes (none if INODE_UNINIT, else inodes_per_group − itable_unused, rounded up to
 *      whole blocks: the boundary block holds a used inode and is never touched);
 *   3. drop those blocks from the block cache, zero them on the device (zeroout, else
 *      1 MiB zero writes), drop them again — see "cache" below; release the lock.
 * Flagging (commitFlags), per batch of zeroed groups: flush the device — the zeroes must be
 * durable before a flag that claims them can reach the disk, and without a journal nothing
 * else orders the two (this is the seed's barrier) — then, under metaLock, in one
 * CacheHandle transaction, set ITABLE_ZEROED and the descriptor checksum of each group and
 * copy it into its descriptor-table block (gdtStoreDesc). Batches close after 64 groups or
 * 250 ms, and at flush/stop/finish: a device flush per group cost more than the zeroing in
 * bench/lazyinit, and on an image file it also forces the foreground's writes out.
 * The group lock is released before metaLock is taken: allocation runs under metaLock and
 * waits for the group lock, so holding both in the other order would deadlock. Nothing is
 * lost by the gap: an inode allocated after the release lands in a block already zeroed or
 * in use, and ITABLE_ZEROED only claims the never-used tail was zeroed once.
 *
 * Cache: InodeTable.get refuses inodes past the in-use region, so normally no block of the
 * region is cached. Were one cached (clean or dirty), writing it back later would put old
 * bytes over the zeroes; were one read while the zeroout is in flight, the cache would keep
 * old bytes that a later partial update of the block writes back. Dropping the region
 * before and after the zeroout (invalidate waits for I/O in flight on the block) rules out
 * both. A block someone holds pinned cannot be dropped: the turn gives up on that group
 * for now and retries it on the next turn.
 *
 * Pacing: the next turn is due `initItable × (how long this turn took)` after it ends, so
 * zeroing takes about 1/(1 + initItable) of the time. The first turn waits a random delay
 * up to `initItableDelay` ms, so volumes mounted together do not start together.
 *
 * Groups skipped (left unflagged): descriptors mount found unusable, descriptors whose
 * checksum does not verify, groups the allocator marked corrupt — zeroing on the word of a
 * descriptor we cannot trust could destroy live inodes.
 *
 * Errors: a device error stops this volume's request (a warning in vol.warnings, `error`
 * in stats, a final "lazyinit" event); the group stays unflagged; the volume stays usable.
 * The next start() (remount read-write, thaw) tries again from the first unzeroed group.
 *
 * Ownership: the scheduler calls turn(); the volume calls start/flush/stop without holding
 * metaLock (background.ts). stop() unregisters and waits for the turn in progress, so after
 * it resolves this volume does no zeroing until the next start().
 */
import type { Volume, MountOptions } from "./volume.ts";
import type { BackgroundService } from "./background.ts";
import { CacheHandle } from "../journal/handle.ts";
import { FsError } from "./errors.ts";
import { registerLazyInit, unregisterLazyInit, type LazyInitRequest } from "../sched/lazyinit.ts";
import type { LazyInitProgress, VolumeEvents } from "./events.ts";

export const DEFAULT_INIT_ITABLE = 10;
export const DEFAULT_INIT_ITABLE_DELAY_MS = 5000;

/** Counters in vol.stats().lazyInit. */
export interface LazyInitStats {
  /** Groups flagged ITABLE_ZEROED (a count of flags, not of turns). */
  groupsZeroed: number;
  groupsTotal: number;
  /** Registered with the scheduler (zeroing pending or in progress). */
  running: boolean;
  /** Wait multiplier in force (false: lazy init disabled for this mount). */
  initItable: number | false;
  /** Next group the request looks at. */
  nextGroup: number;
  /** Turns run on this mount, and the bytes they zeroed. */
  turns: number;
  bytesZeroed: number;
  /** Duration of the last turn, and of all turns (ms): the device time zeroing took. */
  lastTurnMs: number;
  busyMs: number;
  /** Turns that found the region pinned in the cache and postponed the group. */
  retries: number;
  /** Why zeroing stopped early, if it did. */
  error: string | null;
}

const ZERO_CHUNK = 1 << 20;
/** Flag zeroed groups after this many, or this long after the first was zeroed. */
const COMMIT_GROUPS = 64;
const COMMIT_MS = 250;

/** A block of the region is pinned in the cache: try the group again on a later turn. */
class Busy extends Error {}

/** The lazy-init request of one volume. */
export class LazyInit implements BackgroundService, LazyInitRequest {
  readonly name = "lazyInit";
  nextRun = 0;
  private readonly vol: Volume;
  private readonly events: VolumeEvents | undefined;
  private readonly mult: number | false;
  private readonly delayMs: number;
  private readonly x: Volume["engine"]["x"];
  private readonly ZEROED: number;
  private readonly INODES_BAD: number;
  private readonly groupCsum: boolean;
  private registered = false;
  private nextGroup = 0;
  private zeroedCount = 0;
  private inTurn: Promise<boolean> | undefined;
  /** Groups zeroed but not yet flagged (waiting for one flush, see commitFlags). */
  private readonly pending: number[] = [];
  private pendingSince = 0;
  private zeros: Uint8Array | undefined;
  private counters = { turns: 0, bytesZeroed: 0, lastTurnMs: 0, busyMs: 0, retries: 0 };
  private error: string | null = null;

  /** Built by Volume.buildWriteParts (read-write volumes only); does nothing until start(). */
  constructor(vol: Volume, options: MountOptions, events?: VolumeEvents) {
    this.vol = vol;
    this.events = events;
    this.mult = options.initItable === false ? false : (options.initItable ?? DEFAULT_INIT_ITABLE);
    const d = options.initItableDelay ?? DEFAULT_INIT_ITABLE_DELAY_MS;
    this.delayMs = Number.isFinite(d) && d > 0 ? d : 0;
    this.x = vol.engine.x;
    this.ZEROED = vol.engine.constant("BG_INODE_ZEROED");
    this.INODES_BAD = vol.engine.constant("ALLOC_GROUP_INODES_BAD");
    // Without group checksums there is no itable_unused to trust and no flag to set.
    this.groupCsum = this.x.sbFeatureGroupCsum(vol.sb.ptr) !== 0;
    this.recount();
  }

  /** The volume became writable: register from the first unzeroed group (Volume only). */
  start(): void {
    if (this.registered || this.mult === false || !this.groupCsum) return;
    this.recount();
    const g = this.findNext(0);
    if (g >= this.vol.groups) return;
    this.nextGroup = g;
    this.error = null;
    this.nextRun = performance.now() + Math.random() * this.delayMs;
    this.registered = true;
    registerLazyInit(this);
  }

  /**
   * Wait for the turn in progress and flag every group already zeroed, so the flags are in
   * the cache before the caller writes back (Volume only, without metaLock). Does NOT wait
   * for the remaining groups: on a large volume that is hours of deliberately paced work,
   * and sync/statfs must not take that long.
   */
  async flush(): Promise<void> {
    await this.inTurn;
    await this.commitOrStop();
  }

  /** Unregister, wait for the turn in progress, flag what it zeroed (Volume only, without metaLock). */
  async stop(): Promise<void> {
    this.registered = false;
    await unregisterLazyInit(this);
    await this.inTurn;
    await this.commitOrStop();
  }

  // commitFlags for the volume's flush/stop: a failure ends the request (with a warning)
  // but never fails the sync or unmount that asked.
  private async commitOrStop(): Promise<void> {
    try {
      await this.commitFlags();
    } catch (e) {
      if (this.error === null) this.finish(-1, e);
    }
  }

  /** Counters for vol.stats(). */
  stats(): LazyInitStats {
    return {
      groupsZeroed: this.zeroedCount,
      groupsTotal: this.vol.groups,
      running: this.registered,
      initItable: this.mult,
      nextGroup: this.nextGroup,
      ...this.counters,
      error: this.error,
    };
  }

  /** One group (scheduler only). Resolves false when this request is finished; never rejects. */
  turn(): Promise<boolean> {
    const p = this.runTurn();
    this.inTurn = p;
    return p;
  }

  private async runTurn(): Promise<boolean> {
    if (!this.registered) return false;
    const t0 = performance.now();
    const g = this.findNext(this.nextGroup);
    this.nextGroup = g;
    try {
      if (g >= this.vol.groups) {
        await this.commitFlags();
        return this.finish();
      }
      const bytes = await this.zeroGroup(g);
      this.nextGroup = g + 1;
      if (bytes !== null) {
        this.counters.bytesZeroed += bytes;
        if (this.pending.length === 0) this.pendingSince = performance.now();
        this.pending.push(g);
      }
      // Commit when the batch is full or old, or when the pause before the next turn is
      // long enough that the flags would otherwise lag behind the zeroing.
      const now = performance.now();
      if (this.pending.length >= COMMIT_GROUPS || now - this.pendingSince >= COMMIT_MS || (this.mult || 0) * (now - t0) >= COMMIT_MS) {
        await this.commitFlags();
      }
    } catch (e) {
      if (!(e instanceof Busy)) {
        // Groups zeroed before the failure keep their flags if the device still flushes.
        await this.commitFlags().catch(() => {});
        return this.finish(g, e);
      }
      this.counters.retries++;
    } finally {
      const took = performance.now() - t0;
      this.counters.turns++;
      this.counters.lastTurnMs = took;
      this.counters.busyMs += took;
      // Pace: this turn's cost times the multiplier (at least a millisecond for a retry).
      this.nextRun = performance.now() + Math.max((this.mult || 0) * took, this.nextGroup === g ? 1 : 0);
    }
    return this.registered;
  }

  /**
   * Flag the zeroed groups: one device flush makes their zeroes durable (before it, the
   * flag could reach the disk ahead of the zeroes — nothing else orders them without a
   * journal), then one transaction sets ITABLE_ZEROED and the checksum of each. Batched
   * (COMMIT_GROUPS / COMMIT_MS) because a flush per group costs more than the zeroing
   * and, on a file, also forces the foreground's writes out.
   */
  private async commitFlags(): Promise<void> {
    if (this.pending.length === 0) return;
    const groups = this.pending.splice(0);
    const vol = this.vol;
    const x = this.x;
    await vol.device.flush();
    await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        for (const g of groups) {
          const ref = await h.getWriteAccess(x.gdtDescBlock(g) as number);
          // Synchronous from here: no allocator can change the descriptor in between.
          const d = x.gdPtr(g);
          x.gdSetFlags(d, x.gdFlags(d) | this.ZEROED);
          x.gdCsumSet(d, g);
          x.gdtStoreDesc(g, ref.ptr);
          h.dirty(ref);
          this.zeroedCount++;
        }
      } finally {
        await h.stop();
      }
    });
    this.emit(groups[groups.length - 1]!, false);
  }

  // End the request: done (no group left) or failed (group g, error e).
  private finish(g = -1, e?: unknown): false {
    this.registered = false;
    if (e !== undefined) {
      const msg = e instanceof Error ? e.message : String(e);
      this.error = msg;
      this.vol.warnings.push(`lazy inode-table init stopped at group ${g} (left unzeroed): ${msg}`);
    }
    this.emit(g, true);
    return false;
  }

  private emit(group: number, done: boolean): void {
    if (!this.events) return;
    const p: LazyInitProgress = { groupsZeroed: this.zeroedCount, groupsTotal: this.vol.groups, group, done };
    if (done && this.error !== null) p.error = this.error;
    this.events.emit("lazyinit", p);
  }

  private recount(): void {
    let n = 0;
    for (let g = 0; g < this.vol.groups; g++) if ((this.x.groupFlags(g) & this.ZEROED) !== 0) n++;
    this.zeroedCount = n;
  }

  // First group ≥ g that is unflagged and whose descriptor we trust (groups if none).
  private findNext(g: number): number {
    const x = this.x;
    for (; g < this.vol.groups; g++) {
      if ((x.groupFlags(g) & this.ZEROED) !== 0) continue;
      if (this.vol.badGroups.has(g)) continue;
      if (x.allocGroupState(g) & this.INODES_BAD) continue;
      if (!x.gdCsumVerify(x.gdPtr(g), g)) continue;
      return g;
    }
    return this.vol.groups;
  }

  /** Zero group g's never-used inode-table tail; the bytes zeroed, or null if g is to be left alone. */
  private async zeroGroup(g: number): Promise<number | null> {
    const vol = this.vol;
    const x = this.x;
    const bs = vol.blockSize;
    const release = await vol.writeParts.alloc.lockGroupInodes(g, "exclusive");
    try {
      if ((x.groupFlags(g) & this.ZEROED) !== 0) return null; // flagged meanwhile
      if (!x.gdCsumVerify(x.gdPtr(g), g)) return null; // not trusted (see header)
      const perBlock = bs / vol.sb.inodeSize;
      const usedBlocks = Math.ceil((x.groupInodesInUse(g, 1) >>> 0) / perBlock);
      const tableBlocks = x.geoItableBlocks() >>> 0;
      const first = (x.groupInodeTableF(g) as number) + usedBlocks;
      const count = tableBlocks - usedBlocks;
      if (count <= 0) return 0;
      await this.dropCached(first, count);
      await this.zeroBlocks(first, count);
      await this.dropCached(first, count);
      return count * bs;
    } finally {
      release();
    }
  }

  // Forget cached copies of [first, first+count); Busy if one is pinned.
  private async dropCached(first: number, count: number): Promise<void> {
    const { cache } = this.vol;
    for (let b = first; b < first + count; b++) {
      if (this.x.cacheProbe(b) < 0) continue;
      try {
        await cache.invalidate(b);
      } catch (e) {
        if (e instanceof FsError && e.code === "EBUSY") throw new Busy();
        throw e;
      }
    }
  }

  private async zeroBlocks(first: number, count: number): Promise<void> {
    const dev = this.vol.device;
    const bs = this.vol.blockSize;
    const offset = first * bs;
    const length = count * bs;
    if (typeof dev.zeroout === "function") {
      await dev.zeroout(offset, length);
      return;
    }
    const zeros = (this.zeros ??= new Uint8Array(ZERO_CHUNK));
    for (let done = 0; done < length; done += ZERO_CHUNK) {
      const n = Math.min(ZERO_CHUNK, length - done);
      await dev.write(offset + done, n === ZERO_CHUNK ? zeros : zeros.subarray(0, n));
    }
  }
}
