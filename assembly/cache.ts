// The block cache index: which device block lives in which slot of an arena inside
// linear memory, in what state, and in what order the slots were last used.
//
// Why it lives in Wasm: every metadata block (bitmaps, inode tables, extent nodes,
// directory blocks) is parsed and edited by AssemblyScript code. Keeping the blocks in
// linear memory lets that code work on them in place, and lets a device read land
// straight in a view of the slot; nothing is copied across the boundary. The bindings
// (bindings/cache.ts) drive the I/O; this file only keeps the books, so every function
// here is synchronous, allocation-free after `cacheInit`, and bounded by the slot count.
//
// Why module globals: one engine instance serves one volume, so there is exactly one
// cache per instance, set up once by `cacheInit` (a second call is refused) with
// everything allocated from the stub runtime's bump heap. Memory never grows after that
// on our account, so slot pointers stay fixed for the life of the instance.
//
// Ownership rules the bindings follow (and the functions below enforce where cheap):
//   - a slot with pins > 0 is held by someone: never evicted, never invalidated;
//   - a slot with IO set has a device request in flight that uses it (a read into the
//     slot, or a write-out claimed by `cacheCollectDirty`): never evicted, never
//     invalidated, never claimed twice for write-out;
//   - a DIRTY slot holds data newer than the device: never evicted; it leaves only
//     through write-out (or `cacheMarkClean` / `cacheInvalidate`, which discard it);
//   - every `cacheMarkDirty` bumps the slot's generation; `cacheGather` records the
//     generation it copied, and `cacheWriteEnd` clears DIRTY only if no later change
//     happened while the write was in flight, so a re-dirtied block is written again.
//
// Memory layout (all allocated in cacheInit, each region aligned as noted):
//
//   arena   (64-aligned)  slot 0 data | slot 1 data | ... | slot n-1 data   n × blockSize
//   meta    (16-aligned)  32 bytes per slot:
//             +0  u64  blk    block number held (meaningful while INUSE)
//             +8  i32  prev   LRU neighbour towards the MRU end (-1 = none)
//             +12 i32  next   LRU neighbour towards the LRU end; free-list link when free
//             +16 u32  pins   holders' reference count
//             +20 u32  flags  VALID | DIRTY | IO | INUSE | CHECKED
//             +24 u32  gen    bumped by every markDirty
//             +28 u32  wgen   gen copied by the last cacheGather
//   table   (16-aligned)  i32 slot per bucket, -1 = empty; size 2^k ≥ 2n (load ≤ 1/2)
//   list    (16-aligned)  u32 × n  slot indices returned by cacheCollectDirty
//   listBlk (16-aligned)  f64 × n  their block numbers, same order (sorted ascending)
//   staging (64-aligned)  stagingBytes  gather/scatter area for multi-block requests
//   runList (16-aligned)  u32 × (stagingBytes / blockSize)  slot lists for those requests
//
// The LRU is one doubly-linked list of every INUSE slot, MRU at the head. Free slots
// (never used, or invalidated) sit on a singly-linked free list and are taken first.

const META_SIZE: usize = 32;
const M_BLK: usize = 0;
const M_PREV: usize = 8;
const M_NEXT: usize = 12;
const M_PINS: usize = 16;
const M_FLAGS: usize = 20;
const M_GEN: usize = 24;
const M_WGEN: usize = 28;

/** Slot holds the block's current contents (read, or filled by the owner). */
export const CACHE_VALID: u32 = 1;
/** Slot holds data the device does not have yet. */
export const CACHE_DIRTY: u32 = 2;
/** A device request that uses the slot is in flight. */
export const CACHE_IO: u32 = 4;
/** Slot is in the hash table and the LRU (not on the free list). */
export const CACHE_INUSE: u32 = 8;

/**
 * The bindings verified the slot's contents (a checksum, say) since it was last filled
 * from the device. Why the engine keeps it: only the engine knows when a slot is refilled
 * — every fresh slot from cacheAcquire starts with this flag clear — so a block evicted
 * and read again (perhaps changed on the device meanwhile) is always verified again,
 * while a block that stays resident is verified once instead of on every lookup.
 */
