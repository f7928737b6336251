// Block allocation: which group to take blocks from, which bits of its bitmap to set, and
// keeping the group descriptor (free count, flags, checksums) exact as bits change.
//
// Why split into "pick a group" and "allocate in this bitmap": the bitmaps live in the
// block cache and only the bindings can await a device read, while the decision of where
// to look must not read any bitmap at all — on a 16 TiB volume there are 131,072 of them.
// So the group choice runs on the in-memory descriptor table (groups.ts) alone, and the
// bindings then fetch the one bitmap chosen and hand it back here. Each call below is
// synchronous, so a find-and-set on one bitmap is atomic with respect to other JS work;
// what the bindings must serialise (per-group lock) is the read-decide-initialise
// sequence around it, e.g. two callers both zero-filling a BLOCK_UNINIT bitmap.
//
// Where blocks go (ballocInBitmap), in order of preference:
//   1. the goal block itself, if free — extending the caller's previous extent beats a
//      longer run elsewhere (the caller asks again for the rest);
//   2. the first free run of `want` blocks at or after the goal, then from the group
//      start — one extent for the whole request;
//   3. the longest free run in the group, if it is at least `minLen`.
// Group order (ballocScan): the goal's group, then the rest of its flex group (whose
// bitmaps and inode tables sit together, so data stays near its metadata), then the
// following groups, wrapping. The bindings scan twice: first for groups whose free count
// covers the whole request, then for any group with at least `minLen` free.
//
// Metadata is never handed out and never freed: besides each group's superblock copy and
// descriptor table prefix (computed from the geometry, meta_bg aware), every group's
// bitmaps and inode table are recorded once, at allocInit, in a sorted index of block
// ranges. A candidate run that overlaps it means the bitmap is corrupt (the caller marks
// the group unusable); a free that overlaps it is refused.
//
//   meta index:  [start u64][end u64]  [start u64][end u64] ...   sorted, disjoint, merged
//                 (16 bytes per entry, at most 3 per group before merging)
//
// BLOCK_UNINIT groups have no bitmap on disk. ballocInitBitmap builds it the way the
// kernel and e2fsprogs would: the superblock/descriptor prefix, every metadata range in
// the index that falls inside the group (for images that follow the rules — only the
// group's own tables — the kernel and e2fsck agree on this), and "in use" padding from
// the group's last block to the end of the bitmap block. It refuses (ALLOC_ERR_COUNTS)
// when the free count that bitmap implies differs from the descriptor's, so a group we
// would rebuild differently from whoever formatted the volume is never touched.
//
// Counts: the descriptor's free count changes with every bit; a running volume total
// (allocFreeBlocksTotal) is kept alongside for the superblock at sync and for reserve
// checks. Only these functions change free-block counts after allocInit; anything else
// that does must call allocRecount. Every change re-checksums the bitmap
// (gdSetBitmapCsums) and then the descriptor (gdCsumSet). The on-disk descriptor block is
// updated by the bindings with gdtStoreDesc, in the same transaction handle.
//
// Trust: a group is changed only while its descriptor still matches its checksum
// (allocDescOk; every change here re-checksums, so a mismatch came from the disk and
// re-checksumming would bless it). Group numbers, offsets and lengths are checked against
// the geometry; bitmap pointers must address a whole block (the bindings pass cache
// slots). State is per engine instance, i.e. per volume, and allocInit resets it (the
// per-group "unusable" marks included).

