// Directory modification, one block at a time: adding, removing and re-pointing entries
// in leaf blocks, and the htree (hash index) edits — splitting a full leaf by hash,
// inserting index entries, splitting index nodes, adding an index level, and turning a
// one-block linear directory into an indexed one.
//
// Why the engine does it: every operation rewrites a record chain or an index array in a
// block that already sits in the block cache in linear memory; doing the edit there costs
// one boundary call per block, and the same module that validates blocks for the read
// side (dir.ts, htree.ts) guards every edit. The bindings (bindings/fs/dir_write.ts) own
// the multi-block protocol: which blocks to read, allocation, the path through the
// index, transaction handles and checksums (csum.ts: dirBlockCsumSet, dxNodeCsumSet).
//
// Ownership: every function works only on the blocks it is handed (plus, for
// dxSplitLeaf, a caller-provided scratch block for its sort map: static memory that large
// would not fit the module's initial memory) and never keeps a pointer between calls.
// The bindings guarantee a block is pinned and write-accessed before it is passed in, and
// that source, destination and scratch of a split are different blocks.
//
// Leaf blocks (layout in dir.ts / ondisk/dirent.ts) are record chains ending at `end` =
// blockSize (no checksum) or blockSize - 12 (metadata_csum: a tail follows). The edits:
//
//   add     first fit: an unused record large enough, or a live record whose rec_len
//           exceeds its own need by at least the new record's need, which is cut in two:
//             | ino | rl=48 | nl=3 | "abc" ... slack ... |        before
//             | ino | rl=12 | nl=3 | "abc" | new | rl=36 | nl | name .. |   after
//   remove  the record's length is merged into its predecessor's rec_len (its bytes
//           zeroed, so deleted names do not linger); the first record of a block has no
//           predecessor and becomes unused (inode 0, name_len 0) instead.
//   split   (htree) the live records are sorted by (hash, minor hash); the upper part by
//           bytes moves, packed, to a fresh block and the lower part is packed in place:
//             src: [a][ ][c][d][ ][b]  →  src: [a][b]........   dst: [c][d]........
//           The split hash is the first moved record's hash; when the record before it
//           has the same hash (a run of equal hashes straddles the split) bit 0 is set —
//           the "continued" marker that tells lookups to look in the next leaf too.
//           Cutting where the two halves' bytes are closest to equal leaves each half at
//           most (used + largest record) / 2 bytes, so with blocks of >= 1 KiB (1012
//           usable bytes, records <= 264) the half that receives the new name always has
//           a free slot of >= 374 bytes afterwards.
//
// Index blocks (layout in htree.ts / ondisk/dx.ts): entries [hash, block] sorted by hash,
// entry 0 having no hash (its slot holds limit and count). Insertion shifts the tail of
// the array right by one entry; a node split moves the upper half of the entries to a
// fresh node whose entry 0 takes the first moved block, and reports that entry's hash for
// the parent; growing the root moves all its entries to a fresh node and leaves the root
// with one entry pointing there, one level deeper. A dx_tail (metadata_csum) sits right
// after `limit` entries and is never touched here; the bindings recompute checksums.
//
// Validation: every block handed in is checked with the read side's rules first
// (dirBlockCheck — geometry only for a leaf the caller says is "shaped", see dir.ts;
// dxRootCheck, dxNodeCheck), and index edits re-check count, limit and
// hash order, so a hostile block yields an error code, never a trap or a write outside
// the block. Codes: the DIR_ERR_* of dir.ts for a bad leaf, DIR_NOT_FOUND (-1), and the
// DIRM_* below (all negative).

import {
  DE_FILE_TYPE, DE_HEADER_SIZE, DE_INODE, DE_NAME, DE_NAME_LEN, DE_NAME_MAX, DE_REC_LEN, DET_CHECKSUM,
  DET_REC_LEN, DET_RESERVED_FT, DET_RESERVED_FT_VALUE, DET_RESERVED_ZERO1, DET_RESERVED_ZERO2, DET_SIZE, FT_MAX,
} from "./ondisk/dirent";
import {
  DX_BLOCK, DX_BLOCK_MASK, DX_COUNT, DX_ENTRY_SIZE, DX_HASH, DX_HASH_TEA, DX_LIMIT, DX_MAX_LEVELS_LARGEDIR,
  DX_ROOT_INFO_SIZE, DXN_ENTRIES, DXR_DOT_FILE_TYPE, DXR_DOT_INODE, DXR_DOT_NAME, DXR_DOT_NAME_LEN,
  DXR_DOT_REC_LEN, DXR_DOTDOT_FILE_TYPE, DXR_DOTDOT_INODE, DXR_DOTDOT_NAME, DXR_DOTDOT_NAME_LEN,
  DXR_ENTRIES, DXR_INFO_HASH_VERSION, DXR_INFO_INDIRECT_LEVELS, DXR_INFO_INFO_LENGTH,
} from "./ondisk/dx";
import {
  DIR_ERR_ARG, DIR_NOT_FOUND, dirBlockCheck, dirBlockCheckForAdd, dirBlockSizeValid, dirCheckedChainEnd, dirCheckedFit,
  dirCheckedMatch, dirNameIs, dirRecLenFor,
} from "./dir";
import { dxNodeCheck, dxNodeLimit, dxRootCheck, dxRootLimit } from "./htree";
import { dxHash, dxHashMinor, dxHashSupported } from "./htree_hash";
import { dirBlockCsumPatch, dirCsumPart } from "./csum";