export const CACHE_CHECKED: u32 = 16;

/**
 * The bindings checked the slot's structure (a directory leaf's record chain, say) since
 * it was last filled from the device. Kept apart from CACHE_CHECKED because a valid
 * checksum does not make a block well-formed (a hostile image can checksum garbage), and
 * cleared by the same fills, so contents from the device are always checked in full once.
 * Our own edits keep blocks well-formed, so unlike a checksum nothing else clears it.
 */
export const CACHE_SHAPED: u32 = 32;

/** The cache always has at least this many slots, however small the budget. */
export const CACHE_MIN_SLOTS: u32 = 64;
/** Cap on the data arena: wasm32 memory is 4 GiB and a volume shares it with the rest. */
export const CACHE_MAX_ARENA: u32 = 1 << 30;
/** Default staging area when cacheInit is given 0. */
export const CACHE_DEFAULT_STAGING: u32 = 1 << 20;
const MAX_STAGING: u32 = 64 << 20;

/** cacheStat selectors. */
export const CACHE_STAT_HITS: i32 = 0;
export const CACHE_STAT_MISSES: i32 = 1;
export const CACHE_STAT_EVICTIONS: i32 = 2;
export const CACHE_STAT_WB_BLOCKS: i32 = 3;
export const CACHE_STAT_WB_REQUESTS: i32 = 4;

/** cacheInvalidate results. */
export const CACHE_INVAL_ABSENT: i32 = 0;
export const CACHE_INVAL_DONE: i32 = 1;
export const CACHE_INVAL_PINNED: i32 = -1;
export const CACHE_INVAL_IO: i32 = -2;

let nSlots: u32 = 0;
let bsize: u32 = 0;
let bshift: u32 = 0;
let arena: usize = 0;
let meta: usize = 0;
let table: usize = 0;
let tableMask: u32 = 0;
let list: usize = 0;
let listBlk: usize = 0;
let staging: usize = 0;
let stagingBytes: u32 = 0;
let runList: usize = 0;

let lruHead: i32 = -1;
let lruTail: i32 = -1;
let freeHead: i32 = -1;
let dirtyCount: u32 = 0;
let pinnedCount: u32 = 0;
let residentCount: u32 = 0;

let statHits: u64 = 0;
let statMisses: u64 = 0;
let statEvictions: u64 = 0;
let statWbBlocks: u64 = 0;
let statWbRequests: u64 = 0;

function allocAligned(size: usize, align: usize): usize {
  const p = heap.alloc(size + align - 1);
  return (p + align - 1) & ~(align - 1);
}

// @ts-ignore: decorator
@inline function m(slot: i32): usize {
  return meta + (<usize>slot) * META_SIZE;
}

// Slot indices arrive from JS; one unsigned compare keeps a bad one from touching
// memory outside the metadata array.
// @ts-ignore: decorator
@inline function badSlot(slot: i32): bool {
  return <u32>slot >= nSlots;
}

// A 64-bit finaliser (xor-shift / multiply rounds) so that runs of consecutive block
// numbers, the common case, spread over the whole table instead of clustering.
// @ts-ignore: decorator
@inline function bucketOf(blk: u64): u32 {
  let h = blk;
  h ^= h >>> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >>> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >>> 33;
  return <u32>h & tableMask;
}

// @ts-ignore: decorator
@inline function bucket(i: u32): usize {
  return table + ((<usize>i) << 2);
}

/** Table index holding blk, or -1. The table is at most half full, so an empty bucket ends every probe. */
function findIndex(blk: u64): i32 {
  let i = bucketOf(blk);
  while (true) {
    const s = load<i32>(bucket(i));
    if (s < 0) return -1;
    if (load<u64>(m(s), M_BLK) == blk) return <i32>i;
    i = (i + 1) & tableMask;
  }
}

