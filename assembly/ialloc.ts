// Inode allocation: which group a new inode goes to, which bit of that group's inode
// bitmap it takes, and the descriptor bookkeeping (free inodes, used directories,
// itable_unused, INODE_UNINIT, checksums) that must change with it.
//
// Why the group choice matters: it decides where a file's data goes (the block goal is
// derived from the inode's group), so it decides locality for the volume's whole life.
// The policy is the one that has served ext2/3/4 well ("Orlov"), in our own terms:
//   - a directory created at the top level is spread: among the allocation units (flex
//     groups with flex_bg, else groups) whose free inodes and free blocks are both at
//     least the volume average, the one with the fewest directories wins; the scan starts
//     at a hash of the parent's group and a rotor, so ties fall to different units in
//     turn and results are deterministic for a given sequence of calls;
//   - a nested directory stays near its parent unless the parent's unit is crowded (too
//     many directories, or clearly fewer free inodes or blocks than average);
//   - a file goes to its parent's group, else the rest of the parent's flex group, else a
//     quadratic probe away from the parent, else any group with a free inode.
// All of it reads only the in-memory descriptor table: no bitmap I/O to decide.
//
// Within the group the lowest free inode is taken. That matters with lazy inode tables:
// e2fsck and the kernel look only at the first (inodes_per_group - itable_unused) inodes
// of a group, so the "in use" region must grow to cover a new inode, and taking the
// lowest free one means it grows by exactly one record — never over a stretch of
// records that were never initialised.
//
// INODE_UNINIT groups have no inode bitmap on disk; iallocInitBitmap builds it (all free
// except reserved inodes that fall in the group, padding past inodes_per_group set) after
// checking the descriptor agrees (every inode free, no directories). A group may keep
// BLOCK_UNINIT while its inodes are in use: e2fsprogs 1.47 dropped the check that once
// objected, and the kernel rebuilds such a bitmap from the layout either way.
//
// Locking: as for blocks (balloc.ts), every call is synchronous; the bindings hold the
// group's lock across fetch-initialise-allocate. Totals of free inodes and directories
// are kept here and recomputed whenever balloc.ts's allocInit runs (allocEpoch changes).

import { BG_INODE_UNINIT } from "./ondisk/features";
import { geoBlockSize, geoBlocksPerGroup, geoGroupCount, geoInodesPerGroup } from "./geometry";
import {
  gdPtr, gdFlags, gdFreeBlocks, gdFreeInodes, gdItableUnused, gdSetFlags, gdSetFreeInodes,
  gdSetItableUnused, gdSetUsedDirs, gdUsedDirs,
} from "./groups";
import { gdCsumSet, gdPatchInodeBitmapCsum, gdSetBitmapCsums } from "./csum";
import { crc32cUpdate } from "./crc32c";
import { bitmapClearBit, bitmapFindZero, bitmapSetBit, bitmapSetRange, bitmapTest } from "./bitmap";
import {
  ALLOC_ERR_ARG, ALLOC_ERR_CORRUPT, ALLOC_ERR_COUNTS, ALLOC_ERR_DOUBLE_FREE, ALLOC_ERR_NOT_READY,
  ALLOC_ERR_RESERVED_INO, ALLOC_ERR_STATE, ALLOC_ERR_DESC_CSUM, ALLOC_GROUP_INODES_BAD, allocDescOk, allocEpoch, allocFirstIno,
  allocFlexSize, allocFreeBlocksTotal, allocGroupCsum, allocGroupState, allocReady,
} from "./balloc";

let totalsEpoch: u32 = 0;
let freeInodesTotal: u64 = 0;
let dirsTotal: u64 = 0;
let rotor: u32 = 0;
let resultIno: u32 = 0;

// ── totals ────────────────────────────────────────────────────────────────────────────

/** Recompute the free-inode and directory totals from the descriptors. */
export function iallocRecount(): void {
  let fi: u64 = 0, nd: u64 = 0;
  const groups = geoGroupCount();
  for (let g: u32 = 0; g < groups; g++) {
    const d = gdPtr(g);
    fi += <u64>gdFreeInodes(d);
    nd += <u64>gdUsedDirs(d);
  }
  freeInodesTotal = fi;
  dirsTotal = nd;
  totalsEpoch = allocEpoch();
}

function ensureTotals(): void {
  if (totalsEpoch != allocEpoch()) iallocRecount();
}

/** Free inodes on the volume (sum of the descriptors). */
export function allocFreeInodesTotal(): f64 {
  ensureTotals();
  return <f64>freeInodesTotal;
}

/** Directories on the volume (sum of the descriptors' used-dirs counts). */
export function allocDirsTotal(): f64 {
  ensureTotals();
  return <f64>dirsTotal;
}

