// Metadata checksums, with the exact byte-level rules of Linux ext4 and jbd2.
//
// Why a configured context: every ext4 checksum except the superblock's (and the journal
// superblock's) is seeded with a per-volume value — crc32c(~0, s_uuid), or s_checksum_seed
// with the csum_seed feature — and depends on the geometry (descriptor size, inode size,
// block size, bitmap lengths). An engine instance serves exactly one volume, so that state
// lives in module globals, set once by csumConfigure() from the superblock in memory at
// mkfs or mount time and re-set whenever the superblock's UUID or features change. Nothing
// here allocates; the buffers are the caller's, and none is modified except by a *Set
// function, which writes only the checksum field. A field that the rule "treats as zero"
// is never zeroed in the caller's buffer: we checksum around it and feed zero bytes in
// its place instead.
//
// The rules (crc = crc32c without pre/post inversion, as the kernel's crc32c(); "seed" is
// the volume seed; "iseed(ino, gen)" = crc(crc(seed, le32 ino), le32 generation)):
//
//   superblock      crc(~0, sb[0 .. 0x3FC))                          → s_checksum
//   group desc      metadata_csum: crc(seed, le32 group, desc with bg_checksum = 0,
//                   desc_size bytes) & 0xFFFF
//                   gdt_csum: crc16(~0, uuid, le32 group, desc[0 .. 0x1E),
//                   desc[0x20 .. desc_size) if desc_size > 32)      → bg_checksum
//   block bitmap    crc(seed, bitmap, clusters_per_group / 8)        → bg_block_bitmap_csum
//   inode bitmap    crc(seed, bitmap, inodes_per_group / 8)          → bg_inode_bitmap_csum
//                   (lo 16 bits; hi 16 bits too when desc_size reaches the _hi field)
//   inode           crc(iseed(ino, i_generation), inode with checksum_lo = 0 and, when
//                   i_extra_isize covers it, checksum_hi = 0, inode_size bytes); only the
//                   low 16 bits are kept when there is no checksum_hi
//   extent block    crc(iseed, block[0 .. 12 + 12·eh_max))           → tail right there
//   dir leaf block  crc(iseed, block[0 .. block_size - 12))          → det_checksum
//   htree node      crc(iseed, block[0 .. count_offset + 8·count), dt_reserved, 4 zero
//                   bytes)                                           → dt_checksum at
//                   count_offset + 8·limit + 4
//   jbd2 superblock crc(~0, jsb[0 .. 1024) with s_checksum = 0), stored big-endian
//
// Corrupt input: sizes that come from the block itself (eh_max, limit, count) are checked
// against the block size before anything is read, so a corrupt block yields "does not
// verify", never a read past the block. A superblock whose geometry is unusable leaves the
// context invalid: every Verify that needs the context then answers false and every
// such Compute 0 (the superblock and journal superblock rules need no context).

