// mkfs, part 2: producing the blocks of a planned filesystem, in device order.
//
// Why an iterator: the bindings own I/O, and mkfs of a large volume must leave in few,
// large requests. mkfsRunInit lists every block range mkfs writes ("items"), sorted by
// block number; mkfsRunNext then fills a staging buffer with as many consecutive blocks
// as fit — superblock copy, descriptor table, bitmaps, inode-table head, directories,
// journal superblock, back to back when they are adjacent on disk — and hands back one
// device request. Ranges that only need zeros (inode tables when not lazy, the journal
// body) come back as separate "zero" runs so the device can use a cheap zeroout.
//
// Nothing here decides layout; it renders what mkfs_plan.ts decided.
//
// Item table (sorted by start):
//   +0 u64 start block   +8 u32 block count   +12 u16 kind   +14 u16 (pad)   +16 u32 arg

import {
  SB_INODES_COUNT, SB_BLOCKS_COUNT_LO, SB_R_BLOCKS_COUNT_LO, SB_FREE_BLOCKS_COUNT_LO,
  SB_FREE_INODES_COUNT, SB_FIRST_DATA_BLOCK, SB_LOG_BLOCK_SIZE, SB_LOG_CLUSTER_SIZE,
  SB_BLOCKS_PER_GROUP, SB_CLUSTERS_PER_GROUP, SB_INODES_PER_GROUP, SB_WTIME, SB_MAX_MNT_COUNT,
  SB_MAGIC, SB_STATE, SB_ERRORS, SB_LASTCHECK, SB_CREATOR_OS, SB_REV_LEVEL, SB_FIRST_INO,
  SB_INODE_SIZE, SB_BLOCK_GROUP_NR, SB_FEATURE_COMPAT, SB_FEATURE_INCOMPAT, SB_FEATURE_RO_COMPAT,
  SB_UUID, SB_VOLUME_NAME, SB_JOURNAL_INUM, SB_HASH_SEED, SB_DEF_HASH_VERSION, SB_JNL_BACKUP_TYPE,
  SB_DESC_SIZE, SB_DEFAULT_MOUNT_OPTS, SB_MKFS_TIME, SB_JNL_BLOCKS, SB_BLOCKS_COUNT_HI,
  SB_R_BLOCKS_COUNT_HI, SB_FREE_BLOCKS_COUNT_HI, SB_MIN_EXTRA_ISIZE, SB_WANT_EXTRA_ISIZE, SB_FLAGS,
  SB_LOG_GROUPS_PER_FLEX, SB_CHECKSUM_TYPE, SB_OVERHEAD_CLUSTERS, SB_WTIME_HI, SB_MKFS_TIME_HI,
  SB_LASTCHECK_HI, SB_SIZE,
} from "./ondisk/superblock";
import {
  I_MODE, I_SIZE_LO, I_ATIME, I_CTIME, I_MTIME, I_LINKS_COUNT, I_BLOCKS_LO, I_FLAGS, I_BLOCK,
  I_SIZE_HIGH, I_EXTRA_ISIZE, I_CRTIME,
} from "./ondisk/inode";
import {
  EH_MAGIC, EH_ENTRIES, EH_MAX, EH_DEPTH, EH_SIZE, EE_BLOCK, EE_LEN, EE_START_HI, EE_START_LO, EE_SIZE,
  EI_BLOCK, EI_LEAF_LO, EI_LEAF_HI, EXT4_EXT_MAGIC,
} from "./ondisk/extent";
import { DE_INODE, DE_REC_LEN, DE_NAME_LEN, DE_FILE_TYPE, DE_NAME, DET_REC_LEN, DET_RESERVED_FT, DET_SIZE, DET_RESERVED_FT_VALUE, FT_DIR } from "./ondisk/dirent";
import { JH_MAGIC, JH_BLOCKTYPE, JSB_BLOCKSIZE, JSB_MAXLEN, JSB_FIRST, JSB_SEQUENCE, JSB_UUID, JSB_NR_USERS, JBD2_MAGIC_NUMBER, JBD2_SUPERBLOCK_V2 } from "./ondisk/jbd2";
import {
  EXT4_SUPER_MAGIC, FEATURE_COMPAT_EXT_ATTR, FEATURE_COMPAT_DIR_INDEX, FEATURE_COMPAT_HAS_JOURNAL,
  FEATURE_INCOMPAT_FILETYPE, FEATURE_INCOMPAT_EXTENTS, FEATURE_INCOMPAT_FLEX_BG, FEATURE_INCOMPAT_64BIT,
  FEATURE_RO_COMPAT_SPARSE_SUPER, FEATURE_RO_COMPAT_LARGE_FILE, FEATURE_RO_COMPAT_HUGE_FILE,
  FEATURE_RO_COMPAT_DIR_NLINK, FEATURE_RO_COMPAT_EXTRA_ISIZE, FEATURE_RO_COMPAT_METADATA_CSUM,
  FEATURE_RO_COMPAT_GDT_CSUM, BG_INODE_UNINIT, BG_BLOCK_UNINIT, INODE_FL_EXTENTS, S_IFDIR, S_IFREG,
} from "./ondisk/features";
import {
  geoBlockSize, geoGroupCount, geoInodesPerGroup, geoInodeSize, geoGdtBlocks, geoItableBlocks,
  geoFirstDataBlock, geoBlocksPerGroup, geoDescSize, blocksCountU64, groupFirstBlock,
  groupBlockCount, groupSuperBlocks, groupHasSuper,
} from "./geometry";
import { gdtTable, gdPtr, gdBlockBitmap, gdInodeBitmap, gdInodeTable, gdFlags } from "./groups";
import {
  optFlags, flexSize, nowSeconds, reservedBlocks, freeBlocksTotal, freeInodesTotal, overheadBlocks,
  journalBlocks, journalExtents, journalExtStart, journalExtLen, journalLeaf, rootBlock, lpfBlock,
  lpfBlocks, params, PARAM_UUID, PARAM_HASH_SEED, PARAM_LABEL, PARAM_BOOT, MKFS_METADATA_CSUM,
  MKFS_64BIT, MKFS_JOURNAL, MKFS_LAZY_ITABLE, FIRST_INO, ROOT_INO_NR, JOURNAL_INO_NR, csumReady,
  usedRunCount, usedRunStart, usedRunLen, firstRunEndingAfter,
} from "./mkfs_plan";
import { sbCsumSet, inodeCsumSet, extentBlockCsumSet, dirBlockCsumSet } from "./csum";
import { bitmapSetRange } from "./bitmap";

