// mkfs, part 1: deciding the layout.
//
// Why plan everything before writing anything: a 16 TiB volume has 131,072 groups, and
// the bindings must be able to write its metadata in a few large device requests. So the
// plan is computed first, entirely in memory — geometry, where each group's bitmaps and
// inode table go, which blocks the root directory, lost+found and the journal take, every
// group descriptor with its free counts, flags and checksums — and mkfs_emit.ts then
// streams the blocks out in device order.
//
// Placement (flex_bg): the bitmaps and inode tables of the groups of one flex group are
// packed at the start of the flex's first group, right after its superblock copy:
//
//   group L (= flex leader): [sb+gdt][bbitmap L..L+n-1][ibitmap L..L+n-1][itable L]…[itable L+n-1]
//
// spilling into the next groups when they do not fit, never over a superblock copy and
// never across a group boundary (each table stays inside one group). Without flex_bg the
// flex size is 1 and this degenerates to the classic per-group layout. A single forward
// cursor allocates all of it, so the metadata runs come out sorted by block number.
//
// Blocks used by metadata and data are recorded as sorted runs ("used runs"); free
// counts, BLOCK_UNINIT eligibility and the bitmaps themselves are all derived from them.
//
// Parameters that are bytes rather than numbers (UUID, hash seed, label, the boot area
// that must survive in front of a 2-4 KiB-block superblock) are passed in the params
// area:
//
//   params + 0    16 bytes  filesystem UUID
//   params + 16   16 bytes  directory hash seed
//   params + 32   16 bytes  volume label (NUL padded)
//   params + 48 1024 bytes  current contents of device bytes [0, 1024) (boot area)

import { geoSet, geoGroupCount, geoBlockSize, geoInodesPerGroup, geoItableBlocks, geoGdtBlocks,
  groupFirstBlock, groupBlockCount, groupSuperBlocks, groupHasSuper, blocksCountU64,
  geoBlocksPerGroup, blockGroup } from "./geometry";
import { gdtInit, gdPtr, gdSetBlockBitmap, gdSetInodeBitmap, gdSetInodeTable, gdSetFreeBlocks,
  gdSetFreeInodes, gdSetUsedDirs, gdSetItableUnused, gdSetFlags, gdBlockBitmap, gdInodeBitmap,
  gdInodeTable, gdFlags } from "./groups";
import { BG_INODE_UNINIT, BG_BLOCK_UNINIT, BG_INODE_ZEROED } from "./ondisk/features";
import { buildBlockBitmap, buildInodeBitmap, buildSuperblock, mkfsScratch } from "./mkfs_emit";
import { csumConfigure, gdSetBitmapCsums, gdCsumSet } from "./csum";

// Option bits passed by the bindings.
export const MKFS_METADATA_CSUM: u32 = 1;
export const MKFS_64BIT: u32 = 2;
export const MKFS_JOURNAL: u32 = 4;
export const MKFS_LAZY_ITABLE: u32 = 8;

// Failure reasons (mkfsPlan returns one of these negated); the bindings word the message.
export const MKFS_ERR_TOO_SMALL: i32 = 1;       // metadata does not fit on the device
export const MKFS_ERR_NEEDS_64BIT: i32 = 2;     // more than 2^32-1 blocks without 64bit
export const MKFS_ERR_GDT_TOO_BIG: i32 = 3;     // descriptor table does not fit in a group
export const MKFS_ERR_TOO_MANY_INODES: i32 = 4; // 2^32 inodes or more
export const MKFS_ERR_TOO_FEW_INODES: i32 = 5;  // not even the reserved inodes fit

export const FIRST_INO: u32 = 11;           // first non-reserved inode (lost+found)
export const ROOT_INO_NR: u32 = 2;
export const JOURNAL_INO_NR: u32 = 8;

// ---- plan state (module globals: one mkfs per engine instance) ----
export let optFlags: u32 = 0;
export let flexSize: u32 = 16;
export let nowSeconds: u64 = 0;
export let reservedBlocks: u64 = 0;
export let freeBlocksTotal: u64 = 0;
export let freeInodesTotal: u64 = 0;
export let overheadBlocks: u64 = 0;
export let journalBlocks: u32 = 0;
export let csumReady: bool = false; // set once csumConfigure has seen the primary superblock

