// Directory entries (struct ext4_dir_entry_2) and the checksum tail of a leaf block
// (struct ext4_dir_entry_tail), plus the file-type codes stored in each entry.
//
// Why a linked list of variable-length records: a directory block is a chain of entries
// where each rec_len says how far the next one starts; the last entry's rec_len reaches
// the end of the block (or the tail). Deleting an entry merges it into its predecessor's
// rec_len; a free slot at the start of a block is an entry with inode 0. Names are not
// NUL-terminated; name_len says how long they are. Each record is 4-byte aligned:
// rec_len >= DE_HEADER_SIZE + name_len, rounded up to 4.
//
//   ext4_dir_entry_2                      ext4_dir_entry_tail (last 12 bytes of a leaf
//   0x0  4   inode (0 = unused)           block with metadata_csum)
//   0x4  2   rec_len                      0x0  4  det_reserved_zero1  (0: "unused entry")
//   0x6  1   name_len                     0x4  2  det_rec_len         (12)
//   0x7  1   file_type (FT_…)             0x6  1  det_reserved_zero2  (name_len 0)
//   0x8  n   name[name_len], pad to 4     0x7  1  det_reserved_ft     (0xDE)
//                                         0x8  4  det_checksum
//
// Surprises:
// - The tail masquerades as an empty 12-byte entry so that code unaware of checksums
//   skips it; the entry before it must end at block_size - 12, not at the block end.
// - file_type is only meaningful with INCOMPAT_FILETYPE; without it byte 7 is the high
//   byte of a 16-bit name_len (the original ext4_dir_entry).
// - rec_len is 16 bits, so 65536-byte blocks encode a whole-block rec_len specially
//   (65535 or 0 means 65536); we only support blocks up to 64 KiB, where that arises.

export const DE_INODE: i32 = 0x0;
export const DE_REC_LEN: i32 = 0x4;
export const DE_NAME_LEN: i32 = 0x6;
export const DE_FILE_TYPE: i32 = 0x7;
export const DE_NAME: i32 = 0x8;
/** Fixed part of an entry; the name follows. */
export const DE_HEADER_SIZE: i32 = 8;
/** Longest name (EXT4_NAME_LEN). */
export const DE_NAME_MAX: i32 = 255;
/** Entries are padded to a multiple of this. */
export const DE_PAD: i32 = 4;

export const DET_RESERVED_ZERO1: i32 = 0x0;
export const DET_REC_LEN: i32 = 0x4;
export const DET_RESERVED_ZERO2: i32 = 0x6;
export const DET_RESERVED_FT: i32 = 0x7;
export const DET_CHECKSUM: i32 = 0x8;
export const DET_SIZE: i32 = 12;
/** det_reserved_ft marker that identifies a checksum tail. */
export const DET_RESERVED_FT_VALUE: i32 = 0xde;

/** file_type codes (only the low 3 bits are used). */
export const FT_UNKNOWN: i32 = 0;
export const FT_REG_FILE: i32 = 1;
export const FT_DIR: i32 = 2;
export const FT_CHRDEV: i32 = 3;
export const FT_BLKDEV: i32 = 4;
export const FT_FIFO: i32 = 5;
export const FT_SOCK: i32 = 6;
export const FT_SYMLINK: i32 = 7;
export const FT_MAX: i32 = 8;
