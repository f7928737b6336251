/**
 * Indexed (htree) directory lookup: the walk that assembly/htree.ts describes, with the
 * block loads. Blocks are loaded and released one at a time; the path keeps only
 * (logical block, entries offset, index) per level.
 *
 * Returns the inode number, 0 for "not there", or undefined when the index cannot be
 * used at all (unknown or unsupported hash, malformed root): the caller then scans the
 * leaves linearly. A malformed node below the root throws EFSCORRUPTED, which the caller
 * also answers with a linear scan. The walk visits each leaf at most once, so a corrupt
 * index cannot make it loop.
 *
 * The walk is synchronous over resident blocks: its DirBlockSource answers Missing for a
 * block that must be read first, and the walk returns that Missing at once, having
 * changed nothing (BlockCache.resident reads it and runs the walk again; a create's
 * lookup in a cached directory thus costs no promise). Inside the walk a Missing travels
 * as a thrown value — it is not an Error and carries no stack, so the throw is cheap —
 * caught at the top. Each level keeps the physical block it was found at, so going back
 * to a block (the entry to follow, the next-leaf test) does not map it again.
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import type { MissProbe } from "./dcache.ts";
import { Missing } from "../cache.ts";

type Ref = { ptr: number; slot: number; blk: number };

/** Where a walk gets directory blocks (Directories, dir.ts). Both answer Missing rather than wait. */
export interface DirBlockSource {
  /** The physical block of dir's block lblk; -1 for a hole (or an unwritten block). */
  mapDirBlock(dir: Inode, lblk: number): number | Missing;
  /** Block lblk (at phys) pinned, its leaf checksum verified if it has one. */
  pinDirBlock(dir: Inode, lblk: number, phys: number, syscall: string): Ref | Missing;
}

/** One level of the path: the index block (logical, physical), its entries offset, the entry followed. */
export interface Level {
  lblk: number;
  phys: number;
  off: number;
  i: number;
}

/**
 * The volume's hash seed in engine memory, copied once per engine (one engine serves one
 * volume, whose s_hash_seed no operation changes).
 */
const seeds = new WeakMap<object, number>();
function seedOf(vol: Volume): number {
  let p = seeds.get(vol.engine);
  if (p === undefined) {
    p = vol.engine.alloc(16);
    vol.engine.u8.set(vol.sb.hashSeed, p);
    seeds.set(vol.engine, p);
  }
  return p;
}

/**
 * Engine constants by name, looked up once per engine: Engine.constant reads a
 * WebAssembly.Global each time, and a lookup asks for several of them.
 */
const constMemo = new WeakMap<object, (n: string) => number>();
function constants(vol: Volume): (n: string) => number {
  let c = constMemo.get(vol.engine);
  if (!c) {
    const memo = new Map<string, number>();
    const engine = vol.engine;
    c = (n) => {
      let v = memo.get(n);
      if (v === undefined) memo.set(n, (v = engine.constant(n)));
      return v;
    };
    constMemo.set(vol.engine, c);
  }
  return c;
}

/** Engine constants an index walk uses, read once per engine (Engine.constant is slow). */
interface DxConsts {
  DXR: number;
  DXN: number;
  UP: number;
  STOP: number;
  FOLLOW: number;
}
const dxConstMemo = new WeakMap<object, DxConsts>();
function dxConsts(vol: Volume): DxConsts {
  let k = dxConstMemo.get(vol.engine);
  if (!k) {
    const c = constants(vol);
    k = { DXR: c("DXR_ENTRIES"), DXN: c("DXN_ENTRIES"), UP: c("DX_NEXT_UP"), STOP: c("DX_NEXT_STOP"), FOLLOW: c("DX_NEXT_FOLLOW") };
    dxConstMemo.set(vol.engine, k);
  }
  return k;
}

/**
 * One lookup's state. A class rather than closures inside htreeFind: a lookup runs for
 * every path component, and per-call closures were a visible share of a stat-heavy
 * profile (allocation and GC). One object per lookup, methods on the prototype.
 */
