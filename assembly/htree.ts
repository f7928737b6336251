// Hash-indexed directories (htree), read side: validating index blocks and choosing the
// child to follow for a name's hash.
//
// Why an index: a linear directory costs a scan of every block per lookup. An htree
// directory keeps its entries in leaf blocks sorted by name hash (htree_hash.ts) and puts
// a one- to three-level index in front of them, so a lookup reads one block per level plus
// (usually) one leaf. The index lives inside ordinary directory blocks (see ondisk/dx.ts)
// so that linear readers see only "." and ".." and empty blocks; dir.ts reads leaves.
//
//   logical block 0: dx_root                       any other index block: dx_node
//   +--------------------------------+            +--------------------------------+
//   | "." inode, rec_len 12          | 0x00       | inode 0, rec_len = block size  | 0x00
//   | ".." inode, rec_len bs-12      | 0x0C       |   (one unused entry, the whole |
//   | info: 0, hash_version,         | 0x18       |    block looks free)           |
//   |       info_length 8, levels,   |            +--------------------------------+
//   |       flags                    |            | limit | count | block0          | 0x08
//   +--------------------------------+            | hash1 | block1                  |
//   | limit | count | block0         | 0x20       | hash2 | block2   ...            |
//   | hash1 | block1                 | 0x28       | (count entries; limit fit)      |
//   | hash2 | block2   ...           |            | [dx_tail: reserved, csum]       |
//   | [dx_tail: reserved, csum]      |            +--------------------------------+
//   +--------------------------------+
//
// Entry i covers the hashes from hash_i up to (not including) hash_{i+1}; entry 0 has no
// hash slot (that is where limit/count sit) and covers everything below hash_1. Blocks
// are logical block numbers within the directory (low 28 bits). indirect_levels in the
// root says how many dx_node levels lie below it: 0 → root entries point at leaves; 1 →
// at nodes whose entries point at leaves; 2 (only with INCOMPAT_LARGEDIR) → two node
// levels.
//
// Hash collisions and the "continued" bit: names are placed by their major hash (low bit
// always clear). When a leaf splits inside a run of equal hashes, the entry for the new
// leaf records that hash with bit 0 set, meaning "this leaf continues the previous one".
// The search compares full 32-bit values, so a lookup for hash H lands on the leaf *before*
// an entry holding H|1 — the first one that may hold H — and must then be prepared to walk
// forward.
//
// The lookup protocol for the caller (the bindings read the blocks):
//   1. version = dxEffectiveHashVersion(dxHashVersion(root), s_flags); levels =
//      dxRootCheck(root, bs, metadata_csum, dxMaxLevels(s_feature_incompat)); if < 0 the
//      index is unusable (Linux then falls back to a linear scan of all blocks).
//      h = dxHash(name, len, version, s_hash_seed).
//   2. path[0] = (root, DXR_ENTRIES, i = dxFind(root, bs, DXR_ENTRIES, h)); for each of
//      the `levels` node levels: read block dxEntryBlock(parent…, i) (check it is
//      non-zero and below the directory's size), dxNodeCheck it, path[k] = (node,
//      DXN_ENTRIES, dxFind(node, bs, DXN_ENTRIES, h)).
//   3. Read the leaf dxEntryBlock(path[last]); dirLookup in it. Found → done.
//   4. Not found: from the deepest level up, r = dxContinues(block, bs, off, i, h):
//      DX_NEXT_UP (2): no entry after i here — go up one level and ask again (none left
//      at the root → ENOENT); DX_NEXT_STOP (0): the next leaf starts another hash → ENOENT;
//      DX_NEXT_FOLLOW (1): advance i at that level, descend through the first entry
//      (index 0) of each lower node to a leaf, and go to 3.
// Every step either moves to a new leaf strictly to the right or stops, so the walk ends
// after at most (number of leaves) steps even on a corrupt index.
//
// Hostile input: dxRootCheck/dxNodeCheck validate the headers, count/limit and entry
// order; dxFind and the accessors re-check count and limit against the block size on
// every call, so even an unchecked block cannot make them read outside it.

