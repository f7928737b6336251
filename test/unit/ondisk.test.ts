/**
 * Pins every on-disk offset and size the engine exports (assembly/ondisk/*.ts).
 *
 * Two independent references:
 *  1. Tables transcribed by hand from the kernel's Documentation/filesystems/ext4
 *     (super.rst, group_descr.rst, inodes.rst, ifork.rst, directory.rst, journal.rst):
 *     offset and size of each field. Each table must match the engine's constants AND tile
 *     its structure exactly (no gap, no overlap, ends at the total size), so a typo in one
 *     offset cannot hide. Where the current kernel struct refines the document (a pad split
 *     into named bytes, a renamed field, a fixed typo) the table follows the struct and a
 *     comment says what the document shows.
 *  2. Real images made by mke2fs/debugfs/e2fsck: values read at our offsets must equal what
 *     dumpe2fs and debugfs print for the same image.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import {
  buildTree, debugfs, debugfsScript, fragment, parseColonLines, parseGroups, readImage, scratchDir, tool,
  toolStatus, uuidBytes,
} from "./e2fs-oracle.ts";

type Field = [name: string, offset: number, size: number];

// ── Documentation tables ──────────────────────────────────────────────────────────────

// super.rst, "struct ext4_super_block".
const SUPERBLOCK: Field[] = [
  ["SB_INODES_COUNT", 0x0, 4], ["SB_BLOCKS_COUNT_LO", 0x4, 4], ["SB_R_BLOCKS_COUNT_LO", 0x8, 4],
  ["SB_FREE_BLOCKS_COUNT_LO", 0xc, 4], ["SB_FREE_INODES_COUNT", 0x10, 4], ["SB_FIRST_DATA_BLOCK", 0x14, 4],
  ["SB_LOG_BLOCK_SIZE", 0x18, 4], ["SB_LOG_CLUSTER_SIZE", 0x1c, 4], ["SB_BLOCKS_PER_GROUP", 0x20, 4],
  ["SB_CLUSTERS_PER_GROUP", 0x24, 4], ["SB_INODES_PER_GROUP", 0x28, 4], ["SB_MTIME", 0x2c, 4],
  ["SB_WTIME", 0x30, 4], ["SB_MNT_COUNT", 0x34, 2], ["SB_MAX_MNT_COUNT", 0x36, 2], ["SB_MAGIC", 0x38, 2],
  ["SB_STATE", 0x3a, 2], ["SB_ERRORS", 0x3c, 2], ["SB_MINOR_REV_LEVEL", 0x3e, 2], ["SB_LASTCHECK", 0x40, 4],
  ["SB_CHECKINTERVAL", 0x44, 4], ["SB_CREATOR_OS", 0x48, 4], ["SB_REV_LEVEL", 0x4c, 4],
  ["SB_DEF_RESUID", 0x50, 2], ["SB_DEF_RESGID", 0x52, 2], ["SB_FIRST_INO", 0x54, 4],
  ["SB_INODE_SIZE", 0x58, 2], ["SB_BLOCK_GROUP_NR", 0x5a, 2], ["SB_FEATURE_COMPAT", 0x5c, 4],
  ["SB_FEATURE_INCOMPAT", 0x60, 4], ["SB_FEATURE_RO_COMPAT", 0x64, 4], ["SB_UUID", 0x68, 16],
  ["SB_VOLUME_NAME", 0x78, 16], ["SB_LAST_MOUNTED", 0x88, 64], ["SB_ALGORITHM_USAGE_BITMAP", 0xc8, 4],
  ["SB_PREALLOC_BLOCKS", 0xcc, 1], ["SB_PREALLOC_DIR_BLOCKS", 0xcd, 1], ["SB_RESERVED_GDT_BLOCKS", 0xce, 2],
  ["SB_JOURNAL_UUID", 0xd0, 16], ["SB_JOURNAL_INUM", 0xe0, 4], ["SB_JOURNAL_DEV", 0xe4, 4],
  ["SB_LAST_ORPHAN", 0xe8, 4], ["SB_HASH_SEED", 0xec, 16], ["SB_DEF_HASH_VERSION", 0xfc, 1],
  ["SB_JNL_BACKUP_TYPE", 0xfd, 1], ["SB_DESC_SIZE", 0xfe, 2], ["SB_DEFAULT_MOUNT_OPTS", 0x100, 4],
  ["SB_FIRST_META_BG", 0x104, 4], ["SB_MKFS_TIME", 0x108, 4], ["SB_JNL_BLOCKS", 0x10c, 68],
  ["SB_BLOCKS_COUNT_HI", 0x150, 4], ["SB_R_BLOCKS_COUNT_HI", 0x154, 4], ["SB_FREE_BLOCKS_COUNT_HI", 0x158, 4],
  ["SB_MIN_EXTRA_ISIZE", 0x15c, 2], ["SB_WANT_EXTRA_ISIZE", 0x15e, 2], ["SB_FLAGS", 0x160, 4],
  // The document calls 0x166 s_mmp_interval; the kernel struct says s_mmp_update_interval.
  ["SB_RAID_STRIDE", 0x164, 2], ["SB_MMP_UPDATE_INTERVAL", 0x166, 2], ["SB_MMP_BLOCK", 0x168, 8],
  ["SB_RAID_STRIPE_WIDTH", 0x170, 4], ["SB_LOG_GROUPS_PER_FLEX", 0x174, 1], ["SB_CHECKSUM_TYPE", 0x175, 1],
  // The document shows one __le16 s_reserved_pad at 0x176; the struct has two bytes.
  ["SB_ENCRYPTION_LEVEL", 0x176, 1], ["SB_RESERVED_PAD", 0x177, 1],
  ["SB_KBYTES_WRITTEN", 0x178, 8], ["SB_SNAPSHOT_INUM", 0x180, 4], ["SB_SNAPSHOT_ID", 0x184, 4],
  ["SB_SNAPSHOT_R_BLOCKS_COUNT", 0x188, 8], ["SB_SNAPSHOT_LIST", 0x190, 4], ["SB_ERROR_COUNT", 0x194, 4],
  ["SB_FIRST_ERROR_TIME", 0x198, 4], ["SB_FIRST_ERROR_INO", 0x19c, 4], ["SB_FIRST_ERROR_BLOCK", 0x1a0, 8],
  ["SB_FIRST_ERROR_FUNC", 0x1a8, 32], ["SB_FIRST_ERROR_LINE", 0x1c8, 4], ["SB_LAST_ERROR_TIME", 0x1cc, 4],
  ["SB_LAST_ERROR_INO", 0x1d0, 4], ["SB_LAST_ERROR_LINE", 0x1d4, 4], ["SB_LAST_ERROR_BLOCK", 0x1d8, 8],
  ["SB_LAST_ERROR_FUNC", 0x1e0, 32], ["SB_MOUNT_OPTS", 0x200, 64], ["SB_USR_QUOTA_INUM", 0x240, 4],
  // The document calls 0x248 s_overhead_blocks (clusters with bigalloc); the struct's name is used.
  ["SB_GRP_QUOTA_INUM", 0x244, 4], ["SB_OVERHEAD_CLUSTERS", 0x248, 4], ["SB_BACKUP_BGS", 0x24c, 8],
  ["SB_ENCRYPT_ALGOS", 0x254, 4], ["SB_ENCRYPT_PW_SALT", 0x258, 16], ["SB_LPF_INO", 0x268, 4],
  ["SB_PRJ_QUOTA_INUM", 0x26c, 4], ["SB_CHECKSUM_SEED", 0x270, 4], ["SB_WTIME_HI", 0x274, 1],
  ["SB_MTIME_HI", 0x275, 1], ["SB_MKFS_TIME_HI", 0x276, 1], ["SB_LASTCHECK_HI", 0x277, 1],
  ["SB_FIRST_ERROR_TIME_HI", 0x278, 1], ["SB_LAST_ERROR_TIME_HI", 0x279, 1],
  // The document shows s_pad[2] at 0x27A; the struct names the two bytes.
  ["SB_FIRST_ERROR_ERRCODE", 0x27a, 1], ["SB_LAST_ERROR_ERRCODE", 0x27b, 1],
  ["SB_ENCODING", 0x27c, 2], ["SB_ENCODING_FLAGS", 0x27e, 2], ["SB_ORPHAN_FILE_INUM", 0x280, 4],
  ["SB_RESERVED", 0x284, 94 * 4], ["SB_CHECKSUM", 0x3fc, 4],
];

// group_descr.rst, "struct ext4_group_desc".
const GROUP_DESC: Field[] = [
  ["BG_BLOCK_BITMAP_LO", 0x0, 4], ["BG_INODE_BITMAP_LO", 0x4, 4], ["BG_INODE_TABLE_LO", 0x8, 4],
  ["BG_FREE_BLOCKS_COUNT_LO", 0xc, 2], ["BG_FREE_INODES_COUNT_LO", 0xe, 2], ["BG_USED_DIRS_COUNT_LO", 0x10, 2],
  ["BG_FLAGS", 0x12, 2], ["BG_EXCLUDE_BITMAP_LO", 0x14, 4], ["BG_BLOCK_BITMAP_CSUM_LO", 0x18, 2],
  ["BG_INODE_BITMAP_CSUM_LO", 0x1a, 2], ["BG_ITABLE_UNUSED_LO", 0x1c, 2], ["BG_CHECKSUM", 0x1e, 2],
  ["BG_BLOCK_BITMAP_HI", 0x20, 4], ["BG_INODE_BITMAP_HI", 0x24, 4], ["BG_INODE_TABLE_HI", 0x28, 4],
  ["BG_FREE_BLOCKS_COUNT_HI", 0x2c, 2], ["BG_FREE_INODES_COUNT_HI", 0x2e, 2], ["BG_USED_DIRS_COUNT_HI", 0x30, 2],
  ["BG_ITABLE_UNUSED_HI", 0x32, 2], ["BG_EXCLUDE_BITMAP_HI", 0x34, 4], ["BG_BLOCK_BITMAP_CSUM_HI", 0x38, 2],
  ["BG_INODE_BITMAP_CSUM_HI", 0x3a, 2], ["BG_RESERVED", 0x3c, 4],
];

// inodes.rst, "struct ext4_inode", with the Linux osd1/osd2 tables inlined.
const INODE: Field[] = [
  ["I_MODE", 0x0, 2], ["I_UID", 0x2, 2], ["I_SIZE_LO", 0x4, 4], ["I_ATIME", 0x8, 4], ["I_CTIME", 0xc, 4],
  ["I_MTIME", 0x10, 4], ["I_DTIME", 0x14, 4], ["I_GID", 0x18, 2], ["I_LINKS_COUNT", 0x1a, 2],
  ["I_BLOCKS_LO", 0x1c, 4], ["I_FLAGS", 0x20, 4], ["I_VERSION", 0x24, 4], ["I_BLOCK", 0x28, 60],
  ["I_GENERATION", 0x64, 4], ["I_FILE_ACL_LO", 0x68, 4], ["I_SIZE_HIGH", 0x6c, 4], ["I_OBSO_FADDR", 0x70, 4],
  ["I_BLOCKS_HIGH", 0x74, 2], ["I_FILE_ACL_HIGH", 0x76, 2], ["I_UID_HIGH", 0x78, 2], ["I_GID_HIGH", 0x7a, 2],
  ["I_CHECKSUM_LO", 0x7c, 2], ["I_RESERVED", 0x7e, 2], ["I_EXTRA_ISIZE", 0x80, 2], ["I_CHECKSUM_HI", 0x82, 2],
  ["I_CTIME_EXTRA", 0x84, 4], ["I_MTIME_EXTRA", 0x88, 4], ["I_ATIME_EXTRA", 0x8c, 4], ["I_CRTIME", 0x90, 4],
  ["I_CRTIME_EXTRA", 0x94, 4], ["I_VERSION_HI", 0x98, 4], ["I_PROJID", 0x9c, 4],
];

// ifork.rst: extent header, index, leaf, tail.
const EXTENT_HEADER: Field[] = [["EH_MAGIC", 0, 2], ["EH_ENTRIES", 2, 2], ["EH_MAX", 4, 2], ["EH_DEPTH", 6, 2], ["EH_GENERATION", 8, 4]];
const EXTENT_IDX: Field[] = [["EI_BLOCK", 0, 4], ["EI_LEAF_LO", 4, 4], ["EI_LEAF_HI", 8, 2], ["EI_UNUSED", 0xa, 2]];
const EXTENT_LEAF: Field[] = [["EE_BLOCK", 0, 4], ["EE_LEN", 4, 2], ["EE_START_HI", 6, 2], ["EE_START_LO", 8, 4]];
const EXTENT_TAIL: Field[] = [["ET_CHECKSUM", 0, 4]];

// directory.rst: ext4_dir_entry_2 (name up to EXT4_NAME_LEN) and ext4_dir_entry_tail.
const DIRENT: Field[] = [["DE_INODE", 0, 4], ["DE_REC_LEN", 4, 2], ["DE_NAME_LEN", 6, 1], ["DE_FILE_TYPE", 7, 1], ["DE_NAME", 8, 255]];
const DIRENT_TAIL: Field[] = [
  ["DET_RESERVED_ZERO1", 0, 4], ["DET_REC_LEN", 4, 2], ["DET_RESERVED_ZERO2", 6, 1], ["DET_RESERVED_FT", 7, 1],
  ["DET_CHECKSUM", 8, 4],
];

// directory.rst: dx_root up to entries[1]; the table's limit/count/block are the
// dx_countlimit that overlays entries[0].
const DX_ROOT: Field[] = [
  ["DXR_DOT_INODE", 0x0, 4], ["DXR_DOT_REC_LEN", 0x4, 2], ["DXR_DOT_NAME_LEN", 0x6, 1], ["DXR_DOT_FILE_TYPE", 0x7, 1],
  ["DXR_DOT_NAME", 0x8, 4], ["DXR_DOTDOT_INODE", 0xc, 4], ["DXR_DOTDOT_REC_LEN", 0x10, 2],
  ["DXR_DOTDOT_NAME_LEN", 0x12, 1], ["DXR_DOTDOT_FILE_TYPE", 0x13, 1], ["DXR_DOTDOT_NAME", 0x14, 4],
  ["DXR_INFO_RESERVED_ZERO", 0x18, 4], ["DXR_INFO_HASH_VERSION", 0x1c, 1], ["DXR_INFO_INFO_LENGTH", 0x1d, 1],
  ["DXR_INFO_INDIRECT_LEVELS", 0x1e, 1], ["DXR_INFO_UNUSED_FLAGS", 0x1f, 1], ["DXR_LIMIT", 0x20, 2],
  ["DXR_COUNT", 0x22, 2], ["DXR_BLOCK", 0x24, 4],
];
const DX_ROOT_SIZE_TO_ENTRY1 = 0x28;
// directory.rst: dx_node. The document prints block at 0xE and entries at 0x12, which does
// not tile (count at 0xA ends at 0xC); the struct (fake dirent, then entries[] whose first
// slot is the countlimit) puts block at 0xC and entries[1] at 0x10.
const DX_NODE: Field[] = [
  ["DXN_FAKE_INODE", 0x0, 4], ["DXN_FAKE_REC_LEN", 0x4, 2], ["DXN_FAKE_NAME_LEN", 0x6, 1],
  ["DXN_FAKE_FILE_TYPE", 0x7, 1], ["DXN_LIMIT", 0x8, 2], ["DXN_COUNT", 0xa, 2], ["DXN_BLOCK", 0xc, 4],
];
const DX_NODE_SIZE_TO_ENTRY1 = 0x10;
const DX_ENTRY: Field[] = [["DX_HASH", 0, 4], ["DX_BLOCK", 4, 4]];
const DX_COUNTLIMIT: Field[] = [["DX_LIMIT", 0, 2], ["DX_COUNT", 2, 2]];
const DX_TAIL: Field[] = [["DXT_RESERVED", 0, 4], ["DXT_CHECKSUM", 4, 4]];

// journal.rst: block header, superblock, commit block, tags, revoke header.
const JOURNAL_HEADER: Field[] = [["JH_MAGIC", 0, 4], ["JH_BLOCKTYPE", 4, 4], ["JH_SEQUENCE", 8, 4]];
const JOURNAL_SB: Field[] = [
  ["JSB_HEADER", 0x0, 12], ["JSB_BLOCKSIZE", 0xc, 4], ["JSB_MAXLEN", 0x10, 4], ["JSB_FIRST", 0x14, 4],
  ["JSB_SEQUENCE", 0x18, 4], ["JSB_START", 0x1c, 4], ["JSB_ERRNO", 0x20, 4], ["JSB_FEATURE_COMPAT", 0x24, 4],
  ["JSB_FEATURE_INCOMPAT", 0x28, 4], ["JSB_FEATURE_RO_COMPAT", 0x2c, 4], ["JSB_UUID", 0x30, 16],
  ["JSB_NR_USERS", 0x40, 4], ["JSB_DYNSUPER", 0x44, 4], ["JSB_MAX_TRANSACTION", 0x48, 4],
  ["JSB_MAX_TRANS_DATA", 0x4c, 4], ["JSB_CHECKSUM_TYPE", 0x50, 1], ["JSB_PADDING2", 0x51, 3],
  // The document shows s_padding[42] at 0x54; the kernel since 2023 (and e2fsprogs 1.47)
  // has s_num_fc_blks at 0x54, s_head at 0x58 and s_padding[40] from 0x5C.
  ["JSB_NUM_FC_BLKS", 0x54, 4], ["JSB_HEAD", 0x58, 4], ["JSB_PADDING", 0x5c, 160],
  ["JSB_CHECKSUM", 0xfc, 4], ["JSB_USERS", 0x100, 16 * 48],
];
// The document says "32 bytes long", but its own table ends at 0x3C.
const COMMIT: Field[] = [
  ["JH_MAGIC", 0, 4], ["JH_BLOCKTYPE", 4, 4], ["JH_SEQUENCE", 8, 4], ["JC_CHKSUM_TYPE", 0xc, 1],
  ["JC_CHKSUM_SIZE", 0xd, 1], ["JC_PADDING", 0xe, 2], ["JC_CHKSUM", 0x10, 32], ["JC_COMMIT_SEC", 0x30, 8],
  ["JC_COMMIT_NSEC", 0x38, 4],
];
const TAG3: Field[] = [["JT3_BLOCKNR", 0, 4], ["JT3_FLAGS", 4, 4], ["JT3_BLOCKNR_HIGH", 8, 4], ["JT3_CHECKSUM", 0xc, 4]];
const TAG: Field[] = [["JT_BLOCKNR", 0, 4], ["JT_CHECKSUM", 4, 2], ["JT_FLAGS", 6, 2], ["JT_BLOCKNR_HIGH", 8, 4]];
const REVOKE: Field[] = [["JH_MAGIC", 0, 4], ["JH_BLOCKTYPE", 4, 4], ["JH_SEQUENCE", 8, 4], ["JR_COUNT", 0xc, 4]];
const BLOCK_TAIL: Field[] = [["JBT_CHECKSUM", 0, 4]];

// Values the documents give for constants (flags, magic numbers, enumerations).
const VALUES: [string, number][] = [
  ["SB_SIZE", 1024], ["SB_DISK_OFFSET", 1024], ["BG_DESC_SIZE_32", 32], ["BG_DESC_SIZE_64", 64],
  ["I_GOOD_OLD_SIZE", 128], ["I_BLOCK_SIZE", 60], ["I_LARGE_SIZE", 160],
  ["EH_SIZE", 12], ["EI_SIZE", 12], ["EE_SIZE", 12], ["ET_SIZE", 4], ["EXT4_EXT_MAGIC", 0xf30a],
  ["EXT_INIT_MAX_LEN", 32768], ["EXT_UNWRITTEN_MAX_LEN", 32767],
  ["DE_HEADER_SIZE", 8], ["DET_SIZE", 12], ["DET_RESERVED_FT_VALUE", 0xde],
  ["FT_UNKNOWN", 0], ["FT_REG_FILE", 1], ["FT_DIR", 2], ["FT_CHRDEV", 3], ["FT_BLKDEV", 4], ["FT_FIFO", 5],
  ["FT_SOCK", 6], ["FT_SYMLINK", 7],
  ["DX_ENTRY_SIZE", 8], ["DX_COUNTLIMIT_SIZE", 4], ["DX_ROOT_INFO_SIZE", 8], ["DXT_SIZE", 8],
  ["DX_HASH_LEGACY", 0], ["DX_HASH_HALF_MD4", 1], ["DX_HASH_TEA", 2], ["DX_HASH_LEGACY_UNSIGNED", 3],
  ["DX_HASH_HALF_MD4_UNSIGNED", 4], ["DX_HASH_TEA_UNSIGNED", 5], ["DX_HASH_SIPHASH", 6],
  ["JH_SIZE", 12], ["JSB_SIZE", 1024], ["JT3_SIZE", 16], ["JT_SIZE_32", 8], ["JT_SIZE_64", 12], ["JC_SIZE", 0x3c],
  ["JR_HEADER_SIZE", 16], ["JBT_SIZE", 4],
  ["JBD2_MAGIC_NUMBER", 0xc03b3998], ["JBD2_DESCRIPTOR_BLOCK", 1], ["JBD2_COMMIT_BLOCK", 2],
  ["JBD2_SUPERBLOCK_V1", 3], ["JBD2_SUPERBLOCK_V2", 4], ["JBD2_REVOKE_BLOCK", 5],
  ["JBD2_FEATURE_COMPAT_CHECKSUM", 0x1], ["JBD2_FEATURE_INCOMPAT_REVOKE", 0x1], ["JBD2_FEATURE_INCOMPAT_64BIT", 0x2],
  ["JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT", 0x4], ["JBD2_FEATURE_INCOMPAT_CSUM_V2", 0x8],
  ["JBD2_FEATURE_INCOMPAT_CSUM_V3", 0x10], ["JBD2_FEATURE_INCOMPAT_FAST_COMMIT", 0x20],
  ["JBD2_CRC32_CHKSUM", 1], ["JBD2_MD5_CHKSUM", 2], ["JBD2_SHA1_CHKSUM", 3], ["JBD2_CRC32C_CHKSUM", 4],
  ["JBD2_FLAG_ESCAPE", 1], ["JBD2_FLAG_SAME_UUID", 2], ["JBD2_FLAG_DELETED", 4], ["JBD2_FLAG_LAST_TAG", 8],
  ["FEATURE_COMPAT_DIR_PREALLOC", 0x1], ["FEATURE_COMPAT_IMAGIC_INODES", 0x2], ["FEATURE_COMPAT_HAS_JOURNAL", 0x4],
  ["FEATURE_COMPAT_EXT_ATTR", 0x8], ["FEATURE_COMPAT_RESIZE_INODE", 0x10], ["FEATURE_COMPAT_DIR_INDEX", 0x20],
  ["FEATURE_COMPAT_SPARSE_SUPER2", 0x200], ["FEATURE_COMPAT_FAST_COMMIT", 0x400],
  ["FEATURE_COMPAT_STABLE_INODES", 0x800], ["FEATURE_COMPAT_ORPHAN_FILE", 0x1000],
  ["FEATURE_RO_COMPAT_SPARSE_SUPER", 0x1], ["FEATURE_RO_COMPAT_LARGE_FILE", 0x2], ["FEATURE_RO_COMPAT_BTREE_DIR", 0x4],
  ["FEATURE_RO_COMPAT_HUGE_FILE", 0x8], ["FEATURE_RO_COMPAT_GDT_CSUM", 0x10], ["FEATURE_RO_COMPAT_DIR_NLINK", 0x20],
  ["FEATURE_RO_COMPAT_EXTRA_ISIZE", 0x40], ["FEATURE_RO_COMPAT_QUOTA", 0x100], ["FEATURE_RO_COMPAT_BIGALLOC", 0x200],
  ["FEATURE_RO_COMPAT_METADATA_CSUM", 0x400], ["FEATURE_RO_COMPAT_READONLY", 0x1000],
  ["FEATURE_RO_COMPAT_PROJECT", 0x2000], ["FEATURE_RO_COMPAT_VERITY", 0x8000],
  ["FEATURE_RO_COMPAT_ORPHAN_PRESENT", 0x10000],
  ["FEATURE_INCOMPAT_COMPRESSION", 0x1], ["FEATURE_INCOMPAT_FILETYPE", 0x2], ["FEATURE_INCOMPAT_RECOVER", 0x4],
  ["FEATURE_INCOMPAT_JOURNAL_DEV", 0x8], ["FEATURE_INCOMPAT_META_BG", 0x10], ["FEATURE_INCOMPAT_EXTENTS", 0x40],
  ["FEATURE_INCOMPAT_64BIT", 0x80], ["FEATURE_INCOMPAT_MMP", 0x100], ["FEATURE_INCOMPAT_FLEX_BG", 0x200],
  ["FEATURE_INCOMPAT_EA_INODE", 0x400], ["FEATURE_INCOMPAT_DIRDATA", 0x1000], ["FEATURE_INCOMPAT_CSUM_SEED", 0x2000],
  ["FEATURE_INCOMPAT_LARGEDIR", 0x4000], ["FEATURE_INCOMPAT_INLINE_DATA", 0x8000],
  ["FEATURE_INCOMPAT_ENCRYPT", 0x10000], ["FEATURE_INCOMPAT_CASEFOLD", 0x20000],
  ["BG_INODE_UNINIT", 1], ["BG_BLOCK_UNINIT", 2], ["BG_INODE_ZEROED", 4],
  ["INODE_FL_SECRM", 0x1], ["INODE_FL_UNRM", 0x2], ["INODE_FL_COMPR", 0x4], ["INODE_FL_SYNC", 0x8],
  ["INODE_FL_IMMUTABLE", 0x10], ["INODE_FL_APPEND", 0x20], ["INODE_FL_NODUMP", 0x40], ["INODE_FL_NOATIME", 0x80],
  ["INODE_FL_DIRTY", 0x100], ["INODE_FL_COMPRBLK", 0x200], ["INODE_FL_NOCOMPR", 0x400], ["INODE_FL_ENCRYPT", 0x800],
  ["INODE_FL_INDEX", 0x1000], ["INODE_FL_IMAGIC", 0x2000], ["INODE_FL_JOURNAL_DATA", 0x4000],
  ["INODE_FL_NOTAIL", 0x8000], ["INODE_FL_DIRSYNC", 0x10000], ["INODE_FL_TOPDIR", 0x20000],
  ["INODE_FL_HUGE_FILE", 0x40000], ["INODE_FL_EXTENTS", 0x80000], ["INODE_FL_EA_INODE", 0x200000],
  ["INODE_FL_INLINE_DATA", 0x10000000], ["INODE_FL_PROJINHERIT", 0x20000000], ["INODE_FL_CASEFOLD", 0x40000000],
  ["INODE_FL_RESERVED", 0x80000000],
  ["EXT4_SUPER_MAGIC", 0xef53], ["STATE_VALID_FS", 1], ["STATE_ERROR_FS", 2], ["STATE_ORPHAN_FS", 4],
  ["ERRORS_CONTINUE", 1], ["ERRORS_RO", 2], ["ERRORS_PANIC", 3], ["OS_LINUX", 0], ["OS_HURD", 1],
  ["OS_FREEBSD", 3], ["REV_GOOD_OLD", 0], ["REV_DYNAMIC", 1], ["CHECKSUM_TYPE_CRC32C", 1],
  ["BAD_INO", 1], ["ROOT_INO", 2], ["RESIZE_INO", 7], ["JOURNAL_INO", 8], ["GOOD_OLD_FIRST_INO", 11],
  ["LOST_FOUND_INO", 11], ["MIN_BLOCK_LOG_SIZE", 10],
  ["S_IFMT", 0xf000], ["S_IFSOCK", 0xc000], ["S_IFLNK", 0xa000], ["S_IFREG", 0x8000], ["S_IFBLK", 0x6000],
  ["S_IFDIR", 0x4000], ["S_IFCHR", 0x2000], ["S_IFIFO", 0x1000],
  ["FLAGS_SIGNED_HASH", 1], ["FLAGS_UNSIGNED_HASH", 2], ["DEFM_XATTR_USER", 4], ["DEFM_ACL", 8],
];

let e: Engine;
const C = (name: string): number => e.constant(name) >>> 0;

beforeAll(async () => {
  e = await Engine.create();
});

/** Offsets match the table and the fields tile [start, end) with no gap or overlap. */
function checkTable(fields: Field[], end: number, start = 0): void {
  for (const [name, off] of fields) expect(C(name), name).toBe(off);
  const sorted = [...fields].sort((a, b) => a[1] - b[1]);
  let at = start;
  for (const [name, off, size] of sorted) {
    expect(off, `${name} starts where the previous field ends`).toBe(at);
    at = off + size;
  }
  expect(at, "fields end at the structure size").toBe(end);
}

