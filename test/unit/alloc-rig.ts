/**
 * A test rig for the allocators: a mounted volume (made by our mkfs or by mke2fs), an
 * Allocator, and an independent model of what was allocated, checked against e2fsck and
 * dumpe2fs (see alloc-oracle.ts for what they must say).
 */
import { expect } from "vitest";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mount, MemoryDevice, mkfs, FsError, type MkfsOptions, type Volume } from "../../bindings/index.ts";
import { Allocator, type AllocatorOptions } from "../../bindings/fs/alloc.ts";
import { CacheHandle, type Handle } from "../../bindings/journal/handle.ts";
import { saveSparse, e2fsck, run, tool } from "../helpers/e2fsprogs.ts";
import { csumContext, crc32cRaw } from "../helpers/csum-ref.ts";
import { parseFsck, parseLayout, rangesOf, overlaps, type Layout, type Range } from "./alloc-oracle.ts";

let counter = 0;

export class Rig {
  readonly dev: MemoryDevice;
  readonly vol: Volume;
  readonly alloc: Allocator;
  readonly img: string;
  /** The pristine layout (dumpe2fs before any allocation). */
  readonly layout: Layout;
  /** Model: 1 for every block / inode allocated by the test and not freed. */
  readonly blocks: Uint8Array;
  readonly inodes: Uint8Array;
  readonly dirs = new Map<number, number>(); // group → directories allocated (net)
  readonly isDir = new Map<number, boolean>();
  readonly bs: number;
  readonly bpg: number;
  readonly ipg: number;
  readonly groups: number;
  readonly first: number;
  private readonly sbFreeBlocks: number;
  private readonly sbFreeInodes: number;

  private constructor(dev: MemoryDevice, vol: Volume, alloc: Allocator, img: string, layout: Layout) {
    this.dev = dev;
    this.vol = vol;
    this.alloc = alloc;
    this.img = img;
    this.layout = layout;
    const x = vol.engine.x;
    this.bs = vol.blockSize;
    this.bpg = x.geoBlocksPerGroup() >>> 0;
    this.ipg = x.geoInodesPerGroup() >>> 0;
    this.groups = vol.groups;
    this.first = x.geoFirstDataBlock() >>> 0;
    this.blocks = new Uint8Array(vol.sb.blocksCount);
    this.inodes = new Uint8Array(vol.sb.inodesCount + 1);
    this.sbFreeBlocks = vol.sb.freeBlocks;
    this.sbFreeInodes = vol.sb.freeInodes;
  }

  /** Mount dev; `damaged` images may make dumpe2fs fail (the layout is then whatever it printed). */
  static async open(dev: MemoryDevice, dir: string, opts: AllocatorOptions = {}, damaged = false): Promise<Rig> {
    const img = join(dir, `alloc${counter++}.img`);
    await saveSparse(dev, img);
    const d = await run(tool("dumpe2fs"), [img]);
    if (!damaged) expect(d.code, d.stderr).toBe(0);
    const vol = await mount(dev, {});
    return new Rig(dev, vol, new Allocator(vol, opts), img, parseLayout(d.stdout));
  }

  /** A volume made by our mkfs on a sparse memory device. */
  static async mkfs(dir: string, size: number, opts: MkfsOptions, aopts: AllocatorOptions = {}): Promise<Rig> {
    const dev = new MemoryDevice(size);
    await mkfs(dev, { timestamp: 1_700_000_000, ...opts });
    return Rig.open(dev, dir, aopts);
  }

  /** A volume made by mke2fs (args before the image path; size like "64M"). */
  static async mke2fs(dir: string, args: string[], size: string, aopts: AllocatorOptions = {}): Promise<Rig> {
    const img = join(dir, `src${counter++}.img`);
    const r = await run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", ...args, img, size]);
    expect(r.code, r.stderr).toBe(0);
    return Rig.open(MemoryDevice.from(new Uint8Array(readFileSync(img))), dir, aopts);
  }

