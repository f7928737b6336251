// Linear directory blocks: validation, lookup by name, and streaming iteration.
//
// Why in the engine: every path component of every lookup scans directory blocks, and a
// readdir of a large directory walks all of them; doing the walk where the block already
// lives (the block cache in linear memory) costs one boundary call per block instead of
// one per entry. The bindings read blocks, keep the per-directory state (which block,
// which offset) and turn the numbers returned here into FsError codes.
//
// A block is a chain of ext4_dir_entry_2 records (layout in ondisk/dirent.ts), each
// rec_len bytes long, tiling the block exactly:
//
//   0            rec_len[0]          +rec_len[1]                      blockSize-12  blockSize
//   | inode|rl|nl|ft|name..pad | inode|rl|nl|ft|name....  (slack)  |  ...  | tail (12)  |
//   |<------- entry 0 -------->|<------------ entry 1 -------------->|       |<- csum --->|
//
// An entry with inode 0 is a free slot (a deleted first entry, or a fresh block); its name
// bytes are leftovers and are never reported. With metadata_csum ("hasTail") the chain
// must end at blockSize - 12, where a well-formed ext4_dir_entry_tail sits.
//
// Rules enforced on every entry (the kernel's ext4_check_dir_entry plus e2fsck's name
// checks), so that nothing read from a hostile image can make us read outside the block,
// loop forever or report garbage:
//   - the 12-byte minimum entry fits before the end of the chain;
//   - rec_len >= 12, rec_len % 4 == 0, the entry does not cross the end of the chain;
//   - rec_len >= 8 + name_len rounded up to 4 (the name fits in its own record);
//   - a live entry (inode != 0) has 1 <= name_len and no '/' or NUL in its name, and an
//     inode number no greater than the limit set with dirSetInodeLimit (if any);
//   - the chain ends exactly at blockSize (no tail) or at blockSize - 12 followed by a
//     tail (hasTail).
// Every step advances by rec_len >= 12, so a walk takes at most blockSize / 12 steps.
//
// Checked once per fill ("shaped"): the bindings pass shaped = true for a block that
// passed a full check since the block cache last filled it from the device (the cache's
// CACHE_SHAPED flag, cleared on every fill) and that only this engine's edits have
// touched since — edits that keep a block well-formed. Such a block is not re-scanned
// name byte by name byte (the bulk of the cost) nor re-checked for name_len 0 or the
// inode limit; the chain's geometry (rec_len >= 12, aligned, inside the chain, the name
// inside its record, the tail or index shape) is still walked, which is what keeps every
// later loop finite and inside the block even if the promise were ever wrong.
//
// htree directories: their index blocks masquerade as directory blocks, and a linear
// reader (readdir) meets them. They are recognised by shape and accepted even with
// hasTail, because their checksum lives in a dx_tail instead:
//   dx root  "." (rec_len 12) then ".." whose rec_len reaches the block end, hiding the
//            index in its slack → yields "." and "..";
//   dx node  one unused entry (inode 0, name_len 0) spanning the whole block → yields
//            nothing.
// Without hasTail such blocks are ordinary chains anyway.
//
// name_len and file_type: name_len is the byte at offset 6. Without INCOMPAT_FILETYPE the
// byte at offset 7 was once the high byte of a 16-bit name_len; since names never exceed
// 255 bytes, Linux and e2fsprogs read only the low byte and ignore the other, and so do
// we (hasFileType = false only makes every type FT_UNKNOWN). Types >= FT_MAX read as
// FT_UNKNOWN too.
//
// rec_len of 64 KiB blocks: a whole-block length does not fit in 16 bits and is stored as
// 65535 or 0; we decode those to 65536 when blockSize is 65536.
//
// Error returns are negative DIR_ERR_* codes; -1 (DIR_NOT_FOUND) is reserved for a lookup
// that found nothing in a valid block. No function here writes the block or traps.

