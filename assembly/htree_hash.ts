// Directory-name hashes of ext4's hash-indexed directories (htree).
//
// Why these exact functions: an indexed directory sorts its leaves by a 32-bit hash of
// each name, and the hash is whatever the volume's tools used when they built the index
// (dx_root.info.hash_version, defaulting to s_def_hash_version). A lookup that computes a
// different hash for the same bytes walks to the wrong leaf and reports ENOENT for a name
// that exists, so every bit has to agree with Linux and e2fsprogs — including the quirks:
//
//   legacy     ext3's original "dx_hack_hash": two 32-bit accumulators fed one byte at a
//              time; ignores the seed; there is no minor hash (0).
//   half_md4   the name cut into 32-byte chunks, each packed into 8 words and mixed into
//              a 4-word state by the three MD4 rounds with the message schedule halved
//              (8 words, not 16); major = state[1], minor = state[2].
//   tea        16-byte chunks packed into 4 words, mixed by 16 cycles of the TEA block
//              cipher; major = state[0], minor = state[1].
//
// Packing a chunk into words (half_md4, tea): bytes enter big-end first,
// word = (word << 8) + byte, four bytes per word; every word — and the partial last one —
// starts from a "pad" made of the byte count that remains from this chunk to the end of
// the name, replicated into all four bytes; words the name does not reach are pure pad.
//
// Signed and unsigned variants: the original code read name bytes through a plain `char`,
// which is signed on x86 and unsigned on ARM/PowerPC, so a byte >= 0x80 entered the
// arithmetic as a negative number (sign-extended to 32 bits) on one and as 128..255 on
// the other. ext4 pins the choice per volume with s_flags (SIGNED_HASH / UNSIGNED_HASH):
// versions 0..2 read bytes sign-extended, versions 3..5 the same algorithms zero-extended.
// dx_root stores 0..2 only; the volume's UNSIGNED_HASH flag adds 3 at lookup time (see
// dxEffectiveHashVersion in htree.ts). Names that are pure ASCII hash alike either way.
//
// Seed: s_hash_seed, 16 bytes read as four little-endian words, replaces the MD4/TEA
// initial state unless all of it is zero, in which case the MD4 initial constants are
// used. Final step (kernel rule): the low bit is cleared — in the index it flags a hash
// run continued from the previous leaf — and 0xFFFFFFFE, which the kernel reserves as the
// 32-bit end-of-directory position, becomes 0xFFFFFFFC.
//
// Not supported: version 6 (siphash), which only casefolded+encrypted directories use
// and which is keyed by the per-file encryption key we do not have. Casefolded
// directories hash the case-folded name; folding is the caller's job.
//
// State: the minor hash of the last call is kept in a module global (one engine instance
// serves one volume, and calls never interleave), so dxHash stays a single-result export.

import {
  DX_HASH_HALF_MD4, DX_HASH_LEGACY, DX_HASH_LEGACY_UNSIGNED, DX_HASH_TEA_UNSIGNED,
} from "./ondisk/dx";

// Packed message words for one chunk (8 for half_md4, 4 for tea).
const words: usize = memory.data(32);
// Hash state: 4 words.
const state: usize = memory.data(16);
// Half-MD4 schedule: which message word each of the 24 steps consumes, and the rotation
// of each step within its round (steps k and k+4 of a round rotate alike).
const MD4_WORD: usize = memory.data<u8>([
  0, 1, 2, 3, 4, 5, 6, 7,
  1, 3, 5, 7, 0, 2, 4, 6,
  3, 7, 2, 6, 1, 5, 0, 4,
]);
const MD4_SHIFT: usize = memory.data<u8>([3, 7, 11, 19, 3, 5, 9, 13, 3, 9, 11, 15]);
// MD4 round constants: none, sqrt(2)·2^30, sqrt(3)·2^30.
const MD4_K1: u32 = 0;
const MD4_K2: u32 = 0x5a827999;
const MD4_K3: u32 = 0x6ed9eba1;
const TEA_DELTA: u32 = 0x9e3779b9;
const LEGACY_MUL: i32 = 7152373;

