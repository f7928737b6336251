/**
 * ExtentTree: whole extent-tree operations for one inode — insert a mapping (the tree
 * grows to any depth), remove a logical range (holes, punch, truncate; the tree shrinks),
 * flip written ↔ unwritten over a range (I/O completion, ZERO_RANGE) — composed from the
 * engine's one-node steps (assembly/extents_mod.ts) with I/O through a transaction Handle.
 *
 * Why "step, then walk again": every engine step leaves a valid tree, so the walker never
 * patches a path it holds. An insert walks to the leaf and tries; if the leaf is full it
 * makes room with exactly one structural step — split the highest full node whose parent
 * has room, or, when every node on the path up to the in-inode root is full, grow the
 * root by one level — and walks again. Removal and conversion go leaf by leaf (each leaf's
 * upper bound is where the next walk starts), free emptied blocks bottom-up, and removal
 * ends by pulling the root's children into the root while they fit, so depth shrinks.
 *
 *   insert lblk, leaf full, parent full, root has room:
 *     walk → split parent (root gains an entry) → walk → split leaf → walk → insert
 *
 * Keys: a non-root node's first key equals its parent's key for it. A step that moves a
 * node's first start (insert in front, trim of its first extent, removal of its first
 * child) rewrites the parent's key, and the grandparent's while the changed entry is
 * entry 0. Inserting before the first key of the whole tree takes the leftmost path.
 *
 * Ownership and ordering (the journal will rely on them):
 *  - the caller holds the inode's exclusive lock for the whole call and owns `root.iblock`
 *    (the 60-byte i_block, changed in place; markDirty says so) and i_blocks accounting:
 *    addBlocks(±n) reports tree blocks (in filesystem blocks); data blocks are the
 *    caller's — insert never counts them, remove returns how many it freed;
 *  - remove returns everything it unmapped (data and emptied tree blocks) to the allocator
 *    at its end, sorted and merged into runs — a big file written in order goes back in a
 *    handful of bitmap updates instead of one per extent and per leaf;
 *  - every block is changed only after getWriteAccess, sealed (checksum) and dirtied
 *    right after; a parent is changed before a freed block is returned to the allocator,
 *    so a failure in between leaks a block rather than leaving a dangling pointer;
 *  - blocks are allocated before anything changes, so ENOSPC leaves the tree untouched
 *    (it may already have grown or split — still a valid tree);
 *  - a freed tree block is dropped from the block cache (Handle.forget when the handle
 *    has one, else the cache), so its stale bytes can never be written over whatever the
 *    block is reallocated to.
 *
 * Trust: every block loaded is checked against what its parent promised (extNodeCheck:
 * depth, key ranges, physical bounds) and its checksum verified, exactly as the read
 * walker (bmap.ts) does; failures are EFSCORRUPTED naming the inode. The engine steps
 * re-check node structure themselves. Walks load at most 5 blocks and always end.
 *
 * Engine scratch: the in-inode root is copied into a 64-byte buffer right before each
 * engine call that reads or changes it and copied back right after a change, with no
 * await in between, so one buffer per engine serves every tree. Remove and convert also
 * need the engine's scratch area (extModSetScratch), allocated once per engine here.
 */
import type { Engine } from "../wasm.ts";
import { CacheHandle, type BlockAllocator, type BlockRef, type Handle } from "../journal/handle.ts";
import { FsError } from "./errors.ts";
import type { Mapping } from "./bmap.ts";
import type { Volume } from "./volume.ts";

/** What an ExtentTree needs of a mounted volume. */
export type ExtentTreeVolume = Pick<Volume, "engine" | "blockSize" | "sb" | "cache">;

/** The inode side of a tree: its root bytes and the accounting the tree reports to. */
export interface ExtentRoot {
  ino: number;
  generation: number;
  /** The inode's 60-byte i_block, modified in place. */
  iblock: Uint8Array;
  /** Allocation goal for new tree blocks (a block near the inode / its data). */
  goal(): number;
  /** Tree blocks allocated (+) or freed (−), in filesystem blocks. */
  addBlocks(delta: number): void;
  /** i_block changed: the inode must be written. */
  markDirty(): void;
}

