// struct ext4_super_block: the 1024-byte record at byte 1024 of the volume (and, with
// sparse_super, backup copies at the start of groups 1 and powers of 3, 5 and 7).
//
// Why it sits at byte 1024 whatever the block size: the first 1024 bytes are left for a
// boot sector. With 1 KiB blocks the superblock is block 1 (s_first_data_block = 1); with
// larger blocks it is inside block 0, at offset 1024. Backup copies start at the first
// byte of their group's first block.
//
// Surprises a reader should know about:
// - 64-bit counts are split into a _lo word in the ext2 part of the record and a _hi word
//   appended later (0x150…); the _hi words count only with the 64bit incompat feature.
// - Timestamps have an 8-bit _hi byte far away (0x274…) extending them to 40 bits.
// - s_desc_size is only meaningful with the 64bit feature; without it descriptors are 32.
// - s_checksum_seed is used only with INCOMPAT_CSUM_SEED; otherwise the seed is
//   crc32c(~0, s_uuid) and changing the UUID means rewriting every checksum.
// - s_checksum is crc32c(~0) over bytes 0..0x3FC, *not* seeded with the metadata seed.
// - The kernel's s_encryption_level/s_reserved_pad (0x176/0x177) and
//   s_first_error_errcode/s_last_error_errcode (0x27A/0x27B) were one 2-byte pad each in
//   older documentation; the names here follow the current kernel struct.
//
//   off    size  field                         off    size  field
//   0x000  4     s_inodes_count                0x150  4     s_blocks_count_hi
//   0x004  4     s_blocks_count_lo             0x154  4     s_r_blocks_count_hi
//   0x008  4     s_r_blocks_count_lo           0x158  4     s_free_blocks_count_hi
//   0x00C  4     s_free_blocks_count_lo        0x15C  2     s_min_extra_isize
//   0x010  4     s_free_inodes_count           0x15E  2     s_want_extra_isize
//   0x014  4     s_first_data_block            0x160  4     s_flags
//   0x018  4     s_log_block_size              0x164  2     s_raid_stride
//   0x01C  4     s_log_cluster_size            0x166  2     s_mmp_update_interval
//   0x020  4     s_blocks_per_group            0x168  8     s_mmp_block
//   0x024  4     s_clusters_per_group          0x170  4     s_raid_stripe_width
//   0x028  4     s_inodes_per_group            0x174  1     s_log_groups_per_flex
//   0x02C  4     s_mtime                       0x175  1     s_checksum_type
//   0x030  4     s_wtime                       0x176  1     s_encryption_level
//   0x034  2     s_mnt_count                   0x177  1     s_reserved_pad
//   0x036  2     s_max_mnt_count               0x178  8     s_kbytes_written
//   0x038  2     s_magic (0xEF53)              0x180  4     s_snapshot_inum
//   0x03A  2     s_state                       0x184  4     s_snapshot_id
//   0x03C  2     s_errors                      0x188  8     s_snapshot_r_blocks_count
//   0x03E  2     s_minor_rev_level             0x190  4     s_snapshot_list
//   0x040  4     s_lastcheck                   0x194  4     s_error_count
//   0x044  4     s_checkinterval               0x198  4     s_first_error_time
//   0x048  4     s_creator_os                  0x19C  4     s_first_error_ino
//   0x04C  4     s_rev_level                   0x1A0  8     s_first_error_block
//   0x050  2     s_def_resuid                  0x1A8  32    s_first_error_func
//   0x052  2     s_def_resgid                  0x1C8  4     s_first_error_line
//   ── dynamic-revision fields ──               0x1CC  4     s_last_error_time
//   0x054  4     s_first_ino                   0x1D0  4     s_last_error_ino
//   0x058  2     s_inode_size                  0x1D4  4     s_last_error_line
//   0x05A  2     s_block_group_nr              0x1D8  8     s_last_error_block
//   0x05C  4     s_feature_compat              0x1E0  32    s_last_error_func
//   0x060  4     s_feature_incompat            0x200  64    s_mount_opts
//   0x064  4     s_feature_ro_compat           0x240  4     s_usr_quota_inum
//   0x068  16    s_uuid                        0x244  4     s_grp_quota_inum
//   0x078  16    s_volume_name                 0x248  4     s_overhead_clusters
//   0x088  64    s_last_mounted                0x24C  8     s_backup_bgs[2]
//   0x0C8  4     s_algorithm_usage_bitmap      0x254  4     s_encrypt_algos[4]
//   0x0CC  1     s_prealloc_blocks             0x258  16    s_encrypt_pw_salt
//   0x0CD  1     s_prealloc_dir_blocks         0x268  4     s_lpf_ino
//   0x0CE  2     s_reserved_gdt_blocks         0x26C  4     s_prj_quota_inum
//   0x0D0  16    s_journal_uuid                0x270  4     s_checksum_seed
//   0x0E0  4     s_journal_inum                0x274  1     s_wtime_hi
//   0x0E4  4     s_journal_dev                 0x275  1     s_mtime_hi
//   0x0E8  4     s_last_orphan                 0x276  1     s_mkfs_time_hi
//   0x0EC  16    s_hash_seed[4]                0x277  1     s_lastcheck_hi
//   0x0FC  1     s_def_hash_version            0x278  1     s_first_error_time_hi
//   0x0FD  1     s_jnl_backup_type             0x279  1     s_last_error_time_hi
//   0x0FE  2     s_desc_size                   0x27A  1     s_first_error_errcode
//   0x100  4     s_default_mount_opts          0x27B  1     s_last_error_errcode
//   0x104  4     s_first_meta_bg               0x27C  2     s_encoding
//   0x108  4     s_mkfs_time                   0x27E  2     s_encoding_flags
//   0x10C  68    s_jnl_blocks[17]              0x280  4     s_orphan_file_inum
//                                              0x284  376   s_reserved[94]
//                                              0x3FC  4     s_checksum