class DxWalk {
  readonly path: Level[] = [];
  readonly nblocks: number;
  /** Physical block of the last lblk `map` answered. */
  phys = 0;
  constructor(
    readonly vol: Volume,
    readonly dir: Inode,
    readonly src: DirBlockSource,
    readonly hasCsum: boolean,
  ) {
    this.nblocks = Math.ceil(dir.size / vol.blockSize);
  }

  corrupt(why: string): FsError {
    return new FsError("EFSCORRUPTED", `directory inode ${this.dir.ino}: htree ${why}`, { syscall: "lookup" });
  }

  /** Where directory block lblk is (also left in this.phys); corrupt if outside or a hole; throws Missing. */
  map(lblk: number): number {
    if (!(lblk >= 0 && lblk < this.nblocks)) throw this.corrupt(`points at block ${lblk} outside the directory`);
    const phys = this.src.mapDirBlock(this.dir, lblk);
    if (phys instanceof Missing) throw phys;
    if (phys < 0) throw this.corrupt(`points at a hole (block ${lblk})`);
    return (this.phys = phys);
  }

  /** Pin block lblk found at phys (the caller releases it); throws Missing. */
  pin(lblk: number, phys: number): Ref {
    const ref = this.src.pinDirBlock(this.dir, lblk, phys, "lookup");
    if (ref instanceof Missing) throw ref;
    return ref;
  }

  /** Verify an index block's dx tail once per fill from the device (BlockCache.isVerified). */
  checkCsum(ref: Ref, lblk: number): void {
    const { vol, dir } = this;
    if (!this.hasCsum || vol.cache.isVerified(ref, dir.ino, dir.generation)) return;
    const x = vol.engine.x;
    const off = x.dxCountOffset(ref.ptr) as number;
    if (off < 0 || !x.dxNodeCsumVerify(ref.ptr, dir.ino, dir.generation, off)) throw this.corrupt(`index block ${lblk} checksum mismatch`);
    vol.cache.markVerified(ref, dir.ino, dir.generation);
  }

  /** Block number of entry i of the index block at path level lv. */
  childOf(lv: Level): number {
    const ref = this.pin(lv.lblk, lv.phys);
    try {
      return this.vol.engine.x.dxEntryBlock(ref.ptr, this.vol.blockSize, lv.off, lv.i) >>> 0;
    } finally {
      this.vol.cache.release(ref);
    }
  }

  /** Fill path[from+1 .. levels] below path[from]: by hash, or (first) through entry 0. */
  descend(from: number, levels: number, hash: number, first: boolean, K: DxConsts): void {
    const x = this.vol.engine.x;
    const bs = this.vol.blockSize;
    for (let k = from; k < levels; k++) {
      const child = this.childOf(this.path[k]!);
      const phys = this.map(child);
      const ref = this.pin(child, phys);
      let i: number;
      try {
        if ((x.dxNodeCheck(ref.ptr, bs, this.hasCsum ? 1 : 0) as number) < 0) throw this.corrupt(`node ${child} is malformed`);
        this.checkCsum(ref, child);
        i = first ? 0 : (x.dxFind(ref.ptr, bs, K.DXN, hash) as number);
      } finally {
        this.vol.cache.release(ref);
      }
      if (i < 0) throw this.corrupt(`node ${child} is malformed (${i})`);
      this.path[k + 1] = { lblk: child, phys, off: K.DXN, i };
    }
  }
}

/** What a missed lookup tells the insert that follows (see MissProbe in dcache.ts). */
type MissOut = Pick<MissProbe, "hash" | "version" | "levels" | "path" | "leaf" | "leafPhys" | "fit">;

/**
 * Look a name (nameLen bytes at namePtr in engine memory) up through dir's index: the
 * inode number, 0, undefined (index unusable) or Missing (see the file header). Any
 * caller with a Volume; holds nothing when it returns. `miss`, when given, receives the
 * index path the hash led to, the leaf it names and the slot there the name would take
 * (hash, version, levels, path, leaf, leafPhys, fit), so that a following insert need
 * not walk again.
 */
