/**
 * Building a directory of tens of thousands of entries for test images, fast.
 *
 * Why not plain `mke2fs -d`: libext2fs adds names one at a time and first looks each one
 * up with a linear scan of the directory, so 50,000 names take many minutes (debugfs `ln`
 * and `write` do the same lookup). Instead:
 *  1. on the host, the directory's entries are moved into small staging subdirectories
 *     (500 each), next to a placeholder file with exactly as many non-zero blocks as a
 *     plain (linear) directory of every name needs — then mke2fs -d runs fast;
 *  2. the host tree is put back (names, and the directory's times, exactly);
 *  3. in the image, this module writes the linear directory blocks itself into the
 *     placeholder's blocks (checksum tails from csum-ref.ts when metadata_csum is on),
 *     and debugfs points the directory's block map at them and clears the staging
 *     directories and the placeholder;
 *  4. the caller runs `e2fsck -fyD`, which fixes link counts and bitmaps and rebuilds the
 *     directory as an htree.
 * The caller then requires `e2fsck -fn` to pass, and tests compare every name with the
 * host, so a mistake here cannot pass silently.
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { csumContext, crc32cRaw, inodeSeed } from "./csum-ref.ts";
import { debugfsScript, listImage, rawInodeLocation } from "./image-oracle.ts";

/** Above this many entries the big directory is built through staging. */
export const STAGE_THRESHOLD = 3000;
const STAGE_CHUNK = 500;

/** Sets a host path's atime and mtime to exact nanoseconds (fixtures.setTimesExact). */
export type SetTimes = (path: string, atimeNs: bigint, mtimeNs: bigint) => void;