/** Counters, shareable between trees of one volume (vol.stats()). */
export interface ExtentTreeStats {
  merges: number;
  splits: number;
  grows: number;
  collapses: number;
  treeBlocksAllocated: number;
  treeBlocksFreed: number;
  blocksConverted: number;
}

export function newExtentTreeStats(): ExtentTreeStats {
  return { merges: 0, splits: 0, grows: 0, collapses: 0, treeBlocksAllocated: 0, treeBlocksFreed: 0, blocksConverted: 0 };
}

export interface ExtentTreeOptions {
  stats?: ExtentTreeStats;
  /**
   * Test hook: cap eh_max of new tree blocks (default: the block's capacity). Small nodes
   * reach depth 5 with a few thousand extents; e2fsck rejects such trees (it wants eh_max
   * within 2 of capacity), the kernel and our reader accept them.
   */
  nodeMax?: number;
  /**
   * Called (with the caller's handle) before insert/remove/convert first touches the tree,
   * so lock-free readers can tell the map changed (treeseq.ts). Caller holds metaLock.
   */
  onChange?: (h: Handle) => void;
}

/** One extent as listed by extents(). */
export interface ExtentRecord {
  lblk: number;
  len: number;
  phys: number;
  unwritten: boolean;
}

/** One past the last addressable logical block (the root's upper bound). */
const END = 4294967295;
/** Exclusive end meaning "to the end of the file". */
const LIMIT = 4294967296;
const ROOT_SIZE = 60;
const ROOT_CAPACITY = 4;
const MAX_DEPTH = 5;

// One node on the current path; blk -1 is the in-inode root.
interface Level {
  blk: number;
  ref: BlockRef | null;
  depth: number;
  /** Child taken at this level (index levels). */
  idx: number;
  lo: number;
  hi: number;
}

interface EngineScratch {
  root: number;
  mod: number;
  modBytes: number;
}

const scratchByEngine = new WeakMap<Engine, EngineScratch>();

function engineScratch(engine: Engine, blockSize: number): EngineScratch {
  let s = scratchByEngine.get(engine);
  if (!s || s.modBytes < (engine.x.extModScratchBytes(blockSize) >>> 0)) {
    const modBytes = engine.x.extModScratchBytes(blockSize) >>> 0;
    if (modBytes === 0) throw new FsError("EINVAL", `no extent trees with ${blockSize}-byte blocks`);
    s = { root: engine.alloc(64), mod: engine.alloc(modBytes), modBytes };
    scratchByEngine.set(engine, s);
  }
  return s;
}

export class ExtentTree {
  readonly stats: ExtentTreeStats;
  private readonly vol: ExtentTreeVolume;
  private readonly root: ExtentRoot;
  private readonly engine: Engine;
  private readonly x: any;
  private readonly bs: number;
  private readonly firstData: number;
  private readonly blocksCount: number;
  private readonly csum: boolean;
  private readonly nodeMax: number;
  private readonly onChange?: (h: Handle) => void;
  private readonly sc: EngineScratch;
  private readonly FULL: number;
  private readonly OVERLAP: number;
  private readonly MAPPED: number;
  private readonly HOLE: number;
  /** While remove() runs: blocks to free at its end, as flat (start, len) pairs. */
  private pending: number[] | undefined;

  constructor(vol: ExtentTreeVolume, root: ExtentRoot, opts: ExtentTreeOptions = {}) {
    if (!(root.iblock instanceof Uint8Array) || root.iblock.length < ROOT_SIZE) {
      throw new FsError("EINVAL", "extent root needs the 60-byte i_block");
    }
    this.vol = vol;
    this.root = root;
    this.engine = vol.engine;
    this.x = vol.engine.x;
    this.bs = vol.blockSize;
    this.firstData = this.x.geoFirstDataBlock() >>> 0;
    this.blocksCount = vol.sb.blocksCount;
    this.csum = vol.sb.has("metadata_csum");
    if (opts.nodeMax !== undefined && !(Number.isInteger(opts.nodeMax) && opts.nodeMax >= 3)) {
      throw new FsError("EINVAL", `nodeMax must be an integer ≥ 3 (got ${String(opts.nodeMax)})`);
    }
    this.nodeMax = opts.nodeMax ?? 0;
    this.onChange = opts.onChange;
    this.stats = opts.stats ?? newExtentTreeStats();
    this.sc = engineScratch(vol.engine, this.bs);
    const c = (n: string) => vol.engine.constant(n);
    this.FULL = c("EXT_MOD_FULL");
    this.OVERLAP = c("EXT_MOD_OVERLAP");
    this.MAPPED = c("EXT_MAPPED");
    this.HOLE = c("EXT_HOLE");
  }