import { crc32cUpdate, crc32cZeros } from "./crc32c";
import { crc16Update } from "./crc16";
import {
  SB_BLOCKS_PER_GROUP, SB_CHECKSUM, SB_CHECKSUM_SEED, SB_CHECKSUM_TYPE, SB_CLUSTERS_PER_GROUP,
  SB_DESC_SIZE, SB_FEATURE_INCOMPAT, SB_FEATURE_RO_COMPAT, SB_INODE_SIZE, SB_INODES_PER_GROUP,
  SB_LOG_BLOCK_SIZE, SB_MAGIC, SB_REV_LEVEL, SB_UUID,
} from "./ondisk/superblock";
import {
  BG_BLOCK_BITMAP_CSUM_HI, BG_BLOCK_BITMAP_CSUM_HI_END, BG_BLOCK_BITMAP_CSUM_LO, BG_CHECKSUM,
  BG_DESC_SIZE_32, BG_DESC_SIZE_64, BG_DESC_SIZE_MAX, BG_INODE_BITMAP_CSUM_HI,
  BG_INODE_BITMAP_CSUM_HI_END, BG_INODE_BITMAP_CSUM_LO,
} from "./ondisk/group_desc";
import {
  I_CHECKSUM_HI, I_CHECKSUM_LO, I_CSUM_HI_EXTRA_END, I_EXTRA_ISIZE, I_GENERATION, I_GOOD_OLD_SIZE,
} from "./ondisk/inode";
import { EE_SIZE, EH_MAX, EH_SIZE, ET_SIZE } from "./ondisk/extent";
import {
  DE_INODE, DE_NAME, DE_NAME_LEN, DE_REC_LEN, DET_CHECKSUM, DET_REC_LEN, DET_RESERVED_FT,
  DET_RESERVED_FT_VALUE, DET_RESERVED_ZERO1, DET_RESERVED_ZERO2, DET_SIZE,
} from "./ondisk/dirent";
import {
  DX_COUNT, DX_ENTRY_SIZE, DX_LIMIT, DX_ROOT_INFO_SIZE, DXN_ENTRIES, DXR_DOTDOT_INODE,
  DXR_DOTDOT_REC_LEN, DXR_ENTRIES, DXR_INFO_INFO_LENGTH, DXR_INFO_RESERVED_ZERO, DXT_CHECKSUM,
  DXT_RESERVED, DXT_SIZE,
} from "./ondisk/dx";
import {
  JBD2_CRC32C_CHKSUM, JBD2_FEATURE_INCOMPAT_CSUM_V2, JBD2_FEATURE_INCOMPAT_CSUM_V3,
  JBD2_SUPERBLOCK_V2, JH_BLOCKTYPE, JSB_CHECKSUM, JSB_CHECKSUM_TYPE, JSB_FEATURE_INCOMPAT, JSB_SIZE,
} from "./ondisk/jbd2";
import {
  CHECKSUM_TYPE_CRC32C, EXT4_SUPER_MAGIC, FEATURE_INCOMPAT_64BIT, FEATURE_INCOMPAT_CSUM_SEED,
  FEATURE_RO_COMPAT_GDT_CSUM, FEATURE_RO_COMPAT_METADATA_CSUM, MAX_BLOCK_LOG_SIZE,
  MIN_BLOCK_LOG_SIZE, REV_GOOD_OLD,
} from "./ondisk/features";

// ── the per-instance context (one volume per engine instance) ─────────────────────────
let ctxValid = false;
let ctxMetadata = false;
let ctxGdt = false;
let ctxSeed: u32 = 0;
let ctxBlockSize: u32 = 0;
let ctxDescSize: u32 = 0;
let ctxInodeSize: u32 = 0;
let ctxInodesPerGroup: u32 = 0;
let ctxClustersPerGroup: u32 = 0;
// s_uuid, kept for the crc16 descriptor checksum (which uses the UUID, not the seed).
const ctxUuid: usize = memory.data(16);
// Little-endian staging for integers fed to the CRC.
const scratch: usize = memory.data(8);
// Stand-in bytes for checksum fields that the rules treat as zero. Never written.
const zeros: usize = memory.data(8);

function crcLe32(crc: u32, v: u32): u32 {
  store<u32>(scratch, v);
  return crc32cUpdate(crc, scratch, 4);
}

function isPow2(v: u32): bool {
  return v != 0 && (v & (v - 1)) == 0;
}

/** The per-inode seed: crc(crc(seed, le32 ino), le32 generation). */
function inodeSeed(ino: u32, generation: u32): u32 {
  return crcLe32(crcLe32(ctxSeed, ino), generation);
}

/**
 * Load the checksum context from the superblock at sbPtr (SB_SIZE bytes). Returns false,
 * leaving the context invalid, when the geometry is unusable (bad magic, block size,
 * inode size, descriptor size, bitmap lengths) or metadata_csum names an unknown
 * algorithm.
 */