let lastMinor: u32 = 0;

// A name byte as the variant's arithmetic sees it: sign- or zero-extended to 32 bits.
// @ts-ignore: decorator
@inline function nameByte(p: usize, unsignedBytes: bool): u32 {
  const b = load<u8>(p);
  return unsignedBytes ? <u32>b : <u32><i32><i8>b;
}

// Pack the chunk at p into n words at `words`; `remaining` counts the name's bytes from p
// to its end (it sets the pad, and bounds the bytes read: min(remaining, 4n)).
function packChunk(p: usize, remaining: u32, n: u32, unsignedBytes: bool): void {
  let pad = remaining | (remaining << 8);
  pad |= pad << 16;
  const take = remaining < n << 2 ? remaining : n << 2;
  let w: u32 = 0;
  let acc = pad;
  for (let i: u32 = 0; i < take; i++) {
    acc = (acc << 8) + nameByte(p + <usize>i, unsignedBytes);
    if ((i & 3) == 3) {
      store<u32>(words + (<usize>w << 2), acc);
      w++;
      acc = pad;
    }
  }
  // A partial last word keeps its bytes; if the name ended on a word boundary this is
  // just the pad. The rest is pad.
  if (w < n) {
    store<u32>(words + (<usize>w << 2), acc);
    w++;
  }
  for (; w < n; w++) store<u32>(words + (<usize>w << 2), pad);
}

function legacyHash(p: usize, len: u32, unsignedBytes: bool): u32 {
  let h0: u32 = 0x12a3fe2d;
  let h1: u32 = 0x37abe8f9;
  for (let i: u32 = 0; i < len; i++) {
    // |byte| <= 255, so the product stays within i32 (255 * 7152373 < 2^31).
    const mixed = <u32>(<i32>nameByte(p + <usize>i, unsignedBytes) * LEGACY_MUL);
    let h = h1 + (h0 ^ mixed);
    // Keeps the accumulator below 2^31, which the final << 1 relies on.
    if ((h & 0x80000000) != 0) h -= 0x7fffffff;
    h1 = h0;
    h0 = h;
  }
  return h0 << 1;
}

// The round function of MD4 round r: F = choose, G = majority, H = parity.
// @ts-ignore: decorator
@inline function md4Fn(r: u32, x: u32, y: u32, z: u32): u32 {
  if (r == 0) return z ^ (x & (y ^ z));
  if (r == 1) return (x & y) + ((x ^ y) & z);
  return x ^ y ^ z;
}

// Mix the 8 words at `words` into `state` with the halved MD4 compression.
function halfMd4Block(): void {
  let a = load<u32>(state, 0);
  let b = load<u32>(state, 4);
  let c = load<u32>(state, 8);
  let d = load<u32>(state, 12);
  for (let k: u32 = 0; k < 24; k++) {
    const r = k >>> 3;
    const kr = r == 0 ? MD4_K1 : r == 1 ? MD4_K2 : MD4_K3;
    const x = load<u32>(words + (<usize>load<u8>(MD4_WORD + <usize>k) << 2)) + kr;
    const s = <u32>load<u8>(MD4_SHIFT + <usize>(r * 4 + (k & 3)));
    // The updated register cycles a, d, c, b; its three successors are the arguments.
    switch (k & 3) {
      case 0: a = rotl<u32>(a + md4Fn(r, b, c, d) + x, s); break;
      case 1: d = rotl<u32>(d + md4Fn(r, a, b, c) + x, s); break;
      case 2: c = rotl<u32>(c + md4Fn(r, d, a, b) + x, s); break;
      default: b = rotl<u32>(b + md4Fn(r, c, d, a) + x, s); break;
    }
  }
  store<u32>(state, load<u32>(state, 0) + a, 0);
  store<u32>(state, load<u32>(state, 4) + b, 4);
  store<u32>(state, load<u32>(state, 8) + c, 8);
  store<u32>(state, load<u32>(state, 12) + d, 12);
}