// ── helpers ───────────────────────────────────────────────────────────────────────────

// Inodes of group g whose numbers are reserved (below s_first_ino): normally the first
// ten of group 0, but a tiny inodes_per_group can spread them over several groups.
function reservedIn(g: u32): u32 {
  const ipg = <u64>geoInodesPerGroup();
  const first = <u64>g * ipg;            // inode number before the group's first
  const fi = <u64>allocFirstIno();
  if (fi <= first + 1) return 0;
  const r = fi - 1 - first;
  return <u32>(r < ipg ? r : ipg);
}

function inodesUsable(g: u32): bool {
  return (allocGroupState(g) & ALLOC_GROUP_INODES_BAD) == 0;
}

function hasFreeInode(g: u32): bool {
  return inodesUsable(g) && gdFreeInodes(gdPtr(g)) > 0;
}

/** Whether group g's inode bitmap must be built (iallocInitBitmap) instead of read. */
export function iallocNeedsInit(g: u32): bool {
  if (g >= geoGroupCount()) return false;
  return allocGroupCsum() && (gdFlags(gdPtr(g)) & <u32>BG_INODE_UNINIT) != 0;
}

// ── group choice ──────────────────────────────────────────────────────────────────────

// Statistics of an allocation unit (flex group, or group), set by unitStats.
let uFreeI: u64 = 0;
let uFreeB: u64 = 0;
let uDirs: u64 = 0;

function unitSize(): u32 {
  const f = allocFlexSize();
  return f > 1 ? f : 1;
}

function unitCount(): u32 {
  const f = <u64>unitSize();
  return <u32>((<u64>geoGroupCount() + f - 1) / f);
}

function unitFirst(u: u32): u32 {
  return <u32>(<u64>u * <u64>unitSize());
}

function unitEnd(u: u32): u32 {
  const e = <u64>unitFirst(u) + <u64>unitSize();
  const n = <u64>geoGroupCount();
  return <u32>(e < n ? e : n);
}

function unitStats(u: u32): void {
  uFreeI = 0;
  uFreeB = 0;
  uDirs = 0;
  const end = unitEnd(u);
  for (let g = unitFirst(u); g < end; g++) {
    const d = gdPtr(g);
    uDirs += <u64>gdUsedDirs(d);
    if (!inodesUsable(g)) continue;
    uFreeI += <u64>gdFreeInodes(d);
    uFreeB += <u64>gdFreeBlocks(d);
  }
}

// A group of unit u with a free inode, starting at `from` (inside u) and wrapping within
// the unit; groups that also have free blocks first. -1 if none.
function pickInUnit(u: u32, from: u32): i32 {
  const s = unitFirst(u), e = unitEnd(u);
  const len = e - s;
  const off = from >= s && from < e ? from - s : 0;
  for (let pass = 0; pass < 2; pass++) {
    for (let k: u32 = 0; k < len; k++) {
      const g = s + (off + k) % len;
      if (!hasFreeInode(g)) continue;
      if (pass == 0 && gdFreeBlocks(gdPtr(g)) == 0) continue;
      return <i32>g;
    }
  }
  return -1;
}

// A 32-bit mix (multiply-xorshift) so consecutive inputs land far apart.
function mix(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  x ^= x >>> 16;
  return x;
}

function pickTopDir(parentGroup: u32): i32 {
  const nu = unitCount();
  const aveI = freeInodesTotal / <u64>nu;
  const aveB = <u64>allocFreeBlocksTotal() / <u64>nu;
  const start = mix(parentGroup ^ mix(rotor)) % nu;
  rotor++;
  let best: i32 = -1;
  let bestDirs = u64.MAX_VALUE;
  for (let k: u32 = 0; k < nu; k++) {
    const u = <u32>((<u64>start + <u64>k) % <u64>nu);
    unitStats(u);
    if (uFreeI == 0 || uFreeI < aveI || uFreeB < aveB) continue;
    if (uDirs < bestDirs) {
      best = <i32>u;
      bestDirs = uDirs;
    }
  }
  if (best < 0) return -1;
  return pickInUnit(<u32>best, unitFirst(<u32>best));
}