function find(blk: u64): i32 {
  const i = findIndex(blk);
  return i < 0 ? -1 : load<i32>(bucket(<u32>i));
}

function tableInsert(slot: i32, blk: u64): void {
  let i = bucketOf(blk);
  while (load<i32>(bucket(i)) >= 0) i = (i + 1) & tableMask;
  store<i32>(bucket(i), slot);
}

// Backward-shift deletion: walk the cluster after the hole and pull back every entry
// whose home bucket does not lie cyclically in (hole, position], so no probe sequence
// is broken and no tombstones accumulate.
function tableRemoveAt(hole: u32): void {
  let j = hole;
  while (true) {
    j = (j + 1) & tableMask;
    const s = load<i32>(bucket(j));
    if (s < 0) break;
    const home = bucketOf(load<u64>(m(s), M_BLK));
    const stays = hole <= j ? home > hole && home <= j : home > hole || home <= j;
    if (!stays) {
      store<i32>(bucket(hole), s);
      hole = j;
    }
  }
  store<i32>(bucket(hole), -1);
}

function lruUnlink(s: i32): void {
  const p = load<i32>(m(s), M_PREV);
  const n = load<i32>(m(s), M_NEXT);
  if (p >= 0) store<i32>(m(p), n, M_NEXT);
  else lruHead = n;
  if (n >= 0) store<i32>(m(n), p, M_PREV);
  else lruTail = p;
}

function lruPushHead(s: i32): void {
  store<i32>(m(s), -1, M_PREV);
  store<i32>(m(s), lruHead, M_NEXT);
  if (lruHead >= 0) store<i32>(m(lruHead), s, M_PREV);
  lruHead = s;
  if (lruTail < 0) lruTail = s;
}

function touch(s: i32): void {
  if (lruHead == s) return;
  lruUnlink(s);
  lruPushHead(s);
}

/**
 * Set up the cache once: slots = budget / blockSize clamped to [CACHE_MIN_SLOTS,
 * CACHE_MAX_ARENA / blockSize]; stagingBytes 0 means CACHE_DEFAULT_STAGING (rounded down
 * to whole blocks, capped at 64 MiB). Returns the slot count, or 0 if blockSize is not a
 * power of two in [512, 65536] or the cache was already set up.
 */
export function cacheInit(budgetBytes: f64, blockSize: u32, stagingSize: u32): u32 {
  if (nSlots != 0) return 0;
  if (blockSize < 512 || blockSize > 65536 || (blockSize & (blockSize - 1)) != 0) return 0;
  const maxSlots = CACHE_MAX_ARENA / blockSize;
  let want: f64 = budgetBytes > 0 ? Math.floor(budgetBytes / <f64>blockSize) : 0;
  if (!(want >= <f64>CACHE_MIN_SLOTS)) want = <f64>CACHE_MIN_SLOTS; // also catches NaN
  const n: u32 = want > <f64>maxSlots ? maxSlots : <u32>want;

  if (stagingSize == 0) stagingSize = CACHE_DEFAULT_STAGING;
  if (stagingSize > MAX_STAGING) stagingSize = MAX_STAGING;
  stagingSize &= ~(blockSize - 1);
  if (stagingSize < blockSize) stagingSize = blockSize;

  let tsize: u32 = 1;
  while (tsize < n * 2) tsize <<= 1;

  bsize = blockSize;
  bshift = ctz(blockSize);
  arena = allocAligned((<usize>n) << bshift, 64);
  meta = allocAligned((<usize>n) * META_SIZE, 16);
  table = allocAligned((<usize>tsize) << 2, 16);
  tableMask = tsize - 1;
  list = allocAligned((<usize>n) << 2, 16);
  listBlk = allocAligned((<usize>n) << 3, 16);
  staging = allocAligned(stagingSize, 64);
  stagingBytes = stagingSize;
  runList = allocAligned((<usize>(stagingSize >>> bshift)) << 2, 16);

  memory.fill(meta, 0, (<usize>n) * META_SIZE);
  memory.fill(table, 0xff, (<usize>tsize) << 2);
  // Free list in slot order, so a fresh cache hands out adjacent slots to a run of
  // misses and a run read can go straight into the arena.
  for (let s: u32 = 0; s < n; s++) store<i32>(m(<i32>s), s + 1 < n ? <i32>(s + 1) : -1, M_NEXT);
  freeHead = 0;
  lruHead = -1;
  lruTail = -1;
  nSlots = n;
  return n;
}