/** The block has no free slot large enough for the new entry. */
export const DIRM_NOSPC: i32 = -20;
/** dirAddEntry: a live entry of that name is already in the block. */
export const DIRM_EXISTS: i32 = -21;
/** The name argument is empty, longer than 255 bytes, or holds '/' or NUL. */
export const DIRM_ERR_NAME: i32 = -22;
/** An index block (root or node) is malformed, or its hash order would break. */
export const DIRM_ERR_DX: i32 = -23;
/** With a checksum tail expected, the block is shaped like an index block, not a leaf. */
export const DIRM_ERR_NOT_LEAF: i32 = -24;
/** dxSplitLeaf / dxSplitNode: fewer than two live entries, nothing to split. */
export const DIRM_TOO_FEW: i32 = -25;
/** The block does not start with live "." and ".." entries. */
export const DIRM_ERR_DOTS: i32 = -26;

// The inode of the entry that the last dirRemoveEntry / dirSetEntryInode / dirSetDotDot
// call removed or replaced, and the split hash of the last dxSplitLeaf / dxSplitNode.
// One engine instance serves one volume and calls never interleave, so module state is
// safe (the same argument as dxHashMinor).
let lastInode: u32 = 0;
let lastSplitHash: u32 = 0;

// dxSplitLeaf's sort map lives in a caller-provided scratch area of one block, a 12-byte
// record per live entry; a live entry takes >= 12 bytes of the block, so the records
// never need more than blockSize bytes:
//   0x0 u32 hash   0x4 u32 minor hash   0x8 u16 offset in the block   0xA u16 record size
// (set at the start of each dxSplitLeaf call, only read during it).
const MAP_REC: u32 = 12;
let map: usize = 0;

/** The inode number held by the entry the last remove / set-inode call touched. */
export function dirModLastInode(): u32 {
  return lastInode;
}

/** The split hash (bit 0 = continued) of the last successful dxSplitLeaf / dxSplitNode. */
export function dxLastSplitHash(): u32 {
  return lastSplitHash;
}

// ── record helpers ───────────────────────────────────────────────────────────────────────

// @ts-ignore: decorator
@inline function recLen(p: usize, off: u32, bs: u32): u32 {
  const raw = <u32>load<u16>(p + <usize>off + DE_REC_LEN);
  if (bs >= 65536 && (raw == 0 || raw == 65535)) return 65536;
  return raw;
}

// A whole 64 KiB record does not fit in 16 bits; 65535 stands for it (dir.ts decodes it).
// @ts-ignore: decorator
@inline function setRecLen(p: usize, off: u32, len: u32): void {
  store<u16>(p + <usize>off + DE_REC_LEN, <u16>(len >= 65536 ? 65535 : len));
}

// @ts-ignore: decorator
@inline function inodeAt(p: usize, off: u32): u32 {
  return load<u32>(p + <usize>off + DE_INODE);
}

// @ts-ignore: decorator
@inline function nameLenAt(p: usize, off: u32): u32 {
  return <u32>load<u8>(p + <usize>off + DE_NAME_LEN);
}

// True if the live entry at off is named by the nameLen bytes at namePtr (dir.ts).
// @ts-ignore: decorator
@inline function nameIs(p: usize, off: u32, namePtr: usize, nameLen: u32): bool {
  return dirNameIs(p, off, namePtr, nameLen);
}

// 0 if the name argument is one ext4 can store, else DIRM_ERR_NAME.
function checkName(namePtr: usize, nameLen: u32): i32 {
  if (nameLen == 0 || nameLen > <u32>DE_NAME_MAX) return DIRM_ERR_NAME;
  for (let i: u32 = 0; i < nameLen; i++) {
    const c = load<u8>(namePtr + <usize>i);
    if (c == 0 || c == 0x2f) return DIRM_ERR_NAME;
  }
  return 0;
}

// Write a full entry (header, name, zeroed padding) at off with the given rec_len.
function writeEntry(p: usize, off: u32, ino: u32, rl: u32, namePtr: usize, nameLen: u32, type: u32): void {
  const e = p + <usize>off;
  store<u32>(e + DE_INODE, ino);
  setRecLen(p, off, rl);
  store<u8>(e + DE_NAME_LEN, <u8>nameLen);
  store<u8>(e + DE_FILE_TYPE, <u8>type);
  // The name and its padding to 4 bytes lie within dirRecLenFor(nameLen) <= rl.
  memory.copy(e + DE_NAME, namePtr, <usize>nameLen);
  const padded = dirRecLenFor(nameLen) - <u32>DE_HEADER_SIZE;
  memory.fill(e + DE_NAME + <usize>nameLen, 0, <usize>(padded - nameLen));
}

// The checksum tail in the last 12 bytes (checksum 0; the bindings set it).
function writeTail(p: usize, bs: u32): void {
  const t = p + <usize>(bs - <u32>DET_SIZE);
  store<u32>(t + DET_RESERVED_ZERO1, 0);
  store<u16>(t + DET_REC_LEN, <u16>DET_SIZE);
  store<u8>(t + DET_RESERVED_ZERO2, 0);
  store<u8>(t + DET_RESERVED_FT, <u8>DET_RESERVED_FT_VALUE);
  store<u32>(t + DET_CHECKSUM, 0);
}

// @ts-ignore: decorator
@inline function chainEnd(bs: u32, hasTail: bool): u32 {
  return hasTail ? bs - <u32>DET_SIZE : bs;
}