function pickNestedDir(parentGroup: u32): i32 {
  const nu = unitCount();
  const f = <u64>unitSize();
  const aveI = freeInodesTotal / <u64>nu;
  const aveB = <u64>allocFreeBlocksTotal() / <u64>nu;
  const ipgUnit = <u64>geoInodesPerGroup() * f;
  const bpgUnit = <u64>geoBlocksPerGroup() * f;
  const maxDirs = dirsTotal / <u64>nu + ipgUnit / 16;
  let minI = aveI > ipgUnit / 4 ? aveI - ipgUnit / 4 : 0;
  if (minI == 0) minI = 1;
  const minB = aveB > bpgUnit / 4 ? aveB - bpgUnit / 4 : 0;
  const pu = <u32>(<u64>parentGroup / f);
  for (let k: u32 = 0; k < nu; k++) {
    const u = <u32>((<u64>pu + <u64>k) % <u64>nu);
    unitStats(u);
    if (uDirs >= maxDirs || uFreeI < minI || uFreeB < minB) continue;
    const g = pickInUnit(u, u == pu ? parentGroup : unitFirst(u));
    if (g >= 0) return g;
  }
  // Crowded everywhere: settle for average free inodes, then for anything.
  const want = aveI > 0 ? aveI : 1;
  for (let pass = 0; pass < 2; pass++) {
    for (let k: u32 = 0; k < nu; k++) {
      const u = <u32>((<u64>pu + <u64>k) % <u64>nu);
      unitStats(u);
      if (uFreeI == 0 || (pass == 0 && uFreeI < want)) continue;
      const g = pickInUnit(u, u == pu ? parentGroup : unitFirst(u));
      if (g >= 0) return g;
    }
  }
  return -1;
}

function pickFile(parentGroup: u32): i32 {
  const n = geoGroupCount();
  const pd = gdPtr(parentGroup);
  if (hasFreeInode(parentGroup) && gdFreeBlocks(pd) > 0) return <i32>parentGroup;
  const f = unitSize();
  if (f > 1) {
    const u = <u32>(<u64>parentGroup / <u64>f);
    const s = unitFirst(u), e = unitEnd(u);
    for (let k: u32 = 1; k < e - s; k++) {
      const g = s + (parentGroup - s + k) % (e - s);
      if (hasFreeInode(g) && gdFreeBlocks(gdPtr(g)) > 0) return <i32>g;
    }
  }
  // Quadratic probe: parent + 1, + 3, + 7, ... reaches far groups in few steps.
  let g = <u64>parentGroup;
  for (let step: u64 = 1; step < <u64>n; step <<= 1) {
    g = (g + step) % <u64>n;
    if (hasFreeInode(<u32>g) && gdFreeBlocks(gdPtr(<u32>g)) > 0) return <i32>g;
  }
  for (let k: u32 = 0; k < n; k++) {
    const h = <u32>((<u64>parentGroup + <u64>k) % <u64>n);
    if (hasFreeInode(h)) return <i32>h;
  }
  return -1;
}

/**
 * The group for a new inode whose parent directory is in parentGroup (see the essay for
 * the policy); topLevel marks a directory created in the root. -1 if no usable group has
 * a free inode.
 */
export function iallocPickGroup(parentGroup: u32, isDir: bool, topLevel: bool): i32 {
  if (!allocReady()) return -1;
  const n = geoGroupCount();
  if (parentGroup >= n) parentGroup = 0;
  ensureTotals();
  if (freeInodesTotal == 0) return -1;
  if (!isDir) return pickFile(parentGroup);
  if (topLevel) {
    const g = pickTopDir(parentGroup);
    if (g >= 0) return g;
  }
  return pickNestedDir(parentGroup);
}

// ── uninitialised groups ──────────────────────────────────────────────────────────────

/**
 * Check that INODE_UNINIT group g can be initialised: 0, -ALLOC_ERR_STATE (it is not
 * uninitialised), -ALLOC_ERR_DESC_CSUM or -ALLOC_ERR_COUNTS (its descriptor does not say "all free, no
 * directories"). Touches no caller memory.
 */
