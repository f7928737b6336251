/**
 * Space reservations for delayed allocation.
 *
 * Why: a buffered write (FileData.buffer) gets its disk blocks only at write-back, long
 * after write() has told the caller "done". Without a promise made at write() time, a
 * volume that fills up meanwhile turns into ENOSPC at close() or sync() — too late: the
 * caller has moved on and the data is lost. So, like ext4's delayed allocation, write()
 * reserves the worst case its buffered blocks can need, and fails with ENOSPC right
 * there (having buffered nothing) when the volume cannot promise it. Write-back then
 * draws its allocations from that reservation and cannot run out of space.
 *
 * What is reserved, per inode, for the blocks a write buffers that have no written
 * block under them (holes, and unwritten extents, which write-back replaces):
 *   - one data block each;
 *   - the extent-tree blocks inserting them may take, in the worst case that the
 *     allocator hands out one block per extent (a fragmented, nearly full volume). See
 *     `treeBlocksWorstCase`: each group of adjacent new extents ("run") can split one
 *     existing full node per level and then fills new nodes at least half; the root in
 *     the inode grows the tree by a level when its four slots overflow; depth ≤ 5.
 * Blocks that overwrite written data need no space and reserve nothing.
 *
 * The volume-wide total is what statfs counts as used on top of the allocated blocks
 * (like the kernel's dirty-cluster counter), and what every ordinary allocation must
 * leave alone: the allocator subtracts `untouchable` from the free count before it
 * hands out blocks. While one inode's buffered data is written back (`beginDraw` …
 * `endDraw`, under the volume's metadata lock, so nothing else allocates meanwhile),
 * that inode's reservation is available to the allocator and each block it hands out is
 * taken from the reservation (`drew`). What write-back did not use goes back (`settle`);
 * discarding buffered data (truncate, unlink of an open file, a failed write-back)
 * returns its share (`release`).
 *
 * Ownership: one instance per mounted volume, owned by its Allocator. Every method is
 * synchronous, so a check and the change it guards can never be split by an await.
 * Callers hold the volume's metadata lock.
 */
import { FsError } from "./errors.ts";

/** ext4's limit on extent-tree depth (levels of blocks below the root in the inode). */
const MAX_DEPTH = 5;
/** Extent entries the root in i_block holds. */
const ROOT_SLOTS = 4;
const EXT_MAGIC = 0xf30a;

/** A run of consecutive logical blocks a write buffers that will need new blocks. */
export interface NewRun {
  start: number;
  len: number;
  /** The run lies in an unwritten extent, which write-back splits around it. */
  unwritten: boolean;
}

/** The shape of an extent tree's root, read from the inode's i_block. */
export interface TreeShape {
  depth: number;
  rootEntries: number;
}

/** What one inode's buffered data has been promised. */
interface Account {
  /** Buffered logical blocks that will need a new data block at write-back. */
  readonly blocks: Set<number>;
  /** Worst-case new extent entries: one per block, one more per unwritten-extent split. */
  extents: number;
  /** Groups of adjacent new extents. */
  runs: number;
  /** The tree's shape when this inode's buffering began (write-back or discard end it). */
  readonly shape: TreeShape;
  /** Tree blocks reserved: treeBlocksWorstCase(extents, runs, shape). */
  meta: number;
  /** Blocks still held for this inode (data + meta, less what write-back drew). */
  held: number;
}

/** Root shape from a 60-byte i_block; a root that is not an extent header counts as full and deepest. */
export function treeShape(iblock: Uint8Array): TreeShape {
  const dv = new DataView(iblock.buffer, iblock.byteOffset, iblock.byteLength);
  if (iblock.byteLength < 12 || dv.getUint16(0, true) !== EXT_MAGIC) return { depth: MAX_DEPTH, rootEntries: ROOT_SLOTS };
  return { depth: Math.min(MAX_DEPTH, dv.getUint16(6, true)), rootEntries: Math.min(ROOT_SLOTS, dv.getUint16(2, true)) };
}

/**
 * Worst-case number of new tree blocks for inserting `extents` entries, in `runs` groups
 * of adjacent ones, into a tree of the given shape whose blocks hold at least `half` new
 * entries each before they split again.
 */
export function treeBlocksWorstCase(extents: number, runs: number, shape: TreeShape, half: number): number {
  let total = 0;
  let added = extents;
  for (let level = 0; level < MAX_DEPTH && added > 0; level++) {
    let blocks: number;
    if (level < shape.depth) {
      // An existing level: each run splits at most one full node, then fills new ones;
      // and no level gains more blocks than entries arrive at it.
      blocks = Math.min(added, runs + Math.ceil(added / half));
    } else {
      // The root's level: what fits stays in the inode; otherwise the root's entries and
      // the new ones move into new blocks, and a fresh root one level up points at them.
      const entries = (level === shape.depth ? shape.rootEntries : 0) + added;
      if (entries <= ROOT_SLOTS) break;
      blocks = Math.ceil(entries / half);
    }
    total += blocks;
    added = blocks;
  }
  return total;
}

