// Extent-tree lookup, read side: validating one node at a time and answering "which
// physical block holds logical block L, and for how many blocks does that answer hold".
//
// Why node-at-a-time: the tree's interior blocks live in the block cache, which the
// TypeScript walker fills asynchronously from the device. The engine cannot wait for a
// read, so it never follows a child pointer itself. The walker loads a node, asks the
// engine to validate it against what its parent promised, asks which child to load next,
// and repeats until it reaches a leaf. Every function here looks only at the node it is
// given; none keeps a pointer to it after returning.
//
// The node (in i_block, nodeSize 60; or a whole tree block, nodeSize = block size):
//
//   +0   +2        +4     +6       +8           +12
//   [magic][entries][max ][depth  ][generation ] [ entry 0 ][ entry 1 ] … [ entry max-1 ][tail]
//    F30A   used     room  0 = leaf                 12 bytes each           tree blocks only
//
//   depth > 0: index entries               depth == 0: leaf extents
//   +0 ei_block   first lblk of child       +0 ee_block    first lblk
//   +4 ei_leaf_lo child block, low 32       +4 ee_len      length; > 32768: unwritten,
//   +8 ei_leaf_hi child block, high 16                     true length ee_len - 32768
//   +10 unused                              +6 ee_start_hi physical start, high 16
//                                           +8 ee_start_lo physical start, low 32
//
//   root (i_block)            depth 2
//     [0 | 900 | 5000]        keys: each child covers [key, next key)
//        |    |     \_____________________________
//     [0|300|600] [900|…] …   depth 1, lo = parent key, hi = parent's next key
//        |
//     [0+4 @ 7000][6+1 @ 7123 unwritten] …   depth 0: extents (lblk+len @ phys) in [lo, hi)
//
// The walk protocol (what the walker in the bindings must do for a lookup of lblk):
//
//   node = inode + I_BLOCK, size 60, lo = 0, hi = EXT_LBLK_END
//   d = extNodeCheck(node, 60, -1, lo, hi, firstDataBlock, blocksCount)   < 0: EFSCORRUPTED
//   while d > 0:
//     i = extIndexFind(node, lblk)
//     i == -1 (only possible at the root): hole of extIndexStart(node, 0) - lblk blocks
//     child = extIndexChild(node, i); clo = extIndexStart(node, i)
//     chi = extIndexNextStart(node, i, hi)
//     block = cache.read(child)
//     extNodeCheck(block, blockSize, d - 1, clo, chi, firstDataBlock, blocksCount) == d - 1
//       else EFSCORRUPTED;  extentBlockCsumVerify(block, ino, i_generation) (csum.ts)
//       else EFSBADCRC — the root has no tail: the inode checksum covers it
//     node = block; lo = clo; hi = chi; d -= 1
//   extLeafMap(node, lblk, hi): 0 mapped / 1 hole, then extMapPhys/Len/Unwritten/Index
//
// Why each rule of extNodeCheck exists (everything read from disk is hostile):
// - depth must be exactly the parent's depth - 1, so a child pointer aimed at its own
//   node or at an ancestor is refused: a walk loads at most 5 blocks and always ends.
// - eh_max must fit the node (4 in i_block, (nodeSize - 12) / 12 in a block), entries must
//   not exceed eh_max: after that, every entry the accessors read lies inside the node, and
//   the checksum tail (right after eh_max entries) lies inside the block. A smaller eh_max
//   is accepted, as the kernel does (e2fsck wants capacity - 2 or more, but only a writer
//   needs to care).
// - keys strictly increase and extents do not overlap: the binary searches then find the
//   one entry covering lblk, and a hole is the gap to the next entry.
// - a non-root node's first key equals its parent's key, and everything in it stays below
//   the parent's next key: the answer for lblk cannot depend on which path found it, and
//   extIndexFind can only return -1 at the root.
// - physical ranges lie in [firstDataBlock, blocksCount): a mapping never sends a read or
//   write outside the volume; unwritten extents are checked too (their blocks are
//   allocated).
// - logical ranges end at or below EXT_LBLK_END = 2^32 - 1: block 2^32 - 1 is not
//   addressable, which keeps every length in a u32.
//
// The accessors (extIndex*, extLeaf*, extLeafMap) trust the header: call them only on a
// node extNodeCheck accepted (and that has not changed since). They never read past entry
// min(eh_entries, eh_max) - 1, and refuse out-of-range indexes with a sentinel instead of
// reading. Checking is O(entries); the walker should remember which cached blocks it has
// checked (with which depth/lo/hi) rather than re-check on every lookup.
//
// Numbers at the boundary: physical blocks are 48-bit and cross as f64 (exact). Logical
// blocks and lengths are u32, which JavaScript receives as signed i32: apply `>>> 0`.
// Results of extLeafMap are kept in module globals (one volume per engine instance, one
// call at a time) and read back with the extMap* getters.