import {
  SB_FEATURE_COMPAT, SB_FEATURE_INCOMPAT, SB_FEATURE_RO_COMPAT, SB_FIRST_INO, SB_FIRST_META_BG,
  SB_LOG_GROUPS_PER_FLEX, SB_REV_LEVEL,
} from "./ondisk/superblock";
import {
  BG_BLOCK_UNINIT, FEATURE_COMPAT_SPARSE_SUPER2, FEATURE_INCOMPAT_FLEX_BG, FEATURE_INCOMPAT_META_BG,
  FEATURE_RO_COMPAT_BIGALLOC, FEATURE_RO_COMPAT_GDT_CSUM, FEATURE_RO_COMPAT_METADATA_CSUM,
} from "./ondisk/features";
import {
  geoBlockSize, geoDescSize, geoFirstDataBlock, geoGdtBlocks, geoGroupCount, geoItableBlocks,
  geoReservedGdtBlocks, blocksCountU64, groupBlockCount, groupFirstBlock, groupHasSuper, blockGroup,
} from "./geometry";
import {
  gdPtr, gdtTable, gdBlockBitmap, gdInodeBitmap, gdInodeTable, gdFreeBlocks, gdSetFreeBlocks, gdFlags,
  gdSetFlags,
} from "./groups";
import { gdCsumSet, gdCsumVerify, gdSetBitmapCsums } from "./csum";
import {
  bitmapClearRange, bitmapCount, bitmapFindZero, bitmapFindZeroRun, bitmapSetRange, bitmapTest,
  bitmapZeroRunLength,
} from "./bitmap";
import { gdtBlockLocation } from "./super";

// Failure reasons, returned negated by every function that can refuse.
export const ALLOC_ERR_NOT_READY: i32 = 1;     // allocInit has not run, or refused the volume
export const ALLOC_ERR_UNSUPPORTED: i32 = 2;   // bigalloc or sparse_super2: layouts we do not allocate in
export const ALLOC_ERR_ARG: i32 = 3;           // group, offset or length outside the volume
export const ALLOC_ERR_STATE: i32 = 4;         // the group is (not) uninitialised, unlike what the call needs
export const ALLOC_ERR_CORRUPT: i32 = 5;       // the bitmap disagrees with the descriptor's free count
export const ALLOC_ERR_METADATA: i32 = 6;      // the range covers filesystem metadata
export const ALLOC_ERR_DOUBLE_FREE: i32 = 7;   // some bits to free are already free
export const ALLOC_ERR_RESERVED_INO: i32 = 8;  // a reserved inode (< s_first_ino)
export const ALLOC_ERR_COUNTS: i32 = 9;        // an uninitialised group's counts disagree with its layout
export const ALLOC_ERR_DESC_CSUM: i32 = 10;    // the group descriptor's checksum does not match it

// Per-group state bits kept by the allocators (allocMarkGroup): set when a group proved
// unusable during this mount, so no later request keeps trying it.
export const ALLOC_GROUP_BLOCKS_BAD: u32 = 1;
export const ALLOC_GROUP_INODES_BAD: u32 = 2;

const META_ENTRY: usize = 16;
const NONE: u64 = u64.MAX_VALUE;

let ready = false;
let epoch: u32 = 0;
let flexSize: u32 = 1;
let metaBg = false;
let firstMetaBg: u32 = 0;
let groupCsum = false;
let firstIno: u32 = 11;
let gstate: usize = 0;       // u8 per group: ALLOC_GROUP_* bits
let gstateCap: u32 = 0;
let metaIdx: usize = 0;      // META_ENTRY bytes per entry, see the essay
let metaCap: u64 = 0;
let metaCount: u32 = 0;
let scratch: usize = 0;      // one block, for building uninitialised bitmaps
let scratchSize: u32 = 0;
let freeBlocksTotal: u64 = 0;
let resultStart: u64 = 0;
let scanPos: u32 = 0;

// ── configuration ─────────────────────────────────────────────────────────────────────

/**
 * Configure the allocators for the mounted volume: the superblock at sbPtr passed
 * sbCheck, sbLoadGeometry ran and the descriptor table is loaded. Builds the metadata
 * index and the free totals. Returns 0 or a negated ALLOC_ERR_*.
 */
