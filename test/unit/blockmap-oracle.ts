/**
 * Helpers for the block-mapping tests (extents.test.ts, indirect.test.ts): build sparse
 * source files with known data regions, find an inode's record in an image made by
 * mke2fs, and parse what debugfs prints about a file's mapping (`ex`, `bmap`, `blocks`,
 * the BLOCKS section of `stat`). e2fsprogs is the oracle: nothing here uses the engine.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { debugfs, parseColonLines, tool } from "./e2fs-oracle.ts";

/** Deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random integer in [lo, hi]. */
export const pick = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

export interface Region {
  lblk: number;
  blocks: number;
}

/**
 * Write a sparse file whose only data are `regions` (random, never all-zero bytes) and
 * whose size is `size` bytes (0: the end of the last region; smaller cuts the last region).
 */
export function writeSparse(path: string, regions: Region[], bs: number, seed: number, size = 0): void {
  const r = rng(seed);
  const fd = openSync(path, "w");
  try {
    let end = 0;
    for (const g of regions) {
      const buf = Buffer.alloc(g.blocks * bs);
      for (let i = 0; i < buf.length; i += 4) buf.writeUInt32LE((Math.floor(r() * 4294967296) | 1) >>> 0, i);
      writeSync(fd, buf, 0, buf.length, g.lblk * bs);
      end = Math.max(end, (g.lblk + g.blocks) * bs);
    }
    ftruncateSync(fd, size > 0 ? size : end);
  } finally {
    closeSync(fd);
  }
}

export interface FsInfo {
  blockSize: number;
  blocksCount: number;
  firstDataBlock: number;
  inodeSize: number;
}

/** Geometry from `dumpe2fs -h`. */
export function fsInfo(img: string): FsInfo {
  const m = parseColonLines(tool("dumpe2fs", ["-h", img]));
  return {
    blockSize: Number(m.get("Block size")),
    blocksCount: Number(m.get("Block count")),
    firstDataBlock: Number(m.get("First block")),
    inodeSize: Number(m.get("Inode size")),
  };
}

export interface InodeLoc {
  ino: number;
  record: Buffer;
  size: number;
  generation: number;
}

/** The inode record of `path`, located with debugfs `stat` and `imap`, read from the image bytes. */
export function inodeOf(img: string, image: Buffer, path: string, info: FsInfo): InodeLoc {
  const st = debugfs(img, `stat ${path}`);
  const ino = Number(/Inode: (\d+)/.exec(st)![1]);
  const generation = Number(/Generation: (\d+)/.exec(st)![1]);
  const size = Number(/Size: (\d+)/.exec(st)![1]);
  const im = debugfs(img, `imap <${ino}>`);
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(im)!;
  const off = Number(m[1]) * info.blockSize + parseInt(m[2], 16);
  return { ino, record: Buffer.from(image.subarray(off, off + info.inodeSize)), size, generation };
}

/** Byte offset of `ino`'s record in the image (for corrupting i_block in place). */
export function inodeOffset(img: string, ino: number, bs: number): number {
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(debugfs(img, `imap <${ino}>`))!;
  return Number(m[1]) * bs + parseInt(m[2], 16);
}

export interface ExLine {
  level: number;
  maxLevel: number;
  entry: number;
  entries: number;
  lstart: number;
  lend: number;
  pstart: number;
  pend?: number;
  len: number;
  uninit: boolean;
}

/** `debugfs -R "ex FILE"`: one record per index entry and leaf extent, in print order. */
export function parseEx(text: string): ExLine[] {
  const out: ExLine[] = [];
  const re = /^\s*(\d+)\/\s*(\d+)\s+(\d+)\/\s*(\d+)\s+(\d+)\s+-\s+(\d+)\s+(\d+)(?:\s+-\s+(\d+))?\s+(\d+)\s*(.*)$/;
  for (const line of text.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    out.push({
      level: Number(m[1]), maxLevel: Number(m[2]), entry: Number(m[3]), entries: Number(m[4]),
      lstart: Number(m[5]), lend: Number(m[6]), pstart: Number(m[7]),
      pend: m[8] === undefined ? undefined : Number(m[8]), len: Number(m[9]), uninit: /Uninit/.test(m[10]),
    });
  }
  return out;
}

/** `bmap FILE lblk` for each lblk in one debugfs session: physical block (0 = hole) and the uninit mark. */
export function bmapBatch(img: string, path: string, lblks: number[]): { pblk: number; uninit: boolean }[] {
  const text = tool("debugfs", ["-f", "-", img], lblks.map((l) => `bmap ${path} ${l}`).join("\n") + "\n");
  const res: { pblk: number; uninit: boolean }[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("debugfs:") || line.trim() === "") continue;
    const m = /^(\d+)( \(uninit\))?/.exec(line.trim());
    if (!m) throw new Error(`unexpected bmap output: ${line}`);
    res.push({ pblk: Number(m[1]), uninit: !!m[2] });
  }
  if (res.length !== lblks.length) throw new Error(`bmap: ${res.length} answers for ${lblks.length} requests`);
  return res;
}

/** `blocks FILE`: every block the inode uses (data and mapping metadata). */
export function blocksOf(img: string, path: string): number[] {
  return debugfs(img, `blocks ${path}`).trim().split(/\s+/).filter(Boolean).map(Number);
}

export interface StatBlocks {
  /** lblk → pblk for every mapped data block. */
  data: Map<number, number>;
  /** Mapping metadata blocks by kind: IND, DIND, TIND. */
  meta: { kind: string; pblk: number }[];
}

/** The BLOCKS: section of `stat FILE` for a block-mapped file. */
export function statBlocks(img: string, path: string): StatBlocks {
  const text = debugfs(img, `stat ${path}`);
  const i = text.indexOf("BLOCKS:");
  const body = i < 0 ? "" : text.slice(i + 7, text.indexOf("TOTAL:", i));
  const data = new Map<number, number>();
  const meta: { kind: string; pblk: number }[] = [];
  for (const item of body.split(",").map((s) => s.trim()).filter(Boolean)) {
    let m = /^\((IND|DIND|TIND)\):(\d+)$/.exec(item);
    if (m) {
      meta.push({ kind: m[1], pblk: Number(m[2]) });
      continue;
    }
    m = /^\((\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?$/.exec(item);
    if (!m) throw new Error(`unexpected stat BLOCKS item: ${item}`);
    const l0 = Number(m[1]);
    const l1 = m[2] === undefined ? l0 : Number(m[2]);
    const p0 = Number(m[3]);
    const p1 = m[4] === undefined ? p0 : Number(m[4]);
    if (l1 - l0 !== p1 - p0) throw new Error(`uneven stat BLOCKS item: ${item}`);
    for (let k = 0; k <= l1 - l0; k++) data.set(l0 + k, p0 + k);
  }
  return { data, meta };
}
