// Decoding an on-disk inode into the numbers the bindings need, in one call.
//
// Why one call per inode: stat of 50,000 directory entries must not pay ~20 boundary
// crossings each. inodeDecode validates the inode (checksum, extra-field size) and writes
// every field the bindings use into a fixed array of f64 ("the decode record"), whose
// slot numbers are the exported INO_* constants. f64 carries 64-bit sizes and block
// counts exactly up to 2^53, far beyond anything ext4 stores.
//
// Timestamps: a 32-bit signed seconds field, extended (when the inode's extra fields
// cover it) by a 32-bit "extra" word: 2 epoch bits extending the seconds past 2038, and
// 30 bits of nanoseconds.

import {
  I_MODE, I_UID, I_SIZE_LO, I_ATIME, I_CTIME, I_MTIME, I_DTIME, I_GID, I_LINKS_COUNT, I_BLOCKS_LO,
  I_FLAGS, I_BLOCK, I_GENERATION, I_FILE_ACL_LO, I_SIZE_HIGH, I_BLOCKS_HIGH, I_FILE_ACL_HIGH,
  I_UID_HIGH, I_GID_HIGH, I_EXTRA_ISIZE, I_CTIME_EXTRA, I_MTIME_EXTRA, I_ATIME_EXTRA, I_CRTIME,
  I_CRTIME_EXTRA, I_PROJID, I_GOOD_OLD_SIZE,
} from "./ondisk/inode";
import { INODE_FL_HUGE_FILE, S_IFMT, S_IFCHR, S_IFBLK, S_IFREG } from "./ondisk/features";
import { inodeCsumVerify, csumMetadataEnabled } from "./csum";
import { geoInodeSize, geoBlockSize } from "./geometry";

// Slots of the decode record.
export const INO_MODE: i32 = 0;
export const INO_UID: i32 = 1;
export const INO_GID: i32 = 2;
export const INO_SIZE: i32 = 3;
export const INO_NLINK: i32 = 4;
export const INO_FLAGS: i32 = 5;
export const INO_BLOCKS512: i32 = 6;
export const INO_ATIME: i32 = 7;
export const INO_ATIME_NS: i32 = 8;
export const INO_MTIME: i32 = 9;
export const INO_MTIME_NS: i32 = 10;
export const INO_CTIME: i32 = 11;
export const INO_CTIME_NS: i32 = 12;
export const INO_CRTIME: i32 = 13; // NaN when the inode has no creation time
export const INO_CRTIME_NS: i32 = 14;
export const INO_GENERATION: i32 = 15;
export const INO_DTIME: i32 = 16;
export const INO_FILE_ACL: i32 = 17;
export const INO_RDEV_MAJOR: i32 = 18;
export const INO_RDEV_MINOR: i32 = 19;
export const INO_EXTRA_ISIZE: i32 = 20;
export const INO_PROJID: i32 = 21;
export const INO_RECORD_SLOTS: i32 = 24;

let largeDir: bool = false;

/** Per-volume decoding switches, set at mount: the large_dir feature. */
export function inodeConfigure(hasLargeDir: bool): void {
  largeDir = hasLargeDir;
}

// inodeDecode results (negated).
export const INOE_EXTRA_ISIZE: i32 = 1;
export const INOE_CHECKSUM: i32 = 2;

// Whether the inode's extra fields reach past byte `end` of the inode.
function covers(extra: u32, end: i32): bool {
  return <u32>I_GOOD_OLD_SIZE + extra >= <u32>end;
}

// Seconds (with epoch bits) of a timestamp pair; extraOff < 0 when there is no extra word.
function seconds(p: usize, off: i32, extraOff: i32, extra: u32): f64 {
  const base = <f64>load<i32>(p + <usize>off);
  if (extraOff < 0 || !covers(extra, extraOff + 4)) return base;
  const epoch = load<u32>(p + <usize>extraOff) & 3;
  return base + <f64>epoch * 4294967296.0;
}
function nanos(p: usize, extraOff: i32, extra: u32): f64 {
  if (!covers(extra, extraOff + 4)) return 0;
  return <f64>(load<u32>(p + <usize>extraOff) >>> 2);
}

/**
 * Validate inode `ino` at p (inode_size bytes) and fill the decode record at out
 * (INO_RECORD_SLOTS f64s). hugeFile: the volume has the huge_file feature. Returns 0 or a
 * negated INOE_* reason; on a checksum failure the record is still filled (the caller may
 * choose to report rather than trust it). justEncoded: the bytes at p are what
 * inodeEncode wrote a moment ago (the bindings re-read them for their cache), so the
 * checksum it set is not summed a second time. (A JS caller that omits it passes 0: the
 * checksum is verified. No AssemblyScript default here: an exported function with
 * optional parameters depends on a separately set argument count.)
 */
