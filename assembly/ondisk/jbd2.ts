// The jbd2 journal's on-disk records: the common block header, the journal superblock,
// descriptor-block tags, the commit block and the revoke header.
//
// BIG-ENDIAN: unlike every other ext4 structure, all multi-byte jbd2 fields are stored
// big-endian (jbd2 began as a filesystem-independent layer and chose network order).
// Wasm is little-endian, so read them as bswap(load<u32>(p + OFF)) and store with bswap.
// Single bytes (s_checksum_type, h_chksum_type …) and UUIDs need no swapping.
//
// Every journal block starts with journal_header_t; its h_blocktype says what follows.
//
//   journal_header_t              journal_superblock_t (block 0 of the journal, 1024 B)
//   0x0  4  h_magic (0xC03B3998)  0x000 12  s_header            0x040 4  s_nr_users
//   0x4  4  h_blocktype           0x00C 4   s_blocksize         0x044 4  s_dynsuper
//   0x8  4  h_sequence            0x010 4   s_maxlen            0x048 4  s_max_transaction
//                                 0x014 4   s_first             0x04C 4  s_max_trans_data
//                                 0x018 4   s_sequence          0x050 1  s_checksum_type
//                                 0x01C 4   s_start (0: clean)  0x051 3  s_padding2
//                                 0x020 4   s_errno             0x054 4  s_num_fc_blks
//                                 0x024 4   s_feature_compat    0x058 4  s_head
//                                 0x028 4   s_feature_incompat  0x05C 160 s_padding[40]
//                                 0x02C 4   s_feature_ro_compat 0x0FC 4  s_checksum
//                                 0x030 16  s_uuid              0x100 768 s_users[16*48]
//
//   commit_header (commit block)         journal_block_tag3_t (CSUM_V3 descriptor tag)
//   0x00  12  header                     0x0  4  t_blocknr
//   0x0C  1   h_chksum_type              0x4  4  t_flags (JBD2_FLAG_…)
//   0x0D  1   h_chksum_size              0x8  4  t_blocknr_high
//   0x0E  2   h_padding                  0xC  4  t_checksum
//   0x10  32  h_chksum[8]                (16 bytes; followed by a 16-byte UUID unless
//   0x30  8   h_commit_sec                JBD2_FLAG_SAME_UUID is set)
//   0x38  4   h_commit_nsec
//
//   journal_block_tag_t (no CSUM_V3)     revoke header           block tail (CSUM_V2/3)
//   0x0  4  t_blocknr                    0x00 12 header          last 4 bytes of a
//   0x4  2  t_checksum (low 16 bits)     0x0C 4  r_count (bytes  descriptor or revoke
//   0x6  2  t_flags                              used, incl. hdr) block: t_checksum
//   0x8  4  t_blocknr_high (64BIT only)  0x10 …  block numbers (4 or 8 bytes each)
//
// Surprises:
// - The journal superblock checksum is crc32c(~0) over the whole 1024 bytes with
//   s_checksum as zero — seeded with ~0, not with the ext4 metadata seed — stored
//   big-endian. Other journal checksums are seeded with crc32c(~0, s_uuid) of the
//   *journal* superblock.
// - commit_header's used bytes end at 0x3C; the C struct is 64 bytes only because of
//   the alignment of h_commit_sec.
// - Only superblock v2 (JBD2_SUPERBLOCK_V2) has the fields from 0x24 on.

export const JH_MAGIC: i32 = 0x0;
export const JH_BLOCKTYPE: i32 = 0x4;
export const JH_SEQUENCE: i32 = 0x8;
export const JH_SIZE: i32 = 12;

export const JSB_HEADER: i32 = 0x000;
export const JSB_BLOCKSIZE: i32 = 0x00c;
export const JSB_MAXLEN: i32 = 0x010;
export const JSB_FIRST: i32 = 0x014;
export const JSB_SEQUENCE: i32 = 0x018;
export const JSB_START: i32 = 0x01c;
export const JSB_ERRNO: i32 = 0x020;
export const JSB_FEATURE_COMPAT: i32 = 0x024;
export const JSB_FEATURE_INCOMPAT: i32 = 0x028;
export const JSB_FEATURE_RO_COMPAT: i32 = 0x02c;
export const JSB_UUID: i32 = 0x030;
export const JSB_NR_USERS: i32 = 0x040;
export const JSB_DYNSUPER: i32 = 0x044;
export const JSB_MAX_TRANSACTION: i32 = 0x048;
export const JSB_MAX_TRANS_DATA: i32 = 0x04c;
export const JSB_CHECKSUM_TYPE: i32 = 0x050;
export const JSB_PADDING2: i32 = 0x051;
export const JSB_NUM_FC_BLKS: i32 = 0x054;
export const JSB_HEAD: i32 = 0x058;
export const JSB_PADDING: i32 = 0x05c;
export const JSB_CHECKSUM: i32 = 0x0fc;
export const JSB_USERS: i32 = 0x100;
export const JSB_SIZE: i32 = 1024;

