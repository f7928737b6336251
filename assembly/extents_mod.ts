// Extent-tree modification, one node at a time: the engine half of growing, shrinking
// and converting a file's block map. The walker in bindings/fs/extent_tree.ts loads the
// nodes (through a transaction handle), validates them with the read side
// (extents.ts: extNodeCheck + checksum), and calls these functions on one or two nodes at
// a time; the engine never follows a child pointer and never does I/O.
//
// Why node-at-a-time, again: a whole operation (insert with splits up to the root, a
// truncate spanning a thousand leaves) needs reads that only the bindings can wait for.
// So every function here is a single, self-contained change of at most two nodes, and
// each either completes or returns an error having changed nothing. The walker composes
// them: "this leaf is full" → split it (or first its full parents, or grow the root) →
// walk again → retry. Retrying from a fresh walk keeps the walker free of path-fixing
// logic: after each step the tree is a valid tree.
//
// The operations (node layout in extents.ts and ondisk/extent.ts):
//
//   leaf ops (depth 0)        extLeafInsert    one extent, merging with its neighbours
//                             extLeafRemove    drop [from, to): trims, splits, reports runs to free
//                             extLeafConvert   written ↔ unwritten over [from, to), splitting
//                                              extents into up to three and merging after
//   index ops (depth > 0)     extIndexInsert / extIndexRemove / extIndexSetKey
//   structure                 extNodeInit      empty node of a depth, eh_max for its size
//                             extNodeSplit     move entries [at, n) of a full block to a new one
//                             extRootGrow      move i_block's entries into a new child block;
//                                              the root becomes one index entry, depth + 1
//                             extNodeAppend    concatenate a child into the root (collapse)
//                             extLeafCompact   merge what became neighbours after a collapse
//
//   split (parent gains an entry for the new node; keys: K0 < Ka)
//     parent [.. K0 ..]            parent [.. K0 Ka ..]
//              |            →               |    \
//     node [K0 .. Ka .. Kn-1]       node [K0 ..]  new [Ka .. Kn-1]
//
//   grow (the in-inode root, 4 entries, is full)
//     i_block [d | e0 e1 e2 e3]  →  i_block [d+1 | K(e0)→B]   block B [d | e0 e1 e2 e3 …room]
//
// Merging: two extents next to each other in a leaf become one when they are logically
// and physically contiguous, in the same state (written/unwritten), and the sum fits the
// state's limit (32768 written, 32767 unwritten). Inserts merge the new extent with
// its left and/or right neighbour; conversion merges each converted piece with whatever
// touches it. That is what keeps many small writes into preallocated (unwritten) space
// from leaving one extent per write. Merges stay inside one leaf: across a leaf boundary
// two extents that could have been one may stay apart — one extent more, never a wrong
// mapping.
//
// First keys: a non-root node's first key must equal the key its parent holds for it
// (extNodeCheck refuses anything else). Any change that moves entry 0's start reports it
// (extModFirstChanged / extModFirstKey); the walker then rewrites the parent's key, and
// the grandparent's if the parent's own entry 0 changed, and so on up.
//
// Trust: every node passed in is re-checked structurally here (magic, eh_max within the
// node, entries ≤ eh_max, depth kind, keys ordered, lengths non-zero) before anything is
// moved, so a hostile node yields an EXT_ERR_* code, never a write outside it. The
// walker has already run extNodeCheck (ranges, physical bounds) on every block it loaded.
//
// Results: module globals read back with the extMod* getters right after the call (one
// volume per engine instance, one call at a time). Physical blocks cross as f64 (48-bit,
// exact); logical blocks as u32 (JS: `>>> 0`); an exclusive logical end may be 2^32 and
// crosses as f64.
//
// Scratch: remove and convert rebuild the leaf's entry list in a scratch area and copy
// it back only if it fits eh_max. The bindings allocate that area once per engine
// (extModScratchBytes(blockSize) bytes, through memAlloc) and register it with
// extModSetScratch; a static area would not fit the module's initial memory. Layout for
// a leaf of capacity c (c = 5460 at most, for 65536-byte blocks):
//
//   [ pieces: (2c + 8) × 16 bytes ][ freed runs: (c + 2) × 16 bytes ]
//   piece: +0 lblk u32  +4 len u16 (1..32768)  +6 flags u8 (1 unwritten, 2 touched)  +8 phys u64
//   freed: +0 phys f64  +8 len u32
//
// Conversion can at most double the pieces (each written 32768-block extent becomes two
// unwritten ones) plus two edge splits; removal frees at most one run per extent.

