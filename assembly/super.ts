// Superblock and group-descriptor validation at mount.
//
// Why here and not in the bindings: these are the first bytes of an untrusted image the
// engine touches, and every later bound check (block numbers, inode numbers, table
// extents) leans on the geometry derived from them. So the superblock is checked as a
// whole before anything uses it — magic, checksum, sizes that must be powers of two,
// group geometry that must tile the volume, counts that must agree — and only then does
// sbLoadGeometry publish it to geometry.ts. Feature policy (which features we can read or
// write) is the bindings' decision; they read the feature words themselves.
//
// Descriptors are checked one by one (gdCheck) so that one bad group makes only the
// inodes and blocks of that group unusable, not the whole volume.

import {
  SB_MAGIC, SB_REV_LEVEL, SB_LOG_BLOCK_SIZE, SB_LOG_CLUSTER_SIZE, SB_BLOCKS_PER_GROUP,
  SB_CLUSTERS_PER_GROUP, SB_INODES_PER_GROUP, SB_INODES_COUNT, SB_BLOCKS_COUNT_LO,
  SB_BLOCKS_COUNT_HI, SB_FIRST_DATA_BLOCK, SB_INODE_SIZE, SB_FIRST_INO, SB_FEATURE_INCOMPAT,
  SB_FEATURE_RO_COMPAT, SB_DESC_SIZE, SB_RESERVED_GDT_BLOCKS, SB_FIRST_META_BG, SB_FEATURE_COMPAT,
  SB_LOG_GROUPS_PER_FLEX, SB_SIZE,
} from "./ondisk/superblock";
import {
  EXT4_SUPER_MAGIC, FEATURE_INCOMPAT_64BIT, FEATURE_INCOMPAT_META_BG, FEATURE_RO_COMPAT_SPARSE_SUPER,
  FEATURE_RO_COMPAT_METADATA_CSUM, FEATURE_RO_COMPAT_GDT_CSUM, FEATURE_RO_COMPAT_BIGALLOC,
  FEATURE_COMPAT_RESIZE_INODE, FEATURE_INCOMPAT_FLEX_BG, BG_INODE_UNINIT,
} from "./ondisk/features";
import { geoSet, geoGroupCount, geoGdtBlocks, geoDescSize, geoBlockSize, geoInodesPerGroup,
  geoItableBlocks, geoFirstDataBlock, blocksCountU64, groupFirstBlock, groupBlockCount,
  groupHasSuper, blockGroup } from "./geometry";
import { gdPtr, gdBlockBitmap, gdInodeBitmap, gdInodeTable, gdFreeBlocks, gdFreeInodes,
  gdItableUnused, gdFlags } from "./groups";
import { csumConfigure, sbCsumVerify, gdCsumVerify } from "./csum";

// sbCheck failure reasons (returned negated).
export const SBE_MAGIC: i32 = 1;
export const SBE_CHECKSUM: i32 = 2;
export const SBE_BLOCK_SIZE: i32 = 3;
export const SBE_CLUSTER_SIZE: i32 = 4;
export const SBE_GROUP_SIZE: i32 = 5;
export const SBE_INODE_SIZE: i32 = 6;
export const SBE_COUNTS: i32 = 7;
export const SBE_FIRST_DATA_BLOCK: i32 = 8;
export const SBE_DESC_SIZE: i32 = 9;
export const SBE_PAST_DEVICE: i32 = 10;
export const SBE_REVISION: i32 = 11;
export const SBE_FIRST_INO: i32 = 12;
export const SBE_GDT: i32 = 13;
export const SBE_FLEX: i32 = 14;

let metaBg: bool = false;
let firstMetaBg: u32 = 0;

function u16at(sb: usize, off: i32): u32 { return <u32>load<u16>(sb + <usize>off); }
function u32at(sb: usize, off: i32): u32 { return load<u32>(sb + <usize>off); }

/** Total blocks recorded in a superblock (hi half only with 64bit). */
function sbBlocks(sb: usize): u64 {
  let n = <u64>u32at(sb, SB_BLOCKS_COUNT_LO);
  if ((u32at(sb, SB_FEATURE_INCOMPAT) & FEATURE_INCOMPAT_64BIT) != 0) n |= <u64>u32at(sb, SB_BLOCKS_COUNT_HI) << 32;
  return n;
}

/**
 * Validate the superblock at sb (SB_SIZE bytes) for a device of deviceBytes bytes.
 * Returns 0 or a negated SBE_* reason. Touches nothing but sb and the checksum context.
 */