import {
  DE_HEADER_SIZE, DE_INODE, DE_NAME, DE_NAME_LEN, DE_NAME_MAX, DE_FILE_TYPE, DE_REC_LEN,
  DET_REC_LEN, DET_RESERVED_FT, DET_RESERVED_FT_VALUE, DET_RESERVED_ZERO1, DET_RESERVED_ZERO2,
  DET_SIZE, FT_MAX, FT_UNKNOWN,
} from "./ondisk/dirent";

/** dirLookup: no live entry of that name in a valid block. */
export const DIR_NOT_FOUND: i32 = -1;
/** An entry's rec_len is below 12 or too small for its name. */
export const DIR_ERR_REC_LEN: i32 = -2;
/** An entry's rec_len is not a multiple of 4. */
export const DIR_ERR_ALIGN: i32 = -3;
/** An entry crosses the end of the block (or the start of the checksum tail). */
export const DIR_ERR_OVERRUN: i32 = -4;
/** A live entry has name_len 0. */
export const DIR_ERR_NAME_LEN: i32 = -5;
/** A live entry's name contains '/' or NUL. */
export const DIR_ERR_NAME: i32 = -6;
/** hasTail, but the block has no well-formed checksum tail (and is no htree index block). */
export const DIR_ERR_TAIL: i32 = -7;
/** A live entry names an inode above the limit set with dirSetInodeLimit. */
export const DIR_ERR_INODE: i32 = -8;
/** Bad argument: block size not a power of two in [1024, 65536], or output too small. */
export const DIR_ERR_ARG: i32 = -9;

/** dirIterate record header: u32 inode, u8 type, u8 name length; the name follows. */
export const DIR_REC_HEADER: i32 = 6;
/** The smallest output buffer dirIterate accepts: one record with a 255-byte name. */
export const DIR_ITER_MIN_CAP: i32 = 6 + 255;

// Entries naming an inode above this are corrupt; 0 = no limit.
let inodeLimit: u32 = 0;
// Where the last dirIterate call stopped.
let iterNext: u32 = 0;
// End of the entry chain found by the last successful checkBlock (blockSize or blockSize-12).
let chainEnd: u32 = 0;
// The first live entry the last checkBlock found named by its name argument, or -1.
let matchOff: i32 = -1;
// The first record the last checkBlock found with `need` bytes of slack, or -1.
let fitOff: i32 = -1;

/** Set the highest valid inode number (s_inodes_count); 0 disables the check. */
export function dirSetInodeLimit(count: u32): void {
  inodeLimit = count;
}

/** True if blockSize is a power of two in [1024, 65536]. */
export function dirBlockSizeValid(blockSize: u32): bool {
  return blockSize >= 1024 && blockSize <= 65536 && (blockSize & (blockSize - 1)) == 0;
}

// rec_len as stored → length (the 64 KiB special values mean the whole block).
// @ts-ignore: decorator
@inline function recLenAt(blockPtr: usize, off: u32, blockSize: u32): u32 {
  const raw = <u32>load<u16>(blockPtr + <usize>off + DE_REC_LEN);
  if (blockSize >= 65536 && (raw == 0 || raw == 65535)) return 65536;
  return raw;
}

// @ts-ignore: decorator
@inline function nameLenAt(blockPtr: usize, off: u32): u32 {
  return <u32>load<u8>(blockPtr + <usize>off + DE_NAME_LEN);
}

// @ts-ignore: decorator
@inline function inodeAt(blockPtr: usize, off: u32): u32 {
  return load<u32>(blockPtr + <usize>off + DE_INODE);
}

// @ts-ignore: decorator
@inline function typeAt(blockPtr: usize, off: u32, hasFileType: bool): u32 {
  if (!hasFileType) return <u32>FT_UNKNOWN;
  const t = <u32>load<u8>(blockPtr + <usize>off + DE_FILE_TYPE);
  return t < <u32>FT_MAX ? t : <u32>FT_UNKNOWN;
}

/** Smallest rec_len that holds a name of nameLen bytes: 8 + nameLen rounded up to 4. */
export function dirRecLenFor(nameLen: u32): u32 {
  return (<u32>DE_HEADER_SIZE + nameLen + 3) & ~(<u32>3);
}