/** Number of slots (0 before cacheInit). */
export function cacheSlots(): u32 {
  return nSlots;
}

/** Block size given to cacheInit. */
export function cacheBlockSize(): u32 {
  return bsize;
}

/** Slot holding blk if resident and VALID (counted as a hit, moved to MRU), else -1. */
export function cacheLookup(blk: f64): i32 {
  const s = find(<u64>blk);
  if (s < 0 || (load<u32>(m(s), M_FLAGS) & CACHE_VALID) == 0) return -1;
  statHits++;
  touch(s);
  return s;
}

/** cacheLookup that also pins the slot it returns: the bindings' one-call hit path. */
export function cacheLookupPin(blk: f64): i32 {
  const s = cacheLookup(blk);
  if (s >= 0) {
    const pins = load<u32>(m(s), M_PINS);
    if (pins == 0) pinnedCount++;
    store<u32>(m(s), pins + 1, M_PINS);
  }
  return s;
}

/** Slot holding blk in any state, or -1; touches neither the LRU nor the counters. */
export function cacheProbe(blk: f64): i32 {
  return find(<u64>blk);
}

/**
 * The slot for blk, made MRU: the resident one (a hit if VALID), else a fresh one from
 * the free list or by evicting the least recently used slot that is clean, unpinned and
 * has no I/O in flight (a miss; the fresh slot is not VALID). -1 if no slot can be
 * evicted: the bindings must write back or wait for I/O and retry.
 */
export function cacheAcquire(blk: f64): i32 {
  const key = <u64>blk;
  let s = find(key);
  if (s >= 0) {
    if (load<u32>(m(s), M_FLAGS) & CACHE_VALID) statHits++;
    else statMisses++;
    touch(s);
    return s;
  }
  if (freeHead >= 0) {
    s = freeHead;
    freeHead = load<i32>(m(s), M_NEXT);
    residentCount++;
  } else {
    s = lruTail;
    while (s >= 0) {
      const mp = m(s);
      if ((load<u32>(mp, M_FLAGS) & (CACHE_DIRTY | CACHE_IO)) == 0 && load<u32>(mp, M_PINS) == 0) break;
      s = load<i32>(mp, M_PREV);
    }
    if (s < 0) return -1;
    const hole = findIndex(load<u64>(m(s), M_BLK));
    if (hole >= 0) tableRemoveAt(<u32>hole);
    lruUnlink(s);
    statEvictions++;
  }
  statMisses++;
  const mp = m(s);
  store<u64>(mp, key, M_BLK);
  store<u32>(mp, 0, M_PINS);
  store<u32>(mp, CACHE_INUSE, M_FLAGS);
  store<u32>(mp, 0, M_GEN);
  store<u32>(mp, 0, M_WGEN);
  tableInsert(s, key);
  lruPushHead(s);
  return s;
}

/** Data pointer of a slot (valid for the life of the instance; 0 for a bad index). */
export function cacheSlotPtr(slot: i32): usize {
  if (badSlot(slot)) return 0;
  return arena + ((<usize>slot) << bshift);
}

/** Block number a slot holds (-1 if it is free or the index is bad). */
export function cacheSlotBlock(slot: i32): f64 {
  if (badSlot(slot) || (load<u32>(m(slot), M_FLAGS) & CACHE_INUSE) == 0) return -1;
  return <f64>load<u64>(m(slot), M_BLK);
}

