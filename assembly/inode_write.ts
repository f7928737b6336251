// Writing inodes: the inverse of inodeDecode (inode.ts), one call per inode.
//
// Why a record again: the bindings change a handful of fields per operation (size and
// blocks after a write, links after link/unlink, times almost always). They edit the same
// f64 decode record that inodeDecode fills, and inodeEncode writes every field of it back
// into the on-disk inode and recomputes the checksum — one boundary call per inode write,
// and the timestamp / hi-lo / huge_file encodings live in one place.
//
// What encode leaves alone: i_block (the bindings copy the 60-byte block map in
// themselves), the extended-attribute block, the in-inode xattr area past the extra
// fields, i_version, project id — so an inode written back keeps whatever we do not model.
//
// New inodes: inodeInitNew zeroes the whole slot first (with lazy inode-table init the
// slot may hold garbage from before mkfs) and sets extra_isize, then the caller encodes.

import {
  I_MODE, I_UID, I_SIZE_LO, I_ATIME, I_CTIME, I_MTIME, I_DTIME, I_GID, I_LINKS_COUNT, I_BLOCKS_LO,
  I_FLAGS, I_GENERATION, I_SIZE_HIGH, I_BLOCKS_HIGH, I_UID_HIGH, I_GID_HIGH, I_EXTRA_ISIZE,
  I_CTIME_EXTRA, I_MTIME_EXTRA, I_ATIME_EXTRA, I_CRTIME, I_CRTIME_EXTRA, I_GOOD_OLD_SIZE, I_BLOCK,
} from "./ondisk/inode";
import { EH_MAGIC, EH_MAX, EXT4_EXT_MAGIC } from "./ondisk/extent";
import { INODE_FL_HUGE_FILE, INODE_FL_EXTENTS } from "./ondisk/features";
import {
  INO_MODE, INO_UID, INO_GID, INO_SIZE, INO_NLINK, INO_FLAGS, INO_BLOCKS512, INO_ATIME, INO_ATIME_NS,
  INO_MTIME, INO_MTIME_NS, INO_CTIME, INO_CTIME_NS, INO_CRTIME, INO_CRTIME_NS, INO_GENERATION, INO_DTIME,
} from "./inode";
import { inodeCsumSet, csumMetadataEnabled } from "./csum";
import { geoInodeSize, geoBlockSize } from "./geometry";

// inodeEncode failures (negated).
export const INOW_RANGE: i32 = 1;   // a value does not fit its on-disk field
export const INOW_EXTRA: i32 = 2;   // the inode's extra_isize is malformed

function rec(out: usize, slot: i32): f64 { return load<f64>(out + (<usize>slot << 3)); }

function covers(extra: u32, end: i32): bool {
  return <u32>I_GOOD_OLD_SIZE + extra >= <u32>end;
}

// Store a timestamp: signed 32-bit seconds, plus (when the extra fields reach it) the
// extra word: epoch bits for seconds beyond the signed 32-bit range, nanoseconds << 2.
function storeTime(p: usize, off: i32, extraOff: i32, extra: u32, s: f64, ns: f64): void {
  const secs = <i64>Math.floor(s);
  store<i32>(p + <usize>off, <i32>secs);
  if (extraOff >= 0 && covers(extra, extraOff + 4)) {
    const epoch = <u32>(((secs - <i64><i32>secs) >> 32) & 3);
    const nanos = <u32>(ns < 0 ? 0 : ns > 999999999 ? 999999999 : ns);
    store<u32>(p + <usize>extraOff, (nanos << 2) | epoch);
  }
}

/**
 * Write the decode record at rec (see inode.ts INO_*) into inode `ino` at p, then set the
 * checksum. hugeFile: the volume has huge_file. Returns 0 or a negated INOW_* reason (the
 * inode is left unchanged on failure).
 */