let scratch: usize = 0;
let sbBuf: usize = 0;

/** Two blocks of scratch memory for bitmap checksums during planning. */
export function mkfsScratch(): usize {
  if (scratch == 0) scratch = heap.alloc(<usize>geoBlockSize() * 2);
  return scratch;
}

// ---- superblock ----

function featureCompat(): u32 {
  let f: u32 = FEATURE_COMPAT_EXT_ATTR | FEATURE_COMPAT_DIR_INDEX;
  if ((optFlags & MKFS_JOURNAL) != 0) f |= FEATURE_COMPAT_HAS_JOURNAL;
  return f;
}
function featureIncompat(): u32 {
  let f: u32 = FEATURE_INCOMPAT_FILETYPE | FEATURE_INCOMPAT_EXTENTS;
  if (flexSize > 1) f |= FEATURE_INCOMPAT_FLEX_BG;
  if ((optFlags & MKFS_64BIT) != 0) f |= FEATURE_INCOMPAT_64BIT;
  return f;
}
function featureRoCompat(): u32 {
  let f: u32 = FEATURE_RO_COMPAT_SPARSE_SUPER | FEATURE_RO_COMPAT_LARGE_FILE |
    FEATURE_RO_COMPAT_HUGE_FILE | FEATURE_RO_COMPAT_DIR_NLINK;
  if (geoInodeSize() > 128) f |= FEATURE_RO_COMPAT_EXTRA_ISIZE;
  f |= (optFlags & MKFS_METADATA_CSUM) != 0 ? FEATURE_RO_COMPAT_METADATA_CSUM : FEATURE_RO_COMPAT_GDT_CSUM;
  return f;
}

function log2(v: u32): u32 { return 31 - clz<u32>(v); }

// Extra inode fields we fill (timestamps' high bits, crtime): 32 bytes, as mke2fs does.
function extraIsize(): u32 { return geoInodeSize() > 128 ? 32 : 0; }