import {
  EE_BLOCK, EE_LEN, EE_SIZE, EE_START_HI, EE_START_LO, EH_DEPTH, EH_ENTRIES, EH_MAGIC, EH_MAX,
  EH_SIZE, EI_BLOCK, EI_LEAF_HI, EI_LEAF_LO, EI_SIZE, EXT4_EXT_MAGIC, EXT_INIT_MAX_LEN,
  EXT_MAX_DEPTH, EXT_ROOT_MAX_ENTRIES,
} from "./ondisk/extent";
import { I_BLOCK_SIZE } from "./ondisk/inode";

/** One past the last addressable logical block (2^32 - 1); the root's upper bound. */
export const EXT_LBLK_END: f64 = 4294967295.0;

/** extLeafMap: lblk is mapped by an extent. */
export const EXT_MAPPED: i32 = 0;
/** extLeafMap: lblk is in a hole. */
export const EXT_HOLE: i32 = 1;

// Reason codes (all < -1, so that -1 can mean "before the first key" in extIndexFind).
/** nodeSize is neither 60 (i_block) nor a power of two in [1024, 65536]. */
export const EXT_ERR_SIZE: i32 = -2;
/** eh_magic is not 0xF30A. */
export const EXT_ERR_MAGIC: i32 = -3;
/** eh_depth > 5, differs from the expected depth, or a leaf/index call on the other kind. */
export const EXT_ERR_DEPTH: i32 = -4;
/** eh_max is 0 or more than the node can hold. */
export const EXT_ERR_MAX: i32 = -5;
/** eh_entries > eh_max, or an index node with no entries. */
export const EXT_ERR_ENTRIES: i32 = -6;
/** Index keys not strictly increasing, or leaf extents unsorted or overlapping. */
export const EXT_ERR_ORDER: i32 = -7;
/** A leaf extent of length 0. */
export const EXT_ERR_LEN: i32 = -8;
/** A child block or an extent's physical range outside [firstDataBlock, blocksCount). */
export const EXT_ERR_PHYS: i32 = -9;
/** A key or extent outside the node's logical range [lo, hi), or first key != lo. */
export const EXT_ERR_RANGE: i32 = -10;

// Results of the last extLeafMap call.
let mapPhys: f64 = 0;
let mapLen: u32 = 0;
let mapUnwritten = false;
let mapIndex: i32 = 0;

// Entry i's address; i < min(eh_entries, eh_max) keeps it inside a checked node.
// @ts-ignore: decorator
@inline function entryAt(node: usize, i: i32): usize {
  return node + <usize>EH_SIZE + <usize>i * <usize>EE_SIZE;
}

// Entries the accessors may read: eh_entries, never more than eh_max.
// @ts-ignore: decorator
@inline function usable(node: usize): i32 {
  const n = <i32>load<u16>(node + EH_ENTRIES);
  const m = <i32>load<u16>(node + EH_MAX);
  return n < m ? n : m;
}

// @ts-ignore: decorator
@inline function depthOf(node: usize): i32 {
  return <i32>load<u16>(node + EH_DEPTH);
}

// @ts-ignore: decorator
@inline function idxChild(e: usize): f64 {
  return <f64>load<u16>(e + EI_LEAF_HI) * 4294967296.0 + <f64>load<u32>(e + EI_LEAF_LO);
}

// @ts-ignore: decorator
@inline function extPhys(e: usize): f64 {
  return <f64>load<u16>(e + EE_START_HI) * 4294967296.0 + <f64>load<u32>(e + EE_START_LO);
}

// True length: ee_len above 32768 flags an unwritten extent of ee_len - 32768 blocks.
// @ts-ignore: decorator
@inline function extLen(e: usize): u32 {
  const raw = <u32>load<u16>(e + EE_LEN);
  return raw > <u32>EXT_INIT_MAX_LEN ? raw - <u32>EXT_INIT_MAX_LEN : raw;
}

// @ts-ignore: decorator
@inline function extIsUnwritten(e: usize): bool {
  return <u32>load<u16>(e + EE_LEN) > <u32>EXT_INIT_MAX_LEN;
}

/** Entries a node of nodeSize bytes holds: 4 for i_block (60), (nodeSize - 12) / 12 for a block; EXT_ERR_SIZE otherwise. */
export function extNodeCapacity(nodeSize: u32): i32 {
  if (nodeSize == <u32>I_BLOCK_SIZE) return EXT_ROOT_MAX_ENTRIES;
  if (nodeSize < 1024 || nodeSize > 65536 || (nodeSize & (nodeSize - 1)) != 0) return EXT_ERR_SIZE;
  return <i32>((nodeSize - <u32>EH_SIZE) / <u32>EE_SIZE);
}