import {
  DX_BLOCK, DX_BLOCK_MASK, DX_COUNT, DX_ENTRY_SIZE, DX_HASH, DX_HASH_LEGACY_UNSIGNED, DX_HASH_SIPHASH,
  DX_HASH_TEA, DX_LIMIT, DX_MAX_LEVELS, DX_MAX_LEVELS_LARGEDIR, DX_ROOT_INFO_SIZE, DXN_ENTRIES,
  DXN_FAKE_INODE, DXN_FAKE_NAME_LEN, DXN_FAKE_REC_LEN, DXR_DOT_INODE, DXR_DOT_NAME, DXR_DOT_NAME_LEN,
  DXR_DOT_REC_LEN, DXR_DOTDOT_INODE, DXR_DOTDOT_NAME, DXR_DOTDOT_NAME_LEN, DXR_DOTDOT_REC_LEN,
  DXR_ENTRIES, DXR_INFO_HASH_VERSION, DXR_INFO_INDIRECT_LEVELS, DXR_INFO_INFO_LENGTH,
  DXR_INFO_RESERVED_ZERO, DXR_INFO_UNUSED_FLAGS, DXT_SIZE,
} from "./ondisk/dx";
import { FEATURE_INCOMPAT_LARGEDIR, FLAGS_UNSIGNED_HASH } from "./ondisk/features";
import { dirBlockSizeValid } from "./dir";

/** Bad argument: block size, or an entries offset other than DXR_ENTRIES / DXN_ENTRIES. */
export const DX_ERR_ARG: i32 = -1;
/** The root's "." / ".." entries are not the fixed 12 / block-size-12 pair. */
export const DX_ERR_ROOT_DOTS: i32 = -2;
/** dx_root_info: reserved_zero != 0, info_length != 8, or an incompatible flag set. */
export const DX_ERR_ROOT_INFO: i32 = -3;
/** hash_version is not legacy, half_md4 or tea (3..5 never appear in a root). */
export const DX_ERR_HASH_VERSION: i32 = -4;
/** hash_version is siphash (casefold + encrypt), which we cannot compute. */
export const DX_ERR_HASH_UNSUPPORTED: i32 = -5;
/** indirect_levels >= maxLevels. */
export const DX_ERR_LEVELS: i32 = -6;
/** limit differs from the capacity implied by the block size and checksum tail. */
export const DX_ERR_LIMIT: i32 = -7;
/** count is 0 or above limit. */
export const DX_ERR_COUNT: i32 = -8;
/** An interior node does not start with an unused entry spanning the block. */
export const DX_ERR_NODE_HEADER: i32 = -9;
/** Entry hashes are not in non-decreasing order. */
export const DX_ERR_ORDER: i32 = -10;

/** dxContinues: the next entry starts a different hash; the name is not in the directory. */
export const DX_NEXT_STOP: i32 = 0;
/** dxContinues: the next entry continues this hash; follow it. */
export const DX_NEXT_FOLLOW: i32 = 1;
/** dxContinues: no entry after this one in this block; ask the parent level. */
export const DX_NEXT_UP: i32 = 2;

/** Returned by dxEntryBlock / dxEntryHash for an index outside [0, count). */
export const DX_BAD_ENTRY: u32 = 0xffffffff;

/** Entries a dx_root holds: (bs - 32) / 8, one fewer with a dx_tail (metadata_csum). */
export function dxRootLimit(blockSize: u32, hasCsum: bool): u32 {
  // "." (12) + ".." header and name (12) + dx_root_info (8) precede the entries.
  let space = blockSize - <u32>DXR_ENTRIES;
  if (hasCsum) space -= <u32>DXT_SIZE;
  return space / <u32>DX_ENTRY_SIZE;
}

/** Entries a dx_node holds: (bs - 8) / 8, one fewer with a dx_tail (metadata_csum). */
export function dxNodeLimit(blockSize: u32, hasCsum: bool): u32 {
  let space = blockSize - <u32>DXN_ENTRIES;
  if (hasCsum) space -= <u32>DXT_SIZE;
  return space / <u32>DX_ENTRY_SIZE;
}

/** Index levels allowed (indirect_levels + 1 must not exceed it), from s_feature_incompat. */
export function dxMaxLevels(featureIncompat: u32): u32 {
  return (featureIncompat & <u32>FEATURE_INCOMPAT_LARGEDIR) != 0 ? <u32>DX_MAX_LEVELS_LARGEDIR : <u32>DX_MAX_LEVELS;
}

/** The root's stored hash_version byte (0..2 in a valid root; see dxRootCheck). */
export function dxHashVersion(rootPtr: usize): u32 {
  return <u32>load<u8>(rootPtr + DXR_INFO_HASH_VERSION);
}

/**
 * The DX_HASH_* version to compute for a root's stored version: legacy/half_md4/tea
 * become their unsigned variants when s_flags has UNSIGNED_HASH (else signed, as on x86).
 */