/** Render the superblock copy for group g into a persistent 1024-byte buffer. */
export function buildSuperblock(g: u32): usize {
  if (sbBuf == 0) sbBuf = heap.alloc(<usize>SB_SIZE);
  const sb = sbBuf;
  memory.fill(sb, 0, <usize>SB_SIZE);
  const bs = geoBlockSize();
  const blocks = blocksCountU64();
  const now = nowSeconds;
  store<u32>(sb + <usize>SB_INODES_COUNT, geoInodesPerGroup() * geoGroupCount());
  store<u32>(sb + <usize>SB_BLOCKS_COUNT_LO, <u32>blocks);
  store<u32>(sb + <usize>SB_BLOCKS_COUNT_HI, <u32>(blocks >>> 32));
  store<u32>(sb + <usize>SB_R_BLOCKS_COUNT_LO, <u32>reservedBlocks);
  store<u32>(sb + <usize>SB_R_BLOCKS_COUNT_HI, <u32>(reservedBlocks >>> 32));
  store<u32>(sb + <usize>SB_FREE_BLOCKS_COUNT_LO, <u32>freeBlocksTotal);
  store<u32>(sb + <usize>SB_FREE_BLOCKS_COUNT_HI, <u32>(freeBlocksTotal >>> 32));
  store<u32>(sb + <usize>SB_FREE_INODES_COUNT, <u32>freeInodesTotal);
  store<u32>(sb + <usize>SB_FIRST_DATA_BLOCK, geoFirstDataBlock());
  store<u32>(sb + <usize>SB_LOG_BLOCK_SIZE, log2(bs) - 10);
  store<u32>(sb + <usize>SB_LOG_CLUSTER_SIZE, log2(bs) - 10);
  store<u32>(sb + <usize>SB_BLOCKS_PER_GROUP, geoBlocksPerGroup());
  store<u32>(sb + <usize>SB_CLUSTERS_PER_GROUP, geoBlocksPerGroup());
  store<u32>(sb + <usize>SB_INODES_PER_GROUP, geoInodesPerGroup());
  store<u32>(sb + <usize>SB_WTIME, <u32>now);
  store<u8>(sb + <usize>SB_WTIME_HI, <u8>(now >>> 32));
  store<u16>(sb + <usize>SB_MAX_MNT_COUNT, 0xFFFF); // -1: no mount-count fsck
  store<u16>(sb + <usize>SB_MAGIC, <u16>EXT4_SUPER_MAGIC);
  store<u16>(sb + <usize>SB_STATE, 1); // cleanly unmounted
  store<u16>(sb + <usize>SB_ERRORS, 1); // continue
  store<u32>(sb + <usize>SB_LASTCHECK, <u32>now);
  store<u8>(sb + <usize>SB_LASTCHECK_HI, <u8>(now >>> 32));
  store<u32>(sb + <usize>SB_CREATOR_OS, 0); // Linux
  store<u32>(sb + <usize>SB_REV_LEVEL, 1); // dynamic inode sizes
  store<u32>(sb + <usize>SB_FIRST_INO, FIRST_INO);
  store<u16>(sb + <usize>SB_INODE_SIZE, <u16>geoInodeSize());
  store<u16>(sb + <usize>SB_BLOCK_GROUP_NR, <u16>g);
  store<u32>(sb + <usize>SB_FEATURE_COMPAT, featureCompat());
  store<u32>(sb + <usize>SB_FEATURE_INCOMPAT, featureIncompat());
  store<u32>(sb + <usize>SB_FEATURE_RO_COMPAT, featureRoCompat());
  memory.copy(sb + <usize>SB_UUID, params + PARAM_UUID, 16);
  memory.copy(sb + <usize>SB_VOLUME_NAME, params + PARAM_LABEL, 16);
  memory.copy(sb + <usize>SB_HASH_SEED, params + PARAM_HASH_SEED, 16);
  store<u8>(sb + <usize>SB_DEF_HASH_VERSION, 1); // half_md4, as mke2fs
  store<u16>(sb + <usize>SB_DESC_SIZE, (optFlags & MKFS_64BIT) != 0 ? <u16>geoDescSize() : 0);
  store<u32>(sb + <usize>SB_DEFAULT_MOUNT_OPTS, 0x000C); // user_xattr | acl
  store<u32>(sb + <usize>SB_MKFS_TIME, <u32>now);
  store<u8>(sb + <usize>SB_MKFS_TIME_HI, <u8>(now >>> 32));
  store<u16>(sb + <usize>SB_MIN_EXTRA_ISIZE, <u16>extraIsize());
  store<u16>(sb + <usize>SB_WANT_EXTRA_ISIZE, <u16>extraIsize());
  store<u32>(sb + <usize>SB_FLAGS, 1); // signed directory hash (x86 char signedness)
  if (flexSize > 1) store<u8>(sb + <usize>SB_LOG_GROUPS_PER_FLEX, <u8>log2(flexSize));
  if ((optFlags & MKFS_METADATA_CSUM) != 0) store<u8>(sb + <usize>SB_CHECKSUM_TYPE, 1);
  store<u32>(sb + <usize>SB_OVERHEAD_CLUSTERS, <u32>overheadBlocks);
  if (journalBlocks > 0) {
    store<u32>(sb + <usize>SB_JOURNAL_INUM, JOURNAL_INO_NR);
    // Backup of the journal inode's block map, so e2fsck can rebuild a damaged inode 8.
    buildJournalIblock(sb + <usize>SB_JNL_BLOCKS);
    store<u32>(sb + <usize>SB_JNL_BLOCKS + 15 * 4, 0);
    store<u32>(sb + <usize>SB_JNL_BLOCKS + 16 * 4, journalBlocks * bs);
    store<u8>(sb + <usize>SB_JNL_BACKUP_TYPE, 1); // copy of i_block
  }
  if (csumReady) sbCsumSet(sb);
  return sb;
}