// Validate a leaf: the read-side rules (shaped: geometry only), then (needed for blocks
// that pass them as index blocks) the record chain must end exactly at chainEnd. Returns
// that end or a code.
function leafCheck(p: usize, bs: u32, hasTail: bool, shaped: bool): i32 {
  const r = dirBlockCheck(p, bs, hasTail, shaped);
  if (r < 0) return r;
  // The check walked the whole chain and knows where it ended: at the tail for a leaf,
  // at the block end for an index block that passes with hasTail.
  const end = chainEnd(bs, hasTail);
  return dirCheckedChainEnd() == end ? <i32>end : DIRM_ERR_NOT_LEAF;
}

// Append the live entry at src+srcOff to dst at w, packed (rec_len = its own need).
// Returns the packed size. memory.copy handles the overlap of in-place compaction.
function packEntry(dst: usize, w: u32, src: usize, srcOff: u32): u32 {
  const nl = nameLenAt(src, srcOff);
  const size = dirRecLenFor(nl);
  memory.copy(dst + <usize>w, src + <usize>srcOff, <usize>(<u32>DE_HEADER_SIZE + nl));
  setRecLen(dst, w, size);
  memory.fill(dst + <usize>w + DE_NAME + <usize>nl, 0, <usize>(size - <u32>DE_HEADER_SIZE - nl));
  return size;
}

// Close a packed chain that ends at w (last record at lastOff, or none): stretch the last
// record to `end`, or make one unused record spanning [0, end); zero what lies between.
function closeChain(p: usize, lastOff: i32, w: u32, end: u32): void {
  if (lastOff < 0) {
    memory.fill(p, 0, <usize>end);
    setRecLen(p, 0, end);
    return;
  }
  memory.fill(p + <usize>w, 0, <usize>(end - w));
  setRecLen(p, <u32>lastOff, end - <u32>lastOff);
}

// ── leaf blocks ──────────────────────────────────────────────────────────────────────────

/** Make an empty leaf: one unused record up to the tail (written when hasTail). */
export function dirInitBlock(ptr: usize, bs: u32, hasTail: bool): i32 {
  if (!dirBlockSizeValid(bs)) return DIR_ERR_ARG;
  memory.fill(ptr, 0, <usize>bs);
  setRecLen(ptr, 0, chainEnd(bs, hasTail));
  if (hasTail) writeTail(ptr, bs);
  return 0;
}

/**
 * Make the first block of a new directory: "." → selfIno (rec_len 12) and ".." →
 * parentIno spanning the rest, both with file type dotType (FT_DIR, or 0 without the
 * filetype feature); tail when hasTail.
 */
export function dirInitFirst(ptr: usize, bs: u32, selfIno: u32, parentIno: u32, dotType: u32, hasTail: bool): i32 {
  if (!dirBlockSizeValid(bs) || selfIno == 0 || parentIno == 0 || dotType >= <u32>FT_MAX) return DIR_ERR_ARG;
  memory.fill(ptr, 0, <usize>bs);
  store<u32>(ptr + DE_INODE, selfIno);
  setRecLen(ptr, 0, 12);
  store<u8>(ptr + DE_NAME_LEN, 1);
  store<u8>(ptr + DE_FILE_TYPE, <u8>dotType);
  store<u8>(ptr + DE_NAME, 0x2e);
  store<u32>(ptr + 12 + DE_INODE, parentIno);
  setRecLen(ptr, 12, chainEnd(bs, hasTail) - 12);
  store<u8>(ptr + 12 + DE_NAME_LEN, 2);
  store<u8>(ptr + 12 + DE_FILE_TYPE, <u8>dotType);
  store<u16>(ptr + 12 + DE_NAME, 0x2e2e);
  if (hasTail) writeTail(ptr, bs);
  return 0;
}

/**
 * Add name → (ino, type) to a leaf block: the offset of the new entry, DIRM_NOSPC when no
 * slot fits, DIRM_EXISTS when the name is already in this block, DIRM_ERR_NAME, or a
 * DIR_ERR_* / DIRM_ERR_NOT_LEAF for a bad block (nothing is written on any error).
 * shaped (here and below): the block passed a full check since its last fill (dir.ts).
 * patchCsum: the tail's checksum is right for the block as it is; keep it right for the
 * block as changed, incrementally (csum.ts dirBlockCsumPatch), so the caller need not
 * sum the block again. (Not for blocks changed since they were last sealed.)
 */
export function dirAddEntry(ptr: usize, bs: u32, namePtr: usize, nameLen: u32, ino: u32, type: u32, hasTail: bool, shaped: bool, patchCsum: bool): i32 {
  const nr = checkName(namePtr, nameLen);
  if (nr < 0) return nr;
  if (ino == 0 || type >= <u32>FT_MAX) return DIR_ERR_ARG;
  const need = dirRecLenFor(nameLen);
  // One pass checks the block and finds both a duplicate (the whole block is walked,
  // not just up to the first fit) and the first slot that fits.
  const rc = dirBlockCheckForAdd(ptr, bs, hasTail, shaped, namePtr, nameLen, need);
  if (rc < 0) return rc;
  if (dirCheckedChainEnd() != chainEnd(bs, hasTail)) return DIRM_ERR_NOT_LEAF; // as leafCheck
  if (dirCheckedMatch() >= 0) return DIRM_EXISTS;
  const fit = dirCheckedFit();
  if (fit < 0) return DIRM_NOSPC;
  return insertInto(ptr, bs, <u32>fit, namePtr, nameLen, ino, type, hasTail, patchCsum);
}