export function sbCheck(sb: usize, deviceBytes: f64): i32 {
  if (u16at(sb, SB_MAGIC) != <u32>EXT4_SUPER_MAGIC) return -SBE_MAGIC;
  const rev = u32at(sb, SB_REV_LEVEL);
  if (rev > 1) return -SBE_REVISION;
  const logBs = u32at(sb, SB_LOG_BLOCK_SIZE);
  if (logBs > 6) return -SBE_BLOCK_SIZE; // 1 KiB .. 64 KiB
  const bs: u32 = 1024 << logBs;
  const ro = u32at(sb, SB_FEATURE_RO_COMPAT);
  const incompat = u32at(sb, SB_FEATURE_INCOMPAT);
  if ((ro & FEATURE_RO_COMPAT_BIGALLOC) == 0) {
    if (u32at(sb, SB_LOG_CLUSTER_SIZE) != logBs) return -SBE_CLUSTER_SIZE;
    if (u32at(sb, SB_CLUSTERS_PER_GROUP) != u32at(sb, SB_BLOCKS_PER_GROUP)) return -SBE_CLUSTER_SIZE;
  } else if (u32at(sb, SB_LOG_CLUSTER_SIZE) < logBs || u32at(sb, SB_LOG_CLUSTER_SIZE) > logBs + 16) {
    return -SBE_CLUSTER_SIZE;
  }
  const bpg = u32at(sb, SB_BLOCKS_PER_GROUP);
  // Without bigalloc a group's block bitmap is one block: at most 8 * block size blocks.
  if (bpg < 8 || (bpg & 7) != 0 || ((ro & FEATURE_RO_COMPAT_BIGALLOC) == 0 && bpg > bs * 8)) return -SBE_GROUP_SIZE;
  const ipg = u32at(sb, SB_INODES_PER_GROUP);
  if (ipg == 0 || ipg > bs * 8 || (ipg & 7) != 0) return -SBE_GROUP_SIZE;
  let isz: u32 = 128;
  if (rev >= 1) {
    isz = u16at(sb, SB_INODE_SIZE);
    if (isz < 128 || isz > bs || (isz & (isz - 1)) != 0) return -SBE_INODE_SIZE;
    const firstIno = u32at(sb, SB_FIRST_INO);
    if (firstIno < 11 || firstIno > u32at(sb, SB_INODES_COUNT)) return -SBE_FIRST_INO;
  }
  const first = u32at(sb, SB_FIRST_DATA_BLOCK);
  if (first != (bs == 1024 ? 1 : 0)) return -SBE_FIRST_DATA_BLOCK;
  const blocks = sbBlocks(sb);
  if (blocks <= <u64>first + 1) return -SBE_COUNTS;
  if (<f64>blocks * <f64>bs > deviceBytes) return -SBE_PAST_DEVICE;
  const groups = (blocks - <u64>first + <u64>bpg - 1) / <u64>bpg;
  if (groups > 0xFFFFFFFF || <u64>u32at(sb, SB_INODES_COUNT) != groups * <u64>ipg) return -SBE_COUNTS;
  let dsz: u32 = 32;
  if ((incompat & FEATURE_INCOMPAT_64BIT) != 0) {
    dsz = u16at(sb, SB_DESC_SIZE);
    if (dsz < 32 || dsz > 1024 || (dsz & (dsz - 1)) != 0 || dsz > bs) return -SBE_DESC_SIZE;
  }
  if (<u32>load<u8>(sb + <usize>SB_LOG_GROUPS_PER_FLEX) > 31 && (incompat & FEATURE_INCOMPAT_FLEX_BG) != 0) return -SBE_FLEX;
  // The descriptor table (without meta_bg) must fit in group 0 after the superblock.
  const gdtBlocks = (groups * <u64>dsz + <u64>bs - 1) / <u64>bs;
  if ((incompat & FEATURE_INCOMPAT_META_BG) == 0 && gdtBlocks + 1 > <u64>bpg) return -SBE_GDT;
  if ((incompat & FEATURE_INCOMPAT_META_BG) != 0 && <u64>u32at(sb, SB_FIRST_META_BG) > gdtBlocks) return -SBE_GDT;
  if (!csumConfigure(sb)) return -SBE_CHECKSUM;
  if (!sbCsumVerify(sb)) return -SBE_CHECKSUM;
  return 0;
}

/** Publish a superblock that passed sbCheck to geometry.ts (and meta_bg state here). */
export function sbLoadGeometry(sb: usize): void {
  const bs: u32 = 1024 << u32at(sb, SB_LOG_BLOCK_SIZE);
  const incompat = u32at(sb, SB_FEATURE_INCOMPAT);
  const rev = u32at(sb, SB_REV_LEVEL);
  const dsz: u32 = (incompat & FEATURE_INCOMPAT_64BIT) != 0 ? u16at(sb, SB_DESC_SIZE) : 32;
  const resized = (u32at(sb, SB_FEATURE_COMPAT) & FEATURE_COMPAT_RESIZE_INODE) != 0;
  metaBg = (incompat & FEATURE_INCOMPAT_META_BG) != 0;
  firstMetaBg = u32at(sb, SB_FIRST_META_BG);
  geoSet(bs, u32at(sb, SB_FIRST_DATA_BLOCK), <f64>sbBlocks(sb), u32at(sb, SB_BLOCKS_PER_GROUP),
    u32at(sb, SB_INODES_PER_GROUP), rev >= 1 ? u16at(sb, SB_INODE_SIZE) : 128, dsz,
    resized ? u16at(sb, SB_RESERVED_GDT_BLOCKS) : 0,
    (u32at(sb, SB_FEATURE_RO_COMPAT) & FEATURE_RO_COMPAT_SPARSE_SUPER) != 0);
}