export function inodeEncode(p: usize, ino: u32, out: usize, hugeFile: bool): i32 {
  const isz = geoInodeSize();
  let extra: u32 = 0;
  if (isz > <u32>I_GOOD_OLD_SIZE) {
    extra = <u32>load<u16>(p + <usize>I_EXTRA_ISIZE);
    if (extra > isz - <u32>I_GOOD_OLD_SIZE || (extra & 3) != 0) return -INOW_EXTRA;
  }
  const size = rec(out, INO_SIZE);
  const nlink = rec(out, INO_NLINK);
  let blocks = rec(out, INO_BLOCKS512);
  let flags = <u32>rec(out, INO_FLAGS);
  if (!(size >= 0 && size < 18446744073709551616.0) || !(nlink >= 0 && nlink <= 65535) || !(blocks >= 0)) return -INOW_RANGE;
  // i_blocks: 48 bits of 512-byte sectors with huge_file (32 without); beyond that the
  // unit becomes the filesystem block (HUGE_FILE_FL).
  flags &= ~INODE_FL_HUGE_FILE;
  let b = <u64>blocks;
  if (hugeFile) {
    if (b >= (<u64>1 << 48)) {
      flags |= INODE_FL_HUGE_FILE;
      b /= <u64>(geoBlockSize() >>> 9);
      if (b >= (<u64>1 << 48)) return -INOW_RANGE;
    }
  } else if (b > 0xFFFFFFFF) {
    return -INOW_RANGE;
  }
  const mode = <u32>rec(out, INO_MODE);
  const uid = <u32>rec(out, INO_UID);
  const gid = <u32>rec(out, INO_GID);
  store<u16>(p + <usize>I_MODE, <u16>mode);
  store<u16>(p + <usize>I_UID, <u16>uid);
  store<u16>(p + <usize>I_UID_HIGH, <u16>(uid >>> 16));
  store<u16>(p + <usize>I_GID, <u16>gid);
  store<u16>(p + <usize>I_GID_HIGH, <u16>(gid >>> 16));
  const s = <u64>size;
  store<u32>(p + <usize>I_SIZE_LO, <u32>s);
  store<u32>(p + <usize>I_SIZE_HIGH, <u32>(s >>> 32));
  store<u16>(p + <usize>I_LINKS_COUNT, <u16>nlink);
  store<u32>(p + <usize>I_BLOCKS_LO, <u32>b);
  if (hugeFile) store<u16>(p + <usize>I_BLOCKS_HIGH, <u16>(b >>> 32));
  store<u32>(p + <usize>I_FLAGS, flags);
  store<u32>(p + <usize>I_GENERATION, <u32>rec(out, INO_GENERATION));
  store<u32>(p + <usize>I_DTIME, <u32>rec(out, INO_DTIME));
  storeTime(p, I_ATIME, I_ATIME_EXTRA, extra, rec(out, INO_ATIME), rec(out, INO_ATIME_NS));
  storeTime(p, I_MTIME, I_MTIME_EXTRA, extra, rec(out, INO_MTIME), rec(out, INO_MTIME_NS));
  storeTime(p, I_CTIME, I_CTIME_EXTRA, extra, rec(out, INO_CTIME), rec(out, INO_CTIME_NS));
  const cr = rec(out, INO_CRTIME);
  if (!isNaN(cr) && covers(extra, I_CRTIME + 4)) storeTime(p, I_CRTIME, I_CRTIME_EXTRA, extra, cr, rec(out, INO_CRTIME_NS));
  if (csumMetadataEnabled()) inodeCsumSet(p, ino);
  return 0;
}

/**
 * Prepare the slot at p for a brand-new inode: zero it, set extra_isize (32, or 0 for
 * 128-byte inodes) and, when extents is set, an empty extent root in i_block. The caller
 * fills the record and calls inodeEncode.
 */
export function inodeInitNew(p: usize, extents: bool): void {
  const isz = geoInodeSize();
  memory.fill(p, 0, <usize>isz);
  if (isz > <u32>I_GOOD_OLD_SIZE) store<u16>(p + <usize>I_EXTRA_ISIZE, <u16>(isz >= 160 ? 32 : isz - 128));
  if (extents) {
    store<u16>(p + <usize>I_BLOCK + <usize>EH_MAGIC, <u16>EXT4_EXT_MAGIC);
    store<u16>(p + <usize>I_BLOCK + <usize>EH_MAX, 4);
    store<u32>(p + <usize>I_FLAGS, INODE_FL_EXTENTS);
  }
}