/**
 * Validate the node at nodePtr (nodeSize bytes) against its parent's promise: depth
 * expectDepth (-1: the root, any depth ≤ 5, no first-key rule), keys in [lo, hi) with the
 * first key == lo for a non-root node, extents ending ≤ hi, physical blocks in
 * [firstDataBlock, blocksCount). Returns the node's depth (≥ 0) or an EXT_ERR_* code.
 */
export function extNodeCheck(
  nodePtr: usize, nodeSize: u32, expectDepth: i32, lo: f64, hi: f64, firstDataBlock: f64, blocksCount: f64,
): i32 {
  const cap = extNodeCapacity(nodeSize);
  if (cap < 0) return cap;
  if (<i32>load<u16>(nodePtr + EH_MAGIC) != EXT4_EXT_MAGIC) return EXT_ERR_MAGIC;
  const depth = depthOf(nodePtr);
  if (depth > EXT_MAX_DEPTH) return EXT_ERR_DEPTH;
  if (expectDepth >= 0 && depth != expectDepth) return EXT_ERR_DEPTH;
  const max = <i32>load<u16>(nodePtr + EH_MAX);
  if (max == 0 || max > cap) return EXT_ERR_MAX;
  const n = <i32>load<u16>(nodePtr + EH_ENTRIES);
  if (n > max || (depth > 0 && n == 0)) return EXT_ERR_ENTRIES;

  // NaN compares false with everything, which would accept any entry: refuse it outright.
  if (lo != lo || hi != hi) return EXT_ERR_RANGE;
  if (!(firstDataBlock >= 0 && blocksCount >= firstDataBlock)) return EXT_ERR_PHYS;
  const root = expectDepth < 0;
  const low = lo > 0 ? lo : 0;
  const high = hi < EXT_LBLK_END ? hi : EXT_LBLK_END;
  let prevEnd: f64 = -1;
  for (let i = 0; i < n; i++) {
    const e = entryAt(nodePtr, i);
    // ee_block and ei_block share offset 0.
    const key = <f64>load<u32>(e + EE_BLOCK);
    if (i == 0 && !root && key != lo) return EXT_ERR_RANGE;
    if (depth > 0) {
      if (key <= prevEnd) return EXT_ERR_ORDER;
      if (key < low || key >= high) return EXT_ERR_RANGE;
      const child = idxChild(e);
      if (child < firstDataBlock || child >= blocksCount) return EXT_ERR_PHYS;
      prevEnd = key;
    } else {
      const len = <f64>extLen(e);
      if (len == 0) return EXT_ERR_LEN;
      if (key < prevEnd) return EXT_ERR_ORDER;
      if (key < low || key + len > high) return EXT_ERR_RANGE;
      const p = extPhys(e);
      if (p < firstDataBlock || p + len > blocksCount) return EXT_ERR_PHYS;
      prevEnd = key + len;
    }
  }
  return depth;
}

/** Entries of an index node (depth > 0), or EXT_ERR_DEPTH for a leaf. */
export function extIndexCount(nodePtr: usize): i32 {
  if (depthOf(nodePtr) == 0) return EXT_ERR_DEPTH;
  return usable(nodePtr);
}

/** Index of the child covering lblk (last entry with ei_block ≤ lblk); -1 if lblk precedes every key; EXT_ERR_DEPTH for a leaf. */
export function extIndexFind(nodePtr: usize, lblk: u32): i32 {
  if (depthOf(nodePtr) == 0) return EXT_ERR_DEPTH;
  let a = 0;
  let b = usable(nodePtr);
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (load<u32>(entryAt(nodePtr, mid) + EI_BLOCK) <= lblk) a = mid + 1;
    else b = mid;
  }
  return a - 1;
}

/** First logical block covered by child i (ei_block); 0xFFFFFFFF if i is out of range. */
export function extIndexStart(nodePtr: usize, i: i32): u32 {
  if (depthOf(nodePtr) == 0 || i < 0 || i >= usable(nodePtr)) return 0xffffffff;
  return load<u32>(entryAt(nodePtr, i) + EI_BLOCK);
}

/** Physical block of child i (48 bits); -1 if i is out of range. */
export function extIndexChild(nodePtr: usize, i: i32): f64 {
  if (depthOf(nodePtr) == 0 || i < 0 || i >= usable(nodePtr)) return -1;
  return idxChild(entryAt(nodePtr, i));
}