/**
 * dirAddEntry where the caller already knows the slot: the record at byte `at`, found by
 * dirLookup(…, need) for this name on this very block, unchanged since (the bindings
 * require the lookup's MissProbe to be current and the block to be "shaped" still, i.e.
 * not refilled from the device). So no walk of the block — but the record itself is
 * checked (a record of a leaf, inside the chain, sane rec_len, room for the name) before
 * anything is written, and DIRM_NOSPC or a DIR_ERR_* comes back, with nothing written,
 * if it does not hold: the caller then calls dirAddEntry. Same arguments and results
 * as dirAddEntry otherwise (no duplicate check: the lookup was that check).
 */
export function dirInsertAt(ptr: usize, bs: u32, at: u32, namePtr: usize, nameLen: u32, ino: u32, type: u32, hasTail: bool, patchCsum: bool): i32 {
  const nr = checkName(namePtr, nameLen);
  if (nr < 0) return nr;
  if (ino == 0 || type >= <u32>FT_MAX || !dirBlockSizeValid(bs)) return DIR_ERR_ARG;
  const end = chainEnd(bs, hasTail);
  if ((at & 3) != 0 || at + 12 > end) return DIR_ERR_ARG;
  const rl = recLen(ptr, at, bs);
  if (rl < 12 || (rl & 3) != 0 || rl > end - at) return DIR_ERR_ARG;
  const used = inodeAt(ptr, at) != 0 ? dirRecLenFor(nameLenAt(ptr, at)) : 0;
  if (used > rl || rl - used < dirRecLenFor(nameLen)) return DIRM_NOSPC;
  return insertInto(ptr, bs, at, namePtr, nameLen, ino, type, hasTail, patchCsum);
}

// Write the new entry into the record at `at` (its slack holds it: checked by the
// caller): into the record itself when unused, else into the slack it gives up. With
// patchCsum (and a tail) the leaf checksum is patched for the bytes written. Returns the
// new entry's offset.
function insertInto(ptr: usize, bs: u32, at: u32, namePtr: usize, nameLen: u32, ino: u32, type: u32, hasTail: bool, patchCsum: bool): i32 {
  const need = dirRecLenFor(nameLen);
  const rl = recLen(ptr, at, bs);
  const live = inodeAt(ptr, at) != 0;
  const used = live ? dirRecLenFor(nameLenAt(ptr, at)) : 0;
  // The bytes rewritten: from the slot's record to the end of the new one (<= end).
  const span = used + need;
  const patch = patchCsum && hasTail;
  const before = patch ? dirCsumPart(ptr + <usize>at, <usize>span) : 0;
  if (live) {
    setRecLen(ptr, at, used);
    writeEntry(ptr, at + used, ino, rl - used, namePtr, nameLen, type);
  } else {
    writeEntry(ptr, at, ino, rl, namePtr, nameLen, type);
  }
  if (patch) dirBlockCsumPatch(ptr, at + span, before, dirCsumPart(ptr + <usize>at, <usize>span));
  return <i32>(at + used);
}

/**
 * Remove the live entry named by namePtr/nameLen: its former offset, DIR_NOT_FOUND, or an
 * error code. dirModLastInode() then gives the inode it named.
 */
export function dirRemoveEntry(ptr: usize, bs: u32, namePtr: usize, nameLen: u32, hasTail: bool, shaped: bool): i32 {
  const nr = checkName(namePtr, nameLen);
  if (nr < 0) return nr;
  const end = leafCheck(ptr, bs, hasTail, shaped);
  if (end < 0) return end;
  let prev: i32 = -1;
  let off: u32 = 0;
  while (off < <u32>end) {
    const rl = recLen(ptr, off, bs);
    if (nameIs(ptr, off, namePtr, nameLen)) {
      lastInode = inodeAt(ptr, off);
      if (prev >= 0) {
        setRecLen(ptr, <u32>prev, recLen(ptr, <u32>prev, bs) + rl);
        memory.fill(ptr + <usize>off, 0, <usize>rl);
      } else {
        // Keep rec_len; inode 0 and name_len 0 make the record a free slot.
        store<u32>(ptr + <usize>off + DE_INODE, 0);
        store<u8>(ptr + <usize>off + DE_NAME_LEN, 0);
        store<u8>(ptr + <usize>off + DE_FILE_TYPE, 0);
        memory.fill(ptr + <usize>off + DE_NAME, 0, <usize>(rl - <u32>DE_HEADER_SIZE));
      }
      return <i32>off;
    }
    prev = <i32>off;
    off += rl;
  }
  return DIR_NOT_FOUND;
}

/**
 * Point the live entry named by namePtr/nameLen at (ino, type) in place: its offset,
 * DIR_NOT_FOUND, or an error code. dirModLastInode() gives the inode it named before.
 */
export function dirSetEntryInode(ptr: usize, bs: u32, namePtr: usize, nameLen: u32, ino: u32, type: u32, hasTail: bool, shaped: bool): i32 {
  const nr = checkName(namePtr, nameLen);
  if (nr < 0) return nr;
  if (ino == 0 || type >= <u32>FT_MAX) return DIR_ERR_ARG;
  const end = leafCheck(ptr, bs, hasTail, shaped);
  if (end < 0) return end;
  let off: u32 = 0;
  while (off < <u32>end) {
    if (nameIs(ptr, off, namePtr, nameLen)) {
      lastInode = inodeAt(ptr, off);
      store<u32>(ptr + <usize>off + DE_INODE, ino);
      store<u8>(ptr + <usize>off + DE_FILE_TYPE, <u8>type);
      return <i32>off;
    }
    off += recLen(ptr, off, bs);
  }
  return DIR_NOT_FOUND;
}

