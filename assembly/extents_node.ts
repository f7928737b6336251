// Entry access for extent-tree nodes being modified (extents_mod.ts).
//
// Why a file of its own: every modifying routine reads and writes the same 12-byte
// entries, and keeping these accessors apart keeps extents_mod.ts about the algorithms.
// The callers have validated the node header (magic, entries ≤ max, max fits the node)
// before they index it, so `i` is always within the node and no bounds check is repeated
// here. Not re-exported by index.ts: these take u64 and are engine-internal.
//
//   header (12 B): magic u16 | entries u16 | max u16 | depth u16 | generation u32
//   leaf entry (12 B):  +0 lblk u32  +4 len u16 (> 32768: unwritten)  +6 start_hi u16  +8 start_lo u32
//   index entry (12 B): +0 key u32   +4 leaf_lo u32  +8 leaf_hi u16  +10 unused u16

import {
  EE_BLOCK, EE_LEN, EE_SIZE, EE_START_HI, EE_START_LO, EH_DEPTH, EH_ENTRIES, EH_MAX, EH_SIZE, EI_BLOCK,
  EI_LEAF_HI, EI_LEAF_LO, EI_UNUSED, EXT_INIT_MAX_LEN, EXT_UNWRITTEN_MAX_LEN,
} from "./ondisk/extent";

/** 2^48: physical block numbers are 48 bits. */
export const PHYS_LIMIT: f64 = 281474976710656.0;


// @ts-ignore: decorator
@inline export function entAt(node: usize, i: i32): usize {
  return node + <usize>EH_SIZE + <usize>i * <usize>EE_SIZE;
}

// @ts-ignore: decorator
@inline export function countOf(node: usize): i32 {
  return <i32>load<u16>(node + EH_ENTRIES);
}

// @ts-ignore: decorator
@inline export function maxOf(node: usize): i32 {
  return <i32>load<u16>(node + EH_MAX);
}

// @ts-ignore: decorator
@inline export function depthOf(node: usize): i32 {
  return <i32>load<u16>(node + EH_DEPTH);
}

// @ts-ignore: decorator
@inline export function keyOf(e: usize): u32 {
  return load<u32>(e + EE_BLOCK);
}

// @ts-ignore: decorator
@inline export function lenOf(e: usize): u32 {
  const raw = <u32>load<u16>(e + EE_LEN);
  return raw > <u32>EXT_INIT_MAX_LEN ? raw - <u32>EXT_INIT_MAX_LEN : raw;
}

// @ts-ignore: decorator
@inline export function unwOf(e: usize): bool {
  return <u32>load<u16>(e + EE_LEN) > <u32>EXT_INIT_MAX_LEN;
}

// @ts-ignore: decorator
@inline export function physOf(e: usize): u64 {
  return (<u64>load<u16>(e + EE_START_HI) << 32) | <u64>load<u32>(e + EE_START_LO);
}

export function setExtent(e: usize, lblk: u32, len: u32, phys: u64, unw: bool): void {
  store<u32>(e + EE_BLOCK, lblk);
  store<u16>(e + EE_LEN, <u16>(unw ? len + <u32>EXT_INIT_MAX_LEN : len));
  store<u16>(e + EE_START_HI, <u16>(phys >> 32));
  store<u32>(e + EE_START_LO, <u32>(phys & 0xffffffff));
}

export function setIndex(e: usize, key: u32, child: u64): void {
  store<u32>(e + EI_BLOCK, key);
  store<u32>(e + EI_LEAF_LO, <u32>(child & 0xffffffff));
  store<u16>(e + EI_LEAF_HI, <u16>(child >> 32));
  store<u16>(e + EI_UNUSED, 0);
}

// @ts-ignore: decorator
@inline export function maxLenFor(unw: bool): u32 {
  return unw ? <u32>EXT_UNWRITTEN_MAX_LEN : <u32>EXT_INIT_MAX_LEN;
}

// A whole non-negative number below 2^48 (NaN and fractions fail the comparisons).
export function validPhys(p: f64): bool {
  return p >= 0 && p < PHYS_LIMIT && p == Math.floor(p);
}