export function csumConfigure(sbPtr: usize): bool {
  ctxValid = false;
  ctxMetadata = false;
  ctxGdt = false;
  ctxSeed = 0;
  if (<i32>load<u16>(sbPtr + SB_MAGIC) != EXT4_SUPER_MAGIC) return false;
  const logBlock = load<u32>(sbPtr + SB_LOG_BLOCK_SIZE);
  if (logBlock > <u32>(MAX_BLOCK_LOG_SIZE - MIN_BLOCK_LOG_SIZE)) return false;
  const blockSize: u32 = 1 << (<u32>MIN_BLOCK_LOG_SIZE + logBlock);

  const incompat = load<u32>(sbPtr + SB_FEATURE_INCOMPAT);
  const roCompat = load<u32>(sbPtr + SB_FEATURE_RO_COMPAT);

  let inodeSize: u32 = <u32>I_GOOD_OLD_SIZE;
  if (<i32>load<u32>(sbPtr + SB_REV_LEVEL) != REV_GOOD_OLD) inodeSize = <u32>load<u16>(sbPtr + SB_INODE_SIZE);
  if (inodeSize < <u32>I_GOOD_OLD_SIZE || inodeSize > blockSize || !isPow2(inodeSize)) return false;

  let descSize: u32 = <u32>BG_DESC_SIZE_32;
  if (incompat & <u32>FEATURE_INCOMPAT_64BIT) {
    descSize = <u32>load<u16>(sbPtr + SB_DESC_SIZE);
    if (descSize < <u32>BG_DESC_SIZE_64 || descSize > <u32>BG_DESC_SIZE_MAX || !isPow2(descSize)) return false;
  }

  const ipg = load<u32>(sbPtr + SB_INODES_PER_GROUP);
  let cpg = load<u32>(sbPtr + SB_CLUSTERS_PER_GROUP);
  // Pre-bigalloc volumes may leave s_clusters_per_group zero; it then equals blocks/group.
  if (cpg == 0) cpg = load<u32>(sbPtr + SB_BLOCKS_PER_GROUP);
  if (ipg == 0 || ipg > blockSize * 8 || cpg == 0 || cpg > blockSize * 8) return false;

  const metadata = (roCompat & <u32>FEATURE_RO_COMPAT_METADATA_CSUM) != 0;
  if (metadata && <i32>load<u8>(sbPtr + SB_CHECKSUM_TYPE) != CHECKSUM_TYPE_CRC32C) return false;

  memory.copy(ctxUuid, sbPtr + SB_UUID, 16);
  if (incompat & <u32>FEATURE_INCOMPAT_CSUM_SEED) ctxSeed = load<u32>(sbPtr + SB_CHECKSUM_SEED);
  else ctxSeed = crc32cUpdate(0xffffffff, ctxUuid, 16);
  ctxMetadata = metadata;
  // metadata_csum supersedes gdt_csum when (wrongly) both are set, as in the kernel.
  ctxGdt = !metadata && (roCompat & <u32>FEATURE_RO_COMPAT_GDT_CSUM) != 0;
  ctxBlockSize = blockSize;
  ctxDescSize = descSize;
  ctxInodeSize = inodeSize;
  ctxInodesPerGroup = ipg;
  ctxClustersPerGroup = cpg;
  ctxValid = true;
  return true;
}

/** True when the configured volume has metadata_csum. */
export function csumMetadataEnabled(): bool {
  return ctxValid && ctxMetadata;
}

/** The configured volume seed (crc32c(~0, uuid) or s_checksum_seed); 0 if unconfigured. */
export function csumSeedValue(): u32 {
  return ctxSeed;
}

// ── superblock ────────────────────────────────────────────────────────────────────────

/** crc32c(~0) of the superblock up to s_checksum. Needs no context. */
export function sbCsumCompute(sbPtr: usize): u32 {
  return crc32cUpdate(0xffffffff, sbPtr, <usize>SB_CHECKSUM);
}

/** Store sbCsumCompute into s_checksum. */
export function sbCsumSet(sbPtr: usize): void {
  store<u32>(sbPtr + SB_CHECKSUM, sbCsumCompute(sbPtr));
}

/** True if s_checksum matches, or if this superblock does not have metadata_csum. */
export function sbCsumVerify(sbPtr: usize): bool {
  if ((load<u32>(sbPtr + SB_FEATURE_RO_COMPAT) & <u32>FEATURE_RO_COMPAT_METADATA_CSUM) == 0) return true;
  return load<u32>(sbPtr + SB_CHECKSUM) == sbCsumCompute(sbPtr);
}

// ── group descriptors and bitmaps ─────────────────────────────────────────────────────

/** The 16-bit bg_checksum for group's descriptor (desc_size bytes); 0 if neither feature. */
export function gdCsumCompute(descPtr: usize, group: u32): u32 {
  if (!ctxValid) return 0;
  const off = <usize>BG_CHECKSUM;
  const after = off + 2;
  if (ctxMetadata) {
    let c = crcLe32(ctxSeed, group);
    c = crc32cUpdate(c, descPtr, off);
    c = crc32cUpdate(c, zeros, 2);
    if (<usize>ctxDescSize > after) c = crc32cUpdate(c, descPtr + after, <usize>ctxDescSize - after);
    return c & 0xffff;
  }
  if (ctxGdt) {
    let c = crc16Update(0xffff, ctxUuid, 16);
    store<u32>(scratch, group);
    c = crc16Update(c, scratch, 4);
    c = crc16Update(c, descPtr, off);
    // The checksum field is skipped, not zeroed; the 64-byte tail follows directly.
    if (<usize>ctxDescSize > after) c = crc16Update(c, descPtr + after, <usize>ctxDescSize - after);
    return c & 0xffff;
  }
  return 0;
}