import {
  EE_SIZE, EH_DEPTH, EH_ENTRIES, EH_GENERATION, EH_MAGIC, EH_MAX, EI_BLOCK, EXT4_EXT_MAGIC, EXT_MAX_DEPTH,
} from "./ondisk/extent";
import { I_BLOCK_SIZE } from "./ondisk/inode";
import {
  PHYS_LIMIT, countOf, depthOf, entAt, keyOf, lenOf, maxLenFor, maxOf, physOf, setExtent, setIndex, unwOf, validPhys,
} from "./extents_node";
import {
  EXT_ERR_DEPTH, EXT_ERR_ENTRIES, EXT_ERR_LEN, EXT_ERR_MAGIC, EXT_ERR_MAX, EXT_ERR_ORDER, EXT_ERR_RANGE,
  EXT_LBLK_END, extNodeCapacity,
} from "./extents";

/** The node has no room for the change (nothing was modified): split it first. */
export const EXT_MOD_FULL: i32 = -20;
/** The new extent / key overlaps an existing one, or crosses the node's upper bound. */
export const EXT_MOD_OVERLAP: i32 = -21;
/** An argument is out of range (length, block number, index, split point, node kind). */
export const EXT_MOD_ARG: i32 = -22;
/** No scratch area registered, or too small for this node size (see extModSetScratch). */
export const EXT_MOD_SCRATCH: i32 = -24;
/** The root is already at the deepest level ext4 allows (5): the tree cannot grow. */
export const EXT_MOD_DEPTH: i32 = -23;

const LBLK_LIMIT: f64 = 4294967296.0; // exclusive logical end may be 2^32

const SCRATCH_ENT: usize = 16;
const S_LBLK: usize = 0;
const S_LEN: usize = 4;
const S_FLAGS: usize = 6;
const S_PHYS: usize = 8;
const F_UNW: u8 = 1;
const F_TOUCHED: u8 = 2;

// The registered scratch area, and where the freed runs of the current node size start.
let scratch: usize = 0;
let scratchBytes: usize = 0;
let freed: usize = 0;

// Results of the last call.
let rFirstChanged = false;
let rFirstKey: u32 = 0;
let rPos: i32 = -1;
let rMerges: i32 = 0;
let rChanged = false;
let rFreedCount: i32 = 0;
let rFreedBlocks: f64 = 0;
let rConverted: f64 = 0;

function resetResults(): void {
  rFirstChanged = false;
  rFirstKey = 0;
  rPos = -1;
  rMerges = 0;
  rChanged = false;
  rFreedCount = 0;
  rFreedBlocks = 0;
  rConverted = 0;
}

// ── structural check ──────────────────────────────────────────────────────────────────

const WANT_ANY: i32 = -1;
const WANT_LEAF: i32 = 0;
const WANT_INDEX: i32 = 1;

// Everything the modifiers rely on before moving bytes: the header fits the node, the
// entries are in order. Returns 0 or an EXT_ERR_* / EXT_MOD_ARG code.
function nodeOk(node: usize, nodeSize: u32, want: i32): i32 {
  const cap = extNodeCapacity(nodeSize);
  if (cap < 0) return cap;
  if (<i32>load<u16>(node + EH_MAGIC) != EXT4_EXT_MAGIC) return EXT_ERR_MAGIC;
  const depth = depthOf(node);
  if (depth > EXT_MAX_DEPTH) return EXT_ERR_DEPTH;
  if (want == WANT_LEAF && depth != 0) return EXT_ERR_DEPTH;
  if (want == WANT_INDEX && depth == 0) return EXT_ERR_DEPTH;
  const max = maxOf(node);
  if (max == 0 || max > cap) return EXT_ERR_MAX;
  const n = countOf(node);
  if (n > max) return EXT_ERR_ENTRIES;
  let prevEnd: f64 = -1;
  for (let i = 0; i < n; i++) {
    const e = entAt(node, i);
    const key = <f64>keyOf(e);
    if (depth > 0) {
      if (key <= prevEnd) return EXT_ERR_ORDER;
      prevEnd = key;
    } else {
      const len = lenOf(e);
      if (len == 0) return EXT_ERR_LEN;
      if (key < prevEnd) return EXT_ERR_ORDER;
      prevEnd = key + <f64>len;
      if (prevEnd > EXT_LBLK_END) return EXT_ERR_RANGE;
    }
  }
  return 0;
}