describe("on-disk constants match the kernel documentation", () => {
  it("superblock", () => {
    checkTable(SUPERBLOCK, C("SB_SIZE"));
    expect(C("SB_SIZE")).toBe(1024);
  });
  it("group descriptor (32-byte prefix and 64-byte form)", () => {
    checkTable(GROUP_DESC.filter(([, o]) => o < 32), C("BG_DESC_SIZE_32"));
    checkTable(GROUP_DESC, C("BG_DESC_SIZE_64"));
    expect(C("BG_BLOCK_BITMAP_CSUM_HI_END")).toBe(0x38 + 2);
    expect(C("BG_INODE_BITMAP_CSUM_HI_END")).toBe(0x3a + 2);
  });
  it("inode (128-byte ext2 part and the extra fields)", () => {
    checkTable(INODE.filter(([, o]) => o < 128), C("I_GOOD_OLD_SIZE"));
    checkTable(INODE, C("I_LARGE_SIZE"));
    expect(C("I_BLOCK_SIZE")).toBe(60);
    expect(C("I_OSD1")).toBe(0x24);
    expect(C("I_OSD2")).toBe(0x74);
    expect(C("I_CSUM_HI_EXTRA_END")).toBe(0x82 + 2 - 0x80);
  });
  it("extent tree", () => {
    checkTable(EXTENT_HEADER, C("EH_SIZE"));
    checkTable(EXTENT_IDX, C("EI_SIZE"));
    checkTable(EXTENT_LEAF, C("EE_SIZE"));
    checkTable(EXTENT_TAIL, C("ET_SIZE"));
    // The root in i_block: header + 4 entries fill the 60 bytes exactly.
    expect(C("EH_SIZE") + C("EXT_ROOT_MAX_ENTRIES") * C("EE_SIZE")).toBe(C("I_BLOCK_SIZE"));
  });
  it("directory entries and the checksum tail", () => {
    checkTable(DIRENT, 263);
    expect(C("DE_NAME")).toBe(C("DE_HEADER_SIZE"));
    expect(C("DE_NAME_MAX")).toBe(255);
    checkTable(DIRENT_TAIL, C("DET_SIZE"));
  });
  it("htree root, node, entry, countlimit, tail", () => {
    checkTable(DX_ROOT, DX_ROOT_SIZE_TO_ENTRY1);
    checkTable(DX_ROOT.filter(([n]) => n.startsWith("DXR_INFO_")), 0x20, 0x18);
    expect(C("DXR_INFO")).toBe(0x18);
    expect(C("DXR_ENTRIES") + C("DX_ENTRY_SIZE")).toBe(DX_ROOT_SIZE_TO_ENTRY1);
    expect(C("DXR_ENTRIES") + C("DX_LIMIT")).toBe(C("DXR_LIMIT"));
    expect(C("DXR_ENTRIES") + C("DX_COUNT")).toBe(C("DXR_COUNT"));
    expect(C("DXR_ENTRIES") + C("DX_BLOCK")).toBe(C("DXR_BLOCK"));
    checkTable(DX_NODE, DX_NODE_SIZE_TO_ENTRY1);
    expect(C("DXN_ENTRIES") + C("DX_ENTRY_SIZE")).toBe(DX_NODE_SIZE_TO_ENTRY1);
    expect(C("DXN_ENTRIES") + C("DX_BLOCK")).toBe(C("DXN_BLOCK"));
    checkTable(DX_ENTRY, C("DX_ENTRY_SIZE"));
    checkTable(DX_COUNTLIMIT, C("DX_COUNTLIMIT_SIZE"));
    checkTable(DX_TAIL, C("DXT_SIZE"));
  });
  it("journal", () => {
    checkTable(JOURNAL_HEADER, C("JH_SIZE"));
    checkTable(JOURNAL_SB, C("JSB_SIZE"));
    checkTable(COMMIT, C("JC_SIZE"));
    checkTable(TAG3, C("JT3_SIZE"));
    checkTable(TAG, C("JT_SIZE_64"));
    checkTable(TAG.filter(([, o]) => o < 8), C("JT_SIZE_32"));
    checkTable(REVOKE, C("JR_HEADER_SIZE"));
    checkTable(BLOCK_TAIL, C("JBT_SIZE"));
  });
  it("flags, magic numbers and enumerations", () => {
    for (const [name, v] of VALUES) expect(C(name), name).toBe(v >>> 0);
  });
});