export function allocInit(sbPtr: usize): i32 {
  ready = false;
  const groups = geoGroupCount();
  if (groups == 0 || gdtTable() == 0) return -ALLOC_ERR_NOT_READY;
  const compat = load<u32>(sbPtr + <usize>SB_FEATURE_COMPAT);
  const incompat = load<u32>(sbPtr + <usize>SB_FEATURE_INCOMPAT);
  const ro = load<u32>(sbPtr + <usize>SB_FEATURE_RO_COMPAT);
  if ((ro & <u32>FEATURE_RO_COMPAT_BIGALLOC) != 0 || (compat & <u32>FEATURE_COMPAT_SPARSE_SUPER2) != 0) {
    return -ALLOC_ERR_UNSUPPORTED;
  }
  flexSize = 1;
  if ((incompat & <u32>FEATURE_INCOMPAT_FLEX_BG) != 0) {
    const lg = <u32>load<u8>(sbPtr + <usize>SB_LOG_GROUPS_PER_FLEX);
    flexSize = lg >= 31 ? <u32>1 << 31 : <u32>1 << lg;
  }
  metaBg = (incompat & <u32>FEATURE_INCOMPAT_META_BG) != 0;
  firstMetaBg = load<u32>(sbPtr + <usize>SB_FIRST_META_BG);
  groupCsum = (ro & <u32>(FEATURE_RO_COMPAT_GDT_CSUM | FEATURE_RO_COMPAT_METADATA_CSUM)) != 0;
  firstIno = load<u32>(sbPtr + <usize>SB_REV_LEVEL) >= 1 ? load<u32>(sbPtr + <usize>SB_FIRST_INO) : 11;
  if (gstateCap < groups) {
    gstate = heap.alloc(<usize>groups);
    gstateCap = groups;
  }
  memory.fill(gstate, 0, <usize>groups);
  const bs = geoBlockSize();
  if (scratchSize < bs) {
    scratch = heap.alloc(<usize>bs);
    scratchSize = bs;
  }
  buildMetaIndex();
  allocRecount();
  epoch++;
  ready = true;
  return 0;
}

/** Whether allocInit succeeded for the current volume. */
export function allocReady(): bool { return ready; }
/** Bumped by every allocInit: lets ialloc.ts know its cached totals are stale. */
export function allocEpoch(): u32 { return epoch; }
/** Groups per flex group (1 without flex_bg). */
export function allocFlexSize(): u32 { return flexSize; }
/** Whether descriptors carry checksums (and so the UNINIT flags and itable_unused mean something). */
export function allocGroupCsum(): bool { return groupCsum; }
/** First non-reserved inode number. */
export function allocFirstIno(): u32 { return firstIno; }

/** ALLOC_GROUP_* bits of group g (0 for a group out of range). */
export function allocGroupState(g: u32): u32 {
  if (!ready || g >= geoGroupCount()) return 0;
  return <u32>load<u8>(gstate + <usize>g);
}

/** Add ALLOC_GROUP_* bits to group g (a group proved unusable stays so until the next allocInit). */
export function allocMarkGroup(g: u32, bits: u32): void {
  if (!ready || g >= geoGroupCount()) return;
  const p = gstate + <usize>g;
  store<u8>(p, <u8>(<u32>load<u8>(p) | (bits & 0xff)));
}

function blocksUsable(g: u32): bool {
  return (<u32>load<u8>(gstate + <usize>g) & ALLOC_GROUP_BLOCKS_BAD) == 0;
}

/**
 * Whether group g's descriptor still matches its checksum (true without descriptor
 * checksums). Every change below re-checksums, so a mismatch can only come from the
 * disk: such a group's counts are not trusted, and changing it would bless them.
 */
export function allocDescOk(g: u32): bool {
  return g < geoGroupCount() && gdCsumVerify(gdPtr(g), g);
}

// ── layout: the superblock prefix of a group and the metadata index ───────────────────

// Blocks at the start of group g that hold a superblock copy and descriptor blocks.
// Without meta_bg (or below s_first_meta_bg): groups with a superblock copy carry the
// whole descriptor table plus the reserved GDT blocks. In a meta_bg meta-group, the
// first, second and last group each carry that meta-group's one descriptor block, after
// the superblock copy if the group has one.
function groupBase(g: u32): u32 {
  const sup: u32 = groupHasSuper(g) ? 1 : 0;
  const per = geoBlockSize() / geoDescSize();
  let n: u32;
  if (!metaBg || g / per < firstMetaBg) {
    n = sup == 0 ? 0 : 1 + (metaBg ? firstMetaBg : geoGdtBlocks()) + geoReservedGdtBlocks();
  } else {
    const r = g % per;
    n = sup + (r == 0 || r == 1 || r == per - 1 ? 1 : 0);
  }
  const count = groupBlockCount(g);
  return n < count ? n : count;
}