// First index whose key is > lblk (so i - 1 is the last entry starting at or before lblk).
function upperBound(node: usize, n: i32, lblk: u32): i32 {
  let a = 0;
  let b = n;
  while (a < b) {
    const mid = (a + b) >>> 1;
    if (keyOf(entAt(node, mid)) <= lblk) a = mid + 1;
    else b = mid;
  }
  return a;
}

/** Entries of a node (header only, no check). */
export function extNodeCount(nodePtr: usize): i32 {
  return countOf(nodePtr);
}

/** Depth of a node (header only, no check). */
export function extNodeDepth(nodePtr: usize): i32 {
  return depthOf(nodePtr);
}

/** Free entry slots (eh_max - eh_entries) of a structurally valid node, or an EXT_ERR_* code. */
export function extNodeRoom(nodePtr: usize, nodeSize: u32): i32 {
  const rc = nodeOk(nodePtr, nodeSize, WANT_ANY);
  if (rc < 0) return rc;
  return maxOf(nodePtr) - countOf(nodePtr);
}

/**
 * Make nodePtr (nodeSize bytes) an empty node of `depth`, eh_max = the node's capacity
 * (or `maxEntries` if 0 < maxEntries < capacity), the rest zeroed. Returns eh_max or an
 * error code.
 */
export function extNodeInit(nodePtr: usize, nodeSize: u32, depth: i32, maxEntries: i32): i32 {
  const cap = extNodeCapacity(nodeSize);
  if (cap < 0) return cap;
  if (depth < 0 || depth > EXT_MAX_DEPTH) return EXT_MOD_ARG;
  const max = maxEntries > 0 && maxEntries < cap ? maxEntries : cap;
  memory.fill(nodePtr, 0, <usize>nodeSize);
  store<u16>(nodePtr + EH_MAGIC, <u16>EXT4_EXT_MAGIC);
  store<u16>(nodePtr + EH_ENTRIES, 0);
  store<u16>(nodePtr + EH_MAX, <u16>max);
  store<u16>(nodePtr + EH_DEPTH, <u16>depth);
  store<u32>(nodePtr + EH_GENERATION, 0);
  return max;
}

// ── leaf: insert ──────────────────────────────────────────────────────────────────────

/**
 * Insert extent [lblk, lblk+len) → phys into a leaf whose logical range ends at `hi`,
 * merging with the neighbour(s) when contiguous in the same state. Returns the index of
 * the entry now covering lblk; EXT_MOD_OVERLAP if the range overlaps an extent or
 * passes `hi`; EXT_MOD_FULL if it needs a slot and the leaf has none (extModPos tells
 * where it would go); EXT_MOD_ARG / EXT_ERR_* otherwise. Nothing changes on error.
 */
export function extLeafInsert(
  nodePtr: usize, nodeSize: u32, hi: f64, lblk: u32, phys: f64, len: u32, unwritten: bool,
): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_LEAF);
  if (rc < 0) return rc;
  const maxLen = maxLenFor(unwritten);
  if (len == 0 || len > maxLen) return EXT_MOD_ARG;
  if (!validPhys(phys) || phys + <f64>len > PHYS_LIMIT) return EXT_MOD_ARG;
  if (hi != hi) return EXT_MOD_ARG;
  const end = <f64>lblk + <f64>len;
  if (end > EXT_LBLK_END) return EXT_MOD_ARG;
  if (end > hi) return EXT_MOD_OVERLAP;

  const n = countOf(nodePtr);
  const pos = upperBound(nodePtr, n, lblk);
  rPos = pos;
  const p = <u64>phys;
  let canLeft = false;
  let canRight = false;
  let leftLen: u32 = 0;
  let rightLen: u32 = 0;
  if (pos > 0) {
    const l = entAt(nodePtr, pos - 1);
    leftLen = lenOf(l);
    if (<f64>keyOf(l) + <f64>leftLen > <f64>lblk) return EXT_MOD_OVERLAP;
    canLeft = unwOf(l) == unwritten && keyOf(l) + leftLen == lblk && physOf(l) + <u64>leftLen == p;
  }
  if (pos < n) {
    const r = entAt(nodePtr, pos);
    if (<f64>keyOf(r) < end) return EXT_MOD_OVERLAP;
    rightLen = lenOf(r);
    canRight = unwOf(r) == unwritten && <f64>keyOf(r) == end && physOf(r) == p + <u64>len;
  }

  if (canLeft && canRight && leftLen + len + rightLen <= maxLen) {
    const l = entAt(nodePtr, pos - 1);
    setExtent(l, keyOf(l), leftLen + len + rightLen, physOf(l), unwritten);
    // Drop the right neighbour: entries pos+1.. slide down one slot.
    memory.copy(entAt(nodePtr, pos), entAt(nodePtr, pos + 1), <usize>(n - pos - 1) * <usize>EE_SIZE);
    memory.fill(entAt(nodePtr, n - 1), 0, <usize>EE_SIZE);
    store<u16>(nodePtr + EH_ENTRIES, <u16>(n - 1));
    rMerges = 2;
    rChanged = true;
    rFirstKey = keyOf(entAt(nodePtr, 0));
    return pos - 1;
  }
  if (canLeft && leftLen + len <= maxLen) {
    const l = entAt(nodePtr, pos - 1);
    setExtent(l, keyOf(l), leftLen + len, physOf(l), unwritten);
    rMerges = 1;
    rChanged = true;
    rFirstKey = keyOf(entAt(nodePtr, 0));
    return pos - 1;
  }
  if (canRight && rightLen + len <= maxLen) {
    setExtent(entAt(nodePtr, pos), lblk, rightLen + len, p, unwritten);
    rMerges = 1;
    rChanged = true;
    rFirstChanged = pos == 0;
    rFirstKey = keyOf(entAt(nodePtr, 0));
    return pos;
  }
  if (n >= maxOf(nodePtr)) return EXT_MOD_FULL;
  memory.copy(entAt(nodePtr, pos + 1), entAt(nodePtr, pos), <usize>(n - pos) * <usize>EE_SIZE);
  setExtent(entAt(nodePtr, pos), lblk, len, p, unwritten);
  store<u16>(nodePtr + EH_ENTRIES, <u16>(n + 1));
  rChanged = true;
  rFirstChanged = pos == 0;
  rFirstKey = keyOf(entAt(nodePtr, 0));
  return pos;
}