  // ── public operations ───────────────────────────────────────────────────────────────

  /**
   * Map [lblk, lblk+len) to physical [phys, phys+len), written or unwritten. The range
   * must be a hole (EEXIST otherwise); it merges with contiguous neighbours in its leaf.
   */
  async insert(h: Handle, alloc: BlockAllocator, lblk: number, phys: number, len: number, unwritten = false): Promise<void> {
    const maxLen = unwritten ? 32767 : 32768;
    this.checkRange(lblk, len, "insert");
    if (len > maxLen) throw this.inval(`extent of ${len} blocks exceeds ${maxLen}`, "insert");
    if (!Number.isSafeInteger(phys) || phys < this.firstData || phys + len > this.blocksCount) {
      throw this.inval(`physical blocks ${phys}+${len} outside the volume`, "insert");
    }
    const x = this.x;
    this.onChange?.(h);
    for (let round = 0; round < 32; round++) {
      const path = await this.walk(h, lblk);
      const leaf = path[path.length - 1];
      await this.writable(h, leaf);
      const rc = x.extLeafInsert(this.ptr(leaf), this.size(leaf), leaf.hi, lblk, phys, len, unwritten ? 1 : 0) as number;
      if (rc >= 0) {
        const first = x.extModFirstChanged() !== 0;
        this.stats.merges += x.extModMerges() as number;
        this.seal(h, leaf);
        if (first && path.length > 1) await this.fixKeys(h, path, path.length - 1);
        this.releasePath(h, path);
        return;
      }
      if (rc === this.OVERLAP) {
        this.releasePath(h, path);
        throw new FsError("EEXIST", `inode ${this.root.ino}: logical blocks ${lblk}+${len} are already mapped`, { syscall: "insert" });
      }
      if (rc !== this.FULL) throw this.corrupt(`extent leaf refused an insert (${rc})`);
      await this.makeRoom(h, alloc, path, x.extModPos() as number);
    }
    throw new FsError("EIO", `inode ${this.root.ino}: extent insert did not converge`, { syscall: "insert" });
  }

  /**
   * Unmap logical blocks [from, to) (to exclusive, up to 2^32 = "to the end"): data
   * blocks and emptied tree blocks go back to `alloc`, the root collapses while its
   * children fit in it. Returns the data blocks freed (the caller's i_blocks share).
   */
  async remove(h: Handle, alloc: BlockAllocator, from: number, to: number = LIMIT): Promise<number> {
    return (await this.removeSome(h, alloc, from, to, Infinity)).freed;
  }

