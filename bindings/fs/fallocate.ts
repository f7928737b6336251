/**
 * fallocate(2) for FileHandle: preallocation, hole punching and range zeroing.
 *
 * Why unwritten extents: preallocated blocks still hold what a deleted file left behind.
 * Mapping them *unwritten* (the on-disk flag in the extent length) reserves the space and
 * fixes the layout now, while every read of them answers zeros without touching the
 * device; a later write converts them to written only after its data has landed
 * (sched/endio.ts). The modes, with Linux's values and error rules:
 *
 *   0                         allocate unwritten extents over the holes; size grows to
 *                             offset+len;
 *   KEEP_SIZE                 the same, size untouched (blocks past EOF are legal when
 *                             unwritten — e2fsck accepts them);
 *   PUNCH_HOLE | KEEP_SIZE    free the whole blocks inside the range (extents are split
 *                             around it), zero the partial blocks at its edges;
 *   ZERO_RANGE [| KEEP_SIZE]  whole blocks become unwritten (written ones are flipped,
 *                             holes allocated), partial edge blocks are zeroed in place.
 *
 * Anything else is EOPNOTSUPP (unknown bits, PUNCH_HOLE without KEEP_SIZE) or EINVAL
 * (PUNCH_HOLE with ZERO_RANGE, offset < 0, len ≤ 0).
 *
 * Locking: the whole operation is one transaction under metaLock. Before it changes the
 * map it writes back the file's buffered data and waits for its direct I/O and IoEnds in
 * flight (converting the completed ones itself — the worker cannot take the lock it
 * holds), so a punch never frees blocks that a request in flight still targets and a
 * conversion never lands on blocks that were punched and reused.
 */
import { FsError } from "./errors.ts";
import type { Handle } from "../journal/handle.ts";
import { CacheHandle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import { WState, nowTime } from "./wstate.ts";
import { endioOf } from "../sched/endio.ts";

export const FALLOC_FL_KEEP_SIZE = 1;
export const FALLOC_FL_PUNCH_HOLE = 2;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** Longest unwritten extent the on-disk format can hold. */
const MAX_UNWRITTEN = 32767;
/** ext4's largest file with 4 KiB blocks (2^32 blocks); smaller block sizes are clamped below. */
const MAX_LBLK = 0xffffffff;

/**
 * Map every hole in logical blocks [lblk, lblk+n) of s to newly allocated unwritten
 * blocks. Caller holds metaLock, owns h and saves s. onNew sees each new extent.
 */
export async function allocUnwritten(vol: Volume, h: Handle, s: WState, lblk: number, n: number, onNew?: (lblk: number, phys: number, len: number) => void): Promise<void> {
  vol.fileData.forgetHoles(s.ino); // the tree changes outside data.ts
  const parts = vol.writeParts;
  const bs = vol.blockSize;
  const end = lblk + n;
  let l = lblk;
  while (l < end) {
    const m = await vol.mapper.map(s.asInode(), l, end - l);
    const len = Math.min(m.len, end - l);
    if (m.phys >= 0) {
      l += len;
      continue;
    }
    let done = 0;
    let goal = await parts.goal(s, l);
    while (done < len) {
      const got = await parts.allocBlocks(h, goal, Math.min(MAX_UNWRITTEN, len - done), 1);
      try {
        await parts.insertExtent(h, s, l + done, got.start, got.len, true);
      } catch (e) {
        await parts.freeBlocks(h, got.start, got.len).catch(() => {});
        throw e;
      }
      s.fields.blocks512 += (got.len * bs) / 512;
      onNew?.(l + done, got.start, got.len);
      done += got.len;
      goal = got.start + got.len;
    }
    l += len;
  }
}

/** Check fallocate's arguments as Linux does; returns nothing, throws FsError. */
export function checkFallocate(offset: number, len: number, mode: number, path: string): void {
  const known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  const bad = (code: "EINVAL" | "EOPNOTSUPP" | "EFBIG", msg: string) => new FsError(code, msg, { syscall: "fallocate", path });
  if (!Number.isSafeInteger(offset) || offset < 0) throw bad("EINVAL", `bad offset ${String(offset)}`);
  if (!Number.isSafeInteger(len) || len <= 0) throw bad("EINVAL", `bad length ${String(len)}`);
  if (!Number.isInteger(mode) || mode < 0) throw bad("EINVAL", `bad mode ${String(mode)}`);
  if ((mode & ~known) !== 0) throw bad("EOPNOTSUPP", `unsupported fallocate mode 0x${mode.toString(16)}`);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && (mode & FALLOC_FL_ZERO_RANGE)) throw bad("EINVAL", "PUNCH_HOLE and ZERO_RANGE exclude each other");
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) throw bad("EOPNOTSUPP", "PUNCH_HOLE needs KEEP_SIZE");
}