// ---- bitmaps ----

/** Block bitmap of group g as mkfs leaves it, into dst (one block). */
export function buildBlockBitmap(g: u32, dst: usize): usize {
  const bs = geoBlockSize();
  memory.fill(dst, 0, bs);
  const first = groupFirstBlock(g);
  const count = groupBlockCount(g);
  const end = first + <u64>count;
  bitmapSetRange(dst, 0, groupSuperBlocks(g));
  for (let i = firstRunEndingAfter(first); i < usedRunCount(); i++) {
    const s = usedRunStart(i);
    if (s >= end) break;
    const e = s + <u64>usedRunLen(i);
    const from = s > first ? s : first;
    const to = e < end ? e : end;
    bitmapSetRange(dst, <u32>(from - first), <u32>(to - from));
  }
  // Bits past the end of a short last group are "in use" padding.
  if (count < bs * 8) bitmapSetRange(dst, count, bs * 8 - count);
  return dst;
}

/** Inode bitmap of group g as mkfs leaves it, into dst (one block). */
export function buildInodeBitmap(g: u32, dst: usize): usize {
  const bs = geoBlockSize();
  const ipg = geoInodesPerGroup();
  memory.fill(dst, 0, bs);
  if (g == 0) bitmapSetRange(dst, 0, FIRST_INO);
  if (ipg < bs * 8) bitmapSetRange(dst, ipg, bs * 8 - ipg);
  return dst;
}

// ---- inodes ----

function setExtentHeader(p: usize, entries: u32, max: u32, depth: u32): void {
  store<u16>(p + <usize>EH_MAGIC, <u16>EXT4_EXT_MAGIC);
  store<u16>(p + <usize>EH_ENTRIES, <u16>entries);
  store<u16>(p + <usize>EH_MAX, <u16>max);
  store<u16>(p + <usize>EH_DEPTH, <u16>depth);
}
function setExtent(p: usize, logical: u32, len: u32, start: u64): void {
  store<u32>(p + <usize>EE_BLOCK, logical);
  store<u16>(p + <usize>EE_LEN, <u16>len);
  store<u16>(p + <usize>EE_START_HI, <u16>(start >>> 32));
  store<u32>(p + <usize>EE_START_LO, <u32>start);
}

// The journal inode's i_block (60 bytes at p): its extents, or an index to the leaf.
function buildJournalIblock(p: usize): void {
  memory.fill(p, 0, 60);
  if (journalLeaf == 0) {
    setExtentHeader(p, journalExtents, 4, 0);
    let logical: u32 = 0;
    for (let i: i32 = 0; i < journalExtents; i++) {
      const len = load<u32>(journalExtLen + (<usize>i << 2));
      setExtent(p + <usize>EH_SIZE + <usize>i * <usize>EE_SIZE, logical, len, load<u64>(journalExtStart + (<usize>i << 3)));
      logical += len;
    }
  } else {
    setExtentHeader(p, 1, 4, 1);
    const ix = p + <usize>EH_SIZE;
    store<u32>(ix + <usize>EI_BLOCK, 0);
    store<u32>(ix + <usize>EI_LEAF_LO, <u32>journalLeaf);
    store<u16>(ix + <usize>EI_LEAF_HI, <u16>(journalLeaf >>> 32));
  }
}

function setTimes(p: usize): void {
  const t = <u32>nowSeconds;
  store<u32>(p + <usize>I_ATIME, t);
  store<u32>(p + <usize>I_CTIME, t);
  store<u32>(p + <usize>I_MTIME, t);
  if (extraIsize() >= 28) store<u32>(p + <usize>I_CRTIME, t);
}