// ── leaf: rebuild through scratch (remove, convert) ───────────────────────────────────

/** Bytes of scratch the remove/convert operations need for nodes of nodeSize bytes; 0 for a bad size. */
export function extModScratchBytes(nodeSize: u32): u32 {
  const cap = extNodeCapacity(nodeSize);
  if (cap < 0) return 0;
  return <u32>(2 * cap + 8 + cap + 2) * <u32>SCRATCH_ENT;
}

/** Register the scratch area (allocated once by the bindings; must stay valid). */
export function extModSetScratch(ptr: usize, bytes: u32): void {
  scratch = ptr;
  scratchBytes = <usize>bytes;
}

// Point `freed` past the pieces for this node size; false if the area is missing or short.
function scratchFor(nodeSize: u32): bool {
  const cap = extNodeCapacity(nodeSize);
  if (cap < 0 || scratch == 0) return false;
  if (<usize>extModScratchBytes(nodeSize) > scratchBytes) return false;
  freed = scratch + <usize>(2 * cap + 8) * SCRATCH_ENT;
  return true;
}

// @ts-ignore: decorator
@inline function sAt(i: i32): usize {
  return scratch + <usize>i * SCRATCH_ENT;
}

function sPush(i: i32, lblk: u32, len: u32, phys: u64, flags: u8): i32 {
  const s = sAt(i);
  store<u32>(s + S_LBLK, lblk);
  store<u16>(s + S_LEN, <u16>len);
  store<u8>(s + S_FLAGS, flags);
  store<u64>(s + S_PHYS, phys);
  return i + 1;
}

// Copy scratch[0, m) into the leaf (m ≤ eh_max checked by the caller), zero the rest.
function sCommit(nodePtr: usize, m: i32, oldN: i32): void {
  for (let i = 0; i < m; i++) {
    const s = sAt(i);
    setExtent(entAt(nodePtr, i), load<u32>(s + S_LBLK), <u32>load<u16>(s + S_LEN), load<u64>(s + S_PHYS),
      (load<u8>(s + S_FLAGS) & F_UNW) != 0);
  }
  if (oldN > m) memory.fill(entAt(nodePtr, m), 0, <usize>(oldN - m) * <usize>EE_SIZE);
  store<u16>(nodePtr + EH_ENTRIES, <u16>m);
}

/**
 * Remove logical blocks [from, to) (to ≤ 2^32, exclusive) from a leaf: extents inside go,
 * extents straddling an edge are trimmed, an extent containing the whole range is split
 * in two (needs one free slot: EXT_MOD_FULL otherwise, nothing changed). Returns the
 * entries left; the physical runs to free (contiguous ones joined) are
 * extModFreedCount/Phys/Len.
 */
