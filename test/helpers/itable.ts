/**
 * Inode-table oracles for the lazy-init tests: where each group's table is and how much
 * of it may hold inodes, as `dumpe2fs` (not the engine) says; filling the never-used
 * part with garbage so that zeroing is observable; and reading the raw device bytes back.
 */
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { run, tool } from "./e2fsprogs.ts";

export interface TableInfo {
  group: number;
  flags: string[];
  /** First and last block of the inode table. */
  first: number;
  last: number;
  /** Inodes dumpe2fs reports as never used (itable_unused; all with INODE_UNINIT). */
  unused: number;
}

export interface Layout {
  blockSize: number;
  inodeSize: number;
  inodesPerGroup: number;
  groups: TableInfo[];
}

/** dumpe2fs's view of every group's inode table. */
export async function tableLayout(image: string): Promise<Layout> {
  const r = await run(tool("dumpe2fs"), [image]);
  if (r.code !== 0) throw new Error(`dumpe2fs failed (${r.code}): ${r.stderr}`);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(r.stdout);
    if (!m) throw new Error(`dumpe2fs printed no '${name}'`);
    return Number(m[1]);
  };
  const layout: Layout = {
    blockSize: field("Block size"),
    inodeSize: field("Inode size"),
    inodesPerGroup: field("Inodes per group"),
    groups: [],
  };
  let cur: TableInfo | undefined;
  for (const line of r.stdout.split("\n")) {
    const g = /^Group (\d+): .*?(?:\[([^\]]*)\])?$/.exec(line);
    if (g) {
      cur = { group: Number(g[1]), flags: g[2] ? g[2].split(",").map((s) => s.trim()) : [], first: -1, last: -1, unused: -1 };
      layout.groups.push(cur);
      continue;
    }
    if (!cur) continue;
    const t = /Inode table at (\d+)-(\d+)/.exec(line);
    if (t) {
      cur.first = Number(t[1]);
      cur.last = Number(t[2]);
    }
    const u = /, (\d+) unused inodes/.exec(line);
    if (u) cur.unused = Number(u[1]);
  }
  for (const g of layout.groups) {
    if (g.first < 0 || g.unused < 0) throw new Error(`dumpe2fs output for group ${g.group} lacks its table or unused count`);
  }
  return layout;
}

/** The never-used tail of group g's table: [first, first + count) in blocks. */
export function unusedTail(layout: Layout, g: TableInfo): { first: number; count: number } {
  const used = g.flags.includes("INODE_UNINIT") ? 0 : layout.inodesPerGroup - g.unused;
  const usedBlocks = Math.ceil((used * layout.inodeSize) / layout.blockSize);
  const total = g.last - g.first + 1;
  return { first: g.first + usedBlocks, count: total - usedBlocks };
}

/** Fill every group's never-used table tail with non-zero bytes; returns the blocks filled. */
export async function fillGarbage(dev: BlockDevice, layout: Layout): Promise<number> {
  let blocks = 0;
  for (const g of layout.groups) {
    const { first, count } = unusedTail(layout, g);
    if (count <= 0) continue;
    const buf = new Uint8Array(count * layout.blockSize);
    for (let i = 0; i < buf.length; i++) buf[i] = 0x80 | ((i * 31 + g.group) & 0x7f);
    await dev.write(first * layout.blockSize, buf);
    blocks += count;
  }
  await dev.flush();
  return blocks;
}

/** Blocks of [first, first+count) on the device that are not all zero. */
export async function nonZeroBlocks(dev: BlockDevice, blockSize: number, first: number, count: number): Promise<number[]> {
  const out: number[] = [];
  const chunk = 256;
  for (let b = first; b < first + count; b += chunk) {
    const n = Math.min(chunk, first + count - b);
    const buf = new Uint8Array(n * blockSize);
    await dev.read(b * blockSize, buf);
    for (let i = 0; i < n; i++) {
      const blk = buf.subarray(i * blockSize, (i + 1) * blockSize);
      if (blk.some((v) => v !== 0)) out.push(b + i);
    }
  }
  return out;
}
