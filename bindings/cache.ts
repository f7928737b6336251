/**
 * BlockCache: the buffer cache's I/O driver. The index (which block is in which slot,
 * LRU order, dirty and in-flight state) lives in the engine (assembly/cache.ts); this
 * class turns its answers into device requests.
 *
 * Why split this way: the engine's format code edits metadata blocks in place in linear
 * memory, so the blocks must live there; but only the bindings can await a device. Each
 * call across the boundary is one slot or one run of slots, never a byte.
 *
 * Why batching matters: devices (files, OPFS, network) pay per request far more than per
 * byte. Write-out therefore claims the dirty blocks sorted by block number, cuts them into
 * runs of consecutive numbers, gathers each run into a staging lane with one memory copy
 * per block and sends ONE device write per run. Readahead (`readRun`) does the same for
 * reads: one request per run of missing blocks, straight into the arena when the fresh
 * slots happen to be adjacent there, else through a lane and a scatter.
 *
 * Ownership and locking (single-threaded JS; state changes happen between awaits):
 *   - `get`/`getNew`/`peek`/`getNewResident` return a pinned `CacheRef`; the holder
 *     calls `release` (or uses `with`). `peek` and `getNewResident` are the synchronous
 *     forms (resident block / free slot, else undefined) behind the write path's fast
 *     paths; walks written over resident blocks answer `Missing` and `resident()` turns
 *     them into waiting ones. While pinned the slot keeps its block and its pointer; pointers stay
 *     valid for the engine's life because linear memory only grows at init (if someone
 *     grows it later, the views are re-created by Engine, and the pointers still hold —
 *     only a device request caught in the middle is redone, see `deviceRead`).
 *   - A slot with a device read in flight has the engine's IO flag and an entry in
 *     `reading`; every `get` of that block awaits the same promise (one read).
 *   - Dirty slots claimed by `cacheCollectDirty` carry IO until `cacheWriteEnd`, so no two
 *     writes of a block are ever in flight and no read is issued for a block being written
 *     (the device contract in devices/types.ts). A change made while the write is in
 *     flight bumps the slot's generation and keeps it dirty for the next write-out.
 *   - Write-out always goes through a staging lane (never from the slot itself), so a
 *     holder may keep editing a block while its previous contents are being written.
 *   - Staging is split into `maxInFlight` lanes; a lane is owned by one request at a time.
 */
import type { BlockDevice } from "./devices/types.ts";
import { FsError } from "./fs/errors.ts";
import type { Engine } from "./wasm.ts";

export interface BlockCacheOptions {
  /** Staging area for multi-block requests, in bytes (default 1 MiB, max 64 MiB). */
  stagingBytes?: number;
  /** Multi-block requests in flight at once; the staging area is split between them (default 4). */
  maxInFlight?: number;
}

/** A pinned block: `ptr` is its data in linear memory, valid until `release`. */
export interface CacheRef {
  readonly slot: number;
  readonly ptr: number;
  readonly blk: number;
}

export interface WritebackOptions {
  /** Repeat until nothing is dirty and no write is in flight (flush semantics). */
  all?: boolean;
  /** Write at most this many blocks (lowest block numbers first). */
  maxBlocks?: number;
}

export interface CacheStats {
  slots: number;
  blockSize: number;
  budgetBytes: number;
  resident: number;
  dirty: number;
  pinned: number;
  hits: number;
  misses: number;
  evictions: number;
  readRequests: number;
  readBlocks: number;
  readErrors: number;
  writeRequests: number;
  writeBlocks: number;
  writeErrors: number;
}

interface Lane {
  readonly data: number;
  readonly list: number;
}

const noop = (): void => {};

/**
 * What a synchronous walk over cached blocks (bmap, htree, directory lookups) answers when
 * it needs a block that is not resident: the block to read. Walks are written once, in
 * this synchronous form, so that the common case — every block already cached — costs
 * no promise at all; `BlockCache.resident` turns such a walk into the waiting version.
 */