// Mix the 4 words at `words` (the key) into state[0..1] (the block) with 16 TEA cycles.
function teaBlock(): void {
  const k0 = load<u32>(words, 0);
  const k1 = load<u32>(words, 4);
  const k2 = load<u32>(words, 8);
  const k3 = load<u32>(words, 12);
  let v0 = load<u32>(state, 0);
  let v1 = load<u32>(state, 4);
  let sum: u32 = 0;
  for (let i = 0; i < 16; i++) {
    sum += TEA_DELTA;
    v0 += ((v1 << 4) + k0) ^ (v1 + sum) ^ ((v1 >>> 5) + k1);
    v1 += ((v0 << 4) + k2) ^ (v0 + sum) ^ ((v0 >>> 5) + k3);
  }
  store<u32>(state, load<u32>(state, 0) + v0, 0);
  store<u32>(state, load<u32>(state, 4) + v1, 4);
}

function initState(seedPtr: usize): void {
  let useSeed = false;
  if (seedPtr != 0) {
    useSeed = (load<u32>(seedPtr, 0) | load<u32>(seedPtr, 4) | load<u32>(seedPtr, 8) | load<u32>(seedPtr, 12)) != 0;
  }
  if (useSeed) {
    memory.copy(state, seedPtr, 16);
  } else {
    store<u32>(state, 0x67452301, 0);
    store<u32>(state, 0xefcdab89, 4);
    store<u32>(state, 0x98badcfe, 8);
    store<u32>(state, 0x10325476, 12);
  }
}

/** True if dxHash implements hash `version` (0..5; siphash (6) and unknown are not). */
export function dxHashSupported(version: u32): bool {
  return version <= <u32>DX_HASH_TEA_UNSIGNED;
}

/**
 * Major hash (low bit clear) of the nameLen bytes at namePtr under DX_HASH_* `version`,
 * seeded by the 16 bytes at seedPtr (s_hash_seed; 0 or all-zero → default state). Returns
 * 0 for an unsupported version (check dxHashSupported first). Reads only the name and seed.
 */
export function dxHash(namePtr: usize, nameLen: u32, version: u32, seedPtr: usize): u32 {
  lastMinor = 0;
  if (!dxHashSupported(version)) return 0;
  const unsignedBytes = version >= <u32>DX_HASH_LEGACY_UNSIGNED;
  const base = unsignedBytes ? version - <u32>DX_HASH_LEGACY_UNSIGNED : version;
  let major: u32;
  if (base == <u32>DX_HASH_LEGACY) {
    major = legacyHash(namePtr, nameLen, unsignedBytes);
  } else {
    initState(seedPtr);
    const md4 = base == <u32>DX_HASH_HALF_MD4;
    const chunk: u32 = md4 ? 32 : 16;
    let p = namePtr;
    let left = nameLen;
    while (left > 0) {
      packChunk(p, left, chunk >>> 2, unsignedBytes);
      if (md4) halfMd4Block();
      else teaBlock();
      if (left <= chunk) break;
      left -= chunk;
      p += <usize>chunk;
    }
    if (md4) {
      major = load<u32>(state, 4);
      lastMinor = load<u32>(state, 8);
    } else {
      major = load<u32>(state, 0);
      lastMinor = load<u32>(state, 4);
    }
  }
  major &= ~(<u32>1);
  // 0xFFFFFFFE is the kernel's 32-bit end-of-directory cookie; no name may hash to it.
  if (major == 0xfffffffe) major = 0xfffffffc;
  return major;
}

/** Minor hash of the last dxHash call (0 for legacy and unsupported versions). */
export function dxHashMinor(): u32 {
  return lastMinor;
}