/**
 * Block holding descriptor-table block i (0 ≤ i < gdt blocks). Without meta_bg the table
 * follows the primary superblock; with meta_bg, block i ≥ first_meta_bg lives in the
 * first group of meta group i (after that group's superblock copy, if it has one).
 */
export function gdtBlockLocation(i: u32): f64 {
  const first = <u64>geoFirstDataBlock();
  if (!metaBg || i < firstMetaBg) return <f64>(first + 1 + <u64>i);
  const perBlock = geoBlockSize() / geoDescSize();
  const g = i * perBlock;
  return <f64>(groupFirstBlock(g) + (groupHasSuper(g) ? 1 : 0));
}

// gdCheck failure reasons (negated).
export const GDE_CHECKSUM: i32 = 1;
export const GDE_BLOCK_BITMAP: i32 = 2;
export const GDE_INODE_BITMAP: i32 = 3;
export const GDE_INODE_TABLE: i32 = 4;
export const GDE_COUNTS: i32 = 5;

// A metadata block must lie inside the volume, past the primary superblock and table,
// and, without flex_bg, inside its own group.
function metaBlockOk(b: u64, g: u32, flex: bool): bool {
  const blocks = blocksCountU64();
  if (b >= blocks || b < <u64>geoFirstDataBlock()) return false;
  if (!metaBg && b <= <u64>geoFirstDataBlock() + <u64>geoGdtBlocks()) return false;
  if (!flex && blockGroup(b) != g) return false;
  return true;
}

/**
 * Check descriptor g (already in the in-memory table). Returns 0, or a negated GDE_*
 * reason: a checksum mismatch is reported but is the mildest (callers may still use the
 * group read-only); the location reasons make the group unusable.
 */
export function gdCheck(g: u32, flex: bool, csum: bool): i32 {
  const d = gdPtr(g);
  if (!metaBlockOk(gdBlockBitmap(d), g, flex)) return -GDE_BLOCK_BITMAP;
  if (!metaBlockOk(gdInodeBitmap(d), g, flex)) return -GDE_INODE_BITMAP;
  const it = gdInodeTable(d);
  if (!metaBlockOk(it, g, flex)) return -GDE_INODE_TABLE;
  const itEnd = it + <u64>geoItableBlocks() - 1;
  if (!metaBlockOk(itEnd, g, flex)) return -GDE_INODE_TABLE;
  if (gdFreeBlocks(d) > groupBlockCount(g) || gdFreeInodes(d) > geoInodesPerGroup()) return -GDE_COUNTS;
  if (csum && gdItableUnused(d) > geoInodesPerGroup()) return -GDE_COUNTS;
  if (csum && !gdCsumVerify(d, g)) return -GDE_CHECKSUM;
  return 0;
}

/**
 * How many inodes of group g may be in use: all of them, unless the group carries
 * checksums and says (INODE_UNINIT / itable_unused) that the tail was never used.
 */
export function groupInodesInUse(g: u32, csum: bool): u32 {
  const d = gdPtr(g);
  if (!csum) return geoInodesPerGroup();
  if ((gdFlags(d) & BG_INODE_UNINIT) != 0) return 0;
  const unused = gdItableUnused(d);
  return unused >= geoInodesPerGroup() ? 0 : geoInodesPerGroup() - unused;
}

export function sbFeatureMetadataCsum(sb: usize): bool {
  return (u32at(sb, SB_FEATURE_RO_COMPAT) & FEATURE_RO_COMPAT_METADATA_CSUM) != 0;
}
export function sbFeatureGroupCsum(sb: usize): bool {
  return (u32at(sb, SB_FEATURE_RO_COMPAT) & (FEATURE_RO_COMPAT_METADATA_CSUM | FEATURE_RO_COMPAT_GDT_CSUM)) != 0;
}

/** Copy descriptor-table block i (at src) into the in-memory table. */
export function gdtLoadBlock(i: u32, src: usize): void {
  const perBlock = geoBlockSize() / geoDescSize();
  const firstGroup = i * perBlock;
  const groups = geoGroupCount();
  if (firstGroup >= groups) return;
  let n = groups - firstGroup;
  if (n > perBlock) n = perBlock;
  memory.copy(gdPtr(firstGroup), src, <usize>n * <usize>geoDescSize());
}

export const SUPERBLOCK_BYTES: i32 = SB_SIZE;