function setBlocks(p: usize, fsBlocks: u64): void {
  store<u32>(p + <usize>I_BLOCKS_LO, <u32>(fsBlocks * <u64>(geoBlockSize() >>> 9)));
}

// Render inode `ino` (1 ≤ ino < FIRST_INO + 1) into p (inode_size bytes, zeroed by caller).
function buildInode(ino: u32, p: usize): void {
  const bs = geoBlockSize();
  if (ino == ROOT_INO_NR) {
    store<u16>(p + <usize>I_MODE, <u16>(S_IFDIR | 0o755));
    store<u16>(p + <usize>I_LINKS_COUNT, 3);
    store<u32>(p + <usize>I_SIZE_LO, bs);
    setBlocks(p, 1);
    store<u32>(p + <usize>I_FLAGS, INODE_FL_EXTENTS);
    setExtentHeader(p + <usize>I_BLOCK, 1, 4, 0);
    setExtent(p + <usize>I_BLOCK + <usize>EH_SIZE, 0, 1, rootBlock);
    setTimes(p);
    store<u16>(p + <usize>I_EXTRA_ISIZE, <u16>extraIsize());
  } else if (ino == FIRST_INO) {
    store<u16>(p + <usize>I_MODE, <u16>(S_IFDIR | 0o700));
    store<u16>(p + <usize>I_LINKS_COUNT, 2);
    store<u32>(p + <usize>I_SIZE_LO, bs * lpfBlocks);
    setBlocks(p, <u64>lpfBlocks);
    store<u32>(p + <usize>I_FLAGS, INODE_FL_EXTENTS);
    setExtentHeader(p + <usize>I_BLOCK, 1, 4, 0);
    setExtent(p + <usize>I_BLOCK + <usize>EH_SIZE, 0, lpfBlocks, lpfBlock);
    setTimes(p);
    store<u16>(p + <usize>I_EXTRA_ISIZE, <u16>extraIsize());
  } else if (ino == JOURNAL_INO_NR && journalBlocks > 0) {
    store<u16>(p + <usize>I_MODE, <u16>(S_IFREG | 0o600));
    store<u16>(p + <usize>I_LINKS_COUNT, 1);
    const bytes = <u64>journalBlocks * <u64>bs;
    store<u32>(p + <usize>I_SIZE_LO, <u32>bytes);
    store<u32>(p + <usize>I_SIZE_HIGH, <u32>(bytes >>> 32));
    setBlocks(p, <u64>journalBlocks + (journalLeaf != 0 ? 1 : 0));
    store<u32>(p + <usize>I_FLAGS, INODE_FL_EXTENTS);
    buildJournalIblock(p + <usize>I_BLOCK);
    setTimes(p);
    store<u16>(p + <usize>I_EXTRA_ISIZE, <u16>extraIsize());
  }
  // Every other reserved inode stays zero (with a valid checksum, as e2fsck expects).
  inodeCsumSet(p, ino);
}

/** Blocks at the head of group 0's inode table that hold the reserved inodes. */
export function itableHeadBlocks(): u32 {
  return (FIRST_INO * geoInodeSize() + geoBlockSize() - 1) / geoBlockSize();
}

function buildItableHead(idx: u32, dst: usize): void {
  const bs = geoBlockSize();
  const isz = geoInodeSize();
  memory.fill(dst, 0, bs);
  const perBlock = bs / isz;
  for (let k: u32 = 0; k < perBlock; k++) {
    const ino = idx * perBlock + k + 1;
    if (ino > FIRST_INO) break;
    buildInode(ino, dst + <usize>(k * isz));
  }
}

// ---- directories ----

function dirent(p: usize, ino: u32, recLen: u32, name: string, type: u8): void {
  store<u32>(p + <usize>DE_INODE, ino);
  store<u16>(p + <usize>DE_REC_LEN, <u16>recLen);
  store<u8>(p + <usize>DE_NAME_LEN, <u8>name.length);
  store<u8>(p + <usize>DE_FILE_TYPE, type);
  for (let i = 0; i < name.length; i++) store<u8>(p + <usize>DE_NAME + <usize>i, <u8>name.charCodeAt(i));
}

// Space for entries: the whole block, less the checksum tail with metadata_csum.
function dirUsable(): u32 {
  return geoBlockSize() - ((optFlags & MKFS_METADATA_CSUM) != 0 ? <u32>DET_SIZE : 0);
}

