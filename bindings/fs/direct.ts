/**
 * Direct I/O for handles opened with `{ direct: true }`: data goes between the caller's
 * buffer and the device with no block cache and no delayed-allocation buffer in between.
 *
 * Why this shape (the AIO race of seed 003): a direct write into a hole or into
 * fallocated space must not make its blocks readable before their data is on the device,
 * and must not report success before the blocks are readable. So a write
 *   1. under metaLock, briefly: writes back the file's buffered data, maps the range, and
 *      allocates unwritten extents over its holes; begins one IoEnd per extent that is
 *      unwritten (new or fallocated) — written extents are plain overwrites;
 *   2. without any lock: sends the data, split into requests of at most MAX_BIO bytes,
 *      all of one extent sharing its IoEnd, and drops its submitter references;
 *   3. waits for the device, then converts (under metaLock, merging with neighbours) the
 *      inode's completed IoEnds itself — EndIo.convertOwn; the worker only gets those no
 *      writer waits for — and resolves once they are converted and the inode saved; the
 *      IoEnd also carries the new i_size of an extending write, applied in the
 *      conversion's transaction — the size never covers blocks not yet converted.
 * Because the lock is held only for step 1, concurrent direct writes to different ranges
 * of one file overlap their device I/O.
 *
 * A direct read never takes metaLock unless the file has buffered data to write back
 * first (or, rarely, when writers keep changing the file's map: treeseq.ts): it maps the
 * range from the inode's saved state and reads written runs straight into the caller's
 * buffer; holes and unwritten extents are zeros. Since conversion happens only after the
 * data landed, a reader sees zeros or the written data — never the previous owner's
 * bytes; and since the pass is redone when the map changed before its reads completed, a
 * block punched out and reallocated to another file meanwhile is never returned. Writes
 * count as the inode's direct I/O (EndIo.dioBegin) so that punch and truncate wait for
 * them; reads need not (the retry covers them) and so never hold a writer up.
 *
 * Alignment: the buffer offset, the length and the file position must be multiples of the
 * block size (EINVAL otherwise), like O_DIRECT on Linux.
 */
import { FsError } from "./errors.ts";
import { CacheHandle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import { WState, nowTime } from "./wstate.ts";
import { endioOf, type IoEnd } from "../sched/endio.ts";
import { allocUnwritten } from "./fallocate.ts";
import { treeSeqOf, settleAll } from "./treeseq.ts";
import type { Inode } from "./inode.ts";

/** Largest device request of a direct write; bigger extents share one IoEnd across several. */
export const MAX_BIO = 1 << 20;
const MAX_FILE = 16 * 2 ** 40;

interface Segment {
  lblk: number;
  phys: number;
  len: number;
  /** Already written: a plain device write, no IoEnd, nothing to convert. */
  overwrite: boolean;
  /** Unwritten (new or fallocated): goes through an IoEnd and is converted at completion. */
  io?: IoEnd;
}

function checkAligned(vol: Volume, syscall: string, path: string, bufOffset: number, len: number, pos: number): void {
  const bs = vol.blockSize;
  if (bufOffset % bs !== 0 || len % bs !== 0 || pos % bs !== 0) {
    throw new FsError("EINVAL", `direct I/O needs ${bs}-byte aligned buffer offset, length and position (got ${bufOffset}, ${len}, ${pos})`, { syscall, path });
  }
}

/**
 * Write data (whole blocks) at byte pos of ino, resolving after it is on the device and
 * converted. Caller: FileHandle.write on a direct handle (no lock held).
 */
export async function directWrite(vol: Volume, ino: number, path: string, data: Uint8Array, bufOffset: number, pos: number): Promise<number> {
  checkAligned(vol, "write", path, bufOffset, data.length, pos);
  if (data.length === 0) return 0;
  if (pos + data.length > MAX_FILE) throw new FsError("EFBIG", "file too large", { syscall: "write", path });
  const bs = vol.blockSize;
  const endio = endioOf(vol);
  const first = pos / bs;
  const n = data.length / bs;
  const end = pos + data.length;
  const segs: Segment[] = [];
  let counted = false;
  try {
    await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      // The saved inode answers the map; a WState (decoded fields, own i_block copy) is
      // built only when something changes up front — write-back, holes, the times.
      const inode = await vol.inodes.get(ino);
      let s: WState | undefined;
      const state = async (): Promise<WState> => (s ??= await WState.load(vol, ino));
      // Whether this transaction changed the inode. Writing into fallocated space changes
      // nothing until conversion, so the times go with the conversion (IoEnd.touch) and the
      // inode is not saved twice per write.
      let changed = false;
      try {
        if (vol.fileData.hasPending(ino)) {
          await vol.fileData.writeback(h, await state());
          changed = true;
        }
        // One walk of the map per run: fallocated space (the database case) costs a single
        // lookup; only holes go through allocUnwritten, whose new extents become segments.
        for (let l = first; l < first + n; ) {
          const m = await vol.mapper.map(s ? s.asInode() : inode, l, first + n - l);
          const len = Math.min(m.len, first + n - l);
          if (m.phys < 0) {
            changed = true;
            await allocUnwritten(vol, h, await state(), l, len, (lb, phys, ln) => segs.push({ lblk: lb, phys, len: ln, overwrite: false }));
          } else segs.push({ lblk: l, phys: m.phys, len, overwrite: !m.unwritten });
          l += len;
        }
        // Without an IoEnd (only overwrites of written blocks) nothing saves the inode later.
        const touchLater = !changed && segs.some((x) => !x.overwrite);
        for (const seg of segs) {
          if (!seg.overwrite) seg.io = endio.begin(ino, seg.lblk, seg.phys, seg.len, { sizeTo: end, waited: true, touch: touchLater });
        }
        if (!touchLater) {
          const st = await state();
          const t = nowTime();
          st.fields.mtime = t;
          st.fields.ctime = t;
          await st.save(vol, h);
        }
        endio.dioBegin(ino);
        counted = true;
      } catch (e) {
        // Extents allocated before the failure (ENOSPC) stay mapped, unwritten: save them.
        if (s) await s.saveQuietly(vol, h);
        throw e;
      } finally {
        await h.stop();
      }
    });
    // Step 2: no lock. Stale cached copies of the targets must not outlive the write.
    const requests: Promise<unknown>[] = [];
    let overwriteError: unknown;
    for (const seg of segs) {
      await vol.cache.invalidateRange(seg.phys, seg.len).catch(() => {});
      const src = data.subarray((seg.lblk - first) * bs, (seg.lblk - first + seg.len) * bs);
      for (let off = 0; off < src.length; off += MAX_BIO) {
        const piece = src.subarray(off, Math.min(src.length, off + MAX_BIO));
        const at = seg.phys * bs + off;
        if (seg.io) requests.push(endio.submit(seg.io, at, piece));
        else requests.push(vol.device.write(at, piece).catch((e) => void (overwriteError ??= e)));
      }
      if (seg.io) endio.put(seg.io);
    }
    await Promise.all(requests);
    for (const seg of segs) if (!seg.io) await vol.cache.invalidateRange(seg.phys, seg.len).catch(() => {});
    endio.dioEnd(ino);
    counted = false;
    // Step 3: conversions. We are past the device callbacks, in our own context, and would
    // only wait for the worker: convert this inode's completed IoEnds ourselves (under
    // metaLock; concurrent writers batch, see EndIo.convertOwn). Failed ones are settled.
    const ios = segs.filter((x) => x.io).map((x) => x.io!);
    await endio.convertOwn(ino, ios);
    const outcomes = await Promise.allSettled(ios.map((x) => x.done));
    const failed = outcomes.find((o) => o.status === "rejected") as PromiseRejectedResult | undefined;
    const err = overwriteError ?? failed?.reason;
    if (err !== undefined) {
      throw err instanceof FsError && err.code === "EIO" ? new FsError("EIO", err.message, { syscall: "write", path }) : new FsError("EIO", `direct write failed: ${err instanceof Error ? err.message : String(err)}`, { syscall: "write", path });
    }
    // An extending write whose tail was an overwrite (no IoEnd carried the size) sets it here.
    const tail = segs[segs.length - 1];
    if (tail && !tail.io && (await vol.inodes.get(ino)).size < end) {
      await vol.metaLock.run(async () => {
        const h = new CacheHandle(vol.cache);
        try {
          const s = await WState.load(vol, ino);
          if (s.fields.size < end) {
            s.fields.size = end;
            await s.save(vol, h);
          }
        } finally {
          await h.stop();
        }
      });
    }
    return data.length;
  } catch (e) {
    // IoEnds begun but never submitted must still be released (no conversion).
    for (const seg of segs) if (seg.io && seg.io.refs > 0 && seg.io.bios === 0) endio.put(seg.io, e ?? new Error("not submitted"));
    if (counted) endio.dioEnd(ino);
    throw e;
  }
}

