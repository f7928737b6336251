// Feature flags, per-group and per-inode flags, mode bits, magic numbers and the small
// enumerations stored in the superblock.
//
// Why one file: these values are what every other module tests against (is the volume
// 64bit? is this inode extent-mapped? is the group's inode table initialised?), and having
// them in one place makes it obvious which bits we know about. Names are the kernel's
// (fs/ext4/ext4.h) with the EXT4_ prefix removed, so a reader can grep the kernel docs for
// any of them; values are from Documentation/filesystems/ext4 and e2fsprogs' ext2_fs.h.
//
// The three feature words have different contracts, and mount must honour them:
//   s_feature_compat     unknown bits: mount read-write anyway (fsck must still refuse)
//   s_feature_ro_compat  unknown bits: mount read-only at most
//   s_feature_incompat   unknown bits: refuse to mount at all
//
// Values above 0x7FFFFFFF are typed u32 (they do not fit an i32 literal); the exported
// Wasm global is still an i32, so JavaScript reads such a constant as a negative number
// and must apply `>>> 0`.

// ── s_feature_compat ──────────────────────────────────────────────────────────────────
export const FEATURE_COMPAT_DIR_PREALLOC: i32 = 0x0001;
export const FEATURE_COMPAT_IMAGIC_INODES: i32 = 0x0002;
export const FEATURE_COMPAT_HAS_JOURNAL: i32 = 0x0004;
export const FEATURE_COMPAT_EXT_ATTR: i32 = 0x0008;
export const FEATURE_COMPAT_RESIZE_INODE: i32 = 0x0010;
export const FEATURE_COMPAT_DIR_INDEX: i32 = 0x0020;
export const FEATURE_COMPAT_LAZY_BG: i32 = 0x0040;
export const FEATURE_COMPAT_EXCLUDE_BITMAP: i32 = 0x0100;
export const FEATURE_COMPAT_SPARSE_SUPER2: i32 = 0x0200;
export const FEATURE_COMPAT_FAST_COMMIT: i32 = 0x0400;
export const FEATURE_COMPAT_STABLE_INODES: i32 = 0x0800;
export const FEATURE_COMPAT_ORPHAN_FILE: i32 = 0x1000;

// ── s_feature_ro_compat ───────────────────────────────────────────────────────────────
export const FEATURE_RO_COMPAT_SPARSE_SUPER: i32 = 0x0001;
export const FEATURE_RO_COMPAT_LARGE_FILE: i32 = 0x0002;
export const FEATURE_RO_COMPAT_BTREE_DIR: i32 = 0x0004;
export const FEATURE_RO_COMPAT_HUGE_FILE: i32 = 0x0008;
/** Group descriptor crc16 ("uninit_bg"); never set together with METADATA_CSUM. */
export const FEATURE_RO_COMPAT_GDT_CSUM: i32 = 0x0010;
export const FEATURE_RO_COMPAT_DIR_NLINK: i32 = 0x0020;
export const FEATURE_RO_COMPAT_EXTRA_ISIZE: i32 = 0x0040;
export const FEATURE_RO_COMPAT_HAS_SNAPSHOT: i32 = 0x0080;
export const FEATURE_RO_COMPAT_QUOTA: i32 = 0x0100;
export const FEATURE_RO_COMPAT_BIGALLOC: i32 = 0x0200;
/** crc32c checksums on all metadata; implies the GDT_CSUM semantics (uninit groups). */
export const FEATURE_RO_COMPAT_METADATA_CSUM: i32 = 0x0400;
export const FEATURE_RO_COMPAT_REPLICA: i32 = 0x0800;
export const FEATURE_RO_COMPAT_READONLY: i32 = 0x1000;
export const FEATURE_RO_COMPAT_PROJECT: i32 = 0x2000;
export const FEATURE_RO_COMPAT_SHARED_BLOCKS: i32 = 0x4000;
export const FEATURE_RO_COMPAT_VERITY: i32 = 0x8000;
export const FEATURE_RO_COMPAT_ORPHAN_PRESENT: i32 = 0x10000;