/** Blocks at the start of group g used by its superblock copy and descriptor blocks. */
export function allocGroupBaseBlocks(g: u32): u32 {
  if (g >= geoGroupCount()) return 0;
  return groupBase(g);
}

// @ts-ignore: decorator
@inline function metaStart(i: u32): u64 { return load<u64>(metaIdx + <usize>i * META_ENTRY); }
// @ts-ignore: decorator
@inline function metaEnd(i: u32): u64 { return load<u64>(metaIdx + <usize>i * META_ENTRY, 8); }

// Append [start, start + len) clipped to the data blocks of the volume; a range that
// starts inside or right after the last entry extends it (tables packed by flex_bg
// collapse to a few entries here, before any sorting).
function metaAdd(start: u64, len: u64): void {
  const lo = <u64>geoFirstDataBlock();
  const hi = blocksCountU64();
  let s = start, e = start + len;
  if (e < s) e = hi; // a corrupt length that wraps: clip to the volume
  if (s < lo) s = lo;
  if (e > hi) e = hi;
  if (s >= e) return;
  if (metaCount > 0) {
    const last = metaCount - 1;
    if (s >= metaStart(last) && s <= metaEnd(last)) {
      if (e > metaEnd(last)) store<u64>(metaIdx + <usize>last * META_ENTRY, e, 8);
      return;
    }
  }
  const p = metaIdx + <usize>metaCount * META_ENTRY;
  store<u64>(p, s);
  store<u64>(p, e, 8);
  metaCount++;
}

function metaSwap(a: u32, b: u32): void {
  const pa = metaIdx + <usize>a * META_ENTRY;
  const pb = metaIdx + <usize>b * META_ENTRY;
  const s = load<u64>(pa), e = load<u64>(pa, 8);
  store<u64>(pa, load<u64>(pb));
  store<u64>(pa, load<u64>(pb, 8), 8);
  store<u64>(pb, s);
  store<u64>(pb, e, 8);
}

function siftDown(root: u32, n: u32): void {
  let r = root;
  for (;;) {
    let c = <u64>r * 2 + 1;
    if (c >= <u64>n) return;
    if (c + 1 < <u64>n && metaStart(<u32>c + 1) > metaStart(<u32>c)) c++;
    if (metaStart(r) >= metaStart(<u32>c)) return;
    metaSwap(r, <u32>c);
    r = <u32>c;
  }
}

// Collect every group's bitmaps and inode table, sort by start (heapsort: no extra
// memory, and layouts moved by resize tools need not be in group order), then merge
// overlapping and touching ranges so the index is disjoint and its ends increase.
// Collection order follows the usual layouts so that metaAdd merges most of it on the
// way in: with flex_bg all block bitmaps, then all inode bitmaps, then all inode tables
// (each kind is packed per flex group); without, group by group (each group's bitmaps
// and table are adjacent). A 16 TiB volume then sorts ~25,000 entries, not 393,216.
function buildMetaIndex(): void {
  const groups = geoGroupCount();
  const need = <u64>groups * 3;
  if (metaCap < need) {
    metaIdx = heap.alloc(<usize>(need * <u64>META_ENTRY));
    metaCap = need;
  }
  metaCount = 0;
  const itb = <u64>geoItableBlocks();
  if (flexSize > 1) {
    for (let g: u32 = 0; g < groups; g++) metaAdd(gdBlockBitmap(gdPtr(g)), 1);
    for (let g: u32 = 0; g < groups; g++) metaAdd(gdInodeBitmap(gdPtr(g)), 1);
    for (let g: u32 = 0; g < groups; g++) metaAdd(gdInodeTable(gdPtr(g)), itb);
  } else {
    for (let g: u32 = 0; g < groups; g++) {
      const d = gdPtr(g);
      metaAdd(gdBlockBitmap(d), 1);
      metaAdd(gdInodeBitmap(d), 1);
      metaAdd(gdInodeTable(d), itb);
    }
  }
  const n = metaCount;
  let sorted = true;
  for (let i: u32 = 1; i < n; i++) {
    if (metaStart(i) < metaStart(i - 1)) {
      sorted = false;
      break;
    }
  }
  if (!sorted && n > 1) {
    for (let i = n / 2; i > 0; ) {
      i--;
      siftDown(i, n);
    }
    for (let end = n; end > 1; ) {
      end--;
      metaSwap(0, end);
      siftDown(0, end);
    }
  }
  let w: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const s = metaStart(i), e = metaEnd(i);
    if (w > 0 && s <= metaEnd(w - 1)) {
      if (e > metaEnd(w - 1)) store<u64>(metaIdx + <usize>(w - 1) * META_ENTRY, e, 8);
      continue;
    }
    const p = metaIdx + <usize>w * META_ENTRY;
    store<u64>(p, s);
    store<u64>(p, e, 8);
    w++;
  }
  metaCount = w;
}