export function iallocInitCheck(g: u32): i32 {
  if (!allocReady()) return -ALLOC_ERR_NOT_READY;
  if (g >= geoGroupCount()) return -ALLOC_ERR_ARG;
  if (!iallocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  const d = gdPtr(g);
  if (gdFreeInodes(d) != geoInodesPerGroup() - reservedIn(g) || gdUsedDirs(d) != 0) return -ALLOC_ERR_COUNTS;
  return 0;
}

/**
 * Initialise INODE_UNINIT group g: build its inode bitmap at bitmapPtr (a whole block:
 * reserved inodes and the padding past inodes_per_group set, the rest clear), clear the
 * flag, set checksums. Returns 0 or iallocInitCheck's error (nothing changed then).
 */
export function iallocInitBitmap(bitmapPtr: usize, g: u32): i32 {
  const rc = iallocInitCheck(g);
  if (rc < 0) return rc;
  const bs = geoBlockSize();
  const ipg = geoInodesPerGroup();
  memory.fill(bitmapPtr, 0, <usize>bs);
  bitmapSetRange(bitmapPtr, 0, reservedIn(g));
  if (ipg < bs * 8) bitmapSetRange(bitmapPtr, ipg, bs * 8 - ipg);
  const d = gdPtr(g);
  gdSetFlags(d, gdFlags(d) & ~<u32>BG_INODE_UNINIT);
  gdSetBitmapCsums(d, 0, bitmapPtr);
  gdCsumSet(d, g);
  return 0;
}

// ── allocate and free ─────────────────────────────────────────────────────────────────

/**
 * Take the lowest free inode of group g (inode bitmap at bitmapPtr). Returns 1 (the inode
 * number is in iallocResultIno()), 0 if the descriptor says the group is full, or a
 * negated ALLOC_ERR_*: STATE (call iallocInitBitmap first), DESC_CSUM, CORRUPT (the
 * descriptor says free, the bitmap says full); nothing is changed on error.
 * csumKnown: the descriptor's bitmap checksum is right for this bitmap (the caller
 * verified it, or the engine set it since), so it is patched for the one changed byte
 * instead of summed over the whole bitmap (csum.ts gdPatchInodeBitmapCsum).
 */
export function iallocInBitmap(bitmapPtr: usize, g: u32, isDir: bool, csumKnown: bool): i32 {
  if (!allocReady()) return -ALLOC_ERR_NOT_READY;
  if (g >= geoGroupCount()) return -ALLOC_ERR_ARG;
  if (iallocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  ensureTotals();
  const d = gdPtr(g);
  const free = gdFreeInodes(d);
  if (free == 0) return 0;
  const ipg = geoInodesPerGroup();
  const i = bitmapFindZero(bitmapPtr, reservedIn(g), ipg);
  if (i < 0) return -ALLOC_ERR_CORRUPT;
  const changed = bitmapPtr + <usize>(<u32>i >>> 3);
  const before = crc32cUpdate(0, changed, 1);
  bitmapSetBit(bitmapPtr, <u32>i);
  gdSetFreeInodes(d, free - 1);
  if (isDir) gdSetUsedDirs(d, gdUsedDirs(d) + 1);
  if (allocGroupCsum()) {
    // Grow the "in use" region to cover inode i; never claim more unused than free.
    let unused = gdItableUnused(d);
    if (unused > ipg) unused = ipg;
    if (<u32>i >= ipg - unused) unused = ipg - <u32>i - 1;
    if (unused > free - 1) unused = free - 1;
    gdSetItableUnused(d, unused);
  }
  gdPatchInodeBitmapCsum(d, bitmapPtr, (<u32>i >>> 3) + 1, before, crc32cUpdate(0, changed, 1), csumKnown);
  gdCsumSet(d, g);
  freeInodesTotal--;
  if (isDir) dirsTotal++;
  resultIno = <u32>(<u64>g * <u64>ipg + <u64>i + 1);
  return 1;
}

/** Inode number the last successful iallocInBitmap took. */
export function iallocResultIno(): f64 { return <f64>resultIno; }

/**
 * Free inode `index` (0-based within group g) in the bitmap at bitmapPtr. Refuses,
 * changing nothing: -ALLOC_ERR_ARG, -ALLOC_ERR_RESERVED_INO (a reserved inode),
 * -ALLOC_ERR_STATE (group uninitialised: nothing there is allocated), -ALLOC_ERR_DESC_CSUM,
 * -ALLOC_ERR_DOUBLE_FREE (already free), -ALLOC_ERR_CORRUPT (free count already full).
 * A directory count already at zero stays zero. Returns 0 on success.
 */
export function iallocFree(bitmapPtr: usize, g: u32, index: u32, isDir: bool): i32 {
  if (!allocReady()) return -ALLOC_ERR_NOT_READY;
  const ipg = geoInodesPerGroup();
  if (g >= geoGroupCount() || index >= ipg) return -ALLOC_ERR_ARG;
  if (index < reservedIn(g)) return -ALLOC_ERR_RESERVED_INO;
  if (iallocNeedsInit(g)) return -ALLOC_ERR_STATE;
  if (!allocDescOk(g)) return -ALLOC_ERR_DESC_CSUM;
  if (!bitmapTest(bitmapPtr, index)) return -ALLOC_ERR_DOUBLE_FREE;
  ensureTotals();
  const d = gdPtr(g);
  const free = gdFreeInodes(d);
  if (free >= ipg) return -ALLOC_ERR_CORRUPT;
  bitmapClearBit(bitmapPtr, index);
  gdSetFreeInodes(d, free + 1);
  freeInodesTotal++;
  if (isDir) {
    const nd = gdUsedDirs(d);
    if (nd > 0) {
      gdSetUsedDirs(d, nd - 1);
      dirsTotal--;
    }
  }
  gdSetBitmapCsums(d, 0, bitmapPtr);
  gdCsumSet(d, g);
  return 0;
}