/** Store gdCsumCompute into bg_checksum (no-op without metadata_csum or gdt_csum). */
export function gdCsumSet(descPtr: usize, group: u32): void {
  if (!ctxValid || !(ctxMetadata || ctxGdt)) return;
  store<u16>(descPtr + BG_CHECKSUM, <u16>gdCsumCompute(descPtr, group));
}

/** True if bg_checksum matches, or the volume has no descriptor checksums. */
export function gdCsumVerify(descPtr: usize, group: u32): bool {
  if (!ctxValid) return false;
  if (!(ctxMetadata || ctxGdt)) return true;
  return <u32>load<u16>(descPtr + BG_CHECKSUM) == gdCsumCompute(descPtr, group);
}

/** crc32c(seed) over a block bitmap's clusters_per_group / 8 bytes. */
export function blockBitmapCsum(bitmapPtr: usize): u32 {
  if (!ctxValid) return 0;
  return crc32cUpdate(ctxSeed, bitmapPtr, <usize>(ctxClustersPerGroup >>> 3));
}

/** crc32c(seed) over an inode bitmap's inodes_per_group / 8 bytes. */
export function inodeBitmapCsum(bitmapPtr: usize): u32 {
  if (!ctxValid) return 0;
  return crc32cUpdate(ctxSeed, bitmapPtr, <usize>(ctxInodesPerGroup >>> 3));
}

/**
 * Store the bitmap checksums in a descriptor (lo halves, hi halves when desc_size has
 * them); a 0 pointer skips that bitmap. No-op without metadata_csum. Call before gdCsumSet.
 */
export function gdSetBitmapCsums(descPtr: usize, blockBitmapPtr: usize, inodeBitmapPtr: usize): void {
  if (!ctxValid || !ctxMetadata) return;
  if (blockBitmapPtr != 0) {
    const c = blockBitmapCsum(blockBitmapPtr);
    store<u16>(descPtr + BG_BLOCK_BITMAP_CSUM_LO, <u16>c);
    if (ctxDescSize >= <u32>BG_BLOCK_BITMAP_CSUM_HI_END) store<u16>(descPtr + BG_BLOCK_BITMAP_CSUM_HI, <u16>(c >>> 16));
  }
  if (inodeBitmapPtr != 0) {
    const c = inodeBitmapCsum(inodeBitmapPtr);
    store<u16>(descPtr + BG_INODE_BITMAP_CSUM_LO, <u16>c);
    if (ctxDescSize >= <u32>BG_INODE_BITMAP_CSUM_HI_END) store<u16>(descPtr + BG_INODE_BITMAP_CSUM_HI, <u16>(c >>> 16));
  }
}

/**
 * A descriptor's inode bitmap checksum after the bitmap's bytes up to `hi` changed, given
 * the register-0 CRCs of the changed bytes before and after (as dirCsumPart takes them):
 * patched, like a leaf's (dirBlockCsumPatch), when the caller knows the stored value
 * right for the bitmap before the change and the descriptor stores it whole (both
 * halves); else summed over the whole bitmap. No-op without metadata_csum. Call before
 * gdCsumSet.
 */
export function gdPatchInodeBitmapCsum(descPtr: usize, bitmapPtr: usize, hi: u32, before: u32, after: u32, known: bool): void {
  if (!ctxValid || !ctxMetadata) return;
  const n = ctxInodesPerGroup >>> 3;
  if (!known || ctxDescSize < <u32>BG_INODE_BITMAP_CSUM_HI_END || hi > n) {
    gdSetBitmapCsums(descPtr, 0, bitmapPtr);
    return;
  }
  const old = <u32>load<u16>(descPtr + BG_INODE_BITMAP_CSUM_LO) | (<u32>load<u16>(descPtr + BG_INODE_BITMAP_CSUM_HI) << 16);
  const c = old ^ crc32cZeros(before ^ after, <usize>(n - hi));
  store<u16>(descPtr + BG_INODE_BITMAP_CSUM_LO, <u16>c);
  store<u16>(descPtr + BG_INODE_BITMAP_CSUM_HI, <u16>(c >>> 16));
}