export class Missing {
  constructor(readonly blk: number) {}
}

/** Anything a device threw, as an FsError (device FsErrors pass through unchanged). */
function deviceError(e: unknown, syscall: string, what: string): FsError {
  if (e instanceof FsError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new FsError("EIO", `${what}: ${msg}`, { syscall, cause: e });
}

export class BlockCache {
  readonly blockSize: number;
  readonly budgetBytes: number;
  /** Slot count chosen by the engine (at least its CACHE_MIN_SLOTS, whatever the budget). */
  readonly slots: number;

  private readonly engine: Engine;
  private readonly device: BlockDevice;
  private readonly x: Engine["x"];
  private readonly arena: number;
  private readonly listPtr: number;
  private readonly listBlkPtr: number;
  private readonly laneBlocks: number;
  private readonly laneCount: number;
  private readonly freeLanes: Lane[] = [];
  private readonly laneWaiters: ((lane: Lane) => void)[] = [];
  private readonly VALID: number;
  private readonly IO: number;
  private readonly CHECKED: number;
  private readonly SHAPED: number;
  /** Per slot: the owner (inode number, generation) a CHECKED slot was verified for. */
  private readonly checkedIno: Uint32Array;
  private readonly checkedGen: Uint32Array;
  private readonly INVAL_DONE: number;
  private readonly INVAL_ABSENT: number;
  private readonly INVAL_PINNED: number;

  /** Block number → the read that will fill it (shared by every waiter). */
  private readonly reading = new Map<number, Promise<void>>();
  /** Every device request in flight (reads and writes). */
  private readonly io = new Set<Promise<unknown>>();
  /** The write-outs among them. */
  private readonly writes = new Set<Promise<unknown>>();

  private readRequests = 0;
  private readBlocks = 0;
  private readErrors = 0;
  private writeErrors = 0;

  /** Build the cache in `engine` (once per engine instance) for `device`. */
  constructor(engine: Engine, device: BlockDevice, blockSize: number, budgetBytes: number, opts: BlockCacheOptions = {}) {
    if (!Number.isInteger(blockSize) || blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) !== 0) {
      throw new FsError("EINVAL", `bad cache block size ${blockSize}`);
    }
    if (typeof budgetBytes !== "number" || !(budgetBytes >= 0)) {
      throw new FsError("EINVAL", `bad cache budget ${budgetBytes}`);
    }
    const staging = opts.stagingBytes ?? 0;
    if (!Number.isInteger(staging) || staging < 0 || staging > 0xffffffff) {
      throw new FsError("EINVAL", `bad cache staging size ${staging}`);
    }
    const maxInFlight = opts.maxInFlight ?? 4;
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new FsError("EINVAL", `bad cache maxInFlight ${maxInFlight}`);
    }
    this.engine = engine;
    this.device = device;
    this.x = engine.x;
    this.blockSize = blockSize;
    this.budgetBytes = budgetBytes;
    const x = this.x;
    const slots = engine.call(() => x.cacheInit(budgetBytes, blockSize, staging) as number);
    if (slots === 0) throw new FsError("EINVAL", "this engine instance already has a block cache");
    this.slots = slots;
    this.arena = x.cacheSlotPtr(0);
    this.listPtr = x.cacheListPtr();
    this.listBlkPtr = x.cacheListBlkPtr();
    this.VALID = engine.constant("CACHE_VALID");
    this.IO = engine.constant("CACHE_IO");
    this.CHECKED = engine.constant("CACHE_CHECKED");
    this.SHAPED = engine.constant("CACHE_SHAPED");
    this.checkedIno = new Uint32Array(slots);
    this.checkedGen = new Uint32Array(slots);
    this.INVAL_DONE = engine.constant("CACHE_INVAL_DONE");
    this.INVAL_ABSENT = engine.constant("CACHE_INVAL_ABSENT");
    this.INVAL_PINNED = engine.constant("CACHE_INVAL_PINNED");

    const stagingBlocks = x.cacheStagingBytes() / blockSize;
    this.laneCount = Math.min(maxInFlight, stagingBlocks);
    this.laneBlocks = Math.floor(stagingBlocks / this.laneCount);
    const sp = x.cacheStagingPtr();
    const lp = x.cacheRunListPtr();
    for (let i = 0; i < this.laneCount; i++) {
      this.freeLanes.push({ data: sp + i * this.laneBlocks * blockSize, list: lp + i * this.laneBlocks * 4 });
    }
  }

  /** The block, read from the device if needed, pinned. Concurrent gets share one read. */
  async get(blk: number): Promise<CacheRef> {
    // The engine converts f64 to u64 saturating (NaN and -1 become block 0): screen first.
    if (!Number.isSafeInteger(blk) || blk < 0) this.check(blk, 1, "read");
    const hit = this.x.cacheLookupPin(blk);
    if (hit >= 0) return this.ref(hit, blk);
    this.check(blk, 1, "read");
    const slot = await this.pinSlot(blk);
    if (this.x.cacheSlotFlags(slot) & this.VALID) return this.ref(slot, blk);
    const pending = this.reading.get(blk) ?? this.startRead(blk, [slot]);
    try {
      await pending;
    } catch (e) {
      this.x.cacheUnpin(slot);
      throw e;
    }
    return this.ref(slot, blk);
  }

  /** The block if it is resident and valid (pinned), without I/O; undefined otherwise. */
  peek(blk: number): CacheRef | undefined {
    if (!Number.isSafeInteger(blk) || blk < 0) return undefined;
    const s = this.x.cacheLookupPin(blk);
    return s >= 0 ? this.ref(s, blk) : undefined;
  }

  /**
   * Run `walk` — synchronous, reading blocks with peek, answering Missing for a block
   * that is not resident — until it answers something else: each missing block is read,
   * kept pinned (so it is still resident when the walk runs again) and the walk re-run
   * from its start. The walk must therefore change nothing before it has every block it
   * needs. Its blocks are few (a tree's depth), so the re-runs cost engine calls, not
   * I/O; a walk that asks twice for a block it holds is broken, and fails with EIO
   * rather than spinning. Pins are dropped when the result is in. Any caller.
   */
  async resident<T>(walk: () => T | Missing): Promise<T> {
    let held: CacheRef[] | undefined;
    try {
      for (;;) {
        const r = walk();
        if (!(r instanceof Missing)) return r;
        if (held?.some((ref) => ref.blk === r.blk)) throw new FsError("EIO", `block ${r.blk} was read but the walk still misses it`);
        (held ??= []).push(await this.get(r.blk));
      }
    } finally {
      if (held) for (const ref of held) this.release(ref);
    }
  }

  /**
   * A pinned slot for a block the caller will overwrite completely: no device read; the
   * slot is zero-filled, valid and already dirty (so it can never be dropped as clean).
   */
  async getNew(blk: number): Promise<CacheRef> {
    this.check(blk, 1, "write");
    for (;;) {
      const pending = this.reading.get(blk);
      if (pending) {
        // A read is filling the slot from the device; let it land before we overwrite it.
        await pending.catch(noop);
        continue;
      }
      const slot = await this.pinSlot(blk);
      if (this.reading.has(blk)) {
        this.x.cacheUnpin(slot);
        continue;
      }
      return this.zeroed(slot, blk);
    }
  }

  /**
   * getNew without waiting: the pinned, zero-filled, dirty slot when one can be had at
   * once (a free or clean slot, no read of blk in flight), else undefined with nothing
   * done (then call getNew). Any caller.
   */
  getNewResident(blk: number): CacheRef | undefined {
    this.check(blk, 1, "write");
    if (this.reading.has(blk)) return undefined;
    const slot: number = this.x.cacheAcquire(blk);
    if (slot < 0) return undefined;
    this.x.cachePin(slot);
    return this.zeroed(slot, blk);
  }

  // The pinned slot for blk, zero-filled, valid and dirty (getNew's contract).
  private zeroed(slot: number, blk: number): CacheRef {
    const ptr = this.arena + slot * this.blockSize;
    // fill() on a view of just the block: with a range on the view of all memory, V8
    // takes a path several times slower.
    this.engine.bytes(ptr, this.blockSize).fill(0);
    this.x.cacheMarkValid(slot);
    this.x.cacheMarkDirty(slot);
    return { slot, ptr, blk };
  }

  /**
   * Verify-once: true when `markVerified(ref, ino, gen)` was called for this slot, with
   * the same owner, since the slot was last filled from the device. Callers whose check
   * is a checksum seeded by the owning inode skip it then: a resident block only changes
   * through our own code, which keeps its checksum right. The engine clears the flag on
   * every fill (eviction + re-read included), so data from the device is always checked.
   * The owner is compared too, so a block cross-linked into two directories of a
   * damaged image is still caught when the second one reads it. Holder of a pin only.
   */
  isVerified(ref: CacheRef, ino: number, gen: number): boolean {
    const s = ref.slot;
    return (this.x.cacheSlotFlags(s) & this.CHECKED) !== 0 && this.checkedIno[s] === ino >>> 0 && this.checkedGen[s] === gen >>> 0;
  }

  /** Record that the pinned block's contents passed the owner's verification. */
  markVerified(ref: CacheRef, ino: number, gen: number): void {
    const s = ref.slot;
    this.x.cacheMarkChecked(s);
    this.checkedIno[s] = ino >>> 0;
    this.checkedGen[s] = gen >>> 0;
  }

  /**
   * Check-once for structure: true when `markShaped(ref)` was called since the slot was
   * last filled from the device. Directory code passes it to the engine as `shaped`, which
   * then re-walks only the record chain's geometry instead of every name (assembly/dir.ts
   * says why that stays safe). Separate from isVerified: a block can carry a valid checksum
   * and still be malformed. Not tied to an owner — the structure rules do not depend on
   * which directory holds the block. Holder of a pin only.
   */
  isShaped(ref: CacheRef): boolean {
    return (this.x.cacheSlotFlags(ref.slot) & this.SHAPED) !== 0;
  }

  /** Record that the pinned block passed the full directory-block check (engine result >= -1). */
  markShaped(ref: CacheRef): void {
    this.x.cacheMarkShaped(ref.slot);
  }

  /** Drop a pin taken by get/getNew/peek. */
  release(ref: CacheRef | number): void {
    const slot = typeof ref === "number" ? ref : ref.slot;
    if (this.x.cacheUnpin(slot) < 0) throw new FsError("EINVAL", `cache slot ${slot} released but not pinned`);
  }

  /** Run fn with the block pinned; released however fn ends. */
  async with<T>(blk: number, fn: (ref: CacheRef) => T | Promise<T>): Promise<T> {
    const ref = await this.get(blk);
    try {
      return await fn(ref);
    } finally {
      this.release(ref);
    }
  }

  /** A view of a pinned block's bytes (re-take it after anything that may grow memory). */
  bytes(ref: CacheRef): Uint8Array {
    return this.engine.bytes(ref.ptr, this.blockSize);
  }

  /** Record that the holder changed a pinned block. */
  markDirty(ref: CacheRef | number): void {
    const slot = typeof ref === "number" ? ref : ref.slot;
    if (this.x.cacheMarkDirty(slot) < 0) throw new FsError("EINVAL", `cache slot ${slot} marked dirty but holds no valid block`);
  }

  /**
   * Readahead: bring [first, first+count) into the cache, one device request per run of
   * missing consecutive blocks (runs are capped at one staging lane). Best effort on
   * space: stops early, without writing anything back, when no slot is free. Rejects with
   * the first device error after every run has settled.
   */
  async readRun(first: number, count: number): Promise<void> {
    this.check(first, count, "read");
    const jobs: Promise<void>[] = [];
    const end = first + count;
    let b = first;
    while (b < end) {
      if (!this.missing(b)) {
        b++;
        continue;
      }
      const start = b;
      const slots: number[] = [];
      while (b < end && slots.length < this.laneBlocks && this.missing(b)) {
        const s = this.x.cacheAcquire(b);
        if (s < 0) break;
        slots.push(s);
        b++;
      }
      if (slots.length === 0) break;
      jobs.push(this.startRead(start, slots));
    }
    const results = await Promise.allSettled(jobs);
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }

  /**
   * Write dirty blocks: claim them sorted by block number, one device write per run of
   * consecutive blocks, up to maxInFlight runs at once. A block is clean only once its
   * write resolved and it was not changed meanwhile. Returns the blocks written; rejects
   * with EIO (blocks left dirty) if a write failed.
   */
  async writeback(opts: WritebackOptions = {}): Promise<number> {
    const all = opts.all ?? false;
    let budget = opts.maxBlocks ?? Infinity;
    if (!(budget >= 0)) throw new FsError("EINVAL", `bad writeback maxBlocks ${opts.maxBlocks}`);
    let written = 0;
    let failure: unknown;
    while (budget > 0) {
      const n: number = this.x.cacheCollectDirty(Math.min(budget, this.slots));
      if (n === 0) {
        if (all && this.writes.size > 0) {
          // Someone else's write-out holds blocks we must see written before we return.
          await Promise.allSettled([...this.writes]);
          continue;
        }
        break;
      }
      budget -= n;
      const buf = this.engine.x.memory.buffer;
      const slots = new Int32Array(buf, this.listPtr, n).slice();
      const blks = new Float64Array(buf, this.listBlkPtr, n).slice();
      const jobs: Promise<number>[] = [];
      for (let i = 0; i < n; ) {
        let j = i + 1;
        while (j < n && j - i < this.laneBlocks && blks[j] === blks[j - 1]! + 1) j++;
        const lane = await this.takeLane();
        const job = this.writeRun(lane, slots, blks[i]!, i, j - i);
        this.track(job, this.writes);
        jobs.push(job);
        i = j;
      }
      for (const r of await Promise.allSettled(jobs)) {
        if (r.status === "fulfilled") written += r.value;
        else failure ??= r.reason;
      }
      if (failure !== undefined || !all) break;
    }
    if (failure !== undefined) throw failure;
    return written;
  }

  /** Write back everything, then make it durable (device flush). */
  async flush(): Promise<void> {
    await this.writeback({ all: true });
    try {
      await this.device.flush();
    } catch (e) {
      throw deviceError(e, "fsync", "device flush failed");
    }
  }

  /**
   * Forget a block, discarding unwritten changes (it was freed, or the device changed
   * under us). Waits for I/O in flight on it; EBUSY if someone holds it pinned.
   * Resolves true if it was cached.
   */
  async invalidate(blk: number): Promise<boolean> {
    if (!Number.isSafeInteger(blk) || blk < 0) throw new FsError("EINVAL", `bad block number ${blk}`);
    for (;;) {
      const r: number = this.x.cacheInvalidate(blk);
      if (r === this.INVAL_DONE) return true;
      if (r === this.INVAL_ABSENT) return false;
      if (r === this.INVAL_PINNED) throw new FsError("EBUSY", `block ${blk} is in use and cannot be dropped from the cache`);
      const pending = this.reading.get(blk) ?? (this.io.size > 0 ? Promise.race(this.io) : undefined);
      if (!pending) throw new FsError("EIO", `block ${blk} is marked busy with no request in flight`);
      await pending.catch(noop);
    }
  }

  /**
   * invalidate() for blocks [first, first+count), e.g. before data is written around the
   * cache. Blocks that are not cached (nearly all, for file data) cost one engine call
   * each and no await; only a block with I/O in flight is waited for. Same errors.
   * waitPins: a block someone holds pinned is retried on later turns instead of failing
   * at once — lock-free readers pin a block only for one fetch and copy, so a writer
   * overwriting or freeing it waits them out (EBUSY after ~1,000 turns).
   */
  async invalidateRange(first: number, count: number, waitPins = false): Promise<void> {
    for (let b = first; b < first + count; b++) {
      if (!Number.isSafeInteger(b) || b < 0) throw new FsError("EINVAL", `bad block number ${b}`);
      const r: number = this.x.cacheInvalidate(b);
      if (r === this.INVAL_DONE || r === this.INVAL_ABSENT) continue;
      for (let turn = 0; ; turn++) {
        try {
          await this.invalidate(b);
          break;
        } catch (e) {
          if (!waitPins || !(e instanceof FsError && e.code === "EBUSY") || turn >= 1000) throw e;
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
    }
  }

  stats(): CacheStats {
    const x = this.x;
    return {
      slots: this.slots,
      blockSize: this.blockSize,
      budgetBytes: this.budgetBytes,
      resident: x.cacheResidentCount(),
      dirty: x.cacheDirtyCount(),
      pinned: x.cachePinnedCount(),
      hits: x.cacheStat(this.engine.constant("CACHE_STAT_HITS")),
      misses: x.cacheStat(this.engine.constant("CACHE_STAT_MISSES")),
      evictions: x.cacheStat(this.engine.constant("CACHE_STAT_EVICTIONS")),
      readRequests: this.readRequests,
      readBlocks: this.readBlocks,
      readErrors: this.readErrors,
      writeRequests: x.cacheStat(this.engine.constant("CACHE_STAT_WB_REQUESTS")),
      writeBlocks: x.cacheStat(this.engine.constant("CACHE_STAT_WB_BLOCKS")),
      writeErrors: this.writeErrors,
    };
  }

  private ref(slot: number, blk: number): CacheRef {
    return { slot, ptr: this.arena + slot * this.blockSize, blk };
  }

  private check(blk: number, count: number, syscall: string): void {
    if (!Number.isSafeInteger(blk) || blk < 0 || !Number.isSafeInteger(count) || count < 1) {
      throw new FsError("EINVAL", `bad block range ${blk}+${count}`, { syscall });
    }
    const blocks = Math.floor(this.device.size / this.blockSize);
    if (blk + count > blocks) {
      throw new FsError("EINVAL", `blocks ${blk}+${count} are past the end of the device (${blocks} blocks)`, { syscall });
    }
  }

  /** Neither valid nor being read: readahead should fetch it. */
  private missing(blk: number): boolean {
    const s: number = this.x.cacheProbe(blk);
    return s < 0 || (this.x.cacheSlotFlags(s) & (this.VALID | this.IO)) === 0;
  }

  /** Acquire and pin the slot for blk, making room (write-out, waiting for I/O) as needed. */
  private async pinSlot(blk: number): Promise<number> {
    for (let round = 0; ; round++) {
      const s: number = this.x.cacheAcquire(blk);
      if (s >= 0) {
        this.x.cachePin(s);
        return s;
      }
      if (this.x.cachePinnedCount() >= this.slots) {
        throw new FsError("ENOMEM", `block cache too small: all ${this.slots} slots pinned`);
      }
      // Every unpinned slot is dirty or busy. Writing back cleans the dirty ones; the
      // round cap only guards against a holder re-dirtying unpinned slots forever.
      if (round > 1000) throw new FsError("ENOMEM", `block cache cannot free a slot after ${round} write-outs`);
      // One round of lanes: enough to batch, small enough to keep this get's latency low.
      const wrote = await this.writeback({ maxBlocks: this.laneBlocks * this.laneCount });
      if (wrote > 0) continue;
      if (this.io.size > 0) await Promise.race(this.io).catch(noop);
      else await Promise.resolve(); // the claimed blocks are queued for a lane; let them go
    }
  }

  /**
   * Start one device read filling `slots` with blocks first.. (already acquired, not
   * valid). Registers the shared promise for every block before returning.
   */
  private startRead(first: number, slots: number[]): Promise<void> {
    for (const s of slots) this.x.cacheSetIo(s);
    const p = this.readInto(first, slots).finally(() => {
      for (let i = 0; i < slots.length; i++) this.reading.delete(first + i);
    });
    for (let i = 0; i < slots.length; i++) this.reading.set(first + i, p);
    this.track(p);
    return p;
  }

  private async readInto(first: number, slots: number[]): Promise<void> {
    const x = this.x;
    const n = slots.length;
    const bs = this.blockSize;
    let adjacent = true;
    for (let i = 1; i < n && adjacent; i++) adjacent = slots[i] === slots[0]! + i;
    try {
      if (adjacent) {
        await this.deviceRead(first * bs, this.arena + slots[0]! * bs, n * bs);
        for (const s of slots) {
          x.cacheMarkValid(s);
          x.cacheClearIo(s);
        }
      } else {
        const lane = await this.takeLane();
        try {
          new Int32Array(this.engine.x.memory.buffer, lane.list, n).set(slots);
          await this.deviceRead(first * bs, lane.data, n * bs);
          x.cacheScatter(lane.list, 0, n, lane.data);
        } finally {
          this.releaseLane(lane);
        }
      }
    } catch (e) {
      for (const s of slots) x.cacheClearIo(s);
      this.readErrors++;
      throw deviceError(e, "read", `device read of blocks ${first}..${first + n - 1} failed`);
    }
    this.readRequests++;
    this.readBlocks += n;
  }

  /**
   * device.read into linear memory. If memory grew while the request was in flight, the
   * view it filled was detached (length 0 now) and the data went nowhere: read again.
   */
  private async deviceRead(offset: number, ptr: number, len: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const view = this.engine.bytes(ptr, len);
      await this.device.read(offset, view);
      if (view.byteLength === len) return;
      if (attempt >= 2) throw new FsError("EIO", "engine memory kept growing during device reads");
    }
  }

  private async writeRun(lane: Lane, slots: Int32Array, firstBlk: number, from: number, count: number): Promise<number> {
    const x = this.x;
    const bs = this.blockSize;
    let ok = 0;
    try {
      new Int32Array(this.engine.x.memory.buffer, lane.list, count).set(slots.subarray(from, from + count));
      try {
        if (x.cacheGather(lane.list, 0, count, lane.data) !== count) throw new Error("bad slot in write-out list");
        await this.device.write(firstBlk * bs, this.engine.bytes(lane.data, count * bs));
        ok = 1;
      } finally {
        x.cacheWriteEnd(lane.list, 0, count, ok);
      }
      return count;
    } catch (e) {
      this.writeErrors++;
      const msg = e instanceof Error ? e.message : String(e);
      throw new FsError("EIO", `write-out of blocks ${firstBlk}..${firstBlk + count - 1} failed (left dirty): ${msg}`, {
        syscall: "write",
        cause: e,
      });
    } finally {
      this.releaseLane(lane);
    }
  }

  private takeLane(): Promise<Lane> {
    const lane = this.freeLanes.pop();
    if (lane) return Promise.resolve(lane);
    return new Promise((resolve) => this.laneWaiters.push(resolve));
  }

  private releaseLane(lane: Lane): void {
    const next = this.laneWaiters.shift();
    if (next) next(lane);
    else this.freeLanes.push(lane);
  }

  private track(p: Promise<unknown>, also?: Set<Promise<unknown>>): void {
    this.io.add(p);
    also?.add(p);
    const done = (): void => {
      this.io.delete(p);
      also?.delete(p);
    };
    p.then(done, done);
  }
}