  get x(): Volume["engine"]["x"] {
    return this.vol.engine.x;
  }

  groupOf(b: number): number {
    return Math.floor((b - this.first) / this.bpg);
  }
  groupStart(g: number): number {
    return this.first + g * this.bpg;
  }

  /** Run fn in one transaction handle. */
  async op<T>(fn: (h: Handle) => Promise<T>): Promise<T> {
    const h = new CacheHandle(this.vol.cache);
    try {
      return await fn(h);
    } finally {
      await h.stop();
    }
  }

  /** Record an allocation in the model, failing on a double allocation. */
  noteBlocks(got: { start: number; len: number }): void {
    expect(got.len).toBeGreaterThan(0);
    expect(got.start).toBeGreaterThanOrEqual(this.first);
    expect(got.start + got.len).toBeLessThanOrEqual(this.blocks.length);
    for (let b = got.start; b < got.start + got.len; b++) {
      if (this.blocks[b]) throw new Error(`block ${b} allocated twice`);
      this.blocks[b] = 1;
    }
  }

  async allocBlocks(goal: number, want: number, minLen?: number, h?: Handle): Promise<{ start: number; len: number }> {
    const got = h ? await this.alloc.allocBlocks(h, goal, want, minLen) : await this.op((hh) => this.alloc.allocBlocks(hh, goal, want, minLen));
    this.noteBlocks(got);
    expect(got.len).toBeLessThanOrEqual(want);
    expect(got.len).toBeGreaterThanOrEqual(minLen ?? 1);
    return got;
  }

  async freeBlocks(start: number, len: number): Promise<void> {
    await this.op((h) => this.alloc.freeBlocks(h, start, len));
    for (let b = start; b < start + len; b++) {
      if (!this.blocks[b]) throw new Error(`test freed block ${b} it never allocated`);
      this.blocks[b] = 0;
    }
  }

  noteInode(ino: number, isDir: boolean): void {
    expect(ino).toBeGreaterThanOrEqual(11);
    expect(ino).toBeLessThan(this.inodes.length);
    if (this.inodes[ino]) throw new Error(`inode ${ino} allocated twice`);
    this.inodes[ino] = 1;
    this.isDir.set(ino, isDir);
    if (isDir) {
      const g = Math.floor((ino - 1) / this.ipg);
      this.dirs.set(g, (this.dirs.get(g) ?? 0) + 1);
    }
  }

  async allocInode(parent: number, isDir: boolean, h?: Handle): Promise<number> {
    const ino = h ? await this.alloc.allocInode(h, parent, isDir) : await this.op((hh) => this.alloc.allocInode(hh, parent, isDir));
    this.noteInode(ino, isDir);
    return ino;
  }

  async freeInode(ino: number): Promise<void> {
    const isDir = this.isDir.get(ino) ?? false;
    await this.op((h) => this.alloc.freeInode(h, ino, isDir));
    if (!this.inodes[ino]) throw new Error(`test freed inode ${ino} it never allocated`);
    this.inodes[ino] = 0;
    if (isDir) {
      const g = Math.floor((ino - 1) / this.ipg);
      this.dirs.set(g, this.dirs.get(g)! - 1);
    }
  }

  allocatedBlocks(): number {
    return this.blocks.reduce((s, v) => s + v, 0);
  }