// ── Cross-check against images made by e2fsprogs ─────────────────────────────────────

const le16 = (b: Buffer, o: number) => b.readUInt16LE(o);
const le32 = (b: Buffer, o: number) => b.readUInt32LE(o);
const be32 = (b: Buffer, o: number) => b.readUInt32BE(o);
const lohi = (lo: number, hi: number) => lo + hi * 2 ** 32;
const cstr = (b: Buffer) => b.toString("latin1").replace(/\0.*$/s, "");

// dumpe2fs feature names (lib/e2p/feature.c) → our constants.
const FEATURE_NAMES: Record<string, [word: string, constant: string]> = {
  dir_prealloc: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_DIR_PREALLOC"],
  has_journal: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_HAS_JOURNAL"],
  ext_attr: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_EXT_ATTR"],
  resize_inode: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_RESIZE_INODE"],
  dir_index: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_DIR_INDEX"],
  sparse_super2: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_SPARSE_SUPER2"],
  fast_commit: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_FAST_COMMIT"],
  stable_inodes: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_STABLE_INODES"],
  orphan_file: ["SB_FEATURE_COMPAT", "FEATURE_COMPAT_ORPHAN_FILE"],
  sparse_super: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_SPARSE_SUPER"],
  large_file: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_LARGE_FILE"],
  huge_file: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_HUGE_FILE"],
  uninit_bg: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_GDT_CSUM"],
  dir_nlink: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_DIR_NLINK"],
  extra_isize: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_EXTRA_ISIZE"],
  quota: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_QUOTA"],
  bigalloc: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_BIGALLOC"],
  metadata_csum: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_METADATA_CSUM"],
  project: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_PROJECT"],
  orphan_present: ["SB_FEATURE_RO_COMPAT", "FEATURE_RO_COMPAT_ORPHAN_PRESENT"],
  filetype: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_FILETYPE"],
  needs_recovery: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_RECOVER"],
  meta_bg: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_META_BG"],
  extent: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_EXTENTS"],
  "64bit": ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_64BIT"],
  mmp: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_MMP"],
  flex_bg: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_FLEX_BG"],
  ea_inode: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_EA_INODE"],
  metadata_csum_seed: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_CSUM_SEED"],
  large_dir: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_LARGEDIR"],
  inline_data: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_INLINE_DATA"],
  encrypt: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_ENCRYPT"],
  casefold: ["SB_FEATURE_INCOMPAT", "FEATURE_INCOMPAT_CASEFOLD"],
};
const JOURNAL_FEATURE_NAMES: Record<string, string> = {
  journal_incompat_revoke: "JBD2_FEATURE_INCOMPAT_REVOKE",
  journal_64bit: "JBD2_FEATURE_INCOMPAT_64BIT",
  journal_async_commit: "JBD2_FEATURE_INCOMPAT_ASYNC_COMMIT",
  journal_checksum_v2: "JBD2_FEATURE_INCOMPAT_CSUM_V2",
  journal_checksum_v3: "JBD2_FEATURE_INCOMPAT_CSUM_V3",
  journal_fast_commit: "JBD2_FEATURE_INCOMPAT_FAST_COMMIT",
};