function finishDirBlock(dst: usize, ino: u32): void {
  if ((optFlags & MKFS_METADATA_CSUM) == 0) return;
  const tail = dst + <usize>dirUsable();
  store<u16>(tail + <usize>DET_REC_LEN, <u16>DET_SIZE);
  store<u8>(tail + <usize>DET_RESERVED_FT, <u8>DET_RESERVED_FT_VALUE);
  dirBlockCsumSet(dst, ino, 0);
}

function buildRootDir(dst: usize): void {
  memory.fill(dst, 0, geoBlockSize());
  dirent(dst, ROOT_INO_NR, 12, ".", <u8>FT_DIR);
  dirent(dst + 12, ROOT_INO_NR, 12, "..", <u8>FT_DIR);
  dirent(dst + 24, FIRST_INO, dirUsable() - 24, "lost+found", <u8>FT_DIR);
  finishDirBlock(dst, ROOT_INO_NR);
}

function buildLpfBlock(idx: u32, dst: usize): void {
  memory.fill(dst, 0, geoBlockSize());
  if (idx == 0) {
    dirent(dst, FIRST_INO, 12, ".", <u8>FT_DIR);
    dirent(dst + 12, ROOT_INO_NR, dirUsable() - 12, "..", <u8>FT_DIR);
  } else {
    store<u16>(dst + <usize>DE_REC_LEN, <u16>dirUsable()); // one empty entry spans the block
  }
  finishDirBlock(dst, FIRST_INO);
}

// ---- journal ----

function buildJournalSuper(dst: usize): void {
  memory.fill(dst, 0, geoBlockSize());
  // jbd2 is big-endian on disk.
  store<u32>(dst + <usize>JH_MAGIC, bswap<u32>(<u32>JBD2_MAGIC_NUMBER));
  store<u32>(dst + <usize>JH_BLOCKTYPE, bswap<u32>(<u32>JBD2_SUPERBLOCK_V2));
  store<u32>(dst + <usize>JSB_BLOCKSIZE, bswap<u32>(geoBlockSize()));
  store<u32>(dst + <usize>JSB_MAXLEN, bswap<u32>(journalBlocks));
  store<u32>(dst + <usize>JSB_FIRST, bswap<u32>(1));
  store<u32>(dst + <usize>JSB_SEQUENCE, bswap<u32>(1));
  memory.copy(dst + <usize>JSB_UUID, params + PARAM_UUID, 16);
  store<u32>(dst + <usize>JSB_NR_USERS, bswap<u32>(1));
}

function buildJournalLeaf(dst: usize): void {
  const bs = geoBlockSize();
  memory.fill(dst, 0, bs);
  setExtentHeader(dst, journalExtents, (bs - <u32>EH_SIZE) / <u32>EE_SIZE, 0);
  let logical: u32 = 0;
  for (let i: i32 = 0; i < journalExtents; i++) {
    const len = load<u32>(journalExtLen + (<usize>i << 2));
    setExtent(dst + <usize>EH_SIZE + <usize>i * <usize>EE_SIZE, logical, len, load<u64>(journalExtStart + (<usize>i << 3)));
    logical += len;
  }
  if ((optFlags & MKFS_METADATA_CSUM) != 0) extentBlockCsumSet(dst, JOURNAL_INO_NR, 0);
}

// ---- the item table and the run iterator ----

const K_SUPER: u16 = 1;   // superblock copy + descriptor table of group `arg`
const K_BBITMAP: u16 = 2; // block bitmap of group `arg`
const K_IBITMAP: u16 = 3; // inode bitmap of group `arg`
const K_ITHEAD: u16 = 4;  // group 0's inode-table blocks holding the reserved inodes
const K_ROOT: u16 = 5;
const K_LPF: u16 = 6;
const K_JSUPER: u16 = 7;
const K_JLEAF: u16 = 8;
const K_ZERO: u16 = 9;    // blocks that must read as zeros

const ITEM: usize = 20;
const BRIDGE_MAX: u64 = 64; // longest gap filled with zeros to merge two writes
let items: usize = 0;
let itemCount: i32 = 0;
let itemCap: i32 = 0;
let curItem: i32 = 0;
let curOffset: u32 = 0;
let outStart: u64 = 0;
let outBlocks: u32 = 0;