  /**
   * remove() with a budget, for frees done in steps (inodegc): whole leaves go, in
   * order from `from`, until the next leaf would take the extents removed past
   * `maxExtents` (the first leaf always goes, so every call makes progress). Returns the
   * data blocks freed, the extents removed, and `next`: where the next step starts, or
   * 2^32 when [from, to) is empty now. Between steps the tree is an ordinary valid tree
   * with a hole where the removed leaves were.
   */
  async removeSome(h: Handle, alloc: BlockAllocator, from: number, to: number, maxExtents: number): Promise<{ freed: number; extents: number; next: number }> {
    if (!Number.isSafeInteger(from) || from < 0 || from > END) throw this.inval(`bad logical block ${from}`, "remove");
    if (!Number.isSafeInteger(to) || to < 0) throw this.inval(`bad logical end ${to}`, "remove");
    const stop = Math.min(to, LIMIT);
    if (stop <= from) return { freed: 0, extents: 0, next: LIMIT };
    const x = this.x;
    this.onChange?.(h);
    let cur = from;
    let freedTotal = 0;
    let extents = 0;
    let resumeAt = LIMIT;
    let retries = 0;
    // Frees wait until the tree no longer points at them (and the allocator then sees a
    // few merged runs: data of neighbouring leaves and the leaf blocks between them are
    // usually contiguous). Whatever is collected is freed even if a later step fails.
    const pending: number[] = [];
    this.pending = pending;
    try {
      for (;;) {
        const path = await this.walk(h, cur);
        const D = path.length - 1;
        const leaf = path[D];
        // Extents of this leaf that the removal touches: over budget → stop before it.
        let k = 0;
        if (maxExtents !== Infinity) {
          const p = this.ptr(leaf);
          const count = x.extLeafCount(p) as number;
          for (let i = 0; i < count; i++) {
            const lb = x.extLeafBlock(p, i) >>> 0;
            if (lb >= stop) break;
            if (lb + (x.extLeafLen(p, i) >>> 0) > cur) k++;
          }
          if (extents > 0 && extents + k > maxExtents) {
            this.releasePath(h, path);
            resumeAt = cur;
            break;
          }
        }
        await this.writable(h, leaf);
        x.extModSetScratch(this.sc.mod, this.sc.modBytes);
        const n = x.extLeafRemove(this.ptr(leaf), this.size(leaf), cur, stop) as number;
        if (n === this.FULL) {
          if (++retries > 16) throw new FsError("EIO", `inode ${this.root.ino}: extent removal did not converge`);
          await this.makeRoom(h, alloc, path, -1);
          continue;
        }
        retries = 0;
        if (n < 0) throw this.corrupt(`extent leaf refused a removal (${n})`);
        extents += k;
        if (x.extModChanged() !== 0) {
          const count = x.extModFreedCount() as number;
          for (let i = 0; i < count; i++) {
            const l = x.extModFreedLen(i) >>> 0;
            pending.push(x.extModFreedPhys(i) as number, l);
            freedTotal += l;
          }
          const first = x.extModFirstChanged() !== 0;
          this.seal(h, leaf);
          if (D > 0) {
            if (n === 0) await this.removeNode(h, alloc, path, D);
            else if (first) await this.fixKeys(h, path, D);
          }
        }
        const next = leaf.hi;
        this.releasePath(h, path);
        if (next >= stop || next >= END) break;
        cur = next;
      }
      await this.collapse(h, alloc);
    } finally {
      this.pending = undefined;
      await this.freeRuns(h, alloc, pending);
    }
    return { freed: freedTotal, extents, next: resumeAt };
  }

  // Free (start, len) pairs sorted and merged: one allocator call per contiguous run.
  private async freeRuns(h: Handle, alloc: BlockAllocator, flat: number[]): Promise<void> {
    if (flat.length === 0) return;
    const runs: [number, number][] = [];
    for (let i = 0; i < flat.length; i += 2) runs.push([flat[i]!, flat[i + 1]!]);
    runs.sort((a, b) => a[0] - b[0]);
    let [start, len] = runs[0]!;
    for (let i = 1; i < runs.length; i++) {
      const [p, l] = runs[i]!;
      if (p === start + len) len += l;
      else {
        await alloc.freeBlocks(h, start, len);
        [start, len] = [p, l];
      }
    }
    await alloc.freeBlocks(h, start, len);
  }

  /**
   * Make the mapped blocks of [lblk, lblk+len) written (toUnwritten false: I/O completed)
   * or unwritten (ZERO_RANGE), splitting extents at the edges and merging each changed
   * piece with contiguous neighbours in the same state. Holes are skipped. Returns the
   * blocks whose state changed. May split leaves (allocating tree blocks).
   */
  async convert(h: Handle, alloc: BlockAllocator, lblk: number, len: number, toUnwritten: boolean): Promise<number> {
    this.checkRange(lblk, len, "convert");
    const x = this.x;
    this.onChange?.(h);
    const end = lblk + len;
    let cur = lblk;
    let total = 0;
    let retries = 0;
    for (;;) {
      const path = await this.walk(h, cur);
      const leaf = path[path.length - 1];
      await this.writable(h, leaf);
      x.extModSetScratch(this.sc.mod, this.sc.modBytes);
      const n = x.extLeafConvert(this.ptr(leaf), this.size(leaf), cur, end, toUnwritten ? 1 : 0) as number;
      if (n === this.FULL) {
        if (++retries > 16) throw new FsError("EIO", `inode ${this.root.ino}: extent conversion did not converge`);
        await this.makeRoom(h, alloc, path, -1);
        continue;
      }
      retries = 0;
      if (n < 0) throw this.corrupt(`extent leaf refused a conversion (${n})`);
      if (x.extModChanged() !== 0) {
        const flipped = x.extModConverted() as number;
        total += flipped;
        this.stats.blocksConverted += flipped;
        this.stats.merges += x.extModMerges() as number;
        this.seal(h, leaf);
      }
      const next = leaf.hi;
      this.releasePath(h, path);
      if (next >= end || next >= END) break;
      cur = next;
    }
    return total;
  }

