// The ext2/ext3 block map, read side: where logical block L of a file without
// INODE_FL_EXTENTS lives.
//
// Why a separate, simpler module: before extents, i_block held 15 little-endian u32 block
// pointers. The first 12 point at data; the last three at trees of "indirect" blocks,
// each block an array of a = blockSize / 4 pointers. The shape is fixed by arithmetic
// alone — which slot, which entry at each level — so nothing read from disk can change
// how deep a lookup goes or which entry of a node is read. Disk contents only decide
// *which block* is read next, and the walker validates that with indPointerValid before
// loading it. A pointer aimed at another indirect block, or at itself, just makes the
// walker read that block's bytes as pointers one more time: the depth is fixed by the
// path, so there is no loop to guard against.
//
//   i_block (60 bytes):
//   [0][1] … [11] [12]        [13]                 [14]
//    data blocks   |            |                    |
//                single       double               triple
//                [a ptrs]→data [a ptrs]→[a ptrs]→data [a]→[a]→[a]→data
//
//   logical block ranges (a = blockSize / 4):
//     direct    [0, 12)                       depth 0: offsets [lblk]
//     single    [12, 12 + a)                  depth 1: [12, r]
//     double    … + a²                         depth 2: [13, r / a, r % a]
//     triple    … + a³                         depth 3: [14, r / a², (r / a) % a, r % a]
//   where r is lblk minus the start of its range. 1 KiB blocks: single from 12, double
//   from 268, triple from 65804; 4 KiB: 12, 1036, 1049612. Past the triple range (only
//   reachable with blocks ≤ 4 KiB; with larger blocks every u32 lblk fits) indPath says -1.
//
// The lookup protocol (for the walker in the bindings):
//
//   d = indPath(lblk, blockSize)                      -1: beyond the map → EFBIG/hole
//   p = indEntry(inode + I_BLOCK, indPathOffset(0))
//   for level = 1 .. d:
//     p == 0 → hole of indPathRemain(level - 1) blocks starting at lblk
//     indPointerValid(p, blocksCount, firstDataBlock) else EFSCORRUPTED
//     node = cache.read(p); p = indEntry(node, indPathOffset(level))
//   p == 0 → hole; else validate p: data block
//   To map a run at once: n = indRunLength(node, indPathOffset(d), room, p) with room =
//   entries left in that node (12 - offset for the direct slots, a - offset in a block);
//   validate p + n - 1 too. firstPhys = 0 counts a run of holes the same way.
//
// Hole semantics: a zero pointer at any level is a hole covering that pointer's whole
// subtree — 1 block for a data pointer, a blocks for a single-indirect pointer, a² for a
// double, a³ for the triple. indPathRemain(level) gives how many of those lie at or after
// lblk, so a sparse file's unmapped gigabytes are skipped in one step. Inside an indirect
// block, z = indRunLength(node, offset, a - offset, 0) zero pointers in a row extend the
// hole by (z - 1) whole subtrees of a^(depth - level) blocks each.
//
// Indexes handed to indEntry / indRunLength come from indPath, never from disk: they are
// < 15 in i_block and < a in a block, so the reads stay inside the node. The path is kept
// in module globals (one volume per engine instance, one call at a time). u32 results
// arrive in JavaScript as signed i32: apply `>>> 0`.

/** Direct pointers in i_block; slots 12, 13, 14 are the single, double, triple roots. */
export const IND_N_DIRECT: i32 = 12;
export const IND_SLOT_SINGLE: i32 = 12;
export const IND_SLOT_DOUBLE: i32 = 13;
export const IND_SLOT_TRIPLE: i32 = 14;

/** indPath: lblk lies beyond the triple-indirect range. */
export const IND_ERR_RANGE: i32 = -1;
/** indPath / indLimit: blockSize is not a power of two in [1024, 65536]. */
export const IND_ERR_BLOCK_SIZE: i32 = -2;

// The last path: depth, one offset per level, and addresses per block.
let pathDepth: i32 = -1;
let off0: u32 = 0;
let off1: u32 = 0;
let off2: u32 = 0;
let off3: u32 = 0;
let pathApb: f64 = 0;

// @ts-ignore: decorator
@inline function validBlockSize(bs: u32): bool {
  return bs >= 1024 && bs <= 65536 && (bs & (bs - 1)) == 0;
}