export function dxEffectiveHashVersion(rootVersion: u32, sFlags: u32): u32 {
  if (rootVersion <= <u32>DX_HASH_TEA && (sFlags & <u32>FLAGS_UNSIGNED_HASH) != 0) {
    return rootVersion + <u32>DX_HASH_LEGACY_UNSIGNED;
  }
  return rootVersion;
}

// @ts-ignore: decorator
@inline function rawRecLen(p: usize, blockSize: u32): u32 {
  const raw = <u32>load<u16>(p);
  if (blockSize >= 65536 && (raw == 0 || raw == 65535)) return 65536;
  return raw;
}

// The count of the entries array at entriesOffset, or a negative DX_ERR_* if the offset
// is not one of the two legal ones, count is 0 or above limit, or the entries would not
// fit in the block. Every reader below goes through this before touching an entry.
function countOf(blockPtr: usize, blockSize: u32, entriesOffset: u32): i32 {
  if (!dirBlockSizeValid(blockSize)) return DX_ERR_ARG;
  if (entriesOffset != <u32>DXR_ENTRIES && entriesOffset != <u32>DXN_ENTRIES) return DX_ERR_ARG;
  const limit = <u32>load<u16>(blockPtr + <usize>entriesOffset + DX_LIMIT);
  const count = <u32>load<u16>(blockPtr + <usize>entriesOffset + DX_COUNT);
  if (count == 0 || count > limit) return DX_ERR_COUNT;
  if (entriesOffset + limit * <u32>DX_ENTRY_SIZE > blockSize) return DX_ERR_LIMIT;
  return <i32>count;
}

// @ts-ignore: decorator
@inline function hashAt(blockPtr: usize, entriesOffset: u32, i: u32): u32 {
  return load<u32>(blockPtr + <usize>(entriesOffset + i * <u32>DX_ENTRY_SIZE) + DX_HASH);
}

// Shared tail of the root and node checks: limit, count and ordering.
function checkEntries(blockPtr: usize, blockSize: u32, entriesOffset: u32, expectLimit: u32): i32 {
  if (<u32>load<u16>(blockPtr + <usize>entriesOffset + DX_LIMIT) != expectLimit) return DX_ERR_LIMIT;
  const count = countOf(blockPtr, blockSize, entriesOffset);
  if (count < 0) return count;
  for (let i: u32 = 2; i < <u32>count; i++) {
    if (hashAt(blockPtr, entriesOffset, i) < hashAt(blockPtr, entriesOffset, i - 1)) return DX_ERR_ORDER;
  }
  return 0;
}

/**
 * Validate a dx_root block; maxLevels is dxMaxLevels(...) (2, or 3 with largedir).
 * Returns indirect_levels (>= 0) or a negative DX_ERR_* code.
 */
export function dxRootCheck(blockPtr: usize, blockSize: u32, hasCsum: bool, maxLevels: u32): i32 {
  if (!dirBlockSizeValid(blockSize)) return DX_ERR_ARG;
  if (load<u32>(blockPtr + DXR_DOT_INODE) == 0 || rawRecLen(blockPtr + DXR_DOT_REC_LEN, blockSize) != 12 ||
      load<u8>(blockPtr + DXR_DOT_NAME_LEN) != 1 || load<u8>(blockPtr + DXR_DOT_NAME) != 0x2e) {
    return DX_ERR_ROOT_DOTS;
  }
  if (load<u32>(blockPtr + DXR_DOTDOT_INODE) == 0 ||
      rawRecLen(blockPtr + DXR_DOTDOT_REC_LEN, blockSize) != blockSize - 12 ||
      load<u8>(blockPtr + DXR_DOTDOT_NAME_LEN) != 2 || load<u8>(blockPtr + DXR_DOTDOT_NAME) != 0x2e ||
      load<u8>(blockPtr + DXR_DOTDOT_NAME + 1) != 0x2e) {
    return DX_ERR_ROOT_DOTS;
  }
  // Bit 0 of unused_flags is the one flag Linux treats as incompatible.
  if (load<u32>(blockPtr + DXR_INFO_RESERVED_ZERO) != 0 ||
      <i32>load<u8>(blockPtr + DXR_INFO_INFO_LENGTH) != DX_ROOT_INFO_SIZE ||
      (load<u8>(blockPtr + DXR_INFO_UNUSED_FLAGS) & 1) != 0) {
    return DX_ERR_ROOT_INFO;
  }
  const version = dxHashVersion(blockPtr);
  if (version == <u32>DX_HASH_SIPHASH) return DX_ERR_HASH_UNSUPPORTED;
  if (version > <u32>DX_HASH_TEA) return DX_ERR_HASH_VERSION;
  const levels = <u32>load<u8>(blockPtr + DXR_INFO_INDIRECT_LEVELS);
  const max = maxLevels < <u32>DX_MAX_LEVELS_LARGEDIR ? maxLevels : <u32>DX_MAX_LEVELS_LARGEDIR;
  if (levels >= max) return DX_ERR_LEVELS;
  const r = checkEntries(blockPtr, blockSize, <u32>DXR_ENTRIES, dxRootLimit(blockSize, hasCsum));
  if (r < 0) return r;
  return <i32>levels;
}