function itemStart(i: i32): u64 { return load<u64>(items + <usize>i * ITEM); }
function itemBlocks(i: i32): u32 { return load<u32>(items + <usize>i * ITEM + 8); }
function itemKind(i: i32): u16 { return load<u16>(items + <usize>i * ITEM + 12); }
function itemArg(i: i32): u32 { return load<u32>(items + <usize>i * ITEM + 16); }

function addItem(start: u64, blocks: u32, kind: u16, arg: u32): void {
  if (blocks == 0) return;
  if (itemCount == itemCap) {
    const cap = itemCap == 0 ? 4096 : itemCap * 2;
    const n = heap.alloc(<usize>cap * ITEM);
    if (itemCount > 0) memory.copy(n, items, <usize>itemCount * ITEM);
    items = n;
    itemCap = cap;
  }
  const p = items + <usize>itemCount * ITEM;
  store<u64>(p, start);
  store<u32>(p + 8, blocks);
  store<u16>(p + 12, kind);
  store<u16>(p + 14, 0);
  store<u32>(p + 16, arg);
  itemCount++;
}

// Heapsort of the item table by start block (n log n, no extra memory).
function swapItems(a: i32, b: i32, tmp: usize): void {
  const pa = items + <usize>a * ITEM, pb = items + <usize>b * ITEM;
  memory.copy(tmp, pa, ITEM);
  memory.copy(pa, pb, ITEM);
  memory.copy(pb, tmp, ITEM);
}
function siftDown(root: i32, n: i32, tmp: usize): void {
  while (true) {
    let child = root * 2 + 1;
    if (child >= n) return;
    if (child + 1 < n && itemStart(child + 1) > itemStart(child)) child++;
    if (itemStart(root) >= itemStart(child)) return;
    swapItems(root, child, tmp);
    root = child;
  }
}
function sortItems(): void {
  const tmp = heap.alloc(ITEM);
  for (let i = itemCount / 2 - 1; i >= 0; i--) siftDown(i, itemCount, tmp);
  for (let end = itemCount - 1; end > 0; end--) {
    swapItems(0, end, tmp);
    siftDown(0, end, tmp);
  }
}

/** List everything mkfs writes for the planned volume; call once after mkfsPlan. */
export function mkfsRunInit(): i32 {
  itemCount = 0;
  curItem = 0;
  curOffset = 0;
  const ngroups = geoGroupCount();
  const lazy = (optFlags & MKFS_LAZY_ITABLE) != 0;
  const head = itableHeadBlocks();
  for (let g: u32 = 0; g < ngroups; g++) {
    if (groupHasSuper(g)) addItem(groupFirstBlock(g), 1 + geoGdtBlocks(), K_SUPER, g);
    const d = gdPtr(g);
    const f = gdFlags(d);
    if ((f & BG_BLOCK_UNINIT) == 0) addItem(gdBlockBitmap(d), 1, K_BBITMAP, g);
    if ((f & BG_INODE_UNINIT) == 0) addItem(gdInodeBitmap(d), 1, K_IBITMAP, g);
    if (g == 0) {
      addItem(gdInodeTable(d), head, K_ITHEAD, 0);
      if (!lazy) addItem(gdInodeTable(d) + <u64>head, geoItableBlocks() - head, K_ZERO, 0);
    } else if (!lazy) {
      addItem(gdInodeTable(d), geoItableBlocks(), K_ZERO, 0);
    }
  }
  addItem(rootBlock, 1, K_ROOT, 0);
  addItem(lpfBlock, lpfBlocks, K_LPF, 0);
  for (let i: i32 = 0; i < journalExtents; i++) {
    const s = load<u64>(journalExtStart + (<usize>i << 3));
    const n = load<u32>(journalExtLen + (<usize>i << 2));
    if (i == 0) {
      addItem(s, 1, K_JSUPER, 0);
      addItem(s + 1, n - 1, K_ZERO, 0);
    } else {
      addItem(s, n, K_ZERO, 0);
    }
  }
  if (journalLeaf != 0) addItem(journalLeaf, 1, K_JLEAF, 0);
  sortItems();
  return itemCount;
}