interface Image {
  path: string;
  bytes: Buffer;
  blockSize: number;
  sb: Buffer;
  header: Map<string, string>;
  dump: string;
}

function loadImage(path: string): Image {
  const bytes = readImage(path);
  const sb = bytes.subarray(C("SB_DISK_OFFSET"), C("SB_DISK_OFFSET") + C("SB_SIZE"));
  const blockSize = 1024 << le32(sb, C("SB_LOG_BLOCK_SIZE"));
  const dump = tool("dumpe2fs", [path]);
  return { path, bytes, blockSize, sb, header: parseColonLines(tool("dumpe2fs", ["-h", path])), dump };
}

function block(img: Image, n: number): Buffer {
  return img.bytes.subarray(n * img.blockSize, (n + 1) * img.blockSize);
}

function inodeBytes(img: Image, ino: number): Buffer {
  const ipg = le32(img.sb, C("SB_INODES_PER_GROUP"));
  const isz = le16(img.sb, C("SB_INODE_SIZE"));
  const g = Math.floor((ino - 1) / ipg);
  const desc = descBytes(img, g);
  const table = lohi(le32(desc, C("BG_INODE_TABLE_LO")), desc.length >= 64 ? le32(desc, C("BG_INODE_TABLE_HI")) : 0);
  const off = table * img.blockSize + ((ino - 1) % ipg) * isz;
  return img.bytes.subarray(off, off + isz);
}

