/**
 * Reference ext4 metadata checksums for test fixtures, written from the on-disk format
 * documentation (Documentation/filesystems/ext4: "Checksums") and kept deliberately slow
 * and plain: a bitwise CRC32C, no tables, no tricks. Fixtures need them for two jobs the
 * e2fsprogs tools cannot do for us:
 *
 *  - building a 50,000-entry directory fast (libext2fs links names one by one with a
 *    linear scan, which takes minutes), where fixtures write plain directory blocks with
 *    their checksum tails and then let `e2fsck -fyD` index them;
 *  - the read fuzzer, which after corrupting a metadata_csum image may recompute the
 *    checksum of what it corrupted, so the damage gets past checksum verification and
 *    reaches the parsers behind it.
 *
 * These never judge the engine on their own: the fuzzer first proves they are right by
 * recomputing every checksum of pristine mke2fs images and requiring no byte to change.
 *
 * Conventions (from the format documentation): ext4 stores the CRC32C register *without*
 * the final inversion, seeded with ~0 for the superblock and with the filesystem seed
 * (crc32c(~0, uuid), or s_checksum_seed with the csum_seed feature) for everything else.
 */

/** CRC32C (Castagnoli, reflected 0x82F63B78) register update, no pre/post inversion. */
export function crc32cRaw(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  let c = crc >>> 0;
  for (let i = start; i < end; i++) {
    c ^= data[i]!;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

/** crc32cRaw over a little-endian u32. */
export function crc32cU32(crc: number, v: number): number {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return crc32cRaw(crc, b);
}

// Superblock fields used here (byte offsets inside the 1024-byte superblock).
const SB_FEATURE_INCOMPAT = 0x60;
const SB_FEATURE_RO_COMPAT = 0x64;
const SB_UUID = 0x68;
const SB_DESC_SIZE = 0xfe;
const SB_CHECKSUM_SEED = 0x270;
const SB_CHECKSUM = 0x3fc;
const INCOMPAT_64BIT = 0x80;
const INCOMPAT_CSUM_SEED = 0x2000;
const RO_COMPAT_METADATA_CSUM = 0x400;

/** What checksum fix-ups need to know about a filesystem, read from its superblock. */
export interface CsumContext {
  metadataCsum: boolean;
  seed: number;
  descSize: number;
}

/** The checksum context of the superblock at byte 1024 of `image`. */
export function csumContext(image: Uint8Array): CsumContext {
  const sb = image.subarray(1024, 2048);
  const dv = new DataView(sb.buffer, sb.byteOffset, 1024);
  const incompat = dv.getUint32(SB_FEATURE_INCOMPAT, true);
  const ro = dv.getUint32(SB_FEATURE_RO_COMPAT, true);
  const seed = incompat & INCOMPAT_CSUM_SEED
    ? dv.getUint32(SB_CHECKSUM_SEED, true)
    : crc32cRaw(0xffffffff, sb, SB_UUID, SB_UUID + 16);
  const descSize = incompat & INCOMPAT_64BIT ? dv.getUint16(SB_DESC_SIZE, true) : 32;
  return { metadataCsum: (ro & RO_COMPAT_METADATA_CSUM) !== 0, seed, descSize };
}

/** Recompute the superblock checksum (the superblock starts at `sbOffset`). */
export function fixSuperblockCsum(image: Uint8Array, sbOffset = 1024): void {
  const dv = new DataView(image.buffer, image.byteOffset);
  dv.setUint32(sbOffset + SB_CHECKSUM, crc32cRaw(0xffffffff, image, sbOffset, sbOffset + SB_CHECKSUM), true);
}

/** Recompute a group descriptor's bg_checksum (metadata_csum flavour). */
export function fixGroupDescCsum(image: Uint8Array, ctx: CsumContext, descOffset: number, group: number): void {
  const BG_CHECKSUM = 0x1e;
  let c = crc32cU32(ctx.seed, group);
  c = crc32cRaw(c, image, descOffset, descOffset + BG_CHECKSUM);
  c = crc32cRaw(c, new Uint8Array(2));
  c = crc32cRaw(c, image, descOffset + BG_CHECKSUM + 2, descOffset + ctx.descSize);
  new DataView(image.buffer, image.byteOffset).setUint16(descOffset + BG_CHECKSUM, c & 0xffff, true);
}

/** Recompute an inode's checksum (lo, and hi when the extra fields cover it). */
export function fixInodeCsum(image: Uint8Array, ctx: CsumContext, inodeOffset: number, inodeSize: number, ino: number): void {
  const dv = new DataView(image.buffer, image.byteOffset);
  const I_GENERATION = 0x64;
  const I_CHECKSUM_LO = 0x7c;
  const I_EXTRA_ISIZE = 0x80;
  const I_CHECKSUM_HI = 0x82;
  const hasHi = inodeSize > 128 && dv.getUint16(inodeOffset + I_EXTRA_ISIZE, true) >= 4;
  const copy = image.slice(inodeOffset, inodeOffset + inodeSize);
  copy[I_CHECKSUM_LO] = 0;
  copy[I_CHECKSUM_LO + 1] = 0;
  if (hasHi) {
    copy[I_CHECKSUM_HI] = 0;
    copy[I_CHECKSUM_HI + 1] = 0;
  }
  let c = crc32cU32(ctx.seed, ino);
  c = crc32cU32(c, dv.getUint32(inodeOffset + I_GENERATION, true));
  c = crc32cRaw(c, copy);
  dv.setUint16(inodeOffset + I_CHECKSUM_LO, c & 0xffff, true);
  if (hasHi) dv.setUint16(inodeOffset + I_CHECKSUM_HI, c >>> 16, true);
}

/** The per-inode seed that extent, directory and xattr block checksums start from. */
export function inodeSeed(ctx: CsumContext, ino: number, generation: number): number {
  return crc32cU32(crc32cU32(ctx.seed, ino), generation);
}

/**
 * Recompute an extent tree block's tail checksum: it follows eh_max entries of 12 bytes
 * after the 12-byte header. Returns false (changing nothing) when the header's eh_max
 * would put the tail outside the block.
 */
export function fixExtentBlockCsum(block: Uint8Array, seed: number): boolean {
  const dv = new DataView(block.buffer, block.byteOffset, block.length);
  const tail = 12 + 12 * dv.getUint16(4, true);
  if (tail + 4 > block.length) return false;
  dv.setUint32(tail, crc32cRaw(seed, block, 0, tail), true);
  return true;
}

/**
 * Recompute a directory leaf block's tail checksum. The tail is a fake 12-byte entry at
 * the end of the block (inode 0, rec_len 12, name_len 0, type 0xDE, then the checksum).
 * Returns false when the block has no such tail.
 */
export function fixDirLeafCsum(block: Uint8Array, seed: number): boolean {
  const dv = new DataView(block.buffer, block.byteOffset, block.length);
  const t = block.length - 12;
  if (dv.getUint32(t, true) !== 0 || dv.getUint16(t + 4, true) !== 12 || block[t + 6] !== 0 || block[t + 7] !== 0xde) return false;
  dv.setUint32(t + 8, crc32cRaw(seed, block, 0, t), true);
  return true;
}

/**
 * Recompute an htree node's checksum. `countOffset` is where the node's (limit, count)
 * pair sits: 0x20 in the root block (after '.', '..' and the root info), 8 in interior
 * nodes. The 8-byte tail (reserved, checksum) follows `limit` entries of 8 bytes; the
 * checksum covers the block up to the end of the `count` used entries, then the whole
 * tail with its checksum field taken as zero. Returns false when limit/count do not
 * leave room for the tail.
 */
export function fixDxNodeCsum(block: Uint8Array, seed: number, countOffset: number): boolean {
  const dv = new DataView(block.buffer, block.byteOffset, block.length);
  const limit = dv.getUint16(countOffset, true);
  const count = dv.getUint16(countOffset + 2, true);
  const tail = countOffset + limit * 8;
  if (count > limit || tail + 8 > block.length) return false;
  let c = crc32cRaw(seed, block, 0, countOffset + count * 8);
  c = crc32cRaw(c, block, tail, tail + 4);
  c = crc32cRaw(c, new Uint8Array(4));
  dv.setUint32(tail + 4, c, true);
  return true;
}
