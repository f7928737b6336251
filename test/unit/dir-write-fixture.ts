/**
 * Stand-ins for the pieces of the write path that other engineers own, just enough to
 * drive bindings/fs/dir_write.ts on real images in tests:
 *
 * - TestAllocator takes single blocks from the on-disk block bitmaps (groups whose bitmap
 *   is initialised only), keeping the descriptor's free count, bitmap checksum and
 *   descriptor checksum right in memory and in the on-disk descriptor table block.
 * - TestDir is a DirContext over a directory inode with a depth-0 extent root (at most
 *   four extents in the inode): it maps blocks, appends one (extending the last extent
 *   when the new block is adjacent), keeps i_size / i_blocks / i_flags and the inode
 *   checksum right by editing the inode in its inode-table block through the handle.
 * - finishImage writes the superblock's free-block count (the lead's sync will do that),
 *   then the device bytes go to a file for e2fsck / debugfs.
 *
 * Everything here is deliberately simple (first fit, one block at a time) and is judged,
 * like the code under test, by e2fsck.
 */
import { writeFileSync } from "node:fs";
import type { Volume } from "../../bindings/fs/volume.ts";
import type { DirContext } from "../../bindings/fs/dir_write.ts";
import type { Handle } from "../../bindings/journal/handle.ts";

type X = Record<string, any>;

export class TestAllocator {
  private readonly vol: Volume;
  private readonly x: X;
  private readonly c: (n: string) => number;
  /** Blocks handed out minus blocks freed (for the superblock count). */
  delta = 0;

  constructor(vol: Volume) {
    this.vol = vol;
    this.x = vol.engine.x;
    this.c = (n) => vol.engine.constant(n);
  }

  /** Allocate one block, preferring `goal`, then the first free block at or after it. */
  async alloc(h: Handle, goal: number): Promise<number> {
    const x = this.x;
    const groups = x.geoGroupCount() as number;
    const bpg = x.geoBlocksPerGroup() as number;
    const first = x.geoFirstDataBlock() as number;
    const g0 = goal >= first ? Math.min(groups - 1, Math.floor((goal - first) / bpg)) : 0;
    for (let n = 0; n < groups; n++) {
      const g = (g0 + n) % groups;
      if ((x.groupFlags(g) as number) & this.c("BG_BLOCK_UNINIT")) continue;
      if ((x.groupFreeBlocks(g) as number) === 0) continue;
      const base = x.groupFirstBlockF(g) as number;
      const count = x.groupBlockCount(g) as number;
      const bmBlk = x.groupBlockBitmapF(g) as number;
      const bm = await h.getBlock(bmBlk);
      const u8 = this.vol.engine.u8;
      const start = n === 0 && goal >= base && goal < base + count ? goal - base : 0;
      let bit = -1;
      for (let i = start; i < count; i++) {
        if ((u8[bm.ptr + (i >> 3)]! & (1 << (i & 7))) === 0) {
          bit = i;
          break;
        }
      }
      if (bit < 0) {
        h.release(bm);
        continue;
      }
      const w = await h.getWriteAccess(bmBlk);
      this.vol.engine.u8[w.ptr + (bit >> 3)] |= 1 << (bit & 7);
      h.dirty(w);
      await this.updateDesc(h, g, w.ptr, -1);
      this.delta++;
      return base + bit;
    }
    throw new Error("test allocator: no free block");
  }

  /** Free one block. */
  async free(h: Handle, blk: number): Promise<void> {
    const x = this.x;
    const bpg = x.geoBlocksPerGroup() as number;
    const g = Math.floor((blk - (x.geoFirstDataBlock() as number)) / bpg);
    const bit = blk - (x.groupFirstBlockF(g) as number);
    const w = await h.getWriteAccess(x.groupBlockBitmapF(g) as number);
    const u8 = this.vol.engine.u8;
    if ((u8[w.ptr + (bit >> 3)]! & (1 << (bit & 7))) === 0) throw new Error(`test allocator: block ${blk} already free`);
    u8[w.ptr + (bit >> 3)] &= ~(1 << (bit & 7));
    h.dirty(w);
    await this.updateDesc(h, g, w.ptr, +1);
    this.delta--;
  }

