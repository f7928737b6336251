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
 * the cache, dirty marks it for write-back, stop unpins everything the handle holds.
 * Ordering rules callers must already follow (the journal will rely on them):
 *   - call getWriteAccess/getNewBlock before changing a block's bytes;
 *   - call dirty(ref) after changing them (any number of times);
 *   - never keep a ref past stop(); never use one handle from two operations at once.
 */
import type { BlockCache, CacheRef } from "../cache.ts";
import { FsError } from "../fs/errors.ts";

export type BlockRef = CacheRef;

export interface Handle {
  /** Pin block `blk` for modification, reading it if it is not cached. */
  getWriteAccess(blk: number): Promise<BlockRef>;
  /** Pin a block that will be entirely (re)written: no read, contents zero-filled. */
  getNewBlock(blk: number): Promise<BlockRef>;
  /** Record that the block's bytes changed (it will be written back). */
  dirty(ref: BlockRef): void;
  /** Pin a block for reading only (released at stop, or earlier with release). */
  getBlock(blk: number): Promise<BlockRef>;
  /** Drop a pin early (the change, if dirtied, is kept). */
  release(ref: BlockRef): void;
  /** End the atomic update: every pin is released. */
  stop(): Promise<void>;
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

/** A handle over the block cache, with no journal behind it. */
export class CacheHandle implements Handle {
  private readonly cache: BlockCache;
  private readonly pins = new Map<number, BlockRef>();
  private stopped = false;
  private readonly stopHooks: (() => void)[] = [];

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
    this.pins.set(blk, ref);
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
    this.pins.set(blk, ref);
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

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const ref of this.pins.values()) this.cache.release(ref);
    this.pins.clear();
    for (const fn of this.stopHooks.splice(0)) fn();
  }

  onStop(fn: () => void): void {
    this.live();
    this.stopHooks.push(fn);
  }
}