/** A slot's flag word (CACHE_VALID | CACHE_DIRTY | CACHE_IO | CACHE_INUSE | CACHE_CHECKED | CACHE_SHAPED); 0 for a bad index. */
export function cacheSlotFlags(slot: i32): u32 {
  if (badSlot(slot)) return 0;
  return load<u32>(m(slot), M_FLAGS);
}

/** A slot's pin count. */
export function cacheSlotPins(slot: i32): u32 {
  if (badSlot(slot)) return 0;
  return load<u32>(m(slot), M_PINS);
}

/** Take a reference on an in-use slot; returns the new count, or -1 if the slot is not in use. */
export function cachePin(slot: i32): i32 {
  if (badSlot(slot) || (load<u32>(m(slot), M_FLAGS) & CACHE_INUSE) == 0) return -1;
  const pins = load<u32>(m(slot), M_PINS);
  if (pins == 0) pinnedCount++;
  store<u32>(m(slot), pins + 1, M_PINS);
  return <i32>(pins + 1);
}

/** Drop a reference; returns the new count, or -1 if the slot was not pinned (a caller bug). */
export function cacheUnpin(slot: i32): i32 {
  if (badSlot(slot)) return -1;
  const pins = load<u32>(m(slot), M_PINS);
  if (pins == 0) return -1;
  if (pins == 1) pinnedCount--;
  store<u32>(m(slot), pins - 1, M_PINS);
  return <i32>(pins - 1);
}

/** Record a change to a VALID slot (bumps its generation); 0 on success, -1 if not VALID. */
export function cacheMarkDirty(slot: i32): i32 {
  if (badSlot(slot)) return -1;
  const mp = m(slot);
  const f = load<u32>(mp, M_FLAGS);
  if ((f & CACHE_VALID) == 0) return -1;
  if ((f & CACHE_DIRTY) == 0) {
    store<u32>(mp, f | CACHE_DIRTY, M_FLAGS);
    dirtyCount++;
  }
  store<u32>(mp, load<u32>(mp, M_GEN) + 1, M_GEN);
  return 0;
}

/** Forget that a slot differs from the device (its changes are discarded). */
export function cacheMarkClean(slot: i32): void {
  if (badSlot(slot)) return;
  const f = load<u32>(m(slot), M_FLAGS);
  if (f & CACHE_DIRTY) {
    store<u32>(m(slot), f & ~CACHE_DIRTY, M_FLAGS);
    dirtyCount--;
  }
}

/** Declare an in-use slot's contents current (after the owner filled it). */
export function cacheMarkValid(slot: i32): void {
  if (badSlot(slot)) return;
  const f = load<u32>(m(slot), M_FLAGS);
  // A fill is new contents: whatever was verified before no longer counts.
  if (f & CACHE_INUSE) store<u32>(m(slot), (f | CACHE_VALID) & ~(CACHE_CHECKED | CACHE_SHAPED), M_FLAGS);
}

/** Record that the bindings verified an in-use, VALID slot's contents (see CACHE_CHECKED). */
export function cacheMarkChecked(slot: i32): void {
  if (badSlot(slot)) return;
  const f = load<u32>(m(slot), M_FLAGS);
  if ((f & (CACHE_INUSE | CACHE_VALID)) == (CACHE_INUSE | CACHE_VALID)) store<u32>(m(slot), f | CACHE_CHECKED, M_FLAGS);
}

/** Record that the bindings checked an in-use, VALID slot's structure (see CACHE_SHAPED). */
export function cacheMarkShaped(slot: i32): void {
  if (badSlot(slot)) return;
  const f = load<u32>(m(slot), M_FLAGS);
  if ((f & (CACHE_INUSE | CACHE_VALID)) == (CACHE_INUSE | CACHE_VALID)) store<u32>(m(slot), f | CACHE_SHAPED, M_FLAGS);
}

/** Mark a device request on the slot in flight (keeps it from eviction and invalidation). */
export function cacheSetIo(slot: i32): void {
  if (badSlot(slot)) return;
  store<u32>(m(slot), load<u32>(m(slot), M_FLAGS) | CACHE_IO, M_FLAGS);
}

