/**
 * Indexed (htree) directory lookup: the walk that assembly/htree.ts describes, with the
 * block loads. Blocks are loaded and released one at a time; the path keeps only
 * (logical block, entries offset, index) per level, so nothing stays pinned across the
 * walk's awaits.
 *
 * Returns the inode number, 0 for "not there", or undefined when the index cannot be
 * used at all (unknown or unsupported hash, malformed root): the caller then scans the
 * leaves linearly. A malformed node below the root throws EFSCORRUPTED, which the caller
 * also answers with a linear scan. The walk visits each leaf at most once, so a corrupt
 * index cannot make it loop.
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import type { MissProbe } from "./dcache.ts";

type Ref = { ptr: number; slot: number; blk: number };
type Load = (lblk: number, syscall: string) => Promise<Ref | undefined>;

interface Level {
  lblk: number;
  off: number;
  i: number;
}

let seedPtr = 0;
let seedEngine: unknown;

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
  constructor(
    readonly vol: Volume,
    readonly dir: Inode,
    readonly load: Load,
    readonly hasCsum: boolean,
  ) {
    this.nblocks = Math.ceil(dir.size / vol.blockSize);
  }

  corrupt(why: string): FsError {
    return new FsError("EFSCORRUPTED", `directory inode ${this.dir.ino}: htree ${why}`, { syscall: "lookup" });
  }

  /** Pin directory block lblk (the caller releases it); corrupt if outside or a hole. */
  async pin(lblk: number): Promise<Ref> {
    if (!(lblk >= 0 && lblk < this.nblocks)) throw this.corrupt(`points at block ${lblk} outside the directory`);
    const ref = await this.load(lblk, "lookup");
    if (!ref) throw this.corrupt(`points at a hole (block ${lblk})`);
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
  async childOf(lv: Level): Promise<number> {
    const ref = await this.pin(lv.lblk);
    try {
      return this.vol.engine.x.dxEntryBlock(ref.ptr, this.vol.blockSize, lv.off, lv.i) >>> 0;
    } finally {
      this.vol.cache.release(ref);
    }
  }

  /** Fill path[from+1 .. levels] below path[from]: by hash, or (first) through entry 0. */
  async descend(from: number, levels: number, hash: number, first: boolean, K: DxConsts): Promise<void> {
    const x = this.vol.engine.x;
    const bs = this.vol.blockSize;
    for (let k = from; k < levels; k++) {
      const child = await this.childOf(this.path[k]!);
      const ref = await this.pin(child);
      let i: number;
      try {
        if ((x.dxNodeCheck(ref.ptr, bs, this.hasCsum ? 1 : 0) as number) < 0) throw this.corrupt(`node ${child} is malformed`);
        this.checkCsum(ref, child);
        i = first ? 0 : (x.dxFind(ref.ptr, bs, K.DXN, hash) as number);
      } finally {
        this.vol.cache.release(ref);
      }
      if (i < 0) throw this.corrupt(`node ${child} is malformed (${i})`);
      this.path[k + 1] = { lblk: child, off: K.DXN, i };
    }
  }
}

/**
 * Look a name (nameLen bytes at namePtr in engine memory) up through dir's index. Any
 * caller with a Volume; holds nothing across calls. `miss`, when given, receives the
 * index path the hash led to (its hash, version, levels and path fields are set), so
 * that a following insert need not walk again.
 */
export async function htreeFind(
  vol: Volume, dir: Inode, nameLen: number, namePtr: number, load: Load, hasCsum: boolean,
  miss?: Pick<MissProbe, "hash" | "version" | "levels" | "path">,
): Promise<number | undefined> {
  const x = vol.engine.x;
  const bs = vol.blockSize;
  const K = dxConsts(vol);
  const w = new DxWalk(vol, dir, load, hasCsum);

  if (seedEngine !== vol.engine) {
    seedPtr = vol.engine.alloc(16);
    seedEngine = vol.engine;
  }
  vol.engine.u8.set(vol.sb.hashSeed, seedPtr);

  // Root: levels, hash version, first choice.
  let levels: number;
  let hash: number;
  let version: number;
  const root = await w.pin(0);
  try {
    levels = x.dxRootCheck(root.ptr, bs, hasCsum ? 1 : 0, x.dxMaxLevels(vol.sb.incompat)) as number;
    if (levels < 0) return undefined;
    w.checkCsum(root, 0);
    version = x.dxEffectiveHashVersion(x.dxHashVersion(root.ptr), vol.sb.flags) >>> 0;
    if (!x.dxHashSupported(version)) return undefined;
    hash = x.dxHash(namePtr, nameLen, version, seedPtr) >>> 0;
    const i = x.dxFind(root.ptr, bs, K.DXR, hash) as number;
    if (i < 0) throw w.corrupt(`root is malformed (${i})`);
    w.path.push({ lblk: 0, off: K.DXR, i });
  } finally {
    vol.cache.release(root);
  }
  const path = w.path;
  await w.descend(0, levels, hash, false, K);
  if (miss) {
    miss.hash = hash;
    miss.version = version;
    miss.levels = levels;
    miss.path = path.map((lv) => ({ lblk: lv.lblk, off: lv.off, i: lv.i }));
  }

  let visited: Set<number> | undefined;
  for (;;) {
    const leaf = await w.childOf(path[levels]!);
    // Most lookups visit one leaf: the set that stops a looping index is made on a second.
    if (visited === undefined) visited = new Set([leaf]);
    else if (visited.has(leaf)) throw w.corrupt(`revisits leaf ${leaf}`);
    else visited.add(leaf);
    const ref = await w.pin(leaf);
    let ino: number;
    try {
      const off = x.dirLookup(ref.ptr, bs, namePtr, nameLen, hasCsum ? 1 : 0, vol.cache.isShaped(ref) ? 1 : 0) as number;
      if (off < -1) throw w.corrupt(`leaf ${leaf} is malformed (${off})`);
      vol.cache.markShaped(ref);
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
      const nref = await w.pin(lv.lblk);
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
    await w.descend(k, levels, hash, true, K);
  }
}