/** True if the descriptor's block bitmap checksum matches the bitmap (or no metadata_csum). */
export function gdBlockBitmapCsumVerify(descPtr: usize, bitmapPtr: usize): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const c = blockBitmapCsum(bitmapPtr);
  if (<u32>load<u16>(descPtr + BG_BLOCK_BITMAP_CSUM_LO) != (c & 0xffff)) return false;
  if (ctxDescSize < <u32>BG_BLOCK_BITMAP_CSUM_HI_END) return true;
  return <u32>load<u16>(descPtr + BG_BLOCK_BITMAP_CSUM_HI) == c >>> 16;
}

/** True if the descriptor's inode bitmap checksum matches the bitmap (or no metadata_csum). */
export function gdInodeBitmapCsumVerify(descPtr: usize, bitmapPtr: usize): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const c = inodeBitmapCsum(bitmapPtr);
  if (<u32>load<u16>(descPtr + BG_INODE_BITMAP_CSUM_LO) != (c & 0xffff)) return false;
  if (ctxDescSize < <u32>BG_INODE_BITMAP_CSUM_HI_END) return true;
  return <u32>load<u16>(descPtr + BG_INODE_BITMAP_CSUM_HI) == c >>> 16;
}

// ── inodes ────────────────────────────────────────────────────────────────────────────

function inodeHasCsumHi(inodePtr: usize): bool {
  return ctxInodeSize > <u32>I_GOOD_OLD_SIZE && <i32>load<u16>(inodePtr + I_EXTRA_ISIZE) >= I_CSUM_HI_EXTRA_END;
}

/**
 * The checksum of the inode record at inodePtr (inode_size bytes) as it is stored:
 * 32 bits when the inode has i_checksum_hi, else the low 16 bits. Uses the record's own
 * i_generation.
 */
export function inodeCsumCompute(inodePtr: usize, ino: u32): u32 {
  if (!ctxValid) return 0;
  const hasHi = inodeHasCsumHi(inodePtr);
  let c = inodeSeed(ino, load<u32>(inodePtr + I_GENERATION));
  const lo = <usize>I_CHECKSUM_LO;
  const old = <usize>I_GOOD_OLD_SIZE;
  c = crc32cUpdate(c, inodePtr, lo);
  c = crc32cUpdate(c, zeros, 2);
  c = crc32cUpdate(c, inodePtr + lo + 2, old - (lo + 2));
  if (ctxInodeSize > <u32>I_GOOD_OLD_SIZE) {
    let off = <usize>I_CHECKSUM_HI;
    c = crc32cUpdate(c, inodePtr + old, off - old);
    if (hasHi) {
      c = crc32cUpdate(c, zeros, 2);
      off += 2;
    }
    c = crc32cUpdate(c, inodePtr + off, <usize>ctxInodeSize - off);
  }
  return hasHi ? c : c & 0xffff;
}

/** Store the inode checksum (lo half always, hi half when i_extra_isize covers it). */
export function inodeCsumSet(inodePtr: usize, ino: u32): void {
  if (!ctxValid || !ctxMetadata) return;
  const c = inodeCsumCompute(inodePtr, ino);
  store<u16>(inodePtr + I_CHECKSUM_LO, <u16>c);
  if (inodeHasCsumHi(inodePtr)) store<u16>(inodePtr + I_CHECKSUM_HI, <u16>(c >>> 16));
}

/**
 * True if the stored inode checksum matches (or the volume has no metadata_csum). An
 * all-zero, never-used record does not verify; callers decide before reading one.
 */
export function inodeCsumVerify(inodePtr: usize, ino: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  let stored = <u32>load<u16>(inodePtr + I_CHECKSUM_LO);
  if (inodeHasCsumHi(inodePtr)) stored |= <u32>load<u16>(inodePtr + I_CHECKSUM_HI) << 16;
  return stored == inodeCsumCompute(inodePtr, ino);
}

// ── extent tree blocks ────────────────────────────────────────────────────────────────

// Offset of the extent tail (12 + 12·eh_max), or -1 if it would not fit in the block.
function extentTailOffset(blockPtr: usize): i32 {
  const off = <u32>EH_SIZE + <u32>load<u16>(blockPtr + EH_MAX) * <u32>EE_SIZE;
  if (off + <u32>ET_SIZE > ctxBlockSize) return -1;
  return <i32>off;
}

/** crc32c(iseed) of an extent tree block up to its tail; 0 if eh_max overflows the block. */
export function extentBlockCsumCompute(blockPtr: usize, ino: u32, generation: u32): u32 {
  if (!ctxValid) return 0;
  const tail = extentTailOffset(blockPtr);
  if (tail < 0) return 0;
  return crc32cUpdate(inodeSeed(ino, generation), blockPtr, <usize>tail);
}