export function extLeafRemove(nodePtr: usize, nodeSize: u32, from: u32, to: f64): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_LEAF);
  if (rc < 0) return rc;
  if (!scratchFor(nodeSize)) return EXT_MOD_SCRATCH;
  if (!(to <= LBLK_LIMIT) || to != Math.floor(to)) return EXT_MOD_ARG;
  const lo = <f64>from;
  const n = countOf(nodePtr);
  if (!(to > lo)) return n;
  let m = 0;
  let f = 0;
  for (let i = 0; i < n; i++) {
    const e = entAt(nodePtr, i);
    const s = <f64>keyOf(e);
    const len = lenOf(e);
    const end = s + <f64>len;
    const phys = physOf(e);
    const fl: u8 = unwOf(e) ? F_UNW : 0;
    const a = s > lo ? s : lo;
    const b = end < to ? end : to;
    if (a >= b) {
      m = sPush(m, <u32>s, len, phys, fl);
      continue;
    }
    // Physically contiguous runs are joined here, so a file written in order is freed
    // with one allocator call per leaf instead of one per extent (big unlinks, inodegc).
    // A joined run stays below 2^32: a leaf holds ≤ cap extents of ≤ 32768 blocks.
    const fp = <f64>phys + (a - s);
    if (f > 0 && load<f64>(freed + <usize>(f - 1) * 16) + <f64>load<u32>(freed + <usize>(f - 1) * 16 + 8) == fp) {
      store<u32>(freed + <usize>(f - 1) * 16 + 8, load<u32>(freed + <usize>(f - 1) * 16 + 8) + <u32>(b - a));
    } else {
      // Bounded: at most one freed run per extent, n ≤ eh_max ≤ cap < the cap + 2 slots.
      store<f64>(freed + <usize>f * 16, fp);
      store<u32>(freed + <usize>f * 16 + 8, <u32>(b - a));
      f++;
    }
    rFreedBlocks += b - a;
    if (s < a) m = sPush(m, <u32>s, <u32>(a - s), phys, fl);
    if (b < end) m = sPush(m, <u32>b, <u32>(end - b), phys + <u64>(b - s), fl);
  }
  if (f == 0) return n;
  if (m > maxOf(nodePtr)) {
    rFreedBlocks = 0;
    rPos = upperBound(nodePtr, n, from);
    return EXT_MOD_FULL;
  }
  const oldFirst = n > 0 ? keyOf(entAt(nodePtr, 0)) : 0;
  sCommit(nodePtr, m, n);
  rFreedCount = f;
  rChanged = true;
  if (m > 0) {
    rFirstKey = keyOf(entAt(nodePtr, 0));
    rFirstChanged = rFirstKey != oldFirst;
  }
  return m;
}

/**
 * Set [from, to) of a leaf to written (toUnwritten false) or unwritten: extents in the
 * other state are split at the range's edges (into up to three), the pieces inside flip,
 * then every piece that changed is merged with contiguous neighbours in the same state
 * (within the length limits). Holes in the range are left alone. Returns the entries
 * after; EXT_MOD_FULL (nothing changed) if the result does not fit eh_max.
 * extModConverted = blocks flipped, extModMerges = merges done.
 */