/**
 * Split lblk into its path: returns the depth (0 direct, 1 single, 2 double, 3 triple),
 * IND_ERR_RANGE beyond the triple range, IND_ERR_BLOCK_SIZE for a bad block size; the
 * offsets are then read with indPathOffset.
 */
export function indPath(lblk: u32, blockSize: u32): i32 {
  pathDepth = -1;
  if (!validBlockSize(blockSize)) return IND_ERR_BLOCK_SIZE;
  // u64 arithmetic: a³ reaches 2^42 with 64 KiB blocks.
  const a = <u64>(blockSize >>> 2);
  const shift = <u64>ctz(blockSize >>> 2); // a is a power of two
  const mask = a - 1;
  pathApb = <f64>a;
  let r = <u64>lblk;
  if (r < <u64>IND_N_DIRECT) {
    off0 = <u32>r;
    pathDepth = 0;
    return 0;
  }
  r -= <u64>IND_N_DIRECT;
  if (r < a) {
    off0 = <u32>IND_SLOT_SINGLE;
    off1 = <u32>r;
    pathDepth = 1;
    return 1;
  }
  r -= a;
  if (r < a * a) {
    off0 = <u32>IND_SLOT_DOUBLE;
    off1 = <u32>(r >> shift);
    off2 = <u32>(r & mask);
    pathDepth = 2;
    return 2;
  }
  r -= a * a;
  if (r < a * a * a) {
    off0 = <u32>IND_SLOT_TRIPLE;
    off1 = <u32>(r >> (shift << 1));
    off2 = <u32>((r >> shift) & mask);
    off3 = <u32>(r & mask);
    pathDepth = 3;
    return 3;
  }
  return IND_ERR_RANGE;
}

/** Offset at `level` of the last indPath (level 0: index into i_block; k ≥ 1: index into the level-k indirect block); 0xFFFFFFFF outside [0, depth]. */
export function indPathOffset(level: i32): u32 {
  if (level < 0 || level > pathDepth) return 0xffffffff;
  if (level == 0) return off0;
  if (level == 1) return off1;
  if (level == 2) return off2;
  return off3;
}

/** Blocks from the last indPath's lblk to the end of the subtree under its pointer at `level` (what a zero pointer there skips); -1 outside [0, depth]. */
export function indPathRemain(level: i32): f64 {
  if (level < 0 || level > pathDepth) return -1;
  // The pointer at `level` covers a^(depth - level) blocks; lblk sits at position
  // Σ_{k > level} off_k · a^(depth - k) inside them.
  let span: f64 = 1;
  let pos: f64 = 0;
  for (let k = pathDepth; k > level; k--) {
    pos += <f64>indPathOffset(k) * span;
    span *= pathApb;
  }
  return span - pos;
}

/** Logical blocks the map can address with this block size (12 + a + a² + a³, at most 2^32); IND_ERR_BLOCK_SIZE for a bad size. */
export function indLimit(blockSize: u32): f64 {
  if (!validBlockSize(blockSize)) return <f64>IND_ERR_BLOCK_SIZE;
  const a = <f64>(blockSize >>> 2);
  const n = <f64>IND_N_DIRECT + a + a * a + a * a * a;
  return n < 4294967296.0 ? n : 4294967296.0;
}

/** Pointer `index` of a map node (i_block or an indirect block); 0 = hole. index must come from indPathOffset. */
export function indEntry(blockPtr: usize, index: u32): u32 {
  return load<u32>(blockPtr + (<usize>index << 2));
}

/**
 * How many pointers from `index` (at most `count`, which must stay inside the node) equal
 * firstPhys, firstPhys + 1, …: a physically contiguous run (firstPhys = 0: a run of holes).
 * Stops before firstPhys + k would pass 2^32 - 1.
 */
export function indRunLength(blockPtr: usize, index: u32, count: u32, firstPhys: u32): u32 {
  const hole = firstPhys == 0;
  let k: u32 = 0;
  while (k < count) {
    const want: u32 = hole ? 0 : firstPhys + k;
    if (!hole && want < firstPhys) break; // u32 wrap
    if (load<u32>(blockPtr + (<usize>(index + k) << 2)) != want) break;
    k++;
  }
  return k;
}

/** True if pblk is a block of the volume: firstDataBlock ≤ pblk < blocksCount. */
export function indPointerValid(pblk: f64, blocksCount: f64, firstDataBlock: u32): bool {
  return pblk >= <f64>firstDataBlock && pblk < blocksCount;
}