// Validate the entry at `off` (off + 12 <= blockSize already known); returns its rec_len
// or a negative DIR_ERR_*. Entries may reach the block end; the caller decides whether
// that end is allowed. shaped: geometry only (see the file header). Inlined: it runs for
// every record of every block a lookup or an add walks.
// @ts-ignore: decorator
@inline function checkEntry(blockPtr: usize, blockSize: u32, off: u32, shaped: bool): i32 {
  const rl = recLenAt(blockPtr, off, blockSize);
  if (rl < 12) return DIR_ERR_REC_LEN;
  if ((rl & 3) != 0) return DIR_ERR_ALIGN;
  if (rl > blockSize - off) return DIR_ERR_OVERRUN;
  const nl = nameLenAt(blockPtr, off);
  if (dirRecLenFor(nl) > rl) return DIR_ERR_REC_LEN;
  if (shaped) return <i32>rl;
  const ino = inodeAt(blockPtr, off);
  if (ino != 0) {
    if (nl == 0) return DIR_ERR_NAME_LEN;
    if (inodeLimit != 0 && ino > inodeLimit) return DIR_ERR_INODE;
    const name = blockPtr + <usize>off + DE_NAME;
    // The name lies inside the record (checked above), hence inside the block.
    for (let i: u32 = 0; i < nl; i++) {
      const c = load<u8>(name + <usize>i);
      if (c == 0 || c == 0x2f) return DIR_ERR_NAME;
    }
  }
  return <i32>rl;
}

// True if the last 12 bytes are a checksum tail (the checksum value itself is csum.ts's).
function tailAt(blockPtr: usize, blockSize: u32): bool {
  const t = blockPtr + <usize>(blockSize - <u32>DET_SIZE);
  return load<u32>(t + DET_RESERVED_ZERO1) == 0 &&
    <i32>load<u16>(t + DET_REC_LEN) == DET_SIZE &&
    load<u8>(t + DET_RESERVED_ZERO2) == 0 &&
    <i32>load<u8>(t + DET_RESERVED_FT) == DET_RESERVED_FT_VALUE;
}

// True if the (already validated) chain has the shape of an htree root or interior node.
function dxShape(blockPtr: usize, blockSize: u32): bool {
  const first = recLenAt(blockPtr, 0, blockSize);
  if (first == blockSize) return inodeAt(blockPtr, 0) == 0 && nameLenAt(blockPtr, 0) == 0;
  if (first != 12 || nameLenAt(blockPtr, 0) != 1 || load<u8>(blockPtr + DE_NAME) != 0x2e) return false;
  if (recLenAt(blockPtr, 12, blockSize) != blockSize - 12 || nameLenAt(blockPtr, 12) != 2) return false;
  return load<u8>(blockPtr + 12 + DE_NAME) == 0x2e && load<u8>(blockPtr + 12 + DE_NAME + 1) == 0x2e;
}

/**
 * True if the live entry at off (validated) is named by the nameLen bytes at namePtr. The
 * last four bytes are compared first: names made in sequence ("f000123", "f000124")
 * share their start, and a lookup or add compares against every entry of a block.
 */
export function dirNameIs(blockPtr: usize, off: u32, namePtr: usize, nameLen: u32): bool {
  return nameIsAt(blockPtr, off, namePtr, nameLen);
}

// dirNameIs, inlined into the block walk.
// @ts-ignore: decorator
@inline function nameIsAt(blockPtr: usize, off: u32, namePtr: usize, nameLen: u32): bool {
  if (inodeAt(blockPtr, off) == 0 || nameLenAt(blockPtr, off) != nameLen) return false;
  const name = blockPtr + <usize>off + DE_NAME;
  if (nameLen >= 4 && load<u32>(name + <usize>nameLen - 4) != load<u32>(namePtr + <usize>nameLen - 4)) return false;
  return memory.compare(name, namePtr, <usize>nameLen) == 0;
}

/** End of the record chain of the block the last successful dirBlockCheck accepted. */
export function dirCheckedChainEnd(): u32 {
  return chainEnd;
}