/** Validate a dx_node (interior index) block: 0 or a negative DX_ERR_* code. */
export function dxNodeCheck(blockPtr: usize, blockSize: u32, hasCsum: bool): i32 {
  if (!dirBlockSizeValid(blockSize)) return DX_ERR_ARG;
  if (load<u32>(blockPtr + DXN_FAKE_INODE) != 0 || rawRecLen(blockPtr + DXN_FAKE_REC_LEN, blockSize) != blockSize ||
      load<u8>(blockPtr + DXN_FAKE_NAME_LEN) != 0) {
    return DX_ERR_NODE_HEADER;
  }
  return checkEntries(blockPtr, blockSize, <u32>DXN_ENTRIES, dxNodeLimit(blockSize, hasCsum));
}

/** count of the entries at entriesOffset (DXR_ENTRIES or DXN_ENTRIES), or a DX_ERR_*. */
export function dxCount(blockPtr: usize, blockSize: u32, entriesOffset: u32): i32 {
  return countOf(blockPtr, blockSize, entriesOffset);
}

/**
 * Index of the entry whose hash range holds `hash`: the last i with i == 0 or
 * hash_i <= hash (binary search; full 32-bit compare), or a negative DX_ERR_*.
 */
export function dxFind(blockPtr: usize, blockSize: u32, entriesOffset: u32, hash: u32): i32 {
  const count = countOf(blockPtr, blockSize, entriesOffset);
  if (count < 0) return count;
  // Invariant: the answer lies in [lo, hi]; entry 0 always qualifies.
  let lo: u32 = 0;
  let hi: u32 = <u32>count - 1;
  while (lo < hi) {
    const mid = lo + ((hi - lo + 1) >>> 1);
    if (hashAt(blockPtr, entriesOffset, mid) <= hash) lo = mid;
    else hi = mid - 1;
  }
  return <i32>lo;
}

/** Logical block (low 28 bits) of entry `index`, or DX_BAD_ENTRY if index >= count. */
export function dxEntryBlock(blockPtr: usize, blockSize: u32, entriesOffset: u32, index: u32): u32 {
  const count = countOf(blockPtr, blockSize, entriesOffset);
  if (count < 0 || index >= <u32>count) return DX_BAD_ENTRY;
  const v = load<u32>(blockPtr + <usize>(entriesOffset + index * <u32>DX_ENTRY_SIZE) + DX_BLOCK);
  return v & <u32>DX_BLOCK_MASK;
}

/** Stored hash of entry `index` (0 for entry 0), or DX_BAD_ENTRY if index >= count. */
export function dxEntryHash(blockPtr: usize, blockSize: u32, entriesOffset: u32, index: u32): u32 {
  const count = countOf(blockPtr, blockSize, entriesOffset);
  if (count < 0 || index >= <u32>count) return DX_BAD_ENTRY;
  return index == 0 ? 0 : hashAt(blockPtr, entriesOffset, index);
}

/**
 * After a miss in the subtree of entry `index`, may the name (major hash `hash`) be further
 * right? DX_NEXT_FOLLOW if entry index+1 exists and its hash minus the continued bit is
 * `hash`, DX_NEXT_STOP if it exists and is another hash, DX_NEXT_UP if index is the last
 * entry of this block, or a negative DX_ERR_*.
 */
export function dxContinues(blockPtr: usize, blockSize: u32, entriesOffset: u32, index: u32, hash: u32): i32 {
  const count = countOf(blockPtr, blockSize, entriesOffset);
  if (count < 0) return count;
  if (index >= <u32>count) return DX_ERR_ARG;
  if (index + 1 == <u32>count) return DX_NEXT_UP;
  const next = hashAt(blockPtr, entriesOffset, index + 1);
  return (next & ~(<u32>1)) == (hash & ~(<u32>1)) ? DX_NEXT_FOLLOW : DX_NEXT_STOP;
}