export let params: usize = 0;
export const PARAM_UUID: usize = 0;
export const PARAM_HASH_SEED: usize = 16;
export const PARAM_LABEL: usize = 32;
export const PARAM_BOOT: usize = 48;
const PARAMS_SIZE: usize = 48 + 1024;

// Data placed by mkfs: root dir block, lost+found blocks, journal extents (+ leaf block).
export let rootBlock: u64 = 0;
export let lpfBlock: u64 = 0;
export let lpfBlocks: u32 = 0;
export const MAX_JOURNAL_EXTENTS: i32 = 64;
export let journalExtents: i32 = 0;
export let journalExtStart: usize = 0; // u64[MAX_JOURNAL_EXTENTS]
export let journalExtLen: usize = 0;   // u32[MAX_JOURNAL_EXTENTS]
export let journalLeaf: u64 = 0;       // 0 when the extents fit in the inode

// Used runs: sorted, non-overlapping [start, start+len) of blocks taken at mkfs time,
// excluding superblock copies (those follow from geometry).
let runStart: usize = 0; // u64[]
let runLen: usize = 0;   // u32[]
let runCount: i32 = 0;
let runCap: i32 = 0;

/** The params area (allocated on first use). */
export function mkfsParams(): usize {
  if (params == 0) {
    params = heap.alloc(PARAMS_SIZE);
    memory.fill(params, 0, PARAMS_SIZE);
  }
  return params;
}

function addRun(start: u64, len: u32): void {
  if (runCount > 0) {
    const last = runCount - 1;
    const ls = load<u64>(runStart + (<usize>last << 3));
    const ll = load<u32>(runLen + (<usize>last << 2));
    if (ls + <u64>ll == start && <u64>ll + <u64>len < 0xFFFFFFFF) {
      store<u32>(runLen + (<usize>last << 2), ll + len);
      return;
    }
  }
  if (runCount == runCap) {
    const cap = runCap == 0 ? 1024 : runCap * 2;
    const ns = heap.alloc(<usize>cap << 3);
    const nl = heap.alloc(<usize>cap << 2);
    if (runCount > 0) {
      memory.copy(ns, runStart, <usize>runCount << 3);
      memory.copy(nl, runLen, <usize>runCount << 2);
    }
    runStart = ns;
    runLen = nl;
    runCap = cap;
  }
  store<u64>(runStart + (<usize>runCount << 3), start);
  store<u32>(runLen + (<usize>runCount << 2), len);
  runCount++;
}

export function usedRunCount(): i32 { return runCount; }
export function usedRunStart(i: i32): u64 { return load<u64>(runStart + (<usize>i << 3)); }
export function usedRunLen(i: i32): u32 { return load<u32>(runLen + (<usize>i << 2)); }

