// Bit operations on ext4 block and inode bitmaps, 64 bits at a time.
//
// Why here and not in TypeScript: the allocators (balloc.ts, ialloc.ts) search a group's
// bitmap on every allocation, mkfs and fsck-style checks count whole bitmaps, and the
// bitmaps already live in the block cache inside linear memory. One call per search
// keeps the boundary cost negligible, and 64-bit words with ctz/popcnt make a group's
// 4 KiB bitmap (32768 blocks at 4 KiB blocks) 512 word operations to scan.
//
// Bit order is ext4's (little-endian bitmaps): bit i lives in byte i >> 3 at bit i & 7.
// A little-endian 64-bit load therefore sees bit i at position i & 63 of word i >> 6:
//
//   byte:  ptr+0      ptr+1          ptr+7      ptr+8
//   bits:  7 ... 0  | 15 ... 8 | ... | 63 ... 56 | 71 ... 64 | ...
//          \______________ word 0 _____________/ \_ word 1 ...
//
// Contracts shared by every function:
// - Ranges are half-open [start, end); "not found" is -1. Bit indices are < 2^31.
// - Memory touched: queries read only bytes [ptr + 8*floor(start/64), ptr + ceil(end/8))
//   — the partial last word is assembled from narrower loads, so a bitmap may end exactly
//   at the end of a buffer (or of linear memory) with no padding. Range writes read and
//   write only the bytes holding bits of the range, and change only the range's bits.
// - No bounds checks against a buffer length: the caller (bindings or an allocator that
//   validated the group geometry from the superblock) passes ranges inside the bitmap.
//
// No locking here: the bindings serialise allocation per group (sched/locks.ts); these
// functions are pure operations on the bytes they are given.

// Little-endian value of the n (1..8) bytes at p, reading nothing at or past p + n.
// @ts-ignore: decorator
@inline function loadPartial(p: usize, n: usize): u64 {
  if (n >= 8) return load<u64>(p);
  let v: u64 = 0;
  let off: usize = 0;
  if (n & 4) {
    v = <u64>load<u32>(p);
    off = 4;
  }
  if (n & 2) {
    v |= <u64>load<u16>(p + off) << (<u64>off << 3);
    off += 2;
  }
  if (n & 1) v |= <u64>load<u8>(p + off) << (<u64>off << 3);
  return v;
}

// Word w of the bitmap when it may be the last one: only bytes below endBytes are read,
// the missing high bytes read as zero (callers mask the bits at and past `end` anyway).
// @ts-ignore: decorator
@inline function loadWord(ptr: usize, w: u32, endBytes: usize): u64 {
  const off = <usize>w << 3;
  return loadPartial(ptr + off, endBytes - off);
}

// Mask of the bits of the last word that lie below `end` (all of them if end % 64 == 0).
// @ts-ignore: decorator
@inline function tailMask(end: u32): u64 {
  const e = end & 63;
  return e != 0 ? ((<u64>1 << <u64>e) - 1) : ~(<u64>0);
}

// First bit in [start, end) whose value XOR (flip & 1) is 1, or -1. `flip` is 0 to find a
// set bit and all ones to find a clear bit; one loop serves both searches.
function scan(ptr: usize, start: u32, end: u32, flip: u64): i32 {
  if (start >= end) return -1;
  const endBytes = (<usize>end + 7) >>> 3;
  const lastW = (end - 1) >>> 6;
  let w = start >>> 6;
  let x: u64;
  if (w < lastW) {
    x = (load<u64>(ptr + (<usize>w << 3)) ^ flip) & (~(<u64>0) << <u64>(start & 63));
    if (x != 0) return <i32>((w << 6) + <u32>ctz(x));
    w++;
    // Every word strictly before lastW lies wholly below ceil(end/8): full loads are safe.
    // Skip four words per step while none holds a hit (the common case: a long full
    // stretch when looking for a clear bit); the one-word loop then pinpoints the hit.
    // Measured ~1.3x over a two-word step and ~1.7x over one word at a time.
    while (w + 3 < lastW) {
      const p = ptr + (<usize>w << 3);
      const any = (load<u64>(p) ^ flip) | (load<u64>(p, 8) ^ flip) | (load<u64>(p, 16) ^ flip) | (load<u64>(p, 24) ^ flip);
      if (any != 0) break;
      w += 4;
    }
    while (w < lastW) {
      x = load<u64>(ptr + (<usize>w << 3)) ^ flip;
      if (x != 0) return <i32>((w << 6) + <u32>ctz(x));
      w++;
    }
    x = loadWord(ptr, w, endBytes) ^ flip;
  } else {
    x = (loadWord(ptr, w, endBytes) ^ flip) & (~(<u64>0) << <u64>(start & 63));
  }
  x &= tailMask(end);
  return x != 0 ? <i32>((w << 6) + <u32>ctz(x)) : -1;
}