/** One past the last logical block child i may cover: entry i+1's key, or `upper` (this node's hi) for the last; -1 if i is out of range. */
export function extIndexNextStart(nodePtr: usize, i: i32, upper: f64): f64 {
  const n = usable(nodePtr);
  if (depthOf(nodePtr) == 0 || i < 0 || i >= n) return -1;
  if (i + 1 < n) return <f64>load<u32>(entryAt(nodePtr, i + 1) + EI_BLOCK);
  return upper < EXT_LBLK_END ? upper : EXT_LBLK_END;
}

/** Extents in a leaf (depth 0), or EXT_ERR_DEPTH for an index node. */
export function extLeafCount(nodePtr: usize): i32 {
  if (depthOf(nodePtr) != 0) return EXT_ERR_DEPTH;
  return usable(nodePtr);
}

/** First logical block of leaf extent i (ee_block); 0xFFFFFFFF if i is out of range. */
export function extLeafBlock(nodePtr: usize, i: i32): u32 {
  if (depthOf(nodePtr) != 0 || i < 0 || i >= usable(nodePtr)) return 0xffffffff;
  return load<u32>(entryAt(nodePtr, i) + EE_BLOCK);
}

/** True length of leaf extent i (1..32768, unwritten flag removed); 0 if i is out of range. */
export function extLeafLen(nodePtr: usize, i: i32): u32 {
  if (depthOf(nodePtr) != 0 || i < 0 || i >= usable(nodePtr)) return 0;
  return extLen(entryAt(nodePtr, i));
}

/** First physical block of leaf extent i (48 bits); -1 if i is out of range. */
export function extLeafStart(nodePtr: usize, i: i32): f64 {
  if (depthOf(nodePtr) != 0 || i < 0 || i >= usable(nodePtr)) return -1;
  return extPhys(entryAt(nodePtr, i));
}

/** True if leaf extent i is unwritten (reads as zeros); false if i is out of range. */
export function extLeafUnwritten(nodePtr: usize, i: i32): bool {
  if (depthOf(nodePtr) != 0 || i < 0 || i >= usable(nodePtr)) return false;
  return extIsUnwritten(entryAt(nodePtr, i));
}

/**
 * Map lblk in a checked leaf whose logical range ends at `upper` (the hi the walker
 * descended with). EXT_MAPPED or EXT_HOLE with the extMap* getters set; EXT_ERR_DEPTH if
 * the node is not a leaf, EXT_ERR_RANGE if lblk ≥ min(upper, EXT_LBLK_END).
 */
export function extLeafMap(nodePtr: usize, lblk: u32, upper: f64): i32 {
  if (depthOf(nodePtr) != 0) return EXT_ERR_DEPTH;
  if (upper != upper) return EXT_ERR_RANGE;
  const top = upper < EXT_LBLK_END ? upper : EXT_LBLK_END;
  const l = <f64>lblk;
  if (!(l < top)) return EXT_ERR_RANGE;
  const n = usable(nodePtr);
  let a = 0;
  let b = n;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (load<u32>(entryAt(nodePtr, mid) + EE_BLOCK) <= lblk) a = mid + 1;
    else b = mid;
  }
  const i = a - 1;
  if (i >= 0) {
    const e = entryAt(nodePtr, i);
    const start = load<u32>(e + EE_BLOCK);
    const end = <f64>start + <f64>extLen(e);
    if (l < end) {
      const stop = end < top ? end : top; // defensive: a checked leaf has end ≤ top
      mapPhys = extPhys(e) + <f64>(lblk - start);
      mapLen = <u32>(stop - l);
      mapUnwritten = extIsUnwritten(e);
      mapIndex = i;
      return EXT_MAPPED;
    }
  }
  // Hole: up to the next extent's start, or the end of this leaf's range.
  let next = top;
  if (a < n) {
    const k = <f64>load<u32>(entryAt(nodePtr, a) + EE_BLOCK);
    if (k < next) next = k;
  }
  mapPhys = 0;
  mapLen = <u32>(next - l);
  mapUnwritten = false;
  mapIndex = a;
  return EXT_HOLE;
}

/** Physical block of lblk after EXT_MAPPED (0 after EXT_HOLE). */
export function extMapPhys(): f64 {
  return mapPhys;
}

/** Blocks from lblk to the end of its extent (mapped) or to the next extent / leaf end (hole); ≥ 1. */
export function extMapLen(): u32 {
  return mapLen;
}

/** True if the extent found by the last extLeafMap is unwritten (false for a hole). */
export function extMapUnwritten(): bool {
  return mapUnwritten;
}

/** Index of the extent holding lblk (mapped) or of the first extent after it (hole; may equal the count). */
export function extMapIndex(): i32 {
  return mapIndex;
}