/**
 * dirBlockCheck for an add (dir_mod.ts dirAddEntry), in the same single pass: 0 or a
 * DIR_ERR_*, and then dirCheckedMatch() is the first live entry named by the nameLen
 * bytes at namePtr (a duplicate) or -1, dirCheckedFit() the first record whose slack
 * holds `need` bytes or -1.
 */
export function dirBlockCheckForAdd(blockPtr: usize, blockSize: u32, hasTail: bool, shaped: bool, namePtr: usize, nameLen: u32, need: u32): i32 {
  return checkBlock(blockPtr, blockSize, hasTail, shaped, namePtr, nameLen, need);
}

/** See dirBlockCheckForAdd. */
export function dirCheckedMatch(): i32 {
  return matchOff;
}

/** See dirBlockCheckForAdd. */
export function dirCheckedFit(): i32 {
  return fitOff;
}

// Validate the whole block (shaped: its geometry only); on success set chainEnd, return 0.
// In the same pass, matchOff becomes the first live entry named by the nameLen (> 0)
// bytes at namePtr, or -1, and fitOff the first record with `need` (> 0) bytes of slack
// (rec_len less what its own entry uses), or -1: a lookup or an add walks the block
// once, not once to check and once to search (the answers only count once the whole
// block passed).
function checkBlock(blockPtr: usize, blockSize: u32, hasTail: bool, shaped: bool, namePtr: usize = 0, nameLen: u32 = 0, need: u32 = 0): i32 {
  if (!dirBlockSizeValid(blockSize)) return DIR_ERR_ARG;
  const tailOff = blockSize - <u32>DET_SIZE;
  let off: u32 = 0;
  matchOff = -1;
  fitOff = -1;
  while (off < blockSize) {
    if (hasTail && off == tailOff) {
      if (!tailAt(blockPtr, blockSize)) return DIR_ERR_TAIL;
      chainEnd = tailOff;
      return 0;
    }
    // The minimum entry must fit; this also keeps the header reads inside the block.
    if (blockSize - off < 12) return DIR_ERR_OVERRUN;
    const r = checkEntry(blockPtr, blockSize, off, shaped);
    if (r < 0) return r;
    // checkEntry proved the name inside the record, hence inside the block.
    if (nameLen != 0 && matchOff < 0 && nameIsAt(blockPtr, off, namePtr, nameLen)) matchOff = <i32>off;
    if (need != 0 && fitOff < 0) {
      const used = inodeAt(blockPtr, off) != 0 ? dirRecLenFor(nameLenAt(blockPtr, off)) : 0;
      if (<u32>r - used >= need) fitOff = <i32>off;
    }
    off += <u32>r;
  }
  // The chain tiles the whole block: fine without a tail, or for an htree index block.
  if (hasTail && !dxShape(blockPtr, blockSize)) return DIR_ERR_TAIL;
  chainEnd = blockSize;
  return 0;
}

/**
 * 0 if the block at blockPtr (blockSize bytes) is a valid directory block (with a
 * checksum tail when hasTail, or an htree index block), else a negative DIR_ERR_* code.
 * shaped: the block passed this check since it was read and only our edits changed it
 * (file header), so only its geometry is checked again.
 */
export function dirBlockCheck(blockPtr: usize, blockSize: u32, hasTail: bool, shaped: bool): i32 {
  return checkBlock(blockPtr, blockSize, hasTail, shaped);
}

/**
 * Byte offset of the live entry named by the nameLen bytes at namePtr, DIR_NOT_FOUND
 * (-1), or a DIR_ERR_* code (< -1) if the block is invalid (checked in full first, or
 * only its geometry when shaped — see the file header). need (> 0; a JS caller that
 * omits it passes 0): also find, in the same pass, the first record with that many bytes
 * of slack, then given by dirCheckedFit() — where a miss would be inserted.
 */