export interface StagedBig {
  dir: string;
  chunks: string[][];
  blobBlocks: number;
  blockSize: number;
  csumTail: boolean;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/*
 * A linear directory block as written here (ext4 format documentation, "Linear Directories"):
 *
 *   +0  inode u32 | rec_len u16 | name_len u8 | file_type u8 | name, padded to 4 bytes
 *   ... next entry at +rec_len; the last entry's rec_len runs to the end (or to the tail)
 *   bs-12 (metadata_csum only): inode 0 | rec_len 12 | name_len 0 | type 0xDE | crc32c u32
 */

/** Bytes a linear directory entry with a name of `len` bytes takes. */
function recLen(len: number): number {
  return (8 + len + 3) & ~3;
}

/** Number of blocks a linear directory of these names (plus '.' and '..') fills. */
function linearBlocks(names: readonly Buffer[], bs: number, tail: boolean): number {
  return linearLayout([Buffer.from("."), Buffer.from(".."), ...names], bs, tail).length;
}

/** Which entries go in which block (indexes into `names`). */
function linearLayout(names: readonly Buffer[], bs: number, tail: boolean): number[][] {
  const usable = bs - (tail ? 12 : 0);
  const blocks: number[][] = [[]];
  let off = 0;
  names.forEach((n, i) => {
    const need = recLen(n.length);
    if (off + need > usable) {
      blocks.push([]);
      off = 0;
    }
    blocks[blocks.length - 1]!.push(i);
    off += need;
  });
  return blocks;
}

/** Move `dir`'s entries into staging subdirectories and add the placeholder (host side). */
export function stageBigDir(dir: string, blockSize: number, csumTail: boolean, setTimes: SetTimes): StagedBig {
  const st = lstatSync(dir, { bigint: true });
  const names = readdirSync(dir).sort();
  const chunks: string[][] = [];
  for (let i = 0; i < names.length; i += STAGE_CHUNK) chunks.push(names.slice(i, i + STAGE_CHUNK));
  chunks.forEach((chunk, c) => {
    const sub = join(dir, `.stage-${c}`);
    mkdirSync(sub);
    for (const n of chunk) renameSync(join(dir, n), join(sub, n));
  });
  const blobBlocks = linearBlocks(names.map((n) => Buffer.from(n)), blockSize, csumTail);
  // Non-zero content, or mke2fs would leave holes instead of allocating blocks.
  writeFileSync(join(dir, ".blob"), Buffer.alloc(blobBlocks * blockSize, 0x5a));
  setTimes(dir, st.atimeNs, st.mtimeNs);
  return { dir, chunks, blobBlocks, blockSize, csumTail, atimeNs: st.atimeNs, mtimeNs: st.mtimeNs };
}

/** Undo stageBigDir exactly: entries back, staging gone, the directory's times restored. */
export function unstageBigDir(s: StagedBig, setTimes: SetTimes): void {
  s.chunks.forEach((chunk, c) => {
    const sub = join(s.dir, `.stage-${c}`);
    for (const n of chunk) if (existsSync(join(sub, n))) renameSync(join(sub, n), join(s.dir, n));
    rmSync(sub, { recursive: true, force: true });
  });
  rmSync(join(s.dir, ".blob"), { force: true });
  setTimes(s.dir, s.atimeNs, s.mtimeNs);
}

/** In the image: make `path` one linear directory of every staged name (e2fsck -fyD must follow). */
export async function mergeBigDir(img: string, path: string, s: StagedBig): Promise<void> {
  const listing = await listImage(img, { under: path, maxDepth: 2 });
  const ino = (p: string) => {
    const e = listing.get(p);
    if (!e) throw new Error(`big-dir merge: ${p} not in the image`);
    return e.ino;
  };
  const bigIno = ino(path);
  const blobIno = ino(`${path}/.blob`);
  const entries: Array<{ name: Buffer; ino: number; type: number }> = [
    { name: Buffer.from("."), ino: bigIno, type: 2 },
    { name: Buffer.from(".."), ino: 2, type: 2 },
  ];
  s.chunks.forEach((chunk, c) => {
    for (const n of chunk) entries.push({ name: Buffer.from(n), ino: ino(`${path}/.stage-${c}/${n}`), type: 1 });
  });
  const head = Buffer.alloc(2048);
  const blobInode = Buffer.alloc(256);
  const fd = openSync(img, "r+");
  try {
    readSync(fd, head, 0, 2048, 0);
    const ctx = csumContext(head);
    const bs = s.blockSize;
    const blobLoc = await rawInodeLocation(img, blobIno, bs);
    const bigLoc = await rawInodeLocation(img, bigIno, bs);
    const bigInode = Buffer.alloc(256);
    readSync(fd, blobInode, 0, 256, blobLoc);
    readSync(fd, bigInode, 0, 256, bigLoc);
    const phys = await blockList(img, blobIno);
    if (phys.length !== s.blobBlocks) throw new Error(`big-dir merge: placeholder has ${phys.length} blocks, expected ${s.blobBlocks}`);
    const seed = inodeSeed(ctx, bigIno, bigInode.readUInt32LE(0x64));
    const layout = linearLayout(entries.map((e) => e.name), bs, s.csumTail && ctx.metadataCsum);
    if (layout.length !== phys.length) throw new Error(`big-dir merge: layout needs ${layout.length} blocks, have ${phys.length}`);
    layout.forEach((idx, b) => {
      const blk = Buffer.alloc(bs);
      const usable = bs - (ctx.metadataCsum ? 12 : 0);
      let off = 0;
      idx.forEach((i, k) => {
        const e = entries[i]!;
        const rl = k === idx.length - 1 ? usable - off : recLen(e.name.length);
        blk.writeUInt32LE(e.ino, off);
        blk.writeUInt16LE(rl, off + 4);
        blk[off + 6] = e.name.length;
        blk[off + 7] = e.type;
        e.name.copy(blk, off + 8);
        off += rl;
      });
      if (ctx.metadataCsum) {
        blk.writeUInt16LE(12, usable + 4);
        blk[usable + 7] = 0xde;
        blk.writeUInt32LE(crc32cRaw(seed, blk, 0, usable), usable + 8);
      }
      writeSync(fd, blk, 0, bs, phys[b]! * bs);
    });
  } finally {
    closeSync(fd);
  }
  // Point the directory at those blocks (copying the placeholder's block map, size and
  // block count), drop the staging directories and the placeholder; e2fsck fixes the rest.
  const blob = blobInode;
  const cmds: string[] = [];
  s.chunks.forEach((_, c) => cmds.push(`clri <${ino(`${path}/.stage-${c}`)}>`));
  const field = ["block[0]", "block[1]", "block[2]", "block[3]", "block[4]", "block[5]", "block[6]", "block[7]",
    "block[8]", "block[9]", "block[10]", "block[11]", "block[IND]", "block[DIND]", "block[TIND]"];
  field.forEach((f, i) => cmds.push(`sif <${bigIno}> ${f} ${blob.readUInt32LE(0x28 + 4 * i)}`));
  cmds.push(`sif <${bigIno}> size ${s.blobBlocks * s.blockSize}`);
  cmds.push(`sif <${bigIno}> blocks ${blob.readUInt32LE(0x1c)}`);
  cmds.push(`sif <${bigIno}> flags ${blob.readUInt32LE(0x20)}`);
  cmds.push(`clri <${blobIno}>`);
  const r = await debugfsScript(img, cmds, { write: true });
  if (/Invalid|not found|error/i.test(r.stderr.replace(/^debugfs [\d.]+ .*$/m, ""))) {
    throw new Error(`big-dir merge: debugfs complained:\n${r.stderr}`);
  }
}

/** Physical blocks of an inode's data, in logical order (debugfs "blocks"). */
async function blockList(img: string, ino: number): Promise<number[]> {
  const r = await debugfsScript(img, [`blocks <${ino}>`]);
  return r.stdout.split("\n").filter((l) => !l.startsWith("debugfs")).join(" ").trim().split(/\s+/).filter(Boolean).map(Number);
}