export const JC_CHKSUM_TYPE: i32 = 0x0c;
export const JC_CHKSUM_SIZE: i32 = 0x0d;
export const JC_PADDING: i32 = 0x0e;
export const JC_CHKSUM: i32 = 0x10;
export const JC_COMMIT_SEC: i32 = 0x30;
export const JC_COMMIT_NSEC: i32 = 0x38;
/** Bytes of the commit block that carry fields. */
export const JC_SIZE: i32 = 0x3c;

export const JT3_BLOCKNR: i32 = 0x0;
export const JT3_FLAGS: i32 = 0x4;
export const JT3_BLOCKNR_HIGH: i32 = 0x8;
export const JT3_CHECKSUM: i32 = 0xc;
export const JT3_SIZE: i32 = 16;

export const JT_BLOCKNR: i32 = 0x0;
export const JT_CHECKSUM: i32 = 0x4;
export const JT_FLAGS: i32 = 0x6;
export const JT_BLOCKNR_HIGH: i32 = 0x8;
/** journal_block_tag_t size without / with INCOMPAT_64BIT (no UUID). */
export const JT_SIZE_32: i32 = 8;
export const JT_SIZE_64: i32 = 12;
/** Bytes of UUID after a tag that lacks JBD2_FLAG_SAME_UUID. */
export const JT_UUID_SIZE: i32 = 16;

export const JR_COUNT: i32 = 0x0c;
export const JR_HEADER_SIZE: i32 = 16;
/** jbd2_journal_block_tail / revoke tail: a be32 checksum in a block's last 4 bytes. */
export const JBT_CHECKSUM: i32 = 0x0;
export const JBT_SIZE: i32 = 4;

/** h_magic of every journal block. */
export const JBD2_MAGIC_NUMBER: u32 = 0xc03b3998;

/** h_blocktype. */
export const JBD2_DESCRIPTOR_BLOCK: i32 = 1;
export const JBD2_COMMIT_BLOCK: i32 = 2;
export const JBD2_SUPERBLOCK_V1: i32 = 3;
export const JBD2_SUPERBLOCK_V2: i32 = 4;
export const JBD2_REVOKE_BLOCK: i32 = 5;
export const JBD2_FC_BLOCK: i32 = 6;

/** Journal feature flags (s_feature_*). CHECKSUM (v1), CSUM_V2 and CSUM_V3 are exclusive. */
export const JBD2_FEATURE_COMPAT_CHECKSUM: i32 = 0x00000001;
export const JBD2_FEATURE_INCOMPAT_REVOKE: i32 = 0x00000001;
export const JBD2_FEATURE_INCOMPAT_64BIT: i32 = 0x00000002;
export const JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT: i32 = 0x00000004;
export const JBD2_FEATURE_INCOMPAT_CSUM_V2: i32 = 0x00000008;
export const JBD2_FEATURE_INCOMPAT_CSUM_V3: i32 = 0x00000010;
export const JBD2_FEATURE_INCOMPAT_FAST_COMMIT: i32 = 0x00000020;

/** s_checksum_type / h_chksum_type. */
export const JBD2_CRC32_CHKSUM: i32 = 1;
export const JBD2_MD5_CHKSUM: i32 = 2;
export const JBD2_SHA1_CHKSUM: i32 = 3;
export const JBD2_CRC32C_CHKSUM: i32 = 4;
/** Words in h_chksum[]. */
export const JBD2_CHECKSUM_BYTES: i32 = 8;

/** Descriptor tag t_flags. */
export const JBD2_FLAG_ESCAPE: i32 = 1;
export const JBD2_FLAG_SAME_UUID: i32 = 2;
export const JBD2_FLAG_DELETED: i32 = 4;
export const JBD2_FLAG_LAST_TAG: i32 = 8;

/** s_users holds this many 16-byte UUIDs. */
export const JBD2_USERS_MAX: i32 = 48;