/**
 * Point ".." of a directory's first block (linear block 0 or htree root) at parentIno:
 * the offset of "..", DIRM_ERR_DOTS if the block does not start with "." and "..", or an
 * error code. dirModLastInode() gives the previous parent. The file type is left as is.
 */
export function dirSetDotDot(ptr: usize, bs: u32, parentIno: u32, hasTail: bool): i32 {
  if (parentIno == 0) return DIR_ERR_ARG;
  // dirBlockCheck accepts both shapes (a leaf chain, or the root's "." + spanning "..").
  const r = dirBlockCheck(ptr, bs, hasTail, false);
  if (r < 0) return r;
  const first = recLen(ptr, 0, bs);
  if (inodeAt(ptr, 0) == 0 || nameLenAt(ptr, 0) != 1 || load<u8>(ptr + DE_NAME) != 0x2e) return DIRM_ERR_DOTS;
  // The chain was validated, so a second record exists unless "." spans the block.
  if (first > bs - 12) return DIRM_ERR_DOTS;
  const p = ptr + <usize>first;
  if (load<u32>(p + DE_INODE) == 0 || load<u8>(p + DE_NAME_LEN) != 2 || load<u16>(p + DE_NAME) != 0x2e2e) return DIRM_ERR_DOTS;
  lastInode = load<u32>(p + DE_INODE);
  store<u32>(p + DE_INODE, parentIno);
  return <i32>first;
}

/**
 * 1 if the block holds no live entry other than "." and "..", 0 if it does, or an error
 * code. Index blocks (root, nodes) count as empty: their records are only the dots or
 * one unused record.
 */
export function dirIsEmpty(ptr: usize, bs: u32, hasTail: bool): i32 {
  const r = dirBlockCheck(ptr, bs, hasTail, false);
  if (r < 0) return r;
  // The validated chain tiles the block (a tail reads as an unused record).
  let off: u32 = 0;
  while (off < bs) {
    if (inodeAt(ptr, off) != 0) {
      const nl = nameLenAt(ptr, off);
      const n = ptr + <usize>off + DE_NAME;
      const dot = load<u8>(n) == 0x2e && (nl == 1 || (nl == 2 && load<u8>(n + 1) == 0x2e));
      if (!dot) return 0;
    }
    off += recLen(ptr, off, bs);
  }
  return 1;
}

/**
 * Free space of a leaf: with total false, the largest rec_len a new entry could get as the
 * block stands (compare with dirRecLenFor of the name); with total true, the bytes free
 * in all (what dirCompact would leave as one slot). 0 if none, or an error code.
 */
export function dirFreeSpace(ptr: usize, bs: u32, hasTail: bool, total: bool, shaped: bool): i32 {
  const end = leafCheck(ptr, bs, hasTail, shaped);
  if (end < 0) return end;
  let best: u32 = 0;
  let sum: u32 = 0;
  let off: u32 = 0;
  while (off < <u32>end) {
    const rl = recLen(ptr, off, bs);
    const used = inodeAt(ptr, off) != 0 ? dirRecLenFor(nameLenAt(ptr, off)) : 0;
    if (rl - used > best) best = rl - used;
    sum += rl - used;
    off += rl;
  }
  return <i32>(total ? sum : best);
}

/**
 * Pack the live entries of a leaf to its front, in order, so that all free bytes form
 * one slot at the end. Returns that slot's size or an error code. Entry offsets change.
 */
export function dirCompact(ptr: usize, bs: u32, hasTail: bool, shaped: bool): i32 {
  const end = leafCheck(ptr, bs, hasTail, shaped);
  if (end < 0) return end;
  const w = packInPlace(ptr, bs, <u32>end);
  return <i32>(<u32>end - w);
}

// Pack the live records of the chain [0, end) to the front (moves only go left, and each
// record's rec_len is read before anything overlapping it is written); returns the
// packed length. The chain must have been validated.
function packInPlace(p: usize, bs: u32, end: u32): u32 {
  let w: u32 = 0;
  let last: i32 = -1;
  let off: u32 = 0;
  while (off < end) {
    const rl = recLen(p, off, bs);
    if (inodeAt(p, off) != 0) {
      last = <i32>w;
      w += packEntry(p, w, p, off);
    }
    off += rl;
  }
  closeChain(p, last, w, end);
  return w;
}

// ── splitting a leaf by hash ─────────────────────────────────────────────────────────────

// @ts-ignore: decorator
@inline function mapAt(i: u32): usize {
  return map + <usize>(i * MAP_REC);
}

// Map record order: hash, then minor hash, then offset (so the order is total).
function mapLess(a: u32, b: u32): bool {
  const pa = mapAt(a);
  const pb = mapAt(b);
  const ha = load<u32>(pa);
  const hb = load<u32>(pb);
  if (ha != hb) return ha < hb;
  const ma = load<u32>(pa, 4);
  const mb = load<u32>(pb, 4);
  if (ma != mb) return ma < mb;
  return load<u16>(pa, 8) < load<u16>(pb, 8);
}

function mapSwap(a: u32, b: u32): void {
  const pa = mapAt(a);
  const pb = mapAt(b);
  const h = load<u64>(pa);
  const o = load<u32>(pa, 8);
  store<u64>(pa, load<u64>(pb));
  store<u32>(pa, load<u32>(pb, 8), 8);
  store<u64>(pb, h);
  store<u32>(pb, o, 8);
}