export function dirLookup(blockPtr: usize, blockSize: u32, namePtr: usize, nameLen: u32, hasTail: bool, shaped: bool, need: u32): i32 {
  const valid = nameLen != 0 && nameLen <= <u32>DE_NAME_MAX;
  const r = checkBlock(blockPtr, blockSize, hasTail, shaped, namePtr, valid ? nameLen : 0, need);
  if (r < 0) return r;
  return matchOff >= 0 ? matchOff : DIR_NOT_FOUND;
}

/**
 * Pack the live entries at byte offsets >= startOff into outPtr (outCap >= 261 bytes) as
 * records [u32 inode LE][u8 type][u8 nameLen][name], no padding, in block order, stopping
 * before the first record that does not fit. Returns the record count or a DIR_ERR_*
 * code; dirIterateNextOffset() then tells where to resume (blockSize when done).
 * shaped: as for dirLookup.
 */
export function dirIterate(
  blockPtr: usize, blockSize: u32, startOff: u32, outPtr: usize, outCap: u32, hasTail: bool, hasFileType: bool, shaped: bool,
): i32 {
  iterNext = startOff;
  if (outCap < <u32>DIR_ITER_MIN_CAP) return DIR_ERR_ARG;
  const r = checkBlock(blockPtr, blockSize, hasTail, shaped);
  if (r < 0) return r;
  let n: i32 = 0;
  let used: u32 = 0;
  let off: u32 = 0;
  while (off < chainEnd) {
    const rl = recLenAt(blockPtr, off, blockSize);
    const ino = inodeAt(blockPtr, off);
    // A startOff inside an entry (the block changed between calls) resumes at the next one.
    if (off >= startOff && ino != 0) {
      const nl = nameLenAt(blockPtr, off);
      const need = <u32>DIR_REC_HEADER + nl;
      if (need > outCap - used) {
        iterNext = off;
        return n;
      }
      const o = outPtr + <usize>used;
      store<u32>(o, ino);
      store<u8>(o + 4, <u8>typeAt(blockPtr, off, hasFileType));
      store<u8>(o + 5, <u8>nl);
      memory.copy(o + <usize>DIR_REC_HEADER, blockPtr + <usize>off + DE_NAME, <usize>nl);
      used += need;
      n++;
    }
    off += rl;
  }
  iterNext = blockSize;
  return n;
}

/** Offset at which the last dirIterate stopped: pass it as the next startOff. */
export function dirIterateNextOffset(): u32 {
  return iterNext;
}

// Field accessors for an entry offset returned by dirLookup. An offset whose 8-byte
// header would not lie inside the block reads as 0 instead of touching other memory.

/** Inode number of the entry at byte offset off (0 if off is out of range). */
export function dirEntryInode(blockPtr: usize, blockSize: u32, off: u32): u32 {
  if (off > blockSize || blockSize - off < <u32>DE_HEADER_SIZE) return 0;
  return inodeAt(blockPtr, off);
}

/** Decoded rec_len of the entry at off (0 if off is out of range). */
export function dirEntryRecLen(blockPtr: usize, blockSize: u32, off: u32): u32 {
  if (off > blockSize || blockSize - off < <u32>DE_HEADER_SIZE) return 0;
  return recLenAt(blockPtr, off, blockSize);
}

/** name_len of the entry at off (0 if off is out of range). */
export function dirEntryNameLen(blockPtr: usize, blockSize: u32, off: u32): u32 {
  if (off > blockSize || blockSize - off < <u32>DE_HEADER_SIZE) return 0;
  return nameLenAt(blockPtr, off);
}

/** FT_* type of the entry at off; FT_UNKNOWN without the filetype feature or if unknown. */
export function dirEntryType(blockPtr: usize, blockSize: u32, off: u32, hasFileType: bool): u32 {
  if (off > blockSize || blockSize - off < <u32>DE_HEADER_SIZE) return <u32>FT_UNKNOWN;
  return typeAt(blockPtr, off, hasFileType);
}

/** Address of the name of the entry at off (no memory is read). */
export function dirEntryNamePtr(blockPtr: usize, off: u32): usize {
  return blockPtr + <usize>off + DE_NAME;
}