  private async updateDesc(h: Handle, g: number, bitmapPtr: number, change: number): Promise<void> {
    const x = this.x;
    const d = x.gdPtr(g) as number;
    x.gdSetFreeBlocks(d, (x.gdFreeBlocks(d) as number) + change);
    x.gdSetBitmapCsums(d, bitmapPtr, 0);
    x.gdCsumSet(d, g);
    const descSize = x.geoDescSize() as number;
    const perBlock = this.vol.blockSize / descSize;
    const ref = await h.getWriteAccess(x.gdtBlockLocation(Math.floor(g / perBlock)) as number);
    const u8 = this.vol.engine.u8;
    u8.copyWithin(ref.ptr + (g % perBlock) * descSize, d, d + descSize);
    h.dirty(ref);
  }
}

/** Where inode `ino` lives: its inode-table block and byte offset there. */
function inodeSlot(vol: Volume, ino: number): { blk: number; off: number } {
  const x = vol.engine.x;
  const ipg = x.geoInodesPerGroup() as number;
  const isz = vol.sb.inodeSize;
  const g = Math.floor((ino - 1) / ipg);
  const byte = ((ino - 1) % ipg) * isz;
  return { blk: (x.groupInodeTableF(g) as number) + Math.floor(byte / vol.blockSize), off: byte % vol.blockSize };
}

const I = { SIZE_LO: 0x04, BLOCKS_LO: 0x1c, FLAGS: 0x20, BLOCK: 0x28, GENERATION: 0x64, SIZE_HIGH: 0x6c, BLOCKS_HIGH: 0x74 };
const MAX_EXTENT = 32768;

/** A DirContext over a directory with a depth-0 extent root (see the file header). */
export class TestDir implements DirContext {
  readonly vol: Volume;
  readonly alloc: TestAllocator;
  readonly slot: { blk: number; off: number };
  inode: { ino: number; generation: number; size: number; flags: number };
  /** Extents [lblk, len, phys] as in the inode. */
  extents: [number, number, number][] = [];
  private blocks512 = 0;
  appended = 0;

  private constructor(vol: Volume, alloc: TestAllocator, ino: number) {
    this.vol = vol;
    this.alloc = alloc;
    this.slot = inodeSlot(vol, ino);
    this.inode = { ino, generation: 0, size: 0, flags: 0 };
  }

  static async open(vol: Volume, alloc: TestAllocator, ino: number): Promise<TestDir> {
    const d = new TestDir(vol, alloc, ino);
    const ref = await vol.cache.get(d.slot.blk);
    try {
      const dv = new DataView(vol.engine.u8.buffer, ref.ptr + d.slot.off, vol.sb.inodeSize);
      d.inode.generation = dv.getUint32(I.GENERATION, true);
      d.inode.size = dv.getUint32(I.SIZE_LO, true) + dv.getUint32(I.SIZE_HIGH, true) * 2 ** 32;
      d.inode.flags = dv.getUint32(I.FLAGS, true);
      d.blocks512 = dv.getUint32(I.BLOCKS_LO, true) + dv.getUint16(I.BLOCKS_HIGH, true) * 2 ** 32;
      if (dv.getUint16(I.BLOCK, true) !== 0xf30a) throw new Error(`inode ${ino}: no extent root`);
      if (dv.getUint16(I.BLOCK + 6, true) !== 0) throw new Error(`inode ${ino}: extent tree deeper than 0`);
      const n = dv.getUint16(I.BLOCK + 2, true);
      for (let i = 0; i < n; i++) {
        const e = I.BLOCK + 12 + i * 12;
        d.extents.push([dv.getUint32(e, true), dv.getUint16(e + 4, true), dv.getUint16(e + 6, true) * 2 ** 32 + dv.getUint32(e + 8, true)]);
      }
    } finally {
      vol.cache.release(ref);
    }
    return d;
  }

  mapBlock(lblk: number): number {
    for (const [l, len, p] of this.extents) if (lblk >= l && lblk < l + len) return p + (lblk - l);
    return -1;
  }

  /** The map is in memory here, so it never misses. */
  mapBlockResident(lblk: number): number {
    return this.mapBlock(lblk);
  }

