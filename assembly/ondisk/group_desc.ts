// struct ext4_group_desc: one per block group, packed back to back in the group
// descriptor table that follows the superblock.
//
// Why two sizes: ext2/ext3 descriptors are 32 bytes and end at bg_checksum. The 64bit
// incompat feature widens them to s_desc_size bytes (at least 64, a power of two) and
// appends the high halves of every field that needed widening. So each wide value is
// split: its _lo half lives in the first 32 bytes and its _hi half in the second 32, and
// the _hi half exists only when the descriptor is 64 bytes or more (without the 64bit
// feature the descriptor size is 32 regardless of what s_desc_size says). A reader must
// never touch offsets >= 0x20 of a 32-byte descriptor: that is the next group's entry.
//
// Checksums: bg_checksum is crc16(uuid, group, desc) under gdt_csum, or the low 16 bits
// of crc32c(seed, group, desc) under metadata_csum (see csum.ts for the exact rule). The
// bitmap checksums are crc32c over the bitmaps; only 16 bits fit in a 32-byte descriptor.
//
//   off   size  field                        off   size  field (only when desc_size >= 64)
//   0x00  4     bg_block_bitmap_lo           0x20  4     bg_block_bitmap_hi
//   0x04  4     bg_inode_bitmap_lo           0x24  4     bg_inode_bitmap_hi
//   0x08  4     bg_inode_table_lo            0x28  4     bg_inode_table_hi
//   0x0C  2     bg_free_blocks_count_lo      0x2C  2     bg_free_blocks_count_hi
//   0x0E  2     bg_free_inodes_count_lo      0x2E  2     bg_free_inodes_count_hi
//   0x10  2     bg_used_dirs_count_lo        0x30  2     bg_used_dirs_count_hi
//   0x12  2     bg_flags (BG_INODE_UNINIT…)  0x32  2     bg_itable_unused_hi
//   0x14  4     bg_exclude_bitmap_lo         0x34  4     bg_exclude_bitmap_hi
//   0x18  2     bg_block_bitmap_csum_lo      0x38  2     bg_block_bitmap_csum_hi
//   0x1A  2     bg_inode_bitmap_csum_lo      0x3A  2     bg_inode_bitmap_csum_hi
//   0x1C  2     bg_itable_unused_lo          0x3C  4     bg_reserved
//   0x1E  2     bg_checksum
//
// Note the asymmetry at 0x12/0x32: bg_flags has no high half, and its slot in the upper
// half is taken by bg_itable_unused_hi.

export const BG_BLOCK_BITMAP_LO: i32 = 0x00;
export const BG_INODE_BITMAP_LO: i32 = 0x04;
export const BG_INODE_TABLE_LO: i32 = 0x08;
export const BG_FREE_BLOCKS_COUNT_LO: i32 = 0x0c;
export const BG_FREE_INODES_COUNT_LO: i32 = 0x0e;
export const BG_USED_DIRS_COUNT_LO: i32 = 0x10;
export const BG_FLAGS: i32 = 0x12;
export const BG_EXCLUDE_BITMAP_LO: i32 = 0x14;
export const BG_BLOCK_BITMAP_CSUM_LO: i32 = 0x18;
export const BG_INODE_BITMAP_CSUM_LO: i32 = 0x1a;
export const BG_ITABLE_UNUSED_LO: i32 = 0x1c;
export const BG_CHECKSUM: i32 = 0x1e;
export const BG_BLOCK_BITMAP_HI: i32 = 0x20;
export const BG_INODE_BITMAP_HI: i32 = 0x24;
export const BG_INODE_TABLE_HI: i32 = 0x28;
export const BG_FREE_BLOCKS_COUNT_HI: i32 = 0x2c;
export const BG_FREE_INODES_COUNT_HI: i32 = 0x2e;
export const BG_USED_DIRS_COUNT_HI: i32 = 0x30;
export const BG_ITABLE_UNUSED_HI: i32 = 0x32;
export const BG_EXCLUDE_BITMAP_HI: i32 = 0x34;
export const BG_BLOCK_BITMAP_CSUM_HI: i32 = 0x38;
export const BG_INODE_BITMAP_CSUM_HI: i32 = 0x3a;
export const BG_RESERVED: i32 = 0x3c;

/** Descriptor size without the 64bit feature (ends right after bg_checksum). */
export const BG_DESC_SIZE_32: i32 = 32;
/** Smallest descriptor size with the 64bit feature; s_desc_size may be larger. */
export const BG_DESC_SIZE_64: i32 = 64;
/** Largest s_desc_size the kernel accepts (EXT4_MAX_DESC_SIZE = the minimum block size). */
export const BG_DESC_SIZE_MAX: i32 = 1024;
/** The block bitmap's high checksum half fits when desc_size reaches this (0x38 + 2). */
export const BG_BLOCK_BITMAP_CSUM_HI_END: i32 = 0x3a;
/** The inode bitmap's high checksum half fits when desc_size reaches this (0x3A + 2). */
export const BG_INODE_BITMAP_CSUM_HI_END: i32 = 0x3c;