/** Store the checksum in the tail after eh_max entries; false if eh_max overflows the block. */
export function extentBlockCsumSet(blockPtr: usize, ino: u32, generation: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const tail = extentTailOffset(blockPtr);
  if (tail < 0) return false;
  store<u32>(blockPtr + <usize>tail, extentBlockCsumCompute(blockPtr, ino, generation));
  return true;
}

/** True if the extent block's tail checksum matches (or no metadata_csum). */
export function extentBlockCsumVerify(blockPtr: usize, ino: u32, generation: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const tail = extentTailOffset(blockPtr);
  if (tail < 0) return false;
  return load<u32>(blockPtr + <usize>tail) == extentBlockCsumCompute(blockPtr, ino, generation);
}

// ── directory leaf blocks ─────────────────────────────────────────────────────────────

/** True if the last DET_SIZE bytes of the block are a well-formed checksum tail. */
export function dirBlockHasTail(blockPtr: usize): bool {
  if (!ctxValid) return false;
  const t = blockPtr + <usize>ctxBlockSize - <usize>DET_SIZE;
  return load<u32>(t + DET_RESERVED_ZERO1) == 0 &&
    <i32>load<u16>(t + DET_REC_LEN) == DET_SIZE &&
    load<u8>(t + DET_RESERVED_ZERO2) == 0 &&
    <i32>load<u8>(t + DET_RESERVED_FT) == DET_RESERVED_FT_VALUE;
}

/** Write an empty checksum tail (checksum 0) into the last DET_SIZE bytes of the block. */
export function dirBlockTailInit(blockPtr: usize): void {
  if (!ctxValid) return;
  const t = blockPtr + <usize>ctxBlockSize - <usize>DET_SIZE;
  store<u32>(t + DET_RESERVED_ZERO1, 0);
  store<u16>(t + DET_REC_LEN, <u16>DET_SIZE);
  store<u8>(t + DET_RESERVED_ZERO2, 0);
  store<u8>(t + DET_RESERVED_FT, <u8>DET_RESERVED_FT_VALUE);
  store<u32>(t + DET_CHECKSUM, 0);
}

/** crc32c(iseed) of a directory leaf block up to (not including) its 12-byte tail. */
export function dirBlockCsumCompute(blockPtr: usize, ino: u32, generation: u32): u32 {
  if (!ctxValid) return 0;
  return crc32cUpdate(inodeSeed(ino, generation), blockPtr, <usize>ctxBlockSize - <usize>DET_SIZE);
}

/** Store the leaf checksum in the tail; false if the block has no tail. */
export function dirBlockCsumSet(blockPtr: usize, ino: u32, generation: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  if (!dirBlockHasTail(blockPtr)) return false;
  const t = blockPtr + <usize>ctxBlockSize - <usize>DET_SIZE;
  store<u32>(t + DET_CHECKSUM, dirBlockCsumCompute(blockPtr, ino, generation));
  return true;
}

/**
 * Incremental leaf checksums, for an edit of a few bytes in a 4 KiB leaf (adding one
 * entry): the register-0 CRC of the bytes about to change, taken before and after the
 * change (dirCsumPart), corrects the stored checksum (dirBlockCsumPatch) without summing
 * the block again. Why that is exact: with no inversion the CRC is linear over XOR, so
 * the checksum of the changed block is the old one XOR the CRC of the difference, and
 * the difference is zero outside [lo, hi) — zeros before lo leave a zero register zero,
 * and the zeros after hi are crc32cZeros. Valid only when the stored checksum was right
 * for the block before the change: the caller's promise (the bindings use it on blocks
 * verified or sealed since their last fill).
 */
export function dirCsumPart(ptr: usize, len: usize): u32 {
  return crc32cUpdate(0, ptr, len);
}

/**
 * Correct the leaf's stored checksum after its bytes up to `hi` changed (see
 * dirCsumPart; hi <= blockSize - 12). No-op without metadata_csum or without a tail.
 */
export function dirBlockCsumPatch(blockPtr: usize, hi: u32, before: u32, after: u32): void {
  if (!ctxValid || !ctxMetadata || !dirBlockHasTail(blockPtr)) return;
  const n = ctxBlockSize - <u32>DET_SIZE;
  if (hi > n) return;
  const t = blockPtr + <usize>n;
  store<u32>(t + DET_CHECKSUM, load<u32>(t + DET_CHECKSUM) ^ crc32cZeros(before ^ after, <usize>(n - hi)));
}

