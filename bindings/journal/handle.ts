/**
 * The transaction handle: the one seam through which every metadata change goes.
 *
 * Why a seam before there is a journal: jbd2 needs to know, for each atomic metadata
 * update, which blocks it changes (getWriteAccess before the change, dirty after) and
 * where it ends (stop). Writing the write path against this interface from day one means
 * the journal can later plug in here — copying the pre-image, adding the block to the
 * running transaction, committing on stop — without touching any caller.
 *
 * Today's implementation (CacheHandle) journals nothing: getWriteAccess pins the block in
 * the cache, dirty marks it for write-back, stop unpins everything the handle holds. The
 * `…Resident` forms take a block only when that needs no waiting (else undefined, nothing
 * pinned) — they pin exactly as the waiting forms do, so the rules below are the same —
 * and stop() is synchronous unless freed blocks must be waited out: the common
 * operation in a cached volume creates no promise here.
 * Ordering rules callers must already follow (the journal will rely on them):
 *   - call getWriteAccess/getNewBlock before changing a block's bytes;
 *   - call dirty(ref) after changing them (any number of times);
 *   - never keep a ref past stop(); never use one handle from two operations at once;
 *   - a metadata block given back to the allocator is first forget()-ed through the
 *     handle that freed it, so its old bytes are never written over whatever the block
 *     becomes next (the journal will also need this: a revoke record, so replay does not
 *     resurrect the freed block either).
 */
import type { BlockCache, CacheRef } from "../cache.ts";
import { FsError } from "../fs/errors.ts";

export type BlockRef = CacheRef;

export interface Handle {
  /** Pin block `blk` for modification, reading it if it is not cached. */
  getWriteAccess(blk: number): Promise<BlockRef>;
  /**
   * getWriteAccess without waiting: the block pinned as getWriteAccess would pin it when
   * it is resident, else undefined (nothing pinned; call getWriteAccess). For the
   * synchronous fast paths, which take every block they change before changing any.
   */
  getWriteAccessResident(blk: number): BlockRef | undefined;
  /** Pin a block that will be entirely (re)written: no read, contents zero-filled. */
  getNewBlock(blk: number): Promise<BlockRef>;
  /** getNewBlock without waiting: undefined (nothing done) when a slot cannot be had at once. */
  getNewBlockResident(blk: number): BlockRef | undefined;
  /** Record that the block's bytes changed (it will be written back). */
  dirty(ref: BlockRef): void;
  /** Pin a block for reading only (released at stop, or earlier with release). */
  getBlock(blk: number): Promise<BlockRef>;
  /** getBlock without waiting: the pinned block if resident, else undefined. */
  getBlockResident(blk: number): BlockRef | undefined;
  /** Drop a pin early (the change, if dirtied, is kept). */
  release(ref: BlockRef): void;
  /**
   * The block was freed: drop this handle's pin and discard any unwritten change to it,
   * so it is never written back. Call before handing the block to the allocator.
   */
  forget(blk: number): Promise<void>;
  /**
   * End the atomic update: every pin is released. Synchronous (undefined) unless freed
   * blocks are still pinned by readers and must be waited out.
   */
  stop(): void | Promise<void>;
  /** Run fn at stop(), after the pins are released (readers' tree sequences, treeseq.ts). */
  onStop(fn: () => void): void;
}

/** Allocates and frees blocks on behalf of a handle (implemented by the block allocator). */
export interface BlockAllocator {
  /**
   * Allocate up to `want` contiguous blocks (at least `minLen`, default 1), as close to
   * `goal` as possible. Throws FsError ENOSPC when nothing fits.
   */
  allocBlocks(h: Handle, goal: number, want: number, minLen?: number): Promise<{ start: number; len: number }>;
  /** Return blocks [start, start+len) to the free pool. */
  freeBlocks(h: Handle, start: number, len: number): Promise<void>;
}

/**
 * A handle's pins by block number. Nearly every transaction holds a handful (a create:
 * bitmap, descriptor block, leaf, inode-table blocks), which a short array scanned in
 * place serves faster than a Map, and without one per transaction to allocate; past
 * SMALL pins (a large truncate) it moves to a Map.
 */
class PinSet {
  private static readonly SMALL = 16;
  private list: BlockRef[] = [];
  private map: Map<number, BlockRef> | undefined;

  get(blk: number): BlockRef | undefined {
    if (this.map) return this.map.get(blk);
    const l = this.list;
    for (let i = 0; i < l.length; i++) if (l[i]!.blk === blk) return l[i];
    return undefined;
  }