/** Index of the first used run that ends after block b (runCount if none). */
export function firstRunEndingAfter(b: u64): i32 {
  let lo: i32 = 0, hi: i32 = runCount;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (usedRunStart(mid) + <u64>usedRunLen(mid) <= b) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- the forward cursor that places metadata and data ----

let cursor: u64 = 0;

// Move p past any superblock copy it falls into; returns the first block ≥ p that a
// table may start at. Caller guarantees p < blocks count.
function skipSuper(p: u64): u64 {
  const g = blockGroup(p);
  const sbEnd = groupFirstBlock(g) + <u64>groupSuperBlocks(g);
  return p < sbEnd ? sbEnd : p;
}

// Place `len` contiguous blocks at or after the cursor, inside one group and clear of
// superblock copies. Returns the start, or u64.MAX_VALUE when the device is full.
function place(len: u32): u64 {
  const end = blocksCountU64();
  while (true) {
    if (cursor >= end) return u64.MAX_VALUE;
    cursor = skipSuper(cursor);
    if (cursor >= end) return u64.MAX_VALUE;
    const g = blockGroup(cursor);
    const groupEnd = groupFirstBlock(g) + <u64>groupBlockCount(g);
    if (cursor + <u64>len <= groupEnd) {
      const at = cursor;
      cursor += <u64>len;
      addRun(at, len);
      return at;
    }
    if (<u64>len > <u64>geoBlocksPerGroup() - <u64>groupSuperBlocks(g)) return u64.MAX_VALUE;
    cursor = groupEnd;
  }
}

// Free blocks from p up to the next used run, superblock copy or group end.
function freeRunAt(p: u64, nextRun: i32): u64 {
  const g = blockGroup(p);
  let limit = groupFirstBlock(g) + <u64>groupBlockCount(g);
  if (nextRun < runCount) {
    const s = usedRunStart(nextRun);
    if (s < limit) limit = s;
  }
  return limit > p ? limit - p : 0;
}

// Data placement walks forward from `p` across used runs (which are sorted), so the
// journal and directories of a new volume sit right after group 0's metadata.
let dataCursor: u64 = 0;
let dataRunIdx: i32 = 0;
let dataStarts: usize = 0; // u64[] starts of data runs, appended to the used runs after
let dataLens: usize = 0;
let dataCount: i32 = 0;
const MAX_DATA_RUNS: i32 = 96;

// Allocate up to `want` contiguous data blocks; returns the count placed (0 = full),
// start in `lastDataStart`.
let lastDataStart: u64 = 0;
function placeData(want: u64): u32 {
  const end = blocksCountU64();
  while (dataCursor < end) {
    dataCursor = skipSuper(dataCursor);
    if (dataCursor >= end) break;
    while (dataRunIdx < runCount && usedRunStart(dataRunIdx) + <u64>usedRunLen(dataRunIdx) <= dataCursor) dataRunIdx++;
    if (dataRunIdx < runCount && usedRunStart(dataRunIdx) <= dataCursor) {
      dataCursor = usedRunStart(dataRunIdx) + <u64>usedRunLen(dataRunIdx);
      continue;
    }
    const avail = freeRunAt(dataCursor, dataRunIdx);
    if (avail == 0) { dataCursor++; continue; }
    let n = want < avail ? want : avail;
    if (n > 32768) n = 32768; // one extent's worth at most
    if (dataCount == MAX_DATA_RUNS) return 0;
    lastDataStart = dataCursor;
    store<u64>(dataStarts + (<usize>dataCount << 3), dataCursor);
    store<u32>(dataLens + (<usize>dataCount << 2), <u32>n);
    dataCount++;
    dataCursor += n;
    return <u32>n;
  }
  return 0;
}

// Merge the data runs into the sorted used runs (both lists are sorted).
function mergeDataRuns(): void {
  const total = runCount + dataCount;
  const ns = heap.alloc(<usize>total << 3);
  const nl = heap.alloc(<usize>total << 2);
  let i: i32 = 0, j: i32 = 0, k: i32 = 0;
  while (i < runCount || j < dataCount) {
    let takeData = false;
    if (i == runCount) takeData = true;
    else if (j < dataCount && load<u64>(dataStarts + (<usize>j << 3)) < usedRunStart(i)) takeData = true;
    if (takeData) {
      store<u64>(ns + (<usize>k << 3), load<u64>(dataStarts + (<usize>j << 3)));
      store<u32>(nl + (<usize>k << 2), load<u32>(dataLens + (<usize>j << 2)));
      j++;
    } else {
      store<u64>(ns + (<usize>k << 3), usedRunStart(i));
      store<u32>(nl + (<usize>k << 2), usedRunLen(i));
      i++;
    }
    k++;
  }
  runStart = ns;
  runLen = nl;
  runCount = total;
  runCap = total;
}

/** Blocks of group g used at mkfs time, superblock copy included. */
export function groupUsedBlocks(g: u32): u32 {
  const first = groupFirstBlock(g);
  const end = first + <u64>groupBlockCount(g);
  let used: u64 = <u64>groupSuperBlocks(g);
  for (let i = firstRunEndingAfter(first); i < runCount; i++) {
    const s = usedRunStart(i);
    if (s >= end) break;
    const e = s + <u64>usedRunLen(i);
    used += (e < end ? e : end) - (s > first ? s : first);
  }
  return <u32>used;
}

// Blocks of g's own bitmaps and inode table that lie inside g: what the kernel and
// e2fsck count as used when they rebuild a BLOCK_UNINIT group's bitmap from the layout.
function groupOwnMetaInside(g: u32): u32 {
  const d = gdPtr(g);
  let n: u32 = 0;
  if (blockGroup(gdBlockBitmap(d)) == g) n++;
  if (blockGroup(gdInodeBitmap(d)) == g) n++;
  const it = gdInodeTable(d);
  const first = groupFirstBlock(g);
  const end = first + <u64>groupBlockCount(g);
  const ite = it + <u64>geoItableBlocks();
  const s = it > first ? it : first;
  const e = ite < end ? ite : end;
  if (e > s) n += <u32>(e - s);
  return n;
}

// Smallest multiple of m that is ≥ v (m > 0).
function roundUp(v: u64, m: u64): u64 { return (v + m - 1) / m * m; }

/**
 * Plan a filesystem. The bindings validated the options; this returns 0 or a negated
 * MKFS_ERR_* reason. On success the geometry, the descriptor table and the used runs
 * describe the whole volume and mkfs_emit.ts can stream it out.
 */
export function mkfsPlan(
  blocks: f64, blockSize: u32, inodeSize: u32, inodeRatio: u32, flex: u32,
  reservedPercent: f64, journalLen: u32, flags: u32, now: f64,
): i32 {
  mkfsParams();
  csumReady = false;
  optFlags = flags;
  flexSize = flex < 1 ? 1 : flex;
  nowSeconds = <u64>now;
  let blocksCount = <u64>blocks;
  const firstData: u32 = blockSize == 1024 ? 1 : 0;
  const bpg: u32 = blockSize * 8;
  if ((flags & MKFS_64BIT) == 0 && blocksCount > 0xFFFFFFFF) return -MKFS_ERR_NEEDS_64BIT;
  const descSize: u32 = (flags & MKFS_64BIT) != 0 ? 64 : 32;
  const perBlock = <u64>(blockSize / inodeSize);
  const ipgStep: u64 = perBlock > 8 ? perBlock : 8;

  // Inodes per group from the bytes-per-inode ratio, rounded to fill whole inode-table
  // blocks and whole bitmap bytes, capped by the bitmap (one block) and 16-bit counters.
  let groups = (blocksCount - <u64>firstData + <u64>bpg - 1) / <u64>bpg;
  let ipg: u64 = 0;
  for (let pass = 0; pass < 2; pass++) {
    groups = (blocksCount - <u64>firstData + <u64>bpg - 1) / <u64>bpg;
    const inodes = blocksCount * <u64>blockSize / <u64>inodeRatio;
    ipg = roundUp((inodes + groups - 1) / groups, ipgStep);
    let maxIpg: u64 = <u64>blockSize * 8;
    if (maxIpg > 65536 - perBlock) maxIpg = (65536 - perBlock) / ipgStep * ipgStep;
    if (ipg > maxIpg) ipg = maxIpg;
    if (ipg < 16) ipg = roundUp(16, ipgStep);
    if (ipg * groups > 0xFFFFFFFF) {
      ipg = 0xFFFFFFFF / groups / ipgStep * ipgStep;
      if (ipg < 16) return -MKFS_ERR_TOO_MANY_INODES;
    }
    // A last group too small to hold its own tables plus some data is dropped, as
    // mke2fs does; otherwise it would be all overhead.
    const rem = (blocksCount - <u64>firstData) % <u64>bpg;
    const itb = (ipg * <u64>inodeSize + <u64>blockSize - 1) / <u64>blockSize;
    const gdtb = (groups * <u64>descSize + <u64>blockSize - 1) / <u64>blockSize;
    const lastOverhead: u64 = 1 + gdtb + 2 + itb + 50;
    if (pass == 0 && rem != 0 && rem < lastOverhead && groups > 1) {
      blocksCount -= rem;
      continue;
    }
    break;
  }
  if (ipg * groups < <u64>FIRST_INO + 1) return -MKFS_ERR_TOO_FEW_INODES;

  geoSet(blockSize, firstData, <f64>blocksCount, bpg, <u32>ipg, inodeSize, descSize, 0, true);
  if (1 + <u64>geoGdtBlocks() + 2 + <u64>geoItableBlocks() >= <u64>groupBlockCount(0))
    return groups > 1 && <u64>geoGdtBlocks() + 1 >= <u64>bpg ? -MKFS_ERR_GDT_TOO_BIG : -MKFS_ERR_TOO_SMALL;
  if (<u64>geoGdtBlocks() + 1 >= <u64>bpg) return -MKFS_ERR_GDT_TOO_BIG;

  gdtInit();
  runCount = 0;
  const ngroups = geoGroupCount();
  const itb = geoItableBlocks();

  // Metadata, one flex group at a time.
  cursor = <u64>firstData;
  let dataGoal: u64 = 0;
  for (let leader: u32 = 0; leader < ngroups; leader += flexSize) {
    const n = ngroups - leader < flexSize ? ngroups - leader : flexSize;
    const leaderStart = groupFirstBlock(leader);
    if (cursor < leaderStart) cursor = leaderStart;
    const bb = place(n);
    if (bb == u64.MAX_VALUE) return -MKFS_ERR_TOO_SMALL;
    const ib = place(n);
    if (ib == u64.MAX_VALUE) return -MKFS_ERR_TOO_SMALL;
    for (let i: u32 = 0; i < n; i++) {
      const d = gdPtr(leader + i);
      gdSetBlockBitmap(d, bb + <u64>i);
      gdSetInodeBitmap(d, ib + <u64>i);
      const it = place(itb);
      if (it == u64.MAX_VALUE) return -MKFS_ERR_TOO_SMALL;
      gdSetInodeTable(d, it);
    }
    if (leader == 0) dataGoal = cursor;
  }

  // Data: the root directory, lost+found, then the journal, right after group 0's tables.
  dataStarts = heap.alloc(<usize>MAX_DATA_RUNS << 3);
  dataLens = heap.alloc(<usize>MAX_DATA_RUNS << 2);
  dataCount = 0;
  dataCursor = dataGoal;
  dataRunIdx = 0;
  if (placeData(1) != 1) return -MKFS_ERR_TOO_SMALL;
  rootBlock = lastDataStart;
  // lost+found gets 16 KiB (at most the 12 direct blocks of old tools, at least 2).
  let lpfWant: u32 = 16384 / blockSize;
  if (lpfWant > 12) lpfWant = 12;
  if (lpfWant < 2) lpfWant = 2;
  if (placeData(<u64>lpfWant) != lpfWant) return -MKFS_ERR_TOO_SMALL;
  lpfBlock = lastDataStart;
  lpfBlocks = lpfWant;

  journalBlocks = (flags & MKFS_JOURNAL) != 0 ? journalLen : 0;
  journalExtents = 0;
  journalLeaf = 0;
  journalExtStart = heap.alloc(<usize>MAX_JOURNAL_EXTENTS << 3);
  journalExtLen = heap.alloc(<usize>MAX_JOURNAL_EXTENTS << 2);
  if (journalBlocks > 0) {
    let left = <u64>journalBlocks;
    while (left > 0) {
      if (journalExtents == MAX_JOURNAL_EXTENTS) return -MKFS_ERR_TOO_SMALL;
      const got = placeData(left);
      if (got == 0) return -MKFS_ERR_TOO_SMALL;
      store<u64>(journalExtStart + (<usize>journalExtents << 3), lastDataStart);
      store<u32>(journalExtLen + (<usize>journalExtents << 2), got);
      journalExtents++;
      left -= <u64>got;
    }
    if (journalExtents > 4) {
      // More extents than the inode holds: one leaf block (depth-1 tree).
      if (placeData(1) != 1) return -MKFS_ERR_TOO_SMALL;
      journalLeaf = lastDataStart;
    }
  }
  mergeDataRuns();

  // Descriptors: free counts, flags, unused inode counts.
  const ipg32 = geoInodesPerGroup();
  const csumBits = true; // metadata_csum or gdt_csum is always on: uninit flags are valid
  const lazy = (flags & MKFS_LAZY_ITABLE) != 0;
  freeBlocksTotal = 0;
  freeInodesTotal = 0;
  let usedTotal: u64 = <u64>firstData;
  for (let g: u32 = 0; g < ngroups; g++) {
    const d = gdPtr(g);
    const used = groupUsedBlocks(g);
    usedTotal += <u64>used;
    const free = groupBlockCount(g) - used;
    gdSetFreeBlocks(d, free);
    freeBlocksTotal += <u64>free;
    let gflags: u32 = 0;
    if (g == 0) {
      gdSetFreeInodes(d, ipg32 - FIRST_INO);
      gdSetUsedDirs(d, 2);
      gdSetItableUnused(d, ipg32 - FIRST_INO);
      freeInodesTotal += <u64>(ipg32 - FIRST_INO);
    } else {
      gdSetFreeInodes(d, ipg32);
      gdSetItableUnused(d, ipg32);
      freeInodesTotal += <u64>ipg32;
      if (csumBits) gflags |= BG_INODE_UNINIT;
    }
    // BLOCK_UNINIT only where the bitmap can be rebuilt from the layout alone: nothing
    // but this group's own superblock copy and own tables in it, and never the last group.
    if (csumBits && g != 0 && g != ngroups - 1 && used == groupSuperBlocks(g) + groupOwnMetaInside(g))
      gflags |= BG_BLOCK_UNINIT;
    if (!lazy) gflags |= BG_INODE_ZEROED;
    gdSetFlags(d, gflags);
  }
  overheadBlocks = usedTotal - <u64>(1 + lpfBlocks);
  const r = <u64>(<f64>blocksCount * reservedPercent / 100.0);
  reservedBlocks = r;

  // Checksums need the superblock (seed, features, sizes): build the primary now.
  const sb = buildSuperblock(0);
  csumConfigure(sb);
  csumReady = true;
  const scratch = mkfsScratch();
  const metadataCsum = (flags & MKFS_METADATA_CSUM) != 0;
  for (let g: u32 = 0; g < ngroups; g++) {
    const d = gdPtr(g);
    if (metadataCsum) {
      const f = gdFlags(d);
      const bbPtr: usize = (f & BG_BLOCK_UNINIT) != 0 ? 0 : buildBlockBitmap(g, scratch);
      const ibPtr: usize = (f & BG_INODE_UNINIT) != 0 ? 0 : buildInodeBitmap(g, scratch + <usize>geoBlockSize());
      gdSetBitmapCsums(d, bbPtr, ibPtr);
    }
    gdCsumSet(d, g);
  }
  return 0;
}

export function mkfsReservedBlocks(): f64 { return <f64>reservedBlocks; }
export function mkfsFreeBlocks(): f64 { return <f64>freeBlocksTotal; }
export function mkfsFreeInodes(): f64 { return <f64>freeInodesTotal; }
export function mkfsOverheadBlocks(): f64 { return <f64>overheadBlocks; }
export function mkfsJournalBlocks(): u32 { return journalBlocks; }
export function mkfsJournalExtents(): i32 { return journalExtents; }
export function mkfsJournalExtentStart(i: i32): f64 { return <f64>load<u64>(journalExtStart + (<usize>i << 3)); }
export function mkfsJournalExtentLen(i: i32): u32 { return load<u32>(journalExtLen + (<usize>i << 2)); }
export function mkfsJournalLeaf(): f64 { return <f64>journalLeaf; }
export function mkfsRootBlock(): f64 { return <f64>rootBlock; }
export function mkfsLpfBlock(): f64 { return <f64>lpfBlock; }
export function mkfsLpfBlocks(): u32 { return lpfBlocks; }
export function mkfsFlexSize(): u32 { return flexSize; }