  /** The mapping of lblk (one run, as BlockMapper.map answers), read through `h` or the cache. */
  async map(lblk: number, h?: Handle): Promise<Mapping> {
    if (!Number.isSafeInteger(lblk) || lblk < 0) throw this.inval(`bad logical block ${lblk}`, "bmap");
    if (lblk >= END) return { len: 1, phys: -1, unwritten: false };
    const own = h ?? new CacheHandle(this.vol.cache);
    try {
      const path = await this.walk(own, lblk);
      const leaf = path[path.length - 1];
      const x = this.x;
      const r = x.extLeafMap(this.ptr(leaf), lblk, leaf.hi) as number;
      let out: Mapping;
      if (r === this.MAPPED) out = { len: x.extMapLen() >>> 0, phys: x.extMapPhys() as number, unwritten: x.extMapUnwritten() !== 0 };
      else if (r === this.HOLE) out = { len: Math.max(1, x.extMapLen() >>> 0), phys: -1, unwritten: false };
      else throw this.corrupt(`extent leaf lookup failed (${r})`);
      if (h) this.releasePath(h, path);
      return out;
    } finally {
      if (!h) await own.stop();
    }
  }

  /** Every extent in logical order (a walk over all leaves). */
  async extents(h?: Handle): Promise<ExtentRecord[]> {
    const own = h ?? new CacheHandle(this.vol.cache);
    const x = this.x;
    const out: ExtentRecord[] = [];
    try {
      let cur = 0;
      for (;;) {
        const path = await this.walk(own, cur);
        const leaf = path[path.length - 1];
        const p = this.ptr(leaf);
        const n = x.extLeafCount(p) as number;
        for (let i = 0; i < n; i++) {
          out.push({
            lblk: x.extLeafBlock(p, i) >>> 0,
            len: x.extLeafLen(p, i) >>> 0,
            phys: x.extLeafStart(p, i) as number,
            unwritten: x.extLeafUnwritten(p, i) !== 0,
          });
        }
        const next = leaf.hi;
        if (h) this.releasePath(h, path);
        if (next >= END) break;
        cur = next;
      }
    } finally {
      if (!h) await own.stop();
    }
    return out;
  }

  /** Depth of the tree (0: the extents live in i_block). */
  depth(): number {
    return this.root.iblock[6] | (this.root.iblock[7] << 8);
  }

  // ── the walk ────────────────────────────────────────────────────────────────────────

  // Root → leaf for lblk (leftmost path when lblk precedes every key), every block checked.
  private async walk(h: Handle, lblk: number): Promise<Level[]> {
    const x = this.x;
    let d = x.extNodeCheck(this.rootSync(), ROOT_SIZE, -1, 0, END, this.firstData, this.blocksCount) as number;
    if (d < 0) throw this.corrupt(`bad extent tree root (${d})`);
    const path: Level[] = [{ blk: -1, ref: null, depth: d, idx: -1, lo: 0, hi: END }];
    while (d > 0) {
      const cur = path[path.length - 1];
      const node = this.ptr(cur);
      let i = x.extIndexFind(node, lblk) as number;
      if (i === -1) i = 0;
      if (i < 0) throw this.corrupt(`extent index lookup failed (${i})`);
      cur.idx = i;
      const lvl = await this.loadChild(h, cur, i);
      path.push(lvl);
      d = lvl.depth;
    }
    return path;
  }