// ── s_feature_incompat ────────────────────────────────────────────────────────────────
export const FEATURE_INCOMPAT_COMPRESSION: i32 = 0x0001;
export const FEATURE_INCOMPAT_FILETYPE: i32 = 0x0002;
/** Journal needs replay before the metadata may be trusted. */
export const FEATURE_INCOMPAT_RECOVER: i32 = 0x0004;
export const FEATURE_INCOMPAT_JOURNAL_DEV: i32 = 0x0008;
export const FEATURE_INCOMPAT_META_BG: i32 = 0x0010;
export const FEATURE_INCOMPAT_EXTENTS: i32 = 0x0040;
export const FEATURE_INCOMPAT_64BIT: i32 = 0x0080;
export const FEATURE_INCOMPAT_MMP: i32 = 0x0100;
export const FEATURE_INCOMPAT_FLEX_BG: i32 = 0x0200;
export const FEATURE_INCOMPAT_EA_INODE: i32 = 0x0400;
export const FEATURE_INCOMPAT_DIRDATA: i32 = 0x1000;
/** The checksum seed is s_checksum_seed instead of crc32c(uuid). */
export const FEATURE_INCOMPAT_CSUM_SEED: i32 = 0x2000;
export const FEATURE_INCOMPAT_LARGEDIR: i32 = 0x4000;
export const FEATURE_INCOMPAT_INLINE_DATA: i32 = 0x8000;
export const FEATURE_INCOMPAT_ENCRYPT: i32 = 0x10000;
export const FEATURE_INCOMPAT_CASEFOLD: i32 = 0x20000;

// ── bg_flags ──────────────────────────────────────────────────────────────────────────
/** Inode bitmap and table not initialised: treat every inode of the group as free. */
export const BG_INODE_UNINIT: i32 = 0x0001;
/** Block bitmap not initialised: compute it from the group's metadata layout. */
export const BG_BLOCK_UNINIT: i32 = 0x0002;
/** The inode table has been zeroed on disk (lazy itable init finished for the group). */
export const BG_INODE_ZEROED: i32 = 0x0004;

// ── i_flags ───────────────────────────────────────────────────────────────────────────
export const INODE_FL_SECRM: i32 = 0x00000001;
export const INODE_FL_UNRM: i32 = 0x00000002;
export const INODE_FL_COMPR: i32 = 0x00000004;
export const INODE_FL_SYNC: i32 = 0x00000008;
export const INODE_FL_IMMUTABLE: i32 = 0x00000010;
export const INODE_FL_APPEND: i32 = 0x00000020;
export const INODE_FL_NODUMP: i32 = 0x00000040;
export const INODE_FL_NOATIME: i32 = 0x00000080;
export const INODE_FL_DIRTY: i32 = 0x00000100;
export const INODE_FL_COMPRBLK: i32 = 0x00000200;
export const INODE_FL_NOCOMPR: i32 = 0x00000400;
export const INODE_FL_ENCRYPT: i32 = 0x00000800;
/** Directory is hash-indexed (htree); only meaningful with COMPAT_DIR_INDEX. */
export const INODE_FL_INDEX: i32 = 0x00001000;
export const INODE_FL_IMAGIC: i32 = 0x00002000;
export const INODE_FL_JOURNAL_DATA: i32 = 0x00004000;
export const INODE_FL_NOTAIL: i32 = 0x00008000;
export const INODE_FL_DIRSYNC: i32 = 0x00010000;
export const INODE_FL_TOPDIR: i32 = 0x00020000;
/** i_blocks counts filesystem blocks instead of 512-byte sectors (needs RO_COMPAT_HUGE_FILE). */
export const INODE_FL_HUGE_FILE: i32 = 0x00040000;
/** i_block holds an extent tree root instead of the ext2 block map. */
export const INODE_FL_EXTENTS: i32 = 0x00080000;
export const INODE_FL_VERITY: i32 = 0x00100000;
export const INODE_FL_EA_INODE: i32 = 0x00200000;
export const INODE_FL_DAX: i32 = 0x02000000;
export const INODE_FL_INLINE_DATA: i32 = 0x10000000;
export const INODE_FL_PROJINHERIT: i32 = 0x20000000;
export const INODE_FL_CASEFOLD: i32 = 0x40000000;
export const INODE_FL_RESERVED: u32 = 0x80000000;