/** fallocate on inode ino (a regular, extent-mapped file open for writing). Takes metaLock. */
export async function fallocate(vol: Volume, ino: number, path: string, offset: number, len: number, mode: number): Promise<void> {
  checkFallocate(offset, len, mode, path);
  const bs = vol.blockSize;
  if (offset + len > (MAX_LBLK + 1) * bs - 1) throw new FsError("EFBIG", "file too large", { syscall: "fallocate", path });
  const endio = endioOf(vol);
  await vol.metaLock.run(async () => {
    const h = new CacheHandle(vol.cache);
    let s: WState | undefined;
    try {
      s = await WState.load(vol, ino);
      const fmt = s.fields.mode & 0o170000;
      if (fmt === 0o040000) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "fallocate", path });
      if (fmt !== 0o100000) throw new FsError("ENODEV", "not a regular file", { syscall: "fallocate", path });
      const tree = vol.writeParts.tree(s); // EOPNOTSUPP for ext2/ext3 block maps
      // Quiesce: buffered data to disk, direct I/O and completions of this file settled.
      await vol.fileData.writeback(h, s);
      await endio.waitInode(ino, true);
      await endio.convertInode(h, s, tree);
      const end = offset + len;
      const firstFull = Math.ceil(offset / bs);
      const lastFull = Math.floor(end / bs); // exclusive
      let changed = false;
      if (mode & FALLOC_FL_PUNCH_HOLE) {
        if (lastFull > firstFull) await vol.writeParts.removeBlocks(h, s, firstFull, lastFull);
        await zeroEdges(vol, s, offset, end);
        changed = true;
      } else if (mode & FALLOC_FL_ZERO_RANGE) {
        if (lastFull > firstFull) {
          await tree.convert(h, vol.writeParts.alloc, firstFull, lastFull - firstFull, true);
          await allocUnwritten(vol, h, s, firstFull, lastFull - firstFull);
        }
        await zeroEdges(vol, s, offset, end);
        changed = true;
      } else {
        await allocUnwritten(vol, h, s, Math.floor(offset / bs), Math.ceil(end / bs) - Math.floor(offset / bs));
      }
      if (!(mode & FALLOC_FL_KEEP_SIZE) && end > s.fields.size) {
        s.fields.size = end;
        changed = true;
      }
      if (changed) {
        const t = nowTime();
        s.fields.mtime = t;
        s.fields.ctime = t;
      }
      await s.save(vol, h);
    } catch (e) {
      // What was allocated before the failure (ENOSPC) stays mapped, unwritten: save it.
      if (s) await s.saveQuietly(vol, h);
      throw e;
    } finally {
      await h.stop();
    }
  });
}

/**
 * Zero the bytes of [from, to) that lie in partial blocks at the edges of the range, where
 * those blocks are mapped written (holes and unwritten blocks already read as zeros).
 */
async function zeroEdges(vol: Volume, s: WState, from: number, to: number): Promise<void> {
  const bs = vol.blockSize;
  const edges = new Set<number>();
  if (from % bs !== 0) edges.add(Math.floor(from / bs));
  if (to % bs !== 0) edges.add(Math.floor(to / bs));
  for (const b of edges) {
    const lo = Math.max(from, b * bs) - b * bs;
    const hi = Math.min(to, (b + 1) * bs) - b * bs;
    if (hi <= lo) continue;
    const m = await vol.mapper.map(s.asInode(), b, 1);
    if (m.phys < 0 || m.unwritten) continue;
    const block = new Uint8Array(bs);
    await vol.device.read(m.phys * bs, block);
    block.fill(0, lo, hi);
    await vol.cache.invalidate(m.phys).catch(() => false);
    await vol.device.write(m.phys * bs, block);
  }
}
