/**
 * File data on the write side: whole-file writes, buffered writes with delayed
 * allocation, write-back, truncate, and the read overlay of not-yet-written data.
 *
 * Delayed allocation: FileHandle writes land in per-inode block buffers (JS memory,
 * counted against a budget) and get disk blocks only at write-back (close, fsync, sync,
 * unmount, or when the budget is exceeded). By then the allocator sees the whole run of
 * dirty blocks and can place it contiguously, so a file written in 4 KiB pieces still ends
 * up in one or a few extents. writeFile knows the whole content up front and allocates at
 * once, writing straight from the caller's buffer.
 *
 * Ordering (no journal yet, "ordered" semantics): data blocks are written to the device
 * before the extent that makes them reachable is inserted, and both before the inode that
 * records the new size is saved — a crash can lose the newest data, never expose stale
 * blocks. Data goes to the device directly (one request per physical run), so any cached
 * copy of those blocks is invalidated first.
 *
 * With dioreadNolock (the default) write-back goes through IoEnds instead (endio.ts): a
 * run needing blocks is allocated and mapped *unwritten* first, its data is submitted,
 * data for fallocated (unwritten) blocks goes into those blocks, and the extents are
 * converted to written after the device completed them — in this same transaction, since
 * write-back holds metaLock (see writebackNolock).
 *
 * The last block of a file is always written whole, zero-padded, so growing the file
 * later (truncate up) reads zeros past the old end rather than stale bytes.
 *
 * Space for buffered data is reserved when it is buffered (resv.ts): `buffer` first
 * reserves the worst case the new blocks can need and fails with ENOSPC before touching
 * anything when the volume cannot promise it; `writeback` allocates from that
 * reservation and returns the rest; `discard` gives back the share of what it drops. So
 * a write that returned never loses its data to ENOSPC at close, fsync or sync.
 *
 * Every change of a file's block map goes through this file (writeNew, write-back,
 * truncate) or frees the inode (unlink), which is what lets `holes` remember a hole
 * between buffered writes; code that changes a file's extent tree elsewhere (fallocate,
 * direct I/O) calls forgetHoles. A stale hole would only over-reserve, never under.
 */