  /** Add a pin for a block not held yet. */
  add(ref: BlockRef): void {
    if (this.map) {
      this.map.set(ref.blk, ref);
      return;
    }
    this.list.push(ref);
    if (this.list.length > PinSet.SMALL) {
      this.map = new Map(this.list.map((r) => [r.blk, r]));
      this.list = [];
    }
  }

  delete(blk: number): void {
    if (this.map) {
      this.map.delete(blk);
      return;
    }
    const i = this.list.findIndex((r) => r.blk === blk);
    if (i >= 0) this.list.splice(i, 1);
  }

  /** Every pin, removed from the set. */
  take(): Iterable<BlockRef> {
    const all = this.map ? [...this.map.values()] : this.list;
    this.list = [];
    this.map = undefined;
    return all;
  }
}

/** A handle over the block cache, with no journal behind it. */
export class CacheHandle implements Handle {
  private readonly cache: BlockCache;
  private readonly pins = new PinSet();
  /** Freed blocks a reader still had pinned at forget(): dropped again at stop(). Made on first use. */
  private forgotten: Set<number> | undefined;
  private stopped = false;
  /** Made on first use: most transactions register none. */
  private stopHooks: (() => void)[] | undefined;

  constructor(cache: BlockCache) {
    this.cache = cache;
  }

  private live(): void {
    if (this.stopped) throw new FsError("EIO", "transaction handle used after stop()");
  }

  async getWriteAccess(blk: number): Promise<BlockRef> {
    this.live();
    const held = this.pins.get(blk);
    if (held) return held;
    const ref = await this.cache.get(blk);
    this.pins.add(ref);
    return ref;
  }

  getWriteAccessResident(blk: number): BlockRef | undefined {
    this.live();
    const held = this.pins.get(blk);
    if (held) return held;
    const ref = this.cache.peek(blk);
    if (ref) this.pins.add(ref);
    return ref;
  }

  getBlockResident(blk: number): BlockRef | undefined {
    return this.getWriteAccessResident(blk);
  }

  getNewBlockResident(blk: number): BlockRef | undefined {
    this.live();
    const held = this.pins.get(blk);
    if (held) {
      this.cache.bytes(held).fill(0);
      return held;
    }
    const ref = this.cache.getNewResident(blk);
    if (ref) this.pins.add(ref);
    return ref;
  }

  async getNewBlock(blk: number): Promise<BlockRef> {
    this.live();
    const held = this.pins.get(blk);
    if (held) {
      this.cache.bytes(held).fill(0);
      return held;
    }
    const ref = await this.cache.getNew(blk);
    this.pins.add(ref);
    return ref;
  }

  getBlock(blk: number): Promise<BlockRef> {
    return this.getWriteAccess(blk);
  }

  dirty(ref: BlockRef): void {
    this.live();
    this.cache.markDirty(ref);
  }

  release(ref: BlockRef): void {
    if (this.pins.get(ref.blk) === ref) {
      this.pins.delete(ref.blk);
      this.cache.release(ref);
    }
  }

  async forget(blk: number): Promise<void> {
    this.live();
    const held = this.pins.get(blk);
    if (held) {
      this.pins.delete(blk);
      this.cache.release(held);
    }
    if (!(await this.drop(blk))) (this.forgotten ??= new Set()).add(blk);
  }

  stop(): void | Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const ref of this.pins.take()) this.cache.release(ref);
    // The common transaction freed no block a reader held: nothing to wait for.
    if (!this.forgotten?.size) {
      this.runStopHooks();
      return;
    }
    return this.dropForgotten(this.forgotten);
  }

  onStop(fn: () => void): void {
    this.live();
    (this.stopHooks ??= []).push(fn);
  }

  // Readers pin a block only between a cache get and the copy right after it, so a
  // freed block still pinned at forget() is free again within a few turns.
  private async dropForgotten(forgotten: Set<number>): Promise<void> {
    try {
      for (const blk of forgotten) await this.cache.invalidateRange(blk, 1, true);
    } finally {
      forgotten.clear();
      this.runStopHooks();
    }
  }

  // Always run, however stop() ends: a stop hook left unrun would keep readers of an
  // inode waiting forever.
  private runStopHooks(): void {
    const hooks = this.stopHooks;
    if (!hooks) return;
    this.stopHooks = undefined;
    for (const fn of hooks) fn();
  }

  // Invalidate blk in the cache; false while someone else holds it pinned.
  private async drop(blk: number): Promise<boolean> {
    try {
      await this.cache.invalidate(blk);
      return true;
    } catch (e) {
      if (e instanceof FsError && e.code === "EBUSY") return false;
      throw e;
    }
  }
}