export function extLeafConvert(nodePtr: usize, nodeSize: u32, from: u32, to: f64, toUnwritten: bool): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_LEAF);
  if (rc < 0) return rc;
  if (!scratchFor(nodeSize)) return EXT_MOD_SCRATCH;
  if (!(to <= LBLK_LIMIT) || to != Math.floor(to)) return EXT_MOD_ARG;
  const lo = <f64>from;
  const n = countOf(nodePtr);
  if (!(to > lo)) return n;
  const target: u8 = toUnwritten ? F_UNW : 0;
  const targetMax = maxLenFor(toUnwritten);
  // Pass 1: pieces into scratch[0, m). At most 2n + 2 < 2·cap + 8 slots (see the essay).
  let m = 0;
  let flipped: f64 = 0;
  for (let i = 0; i < n; i++) {
    const e = entAt(nodePtr, i);
    const s = <f64>keyOf(e);
    const len = lenOf(e);
    const end = s + <f64>len;
    const phys = physOf(e);
    const fl: u8 = unwOf(e) ? F_UNW : 0;
    const a = s > lo ? s : lo;
    const b = end < to ? end : to;
    if (a >= b || fl == target) {
      m = sPush(m, <u32>s, len, phys, fl);
      continue;
    }
    if (s < a) m = sPush(m, <u32>s, <u32>(a - s), phys, fl);
    // The flipped middle, cut to the target state's limit (a 32768-block written extent
    // becomes 32767 + 1 unwritten).
    let c = a;
    while (c < b) {
      const rest = b - c;
      const piece = rest < <f64>targetMax ? rest : <f64>targetMax;
      m = sPush(m, <u32>c, <u32>piece, phys + <u64>(c - s), target | F_TOUCHED);
      c += piece;
    }
    flipped += b - a;
    if (b < end) m = sPush(m, <u32>b, <u32>(end - b), phys + <u64>(b - s), fl);
  }
  if (flipped == 0) return n;
  // Pass 2: merge in place in scratch; w is the last kept piece.
  let w = 0;
  let merges = 0;
  for (let r = 1; r < m; r++) {
    const k = sAt(w);
    const c = sAt(r);
    const kf = load<u8>(k + S_FLAGS);
    const cf = load<u8>(c + S_FLAGS);
    const kLen = <u32>load<u16>(k + S_LEN);
    const cLen = <u32>load<u16>(c + S_LEN);
    const unw = (kf & F_UNW) != 0;
    const joinable = ((kf | cf) & F_TOUCHED) != 0 &&
      (kf & F_UNW) == (cf & F_UNW) &&
      <u64>load<u32>(k + S_LBLK) + <u64>kLen == <u64>load<u32>(c + S_LBLK) &&
      load<u64>(k + S_PHYS) + <u64>kLen == load<u64>(c + S_PHYS) &&
      kLen + cLen <= maxLenFor(unw);
    if (joinable) {
      store<u16>(k + S_LEN, <u16>(kLen + cLen));
      store<u8>(k + S_FLAGS, kf | F_TOUCHED);
      merges++;
    } else {
      w++;
      if (w != r) memory.copy(sAt(w), c, SCRATCH_ENT);
    }
  }
  const out = m > 0 ? w + 1 : 0;
  if (out > maxOf(nodePtr)) {
    rPos = upperBound(nodePtr, n, from);
    return EXT_MOD_FULL;
  }
  sCommit(nodePtr, out, n);
  rConverted = flipped;
  rMerges = merges;
  rChanged = true;
  rFirstKey = out > 0 ? keyOf(entAt(nodePtr, 0)) : 0;
  return out;
}

/**
 * Merge every pair of neighbouring extents of a leaf that could be one (contiguous in
 * both spaces, same state, within the limit) — for a root that has just absorbed its
 * children, whose extents came from different leaves. Returns the entries after.
 */
export function extLeafCompact(nodePtr: usize, nodeSize: u32): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_LEAF);
  if (rc < 0) return rc;
  const n = countOf(nodePtr);
  if (n == 0) return 0;
  let w = 0;
  let merges = 0;
  for (let r = 1; r < n; r++) {
    const k = entAt(nodePtr, w);
    const c = entAt(nodePtr, r);
    const kLen = lenOf(k);
    const cLen = lenOf(c);
    const unw = unwOf(k);
    if (unwOf(c) == unw && <u64>keyOf(k) + <u64>kLen == <u64>keyOf(c) &&
      physOf(k) + <u64>kLen == physOf(c) && kLen + cLen <= maxLenFor(unw)) {
      setExtent(k, keyOf(k), kLen + cLen, physOf(k), unw);
      merges++;
    } else {
      w++;
      if (w != r) memory.copy(entAt(nodePtr, w), c, <usize>EE_SIZE);
    }
  }
  if (merges > 0) {
    memory.fill(entAt(nodePtr, w + 1), 0, <usize>(n - w - 1) * <usize>EE_SIZE);
    store<u16>(nodePtr + EH_ENTRIES, <u16>(w + 1));
    rChanged = true;
  }
  rMerges = merges;
  rFirstKey = keyOf(entAt(nodePtr, 0));
  return w + 1;
}

// ── index nodes ───────────────────────────────────────────────────────────────────────

/**
 * Insert index entry (key → child block) into an index node with room, keeping keys
 * strictly increasing. Returns its position; EXT_MOD_OVERLAP for a duplicate key,
 * EXT_MOD_FULL if the node is full.
 */