import { extentsFlag } from "./wstate.ts";
import { FsError } from "./errors.ts";
import type { Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import type { WState } from "./wstate.ts";
import { endioOf, type IoEnd } from "../sched/endio.ts";
import { treeShape, type NewRun, type Reservations } from "./resv.ts";

export interface DataParts {
  allocBlocks(h: Handle, goal: number, want: number, minLen?: number): Promise<{ start: number; len: number }>;
  insertExtent(h: Handle, s: WState, lblk: number, phys: number, len: number, unwritten: boolean): Promise<void>;
  /** Free mapped blocks in [fromLblk, toLblk) (extent remove); counts i_blocks down. */
  removeBlocks(h: Handle, s: WState, fromLblk: number, toLblk: number): Promise<void>;
  /** Allocation goal for s's next data block after lblk. */
  goal(s: WState, lblk: number): Promise<number>;
  freeBlocks(h: Handle, start: number, len: number): Promise<void>;
  /** The extent tree of s (conversions at write-back completion). */
  tree(s: WState): import("./extent_tree.ts").ExtentTree;
}

/** Largest single device write of data (bytes). */
const MAX_IO = 8 << 20;

export class FileData {
  private readonly vol: Volume;
  private readonly parts: DataParts;
  /** ino → (lblk → block buffer) of data not yet on disk. */
  private readonly pending = new Map<number, Map<number, Uint8Array>>();
  private pendingBytes = 0;
  /**
   * ino → one hole [from, to) of its block map, remembered between buffered writes so a
   * file appended in small pieces is not looked up in its extent tree on every write.
   * Valid only while nothing changes the tree: dropped by writeNew, writeback, discard.
   */
  private readonly holes = new Map<number, { from: number; to: number }>();
  /** Write back once this many bytes are buffered. */
  readonly budget: number;

  constructor(vol: Volume, parts: DataParts, budget: number) {
    this.vol = vol;
    this.parts = parts;
    this.budget = budget;
  }

  // The volume's reservations live with its block allocator, which must respect them.
  private get resv(): Reservations {
    return this.vol.writeParts.alloc.resv;
  }

  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  hasPending(ino: number): boolean {
    return (this.pending.get(ino)?.size ?? 0) > 0;
  }

  inodesWithPending(): number[] {
    return [...this.pending.keys()].filter((i) => this.hasPending(i));
  }

  /** Write `data` at physical blocks [start, start+n) straight from memory. */
  private async deviceWrite(start: number, data: Uint8Array): Promise<void> {
    const bs = this.vol.blockSize;
    // A lock-free reader (file.ts) may hold one of them for a moment: wait it out.
    await this.vol.cache.invalidateRange(start, data.length / bs, true);
    for (let off = 0; off < data.length; off += MAX_IO) {
      const part = data.subarray(off, Math.min(data.length, off + MAX_IO));
      await this.vol.device.write(start * bs + off, part);
    }
  }

  /**
   * Allocate and write `data` as blocks [lblk, lblk + ceil(len/bs)) of s, which must be
   * unmapped there. The last partial block is zero-padded.
   */
  async writeNew(h: Handle, s: WState, lblk: number, data: Uint8Array, growSize = false): Promise<void> {
    this.holes.delete(s.ino);
    const bs = this.vol.blockSize;
    const blocks = Math.ceil(data.length / bs);
    let done = 0;
    let goal = await this.parts.goal(s, lblk);
    while (done < blocks) {
      const { start, len } = await this.parts.allocBlocks(h, goal, blocks - done, 1);
      const from = done * bs;
      const to = Math.min(data.length, (done + len) * bs);
      let chunk = data.subarray(from, to);
      if (chunk.length !== len * bs) {
        const padded = new Uint8Array(len * bs);
        padded.set(chunk);
        chunk = padded;
      }
      await this.deviceWrite(start, chunk);
      try {
        await this.parts.insertExtent(h, s, lblk + done, start, len, false);
      } catch (e) {
        await this.parts.freeBlocks(h, start, len).catch(() => {});
        throw e;
      }
      s.fields.blocks512 += (len * bs) / 512;
      done += len;
      goal = start + len;
      // growSize (whole-file writes): the size covers what is mapped so far, so a later
      // failure leaves a shorter file, never an unmapped tail.
      if (growSize) s.fields.size = Math.max(s.fields.size, Math.min(lblk * bs + data.length, (lblk + done) * bs));
    }
  }

  /**
   * Buffer a write of `data` at byte `pos` of s (delayed allocation); updates the size.
   * Caller holds metaLock. Throws ENOSPC, having buffered and changed nothing, when the
   * space the new blocks may need cannot be reserved.
   */
  async buffer(s: WState, pos: number, data: Uint8Array, path?: string): Promise<void> {
    const bs = this.vol.blockSize;
    const end = pos + data.length;
    if (end > pos) await this.reserve(s, Math.floor(pos / bs), Math.ceil(end / bs), path);
    let map = this.pending.get(s.ino);
    if (!map) this.pending.set(s.ino, (map = new Map()));
    // The whole blocks a large write covers get their buffers as views into ONE array:
    // one allocation instead of one per block, and write-back sends the run as it is
    // (concat below) instead of copying it together again.
    const fullFirst = Math.ceil(pos / bs);
    const fullEnd = Math.floor(end / bs);
    const span = fullEnd - fullFirst >= 2 ? new Uint8Array((fullEnd - fullFirst) * bs) : undefined;
    for (let b = Math.floor(pos / bs); b * bs < end; b++) {
      let buf = map.get(b);
      const bStart = b * bs;
      const from = Math.max(pos, bStart);
      const to = Math.min(end, bStart + bs);
      if (!buf && span && b >= fullFirst && b < fullEnd) {
        buf = span.subarray((b - fullFirst) * bs, (b - fullFirst + 1) * bs);
        map.set(b, buf);
        this.pendingBytes += bs;
      } else if (!buf) {
        buf = new Uint8Array(bs);
        // A partial write into an existing block keeps the rest of its bytes.
        if ((from > bStart || to < bStart + bs) && bStart < s.fields.size) {
          const m = await this.vol.mapper.map(s.asInode(), b, 1);
          if (m.phys >= 0 && !m.unwritten) await this.vol.device.read(m.phys * bs, buf);
        }
        map.set(b, buf);
        this.pendingBytes += bs;
      }
      buf.set(data.subarray(from - pos, to - pos), from - bStart);
    }
    if (end > s.fields.size) s.fields.size = end;
  }

  /**
   * Reserve space for the blocks in [first, end) of s that are not buffered yet and have
   * no written block under them (holes, unwritten extents). ENOSPC when it cannot.
   */
  private async reserve(s: WState, first: number, end: number, path?: string): Promise<void> {
    const map = this.pending.get(s.ino);
    const runs: NewRun[] = [];
    for (let b = first; b < end; ) {
      const hole = this.holes.get(s.ino);
      let m: { phys: number; len: number; unwritten: boolean };
      if (hole && b >= hole.from && b < hole.to) m = { phys: -1, len: hole.to - b, unwritten: false };
      else {
        m = await this.vol.mapper.map(s.asInode(), b, end - b);
        if (m.phys < 0 && !m.unwritten) this.holes.set(s.ino, { from: b, to: b + Math.max(1, m.len) });
      }
      const len = Math.max(1, Math.min(m.len, end - b));
      if (m.phys < 0 || m.unwritten) {
        for (let k = b; k < b + len; k++) {
          if (map?.has(k)) continue;
          const last = runs[runs.length - 1];
          if (last && last.start + last.len === k && last.unwritten === m.unwritten) last.len++;
          else runs.push({ start: k, len: 1, unwritten: m.unwritten });
        }
      }
      b += len;
    }
    this.resv.reserve(s.ino, runs, treeShape(s.iblock), path);
  }

  /** Copy buffered blocks of ino over the bytes [pos, pos+out.length) just read. */
  overlay(ino: number, pos: number, out: Uint8Array): void {
    const map = this.pending.get(ino);
    if (!map || map.size === 0) return;
    const bs = this.vol.blockSize;
    const end = pos + out.length;
    for (let b = Math.floor(pos / bs); b * bs < end; b++) {
      const buf = map.get(b);
      if (!buf) continue;
      const bStart = b * bs;
      const from = Math.max(pos, bStart);
      const to = Math.min(end, bStart + bs);
      out.set(buf.subarray(from - bStart, to - bStart), from - pos);
    }
  }

  /** Give the buffered blocks of s disk space and write them; s must then be saved. */
  async writeback(h: Handle, s: WState): Promise<void> {
    this.holes.delete(s.ino);
    const map = this.pending.get(s.ino);
    if (!map || map.size === 0) return this.resv.settle(s.ino);
    const bs = this.vol.blockSize;
    const lblks = [...map.keys()].sort((a, b) => a - b);
    const endio = this.vol.background.get<ReturnType<typeof endioOf>>("endio");
    const nolock = endio?.dioreadNolock && (s.fields.flags & extentsFlag(this.vol)) !== 0
      ? { ios: [] as IoEnd[], requests: [] as Promise<void>[] }
      : undefined;
    // Blocks past EOF (a truncate raced a buffered write) are dropped.
    const lastValid = Math.ceil(s.fields.size / bs);
    this.resv.beginDraw(s.ino);
    try {
      await this.writeRuns(h, s, map, lblks, lastValid, nolock);
      // Converting may split extents: its tree blocks come from the same reservation.
      if (nolock) await this.completeNolock(h, s, nolock);
    } finally {
      this.resv.endDraw();
    }
    for (const buf of map.values()) this.pendingBytes -= buf.length;
    this.pending.delete(s.ino);
    this.resv.settle(s.ino);
  }

  // Write back the buffered blocks lblks (sorted) below lastValid: overwrite in place
  // where a written block is mapped, allocate (from the reservation) everywhere else.
  private async writeRuns(
    h: Handle,
    s: WState,
    map: Map<number, Uint8Array>,
    lblks: number[],
    lastValid: number,
    nolock: { ios: IoEnd[]; requests: Promise<void>[] } | undefined,
  ): Promise<void> {
    const bs = this.vol.blockSize;
    let i = 0;
    while (i < lblks.length) {
      const first = lblks[i]!;
      if (first >= lastValid) break;
      let n = 1;
      while (i + n < lblks.length && lblks[i + n] === first + n && first + n < lastValid) n++;
      // Split the run where the existing mapping changes.
      let l = first;
      while (l < first + n) {
        const m = await this.vol.mapper.map(s.asInode(), l, first + n - l);
        // Whole runs, even when that means copying several writes' buffers together:
        // allocating per buffered write would cost contiguity (more extents).
        const len = Math.min(m.len, first + n - l);
        const data = concat(map, l, len, bs);
        if (m.phys >= 0 && !m.unwritten) {
          await this.deviceWrite(m.phys, data);
        } else if (nolock) {
          await this.submitUnwritten(h, s, l, data, m.phys >= 0 ? m.phys : -1, nolock);
        } else {
          if (m.unwritten) await this.parts.removeBlocks(h, s, l, l + len);
          await this.writeNew(h, s, l, data);
        }
        l += len;
      }
      i += n;
    }
  }

  /**
   * dioreadNolock write-back of one run into a hole (phys -1: allocate, map unwritten) or
   * into unwritten blocks at phys: one IoEnd per extent, its data submitted, not awaited.
   */
  private async submitUnwritten(h: Handle, s: WState, lblk: number, data: Uint8Array, phys: number, st: { ios: IoEnd[]; requests: Promise<void>[] }): Promise<void> {
    const bs = this.vol.blockSize;
    const endio = endioOf(this.vol);
    const blocks = Math.ceil(data.length / bs);
    const pieces: { lblk: number; phys: number; len: number }[] = [];
    if (phys >= 0) pieces.push({ lblk, phys, len: blocks });
    else {
      let done = 0;
      let goal = await this.parts.goal(s, lblk);
      while (done < blocks) {
        const { start, len } = await this.parts.allocBlocks(h, goal, Math.min(32767, blocks - done), 1);
        try {
          await this.parts.insertExtent(h, s, lblk + done, start, len, true);
        } catch (e) {
          await this.parts.freeBlocks(h, start, len).catch(() => {});
          throw e;
        }
        s.fields.blocks512 += (len * bs) / 512;
        pieces.push({ lblk: lblk + done, phys: start, len });
        done += len;
        goal = start + len;
      }
    }
    for (const p of pieces) {
      const io = endio.begin(s.ino, p.lblk, p.phys, p.len);
      st.ios.push(io);
      for (let b = 0; b < p.len; b++) await this.vol.cache.invalidate(p.phys + b).catch(() => false);
      const from = (p.lblk - lblk) * bs;
      let chunk = data.subarray(from, Math.min(data.length, from + p.len * bs));
      if (chunk.length !== p.len * bs) {
        const padded = new Uint8Array(p.len * bs);
        padded.set(chunk);
        chunk = padded;
      }
      for (let off = 0; off < chunk.length; off += MAX_IO) {
        st.requests.push(endio.submit(io, p.phys * bs + off, chunk.subarray(off, Math.min(chunk.length, off + MAX_IO))));
      }
      endio.put(io);
    }
  }

  /**
   * Wait for the device to complete this write-back's requests, then convert their
   * extents in h (the caller holds metaLock, so the worker could not). A failed request
   * leaves its range unwritten and fails the write-back with EIO.
   */
  private async completeNolock(h: Handle, s: WState, st: { ios: IoEnd[]; requests: Promise<void>[] }): Promise<void> {
    if (st.ios.length === 0) return;
    const endio = endioOf(this.vol);
    await Promise.all(st.requests);
    await endio.convertInode(h, s, this.parts.tree(s));
    const failed = (await Promise.allSettled(st.ios.map((io) => io.done))).find((o) => o.status === "rejected") as PromiseRejectedResult | undefined;
    if (failed) {
      // Reported here; fsync must not report the same failure a second time.
      endio.takeError(s.ino);
      throw failed.reason;
    }
  }

  /**
   * The end of the data actually on disk between from and to: the end of the last mapped
   * block in that byte range (clipped to it), or `from` when none is mapped.
   */
  async mappedEnd(s: WState, from: number, to: number): Promise<number> {
    const bs = this.vol.blockSize;
    let end = from;
    for (let b = Math.floor(from / bs); b * bs < to; ) {
      const m = await this.vol.mapper.map(s.asInode(), b, Math.ceil(to / bs) - b);
      const len = Math.max(1, m.len);
      if (m.phys >= 0) end = Math.min(to, (b + len) * bs);
      b += len;
    }
    return Math.max(from, end);
  }

  /**
   * writeback that does not throw: on failure (ENOSPC) the data that found no blocks is
   * dropped — it reads as a hole, never as stale bytes — and the error is returned. s then
   * describes exactly what landed and must still be saved.
   */
  async writebackOrDrop(h: Handle, s: WState): Promise<unknown> {
    try {
      await this.writeback(h, s);
      return undefined;
    } catch (e) {
      this.discard(s.ino);
      return e ?? new FsError("EIO", "write-back failed", { syscall: "write" });
    }
  }

  /** The extent tree of ino changed outside this file (fallocate, direct I/O): drop its remembered hole. */
  forgetHoles(ino: number): void {
    this.holes.delete(ino);
  }

  /** Forget buffered data of ino at and past lblk (truncate), returning its reserved space. */
  discard(ino: number, fromLblk = 0): void {
    this.holes.delete(ino);
    this.resv.release(ino, fromLblk);
    const map = this.pending.get(ino);
    if (!map) return;
    for (const [b, buf] of map) {
      if (b >= fromLblk) {
        map.delete(b);
        this.pendingBytes -= buf.length;
      }
    }
    if (map.size === 0) this.pending.delete(ino);
  }

  /** Set s's size: free blocks past a smaller size (zeroing the tail of the last one). */
  async truncate(h: Handle, s: WState, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError("EINVAL", `bad length ${size}`, { syscall: "truncate" });
    const bs = this.vol.blockSize;
    const old = s.fields.size;
    if (size < old) {
      const keep = Math.ceil(size / bs);
      this.discard(s.ino, keep);
      await this.parts.removeBlocks(h, s, keep, 2 ** 32);
      const tail = size % bs;
      if (tail !== 0) {
        // Zero the end of the new last block so a later extension reads zeros.
        const b = keep - 1;
        const buf = this.pending.get(s.ino)?.get(b);
        if (buf) buf.fill(0, tail);
        else {
          const m = await this.vol.mapper.map(s.asInode(), b, 1);
          if (m.phys >= 0 && !m.unwritten) {
            const block = new Uint8Array(bs);
            await this.vol.device.read(m.phys * bs, block);
            block.fill(0, tail);
            await this.deviceWrite(m.phys, block);
          }
        }
      }
    }
    s.fields.size = size;
  }
}

/** How many blocks from `first` (at most max) are consecutive views of one array. */
function sharedRun(map: Map<number, Uint8Array>, first: number, max: number, bs: number): number {
  const head = map.get(first)!;
  let k = 1;
  while (k < max) {
    const b = map.get(first + k)!;
    if (b.buffer !== head.buffer || b.byteOffset !== head.byteOffset + k * bs) break;
    k++;
  }
  return k;
}

function concat(map: Map<number, Uint8Array>, first: number, n: number, bs: number): Uint8Array {
  const head = map.get(first)!;
  if (n === 1) return head;
  // Blocks that one write buffered side by side (see buffer) go out as one view, uncopied.
  if (sharedRun(map, first, n, bs) === n) return new Uint8Array(head.buffer, head.byteOffset, n * bs);
  const out = new Uint8Array(n * bs);
  for (let k = 0; k < n; k++) out.set(map.get(first + k)!, k * bs);
  return out;
}
