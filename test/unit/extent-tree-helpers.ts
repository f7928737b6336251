/**
 * Stand-ins and oracles for the extent-tree tests (extent-tree.test.ts).
 *
 * - makeTreeImage: an ext4 image made by mke2fs, with one empty extent-mapped file made by
 *   debugfs, and every group's block bitmap initialised (a filler file is fallocated and
 *   removed by debugfs, which clears BLOCK_UNINIT) so the stand-in allocator can work on
 *   plain bitmaps.
 * - TestAllocator: the BlockAllocator stand-in (the real one is another engineer's). It
 *   takes free blocks from the on-disk block bitmaps through the handle, keeps each
 *   group's free count, bitmap checksum and descriptor checksum right, and copies the
 *   descriptor into its descriptor-table block. Freeing a block that is not in use throws
 *   (catches double frees). e2fsck then judges: its bitmaps must equal the blocks the
 *   tree references, so every leak or dangling block shows.
 * - writeInode / syncSuperFree: put the file's i_block, i_blocks and i_size back, and the
 *   superblock's free count, the way the lead's sync will.
 * - MapModel: the obviously-correct per-block model of a file's mapping.
 * - leafRuns / canonical: debugfs `ex` output and the model reduced to the same canonical
 *   form (maximal runs, logically + physically contiguous, same state).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Volume } from "../../bindings/fs/volume.ts";
import { CacheHandle, type BlockAllocator, type Handle } from "../../bindings/journal/handle.ts";
import { FsError } from "../../bindings/fs/errors.ts";
import { type ExLine, parseEx } from "./blockmap-oracle.ts";

const ENV = { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ""}`, LC_ALL: "C", TZ: "UTC" };

export function run(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { env: ENV, input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], maxBuffer: 256 << 20 });
}

export function runStatus(cmd: string, args: string[]): { status: number; out: string } {
  try {
    return { status: 0, out: run(cmd, args) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? -1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

export interface TreeImage {
  dir: string;
  img: string;
  ino: number;
  cleanup(): void;
}

/** mke2fs image of `blocks` blocks with an empty extent-mapped file /f (inode returned). */
export function makeTreeImage(blockSize: number, blocks: number, extraMkfs: string[] = []): TreeImage {
  const dir = mkdtempSync(join(tmpdir(), "ext-tree-"));
  const img = join(dir, "img");
  run("mke2fs", ["-q", "-F", "-t", "ext4", "-b", String(blockSize), ...extraMkfs, img, String(blocks)]);
  // fallocate fails outright when asked for more than is free: leave room for its tree.
  const free = Number(/^Free blocks:\s+(\d+)/m.exec(run("dumpe2fs", ["-h", img]))?.[1] ?? 0);
  run("debugfs", ["-w", "-f", "-", img], [
    "write /dev/null /f",
    "write /dev/null /filler",
    `fallocate /filler 0 ${free - Math.ceil(free / 50) - 64}`,
    "rm /filler",
  ].join("\n") + "\n");
  const dump = run("dumpe2fs", [img]);
  if (/BLOCK_UNINIT/.test(dump)) throw new Error("test image still has BLOCK_UNINIT groups");
  const stat = run("debugfs", ["-R", "stat /f", img]);
  const m = /Inode:\s+(\d+)/.exec(stat);
  if (!m) throw new Error("no inode for /f");
  return { dir, img, ino: Number(m[1]), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The BlockAllocator stand-in over the volume's block bitmaps (see the file header). */
export class TestAllocator implements BlockAllocator {
  allocated = 0;
  freed = 0;
  private readonly x: any;
  private readonly bs: number;
  private readonly bpg: number;
  private readonly firstData: number;
  private readonly blocksCount: number;
  private readonly groups: number;
  private readonly descSize: number;
  private readonly BLOCK_UNINIT: number;

  constructor(private readonly vol: Volume) {
    this.x = vol.engine.x;
    this.bs = vol.blockSize;
    this.bpg = this.x.geoBlocksPerGroup() >>> 0;
    this.firstData = this.x.geoFirstDataBlock() >>> 0;
    this.blocksCount = vol.sb.blocksCount;
    this.groups = this.x.geoGroupCount() >>> 0;
    this.descSize = this.x.geoDescSize() >>> 0;
    this.BLOCK_UNINIT = vol.engine.constant("BG_BLOCK_UNINIT");
  }

  private start(g: number): number {
    return this.firstData + g * this.bpg;
  }

  private len(g: number): number {
    return Math.min(this.bpg, this.blocksCount - this.start(g));
  }

  async allocBlocks(h: Handle, goal: number, want: number, minLen = 1): Promise<{ start: number; len: number }> {
    if (!(want >= 1 && minLen >= 1 && minLen <= want)) throw new Error(`bad alloc request ${want}/${minLen}`);
    const g0 = goal >= this.firstData && goal < this.blocksCount ? Math.floor((goal - this.firstData) / this.bpg) : 0;
    for (let t = 0; t <= this.groups; t++) {
      const g = (g0 + t) % this.groups;
      if ((this.x.groupFlags(g) & this.BLOCK_UNINIT) !== 0) throw new Error(`group ${g} is BLOCK_UNINIT`);
      if ((this.x.groupFreeBlocks(g) >>> 0) < minLen) continue;
      const ref = await h.getWriteAccess(this.x.groupBlockBitmapF(g));
      const bits = this.vol.engine.bytes(ref.ptr, this.bs);
      const n = this.len(g);
      const from = t === 0 ? Math.max(0, goal - this.start(g)) : 0;
      const found = findRun(bits, n, from, want, minLen) ?? (from > 0 ? findRun(bits, from, 0, want, minLen) : undefined);
      if (!found) {
        h.release(ref);
        continue;
      }
      for (let i = found.bit; i < found.bit + found.len; i++) bits[i >> 3] |= 1 << (i & 7);
      h.dirty(ref);
      await this.account(h, g, -found.len, ref.ptr);
      this.allocated += found.len;
      return { start: this.start(g) + found.bit, len: found.len };
    }
    throw new FsError("ENOSPC", "test allocator: no free run");
  }

  async freeBlocks(h: Handle, start: number, len: number): Promise<void> {
    let b = start;
    const end = start + len;
    if (!(start >= this.firstData && end <= this.blocksCount && len >= 1)) throw new Error(`free of bad run ${start}+${len}`);
    while (b < end) {
      const g = Math.floor((b - this.firstData) / this.bpg);
      const stop = Math.min(end, this.start(g) + this.len(g));
      const ref = await h.getWriteAccess(this.x.groupBlockBitmapF(g));
      const bits = this.vol.engine.bytes(ref.ptr, this.bs);
      for (let i = b - this.start(g); i < stop - this.start(g); i++) {
        if ((bits[i >> 3] & (1 << (i & 7))) === 0) throw new Error(`double free of block ${this.start(g) + i}`);
        bits[i >> 3] &= ~(1 << (i & 7));
      }
      h.dirty(ref);
      await this.account(h, g, stop - b, ref.ptr);
      this.freed += stop - b;
      b = stop;
    }
  }

  // Free count, bitmap + descriptor checksums, and the on-disk descriptor copy.
  private async account(h: Handle, g: number, delta: number, bitmapPtr: number): Promise<void> {
    const x = this.x;
    const d = x.gdPtr(g);
    x.gdSetFreeBlocks(d, (x.gdFreeBlocks(d) >>> 0) + delta);
    x.gdSetBitmapCsums(d, bitmapPtr, 0);
    x.gdCsumSet(d, g);
    const perBlock = this.bs / this.descSize;
    const ref = await h.getWriteAccess(x.gdtBlockLocation(Math.floor(g / perBlock)));
    const u8 = this.vol.engine.u8;
    u8.copyWithin(ref.ptr + (g % perBlock) * this.descSize, d, d + this.descSize);
    h.dirty(ref);
  }
}

// First run of clear bits in [from, n) of length ≥ minLen, capped at want.
function findRun(bits: Uint8Array, n: number, from: number, want: number, minLen: number): { bit: number; len: number } | undefined {
  let i = from;
  while (i < n) {
    if ((i & 7) === 0 && bits[i >> 3] === 0xff) {
      i += 8;
      continue;
    }
    if (bits[i >> 3] & (1 << (i & 7))) {
      i++;
      continue;
    }
    let j = i;
    while (j < n && j - i < want && (bits[j >> 3] & (1 << (j & 7))) === 0) j++;
    if (j - i >= minLen) return { bit: i, len: j - i };
    i = j;
  }
  return undefined;
}

/** Write i_block, i_blocks (fs blocks → 512-byte units) and i_size into the inode table, with its checksum. */
export async function writeInode(vol: Volume, ino: number, iblock: Uint8Array, fsBlocks: number, size: number): Promise<void> {
  const x = vol.engine.x;
  const ipg = x.geoInodesPerGroup() >>> 0;
  const isz = vol.sb.inodeSize;
  const g = Math.floor((ino - 1) / ipg);
  const byte = ((ino - 1) % ipg) * isz;
  const blk = (x.groupInodeTableF(g) as number) + Math.floor(byte / vol.blockSize);
  const h = new CacheHandle(vol.cache);
  const ref = await h.getWriteAccess(blk);
  const p = ref.ptr + (byte % vol.blockSize);
  vol.engine.u8.set(iblock, p + 0x28);
  const dv = vol.engine.dv;
  const sectors = fsBlocks * (vol.blockSize / 512);
  dv.setUint32(p + 0x1c, sectors % 2 ** 32, true);
  dv.setUint16(p + 0x74, Math.floor(sectors / 2 ** 32), true);
  dv.setUint32(p + 0x04, size % 2 ** 32, true);
  dv.setUint32(p + 0x6c, Math.floor(size / 2 ** 32), true);
  x.inodeCsumSet(p, ino);
  h.dirty(ref);
  await h.stop();
  vol.inodes.forget(ino);
}

/** After a flush: set the superblock's free-blocks count to the descriptors' sum (+ checksum), in the image bytes. */
export function syncSuperFree(vol: Volume, image: Uint8Array, scratch: number): void {
  const x = vol.engine.x;
  let free = 0;
  const groups = x.geoGroupCount() >>> 0;
  for (let g = 0; g < groups; g++) free += x.groupFreeBlocks(g) >>> 0;
  const u8 = vol.engine.u8;
  u8.set(image.subarray(1024, 2048), scratch);
  const dv = vol.engine.dv;
  dv.setUint32(scratch + 0x0c, free % 2 ** 32, true);
  dv.setUint32(scratch + 0x158, Math.floor(free / 2 ** 32), true);
  x.sbCsumSet(scratch);
  image.set(vol.engine.u8.subarray(scratch, scratch + 1024), 1024);
}

export interface Run {
  lblk: number;
  len: number;
  phys: number;
  unwritten: boolean;
}

/** Merge adjacent runs that are logically and physically contiguous and in the same state. */
export function canonical(runs: Run[]): Run[] {
  const sorted = [...runs].sort((a, b) => a.lblk - b.lblk);
  const out: Run[] = [];
  for (const r of sorted) {
    const l = out[out.length - 1];
    if (l && l.lblk + l.len === r.lblk && l.phys + l.len === r.phys && l.unwritten === r.unwritten) l.len += r.len;
    else out.push({ ...r });
  }
  return out;
}

/** The leaves of a `debugfs ex` listing, each a list of its extents, in order. */
export function exLeaves(lines: ExLine[]): Run[][] {
  const leaves: Run[][] = [];
  for (const l of lines) {
    if (l.level !== l.maxLevel) continue;
    if (l.entry === 1 || leaves.length === 0) leaves.push([]);
    leaves[leaves.length - 1].push({ lblk: l.lstart, len: l.len, phys: l.pstart, unwritten: l.uninit });
  }
  return leaves;
}

export function debugfsEx(img: string, ino: number): ExLine[] {
  return parseEx(run("debugfs", ["-R", `ex <${ino}>`, img]));
}

/** Per-block model of a file's mapping: lblk → phys * 2 + unwritten. */
export class MapModel {
  readonly m = new Map<number, number>();

  isFree(lblk: number, len: number): boolean {
    for (let i = 0; i < len; i++) if (this.m.has(lblk + i)) return false;
    return true;
  }

  insert(lblk: number, phys: number, len: number, unwritten: boolean): void {
    for (let i = 0; i < len; i++) {
      if (this.m.has(lblk + i)) throw new Error(`model: ${lblk + i} already mapped`);
      this.m.set(lblk + i, (phys + i) * 2 + (unwritten ? 1 : 0));
    }
  }

  /** Unmap [from, to); returns blocks unmapped. */
  remove(from: number, to: number): number {
    let n = 0;
    if (to - from > this.m.size) {
      for (const k of [...this.m.keys()]) if (k >= from && k < to) { this.m.delete(k); n++; }
    } else {
      for (let b = from; b < to; b++) if (this.m.delete(b)) n++;
    }
    return n;
  }

  /** Set the state of mapped blocks in [from, to); returns blocks whose state changed. */
  convert(from: number, to: number, unwritten: boolean): number {
    let n = 0;
    for (let b = from; b < to; b++) {
      const v = this.m.get(b);
      if (v === undefined) continue;
      if ((v & 1) === (unwritten ? 1 : 0)) continue;
      this.m.set(b, unwritten ? v + 1 : v - 1);
      n++;
    }
    return n;
  }

  runs(): Run[] {
    const keys = [...this.m.keys()].sort((a, b) => a - b);
    return canonical(keys.map((k) => {
      const v = this.m.get(k)!;
      return { lblk: k, len: 1, phys: Math.floor(v / 2), unwritten: (v & 1) === 1 };
    }));
  }

  get blocks(): number {
    return this.m.size;
  }

  /** One past the last mapped block (0 when empty). */
  end(): number {
    let e = 0;
    for (const k of this.m.keys()) if (k + 1 > e) e = k + 1;
    return e;
  }
}

/** Adjacent extents inside one leaf that could have been one (same state, contiguous, within the limit). */
export function mergeablePairs(leaves: Run[][]): [Run, Run][] {
  const out: [Run, Run][] = [];
  for (const leaf of leaves) {
    for (let i = 1; i < leaf.length; i++) {
      const a = leaf[i - 1];
      const b = leaf[i];
      const limit = a.unwritten ? 32767 : 32768;
      if (a.unwritten === b.unwritten && a.lblk + a.len === b.lblk && a.phys + a.len === b.phys && a.len + b.len <= limit) {
        out.push([a, b]);
      }
    }
  }
  return out;
}

export function readImage(img: string): Uint8Array {
  return new Uint8Array(readFileSync(img));
}
