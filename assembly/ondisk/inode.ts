// struct ext4_inode: one record of s_inode_size bytes (128, 256 by default, up to the
// block size) in a group's inode table. Inode n lives in group (n-1) / inodes_per_group,
// at index (n-1) % inodes_per_group of that group's table; there is no inode 0.
//
// Why the record has two parts: ext2 fixed the inode at 128 bytes. Larger records keep
// those 128 bytes unchanged and append an "extra" part whose used length is stored per
// inode in i_extra_isize (counting from 0x80, including i_extra_isize itself). A field at
// offset >= 0x80 exists in a given inode only if 0x80 + i_extra_isize covers it entirely;
// the rest of the record up to s_inode_size holds in-inode extended attributes. With
// 128-byte records none of the extra fields exist, so the checksum is only 16 bits, there
// are no sub-second timestamps and no creation time.
//
// Other surprises:
// - Wide values are split: size = i_size_lo | i_size_high << 32; blocks =
//   i_blocks_lo | l_i_blocks_high << 32 (512-byte units, or filesystem blocks when
//   INODE_FL_HUGE_FILE is set); uid/gid = 16-bit low half here | l_i_*_high << 16;
//   xattr block = i_file_acl_lo | l_i_file_acl_high << 32.
// - osd1 and osd2 are unions whose meaning depends on s_creator_os. We only support the
//   Linux view: osd1 = l_i_version, osd2 = { l_i_blocks_high, l_i_file_acl_high,
//   l_i_uid_high, l_i_gid_high, l_i_checksum_lo, l_i_reserved }. Their names here drop the
//   "l_i_" prefix (I_BLOCKS_HIGH …) like the other fields drop "i_".
// - The checksum is split too: l_i_checksum_lo in osd2 (0x7C), i_checksum_hi at 0x82.
// - i_block is 60 bytes of "payload": an extent tree root (extent.ts), the ext2 block
//   map (12 direct + 3 indirect pointers), a short symlink target, or inline data.
// - Each *_extra timestamp word holds 2 epoch bits (extending seconds to 34 bits) and 30
//   bits of nanoseconds.
//
//   off   size  field                     off   size  field (extra part, i_extra_isize)
//   0x00  2     i_mode                    0x80  2     i_extra_isize
//   0x02  2     i_uid (low 16)            0x82  2     i_checksum_hi
//   0x04  4     i_size_lo                 0x84  4     i_ctime_extra
//   0x08  4     i_atime                   0x88  4     i_mtime_extra
//   0x0C  4     i_ctime                   0x8C  4     i_atime_extra
//   0x10  4     i_mtime                   0x90  4     i_crtime
//   0x14  4     i_dtime (orphan: next)    0x94  4     i_crtime_extra
//   0x18  2     i_gid (low 16)            0x98  4     i_version_hi
//   0x1A  2     i_links_count             0x9C  4     i_projid
//   0x1C  4     i_blocks_lo               0xA0        (end: i_extra_isize = 32)
//   0x20  4     i_flags (INODE_FL_…)
//   0x24  4     osd1: l_i_version
//   0x28  60    i_block[15]
//   0x64  4     i_generation
//   0x68  4     i_file_acl_lo
//   0x6C  4     i_size_high
//   0x70  4     i_obso_faddr
//   0x74  2     osd2: l_i_blocks_high
//   0x76  2     osd2: l_i_file_acl_high
//   0x78  2     osd2: l_i_uid_high
//   0x7A  2     osd2: l_i_gid_high
//   0x7C  2     osd2: l_i_checksum_lo
//   0x7E  2     osd2: l_i_reserved

export const I_MODE: i32 = 0x00;
export const I_UID: i32 = 0x02;
export const I_SIZE_LO: i32 = 0x04;
export const I_ATIME: i32 = 0x08;
export const I_CTIME: i32 = 0x0c;
export const I_MTIME: i32 = 0x10;
export const I_DTIME: i32 = 0x14;
export const I_GID: i32 = 0x18;
export const I_LINKS_COUNT: i32 = 0x1a;
export const I_BLOCKS_LO: i32 = 0x1c;
export const I_FLAGS: i32 = 0x20;
/** osd1 (Linux: l_i_version). */
export const I_OSD1: i32 = 0x24;
export const I_VERSION: i32 = 0x24;
export const I_BLOCK: i32 = 0x28;
export const I_GENERATION: i32 = 0x64;
export const I_FILE_ACL_LO: i32 = 0x68;
export const I_SIZE_HIGH: i32 = 0x6c;
export const I_OBSO_FADDR: i32 = 0x70;
/** osd2 (Linux: the six 16-bit fields below). */
export const I_OSD2: i32 = 0x74;
export const I_BLOCKS_HIGH: i32 = 0x74;
export const I_FILE_ACL_HIGH: i32 = 0x76;
export const I_UID_HIGH: i32 = 0x78;
export const I_GID_HIGH: i32 = 0x7a;
export const I_CHECKSUM_LO: i32 = 0x7c;
export const I_RESERVED: i32 = 0x7e;
export const I_EXTRA_ISIZE: i32 = 0x80;
export const I_CHECKSUM_HI: i32 = 0x82;
export const I_CTIME_EXTRA: i32 = 0x84;
export const I_MTIME_EXTRA: i32 = 0x88;
export const I_ATIME_EXTRA: i32 = 0x8c;
export const I_CRTIME: i32 = 0x90;
export const I_CRTIME_EXTRA: i32 = 0x94;
export const I_VERSION_HI: i32 = 0x98;
export const I_PROJID: i32 = 0x9c;

/** Bytes of i_block (EXT4_N_BLOCKS = 15 words). */
export const I_BLOCK_SIZE: i32 = 60;
export const I_N_BLOCKS: i32 = 15;
/** The ext2 part every inode record has; fields beyond it depend on i_extra_isize. */
export const I_GOOD_OLD_SIZE: i32 = 128;
/** End of the whole struct as of the kernel we follow (i_extra_isize = 32 reaches it). */
export const I_LARGE_SIZE: i32 = 0xa0;
/** i_extra_isize new inodes get: covers every extra field above. */
export const I_EXTRA_ISIZE_DEFAULT: i32 = 32;
/** i_checksum_hi exists when i_extra_isize >= this (0x82 + 2 - 0x80). */
export const I_CSUM_HI_EXTRA_END: i32 = 4;
/** Low bits of each *_extra word that extend the seconds; the other 30 are nanoseconds. */
export const I_EXTRA_TIME_EPOCH_BITS: i32 = 2;