function descSize(img: Image): number {
  const bit64 = (le32(img.sb, C("SB_FEATURE_INCOMPAT")) & C("FEATURE_INCOMPAT_64BIT")) !== 0;
  return bit64 ? le16(img.sb, C("SB_DESC_SIZE")) : 32;
}

function descBytes(img: Image, g: number): Buffer {
  const firstData = le32(img.sb, C("SB_FIRST_DATA_BLOCK"));
  const ds = descSize(img);
  const off = (firstData + 1) * img.blockSize + g * ds;
  return img.bytes.subarray(off, off + ds);
}

/** Every field dumpe2fs -h prints that maps to one superblock field. */
function checkSuperblock(img: Image): void {
  const h = img.header;
  const sb = img.sb;
  const num = (k: string) => Number(h.get(k)!.split(/\s/)[0]);
  expect(le32(sb, C("SB_INODES_COUNT"))).toBe(num("Inode count"));
  expect(lohi(le32(sb, C("SB_BLOCKS_COUNT_LO")), le32(sb, C("SB_BLOCKS_COUNT_HI")))).toBe(num("Block count"));
  expect(lohi(le32(sb, C("SB_R_BLOCKS_COUNT_LO")), le32(sb, C("SB_R_BLOCKS_COUNT_HI")))).toBe(num("Reserved block count"));
  expect(lohi(le32(sb, C("SB_FREE_BLOCKS_COUNT_LO")), le32(sb, C("SB_FREE_BLOCKS_COUNT_HI")))).toBe(num("Free blocks"));
  expect(le32(sb, C("SB_FREE_INODES_COUNT"))).toBe(num("Free inodes"));
  expect(le32(sb, C("SB_FIRST_DATA_BLOCK"))).toBe(num("First block"));
  expect(1024 << le32(sb, C("SB_LOG_BLOCK_SIZE"))).toBe(num("Block size"));
  expect(1024 << le32(sb, C("SB_LOG_CLUSTER_SIZE"))).toBe(num("Fragment size"));
  expect(le32(sb, C("SB_BLOCKS_PER_GROUP"))).toBe(num("Blocks per group"));
  expect(le32(sb, C("SB_CLUSTERS_PER_GROUP"))).toBe(num("Fragments per group"));
  expect(le32(sb, C("SB_INODES_PER_GROUP"))).toBe(num("Inodes per group"));
  expect(le16(sb, C("SB_MAGIC"))).toBe(Number(h.get("Filesystem magic number")));
  expect(le16(sb, C("SB_MAGIC"))).toBe(C("EXT4_SUPER_MAGIC"));
  expect(le32(sb, C("SB_REV_LEVEL"))).toBe(num("Filesystem revision #"));
  expect(le16(sb, C("SB_MNT_COUNT"))).toBe(num("Mount count"));
  expect(sb.readInt16LE(C("SB_MAX_MNT_COUNT"))).toBe(num("Maximum mount count"));
  expect(le32(sb, C("SB_CHECKINTERVAL"))).toBe(num("Check interval"));
  expect(le16(sb, C("SB_DEF_RESUID"))).toBe(num("Reserved blocks uid"));
  expect(le16(sb, C("SB_DEF_RESGID"))).toBe(num("Reserved blocks gid"));
  expect(le32(sb, C("SB_FIRST_INO"))).toBe(num("First inode"));
  expect(le16(sb, C("SB_INODE_SIZE"))).toBe(num("Inode size"));
  expect(le16(sb, C("SB_RESERVED_GDT_BLOCKS"))).toBe(num("Reserved GDT blocks"));
  expect(le32(sb, C("SB_JOURNAL_INUM"))).toBe(num("Journal inode"));
  expect(le32(sb, C("SB_OVERHEAD_CLUSTERS"))).toBe(num("Overhead clusters"));
  expect(1 << sb[C("SB_LOG_GROUPS_PER_FLEX")]).toBe(num("Flex block group size"));
  if (h.has("Group descriptor size")) expect(le16(sb, C("SB_DESC_SIZE"))).toBe(num("Group descriptor size"));
  if (h.has("Required extra isize")) {
    expect(le16(sb, C("SB_MIN_EXTRA_ISIZE"))).toBe(num("Required extra isize"));
    expect(le16(sb, C("SB_WANT_EXTRA_ISIZE"))).toBe(num("Desired extra isize"));
  }
  const kb = Number(sb.readBigUInt64LE(C("SB_KBYTES_WRITTEN")));
  const lifetime = h.get("Lifetime writes")!;
  if (lifetime.endsWith("kB")) expect(kb).toBe(num("Lifetime writes"));
  expect([...sb.subarray(C("SB_UUID"), C("SB_UUID") + 16)]).toEqual([...uuidBytes(h.get("Filesystem UUID")!)]);
  expect([...sb.subarray(C("SB_HASH_SEED"), C("SB_HASH_SEED") + 16)]).toEqual([...uuidBytes(h.get("Directory Hash Seed")!)]);
  const label = h.get("Filesystem volume name")!;
  expect(cstr(sb.subarray(C("SB_VOLUME_NAME"), C("SB_VOLUME_NAME") + 16))).toBe(label === "<none>" ? "" : label);
  expect(cstr(sb.subarray(C("SB_LAST_MOUNTED"), C("SB_LAST_MOUNTED") + 64))).toBe("");
  expect(h.get("Last mounted on")).toBe("<not available>");
  expect(h.get("Default directory hash")).toBe("half_md4");
  expect(sb[C("SB_DEF_HASH_VERSION")]).toBe(C("DX_HASH_HALF_MD4"));
  expect(h.get("Filesystem state")).toBe("clean");
  expect(le16(sb, C("SB_STATE"))).toBe(C("STATE_VALID_FS"));
  expect(h.get("Errors behavior")).toBe("Continue");
  expect(le16(sb, C("SB_ERRORS"))).toBe(C("ERRORS_CONTINUE"));
  expect(h.get("Filesystem OS type")).toBe("Linux");
  expect(le32(sb, C("SB_CREATOR_OS"))).toBe(C("OS_LINUX"));
  expect(h.get("Filesystem flags")).toContain("signed_directory_hash");
  expect(le32(sb, C("SB_FLAGS")) & C("FLAGS_SIGNED_HASH")).toBe(C("FLAGS_SIGNED_HASH"));
  expect(h.get("Default mount options")).toBe("user_xattr acl");
  expect(le32(sb, C("SB_DEFAULT_MOUNT_OPTS"))).toBe(C("DEFM_XATTR_USER") | C("DEFM_ACL"));
  // Feature words: exactly the named bits, no others.
  const words: Record<string, number> = { SB_FEATURE_COMPAT: 0, SB_FEATURE_RO_COMPAT: 0, SB_FEATURE_INCOMPAT: 0 };
  for (const name of h.get("Filesystem features")!.split(/\s+/)) {
    const f = FEATURE_NAMES[name];
    expect(f, `known feature ${name}`).toBeDefined();
    words[f[0]] |= C(f[1]);
  }
  for (const [w, v] of Object.entries(words)) expect(le32(sb, C(w)), w).toBe(v >>> 0);
  if (h.has("Checksum")) {
    expect(h.get("Checksum type")).toBe("crc32c");
    expect(sb[C("SB_CHECKSUM_TYPE")]).toBe(C("CHECKSUM_TYPE_CRC32C"));
    expect(le32(sb, C("SB_CHECKSUM"))).toBe(Number(h.get("Checksum")));
  }
  if (h.has("Checksum seed")) expect(le32(sb, C("SB_CHECKSUM_SEED"))).toBe(Number(h.get("Checksum seed")));
}

