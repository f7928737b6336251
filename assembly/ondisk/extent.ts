// The extent tree: header, index entries, leaf extents and the checksum tail.
//
// Why a tree: an extent maps a run of up to 32768 logical blocks to contiguous physical
// blocks. The inode's 60-byte i_block holds the root node: a 12-byte header and room for
// 4 entries. When a file needs more, the root's entries become index entries pointing at
// full blocks of entries, one more level at a time (at most 5 levels).
//
// Every node, in i_block or in its own block, is the same shape:
//
//   node:   [ header 12 ][ entry 0 ][ entry 1 ] … [ entry eh_max-1 ][ tail 4 ]?
//           entries are ext4_extent_idx when eh_depth > 0, ext4_extent when eh_depth == 0;
//           the tail exists only in tree blocks (not in i_block) and sits right after
//           eh_max entries — *not* at the end of the block. It always fits: 12 + 12·n
//           leaves at least 4 spare bytes in any power-of-two block.
//
//   ext4_extent_header           ext4_extent_idx (interior)     ext4_extent (leaf)
//   0x0  2  eh_magic (0xF30A)     0x0  4  ei_block               0x0  4  ee_block
//   0x2  2  eh_entries            0x4  4  ei_leaf_lo             0x4  2  ee_len
//   0x4  2  eh_max                0x8  2  ei_leaf_hi             0x6  2  ee_start_hi
//   0x6  2  eh_depth              0xA  2  ei_unused              0x8  4  ee_start_lo
//   0x8  4  eh_generation         (12 bytes)                     (12 bytes)
//   (12 bytes)
//
//   ext4_extent_tail: 0x0 4 et_checksum = crc32c(seed, ino, generation, node up to here)
//
// Surprises:
// - Physical block numbers are 48 bits, split: the 16-bit _hi half comes *before* the
//   32-bit _lo half in a leaf (ee_start_hi at 0x6), and after it in an index entry.
// - ee_len > 32768 marks an unwritten (preallocated) extent of length ee_len - 32768, so
//   a written extent is at most 32768 blocks and an unwritten one at most 32767.
//   ee_len == 32768 is a written extent.

export const EH_MAGIC: i32 = 0x0;
export const EH_ENTRIES: i32 = 0x2;
export const EH_MAX: i32 = 0x4;
export const EH_DEPTH: i32 = 0x6;
export const EH_GENERATION: i32 = 0x8;
export const EH_SIZE: i32 = 12;

export const EI_BLOCK: i32 = 0x0;
export const EI_LEAF_LO: i32 = 0x4;
export const EI_LEAF_HI: i32 = 0x8;
export const EI_UNUSED: i32 = 0xa;
export const EI_SIZE: i32 = 12;

export const EE_BLOCK: i32 = 0x0;
export const EE_LEN: i32 = 0x4;
export const EE_START_HI: i32 = 0x6;
export const EE_START_LO: i32 = 0x8;
export const EE_SIZE: i32 = 12;

export const ET_CHECKSUM: i32 = 0x0;
export const ET_SIZE: i32 = 4;

export const EXT4_EXT_MAGIC: i32 = 0xf30a;
/** Longest written extent; ee_len above this means "unwritten". */
export const EXT_INIT_MAX_LEN: i32 = 32768;
/** Longest unwritten extent (stored as ee_len = EXT_INIT_MAX_LEN + len). */
export const EXT_UNWRITTEN_MAX_LEN: i32 = 32767;
/** Largest eh_depth the kernel accepts (EXT4_MAX_EXTENT_DEPTH). */
export const EXT_MAX_DEPTH: i32 = 5;
/** Entries that fit in the root node inside i_block: (60 - 12) / 12. */
export const EXT_ROOT_MAX_ENTRIES: i32 = 4;