export function extIndexInsert(nodePtr: usize, nodeSize: u32, key: u32, child: f64): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_INDEX);
  if (rc < 0) return rc;
  if (!validPhys(child)) return EXT_MOD_ARG;
  const n = countOf(nodePtr);
  const pos = upperBound(nodePtr, n, key);
  rPos = pos;
  if (pos > 0 && keyOf(entAt(nodePtr, pos - 1)) == key) return EXT_MOD_OVERLAP;
  if (n >= maxOf(nodePtr)) return EXT_MOD_FULL;
  memory.copy(entAt(nodePtr, pos + 1), entAt(nodePtr, pos), <usize>(n - pos) * <usize>EE_SIZE);
  setIndex(entAt(nodePtr, pos), key, <u64>child);
  store<u16>(nodePtr + EH_ENTRIES, <u16>(n + 1));
  rChanged = true;
  rFirstChanged = pos == 0;
  rFirstKey = keyOf(entAt(nodePtr, 0));
  return pos;
}

/** Remove index entry i. Returns the entries left (0 is allowed: the caller frees or resets the node). */
export function extIndexRemove(nodePtr: usize, nodeSize: u32, i: i32): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_INDEX);
  if (rc < 0) return rc;
  const n = countOf(nodePtr);
  if (i < 0 || i >= n) return EXT_MOD_ARG;
  memory.copy(entAt(nodePtr, i), entAt(nodePtr, i + 1), <usize>(n - i - 1) * <usize>EE_SIZE);
  memory.fill(entAt(nodePtr, n - 1), 0, <usize>EE_SIZE);
  store<u16>(nodePtr + EH_ENTRIES, <u16>(n - 1));
  rChanged = true;
  if (n - 1 > 0) {
    rFirstKey = keyOf(entAt(nodePtr, 0));
    rFirstChanged = i == 0;
  }
  return n - 1;
}

/** Set the key of index entry i; it must stay strictly between its neighbours' keys (EXT_ERR_ORDER otherwise). Returns 0. */
export function extIndexSetKey(nodePtr: usize, nodeSize: u32, i: i32, key: u32): i32 {
  resetResults();
  const rc = nodeOk(nodePtr, nodeSize, WANT_INDEX);
  if (rc < 0) return rc;
  const n = countOf(nodePtr);
  if (i < 0 || i >= n) return EXT_MOD_ARG;
  if (i > 0 && keyOf(entAt(nodePtr, i - 1)) >= key) return EXT_ERR_ORDER;
  if (i + 1 < n && keyOf(entAt(nodePtr, i + 1)) <= key) return EXT_ERR_ORDER;
  store<u32>(entAt(nodePtr, i) + EI_BLOCK, key);
  rChanged = true;
  rFirstChanged = i == 0;
  rFirstKey = keyOf(entAt(nodePtr, 0));
  return 0;
}

// ── structure ─────────────────────────────────────────────────────────────────────────

/**
 * Split a tree block: entries [at, n) of src move to dst (a fresh buffer of dstSize,
 * initialised here with src's depth and eh_max). 1 ≤ at < n; the root (nodeSize 60)
 * cannot be split, grow it instead. Returns the entries moved; extModFirstKey = dst's
 * first key (the key its parent must hold).
 */
export function extNodeSplit(src: usize, srcSize: u32, dst: usize, dstSize: u32, at: i32): i32 {
  resetResults();
  if (srcSize == <u32>I_BLOCK_SIZE) return EXT_MOD_ARG;
  const rc = nodeOk(src, srcSize, WANT_ANY);
  if (rc < 0) return rc;
  const n = countOf(src);
  if (at < 1 || at >= n) return EXT_MOD_ARG;
  const dcap = extNodeCapacity(dstSize);
  if (dcap < 0 || dstSize == <u32>I_BLOCK_SIZE) return EXT_MOD_ARG;
  const move = n - at;
  const max = maxOf(src) < dcap ? maxOf(src) : dcap;
  if (move > max) return EXT_MOD_ARG;
  if (src == dst) return EXT_MOD_ARG;
  extNodeInit(dst, dstSize, depthOf(src), max);
  memory.copy(entAt(dst, 0), entAt(src, at), <usize>move * <usize>EE_SIZE);
  store<u16>(dst + EH_ENTRIES, <u16>move);
  memory.fill(entAt(src, at), 0, <usize>move * <usize>EE_SIZE);
  store<u16>(src + EH_ENTRIES, <u16>at);
  rChanged = true;
  rFirstKey = keyOf(entAt(dst, 0));
  return move;
}

/**
 * Grow the tree by one level: the root's entries move into `child` (a fresh block of
 * childSize at physical block childBlk, eh_max = its capacity or childMax if smaller and
 * > 0), and the root becomes an index node of depth + 1 with the single entry
 * (first key → childBlk). Returns the new root depth; EXT_MOD_DEPTH at depth 5.
 */