// Render block `idx` of item i into dst.
function emitBlock(i: i32, idx: u32, dst: usize): void {
  const bs = geoBlockSize();
  const kind = itemKind(i);
  const arg = itemArg(i);
  if (kind == K_SUPER) {
    if (idx == 0) {
      memory.fill(dst, 0, bs);
      const sb = buildSuperblock(arg);
      if (arg == 0 && holdPrimary) memory.fill(sb, 0, <usize>SB_SIZE); // written last, see mkfsPrimaryBlock
      if (arg == 0 && bs > 1024) {
        // The primary superblock sits at byte 1024 of block 0; bytes [0, 1024) belong to
        // the boot loader / partition table and are written back unchanged.
        memory.copy(dst, params + PARAM_BOOT, 1024);
        memory.copy(dst + 1024, sb, <usize>SB_SIZE);
      } else {
        memory.copy(dst, sb, <usize>SB_SIZE);
      }
    } else {
      const perBlock = bs / geoDescSize();
      const firstGroup = (idx - 1) * perBlock;
      let n = geoGroupCount() - firstGroup;
      if (n > perBlock) n = perBlock;
      memory.fill(dst, 0, bs);
      memory.copy(dst, gdtTable() + <usize>firstGroup * <usize>geoDescSize(), <usize>n * <usize>geoDescSize());
    }
  } else if (kind == K_BBITMAP) buildBlockBitmap(arg, dst);
  else if (kind == K_IBITMAP) buildInodeBitmap(arg, dst);
  else if (kind == K_ITHEAD) buildItableHead(idx, dst);
  else if (kind == K_ROOT) buildRootDir(dst);
  else if (kind == K_LPF) buildLpfBlock(idx, dst);
  else if (kind == K_JSUPER) buildJournalSuper(dst);
  else if (kind == K_JLEAF) buildJournalLeaf(dst);
  else memory.fill(dst, 0, bs);
}

/**
 * Produce the next device request. Returns 0 when done, 1 for a write of
 * mkfsRunBlockCount() blocks now in dst (at most maxBlocks), 2 for a zero range (nothing
 * in dst). Either way the range starts at mkfsRunStartBlock().
 */
export function mkfsRunNext(dst: usize, maxBlocks: u32): i32 {
  if (curItem >= itemCount) return 0;
  const bs = <usize>geoBlockSize();
  if (itemKind(curItem) == K_ZERO) {
    outStart = itemStart(curItem) + <u64>curOffset;
    outBlocks = itemBlocks(curItem) - curOffset;
    curItem++;
    curOffset = 0;
    // Adjacent zero ranges leave as one request.
    while (curItem < itemCount && itemKind(curItem) == K_ZERO &&
      itemStart(curItem) == outStart + <u64>outBlocks && <u64>outBlocks + <u64>itemBlocks(curItem) < 0x40000000) {
      outBlocks += itemBlocks(curItem);
      curItem++;
    }
    return 2;
  }
  outStart = itemStart(curItem) + <u64>curOffset;
  outBlocks = 0;
  while (outBlocks < maxBlocks && curItem < itemCount) {
    if (itemKind(curItem) == K_ZERO) break;
    const at = itemStart(curItem) + <u64>curOffset;
    const end = outStart + <u64>outBlocks;
    if (at != end) {
      // A short gap (typically the bitmaps of BLOCK_UNINIT groups between a flex's block
      // and inode bitmaps) is bridged with zero blocks: one request instead of two, and
      // at mkfs time nothing in such a gap is anyone's data.
      if (at < end || at - end > BRIDGE_MAX || <u64>outBlocks + (at - end) >= <u64>maxBlocks) break;
      memory.fill(dst + <usize>outBlocks * bs, 0, <usize>(at - end) * bs);
      outBlocks += <u32>(at - end);
    }
    emitBlock(curItem, curOffset, dst + <usize>outBlocks * bs);
    outBlocks++;
    curOffset++;
    if (curOffset == itemBlocks(curItem)) {
      curItem++;
      curOffset = 0;
    }
  }
  return 1;
}

let holdPrimary = false;

/** Emit the primary superblock as zeros during the run; mkfsPrimaryBlock renders it. */
export function mkfsHoldPrimary(hold: i32): void { holdPrimary = hold != 0; }

/** Render the block holding the primary superblock into dst; returns its block number. */
export function mkfsPrimaryBlock(dst: usize): f64 {
  const bs = geoBlockSize();
  memory.fill(dst, 0, bs);
  const sb = buildSuperblock(0);
  if (bs > 1024) {
    memory.copy(dst, params + PARAM_BOOT, 1024);
    memory.copy(dst + 1024, sb, <usize>SB_SIZE);
  } else {
    memory.copy(dst, sb, <usize>SB_SIZE);
  }
  return <f64>groupFirstBlock(0);
}

export function mkfsRunStartBlock(): f64 { return <f64>outStart; }
export function mkfsRunBlockCount(): u32 { return outBlocks; }
