// The group descriptor table, held in engine memory.
//
// Why an in-memory copy: every allocation reads and updates a descriptor (free counts,
// flags, checksums), and scanning 131,072 of them (a 16 TiB volume) must not touch the
// block cache or the device. The table is allocated once per instance; mkfs builds it
// here and writes it out block by block; mount will load it from disk and write back the
// descriptor blocks it dirtied.
//
// Each descriptor is `desc_size` bytes (32, or 64 with the 64bit feature). Wide fields are
// split into a _lo half in the first 32 bytes and a _hi half in the second 32, which only
// exist for 64-byte descriptors — the accessors below hide that split:
//
//   table ─► [ desc 0 ][ desc 1 ] … [ desc n-1 ]      desc g at table + g * desc_size

import {
  BG_BLOCK_BITMAP_LO, BG_BLOCK_BITMAP_HI,
  BG_INODE_BITMAP_LO, BG_INODE_BITMAP_HI,
  BG_INODE_TABLE_LO, BG_INODE_TABLE_HI,
  BG_FREE_BLOCKS_COUNT_LO, BG_FREE_BLOCKS_COUNT_HI,
  BG_FREE_INODES_COUNT_LO, BG_FREE_INODES_COUNT_HI,
  BG_USED_DIRS_COUNT_LO, BG_USED_DIRS_COUNT_HI,
  BG_ITABLE_UNUSED_LO, BG_ITABLE_UNUSED_HI,
  BG_FLAGS,
} from "./ondisk/group_desc";
import { geoDescSize, geoGroupCount } from "./geometry";

let table: usize = 0;
let tableGroups: u32 = 0;

/** Allocate (once) and zero the table for the current geometry; returns its address. */
export function gdtInit(): usize {
  const bytes = <usize>geoGroupCount() * <usize>geoDescSize();
  if (table == 0 || tableGroups < geoGroupCount()) {
    table = heap.alloc(bytes);
    tableGroups = geoGroupCount();
  }
  memory.fill(table, 0, bytes);
  return table;
}

/** Address of the table (0 before gdtInit). */
export function gdtTable(): usize { return table; }

/** Address of group g's descriptor. Callers pass g < group count. */
export function gdPtr(g: u32): usize {
  return table + <usize>g * <usize>geoDescSize();
}

// A 64-bit field stored as lo (always present) and hi (64-byte descriptors only).
function get64(d: usize, lo: i32, hi: i32): u64 {
  let v = <u64>load<u32>(d + <usize>lo);
  if (geoDescSize() >= 64) v |= <u64>load<u32>(d + <usize>hi) << 32;
  return v;
}
function set64(d: usize, lo: i32, hi: i32, v: u64): void {
  store<u32>(d + <usize>lo, <u32>v);
  if (geoDescSize() >= 64) store<u32>(d + <usize>hi, <u32>(v >>> 32));
}
// A 32-bit count stored as two 16-bit halves.
function get32(d: usize, lo: i32, hi: i32): u32 {
  let v = <u32>load<u16>(d + <usize>lo);
  if (geoDescSize() >= 64) v |= <u32>load<u16>(d + <usize>hi) << 16;
  return v;
}
function set32(d: usize, lo: i32, hi: i32, v: u32): void {
  store<u16>(d + <usize>lo, <u16>v);
  if (geoDescSize() >= 64) store<u16>(d + <usize>hi, <u16>(v >>> 16));
}

export function gdBlockBitmap(d: usize): u64 { return get64(d, BG_BLOCK_BITMAP_LO, BG_BLOCK_BITMAP_HI); }
export function gdInodeBitmap(d: usize): u64 { return get64(d, BG_INODE_BITMAP_LO, BG_INODE_BITMAP_HI); }
export function gdInodeTable(d: usize): u64 { return get64(d, BG_INODE_TABLE_LO, BG_INODE_TABLE_HI); }
export function gdFreeBlocks(d: usize): u32 { return get32(d, BG_FREE_BLOCKS_COUNT_LO, BG_FREE_BLOCKS_COUNT_HI); }
export function gdFreeInodes(d: usize): u32 { return get32(d, BG_FREE_INODES_COUNT_LO, BG_FREE_INODES_COUNT_HI); }
export function gdUsedDirs(d: usize): u32 { return get32(d, BG_USED_DIRS_COUNT_LO, BG_USED_DIRS_COUNT_HI); }
export function gdItableUnused(d: usize): u32 { return get32(d, BG_ITABLE_UNUSED_LO, BG_ITABLE_UNUSED_HI); }
export function gdFlags(d: usize): u32 { return <u32>load<u16>(d + <usize>BG_FLAGS); }

export function gdSetBlockBitmap(d: usize, v: u64): void { set64(d, BG_BLOCK_BITMAP_LO, BG_BLOCK_BITMAP_HI, v); }
export function gdSetInodeBitmap(d: usize, v: u64): void { set64(d, BG_INODE_BITMAP_LO, BG_INODE_BITMAP_HI, v); }
export function gdSetInodeTable(d: usize, v: u64): void { set64(d, BG_INODE_TABLE_LO, BG_INODE_TABLE_HI, v); }
export function gdSetFreeBlocks(d: usize, v: u32): void { set32(d, BG_FREE_BLOCKS_COUNT_LO, BG_FREE_BLOCKS_COUNT_HI, v); }
export function gdSetFreeInodes(d: usize, v: u32): void { set32(d, BG_FREE_INODES_COUNT_LO, BG_FREE_INODES_COUNT_HI, v); }
export function gdSetUsedDirs(d: usize, v: u32): void { set32(d, BG_USED_DIRS_COUNT_LO, BG_USED_DIRS_COUNT_HI, v); }
export function gdSetItableUnused(d: usize, v: u32): void { set32(d, BG_ITABLE_UNUSED_LO, BG_ITABLE_UNUSED_HI, v); }
export function gdSetFlags(d: usize, v: u32): void { store<u16>(d + <usize>BG_FLAGS, <u16>v); }

// f64 views for the bindings (block numbers cross the boundary as f64).
export function groupBlockBitmapF(g: u32): f64 { return <f64>gdBlockBitmap(gdPtr(g)); }
export function groupInodeBitmapF(g: u32): f64 { return <f64>gdInodeBitmap(gdPtr(g)); }
export function groupInodeTableF(g: u32): f64 { return <f64>gdInodeTable(gdPtr(g)); }
export function groupFreeBlocks(g: u32): u32 { return gdFreeBlocks(gdPtr(g)); }
export function groupFreeInodes(g: u32): u32 { return gdFreeInodes(gdPtr(g)); }
export function groupUsedDirs(g: u32): u32 { return gdUsedDirs(gdPtr(g)); }
export function groupItableUnused(g: u32): u32 { return gdItableUnused(gdPtr(g)); }
export function groupFlags(g: u32): u32 { return gdFlags(gdPtr(g)); }