function checkGroups(img: Image): void {
  const groups = parseGroups(img.dump);
  const ds = descSize(img);
  expect(groups.length).toBe(Math.ceil(
    (lohi(le32(img.sb, C("SB_BLOCKS_COUNT_LO")), 0) - le32(img.sb, C("SB_FIRST_DATA_BLOCK"))) /
      le32(img.sb, C("SB_BLOCKS_PER_GROUP")),
  ));
  for (const g of groups) {
    const d = descBytes(img, g.group);
    const wide = (lo: string, hi: string, bytes: 2 | 4) => {
      const r = bytes === 2 ? le16 : le32;
      return ds >= 64 ? lohi(r(d, C(lo)), 0) + r(d, C(hi)) * (bytes === 2 ? 65536 : 2 ** 32) : r(d, C(lo));
    };
    expect(wide("BG_BLOCK_BITMAP_LO", "BG_BLOCK_BITMAP_HI", 4)).toBe(g.blockBitmap);
    expect(wide("BG_INODE_BITMAP_LO", "BG_INODE_BITMAP_HI", 4)).toBe(g.inodeBitmap);
    expect(wide("BG_INODE_TABLE_LO", "BG_INODE_TABLE_HI", 4)).toBe(g.inodeTable);
    expect(wide("BG_FREE_BLOCKS_COUNT_LO", "BG_FREE_BLOCKS_COUNT_HI", 2)).toBe(g.freeBlocks);
    expect(wide("BG_FREE_INODES_COUNT_LO", "BG_FREE_INODES_COUNT_HI", 2)).toBe(g.freeInodes);
    expect(wide("BG_USED_DIRS_COUNT_LO", "BG_USED_DIRS_COUNT_HI", 2)).toBe(g.dirs);
    if (g.unusedInodes !== undefined) expect(wide("BG_ITABLE_UNUSED_LO", "BG_ITABLE_UNUSED_HI", 2)).toBe(g.unusedInodes);
    if (g.csum !== undefined) expect(le16(d, C("BG_CHECKSUM"))).toBe(g.csum);
    const flags = le16(d, C("BG_FLAGS"));
    expect((flags & C("BG_INODE_UNINIT")) !== 0).toBe(g.flags.includes("INODE_UNINIT"));
    expect((flags & C("BG_BLOCK_UNINIT")) !== 0).toBe(g.flags.includes("BLOCK_UNINIT"));
    expect((flags & C("BG_INODE_ZEROED")) !== 0).toBe(g.flags.includes("ITABLE_ZEROED"));
    if (g.blockBitmapCsum !== undefined) {
      expect(wide("BG_BLOCK_BITMAP_CSUM_LO", "BG_BLOCK_BITMAP_CSUM_HI", 2)).toBe(g.blockBitmapCsum);
      expect(wide("BG_INODE_BITMAP_CSUM_LO", "BG_INODE_BITMAP_CSUM_HI", 2)).toBe(g.inodeBitmapCsum);
    }
  }
}

/** Inode fields against `debugfs stat`. */
function checkInode(img: Image, ino: number): void {
  const text = debugfs(img.path, `stat <${ino}>`);
  const ib = inodeBytes(img, ino);
  const m = (re: RegExp) => {
    const r = re.exec(text);
    expect(r, `${re} in stat <${ino}>`).not.toBeNull();
    return r!;
  };
  expect(le16(ib, C("I_MODE")) & 0o7777).toBe(parseInt(m(/Mode:\s+(\d+)/)[1], 8));
  const type = m(/Type: (\w+)/)[1];
  const fmt = le16(ib, C("I_MODE")) & C("S_IFMT");
  expect(fmt).toBe(C({ regular: "S_IFREG", directory: "S_IFDIR", symlink: "S_IFLNK" }[type]!));
  expect(le32(ib, C("I_FLAGS"))).toBe(parseInt(m(/Flags: 0x([0-9a-f]+)/)[1], 16));
  expect(le32(ib, C("I_GENERATION"))).toBe(Number(m(/Generation: (\d+)/)[1]));
  // Large inodes print "Version: 0x<i_version_hi>:<l_i_version>", small ones only the latter.
  const ver = m(/Version: 0x([0-9a-f]+)(?::([0-9a-f]+))?/);
  if (ver[2] !== undefined) {
    expect(le32(ib, C("I_VERSION_HI"))).toBe(parseInt(ver[1], 16));
    expect(le32(ib, C("I_VERSION"))).toBe(parseInt(ver[2], 16));
  } else {
    expect(le32(ib, C("I_VERSION"))).toBe(parseInt(ver[1], 16));
  }
  expect(le16(ib, C("I_UID")) + le16(ib, C("I_UID_HIGH")) * 65536).toBe(Number(m(/User:\s+(\d+)/)[1]));
  expect(le16(ib, C("I_GID")) + le16(ib, C("I_GID_HIGH")) * 65536).toBe(Number(m(/Group:\s+(\d+)/)[1]));
  expect(lohi(le32(ib, C("I_SIZE_LO")), le32(ib, C("I_SIZE_HIGH")))).toBe(Number(m(/Size: (\d+)/)[1]));
  expect(le16(ib, C("I_LINKS_COUNT"))).toBe(Number(m(/Links: (\d+)/)[1]));
  expect(lohi(le32(ib, C("I_BLOCKS_LO")), le16(ib, C("I_BLOCKS_HIGH")))).toBe(Number(m(/Blockcount: (\d+)/)[1]));
  expect(lohi(le32(ib, C("I_FILE_ACL_LO")), le16(ib, C("I_FILE_ACL_HIGH")))).toBe(Number(m(/File ACL: (\d+)/)[1]));
  for (const [label, sec, extra] of [
    ["ctime", "I_CTIME", "I_CTIME_EXTRA"], ["atime", "I_ATIME", "I_ATIME_EXTRA"],
    ["mtime", "I_MTIME", "I_MTIME_EXTRA"], ["crtime", "I_CRTIME", "I_CRTIME_EXTRA"],
  ]) {
    const r = new RegExp(`${label}: 0x([0-9a-f]+):([0-9a-f]+)`).exec(text);
    if (!r) continue;
    expect(le32(ib, C(sec)), label).toBe(parseInt(r[1], 16));
    expect(le32(ib, C(extra)), `${label} extra`).toBe(parseInt(r[2], 16));
  }
  const isz = le16(img.sb, C("SB_INODE_SIZE"));
  if (isz > 128) {
    expect(le16(ib, C("I_EXTRA_ISIZE"))).toBe(Number(m(/Size of extra inode fields: (\d+)/)[1]));
    expect(le32(ib, C("I_PROJID"))).toBe(Number(m(/Project:\s+(\d+)/)[1]));
  }
  const csum = /Inode checksum: 0x([0-9a-f]+)/.exec(text);
  if (csum) {
    const hasHi = isz > 128 && le16(ib, C("I_EXTRA_ISIZE")) >= C("I_CSUM_HI_EXTRA_END");
    const stored = le16(ib, C("I_CHECKSUM_LO")) + (hasHi ? le16(ib, C("I_CHECKSUM_HI")) * 65536 : 0);
    expect(stored).toBe(parseInt(csum[1], 16));
  }
  const fast = /Fast link dest: "([^"]*)"/.exec(text);
  if (fast) expect(cstr(ib.subarray(C("I_BLOCK"), C("I_BLOCK") + C("I_BLOCK_SIZE")))).toBe(fast[1]);
}