  /**
   * Flush, save, and hold the image against e2fsck and dumpe2fs: the bitmap differences
   * are exactly the model, the counts agree, every bitmap checksum verifies, no
   * metadata block was handed out.
   */
  async check(): Promise<void> {
    await this.vol.cache.flush();
    await saveSparse(this.dev, this.img);
    const r = await e2fsck(this.img);
    const out = `${r.stdout}\n${r.stderr}`;
    const rep = parseFsck(out);
    expect(rep.unexpected, out).toEqual([]);
    expect(rep.blockPlus, out).toEqual([]);
    expect(rep.inodePlus, out).toEqual([]);
    const wantBlocks = rangesOf(this.blocks);
    const wantInodes = rangesOf(this.inodes);
    expect(rep.blockMinus, out).toEqual(wantBlocks);
    expect(rep.inodeMinus, out).toEqual(wantInodes);
    const nb = this.allocatedBlocks();
    const ni = this.inodes.reduce((s, v) => s + v, 0);
    expect(rep.sbFreeBlocks, out).toEqual(nb ? { disk: this.sbFreeBlocks, counted: this.sbFreeBlocks - nb } : undefined);
    expect(rep.sbFreeInodes, out).toEqual(ni ? { disk: this.sbFreeInodes, counted: this.sbFreeInodes - ni } : undefined);
    expect([...rep.groupFreeBlocks], out).toEqual([]);
    expect([...rep.groupFreeInodes], out).toEqual([]);
    const dirDiff = [...rep.groupDirs].map(([g, v]) => [g, v.disk - v.counted]).sort((a, b) => a[0]! - b[0]!);
    const wantDirs = [...this.dirs].filter(([, n]) => n !== 0).sort((a, b) => a[0] - b[0]);
    expect(dirDiff, out).toEqual(wantDirs);
    expect(r.code, out).toBe(nb || ni ? 4 : 0);
    expect(this.alloc.totals().freeBlocks).toBe(this.sbFreeBlocks - nb);
    expect(this.alloc.totals().freeInodes).toBe(this.sbFreeInodes - ni);

    // Nothing handed out was metadata, as dumpe2fs lays it out.
    expect(overlaps(wantBlocks, this.layout.metadata)).toBeUndefined();

    // dumpe2fs shows the descriptors we keep in memory, and the bitmaps match their checksums.
    const d = await run(tool("dumpe2fs"), [this.img]);
    expect(d.code, d.stderr).toBe(0);
    const now = parseLayout(d.stdout);
    const image = new Uint8Array(this.dev.size > 4096 ? 4096 : this.dev.size);
    await this.dev.read(0, image);
    const ctx = csumContext(image);
    const x = this.x;
    const bitmap = new Uint8Array(this.bs);
    for (const g of now.groups) {
      expect(g.freeBlocks, `group ${g.group} free blocks`).toBe(x.groupFreeBlocks(g.group) >>> 0);
      expect(g.freeInodes, `group ${g.group} free inodes`).toBe(x.groupFreeInodes(g.group) >>> 0);
      expect(g.dirs, `group ${g.group} dirs`).toBe(x.groupUsedDirs(g.group) >>> 0);
      if (g.unusedInodes !== undefined) {
        expect(g.unusedInodes).toBe(x.groupItableUnused(g.group) >>> 0);
        // Every allocated inode lies inside the group's "in use" region of the table.
        let top = -1;
        for (let i = 0; i < this.ipg; i++) if (this.inodes[g.group * this.ipg + i + 1]) top = i;
        expect(g.unusedInodes, `group ${g.group} unused inodes`).toBeLessThanOrEqual(this.ipg - 1 - top);
      }
      if (!ctx.metadataCsum) continue;
      for (const [kind, loc, stored, bits] of [
        ["BLOCK", g.blockBitmap, g.blockBitmapCsum, this.bpg],
        ["INODE", g.inodeBitmap, g.inodeBitmapCsum, this.ipg],
      ] as const) {
        if (g.flags.includes(`${kind}_UNINIT`)) continue;
        await this.dev.read(loc * this.bs, bitmap);
        const c = crc32cRaw(ctx.seed, bitmap, 0, bits / 8);
        expect(stored, `group ${g.group} ${kind.toLowerCase()} bitmap csum`).toBe(ctx.descSize >= 64 ? c : c & 0xffff);
      }
    }
  }
}

/** The FsError a promise rejects with (fails if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<FsError> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(FsError);
  return e as FsError;
}

export function inRanges(b: number, rs: Range[]): boolean {
  return rs.some(([s, e]) => b >= s && b <= e);
}