// Index of the first metadata range that ends after block b (metaCount if none).
function metaFirstEndingAfter(b: u64): u32 {
  let lo: u32 = 0, hi = metaCount;
  while (lo < hi) {
    const mid = lo + ((hi - lo) >>> 1);
    if (metaEnd(mid) <= b) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// First block of [s, e) that belongs to a bitmap or inode table, or NONE.
function metaFirstIn(s: u64, e: u64): u64 {
  const i = metaFirstEndingAfter(s);
  if (i >= metaCount) return NONE;
  const st = metaStart(i);
  if (st >= e) return NONE;
  return st > s ? st : s;
}

/**
 * First block of [start, start + len) that is filesystem metadata (a superblock copy or
 * descriptor block, a bitmap, an inode table) or lies outside the data blocks; -1 if
 * none. For callers validating block numbers read from disk.
 */
export function allocMetaFirst(start: f64, len: f64): f64 {
  if (!ready || !(start >= 0) || !(len >= 1)) return -1;
  const s = <u64>start;
  const e = <u64>(start + len);
  const first = <u64>geoFirstDataBlock();
  if (s < first || e > blocksCountU64()) return <f64>(s < first ? s : blocksCountU64());
  let g = blockGroup(s);
  const gEnd = blockGroup(e - 1);
  let hit = metaFirstIn(s, e);
  for (; g <= gEnd; g++) {
    const gs = groupFirstBlock(g);
    const be = gs + <u64>groupBase(g);
    if (be > s && gs < e) {
      const h = gs > s ? gs : s;
      if (h < hit) hit = h;
      break; // later groups start later still
    }
  }
  return hit == NONE ? -1 : <f64>hit;
}

// ── totals ────────────────────────────────────────────────────────────────────────────

/** Recompute the free-block total from the descriptors (after an outside change). */
export function allocRecount(): void {
  let t: u64 = 0;
  const groups = geoGroupCount();
  for (let g: u32 = 0; g < groups; g++) t += <u64>gdFreeBlocks(gdPtr(g));
  freeBlocksTotal = t;
}

/** Free blocks on the volume (sum of the descriptors), for the superblock and statfs. */
export function allocFreeBlocksTotal(): f64 { return <f64>freeBlocksTotal; }

// ── descriptor table blocks ───────────────────────────────────────────────────────────

/** Block number of the on-disk descriptor-table block that holds group g's descriptor. */
export function gdtDescBlock(g: u32): f64 {
  return gdtBlockLocation(g / (geoBlockSize() / geoDescSize()));
}

/** Copy group g's in-memory descriptor into its slot of that descriptor-table block (at blockPtr). */
export function gdtStoreDesc(g: u32, blockPtr: usize): void {
  if (g >= geoGroupCount()) return;
  const dsz = geoDescSize();
  const per = geoBlockSize() / dsz;
  memory.copy(blockPtr + <usize>(g % per) * <usize>dsz, gdPtr(g), <usize>dsz);
}

// ── group choice ──────────────────────────────────────────────────────────────────────

// The p-th group visited from `goal`: the goal's flex group first (starting at the goal),
// then the groups after it, wrapping to the start of the volume.
function scanOrder(goal: u32, p: u32, flexAware: bool): u32 {
  const n = <u64>geoGroupCount();
  if (!flexAware || flexSize <= 1) return <u32>((<u64>goal + <u64>p) % n);
  const fs = <u64>(goal / flexSize) * <u64>flexSize;
  let fe = fs + <u64>flexSize;
  if (fe > n) fe = n;
  const fl = fe - fs;
  if (<u64>p < fl) return <u32>(fs + (<u64>goal - fs + <u64>p) % fl);
  return <u32>((fe + (<u64>p - fl)) % n);
}

/**
 * The first group at scan position ≥ pos (positions 0 .. groups-1, in the order described
 * in the essay, starting at goalGroup) that is usable and has at least minFree free
 * blocks; -1 if none. Its position is then in ballocScanPos() (resume at pos + 1).
 */
export function ballocScan(goalGroup: u32, pos: u32, minFree: u32, flexAware: bool): i32 {
  if (!ready) return -1;
  const n = geoGroupCount();
  if (goalGroup >= n) goalGroup = 0;
  if (minFree == 0) minFree = 1;
  for (let p = pos; p < n; p++) {
    const g = scanOrder(goalGroup, p, flexAware);
    if (blocksUsable(g) && gdFreeBlocks(gdPtr(g)) >= minFree) {
      scanPos = p;
      return <i32>g;
    }
  }
  return -1;
}

/** Scan position of the group the last successful ballocScan returned. */
export function ballocScanPos(): u32 { return scanPos; }

/**
 * The group to try first for `want` blocks near goalGroup: the first in scan order whose
 * free count covers want, else the first with any free block; -1 if the volume is full.
 */
export function ballocPickGroup(goalGroup: u32, want: u32, flexAware: bool): i32 {
  const g = ballocScan(goalGroup, 0, want, flexAware);
  return g >= 0 ? g : ballocScan(goalGroup, 0, 1, flexAware);
}

/**
 * Goal block for the first data of a new inode in `group`: with flex groups of 4 or
 * more, directories start in the flex group's first group and files in its second (so
 * small directories stay next to the tables and big files do not crowd them out);
 * otherwise the inode's own group. The block is the first after the superblock prefix.
 */
export function ballocInodeGoal(group: u32, isDir: bool): f64 {
  const n = geoGroupCount();
  if (n == 0) return 0;
  let g = group < n ? group : 0;
  if (flexSize >= 4) {
    const lead = <u64>(g / flexSize) * <u64>flexSize;
    const pick = isDir ? lead : lead + 1;
    g = pick < <u64>n ? <u32>pick : <u32>lead;
  }
  return <f64>(groupFirstBlock(g) + <u64>groupBase(g));
}

// ── uninitialised groups ──────────────────────────────────────────────────────────────

/** Whether group g's block bitmap must be built (ballocInitBitmap) instead of read. */
export function ballocNeedsInit(g: u32): bool {
  if (g >= geoGroupCount()) return false;
  return groupCsum && (gdFlags(gdPtr(g)) & <u32>BG_BLOCK_UNINIT) != 0;
}

// Build the bitmap an uninitialised group implicitly has into dst (one block); returns
// the number of in-use blocks inside the group.
function buildUninit(g: u32, dst: usize): u32 {
  const bs = geoBlockSize();
  memory.fill(dst, 0, <usize>bs);
  const count = groupBlockCount(g);
  const first = groupFirstBlock(g);
  const end = first + <u64>count;
  bitmapSetRange(dst, 0, groupBase(g));
  for (let i = metaFirstEndingAfter(first); i < metaCount; i++) {
    const s = metaStart(i);
    if (s >= end) break;
    const e = metaEnd(i);
    const from = s > first ? s : first;
    const to = e < end ? e : end;
    bitmapSetRange(dst, <u32>(from - first), <u32>(to - from));
  }
  const used = bitmapCount(dst, 0, count);
  if (count < bs * 8) bitmapSetRange(dst, count, bs * 8 - count);
  return used;
}

/**
 * Check that BLOCK_UNINIT group g can be initialised: 0, or -ALLOC_ERR_STATE (it is not
 * uninitialised), -ALLOC_ERR_DESC_CSUM, or -ALLOC_ERR_COUNTS (its free count disagrees
 * with its layout). Touches
 * no caller memory, so the bindings ask before fetching the block.
 */
export function ballocInitCheck(g: u32): i32 {
  if (!ready) return -ALLOC_ERR_NOT_READY;
  if (g >= geoGroupCount()) return -ALLOC_ERR_ARG;
  if (!ballocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  const used = buildUninit(g, scratch);
  if (<u64>gdFreeBlocks(gdPtr(g)) + <u64>used != <u64>groupBlockCount(g)) return -ALLOC_ERR_COUNTS;
  return 0;
}

/**
 * Initialise BLOCK_UNINIT group g: write its bitmap into bitmapPtr (a whole block), clear
 * the flag, set the bitmap and descriptor checksums. Returns 0 or ballocInitCheck's error
 * (then bitmapPtr and the descriptor are untouched).
 */
export function ballocInitBitmap(bitmapPtr: usize, g: u32): i32 {
  const rc = ballocInitCheck(g);
  if (rc < 0) return rc;
  memory.copy(bitmapPtr, scratch, <usize>geoBlockSize());
  const d = gdPtr(g);
  gdSetFlags(d, gdFlags(d) & ~<u32>BG_BLOCK_UNINIT);
  gdSetBitmapCsums(d, bitmapPtr, 0);
  gdCsumSet(d, g);
  return 0;
}

// ── allocate and free ─────────────────────────────────────────────────────────────────

let candStart: u32 = 0;
let candLen: u32 = 0;

// Choose the run for a request in [base, count) of the bitmap (see the essay's order).
function findRun(p: usize, base: u32, count: u32, goal: u32, want: u32, minLen: u32): bool {
  if (!bitmapTest(p, goal)) {
    const lim = <u64>goal + <u64>want < <u64>count ? goal + want : count;
    const run = bitmapZeroRunLength(p, goal, lim);
    if (run >= minLen) {
      candStart = goal;
      candLen = run;
      return true;
    }
  }
  let s = bitmapFindZeroRun(p, goal, count, want);
  if (s < 0 && goal > base) s = bitmapFindZeroRun(p, base, count, want);
  if (s >= 0) {
    candStart = <u32>s;
    candLen = want;
    return true;
  }
  let best: u32 = 0, bestAt: u32 = 0;
  let at = base;
  while (at < count) {
    const z = bitmapFindZero(p, at, count);
    if (z < 0) break;
    const len = bitmapZeroRunLength(p, <u32>z, count);
    if (len > best) {
      best = len;
      bestAt = <u32>z;
    }
    at = <u32>z + len;
  }
  if (best < minLen || best == 0) return false;
  candStart = bestAt;
  candLen = best < want ? best : want;
  return true;
}

// Find (and with apply, take) the run for a request; see ballocInBitmap for the contract.
function allocRun(bitmapPtr: usize, g: u32, goalOffset: u32, want: u32, minLen: u32, apply: bool): i32 {
  if (!ready) return -ALLOC_ERR_NOT_READY;
  if (g >= geoGroupCount() || want == 0) return -ALLOC_ERR_ARG;
  if (ballocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  if (minLen == 0) minLen = 1;
  if (minLen > want) minLen = want;
  const d = gdPtr(g);
  const free = gdFreeBlocks(d);
  if (free == 0) return 0;
  const count = groupBlockCount(g);
  const base = groupBase(g);
  if (base >= count) return 0;
  if (want > count - base) want = count - base;
  if (minLen > want) return 0;
  const goal = goalOffset >= base && goalOffset < count ? goalOffset : base;
  if (!findRun(bitmapPtr, base, count, goal, want, minLen)) {
    // The descriptor says there is room; a bitmap with no free bit at all is lying.
    return bitmapFindZero(bitmapPtr, base, count) < 0 ? -ALLOC_ERR_CORRUPT : 0;
  }
  const abs = groupFirstBlock(g) + <u64>candStart;
  if (metaFirstIn(abs, abs + <u64>candLen) != NONE) return -ALLOC_ERR_METADATA;
  if (free < candLen) return -ALLOC_ERR_CORRUPT;
  resultStart = abs;
  if (!apply) return <i32>candLen;
  bitmapSetRange(bitmapPtr, candStart, candLen);
  gdSetFreeBlocks(d, free - candLen);
  gdSetBitmapCsums(d, bitmapPtr, 0);
  gdCsumSet(d, g);
  freeBlocksTotal -= <u64>candLen;
  return <i32>candLen;
}

/**
 * Allocate up to `want` contiguous blocks (at least minLen) in group g, whose bitmap is
 * at bitmapPtr, preferring offset goalOffset inside the group. Returns the length taken
 * (start in ballocResultStart()), 0 if no free run of minLen exists, or a negated
 * ALLOC_ERR_*: STATE (uninitialised: call ballocInitBitmap first), DESC_CSUM, CORRUPT
 * or METADATA (the group cannot be trusted; nothing was changed).
 */
export function ballocInBitmap(bitmapPtr: usize, g: u32, goalOffset: u32, want: u32, minLen: u32): i32 {
  return allocRun(bitmapPtr, g, goalOffset, want, minLen, true);
}

/**
 * What ballocInBitmap would take, changing nothing (not the bitmap, not the descriptor):
 * lets the bindings probe a bitmap through a plain cache read and claim write access
 * only for a group that will give them blocks. Same results and errors.
 */
export function ballocFindInBitmap(bitmapPtr: usize, g: u32, goalOffset: u32, want: u32, minLen: u32): i32 {
  return allocRun(bitmapPtr, g, goalOffset, want, minLen, false);
}

/** First block of the run the last successful ballocInBitmap (or ballocFindInBitmap) chose. */
export function ballocResultStart(): f64 { return <f64>resultStart; }

/**
 * Free blocks [start, start + len) of group g (offsets in the group) in the bitmap at
 * bitmapPtr. Refuses, changing nothing: -ALLOC_ERR_ARG (outside the group),
 * -ALLOC_ERR_STATE (group uninitialised: nothing there was ever allocated),
 * -ALLOC_ERR_DESC_CSUM, -ALLOC_ERR_METADATA (covers metadata), -ALLOC_ERR_DOUBLE_FREE
 * (some bit already clear), -ALLOC_ERR_CORRUPT (the free count would exceed the group). With apply false it only
 * checks (for frees spanning groups: check all, then apply all). Returns 0 on success.
 */
export function ballocFree(bitmapPtr: usize, g: u32, start: u32, len: u32, apply: bool): i32 {
  if (!ready) return -ALLOC_ERR_NOT_READY;
  if (g >= geoGroupCount() || len == 0) return -ALLOC_ERR_ARG;
  const count = groupBlockCount(g);
  if (start >= count || len > count - start) return -ALLOC_ERR_ARG;
  if (ballocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  if (start < groupBase(g)) return -ALLOC_ERR_METADATA;
  const abs = groupFirstBlock(g) + <u64>start;
  if (metaFirstIn(abs, abs + <u64>len) != NONE) return -ALLOC_ERR_METADATA;
  if (bitmapCount(bitmapPtr, start, start + len) != len) return -ALLOC_ERR_DOUBLE_FREE;
  const d = gdPtr(g);
  const free = gdFreeBlocks(d);
  if (<u64>free + <u64>len > <u64>count) return -ALLOC_ERR_CORRUPT;
  if (!apply) return 0;
  bitmapClearRange(bitmapPtr, start, len);
  gdSetFreeBlocks(d, free + len);
  gdSetBitmapCsums(d, bitmapPtr, 0);
  gdCsumSet(d, g);
  freeBlocksTotal += <u64>len;
  return 0;
}