export function inodeDecode(p: usize, ino: u32, out: usize, hugeFile: bool, justEncoded: bool): i32 {
  const isz = geoInodeSize();
  let extra: u32 = 0;
  if (isz > <u32>I_GOOD_OLD_SIZE) {
    extra = <u32>load<u16>(p + <usize>I_EXTRA_ISIZE);
    if (extra > isz - <u32>I_GOOD_OLD_SIZE || (extra & 3) != 0) return -INOE_EXTRA_ISIZE;
  }
  const mode = <u32>load<u16>(p + <usize>I_MODE);
  const flags = load<u32>(p + <usize>I_FLAGS);
  store<f64>(out + (<usize>INO_MODE << 3), <f64>mode);
  store<f64>(out + (<usize>INO_UID << 3), <f64>(<u32>load<u16>(p + <usize>I_UID) | (<u32>load<u16>(p + <usize>I_UID_HIGH) << 16)));
  store<f64>(out + (<usize>INO_GID << 3), <f64>(<u32>load<u16>(p + <usize>I_GID) | (<u32>load<u16>(p + <usize>I_GID_HIGH) << 16)));
  // i_size_high counts for regular files, and for directories only with large_dir (it
  // was i_dir_acl once): as Linux reads it, so a stray high word cannot make a small
  // directory look 2^40 bytes long.
  let size = <u64>load<u32>(p + <usize>I_SIZE_LO);
  if ((mode & <u32>S_IFMT) == <u32>S_IFREG || largeDir) size |= <u64>load<u32>(p + <usize>I_SIZE_HIGH) << 32;
  store<f64>(out + (<usize>INO_SIZE << 3), <f64>size);
  store<f64>(out + (<usize>INO_NLINK << 3), <f64>load<u16>(p + <usize>I_LINKS_COUNT));
  store<f64>(out + (<usize>INO_FLAGS << 3), <f64>flags);
  let blocks = <u64>load<u32>(p + <usize>I_BLOCKS_LO);
  if (hugeFile) {
    blocks |= <u64>load<u16>(p + <usize>I_BLOCKS_HIGH) << 32;
    // With HUGE_FILE_FL the count is in filesystem blocks rather than 512-byte sectors.
    if ((flags & INODE_FL_HUGE_FILE) != 0) blocks *= <u64>(geoBlockSize() >>> 9);
  }
  store<f64>(out + (<usize>INO_BLOCKS512 << 3), <f64>blocks);
  store<f64>(out + (<usize>INO_ATIME << 3), seconds(p, I_ATIME, I_ATIME_EXTRA, extra));
  store<f64>(out + (<usize>INO_ATIME_NS << 3), nanos(p, I_ATIME_EXTRA, extra));
  store<f64>(out + (<usize>INO_MTIME << 3), seconds(p, I_MTIME, I_MTIME_EXTRA, extra));
  store<f64>(out + (<usize>INO_MTIME_NS << 3), nanos(p, I_MTIME_EXTRA, extra));
  store<f64>(out + (<usize>INO_CTIME << 3), seconds(p, I_CTIME, I_CTIME_EXTRA, extra));
  store<f64>(out + (<usize>INO_CTIME_NS << 3), nanos(p, I_CTIME_EXTRA, extra));
  if (covers(extra, I_CRTIME + 4)) {
    store<f64>(out + (<usize>INO_CRTIME << 3), seconds(p, I_CRTIME, I_CRTIME_EXTRA, extra));
    store<f64>(out + (<usize>INO_CRTIME_NS << 3), nanos(p, I_CRTIME_EXTRA, extra));
  } else {
    store<f64>(out + (<usize>INO_CRTIME << 3), NaN);
    store<f64>(out + (<usize>INO_CRTIME_NS << 3), 0);
  }
  store<f64>(out + (<usize>INO_GENERATION << 3), <f64>load<u32>(p + <usize>I_GENERATION));
  store<f64>(out + (<usize>INO_DTIME << 3), <f64>load<u32>(p + <usize>I_DTIME));
  store<f64>(out + (<usize>INO_FILE_ACL << 3), <f64>(<u64>load<u32>(p + <usize>I_FILE_ACL_LO) | (<u64>load<u16>(p + <usize>I_FILE_ACL_HIGH) << 32)));
  let major: u32 = 0, minor: u32 = 0;
  const type = mode & <u32>S_IFMT;
  if (type == <u32>S_IFCHR || type == <u32>S_IFBLK) {
    // Device numbers live in i_block: the old 8:8 encoding in word 0, or, when that is
    // zero, the new 12:20 encoding in word 1.
    const old = load<u32>(p + <usize>I_BLOCK);
    if (old != 0) {
      major = (old >>> 8) & 0xFF;
      minor = old & 0xFF;
    } else {
      const v = load<u32>(p + <usize>I_BLOCK + 4);
      major = (v & 0xFFF00) >>> 8;
      minor = (v & 0xFF) | ((v >>> 12) & 0xFFF00);
    }
  }
  store<f64>(out + (<usize>INO_RDEV_MAJOR << 3), <f64>major);
  store<f64>(out + (<usize>INO_RDEV_MINOR << 3), <f64>minor);
  store<f64>(out + (<usize>INO_EXTRA_ISIZE << 3), <f64>extra);
  store<f64>(out + (<usize>INO_PROJID << 3), covers(extra, I_PROJID + 4) ? <f64>load<u32>(p + <usize>I_PROJID) : 0);
  if (!justEncoded && csumMetadataEnabled() && !inodeCsumVerify(p, ino)) return -INOE_CHECKSUM;
  return 0;
}