/** True if the leaf block has a tail whose checksum matches (or no metadata_csum). */
export function dirBlockCsumVerify(blockPtr: usize, ino: u32, generation: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  if (!dirBlockHasTail(blockPtr)) return false;
  const t = blockPtr + <usize>ctxBlockSize - <usize>DET_SIZE;
  return load<u32>(t + DET_CHECKSUM) == dirBlockCsumCompute(blockPtr, ino, generation);
}

// ── htree index blocks ────────────────────────────────────────────────────────────────

// rec_len as stored → length; 64 KiB blocks store a whole-block length as 65535 or 0.
function recLen(stored: u32): u32 {
  if (ctxBlockSize >= 65536 && (stored == 65535 || stored == 0)) return 65536;
  return stored;
}

/**
 * Where an htree block's dx_countlimit sits: DXN_ENTRIES (8) for an interior node (a fake
 * unused entry spanning the block), DXR_ENTRIES (32) for a root ("." of length 12, ".."
 * reaching the block end, dx_root_info of length 8), -1 if the block is neither. Only
 * meaningful for blocks of an indexed (INODE_FL_INDEX) directory: an empty leaf without
 * a checksum tail is indistinguishable from an interior node.
 */
export function dxCountOffset(blockPtr: usize): i32 {
  if (!ctxValid) return -1;
  const first = recLen(<u32>load<u16>(blockPtr + DE_REC_LEN));
  if (first == ctxBlockSize && load<u32>(blockPtr + DE_INODE) == 0 && load<u8>(blockPtr + DE_NAME_LEN) == 0) {
    return DXN_ENTRIES;
  }
  if (first != 12 || load<u8>(blockPtr + DE_NAME_LEN) != 1 || load<u8>(blockPtr + DE_NAME) != 0x2e) return -1;
  if (recLen(<u32>load<u16>(blockPtr + DXR_DOTDOT_REC_LEN)) != ctxBlockSize - 12) return -1;
  if (load<u32>(blockPtr + DXR_DOTDOT_INODE) == 0) return -1;
  if (load<u32>(blockPtr + DXR_INFO_RESERVED_ZERO) != 0) return -1;
  if (<i32>load<u8>(blockPtr + DXR_INFO_INFO_LENGTH) != DX_ROOT_INFO_SIZE) return -1;
  return DXR_ENTRIES;
}

// Offset of the dx_tail (countOffset + 8·limit), or -1 if count/limit/tail do not fit.
function dxTailOffset(blockPtr: usize, countOffset: u32): i32 {
  if (countOffset + 4 > ctxBlockSize) return -1;
  const limit = <u32>load<u16>(blockPtr + countOffset + DX_LIMIT);
  const count = <u32>load<u16>(blockPtr + countOffset + DX_COUNT);
  if (count > limit) return -1;
  const tail = countOffset + limit * <u32>DX_ENTRY_SIZE;
  if (tail + <u32>DXT_SIZE > ctxBlockSize) return -1;
  return <i32>tail;
}

/** crc32c(iseed) of an htree block (used entries, then dt_reserved and a zero checksum). */
export function dxNodeCsumCompute(blockPtr: usize, ino: u32, generation: u32, countOffset: u32): u32 {
  if (!ctxValid) return 0;
  const tail = dxTailOffset(blockPtr, countOffset);
  if (tail < 0) return 0;
  const count = <u32>load<u16>(blockPtr + countOffset + DX_COUNT);
  let c = inodeSeed(ino, generation);
  c = crc32cUpdate(c, blockPtr, <usize>(countOffset + count * <u32>DX_ENTRY_SIZE));
  c = crc32cUpdate(c, blockPtr + <usize>tail + DXT_RESERVED, 4);
  return crc32cUpdate(c, zeros, 4);
}

/** Store the checksum in dx_tail.dt_checksum; false if there is no room for the tail. */
export function dxNodeCsumSet(blockPtr: usize, ino: u32, generation: u32, countOffset: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const tail = dxTailOffset(blockPtr, countOffset);
  if (tail < 0) return false;
  store<u32>(blockPtr + <usize>tail + DXT_CHECKSUM, dxNodeCsumCompute(blockPtr, ino, generation, countOffset));
  return true;
}