  // Load and check child i of `parent` (whose node must be current).
  private async loadChild(h: Handle, parent: Level, i: number): Promise<Level> {
    const x = this.x;
    const node = this.ptr(parent);
    const child = x.extIndexChild(node, i) as number;
    const lo = x.extIndexStart(node, i) >>> 0;
    const hi = x.extIndexNextStart(node, i, parent.hi) as number;
    if (child < 0) throw this.corrupt(`extent index entry ${i} missing`);
    const ref = await h.getBlock(child);
    const want = parent.depth - 1;
    const got = x.extNodeCheck(ref.ptr, this.bs, want, lo, hi, this.firstData, this.blocksCount) as number;
    if (got !== want) {
      h.release(ref);
      throw this.corrupt(`bad extent block ${child} (${got})`);
    }
    if (this.csum && !x.extentBlockCsumVerify(ref.ptr, this.root.ino, this.root.generation)) {
      h.release(ref);
      throw this.corrupt(`extent block ${child} checksum mismatch`);
    }
    return { blk: child, ref, depth: want, idx: -1, lo, hi };
  }

  // ── structural steps ────────────────────────────────────────────────────────────────

  // Give the leaf of `path` room: one split (of the highest full node whose parent has
  // room) or one root growth. `pos` is where the leaf insert wanted to go (-1: middle).
  private async makeRoom(h: Handle, alloc: BlockAllocator, path: Level[], pos: number): Promise<void> {
    const D = path.length - 1;
    let k = D;
    while (k > 0 && this.room(path[k - 1]) === 0) k--;
    if (k === 0) await this.grow(h, alloc);
    else await this.split(h, alloc, path, k, k === D ? pos : path[k].idx + 1);
    this.releasePath(h, path);
  }

  private room(l: Level): number {
    const r = this.x.extNodeRoom(this.ptr(l), this.size(l)) as number;
    if (r < 0) throw this.corrupt(`bad extent node header (${r})`);
    return r;
  }

  // Split node k (a block) in two; its parent (with room) gains the new node's key.
  // `hint` is where the pending insert lands in node k: at the end → move only the last
  // entry (appending files keep full nodes); at the front → keep one; else halve.
  private async split(h: Handle, alloc: BlockAllocator, path: Level[], k: number, hint: number): Promise<void> {
    const x = this.x;
    const l = path[k];
    const parent = path[k - 1];
    const n = x.extNodeCount(l.ref!.ptr) as number;
    if (n < 2) throw this.corrupt(`extent block ${l.blk} is full with ${n} entries`);
    const at = hint < 0 ? n >> 1 : hint >= n ? n - 1 : hint === 0 ? 1 : n >> 1;
    const blk = await this.allocTreeBlock(h, alloc);
    let nref: BlockRef;
    try {
      await this.writable(h, l);
      await this.writable(h, parent);
      nref = await h.getNewBlock(blk);
    } catch (e) {
      await alloc.freeBlocks(h, blk, 1);
      this.stats.treeBlocksAllocated--;
      throw e;
    }
    const moved = x.extNodeSplit(l.ref!.ptr, this.bs, nref.ptr, this.bs, at) as number;
    if (moved < 0) {
      h.release(nref);
      await alloc.freeBlocks(h, blk, 1);
      this.stats.treeBlocksAllocated--;
      throw this.corrupt(`extent block ${l.blk} could not be split (${moved})`);
    }
    const key = x.extModFirstKey() >>> 0;
    this.sealRef(h, nref);
    this.seal(h, l);
    const pos = x.extIndexInsert(this.ptr(parent), this.size(parent), key, blk) as number;
    if (pos < 0) throw new FsError("EIO", `inode ${this.root.ino}: index insert after split failed (${pos})`);
    this.seal(h, parent);
    h.release(nref);
    this.root.addBlocks(1);
    this.stats.splits++;
  }

