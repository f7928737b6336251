// The htree directory index: dx_root (block 0 of an indexed directory), dx_node (interior
// index blocks), dx_entry, dx_countlimit and the dx_tail checksum record.
//
// Why it looks like that: the index hides inside ordinary directory blocks so that code
// which ignores it (ext2, or any linear reader) sees valid, empty-looking blocks. The root
// keeps real "." and ".." entries, with ".." stretched to the end of the block so the
// index data appears to be its slack; interior nodes start with a fake unused entry
// spanning the whole block. Leaves are ordinary directory blocks.
//
//   dx_root (block 0)                              dx_node (interior index block)
//   0x00  4  dot.inode                             0x00  4  fake.inode (0)
//   0x04  2  dot.rec_len (12)                      0x04  2  fake.rec_len (block size)
//   0x06  1  dot.name_len (1)                      0x06  1  fake.name_len (0)
//   0x07  1  dot.file_type                         0x07  1  fake.file_type (0)
//   0x08  4  dot_name ".\0\0\0"                    0x08  4  countlimit {limit, count}
//   0x0C  4  dotdot.inode                          0x0C  4  block for hashes below entry 1
//   0x10  2  dotdot.rec_len (block size - 12)      0x10  8× entries[1..count-1]
//   0x12  1  dotdot.name_len (2)
//   0x13  1  dotdot.file_type                      dx_entry           dx_countlimit
//   0x14  4  dotdot_name "..\0\0"                  0x0 4 hash         0x0 2 limit
//   0x18  4  info.reserved_zero                    0x4 4 block        0x2 2 count
//   0x1C  1  info.hash_version (DX_HASH_…)
//   0x1D  1  info.info_length (8)                  dx_tail (after `limit` entries)
//   0x1E  1  info.indirect_levels                  0x0 4 dt_reserved
//   0x1F  1  info.unused_flags                     0x4 4 dt_checksum
//   0x20  4  countlimit {limit, count}
//   0x24  4  block for hashes below entry 1
//   0x28  8× entries[1..count-1]
//
// Surprises:
// - The entries array starts at DXR_ENTRIES / DXN_ENTRIES, but entry 0 is special: its
//   hash slot holds the dx_countlimit (limit, count) and only its block is real — it
//   covers every hash below entries[1].hash. count and limit include this entry 0.
// - dx "block" numbers are logical blocks within the directory file, not disk blocks.
// - The root's count offset is 0x18 + info_length, which is 0x20 for every info_length
//   the kernel accepts (8); interior nodes have it at 0x08.
// - With metadata_csum, `limit` is reduced by one so a dx_tail fits right after the last
//   possible entry (count_offset + limit·8); the checksum covers the used entries only
//   (count_offset + count·8 bytes), then dt_reserved, with dt_checksum taken as zero.
// - The kernel's Documentation table for dx_node lists count/block/entries at 0xA/0xE/
//   0x12; the struct (and e2fsprogs) puts limit at 0x8, count at 0xA, block at 0xC.

export const DXR_DOT_INODE: i32 = 0x00;
export const DXR_DOT_REC_LEN: i32 = 0x04;
export const DXR_DOT_NAME_LEN: i32 = 0x06;
export const DXR_DOT_FILE_TYPE: i32 = 0x07;
export const DXR_DOT_NAME: i32 = 0x08;
export const DXR_DOTDOT_INODE: i32 = 0x0c;
export const DXR_DOTDOT_REC_LEN: i32 = 0x10;
export const DXR_DOTDOT_NAME_LEN: i32 = 0x12;
export const DXR_DOTDOT_FILE_TYPE: i32 = 0x13;
export const DXR_DOTDOT_NAME: i32 = 0x14;
/** Start of struct dx_root_info. */
export const DXR_INFO: i32 = 0x18;
export const DXR_INFO_RESERVED_ZERO: i32 = 0x18;
export const DXR_INFO_HASH_VERSION: i32 = 0x1c;
export const DXR_INFO_INFO_LENGTH: i32 = 0x1d;
export const DXR_INFO_INDIRECT_LEVELS: i32 = 0x1e;
export const DXR_INFO_UNUSED_FLAGS: i32 = 0x1f;
/** entries[0] of the root; its hash slot is the dx_countlimit. */
export const DXR_ENTRIES: i32 = 0x20;
export const DXR_LIMIT: i32 = 0x20;
export const DXR_COUNT: i32 = 0x22;
export const DXR_BLOCK: i32 = 0x24;

export const DXN_FAKE_INODE: i32 = 0x00;
export const DXN_FAKE_REC_LEN: i32 = 0x04;
export const DXN_FAKE_NAME_LEN: i32 = 0x06;
export const DXN_FAKE_FILE_TYPE: i32 = 0x07;
/** entries[0] of an interior node; its hash slot is the dx_countlimit. */
export const DXN_ENTRIES: i32 = 0x08;
export const DXN_LIMIT: i32 = 0x08;
export const DXN_COUNT: i32 = 0x0a;
export const DXN_BLOCK: i32 = 0x0c;

/** dx_entry fields and size. */
export const DX_HASH: i32 = 0x0;
export const DX_BLOCK: i32 = 0x4;
export const DX_ENTRY_SIZE: i32 = 8;
/** dx_countlimit fields (relative to entries[0]) and size. */
export const DX_LIMIT: i32 = 0x0;
export const DX_COUNT: i32 = 0x2;
export const DX_COUNTLIMIT_SIZE: i32 = 4;
/** Size of struct dx_root_info (the only info_length the kernel accepts). */
export const DX_ROOT_INFO_SIZE: i32 = 8;
/** Only the low 28 bits of dx_entry.block are a block number. */
export const DX_BLOCK_MASK: i32 = 0x0fffffff;
/** Index levels (indirect_levels + 1) allowed: 2, or 3 with INCOMPAT_LARGEDIR. */
export const DX_MAX_LEVELS: i32 = 2;
export const DX_MAX_LEVELS_LARGEDIR: i32 = 3;

/** dx_tail fields and size. */
export const DXT_RESERVED: i32 = 0x0;
export const DXT_CHECKSUM: i32 = 0x4;
export const DXT_SIZE: i32 = 8;

/** dx_root_info.hash_version / s_def_hash_version. */
export const DX_HASH_LEGACY: i32 = 0;
export const DX_HASH_HALF_MD4: i32 = 1;
export const DX_HASH_TEA: i32 = 2;
export const DX_HASH_LEGACY_UNSIGNED: i32 = 3;
export const DX_HASH_HALF_MD4_UNSIGNED: i32 = 4;
export const DX_HASH_TEA_UNSIGNED: i32 = 5;
export const DX_HASH_SIPHASH: i32 = 6;