// Heapsort of map[0, n): O(n log n) with no extra memory, whatever the input order.
function mapSort(n: u32): void {
  if (n < 2) return;
  let start = n >>> 1;
  let end = n;
  while (end > 1) {
    if (start > 0) start--;
    else {
      end--;
      mapSwap(0, end);
    }
    let root: u32 = start;
    for (;;) {
      let child: u32 = 2 * root + 1;
      if (child >= end) break;
      if (child + 1 < end && mapLess(child, child + 1)) child++;
      if (!mapLess(root, child)) break;
      mapSwap(root, child);
      root = child;
    }
  }
}

/**
 * Split the full leaf at srcPtr: its live entries, ordered by (hash, minor hash) under
 * DX_HASH_* `hashVersion` (the effective version: see dxEffectiveHashVersion) and the
 * 16-byte seed at seedPtr, are cut where the bytes on either side are closest to equal;
 * the upper part goes packed into dstPtr (overwritten as a fresh leaf), the lower part is
 * packed in place. Returns the number of entries moved (>= 1) or an error code;
 * dxLastSplitHash() gives the hash for the new leaf's index entry (bit 0 set if equal
 * hashes straddle the cut). A name whose hash is >= (split hash & ~1) belongs in dst.
 * scratchPtr: bs bytes of caller memory (not src or dst) for the sort map.
 */
export function dxSplitLeaf(
  srcPtr: usize, dstPtr: usize, bs: u32, hashVersion: u32, seedPtr: usize, hasTail: bool, scratchPtr: usize,
): i32 {
  if (!dxHashSupported(hashVersion) || scratchPtr == 0) return DIR_ERR_ARG;
  map = scratchPtr;
  const end = leafCheck(srcPtr, bs, hasTail, false);
  if (end < 0) return end;
  let n: u32 = 0;
  let total: u32 = 0;
  let off: u32 = 0;
  while (off < <u32>end) {
    if (inodeAt(srcPtr, off) != 0) {
      const nl = nameLenAt(srcPtr, off);
      // Each live record is >= 12 bytes, so record n ends within bs bytes of scratch.
      const m = mapAt(n);
      store<u32>(m, dxHash(srcPtr + <usize>off + DE_NAME, nl, hashVersion, seedPtr));
      store<u32>(m, dxHashMinor(), 4);
      store<u16>(m, <u16>off, 8);
      store<u16>(m, <u16>dirRecLenFor(nl), 10);
      total += dirRecLenFor(nl);
      n++;
    }
    off += recLen(srcPtr, off, bs);
  }
  if (n < 2) return DIRM_TOO_FEW;
  mapSort(n);
  // k = first moved entry: the cut in [1, n-1] where max(lower, upper) is smallest.
  let k: u32 = 1;
  let lower = <u32>load<u16>(mapAt(0), 10);
  let best = max<u32>(lower, total - lower);
  let acc = lower;
  for (let i: u32 = 1; i < n - 1; i++) {
    acc += <u32>load<u16>(mapAt(i), 10);
    const worst = max<u32>(acc, total - acc);
    if (worst < best) {
      best = worst;
      k = i + 1;
    }
  }
  const hk = load<u32>(mapAt(k));
  lastSplitHash = hk == load<u32>(mapAt(k - 1)) ? hk | 1 : hk;

  // dst: the moved entries in hash order; their source records become unused.
  memory.fill(dstPtr, 0, <usize>bs);
  let w: u32 = 0;
  let last: i32 = -1;
  for (let i = k; i < n; i++) {
    const so = <u32>load<u16>(mapAt(i), 8);
    last = <i32>w;
    w += packEntry(dstPtr, w, srcPtr, so);
    store<u32>(srcPtr + <usize>so + DE_INODE, 0);
  }
  closeChain(dstPtr, last, w, <u32>end);
  if (hasTail) writeTail(dstPtr, bs);

  // src: pack the remaining live entries to the front, in block order.
  packInPlace(srcPtr, bs, <u32>end);
  return <i32>(n - k);
}

// ── index blocks ─────────────────────────────────────────────────────────────────────────

// @ts-ignore: decorator
@inline function entryAt(p: usize, entriesOffset: u32, i: u32): usize {
  return p + <usize>(entriesOffset + i * <u32>DX_ENTRY_SIZE);
}

/**
 * Insert [hash, block] into the index array at entriesOffset (DXR_ENTRIES or DXN_ENTRIES)
 * right after entry `index`, shifting the later entries. Returns the new count,
 * DIRM_NOSPC if count == limit, DIRM_ERR_DX if count/limit are malformed, or DIR_ERR_ARG
 * if hash would break the order or block does not fit in 28 bits.
 */