export function htreeFind(
  vol: Volume, dir: Inode, nameLen: number, namePtr: number, src: DirBlockSource, hasCsum: boolean, miss?: MissOut,
): number | undefined | Missing {
  try {
    return find(vol, dir, nameLen, namePtr, src, hasCsum, miss);
  } catch (e) {
    if (e instanceof Missing) return e;
    throw e;
  }
}

function find(
  vol: Volume, dir: Inode, nameLen: number, namePtr: number, src: DirBlockSource, hasCsum: boolean, miss?: MissOut,
): number | undefined {
  const x = vol.engine.x;
  const bs = vol.blockSize;
  const K = dxConsts(vol);
  const w = new DxWalk(vol, dir, src, hasCsum);

  const seedPtr = seedOf(vol);

  // Root: levels, hash version, first choice.
  let levels: number;
  let hash: number;
  let version: number;
  const rootPhys = w.map(0);
  const root = w.pin(0, rootPhys);
  try {
    levels = x.dxRootCheck(root.ptr, bs, hasCsum ? 1 : 0, x.dxMaxLevels(vol.sb.incompat)) as number;
    if (levels < 0) return undefined;
    w.checkCsum(root, 0);
    version = x.dxEffectiveHashVersion(x.dxHashVersion(root.ptr), vol.sb.flags) >>> 0;
    if (!x.dxHashSupported(version)) return undefined;
    hash = x.dxHash(namePtr, nameLen, version, seedPtr) >>> 0;
    const i = x.dxFind(root.ptr, bs, K.DXR, hash) as number;
    if (i < 0) throw w.corrupt(`root is malformed (${i})`);
    w.path.push({ lblk: 0, phys: rootPhys, off: K.DXR, i });
  } finally {
    vol.cache.release(root);
  }
  const path = w.path;
  w.descend(0, levels, hash, false, K);

  // Most lookups visit one leaf: the set that stops a looping index is made on a second.
  let firstLeaf = -1;
  let visited: Set<number> | undefined;
  for (;;) {
    const leaf = w.childOf(path[levels]!);
    if (firstLeaf < 0) firstLeaf = leaf;
    else if (leaf === firstLeaf || visited?.has(leaf)) throw w.corrupt(`revisits leaf ${leaf}`);
    else (visited ??= new Set()).add(leaf);
    const leafPhys = w.map(leaf);
    if (miss && visited === undefined) {
      // The first leaf, before any move to a following one changes the path.
      miss.hash = hash;
      miss.version = version;
      miss.levels = levels;
      miss.path = path.map((lv) => ({ lblk: lv.lblk, phys: lv.phys, off: lv.off, i: lv.i }));
      miss.leaf = leaf;
      miss.leafPhys = leafPhys;
    }
    const ref = w.pin(leaf, leafPhys);
    let ino: number;
    try {
      // On the first leaf of a lookup that records its miss, also find the slot an
      // insert of the name would take (same pass over the block).
      const need = miss && visited === undefined ? (8 + nameLen + 3) & ~3 : 0;
      const off = x.dirLookup(ref.ptr, bs, namePtr, nameLen, hasCsum ? 1 : 0, vol.cache.isShaped(ref) ? 1 : 0, need) as number;
      if (off < -1) throw w.corrupt(`leaf ${leaf} is malformed (${off})`);
      vol.cache.markShaped(ref);
      if (need) miss!.fit = x.dirCheckedFit() as number;
      ino = off >= 0 ? x.dirEntryInode(ref.ptr, bs, off) >>> 0 : 0;
    } finally {
      vol.cache.release(ref);
    }
    if (ino) return ino;
    // A miss: the name may continue in the next leaf when hashes collide.
    let k = levels;
    let next = K.UP;
    for (; k >= 0; k--) {
      const lv = path[k]!;
      const nref = w.pin(lv.lblk, lv.phys);
      try {
        next = x.dxContinues(nref.ptr, bs, lv.off, lv.i, hash) as number;
      } finally {
        vol.cache.release(nref);
      }
      if (next !== K.UP) break;
    }
    if (k < 0 || next === K.STOP) return 0;
    if (next !== K.FOLLOW) throw w.corrupt(`bad entry order (${next})`);
    path[k]!.i++;
    w.descend(k, levels, hash, true, K);
  }
}