export function extRootGrow(root: usize, child: usize, childSize: u32, childBlk: f64, childMax: i32): i32 {
  resetResults();
  const rc = nodeOk(root, <u32>I_BLOCK_SIZE, WANT_ANY);
  if (rc < 0) return rc;
  const depth = depthOf(root);
  if (depth >= EXT_MAX_DEPTH) return EXT_MOD_DEPTH;
  if (!validPhys(childBlk)) return EXT_MOD_ARG;
  const cap = extNodeCapacity(childSize);
  if (childSize == <u32>I_BLOCK_SIZE || cap < 0) return EXT_MOD_ARG;
  const n = countOf(root);
  if (n > (childMax > 0 && childMax < cap ? childMax : cap)) return EXT_MOD_ARG;
  extNodeInit(child, childSize, depth, childMax);
  memory.copy(entAt(child, 0), entAt(root, 0), <usize>n * <usize>EE_SIZE);
  store<u16>(child + EH_ENTRIES, <u16>n);
  const key = n > 0 ? keyOf(entAt(root, 0)) : 0;
  extNodeInit(root, <u32>I_BLOCK_SIZE, depth + 1, 0);
  setIndex(entAt(root, 0), key, <u64>childBlk);
  store<u16>(root + EH_ENTRIES, 1);
  rChanged = true;
  rFirstKey = key;
  return depth + 1;
}

/**
 * Append every entry of src to dst (same depth; src's entries must all come after dst's):
 * how the root absorbs its children when the tree gets shorter. Returns dst's entries
 * after; EXT_MOD_FULL (nothing changed) if they do not fit dst's eh_max.
 */
export function extNodeAppend(dst: usize, dstSize: u32, src: usize, srcSize: u32): i32 {
  resetResults();
  let rc = nodeOk(dst, dstSize, WANT_ANY);
  if (rc < 0) return rc;
  rc = nodeOk(src, srcSize, WANT_ANY);
  if (rc < 0) return rc;
  if (dst == src) return EXT_MOD_ARG;
  const depth = depthOf(dst);
  if (depthOf(src) != depth) return EXT_ERR_DEPTH;
  const dn = countOf(dst);
  const sn = countOf(src);
  if (dn + sn > maxOf(dst)) return EXT_MOD_FULL;
  if (dn > 0 && sn > 0) {
    const last = entAt(dst, dn - 1);
    const limit: f64 = depth > 0 ? <f64>keyOf(last) + 1 : <f64>keyOf(last) + <f64>lenOf(last);
    if (<f64>keyOf(entAt(src, 0)) < limit) return EXT_ERR_ORDER;
  }
  memory.copy(entAt(dst, dn), entAt(src, 0), <usize>sn * <usize>EE_SIZE);
  store<u16>(dst + EH_ENTRIES, <u16>(dn + sn));
  rChanged = true;
  rFirstKey = dn + sn > 0 ? keyOf(entAt(dst, 0)) : 0;
  return dn + sn;
}

// ── results of the last call ──────────────────────────────────────────────────────────

/** True if the last call moved the start of the node's entry 0 (the parent's key must follow). */
export function extModFirstChanged(): bool {
  return rFirstChanged;
}

/** The node's first key after the last call (for a split: the new node's first key). */
export function extModFirstKey(): u32 {
  return rFirstKey;
}

/** Where the last insert put (or, on EXT_MOD_FULL, would put) its entry; -1 if not applicable. */
export function extModPos(): i32 {
  return rPos;
}

/** Merges the last extLeafInsert / extLeafConvert performed. */
export function extModMerges(): i32 {
  return rMerges;
}

/** True if the last call changed the node's bytes. */
export function extModChanged(): bool {
  return rChanged;
}

/** Physical runs freed by the last extLeafRemove. */
export function extModFreedCount(): i32 {
  return rFreedCount;
}

/** First block of freed run i (0 ≤ i < extModFreedCount); -1 if out of range. */
export function extModFreedPhys(i: i32): f64 {
  if (i < 0 || i >= rFreedCount) return -1;
  return load<f64>(freed + <usize>i * 16);
}

/** Length of freed run i; 0 if out of range. */
export function extModFreedLen(i: i32): u32 {
  if (i < 0 || i >= rFreedCount) return 0;
  return load<u32>(freed + <usize>i * 16 + 8);
}

/** Total blocks the last extLeafRemove freed. */
export function extModFreedBlocks(): f64 {
  return rFreedBlocks;
}

/** Blocks whose state the last extLeafConvert flipped. */
export function extModConverted(): f64 {
  return rConverted;
}