export const SB_INODES_COUNT: i32 = 0x000;
export const SB_BLOCKS_COUNT_LO: i32 = 0x004;
export const SB_R_BLOCKS_COUNT_LO: i32 = 0x008;
export const SB_FREE_BLOCKS_COUNT_LO: i32 = 0x00c;
export const SB_FREE_INODES_COUNT: i32 = 0x010;
export const SB_FIRST_DATA_BLOCK: i32 = 0x014;
export const SB_LOG_BLOCK_SIZE: i32 = 0x018;
export const SB_LOG_CLUSTER_SIZE: i32 = 0x01c;
export const SB_BLOCKS_PER_GROUP: i32 = 0x020;
export const SB_CLUSTERS_PER_GROUP: i32 = 0x024;
export const SB_INODES_PER_GROUP: i32 = 0x028;
export const SB_MTIME: i32 = 0x02c;
export const SB_WTIME: i32 = 0x030;
export const SB_MNT_COUNT: i32 = 0x034;
export const SB_MAX_MNT_COUNT: i32 = 0x036;
export const SB_MAGIC: i32 = 0x038;
export const SB_STATE: i32 = 0x03a;
export const SB_ERRORS: i32 = 0x03c;
export const SB_MINOR_REV_LEVEL: i32 = 0x03e;
export const SB_LASTCHECK: i32 = 0x040;
export const SB_CHECKINTERVAL: i32 = 0x044;
export const SB_CREATOR_OS: i32 = 0x048;
export const SB_REV_LEVEL: i32 = 0x04c;
export const SB_DEF_RESUID: i32 = 0x050;
export const SB_DEF_RESGID: i32 = 0x052;
export const SB_FIRST_INO: i32 = 0x054;
export const SB_INODE_SIZE: i32 = 0x058;
export const SB_BLOCK_GROUP_NR: i32 = 0x05a;
export const SB_FEATURE_COMPAT: i32 = 0x05c;
export const SB_FEATURE_INCOMPAT: i32 = 0x060;
export const SB_FEATURE_RO_COMPAT: i32 = 0x064;
export const SB_UUID: i32 = 0x068;
export const SB_VOLUME_NAME: i32 = 0x078;
export const SB_LAST_MOUNTED: i32 = 0x088;
export const SB_ALGORITHM_USAGE_BITMAP: i32 = 0x0c8;
export const SB_PREALLOC_BLOCKS: i32 = 0x0cc;
export const SB_PREALLOC_DIR_BLOCKS: i32 = 0x0cd;
export const SB_RESERVED_GDT_BLOCKS: i32 = 0x0ce;
export const SB_JOURNAL_UUID: i32 = 0x0d0;
export const SB_JOURNAL_INUM: i32 = 0x0e0;
export const SB_JOURNAL_DEV: i32 = 0x0e4;
export const SB_LAST_ORPHAN: i32 = 0x0e8;
export const SB_HASH_SEED: i32 = 0x0ec;
export const SB_DEF_HASH_VERSION: i32 = 0x0fc;
export const SB_JNL_BACKUP_TYPE: i32 = 0x0fd;
export const SB_DESC_SIZE: i32 = 0x0fe;
export const SB_DEFAULT_MOUNT_OPTS: i32 = 0x100;
export const SB_FIRST_META_BG: i32 = 0x104;
export const SB_MKFS_TIME: i32 = 0x108;
export const SB_JNL_BLOCKS: i32 = 0x10c;
export const SB_BLOCKS_COUNT_HI: i32 = 0x150;
export const SB_R_BLOCKS_COUNT_HI: i32 = 0x154;
export const SB_FREE_BLOCKS_COUNT_HI: i32 = 0x158;
export const SB_MIN_EXTRA_ISIZE: i32 = 0x15c;
export const SB_WANT_EXTRA_ISIZE: i32 = 0x15e;
export const SB_FLAGS: i32 = 0x160;
export const SB_RAID_STRIDE: i32 = 0x164;
export const SB_MMP_UPDATE_INTERVAL: i32 = 0x166;
export const SB_MMP_BLOCK: i32 = 0x168;
export const SB_RAID_STRIPE_WIDTH: i32 = 0x170;
export const SB_LOG_GROUPS_PER_FLEX: i32 = 0x174;
export const SB_CHECKSUM_TYPE: i32 = 0x175;
export const SB_ENCRYPTION_LEVEL: i32 = 0x176;
export const SB_RESERVED_PAD: i32 = 0x177;
export const SB_KBYTES_WRITTEN: i32 = 0x178;
export const SB_SNAPSHOT_INUM: i32 = 0x180;
export const SB_SNAPSHOT_ID: i32 = 0x184;
export const SB_SNAPSHOT_R_BLOCKS_COUNT: i32 = 0x188;
export const SB_SNAPSHOT_LIST: i32 = 0x190;
export const SB_ERROR_COUNT: i32 = 0x194;
export const SB_FIRST_ERROR_TIME: i32 = 0x198;
export const SB_FIRST_ERROR_INO: i32 = 0x19c;
export const SB_FIRST_ERROR_BLOCK: i32 = 0x1a0;
export const SB_FIRST_ERROR_FUNC: i32 = 0x1a8;
export const SB_FIRST_ERROR_LINE: i32 = 0x1c8;
export const SB_LAST_ERROR_TIME: i32 = 0x1cc;
export const SB_LAST_ERROR_INO: i32 = 0x1d0;
export const SB_LAST_ERROR_LINE: i32 = 0x1d4;
export const SB_LAST_ERROR_BLOCK: i32 = 0x1d8;
export const SB_LAST_ERROR_FUNC: i32 = 0x1e0;
export const SB_MOUNT_OPTS: i32 = 0x200;
export const SB_USR_QUOTA_INUM: i32 = 0x240;
export const SB_GRP_QUOTA_INUM: i32 = 0x244;
export const SB_OVERHEAD_CLUSTERS: i32 = 0x248;
export const SB_BACKUP_BGS: i32 = 0x24c;
export const SB_ENCRYPT_ALGOS: i32 = 0x254;
export const SB_ENCRYPT_PW_SALT: i32 = 0x258;
export const SB_LPF_INO: i32 = 0x268;
export const SB_PRJ_QUOTA_INUM: i32 = 0x26c;
export const SB_CHECKSUM_SEED: i32 = 0x270;
export const SB_WTIME_HI: i32 = 0x274;
export const SB_MTIME_HI: i32 = 0x275;
export const SB_MKFS_TIME_HI: i32 = 0x276;
export const SB_LASTCHECK_HI: i32 = 0x277;
export const SB_FIRST_ERROR_TIME_HI: i32 = 0x278;
export const SB_LAST_ERROR_TIME_HI: i32 = 0x279;
export const SB_FIRST_ERROR_ERRCODE: i32 = 0x27a;
export const SB_LAST_ERROR_ERRCODE: i32 = 0x27b;
export const SB_ENCODING: i32 = 0x27c;
export const SB_ENCODING_FLAGS: i32 = 0x27e;
export const SB_ORPHAN_FILE_INUM: i32 = 0x280;
export const SB_RESERVED: i32 = 0x284;
export const SB_CHECKSUM: i32 = 0x3fc;

/** Size of the record. */
export const SB_SIZE: i32 = 1024;
/** Byte offset of the primary superblock on the device, whatever the block size. */
export const SB_DISK_OFFSET: i32 = 1024;

// Lengths of the array fields, in bytes unless the name says otherwise.
export const SB_UUID_LEN: i32 = 16;
export const SB_VOLUME_NAME_LEN: i32 = 16;
export const SB_LAST_MOUNTED_LEN: i32 = 64;
export const SB_HASH_SEED_LEN: i32 = 16;
/** s_jnl_blocks: 15 words of the journal inode's i_block, then i_size_high, i_size. */
export const SB_JNL_BLOCKS_WORDS: i32 = 17;
export const SB_ERROR_FUNC_LEN: i32 = 32;
export const SB_MOUNT_OPTS_LEN: i32 = 64;