  async appendBlock(h: Handle): Promise<{ lblk: number; phys: number }> {
    const bs = this.vol.blockSize;
    const lblk = this.inode.size / bs;
    const last = this.extents[this.extents.length - 1];
    const goal = last ? last[2] + last[1] : (this.vol.engine.x.groupFirstBlockF(0) as number);
    const phys = await this.alloc.alloc(h, goal);
    if (last && last[0] + last[1] === lblk && last[2] + last[1] === phys && last[1] < MAX_EXTENT) {
      last[1]++;
    } else {
      if (this.extents.length >= 4) throw new Error("test dir: a fifth extent would need an extent tree");
      this.extents.push([lblk, 1, phys]);
    }
    this.inode.size += bs;
    this.blocks512 += bs / 512;
    this.appended++;
    await this.save(h);
    return { lblk, phys };
  }

  setIndexed(on: boolean): void {
    const bit = this.vol.engine.constant("INODE_FL_INDEX");
    this.inode.flags = on ? (this.inode.flags | bit) >>> 0 : (this.inode.flags & ~bit) >>> 0;
  }

  async markInodeDirty(h: Handle): Promise<void> {
    await this.save(h);
  }

  /** Free every block and make the directory empty (size 0), for initDirectory tests. */
  async truncateAll(h: Handle): Promise<void> {
    for (const [, len, p] of this.extents) for (let i = 0; i < len; i++) await this.alloc.free(h, p + i);
    this.extents = [];
    this.inode.size = 0;
    this.blocks512 = 0;
    await this.save(h);
  }

  /** Write size, blocks, flags and the extent root into the inode table; fix its checksum. */
  async save(h: Handle): Promise<void> {
    const ref = await h.getWriteAccess(this.slot.blk);
    const p = ref.ptr + this.slot.off;
    const dv = new DataView(this.vol.engine.u8.buffer, p, this.vol.sb.inodeSize);
    dv.setUint32(I.SIZE_LO, this.inode.size % 2 ** 32, true);
    dv.setUint32(I.SIZE_HIGH, Math.floor(this.inode.size / 2 ** 32), true);
    dv.setUint32(I.BLOCKS_LO, this.blocks512 % 2 ** 32, true);
    dv.setUint16(I.BLOCKS_HIGH, Math.floor(this.blocks512 / 2 ** 32), true);
    dv.setUint32(I.FLAGS, this.inode.flags, true);
    dv.setUint16(I.BLOCK + 2, this.extents.length, true);
    for (let i = 0; i < 4; i++) {
      const e = I.BLOCK + 12 + i * 12;
      const [l, len, ph] = this.extents[i] ?? [0, 0, 0];
      dv.setUint32(e, l, true);
      dv.setUint16(e + 4, len, true);
      dv.setUint16(e + 6, Math.floor(ph / 2 ** 32), true);
      dv.setUint32(e + 8, ph % 2 ** 32, true);
    }
    this.vol.engine.x.inodeCsumSet(p, this.inode.ino);
    h.dirty(ref);
    this.vol.inodes.forget(this.inode.ino);
  }
}

/** Flush the cache, set the superblock's free-block count, write the image to `path`. */
export async function finishImage(vol: Volume, dev: { bytes(): Uint8Array }, path: string): Promise<void> {
  await vol.cache.flush();
  const x = vol.engine.x;
  let free = 0;
  const groups = x.geoGroupCount() as number;
  for (let g = 0; g < groups; g++) free += x.groupFreeBlocks(g) as number;
  const img = new Uint8Array(dev.bytes());
  const sb = new DataView(img.buffer, img.byteOffset + 1024, 1024);
  sb.setUint32(0x0c, free % 2 ** 32, true);
  if (vol.sb.has("64bit")) sb.setUint32(0x158, Math.floor(free / 2 ** 32), true);
  if (vol.sb.has("metadata_csum")) {
    const p = vol.engine.alloc(1024);
    vol.engine.u8.set(img.subarray(1024, 2048), p);
    x.sbCsumSet(p);
    img.set(vol.engine.u8.subarray(p, p + 1024), 1024);
  }
  writeFileSync(path, img);
}
