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
  const c = constants(vol);
  const nblocks = Math.ceil(dir.size / bs);
  const corrupt = (why: string) => new FsError("EFSCORRUPTED", `directory inode ${dir.ino}: htree ${why}`, { syscall: "lookup" });

  const withBlock = async <T>(lblk: number, fn: (ptr: number, ref: Ref) => T): Promise<T> => {
    if (!(lblk >= 0 && lblk < nblocks)) throw corrupt(`points at block ${lblk} outside the directory`);
    const ref = await load(lblk, "lookup");
    if (!ref) throw corrupt(`points at a hole (block ${lblk})`);
    try {
      return fn(ref.ptr, ref);
    } finally {
      vol.cache.release(ref);
    }
  };
  // Once per fill from the device, like the leaves (BlockCache.isVerified).
  const checkCsum = (ref: Ref, lblk: number) => {
    if (!hasCsum || vol.cache.isVerified(ref, dir.ino, dir.generation)) return;
    const off = x.dxCountOffset(ref.ptr) as number;
    if (off < 0 || !x.dxNodeCsumVerify(ref.ptr, dir.ino, dir.generation, off)) throw corrupt(`index block ${lblk} checksum mismatch`);
    vol.cache.markVerified(ref, dir.ino, dir.generation);
  };

  if (seedEngine !== vol.engine) {
    seedPtr = vol.engine.alloc(16);
    seedEngine = vol.engine;
  }
  vol.engine.u8.set(vol.sb.hashSeed, seedPtr);

  // Root: levels, hash version, first choice.
  const root = await withBlock(0, (ptr, ref) => {
    const levels = x.dxRootCheck(ptr, bs, hasCsum ? 1 : 0, x.dxMaxLevels(vol.sb.incompat)) as number;
    if (levels < 0) return undefined;
    checkCsum(ref, 0);
    const version = x.dxEffectiveHashVersion(x.dxHashVersion(ptr), vol.sb.flags) >>> 0;
    if (!x.dxHashSupported(version)) return undefined;
    const hash = x.dxHash(namePtr, nameLen, version, seedPtr) >>> 0;
    const i = x.dxFind(ptr, bs, c("DXR_ENTRIES"), hash) as number;
    if (i < 0) throw corrupt(`root is malformed (${i})`);
    return { levels, hash, i, version };
  });
  if (!root) return undefined;
  const { levels, hash } = root;
  const path: Level[] = [{ lblk: 0, off: c("DXR_ENTRIES"), i: root.i }];
  const DXN = c("DXN_ENTRIES");

  // Fill path[from+1 ..] by descending from path[from]; first: take entry 0 (after a move
  // to the right) instead of searching.
  const descend = async (from: number, first: boolean) => {
    for (let k = from; k < levels; k++) {
      const parent = path[k]!;
      const child = await withBlock(parent.lblk, (ptr) => x.dxEntryBlock(ptr, bs, parent.off, parent.i) >>> 0);
      const i = await withBlock(child, (ptr, ref) => {
        if ((x.dxNodeCheck(ptr, bs, hasCsum ? 1 : 0) as number) < 0) throw corrupt(`node ${child} is malformed`);
        checkCsum(ref, child);
        return first ? 0 : (x.dxFind(ptr, bs, DXN, hash) as number);
      });
      if (i < 0) throw corrupt(`node ${child} is malformed (${i})`);
      path[k + 1] = { lblk: child, off: DXN, i };
    }
  };
  await descend(0, false);
  if (miss) {
    miss.hash = hash;
    miss.version = root.version;
    miss.levels = levels;
    miss.path = path.map((lv) => ({ ...lv }));
  }

  const visited = new Set<number>();
  for (;;) {
    const deepest = path[levels]!;
    const leaf = await withBlock(deepest.lblk, (ptr) => x.dxEntryBlock(ptr, bs, deepest.off, deepest.i) >>> 0);
    if (visited.has(leaf)) throw corrupt(`revisits leaf ${leaf}`);
    visited.add(leaf);
    const ino = await withBlock(leaf, (ptr, ref) => {
      const off = x.dirLookup(ptr, bs, namePtr, nameLen, hasCsum ? 1 : 0, vol.cache.isShaped(ref) ? 1 : 0) as number;
      if (off < -1) throw corrupt(`leaf ${leaf} is malformed (${off})`);
      vol.cache.markShaped(ref);
      return off >= 0 ? x.dirEntryInode(ptr, bs, off) >>> 0 : 0;
    });
    if (ino) return ino;
    // A miss: the name may continue in the next leaf when hashes collide.
    let k = levels;
    let next = c("DX_NEXT_UP");
    for (; k >= 0; k--) {
      const lv = path[k]!;
      next = await withBlock(lv.lblk, (ptr) => x.dxContinues(ptr, bs, lv.off, lv.i, hash) as number);
      if (next !== c("DX_NEXT_UP")) break;
    }
    if (k < 0 || next === c("DX_NEXT_STOP")) return 0;
    if (next !== c("DX_NEXT_FOLLOW")) throw corrupt(`bad entry order (${next})`);
    path[k]!.i++;
    await descend(k, true);
  }
}