export class Reservations {
  /** Write-back allocations beyond what their inode had reserved (a bound too small: tests assert 0). */
  overdrafts = 0;
  private total = 0;
  private readonly accounts = new Map<number, Account>();
  private drawing: Account | undefined;
  private readonly half: number;
  private readonly free: () => number;

  /**
   * blockSize fixes how many entries a tree block holds; `free` answers the blocks the
   * allocator could hand out right now (its free count less any root reserve).
   */
  constructor(blockSize: number, free: () => number) {
    const perBlock = Math.floor((blockSize - 12) / 12);
    // A split leaves the node the next insertion goes to with at least this many free slots.
    this.half = Math.max(1, Math.floor(perBlock / 2) - 1);
    this.free = free;
  }

  /** Blocks promised to buffered data, volume-wide (statfs counts them as used). */
  get reserved(): number {
    return this.total;
  }

  /** Blocks an allocation must leave alone right now (all reservations but the one drawn on). */
  get untouchable(): number {
    return this.total - (this.drawing?.held ?? 0);
  }

  /** Blocks held for ino (0 when it has no buffered data needing space). */
  heldBy(ino: number): number {
    return this.accounts.get(ino)?.held ?? 0;
  }

  /**
   * Reserve what buffering `runs` (blocks of ino not buffered before) adds to ino's worst
   * case. All or nothing: throws ENOSPC, changing nothing, when the volume cannot
   * promise it. `shape` is the inode's tree root now (used if this starts its account).
   */
  reserve(ino: number, runs: readonly NewRun[], shape: TreeShape, path?: string): void {
    if (runs.length === 0) return;
    const a = this.accounts.get(ino) ?? { blocks: new Set<number>(), extents: 0, runs: 0, shape, meta: 0, held: 0 };
    let blocks = 0;
    let extents = a.extents;
    let groups = a.runs;
    let prevEnd = -1;
    for (const r of runs) {
      blocks += r.len;
      extents += r.len + (r.unwritten ? 1 : 0);
      // A run that continues one already reserved is written back with it, in one sequence.
      const continues = !r.unwritten && (a.blocks.has(r.start - 1) || a.blocks.has(r.start + r.len) || prevEnd === r.start);
      if (!continues) groups++;
      prevEnd = r.unwritten ? -1 : r.start + r.len;
    }
    const meta = treeBlocksWorstCase(extents, groups, a.shape, this.half);
    const delta = blocks + meta - a.meta;
    const room = this.free() - this.total;
    if (delta > room) {
      throw new FsError("ENOSPC", `no space left on device: ${delta} block(s) needed for buffered data, ${Math.max(0, room)} free`, { syscall: "write", path });
    }
    for (const r of runs) for (let b = r.start; b < r.start + r.len; b++) a.blocks.add(b);
    a.extents = extents;
    a.runs = groups;
    a.meta = meta;
    a.held += delta;
    this.total += delta;
    this.accounts.set(ino, a);
  }

  /** Give back ino's share for buffered blocks at and past fromLblk (they were discarded). */
  release(ino: number, fromLblk = 0): void {
    const a = this.accounts.get(ino);
    if (!a) return;
    let dropped = 0;
    for (const b of a.blocks) {
      if (b >= fromLblk) {
        a.blocks.delete(b);
        dropped++;
      }
    }
    if (a.blocks.size === 0) return this.settle(ino);
    // Fewer extents can only lower the bound; the run count is kept (an over-estimate).
    a.extents = Math.max(a.blocks.size, a.extents - dropped);
    const meta = treeBlocksWorstCase(a.extents, a.runs, a.shape, this.half);
    const back = Math.min(a.held, dropped + a.meta - meta);
    a.meta = meta;
    a.held -= back;
    this.total -= back;
  }

  /** ino's buffered data is on disk (or gone): return whatever it still holds. */
  settle(ino: number): void {
    const a = this.accounts.get(ino);
    if (!a) return;
    if (this.drawing === a) this.drawing = undefined;
    this.total -= a.held;
    this.accounts.delete(ino);
  }

  /** Write-back of ino starts: its allocations may use its reservation (caller holds metaLock). */
  beginDraw(ino: number): void {
    this.drawing = this.accounts.get(ino);
  }

  /** Write-back of the inode being drawn on has ended (successfully or not). */
  endDraw(): void {
    this.drawing = undefined;
  }

  /** The allocator handed out n blocks; while drawing, they come out of the reservation. */
  drew(n: number): void {
    const a = this.drawing;
    if (!a) return;
    const take = Math.min(n, a.held);
    if (take < n) this.overdrafts++;
    a.held -= take;
    this.total -= take;
  }
}