/** Walks an extent tree with our offsets; compares with `debugfs ex` line by line. */
function checkExtents(img: Image, path: string): void {
  const lines = debugfs(img.path, `ex ${path}`).split("\n").slice(1).filter((l) => l.trim());
  const rows = lines.map((l) => {
    const r = /^\s*(\d+)\/\s*(\d+)\s+(\d+)\/\s*(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)(?:\s+-\s+(\d+))?\s+(\d+)\s*(\S*)/.exec(l)!;
    return { level: +r[1], max: +r[2], entry: +r[3], entries: +r[4], lstart: +r[5], lend: +r[6], pblk: +r[7], len: +r[9], flags: r[10] };
  });
  const ino = Number(/Inode: (\d+)/.exec(debugfs(img.path, `stat ${path}`))![1]);
  const ours: typeof rows = [];
  const walk = (node: Buffer, level: number, maxLevel: number) => {
    expect(le16(node, C("EH_MAGIC"))).toBe(C("EXT4_EXT_MAGIC"));
    const n = le16(node, C("EH_ENTRIES"));
    const depth = le16(node, C("EH_DEPTH"));
    expect(depth).toBe(maxLevel - level);
    for (let i = 0; i < n; i++) {
      const ent = node.subarray(C("EH_SIZE") + i * C("EE_SIZE"));
      if (depth > 0) {
        const child = lohi(le32(ent, C("EI_LEAF_LO")), le16(ent, C("EI_LEAF_HI")));
        const row = rows[ours.length];
        ours.push({ ...row, level, entry: i + 1, entries: n, lstart: le32(ent, C("EI_BLOCK")), pblk: child });
        walk(block(img, child), level + 1, maxLevel);
      } else {
        const raw = le16(ent, C("EE_LEN"));
        const len = raw > C("EXT_INIT_MAX_LEN") ? raw - C("EXT_INIT_MAX_LEN") : raw;
        const row = rows[ours.length];
        ours.push({
          ...row, level, entry: i + 1, entries: n, lstart: le32(ent, C("EE_BLOCK")),
          pblk: lohi(le32(ent, C("EE_START_LO")), le16(ent, C("EE_START_HI"))), len,
        });
      }
    }
  };
  const root = inodeBytes(img, ino).subarray(C("I_BLOCK"), C("I_BLOCK") + C("I_BLOCK_SIZE"));
  const maxLevel = le16(root, C("EH_DEPTH"));
  expect(le16(root, C("EH_MAX"))).toBe(4);
  walk(Buffer.from(root), 0, maxLevel);
  expect(ours.length).toBe(rows.length);
  expect(ours.map((r) => [r.level, r.entry, r.entries, r.lstart, r.pblk, r.len])).toEqual(
    rows.map((r) => [r.level, r.entry, r.entries, r.lstart, r.pblk, r.len]),
  );
}