export function dxInsertEntry(nodePtr: usize, entriesOffset: u32, bs: u32, index: u32, hash: u32, block: u32): i32 {
  if (!dirBlockSizeValid(bs)) return DIR_ERR_ARG;
  if (entriesOffset != <u32>DXR_ENTRIES && entriesOffset != <u32>DXN_ENTRIES) return DIR_ERR_ARG;
  if ((block & ~(<u32>DX_BLOCK_MASK)) != 0) return DIR_ERR_ARG;
  const cl = nodePtr + <usize>entriesOffset;
  const limit = <u32>load<u16>(cl + DX_LIMIT);
  const count = <u32>load<u16>(cl + DX_COUNT);
  if (limit == 0 || entriesOffset + limit * <u32>DX_ENTRY_SIZE > bs || count == 0 || count > limit) return DIRM_ERR_DX;
  if (count == limit) return DIRM_NOSPC;
  if (index >= count) return DIR_ERR_ARG;
  if (index > 0 && hash < load<u32>(entryAt(nodePtr, entriesOffset, index) + DX_HASH)) return DIR_ERR_ARG;
  if (index + 1 < count && hash > load<u32>(entryAt(nodePtr, entriesOffset, index + 1) + DX_HASH)) return DIR_ERR_ARG;
  // count < limit, so entry `count` still lies inside the array (and before any dx_tail).
  const at = entryAt(nodePtr, entriesOffset, index + 1);
  memory.copy(at + DX_ENTRY_SIZE, at, <usize>((count - index - 1) * <u32>DX_ENTRY_SIZE));
  store<u32>(at + DX_HASH, hash);
  store<u32>(at + DX_BLOCK, block);
  store<u16>(cl + DX_COUNT, <u16>(count + 1));
  return <i32>(count + 1);
}

/**
 * Write a dx_root: "." → selfIno (rec_len 12), ".." → parentIno (rec_len bs - 12), both
 * typed dotType; root info with hashVersion (0..2, as stored) and indirect levels
 * `levels` (< 3); one index entry pointing at logical block firstBlock. 0 or DIR_ERR_ARG.
 */
export function dxInitRoot(
  ptr: usize, bs: u32, selfIno: u32, parentIno: u32, dotType: u32, hashVersion: u32, levels: u32,
  firstBlock: u32, hasCsum: bool,
): i32 {
  if (!dirBlockSizeValid(bs) || selfIno == 0 || parentIno == 0 || dotType >= <u32>FT_MAX) return DIR_ERR_ARG;
  if (hashVersion > <u32>DX_HASH_TEA || levels >= <u32>DX_MAX_LEVELS_LARGEDIR) return DIR_ERR_ARG;
  if ((firstBlock & ~(<u32>DX_BLOCK_MASK)) != 0) return DIR_ERR_ARG;
  memory.fill(ptr, 0, <usize>bs);
  store<u32>(ptr + DXR_DOT_INODE, selfIno);
  store<u16>(ptr + DXR_DOT_REC_LEN, 12);
  store<u8>(ptr + DXR_DOT_NAME_LEN, 1);
  store<u8>(ptr + DXR_DOT_FILE_TYPE, <u8>dotType);
  store<u8>(ptr + DXR_DOT_NAME, 0x2e);
  store<u32>(ptr + DXR_DOTDOT_INODE, parentIno);
  setRecLen(ptr, 12, bs - 12);
  store<u8>(ptr + DXR_DOTDOT_NAME_LEN, 2);
  store<u8>(ptr + DXR_DOTDOT_FILE_TYPE, <u8>dotType);
  store<u16>(ptr + DXR_DOTDOT_NAME, 0x2e2e);
  store<u8>(ptr + DXR_INFO_HASH_VERSION, <u8>hashVersion);
  store<u8>(ptr + DXR_INFO_INFO_LENGTH, <u8>DX_ROOT_INFO_SIZE);
  store<u8>(ptr + DXR_INFO_INDIRECT_LEVELS, <u8>levels);
  const cl = ptr + <usize>DXR_ENTRIES;
  store<u16>(cl + DX_LIMIT, <u16>dxRootLimit(bs, hasCsum));
  store<u16>(cl + DX_COUNT, 1);
  store<u32>(cl + DX_BLOCK, firstBlock);
  return 0;
}

/**
 * Write an interior index node: the unused record spanning the block, limit for this
 * block size (one less with a dx_tail), one entry pointing at firstBlock. 0 or DIR_ERR_ARG.
 */
export function dxInitNode(ptr: usize, bs: u32, firstBlock: u32, hasCsum: bool): i32 {
  if (!dirBlockSizeValid(bs) || (firstBlock & ~(<u32>DX_BLOCK_MASK)) != 0) return DIR_ERR_ARG;
  memory.fill(ptr, 0, <usize>bs);
  setRecLen(ptr, 0, bs);
  const cl = ptr + <usize>DXN_ENTRIES;
  store<u16>(cl + DX_LIMIT, <u16>dxNodeLimit(bs, hasCsum));
  store<u16>(cl + DX_COUNT, 1);
  store<u32>(cl + DX_BLOCK, firstBlock);
  return 0;
}

/**
 * Split the interior node at srcPtr (checked with dxNodeCheck): entries [k, count) with
 * k = count / 2 move to a fresh node written at dstPtr, whose entry 0 takes entry k's
 * block. Returns k (the new count of src, >= 1) or an error code; dxLastSplitHash() is
 * entry k's hash, to be inserted into the parent for dst.
 */