// ── magic numbers, enumerations ───────────────────────────────────────────────────────
export const EXT4_SUPER_MAGIC: i32 = 0xef53;

/** s_state bits. */
export const STATE_VALID_FS: i32 = 0x0001;
export const STATE_ERROR_FS: i32 = 0x0002;
export const STATE_ORPHAN_FS: i32 = 0x0004;

/** s_errors: what to do when the kernel detects an error. */
export const ERRORS_CONTINUE: i32 = 1;
export const ERRORS_RO: i32 = 2;
export const ERRORS_PANIC: i32 = 3;

/** s_creator_os. Only Linux gives osd1/osd2 the meaning inode.ts describes. */
export const OS_LINUX: i32 = 0;
export const OS_HURD: i32 = 1;
export const OS_MASIX: i32 = 2;
export const OS_FREEBSD: i32 = 3;
export const OS_LITES: i32 = 4;

/** s_rev_level. Revision 0 has fixed 128-byte inodes and first inode 11. */
export const REV_GOOD_OLD: i32 = 0;
export const REV_DYNAMIC: i32 = 1;

/** s_flags. */
export const FLAGS_SIGNED_HASH: i32 = 0x0001;
export const FLAGS_UNSIGNED_HASH: i32 = 0x0002;
export const FLAGS_TEST_FILESYS: i32 = 0x0004;

/** s_default_mount_opts. */
export const DEFM_DEBUG: i32 = 0x0001;
export const DEFM_BSDGROUPS: i32 = 0x0002;
export const DEFM_XATTR_USER: i32 = 0x0004;
export const DEFM_ACL: i32 = 0x0008;
export const DEFM_UID16: i32 = 0x0010;
export const DEFM_JMODE_DATA: i32 = 0x0020;
export const DEFM_JMODE_ORDERED: i32 = 0x0040;
export const DEFM_JMODE_WBACK: i32 = 0x0060;
export const DEFM_NOBARRIER: i32 = 0x0100;
export const DEFM_BLOCK_VALIDITY: i32 = 0x0200;
export const DEFM_DISCARD: i32 = 0x0400;
export const DEFM_NODELALLOC: i32 = 0x0800;

/** s_jnl_backup_type: s_jnl_blocks holds a copy of the journal inode's i_block + size. */
export const JNL_BACKUP_BLOCKS: i32 = 1;

/** s_checksum_type: the only defined metadata checksum algorithm. */
export const CHECKSUM_TYPE_CRC32C: i32 = 1;

/** Block size is 1 << (MIN_BLOCK_LOG_SIZE + s_log_block_size). */
export const MIN_BLOCK_LOG_SIZE: i32 = 10;
export const MAX_BLOCK_LOG_SIZE: i32 = 16;

// ── reserved inode numbers ────────────────────────────────────────────────────────────
export const BAD_INO: i32 = 1;
export const ROOT_INO: i32 = 2;
export const USR_QUOTA_INO: i32 = 3;
export const GRP_QUOTA_INO: i32 = 4;
export const BOOT_LOADER_INO: i32 = 5;
export const UNDEL_DIR_INO: i32 = 6;
export const RESIZE_INO: i32 = 7;
export const JOURNAL_INO: i32 = 8;
export const EXCLUDE_INO: i32 = 9;
/** First inode of a revision-0 volume; dynamic volumes use s_first_ino (also 11 by default). */
export const GOOD_OLD_FIRST_INO: i32 = 11;
/** mke2fs puts lost+found in the first non-reserved inode; a convention, not a rule. */
export const LOST_FOUND_INO: i32 = 11;

// ── i_mode ────────────────────────────────────────────────────────────────────────────
export const S_IFMT: i32 = 0xf000;
export const S_IFSOCK: i32 = 0xc000;
export const S_IFLNK: i32 = 0xa000;
export const S_IFREG: i32 = 0x8000;
export const S_IFBLK: i32 = 0x6000;
export const S_IFDIR: i32 = 0x4000;
export const S_IFCHR: i32 = 0x2000;
export const S_IFIFO: i32 = 0x1000;
export const S_ISUID: i32 = 0x0800;
export const S_ISGID: i32 = 0x0400;
export const S_ISVTX: i32 = 0x0200;