/**
 * Read whole blocks at byte pos of ino into out (clipped to the file size), bypassing the
 * cache. Caller: FileHandle.read on a direct handle (no lock held). Returns bytes read.
 */
export async function directRead(vol: Volume, ino: number, path: string, out: Uint8Array, bufOffset: number, pos: number): Promise<number> {
  checkAligned(vol, "read", path, bufOffset, out.length, pos);
  if (!vol.readOnly && vol.fileData.hasPending(ino)) {
    await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        const s = await WState.load(vol, ino);
        await vol.fileData.writeback(h, s);
        await s.save(vol, h);
      } finally {
        await h.stop();
      }
    });
  }
  const inode = await vol.inodes.get(ino);
  // One pass per tree-sequence attempt (treeseq.ts): redone if the map changed before its
  // device reads completed. Not counted as the inode's direct I/O: punch and truncate need
  // not wait for readers (a pass that raced them is redone), and a stream of overlapping
  // reads could otherwise keep a writer holding metaLock waiting forever.
  return treeSeqOf(vol).stable(vol, inode, false, (cur) => directReadOnce(vol, cur, out, pos));
}

async function directReadOnce(vol: Volume, inode: Inode, out: Uint8Array, pos: number): Promise<number> {
  const bs = vol.blockSize;
  const stop = Math.min(inode.size, pos + out.length);
  if (stop <= pos) return 0;
  const n = stop - pos;
  const first = pos / bs;
  const last = Math.ceil(stop / bs);
  const reads: Promise<void>[] = [];
  try {
    for (let l = first; l < last; ) {
      const m = await vol.mapper.map(inode, l, last - l);
      const len = Math.min(m.len, last - l);
      const dst = out.subarray((l - first) * bs, Math.min(n, (l - first + len) * bs));
      if (m.phys < 0 || m.unwritten) dst.fill(0);
      else if (dst.length % bs === 0) reads.push(vol.device.read(m.phys * bs, dst));
      else {
        // The file's last block is partial: read it whole, hand over the part inside the file.
        const whole = new Uint8Array(len * bs);
        reads.push(vol.device.read(m.phys * bs, whole).then(() => dst.set(whole.subarray(0, dst.length))));
      }
      l += len;
    }
  } catch (e) {
    // The walk failed: no read of this pass may land in `out` after the pass ends.
    await Promise.allSettled(reads);
    throw e;
  }
  await settleAll(reads);
  return n;
}