export function dxSplitNode(srcPtr: usize, dstPtr: usize, bs: u32, hasCsum: bool): i32 {
  if (dxNodeCheck(srcPtr, bs, hasCsum) < 0) return DIRM_ERR_DX;
  const count = <u32>load<u16>(srcPtr + DXN_ENTRIES + DX_COUNT);
  if (count < 2) return DIRM_TOO_FEW;
  const k = count >>> 1;
  const first = entryAt(srcPtr, <u32>DXN_ENTRIES, k);
  lastSplitHash = load<u32>(first + DX_HASH);
  dxInitNode(dstPtr, bs, load<u32>(first + DX_BLOCK), hasCsum);
  const moved = count - k;
  // Entries k+1 .. count-1 become dst entries 1 .. moved-1 (hash and block alike).
  memory.copy(entryAt(dstPtr, <u32>DXN_ENTRIES, 1), entryAt(srcPtr, <u32>DXN_ENTRIES, k + 1),
    <usize>((moved - 1) * <u32>DX_ENTRY_SIZE));
  store<u16>(dstPtr + DXN_ENTRIES + DX_COUNT, <u16>moved);
  memory.fill(first, 0, <usize>(moved * <u32>DX_ENTRY_SIZE));
  store<u16>(srcPtr + DXN_ENTRIES + DX_COUNT, <u16>k);
  return <i32>k;
}

/**
 * Add an index level: every entry of the root (checked with dxRootCheck against
 * maxLevels) moves to a fresh node written at nodePtr, and the root keeps one entry
 * pointing at logical block nodeBlock, with indirect_levels + 1. Returns the new
 * indirect_levels, DIRM_NOSPC if that would reach maxLevels ("directory index full"), or
 * an error code.
 */
export function dxGrowRoot(rootPtr: usize, nodePtr: usize, bs: u32, nodeBlock: u32, hasCsum: bool, maxLevels: u32): i32 {
  if ((nodeBlock & ~(<u32>DX_BLOCK_MASK)) != 0) return DIR_ERR_ARG;
  const levels = dxRootCheck(rootPtr, bs, hasCsum, maxLevels);
  if (levels < 0) return DIRM_ERR_DX;
  const max = min<u32>(maxLevels, <u32>DX_MAX_LEVELS_LARGEDIR);
  if (<u32>levels + 2 > max) return DIRM_NOSPC;
  const count = <u32>load<u16>(rootPtr + DXR_ENTRIES + DX_COUNT);
  // A node holds three more entries than a root of the same block size, so all fit.
  dxInitNode(nodePtr, bs, load<u32>(rootPtr + DXR_ENTRIES + DX_BLOCK), hasCsum);
  memory.copy(entryAt(nodePtr, <u32>DXN_ENTRIES, 1), entryAt(rootPtr, <u32>DXR_ENTRIES, 1),
    <usize>((count - 1) * <u32>DX_ENTRY_SIZE));
  store<u16>(nodePtr + DXN_ENTRIES + DX_COUNT, <u16>count);
  memory.fill(entryAt(rootPtr, <u32>DXR_ENTRIES, 1), 0, <usize>((count - 1) * <u32>DX_ENTRY_SIZE));
  store<u16>(rootPtr + DXR_ENTRIES + DX_COUNT, 1);
  store<u32>(rootPtr + DXR_ENTRIES + DX_BLOCK, nodeBlock);
  store<u8>(rootPtr + DXR_INFO_INDIRECT_LEVELS, <u8>(levels + 1));
  return levels + 1;
}

/**
 * Turn the first block of a linear directory into an htree root: the live entries after
 * "." and ".." move, packed, into leafPtr (a fresh leaf, logical block leafBlock), and
 * block 0 is rewritten by dxInitRoot with the same "." / ".." inodes and types,
 * hashVersion (0..2, as stored) and one entry → leafBlock. Returns the number of entries
 * moved or an error code (DIRM_ERR_DOTS if block 0 does not start with "." and "..").
 */
export function dxConvertRoot(
  block0Ptr: usize, leafPtr: usize, bs: u32, hashVersion: u32, leafBlock: u32, hasTail: bool, hasCsum: bool,
): i32 {
  if (hashVersion > <u32>DX_HASH_TEA || (leafBlock & ~(<u32>DX_BLOCK_MASK)) != 0) return DIR_ERR_ARG;
  const end = leafCheck(block0Ptr, bs, hasTail, false);
  if (end < 0) return end;
  const r0 = recLen(block0Ptr, 0, bs);
  if (inodeAt(block0Ptr, 0) == 0 || nameLenAt(block0Ptr, 0) != 1 || load<u8>(block0Ptr + DE_NAME) != 0x2e) return DIRM_ERR_DOTS;
  if (r0 >= <u32>end) return DIRM_ERR_DOTS;
  const d = block0Ptr + <usize>r0;
  if (load<u32>(d + DE_INODE) == 0 || load<u8>(d + DE_NAME_LEN) != 2 || load<u16>(d + DE_NAME) != 0x2e2e) return DIRM_ERR_DOTS;
  const selfIno = inodeAt(block0Ptr, 0);
  const parentIno = load<u32>(d + DE_INODE);
  // Keep the dots' type byte, unless it is out of range (then unknown).
  let dotType = <u32>load<u8>(block0Ptr + DE_FILE_TYPE);
  if (dotType >= <u32>FT_MAX) dotType = 0;

  memory.fill(leafPtr, 0, <usize>bs);
  let w: u32 = 0;
  let last: i32 = -1;
  let moved: i32 = 0;
  let off = r0 + recLen(block0Ptr, r0, bs);
  while (off < <u32>end) {
    if (inodeAt(block0Ptr, off) != 0) {
      last = <i32>w;
      w += packEntry(leafPtr, w, block0Ptr, off);
      moved++;
    }
    off += recLen(block0Ptr, off, bs);
  }
  closeChain(leafPtr, last, w, <u32>end);
  if (hasTail) writeTail(leafPtr, bs);
  dxInitRoot(block0Ptr, bs, selfIno, parentIno, dotType, hashVersion, 0, leafBlock, hasCsum);
  return moved;
}