/** True if bit `bit` is set. */
export function bitmapTest(ptr: usize, bit: u32): bool {
  return ((<u32>load<u8>(ptr + (bit >>> 3)) >>> (bit & 7)) & 1) != 0;
}

/** Index of the first clear bit in [start, end), or -1. */
export function bitmapFindZero(ptr: usize, start: u32, end: u32): i32 {
  return scan(ptr, start, end, ~(<u64>0));
}

/** Index of the first set bit in [start, end), or -1. */
export function bitmapFindSet(ptr: usize, start: u32, end: u32): i32 {
  return scan(ptr, start, end, 0);
}

// Set (value = true) or clear the bits [start, start + count): partial bytes at each end
// are read-modify-written, the whole bytes between are filled in one memory.fill.
function fillRange(ptr: usize, start: u32, count: u32, value: bool): void {
  if (count == 0) return;
  const end = <u64>start + <u64>count;
  let sb = <usize>(start >>> 3);
  const eb = <usize>(end >>> 3);
  if (sb == eb) {
    // The whole range sits inside one byte (so count < 8).
    const m = <u32>(((1 << count) - 1) << (start & 7));
    const p = ptr + sb;
    const old = <u32>load<u8>(p);
    store<u8>(p, <u8>(value ? old | m : old & ~m));
    return;
  }
  if ((start & 7) != 0) {
    const m = <u32>(0xff << (start & 7)) & 0xff;
    const p = ptr + sb;
    const old = <u32>load<u8>(p);
    store<u8>(p, <u8>(value ? old | m : old & ~m));
    sb++;
  }
  memory.fill(ptr + sb, value ? 0xff : 0, eb - sb);
  const tail = <u32>(end & 7);
  if (tail != 0) {
    const m = (<u32>1 << tail) - 1;
    const p = ptr + eb;
    const old = <u32>load<u8>(p);
    store<u8>(p, <u8>(value ? old | m : old & ~m));
  }
}

/** Set bits [start, start + count). */
export function bitmapSetRange(ptr: usize, start: u32, count: u32): void {
  fillRange(ptr, start, count, true);
}

/** Clear bits [start, start + count). */
export function bitmapClearRange(ptr: usize, start: u32, count: u32): void {
  fillRange(ptr, start, count, false);
}

/** Set bit `bit`; returns whether it was already set. */
export function bitmapSetBit(ptr: usize, bit: u32): bool {
  const p = ptr + (bit >>> 3);
  const m = <u32>1 << (bit & 7);
  const old = <u32>load<u8>(p);
  store<u8>(p, <u8>(old | m));
  return (old & m) != 0;
}

/** Clear bit `bit`; returns whether it was set. */
export function bitmapClearBit(ptr: usize, bit: u32): bool {
  const p = ptr + (bit >>> 3);
  const m = <u32>1 << (bit & 7);
  const old = <u32>load<u8>(p);
  store<u8>(p, <u8>(old & ~m));
  return (old & m) != 0;
}