/** The request on the slot finished. */
export function cacheClearIo(slot: i32): void {
  if (badSlot(slot)) return;
  store<u32>(m(slot), load<u32>(m(slot), M_FLAGS) & ~CACHE_IO, M_FLAGS);
}

/**
 * Drop blk from the cache, discarding unwritten changes (the block was freed, or the
 * device changed under us). CACHE_INVAL_DONE, CACHE_INVAL_ABSENT, or CACHE_INVAL_PINNED /
 * CACHE_INVAL_IO when it cannot go now (the bindings wait for the I/O and retry).
 */
export function cacheInvalidate(blk: f64): i32 {
  const key = <u64>blk;
  const i = findIndex(key);
  if (i < 0) return CACHE_INVAL_ABSENT;
  const s = load<i32>(bucket(<u32>i));
  const mp = m(s);
  if (load<u32>(mp, M_PINS) != 0) return CACHE_INVAL_PINNED;
  const f = load<u32>(mp, M_FLAGS);
  if (f & CACHE_IO) return CACHE_INVAL_IO;
  if (f & CACHE_DIRTY) dirtyCount--;
  tableRemoveAt(<u32>i);
  lruUnlink(s);
  store<u32>(mp, 0, M_FLAGS);
  store<i32>(mp, freeHead, M_NEXT);
  freeHead = s;
  residentCount--;
  return CACHE_INVAL_DONE;
}

/** Number of DIRTY slots (including those whose write-out is in flight). */
export function cacheDirtyCount(): u32 {
  return dirtyCount;
}

/** Number of slots with at least one pin. */
export function cachePinnedCount(): u32 {
  return pinnedCount;
}

/** Number of in-use slots. */
export function cacheResidentCount(): u32 {
  return residentCount;
}

// @ts-ignore: decorator
@inline function keyAt(i: u32): u64 {
  return load<u64>(m(load<i32>(list + ((<usize>i) << 2))), M_BLK);
}

function siftDown(root: u32, end: u32): void {
  while (true) {
    let child = root * 2 + 1;
    if (child >= end) return;
    if (child + 1 < end && keyAt(child + 1) > keyAt(child)) child++;
    if (keyAt(root) >= keyAt(child)) return;
    const a = list + ((<usize>root) << 2);
    const b = list + ((<usize>child) << 2);
    const t = load<u32>(a);
    store<u32>(a, load<u32>(b));
    store<u32>(b, t);
    root = child;
  }
}

/**
 * Claim up to max dirty slots for write-out: the lowest-numbered dirty blocks without
 * I/O in flight, sorted by block number, as slot indices at cacheListPtr() and block
 * numbers at cacheListBlkPtr(). Claimed slots get CACHE_IO; every one must later go
 * through cacheWriteEnd (ok or not). Returns the count.
 */
export function cacheCollectDirty(max: u32): u32 {
  if (max == 0 || dirtyCount == 0) return 0;
  let n: u32 = 0;
  for (let s: u32 = 0; s < nSlots; s++) {
    if ((load<u32>(m(<i32>s), M_FLAGS) & (CACHE_DIRTY | CACHE_IO)) == CACHE_DIRTY) {
      store<u32>(list + ((<usize>n) << 2), s);
      n++;
    }
  }
  // Heapsort: in place, no allocation, O(n log n) worst case.
  if (n > 1) {
    for (let i = n / 2; i > 0; i--) siftDown(i - 1, n);
    for (let end = n - 1; end > 0; end--) {
      const t = load<u32>(list);
      store<u32>(list, load<u32>(list + ((<usize>end) << 2)));
      store<u32>(list + ((<usize>end) << 2), t);
      siftDown(0, end);
    }
  }
  if (n > max) n = max;
  for (let i: u32 = 0; i < n; i++) {
    const s = load<i32>(list + ((<usize>i) << 2));
    const mp = m(s);
    store<u32>(mp, load<u32>(mp, M_FLAGS) | CACHE_IO, M_FLAGS);
    store<f64>(listBlk + ((<usize>i) << 3), <f64>load<u64>(mp, M_BLK));
  }
  return n;
}

