/**
 * The allocator tests' oracle: what e2fsck and dumpe2fs say about an image after blocks
 * and inodes were allocated that no inode references.
 *
 * e2fsck -fn rebuilds the block and inode bitmaps from what the inodes and the layout
 * use, and compares. Our allocations are referenced by nothing, so it reports them as
 * "-" bitmap differences — exactly the blocks and inodes allocated (and not freed), with
 * nothing else. Declining the fix, it then counts from the on-disk bitmaps: per-group
 * free counts must agree with our bitmaps (no per-group complaint), the superblock's
 * totals (which the allocator does not write) come out as "wrong (old, counted=new)"
 * with new = the allocator's totals, and directories are counted by what e2fsck finds,
 * so a group's "Directories count wrong (ours, counted=real)" differs by exactly the
 * directories allocated there. Any other line is a failure.
 */
import { parseGroups, type GroupInfo } from "./e2fs-oracle.ts";

export type Range = [number, number]; // inclusive

export interface FsckReport {
  blockMinus: Range[];
  blockPlus: Range[];
  inodeMinus: Range[];
  inodePlus: Range[];
  sbFreeBlocks?: { disk: number; counted: number };
  sbFreeInodes?: { disk: number; counted: number };
  groupFreeBlocks: Map<number, { disk: number; counted: number }>;
  groupFreeInodes: Map<number, { disk: number; counted: number }>;
  groupDirs: Map<number, { disk: number; counted: number }>;
  /** Lines that are neither expected findings nor e2fsck's usual chatter. */
  unexpected: string[];
}

const CHATTER = [
  /^$/,
  /^Pass \d[A-Z]?: /,
  /^Fix\? no$/,
  /^e2fsck \d/,
  /WARNING: Filesystem still has errors/,
  /^\S+: \d+\/\d+ files \(/,
];

function parseDiffs(list: string): { minus: Range[]; plus: Range[] } {
  const minus: Range[] = [];
  const plus: Range[] = [];
  for (const m of list.matchAll(/([+-])(?:\((\d+)--(\d+)\)|(\d+))/g)) {
    const r: Range = m[4] !== undefined ? [Number(m[4]), Number(m[4])] : [Number(m[2]), Number(m[3])];
    (m[1] === "-" ? minus : plus).push(r);
  }
  return { minus: mergeRanges(minus), plus: mergeRanges(plus) };
}

/** Parse e2fsck -fn output (stdout + stderr). */
export function parseFsck(text: string): FsckReport {
  const rep: FsckReport = {
    blockMinus: [], blockPlus: [], inodeMinus: [], inodePlus: [],
    groupFreeBlocks: new Map(), groupFreeInodes: new Map(), groupDirs: new Map(), unexpected: [],
  };
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    let m: RegExpExecArray | null;
    if ((m = /^Block bitmap differences: (.*)$/.exec(line))) {
      const d = parseDiffs(m[1]!);
      rep.blockMinus = mergeRanges([...rep.blockMinus, ...d.minus]);
      rep.blockPlus = mergeRanges([...rep.blockPlus, ...d.plus]);
    } else if ((m = /^Inode bitmap differences: (.*)$/.exec(line))) {
      const d = parseDiffs(m[1]!);
      rep.inodeMinus = mergeRanges([...rep.inodeMinus, ...d.minus]);
      rep.inodePlus = mergeRanges([...rep.inodePlus, ...d.plus]);
    } else if ((m = /^Free blocks count wrong for group #(\d+) \((\d+), counted=(\d+)\)\.$/.exec(line))) {
      rep.groupFreeBlocks.set(Number(m[1]), { disk: Number(m[2]), counted: Number(m[3]) });
    } else if ((m = /^Free inodes count wrong for group #(\d+) \((\d+), counted=(\d+)\)\.$/.exec(line))) {
      rep.groupFreeInodes.set(Number(m[1]), { disk: Number(m[2]), counted: Number(m[3]) });
    } else if ((m = /^Directories count wrong for group #(\d+) \((\d+), counted=(\d+)\)\.$/.exec(line))) {
      rep.groupDirs.set(Number(m[1]), { disk: Number(m[2]), counted: Number(m[3]) });
    } else if ((m = /^Free blocks count wrong \((\d+), counted=(\d+)\)\.$/.exec(line))) {
      rep.sbFreeBlocks = { disk: Number(m[1]), counted: Number(m[2]) };
    } else if ((m = /^Free inodes count wrong \((\d+), counted=(\d+)\)\.$/.exec(line))) {
      rep.sbFreeInodes = { disk: Number(m[1]), counted: Number(m[2]) };
    } else if (!CHATTER.some((re) => re.test(line))) {
      rep.unexpected.push(line);
    }
  }
  return rep;
}

/** Sort and merge inclusive ranges (touching ranges merge, as e2fsck prints them). */
export function mergeRanges(rs: Range[]): Range[] {
  const s = rs.map((r) => [r[0], r[1]] as Range).sort((a, b) => a[0] - b[0]);
  const out: Range[] = [];
  for (const r of s) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push(r);
  }
  return out;
}

/** Ranges of the set bits of a 0/1 array (index = block or inode number). */
export function rangesOf(bits: Uint8Array): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i]) continue;
    let j = i;
    while (j + 1 < bits.length && bits[j + 1]) j++;
    out.push([i, j]);
    i = j;
  }
  return out;
}

export interface Layout {
  groups: GroupInfo[];
  /** Every metadata block dumpe2fs names (superblocks, descriptors, reserved GDT, bitmaps, inode tables). */
  metadata: Range[];
  /** Per group: blocks at its start holding a superblock copy / descriptor blocks, as dumpe2fs lists them. */
  prefix: Map<number, Range[]>;
  /** Free blocks as dumpe2fs lists them (read from the bitmaps), all groups merged. */
  free: Range[];
}

/** The layout as dumpe2fs prints it (full listing). */
export function parseLayout(text: string): Layout {
  const groups = parseGroups(text);
  const metadata: Range[] = [];
  const prefix = new Map<number, Range[]>();
  const free: Range[] = [];
  let g = -1;
  for (const line of text.split("\n")) {
    const gm = /^Group (\d+): /.exec(line);
    if (gm) {
      g = Number(gm[1]);
      prefix.set(g, []);
      continue;
    }
    if (g < 0) continue;
    const fm = /^\s+Free blocks: (.*)$/.exec(line);
    if (fm) {
      for (const m of fm[1]!.matchAll(/(\d+)(?:-(\d+))?/g)) free.push([Number(m[1]), Number(m[2] ?? m[1])]);
      continue;
    }
    for (const m of line.matchAll(/(superblock|Group descriptors?|Reserved GDT blocks|Block bitmap|Inode bitmap|Inode table) at (\d+)(?:-(\d+))?/g)) {
      const r: Range = [Number(m[2]), Number(m[3] ?? m[2])];
      metadata.push(r);
      if (/superblock|descriptor|Reserved/.test(m[1]!)) prefix.get(g)!.push(r);
    }
  }
  return { groups, metadata: mergeRanges(metadata), prefix, free: mergeRanges(free) };
}

/** Whether any block of `a` lies in `b` (both merged range lists). */
export function overlaps(a: Range[], b: Range[]): Range | undefined {
  let j = 0;
  for (const r of a) {
    while (j < b.length && b[j]![1] < r[0]) j++;
    if (j < b.length && b[j]![0] <= r[1]) return [Math.max(r[0], b[j]![0]), Math.min(r[1], b[j]![1])];
  }
  return undefined;
}