/** Number of set bits in [start, end) (0 if start >= end). */
export function bitmapCount(ptr: usize, start: u32, end: u32): u32 {
  if (start >= end) return 0;
  const endBytes = (<usize>end + 7) >>> 3;
  const lastW = (end - 1) >>> 6;
  let w = start >>> 6;
  const head = ~(<u64>0) << <u64>(start & 63);
  if (w == lastW) return <u32>popcnt(loadWord(ptr, w, endBytes) & head & tailMask(end));
  let n = <u32>popcnt(load<u64>(ptr + (<usize>w << 3)) & head);
  w++;
  // Two words per step: independent popcnts overlap, and the loop overhead halves.
  while (w + 1 < lastW) {
    const p = ptr + (<usize>w << 3);
    n += <u32>popcnt(load<u64>(p)) + <u32>popcnt(load<u64>(p, 8));
    w += 2;
  }
  if (w < lastW) {
    n += <u32>popcnt(load<u64>(ptr + (<usize>w << 3)));
    w++;
  }
  return n + <u32>popcnt(loadWord(ptr, w, endBytes) & tailMask(end));
}

/** Length of the run of clear bits that begins at `start`, stopping at `end` (0 if start is set or start >= end). */
export function bitmapZeroRunLength(ptr: usize, start: u32, end: u32): u32 {
  if (start >= end) return 0;
  const s = scan(ptr, start, end, 0);
  return s < 0 ? end - start : <u32>s - start;
}

// Bit p of the result is set iff bits p .. p + len - 1 of z are all set, for 1 <= len
// <= 64, counting only runs wholly inside z (the shifts bring in zeros at the top).
// Doubling: after the loop bit p covers p .. p + k - 1; one more shift by len - k <= k
// closes the gap.
// @ts-ignore: decorator
@inline function runsOf(z: u64, len: u32): u64 {
  let y = z;
  let k: u32 = 1;
  while (k << 1 <= len) {
    y &= y >>> <u64>k;
    k <<= 1;
  }
  if (k < len) y &= y >>> <u64>(len - k);
  return y;
}

/**
 * Start of the first run of at least `minLen` clear bits inside [start, end), or -1.
 * Runs are clipped to the range (bits before `start` and at or past `end` do not count);
 * a `minLen` of 0 is treated as 1.
 */
export function bitmapFindZeroRun(ptr: usize, start: u32, end: u32, minLen: u32): i32 {
  if (minLen == 0) minLen = 1;
  if (start >= end || end - start < minLen) return -1;
  // One pass over the words with no per-run loop: free bits are 1s in z (bits outside
  // the range forced to 0, so a run neither starts before `start` nor counts bits at or
  // past `end`). Per word, in order of position:
  //   1. the run carried in from the words before, extended by z's low free bits;
  //   2. runs wholly inside the word (runsOf, only when minLen < 64);
  //   3. z's high free bits become the carried run.
  // A qualifying run starting inside the word at p is found by step 2 unless it reaches
  // the top of the word, in which case every bit above p is free and step 3 carries it,
  // so the first answer found is the lowest one. The loop's branches depend on whole
  // words (full, empty, mixed), not on run lengths, which keeps fragmented bitmaps fast.
  const endBytes = (<usize>end + 7) >>> 3;
  const lastW = (end - 1) >>> 6;
  let w = start >>> 6;
  let runStart: u32 = 0;
  let runLen: u32 = 0;
  let z = ~loadWord(ptr, w, w < lastW ? (<usize>w << 3) + 8 : endBytes) & (~(<u64>0) << <u64>(start & 63));
  for (;;) {
    if (w == lastW) z &= tailMask(end);
    if (z == 0) {
      runLen = 0;
    } else if (z == ~(<u64>0)) {
      if (runLen == 0) runStart = w << 6;
      runLen += 64;
      if (runLen >= minLen) return <i32>runStart;
    } else {
      const low = <u32>ctz(~z);
      if (runLen + low >= minLen) return <i32>(runLen != 0 ? runStart : w << 6);
      if (minLen < 64) {
        // (A mixed word holds fewer than 64 free bits, so longer runs need the carry.)
        const y = runsOf(z, minLen);
        if (y != 0) return <i32>((w << 6) + <u32>ctz(y));
      }
      runLen = <u32>clz(~z);
      runStart = (w << 6) + 64 - runLen;
    }
    if (w == lastW) break;
    w++;
    // Words strictly before lastW lie wholly below ceil(end/8): full loads are safe.
    z = ~(w < lastW ? load<u64>(ptr + (<usize>w << 3)) : loadWord(ptr, w, endBytes));
  }
  return -1;
}