  // The root is full at every level of the path: move its entries into a new block.
  private async grow(h: Handle, alloc: BlockAllocator): Promise<void> {
    const x = this.x;
    const depth = x.extNodeDepth(this.rootSync()) as number;
    if (depth >= MAX_DEPTH) {
      throw new FsError("EFBIG", `inode ${this.root.ino}: extent tree is at its maximum depth (${MAX_DEPTH})`, { syscall: "insert" });
    }
    const blk = await this.allocTreeBlock(h, alloc);
    let nref: BlockRef;
    try {
      nref = await h.getNewBlock(blk);
    } catch (e) {
      await alloc.freeBlocks(h, blk, 1);
      this.stats.treeBlocksAllocated--;
      throw e;
    }
    const r = x.extRootGrow(this.rootSync(), nref.ptr, this.bs, blk, this.nodeMax) as number;
    if (r < 0) {
      h.release(nref);
      await alloc.freeBlocks(h, blk, 1);
      this.stats.treeBlocksAllocated--;
      throw this.corrupt(`extent root could not grow (${r})`);
    }
    this.rootSave();
    this.sealRef(h, nref);
    h.release(nref);
    this.root.addBlocks(1);
    this.stats.grows++;
  }

  // Node k (not the root) has become empty: unlink it from its parent, free it, and go
  // on up while parents empty out; otherwise fix keys if the parent's first one moved.
  private async removeNode(h: Handle, alloc: BlockAllocator, path: Level[], k: number): Promise<void> {
    const x = this.x;
    const l = path[k];
    const parent = path[k - 1];
    await this.writable(h, parent);
    const left = x.extIndexRemove(this.ptr(parent), this.size(parent), parent.idx) as number;
    if (left < 0) throw this.corrupt(`extent index entry could not be removed (${left})`);
    const first = x.extModFirstChanged() !== 0;
    this.seal(h, parent);
    if (k - 1 === 0 && left === 0) {
      // The last child of the root is gone: the file has no extents left.
      x.extNodeInit(this.rootSync(), ROOT_SIZE, 0, 0);
      this.rootSave();
    }
    await this.dropTreeBlock(h, alloc, l);
    if (k - 1 > 0) {
      if (left === 0) await this.removeNode(h, alloc, path, k - 1);
      else if (first) await this.fixKeys(h, path, k - 1);
    }
  }

  // While the root's children fit in the root together, pull them up (depth − 1).
  private async collapse(h: Handle, alloc: BlockAllocator): Promise<void> {
    const x = this.x;
    for (;;) {
      const depth = x.extNodeDepth(this.rootSync()) as number;
      if (depth === 0) return;
      const n = x.extIndexCount(this.rootSync()) as number;
      if (n < 1 || n > ROOT_CAPACITY) return;
      const rootLevel: Level = { blk: -1, ref: null, depth, idx: -1, lo: 0, hi: END };
      const kids: Level[] = [];
      let total = 0;
      for (let i = 0; i < n && total <= ROOT_CAPACITY; i++) {
        const kid = await this.loadChild(h, rootLevel, i);
        kids.push(kid);
        total += x.extNodeCount(kid.ref!.ptr) as number;
      }
      if (total > ROOT_CAPACITY) {
        this.releasePath(h, kids);
        return;
      }
      const rp = this.rootSync();
      x.extNodeInit(rp, ROOT_SIZE, total === 0 ? 0 : depth - 1, 0);
      for (const kid of total === 0 ? [] : kids) {
        const rc = x.extNodeAppend(rp, ROOT_SIZE, kid.ref!.ptr, this.bs) as number;
        if (rc < 0) throw this.corrupt(`extent children could not be collapsed into the root (${rc})`);
      }
      if (depth - 1 === 0 && total > 0) {
        // Extents from neighbouring leaves now sit side by side: join what can be joined.
        if ((x.extLeafCompact(rp, ROOT_SIZE) as number) >= 0) this.stats.merges += x.extModMerges() as number;
      }
      this.rootSave();
      for (const kid of kids) await this.dropTreeBlock(h, alloc, kid);
      this.stats.collapses++;
    }
  }