/** Slot list written by cacheCollectDirty (u32 × cacheSlots()). */
export function cacheListPtr(): usize {
  return list;
}

/** Block numbers of that list (f64 × cacheSlots(), 8-aligned). */
export function cacheListBlkPtr(): usize {
  return listBlk;
}

/** Staging area for multi-block device requests. */
export function cacheStagingPtr(): usize {
  return staging;
}

/** Its size in bytes (a whole number of blocks). */
export function cacheStagingBytes(): u32 {
  return stagingBytes;
}

/** Slot-list area paired with the staging area: u32 × (cacheStagingBytes() / blockSize). */
export function cacheRunListPtr(): usize {
  return runList;
}

/**
 * Copy the data of slots listPtr[from .. from+count) to dst, contiguous, for one device
 * write, and record each slot's generation for cacheWriteEnd. Returns the count copied
 * (stops at the first bad slot index).
 */
export function cacheGather(listPtr: usize, from: u32, count: u32, dst: usize): u32 {
  for (let i: u32 = 0; i < count; i++) {
    const s = load<i32>(listPtr + ((<usize>(from + i)) << 2));
    if (badSlot(s)) return i;
    memory.copy(dst + ((<usize>i) << bshift), arena + ((<usize>s) << bshift), bsize);
    store<u32>(m(s), load<u32>(m(s), M_GEN), M_WGEN);
  }
  return count;
}

/**
 * Copy count blocks from src into slots listPtr[from ..], marking each VALID and
 * clearing IO: the end of one multi-block device read. Returns the count copied.
 */
export function cacheScatter(listPtr: usize, from: u32, count: u32, src: usize): u32 {
  for (let i: u32 = 0; i < count; i++) {
    const s = load<i32>(listPtr + ((<usize>(from + i)) << 2));
    if (badSlot(s)) return i;
    memory.copy(arena + ((<usize>s) << bshift), src + ((<usize>i) << bshift), bsize);
    const mp = m(s);
    store<u32>(mp, (load<u32>(mp, M_FLAGS) | CACHE_VALID) & ~(CACHE_IO | CACHE_CHECKED | CACHE_SHAPED), M_FLAGS);
  }
  return count;
}

/**
 * The write of slots listPtr[from .. from+count) finished. Clears IO; if ok, each slot
 * not changed since cacheGather becomes clean. Returns how many became clean.
 */
export function cacheWriteEnd(listPtr: usize, from: u32, count: u32, ok: i32): u32 {
  let cleaned: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const s = load<i32>(listPtr + ((<usize>(from + i)) << 2));
    if (badSlot(s)) continue;
    const mp = m(s);
    let f = load<u32>(mp, M_FLAGS) & ~CACHE_IO;
    if (ok != 0 && (f & CACHE_DIRTY) != 0 && load<u32>(mp, M_GEN) == load<u32>(mp, M_WGEN)) {
      f &= ~CACHE_DIRTY;
      dirtyCount--;
      cleaned++;
    }
    store<u32>(mp, f, M_FLAGS);
  }
  if (ok != 0) {
    statWbBlocks += count;
    statWbRequests++;
  }
  return cleaned;
}

/** A counter (CACHE_STAT_*), as f64 since u64 cannot cross the boundary. */
export function cacheStat(which: i32): f64 {
  switch (which) {
    case CACHE_STAT_HITS: return <f64>statHits;
    case CACHE_STAT_MISSES: return <f64>statMisses;
    case CACHE_STAT_EVICTIONS: return <f64>statEvictions;
    case CACHE_STAT_WB_BLOCKS: return <f64>statWbBlocks;
    case CACHE_STAT_WB_REQUESTS: return <f64>statWbRequests;
  }
  return -1;
}