/** True if dx_tail.dt_checksum matches (or no metadata_csum); false if no room for a tail. */
export function dxNodeCsumVerify(blockPtr: usize, ino: u32, generation: u32, countOffset: u32): bool {
  if (!ctxValid) return false;
  if (!ctxMetadata) return true;
  const tail = dxTailOffset(blockPtr, countOffset);
  if (tail < 0) return false;
  return load<u32>(blockPtr + <usize>tail + DXT_CHECKSUM) == dxNodeCsumCompute(blockPtr, ino, generation, countOffset);
}

// ── jbd2 superblock ───────────────────────────────────────────────────────────────────

/** crc32c(~0) of the 1024-byte journal superblock with s_checksum as zero (host order). */
export function jsbCsumCompute(jsbPtr: usize): u32 {
  const off = <usize>JSB_CHECKSUM;
  let c = crc32cUpdate(0xffffffff, jsbPtr, off);
  c = crc32cUpdate(c, zeros, 4);
  return crc32cUpdate(c, jsbPtr + off + 4, <usize>JSB_SIZE - (off + 4));
}

/** Store jsbCsumCompute big-endian into s_checksum. */
export function jsbCsumSet(jsbPtr: usize): void {
  store<u32>(jsbPtr + JSB_CHECKSUM, bswap<u32>(jsbCsumCompute(jsbPtr)));
}

/**
 * True if s_checksum matches; also true for journals without CSUM_V2/V3 (and v1
 * superblocks, which have no feature words). False if v2/v3 names a non-crc32c type.
 */
export function jsbCsumVerify(jsbPtr: usize): bool {
  if (<i32>bswap<u32>(load<u32>(jsbPtr + JH_BLOCKTYPE)) != JBD2_SUPERBLOCK_V2) return true;
  const incompat = bswap<u32>(load<u32>(jsbPtr + JSB_FEATURE_INCOMPAT));
  if ((incompat & <u32>(JBD2_FEATURE_INCOMPAT_CSUM_V2 | JBD2_FEATURE_INCOMPAT_CSUM_V3)) == 0) return true;
  if (<i32>load<u8>(jsbPtr + JSB_CHECKSUM_TYPE) != JBD2_CRC32C_CHKSUM) return false;
  return bswap<u32>(load<u32>(jsbPtr + JSB_CHECKSUM)) == jsbCsumCompute(jsbPtr);
}

// ── orphan_file blocks ────────────────────────────────────────────────────────────────
// Each block of the orphan file is an array of le32 inode numbers followed by an 8-byte
// tail (magic, checksum). The checksum covers the orphan file's inode seed, the block's
// physical number as le64, and the entries (everything before the tail).

/** The orphan-file block checksum (0 without a valid context). */
export function orphanBlockCsumCompute(blockPtr: usize, ino: u32, generation: u32, phys: f64): u32 {
  if (!ctxValid || ctxBlockSize < 16) return 0;
  // The seed first: inodeSeed stages its integers in `scratch` too.
  const seed = inodeSeed(ino, generation);
  store<u64>(scratch, <u64>phys);
  const c = crc32cUpdate(seed, scratch, 8);
  return crc32cUpdate(c, blockPtr, <usize>(ctxBlockSize - 8));
}

/** Store the tail magic and (with metadata_csum) the checksum. */
export function orphanBlockCsumSet(blockPtr: usize, ino: u32, generation: u32, phys: f64): bool {
  if (!ctxValid || ctxBlockSize < 16) return false;
  store<u32>(blockPtr + <usize>(ctxBlockSize - 8), ORPHAN_BLOCK_MAGIC);
  if (ctxMetadata) store<u32>(blockPtr + <usize>(ctxBlockSize - 4), orphanBlockCsumCompute(blockPtr, ino, generation, phys));
  return true;
}

/** True if the tail magic is right and (with metadata_csum) the checksum matches. */
export function orphanBlockCsumVerify(blockPtr: usize, ino: u32, generation: u32, phys: f64): bool {
  if (!ctxValid || ctxBlockSize < 16) return false;
  if (load<u32>(blockPtr + <usize>(ctxBlockSize - 8)) != ORPHAN_BLOCK_MAGIC) return false;
  if (!ctxMetadata) return true;
  return load<u32>(blockPtr + <usize>(ctxBlockSize - 4)) == orphanBlockCsumCompute(blockPtr, ino, generation, phys);
}

/** ob_magic of an orphan-file block tail. */
export const ORPHAN_BLOCK_MAGIC: u32 = 0x0b10ca04;