  // Node k's first key changed: rewrite its key in the parent, and upwards while the
  // changed entry is the parent's entry 0.
  private async fixKeys(h: Handle, path: Level[], k: number): Promise<void> {
    const x = this.x;
    const l = path[k];
    const node = this.ptr(l);
    const key = (l.depth > 0 ? x.extIndexStart(node, 0) : x.extLeafBlock(node, 0)) >>> 0;
    for (let j = k - 1; j >= 0; j--) {
      const p = path[j];
      await this.writable(h, p);
      const rc = x.extIndexSetKey(this.ptr(p), this.size(p), p.idx, key) as number;
      if (rc < 0) throw this.corrupt(`extent index key could not be updated (${rc})`);
      this.seal(h, p);
      if (p.idx !== 0) break;
    }
  }

  private async allocTreeBlock(h: Handle, alloc: BlockAllocator): Promise<number> {
    const r = await alloc.allocBlocks(h, this.root.goal(), 1, 1);
    if (!r || !Number.isSafeInteger(r.start) || !(r.len >= 1) || r.start < this.firstData || r.start + r.len > this.blocksCount) {
      throw new FsError("EIO", `inode ${this.root.ino}: the allocator returned a bad block run`);
    }
    if (r.len > 1) await alloc.freeBlocks(h, r.start + 1, r.len - 1);
    this.stats.treeBlocksAllocated++;
    return r.start;
  }

  private async dropTreeBlock(h: Handle, alloc: BlockAllocator, l: Level): Promise<void> {
    if (l.ref) {
      h.release(l.ref);
      l.ref = null;
    }
    const forget = (h as { forget?: (blk: number) => Promise<void> | void }).forget;
    if (typeof forget === "function") await forget.call(h, l.blk);
    else {
      try {
        await this.vol.cache.invalidate(l.blk);
      } catch (e) {
        if (!(e instanceof FsError && e.code === "EBUSY")) throw e;
      }
    }
    // Inside remove() the free joins the batch freed at its end (see remove).
    if (this.pending) this.pending.push(l.blk, 1);
    else await alloc.freeBlocks(h, l.blk, 1);
    this.root.addBlocks(-1);
    this.stats.treeBlocksFreed++;
  }

  // ── node access ─────────────────────────────────────────────────────────────────────

  private rootSync(): number {
    this.engine.u8.set(this.root.iblock.subarray(0, ROOT_SIZE), this.sc.root);
    return this.sc.root;
  }

  private rootSave(): void {
    this.root.iblock.set(this.engine.u8.subarray(this.sc.root, this.sc.root + ROOT_SIZE));
    this.root.markDirty();
  }

  // The node's bytes; for the root, a fresh copy of i_block (use before any await).
  private ptr(l: Level): number {
    return l.blk < 0 ? this.rootSync() : l.ref!.ptr;
  }

  private size(l: Level): number {
    return l.blk < 0 ? ROOT_SIZE : this.bs;
  }

  private async writable(h: Handle, l: Level): Promise<void> {
    if (l.blk >= 0) l.ref = await h.getWriteAccess(l.blk);
  }

  // After an engine call changed l's node (with no await since): store / checksum + dirty.
  private seal(h: Handle, l: Level): void {
    if (l.blk < 0) this.rootSave();
    else this.sealRef(h, l.ref!);
  }

  private sealRef(h: Handle, ref: BlockRef): void {
    this.x.extentBlockCsumSet(ref.ptr, this.root.ino, this.root.generation);
    h.dirty(ref);
  }

  private releasePath(h: Handle, path: Level[]): void {
    for (const l of path) {
      if (l.ref) {
        h.release(l.ref);
        l.ref = null;
      }
    }
  }

  private checkRange(lblk: number, len: number, syscall: string): void {
    if (!Number.isSafeInteger(lblk) || lblk < 0) throw this.inval(`bad logical block ${lblk}`, syscall);
    if (!Number.isSafeInteger(len) || len < 1) throw this.inval(`bad length ${len}`, syscall);
    if (lblk + len > END) throw this.inval(`logical blocks ${lblk}+${len} pass the last addressable block`, syscall);
  }

  private inval(why: string, syscall: string): FsError {
    return new FsError("EINVAL", `inode ${this.root.ino}: ${why}`, { syscall });
  }

  private corrupt(why: string): FsError {
    return new FsError("EFSCORRUPTED", `inode ${this.root.ino}: ${why}`, { syscall: "extent" });
  }
}