/** Parses a directory's first block with our offsets; compares with `debugfs ls`. */
function checkDirBlock(img: Image, path: string, hasTail: boolean): void {
  const ls = debugfs(img.path, `ls ${path}`);
  const expected = [...ls.matchAll(/(\d+)\s+\((\d+)\)\s+(\S+)/g)].map((r) => [+r[1], +r[2], r[3]]);
  const types = new Map(
    [...debugfs(img.path, `ls -l ${path}`).matchAll(/^\s*\d+\s+\d+\s+\((\d+)\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(\S+)\s*$/gm)]
      .map((r) => [r[2], +r[1]]),
  );
  const blk = Number(debugfs(img.path, `bmap ${path} 0`).trim());
  const b = block(img, blk);
  const got: [number, number, string][] = [];
  let off = 0;
  const end = hasTail ? img.blockSize - C("DET_SIZE") : img.blockSize;
  while (off < end) {
    const recLen = le16(b, off + C("DE_REC_LEN"));
    const nameLen = b[off + C("DE_NAME_LEN")];
    const name = b.toString("latin1", off + C("DE_NAME"), off + C("DE_NAME") + nameLen);
    got.push([le32(b, off + C("DE_INODE")), recLen, name]);
    expect(b[off + C("DE_FILE_TYPE")], name).toBe(types.get(name));
    off += recLen;
  }
  expect(off).toBe(end);
  expect(got).toEqual(expected);
  if (hasTail) {
    const t = b.subarray(end);
    expect(le32(t, C("DET_RESERVED_ZERO1"))).toBe(0);
    expect(le16(t, C("DET_REC_LEN"))).toBe(C("DET_SIZE"));
    expect(t[C("DET_RESERVED_ZERO2")]).toBe(0);
    expect(t[C("DET_RESERVED_FT")]).toBe(C("DET_RESERVED_FT_VALUE"));
  }
}

/** Parses the htree root and first interior node with our offsets; compares with `debugfs htree`. */
function checkHtree(img: Image, path: string, dirIno: number, parentIno: number): void {
  const text = debugfs(img.path, `htree ${path}`);
  const root = block(img, Number(debugfs(img.path, `bmap ${path} 0`).trim()));
  expect(le32(root, C("DXR_DOT_INODE"))).toBe(dirIno);
  expect(le16(root, C("DXR_DOT_REC_LEN"))).toBe(12);
  expect(root[C("DXR_DOT_NAME_LEN")]).toBe(1);
  expect(root[C("DXR_DOT_FILE_TYPE")]).toBe(C("FT_DIR"));
  expect(root.toString("latin1", C("DXR_DOT_NAME"), C("DXR_DOT_NAME") + 1)).toBe(".");
  expect(le32(root, C("DXR_DOTDOT_INODE"))).toBe(parentIno);
  expect(le16(root, C("DXR_DOTDOT_REC_LEN"))).toBe(img.blockSize - 12);
  expect(root[C("DXR_DOTDOT_NAME_LEN")]).toBe(2);
  expect(root[C("DXR_DOTDOT_FILE_TYPE")]).toBe(C("FT_DIR"));
  expect(root.toString("latin1", C("DXR_DOTDOT_NAME"), C("DXR_DOTDOT_NAME") + 2)).toBe("..");
  const num = (re: RegExp, from = 0) => Number(re.exec(text.slice(from))![1]);
  expect(le32(root, C("DXR_INFO_RESERVED_ZERO"))).toBe(num(/Reserved zero: (\d+)/));
  expect(root[C("DXR_INFO_HASH_VERSION")]).toBe(num(/Hash Version: (\d+)/));
  expect(root[C("DXR_INFO_INFO_LENGTH")]).toBe(num(/Info length: (\d+)/));
  expect(root[C("DXR_INFO_INDIRECT_LEVELS")]).toBe(num(/Indirect levels: (\d+)/));
  expect(root[C("DXR_INFO_UNUSED_FLAGS")]).toBe(num(/Flags: (\d+)/));
  const count = le16(root, C("DXR_COUNT"));
  const limit = le16(root, C("DXR_LIMIT"));
  expect(count).toBe(num(/Number of entries \(count\): (\d+)/));
  expect(limit).toBe(num(/Number of entries \(limit\): (\d+)/));
  expect(le32(root, C("DXR_BLOCK"))).toBe(num(/Entry #0: Hash 0x[0-9a-f]+, block (\d+)/));
  const rootEntries = [...text.matchAll(/Entry #(\d+): Hash 0x([0-9a-f]+), block (\d+)/g)].slice(0, count);
  for (const r of rootEntries.slice(1)) {
    const e0 = C("DXR_ENTRIES") + Number(r[1]) * C("DX_ENTRY_SIZE");
    expect(le32(root, e0 + C("DX_HASH"))).toBe(parseInt(r[2], 16));
    expect(le32(root, e0 + C("DX_BLOCK"))).toBe(Number(r[3]));
  }
  const tailOff = C("DXR_ENTRIES") + limit * C("DX_ENTRY_SIZE");
  expect(le32(root, tailOff + C("DXT_RESERVED"))).toBe(0);
  expect(le32(root, tailOff + C("DXT_CHECKSUM"))).toBe(parseInt(/Checksum: 0x([0-9a-f]+)/.exec(text)![1], 16));
  // First interior node (indirect_levels = 1): logical block of root entry 0.
  expect(root[C("DXR_INFO_INDIRECT_LEVELS")]).toBe(1);
  const nodeLblk = le32(root, C("DXR_BLOCK"));
  const node = block(img, Number(debugfs(img.path, `bmap ${path} ${nodeLblk}`).trim()));
  expect(le32(node, C("DXN_FAKE_INODE"))).toBe(0);
  expect(le16(node, C("DXN_FAKE_REC_LEN"))).toBe(img.blockSize);
  expect(node[C("DXN_FAKE_NAME_LEN")]).toBe(0);
  expect(node[C("DXN_FAKE_FILE_TYPE")]).toBe(0);
  const at = text.indexOf(`Entry #0: Hash 0x00000000, block ${nodeLblk}\nNumber of entries`);
  expect(at).toBeGreaterThan(0);
  const nodeCount = le16(node, C("DXN_COUNT"));
  const nodeLimit = le16(node, C("DXN_LIMIT"));
  expect(nodeCount).toBe(num(/Number of entries \(count\): (\d+)/, at));
  expect(nodeLimit).toBe(num(/Number of entries \(limit\): (\d+)/, at));
  expect(le32(node, C("DXN_BLOCK"))).toBe(num(/Checksum: 0x[0-9a-f]+\nEntry #0: Hash 0x[0-9a-f]+, block (\d+)/, at));
  const ntail = C("DXN_ENTRIES") + nodeLimit * C("DX_ENTRY_SIZE");
  expect(le32(node, ntail + C("DXT_CHECKSUM"))).toBe(parseInt(/Checksum: 0x([0-9a-f]+)/.exec(text.slice(at))![1], 16));
  const e1 = /Checksum: 0x[0-9a-f]+\nEntry #0: [^\n]*\nEntry #1: Hash 0x([0-9a-f]+), block (\d+)/.exec(text.slice(at))!;
  expect(le32(node, C("DXN_ENTRIES") + C("DX_ENTRY_SIZE") + C("DX_HASH"))).toBe(parseInt(e1[1], 16));
  expect(le32(node, C("DXN_ENTRIES") + C("DX_ENTRY_SIZE") + C("DX_BLOCK"))).toBe(Number(e1[2]));
}

/** Journal superblock (big-endian) against dumpe2fs -h, and s_jnl_blocks against inode 8. */
function checkJournal(img: Image): void {
  const h = img.header;
  const j8 = inodeBytes(img, C("JOURNAL_INO"));
  const jblk = Number(debugfs(img.path, "bmap <8> 0").trim());
  const jsb = block(img, jblk).subarray(0, C("JSB_SIZE"));
  expect(be32(jsb, C("JH_MAGIC"))).toBe(C("JBD2_MAGIC_NUMBER"));
  expect(be32(jsb, C("JH_BLOCKTYPE"))).toBe(C("JBD2_SUPERBLOCK_V2"));
  expect(be32(jsb, C("JSB_BLOCKSIZE"))).toBe(img.blockSize);
  expect(be32(jsb, C("JSB_MAXLEN"))).toBe(Number(h.get("Total journal blocks")));
  expect(be32(jsb, C("JSB_SEQUENCE"))).toBe(Number(h.get("Journal sequence")));
  expect(be32(jsb, C("JSB_START"))).toBe(Number(h.get("Journal start")));
  expect(be32(jsb, C("JSB_FIRST"))).toBe(1);
  expect(be32(jsb, C("JSB_NR_USERS"))).toBe(1);
  let incompat = 0;
  const feats = h.get("Journal features")!;
  if (feats !== "(none)") for (const f of feats.split(/\s+/)) incompat |= C(JOURNAL_FEATURE_NAMES[f]);
  expect(be32(jsb, C("JSB_FEATURE_INCOMPAT"))).toBe(incompat >>> 0);
  expect(be32(jsb, C("JSB_FEATURE_COMPAT"))).toBe(0);
  if (h.has("Journal checksum")) {
    expect(h.get("Journal checksum type")).toBe("crc32c");
    expect(jsb[C("JSB_CHECKSUM_TYPE")]).toBe(C("JBD2_CRC32C_CHKSUM"));
    expect(be32(jsb, C("JSB_CHECKSUM"))).toBe(Number(h.get("Journal checksum")));
  }
  if (h.has("Fast commit length")) expect(be32(jsb, C("JSB_NUM_FC_BLKS"))).toBe(Number(h.get("Fast commit length")));
  // s_jnl_blocks: a copy of the journal inode's i_block, then i_size_high and i_size.
  expect(h.get("Journal backup")).toBe("inode blocks");
  expect(img.sb[C("SB_JNL_BACKUP_TYPE")]).toBe(C("JNL_BACKUP_BLOCKS"));
  const jb = img.sb.subarray(C("SB_JNL_BLOCKS"), C("SB_JNL_BLOCKS") + 4 * C("SB_JNL_BLOCKS_WORDS"));
  expect([...jb.subarray(0, 60)]).toEqual([...j8.subarray(C("I_BLOCK"), C("I_BLOCK") + 60)]);
  expect(le32(jb, 60)).toBe(le32(j8, C("I_SIZE_HIGH")));
  expect(le32(jb, 64)).toBe(le32(j8, C("I_SIZE_LO")));
}

describe("on-disk offsets read what e2fsprogs wrote", () => {
  const tmp = scratchDir("ext4-ondisk-");
  const tree = join(tmp.dir, "tree");
  afterAll(() => tmp.cleanup());
  beforeAll(() => buildTree(tree));

  it("1 KiB blocks, metadata_csum + 64bit: superblock, groups, inodes, extents, dirents, htree, journal", () => {
    const path = join(tmp.dir, "a.img");
    tool("mke2fs", ["-t", "ext4", "-F", "-q", "-b", "1024", "-L", "ondisk-A", "-d", tree, path, "32M"]);
    fragment(path, "/big.bin", 1000);
    // Distinctive values in the split and extra fields, so a swapped half shows.
    debugfsScript(path, [
      "sif /sub/a uid 0x12345", "sif /sub/a gid 0x23456", "sif /sub/a generation 0xdeadbeef",
      "sif /sub/a mtime_extra 0x00000f0c", "sif /sub/a crtime 0x5a5a5a5a", "sif /sub/a projid 77",
      "sif /sub/a version 0x01020304",
    ]);
    const fix = toolStatus("e2fsck", ["-fyD", path]);
    expect(fix.status, fix.out).toBeLessThanOrEqual(1);
    debugfsScript(path, ["jo -c", "jc"]);
    const img = loadImage(path);
    checkSuperblock(img);
    checkGroups(img);
    for (const p of ["/", "/big.bin", "/many", "/sub/a", "/sub/l", "<8>", "<11>"]) {
      checkInode(img, Number(/Inode: (\d+)/.exec(debugfs(path, `stat ${p}`))![1]));
    }
    const a = inodeBytes(img, Number(/Inode: (\d+)/.exec(debugfs(path, "stat /sub/a"))![1]));
    expect(le16(a, C("I_UID_HIGH"))).toBe(1);
    expect(le16(a, C("I_GID_HIGH"))).toBe(2);
    checkExtents(img, "/big.bin");
    checkDirBlock(img, "/", true);
    checkDirBlock(img, "/sub", true);
    checkHtree(img, "/many", Number(/Inode: (\d+)/.exec(debugfs(path, "stat /many"))![1]), 2);
    checkJournal(img);
  });

  it("4 KiB blocks, defaults", () => {
    const path = join(tmp.dir, "b.img");
    tool("mke2fs", ["-t", "ext4", "-F", "-q", "-b", "4096", "-d", tree, path, "64M"]);
    const img = loadImage(path);
    checkSuperblock(img);
    checkGroups(img);
    checkInode(img, 2);
    checkExtents(img, "/big.bin");
    checkDirBlock(img, "/", true);
    checkJournal(img);
  });

  it("32-byte descriptors with uninit_bg, 128-byte inodes, no metadata_csum", () => {
    const path = join(tmp.dir, "c.img");
    tool("mke2fs", ["-t", "ext4", "-F", "-q", "-b", "1024", "-I", "128", "-O", "^metadata_csum,^64bit,uninit_bg", "-d", tree, path, "32M"]);
    const img = loadImage(path);
    expect(descSize(img)).toBe(32);
    checkSuperblock(img);
    checkGroups(img);
    checkInode(img, 2);
    checkInode(img, 12);
    checkDirBlock(img, "/", false);
    checkJournal(img);
  });
});
