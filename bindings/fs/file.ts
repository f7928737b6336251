/**
 * Reading file data, and the FileHandle of `vol.open()`.
 *
 * I/O shape (the point of this file): a read is cut along the file's block map into runs
 * of consecutive physical blocks. Long runs go to the device as one request each, straight
 * into the caller's buffer — no block-by-block traffic and no copy through the cache, so
 * reading a big file never evicts the metadata that other operations need. Short runs and
 * the partial blocks at either end come through the block cache (small files and
 * directories are served from it), with readahead when a handle reads sequentially.
 * Holes and unwritten extents read as zeros with no device request at all.
 *
 * Handles opened with `{ direct: true }` send reads and writes to direct.ts instead (no
 * cache, block-aligned, writes resolve after their unwritten extents are converted);
 * fallocate lives in fallocate.ts; sync/datasync first wait for this file's io_ends
 * (sched/endio.ts) so that durability covers their conversions.
 *
 * Readers take no lock. Writers may split, merge or free the extent tree, or free and
 * reallocate a data block, while a read is between awaits; so a read is one restartable
 * pass (readOnce) run under the inode's tree sequence (treeseq.ts): if the map changed
 * before the pass — device reads included — finished, the pass is redone from the inode
 * as now saved, and its bytes never reach the caller as an answer.
 *
 * Refused rather than misread: inline-data files longer than the inode's 60-byte block
 * map (their tail lives in an extended attribute), and encrypted files (EOPNOTSUPP).
 */
import { retryAfterReclaim } from "../sched/inodegc.ts";
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import type { Stats } from "./stats.ts";
import { CacheHandle } from "../journal/handle.ts";
import { WState, nowTime, extentsFlag } from "./wstate.ts";
import { directRead, directWrite } from "./direct.ts";
import { fallocate as fallocateInode } from "./fallocate.ts";
import { ExtentTree } from "./extent_tree.ts";
import { endioOf } from "../sched/endio.ts";
import { treeSeqOf, settleAll } from "./treeseq.ts";

/** How a handle was opened (from Node's flag strings or O_* numbers). */
export interface OpenMode {
  read: boolean;
  write: boolean;
  append: boolean;
  create: boolean;
  exclusive: boolean;
  truncate: boolean;
}

const O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0o100, O_EXCL = 0o200, O_TRUNC = 0o1000, O_APPEND = 0o2000;

/** Parse 'r', 'r+', 'w', 'w+', 'wx', 'a', 'a+', 'ax', 'as'… or numeric O_* flags. */
export function parseOpenFlags(flags: string | number, path: string): OpenMode {
  if (typeof flags === "number") {
    const acc = flags & 3;
    return {
      read: acc !== O_WRONLY, write: acc === O_WRONLY || acc === O_RDWR, append: (flags & O_APPEND) !== 0,
      create: (flags & O_CREAT) !== 0, exclusive: (flags & O_EXCL) !== 0, truncate: (flags & O_TRUNC) !== 0,
    };
  }
  const f = /^([rwa])(x?)(\+?)$/.exec(flags.replace(/s/g, ""));
  if (!f) throw new FsError("EINVAL", `unknown open flags '${flags}'`, { syscall: "open", path });
  const [, kind, x, plus] = f;
  return {
    read: kind === "r" || plus === "+",
    write: kind !== "r" || plus === "+",
    append: kind === "a",
    create: kind !== "r",
    exclusive: x === "x",
    truncate: kind === "w",
  };
}

/** Runs at least this long (bytes) bypass the cache. */
const DIRECT_MIN = 64 << 10;
/** At most this many device reads of one request in flight. */
const MAX_PARALLEL = 8;

/**
 * Read bytes [pos, pos+len) of a file (clipped to its size) into a new buffer (or into).
 * readaheadBlocks: extra blocks to pull into the cache past the end (sequential readers).
 * Any caller; one holding metaLock must pass locked = true (treeseq.ts: no waiting then).
 * The result matches one saved state of the file's block map, re-read if it changed.
 */
export function readInodeData(vol: Volume, inode: Inode, pos: number, len: number, into?: Uint8Array, readaheadBlocks = 0, locked = false): Promise<Uint8Array> {
  return treeSeqOf(vol).stable(vol, inode, locked, (cur) => readOnce(vol, cur, pos, len, into, readaheadBlocks));
}

/** One optimistic pass of readInodeData: map, read the device, overlay buffered data. */
async function readOnce(vol: Volume, inode: Inode, pos: number, len: number, into: Uint8Array | undefined, readaheadBlocks: number): Promise<Uint8Array> {
  const size = inode.size;
  const end = Math.min(size, pos + len);
  const n = Math.max(0, end - pos);
  const out = into ? into.subarray(0, n) : new Uint8Array(n);
  if (n === 0) return out;
  if (vol.inodeIsEncrypted(inode)) {
    throw new FsError("EOPNOTSUPP", `inode ${inode.ino} is encrypted; reading encrypted files is not supported`, { syscall: "read" });
  }
  if (vol.inodeHasInlineData(inode)) {
    if (size > 60) throw new FsError("EOPNOTSUPP", `inode ${inode.ino} keeps data inline beyond 60 bytes (inline_data); not supported`, { syscall: "read" });
    out.set(inode.iblock.subarray(pos, end));
    return out;
  }
  const bs = vol.blockSize;
  const firstBlk = Math.floor(pos / bs);
  const lastBlk = Math.floor((end - 1) / bs);
  const tasks: (() => Promise<void>)[] = [];
  let lblk = firstBlk;
  while (lblk <= lastBlk) {
    const m = await vol.mapper.map(inode, lblk, lastBlk - lblk + 1);
    const count = Math.min(m.len, lastBlk - lblk + 1);
    const runStart = lblk * bs;
    const from = Math.max(pos, runStart);
    const to = Math.min(end, (lblk + count) * bs);
    if (m.phys < 0 || m.unwritten) {
      out.fill(0, from - pos, to - pos);
    } else {
      const phys = m.phys;
      const firstFull = from === runStart;
      const lastFull = to === (lblk + count) * bs;
      if (to - from >= DIRECT_MIN) {
        // Whole blocks in the middle go straight to the caller's buffer.
        const headBlocks = firstFull ? 0 : 1;
        const tailBlocks = lastFull || count - headBlocks <= 0 ? 0 : 1;
        const midFirst = headBlocks;
        const midCount = count - headBlocks - tailBlocks;
        if (headBlocks) tasks.push(() => copyBlock(vol, phys, from - runStart, out, from - pos, Math.min(bs - (from - runStart), to - from)));
        if (midCount > 0) {
          const dst = (lblk + midFirst) * bs - pos;
          tasks.push(() => vol.device.read((phys + midFirst) * bs, out.subarray(dst, dst + midCount * bs)));
        }
        if (tailBlocks) {
          const tb = lblk + count - 1;
          const tStart = tb * bs;
          tasks.push(() => copyBlock(vol, phys + count - 1, 0, out, tStart - pos, to - tStart));
        }
      } else {
        const extra = lblk + count > lastBlk ? Math.min(readaheadBlocks, m.len - count) : 0;
        if (count + extra > 1) await vol.cache.readRun(phys, count + extra);
        for (let i = 0; i < count; i++) {
          const bStart = (lblk + i) * bs;
          const f = Math.max(from, bStart);
          const t = Math.min(to, bStart + bs);
          tasks.push(() => copyBlock(vol, phys + i, f - bStart, out, f - pos, t - f));
        }
      }
    }
    lblk += count;
  }
  for (let i = 0; i < tasks.length; i += MAX_PARALLEL) await settleAll(tasks.slice(i, i + MAX_PARALLEL).map((t) => t()));
  // Data written but not yet given blocks (delayed allocation) wins over the disk.
  if (!vol.readOnly) vol.fileData.overlay(inode.ino, pos, out);
  return out;
}

async function copyBlock(vol: Volume, phys: number, offset: number, out: Uint8Array, at: number, len: number): Promise<void> {
  const ref = await vol.cache.get(phys);
  try {
    out.set(vol.engine.u8.subarray(ref.ptr + offset, ref.ptr + offset + len), at);
  } finally {
    vol.cache.release(ref);
  }
}

export interface ReadResult<T extends ArrayBufferView> {
  bytesRead: number;
  buffer: T;
}

/** A file opened with vol.open. */
export class FileHandle {
  private readonly vol: Volume;
  readonly ino: number;
  readonly path: string;
  private readonly mode: OpenMode;
  /** Opened with { direct: true }: reads and writes bypass the caches (direct.ts). */
  readonly direct: boolean;
  private closed = false;
  private position = 0;
  private window = 0;

  constructor(vol: Volume, inode: Inode, path: string, mode: OpenMode = { read: true, write: false, append: false, create: false, exclusive: false, truncate: false }, opts?: { direct?: boolean }) {
    if (opts !== undefined && (opts === null || typeof opts !== "object" || (opts.direct !== undefined && typeof opts.direct !== "boolean"))) {
      throw new FsError("EINVAL", "open options must be { direct?: boolean }", { syscall: "open", path });
    }
    this.vol = vol;
    this.ino = inode.ino;
    this.path = path;
    this.mode = mode;
    this.direct = opts?.direct === true;
    vol.countOpen(this.ino, 1);
  }

  /** True while this handle is open for writing (remount to read-only refuses then). */
  get writable(): boolean {
    return this.mode.write && !this.closed;
  }

  private check(syscall: string): void {
    if (this.closed) throw new FsError("EBADF", "file handle is closed", { syscall, path: this.path });
    this.vol.assertMounted(syscall, this.path);
  }

  /** The inode as it is now (sizes change under writes). */
  private current(): Promise<Inode> {
    return this.vol.inodes.get(this.ino);
  }

  /** node:fs FileHandle.read(buffer, offset, length, position). position null = current. */
  async read<T extends ArrayBufferView>(buffer: T, offset = 0, length?: number, position?: number | null): Promise<ReadResult<T>> {
    this.check("read");
    if (!this.mode.read) throw new FsError("EBADF", "file handle is not open for reading", { syscall: "read", path: this.path });
    if (!ArrayBuffer.isView(buffer)) throw new FsError("EINVAL", "buffer must be a TypedArray or DataView", { syscall: "read", path: this.path });
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const len = length ?? bytes.length - offset;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > bytes.length) throw new FsError("EINVAL", `bad offset ${offset}`, { syscall: "read", path: this.path });
    if (!Number.isSafeInteger(len) || len < 0 || offset + len > bytes.length) throw new FsError("EINVAL", `bad length ${len}`, { syscall: "read", path: this.path });
    const usePos = position === null || position === undefined || position === -1;
    const pos = usePos ? this.position : position;
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError("EINVAL", `bad position ${String(position)}`, { syscall: "read", path: this.path });
    const inode = await this.current();
    if (inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "read", path: this.path });
    if (this.direct) {
      const got = await directRead(this.vol, this.ino, this.path, bytes.subarray(offset, offset + len), offset, pos);
      if (usePos) this.position = pos + got;
      return { bytesRead: got, buffer };
    }
    // Sequential readers get a growing readahead window (32 KiB up to 1 MiB).
    const bs = this.vol.blockSize;
    this.window = pos === this.position ? Math.min(Math.max(this.window * 2, 32 << 10), 1 << 20) : 0;
    const got = await readInodeData(this.vol, inode, pos, len, bytes.subarray(offset, offset + len), Math.floor(this.window / bs));
    if (usePos) this.position = pos + got.length;
    return { bytesRead: got.length, buffer };
  }

  /** node:fs FileHandle.write(buffer, offset, length, position); strings as (string, position). */
  async write<T extends ArrayBufferView>(buffer: T | string, offset?: number | null, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: T | string }> {
    this.check("write");
    if (!this.mode.write) throw new FsError("EBADF", "file handle is not open for writing", { syscall: "write", path: this.path });
    let data: Uint8Array;
    let bufOffset = 0;
    let pos: number | null | undefined;
    if (typeof buffer === "string") {
      data = new TextEncoder().encode(buffer);
      pos = offset;
    } else {
      if (!ArrayBuffer.isView(buffer)) throw new FsError("EINVAL", "buffer must be a TypedArray, DataView or string", { syscall: "write", path: this.path });
      const all = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      const off = offset ?? 0;
      const len = length ?? all.length - off;
      if (!Number.isSafeInteger(off) || off < 0 || !Number.isSafeInteger(len) || len < 0 || off + len > all.length) {
        throw new FsError("EINVAL", `bad offset/length ${off}/${len}`, { syscall: "write", path: this.path });
      }
      data = all.subarray(off, off + len);
      bufOffset = off;
      pos = position;
    }
    const usePos = pos === null || pos === undefined || pos === -1;
    if (!usePos && (!Number.isSafeInteger(pos) || (pos as number) < 0)) throw new FsError("EINVAL", `bad position ${String(pos)}`, { syscall: "write", path: this.path });
    const vol = this.vol;
    if (vol.readOnly) throw new FsError("EROFS", "read-only volume", { syscall: "write", path: this.path });
    // A zero-length write changes nothing, not even the times (as on Linux).
    if (data.length === 0) return { bytesWritten: 0, buffer };
    if (this.direct && typeof buffer !== "string") {
      const at = this.mode.append ? (await this.current()).size : usePos ? this.position : (pos as number);
      await directWrite(vol, this.ino, this.path, data, bufOffset, at);
      if (usePos || this.mode.append) this.position = at + data.length;
      return { bytesWritten: data.length, buffer };
    }
    let at = 0;
    // ENOSPC from buffer() (no space to promise the new blocks) leaves everything as it
    // was, so after inodegc has freed what it holds the write can simply be tried again.
    await retryAfterReclaim(vol, () =>
      vol.metaLock.run(async () => {
        const s = await WState.load(vol, this.ino);
        at = this.mode.append ? s.fields.size : usePos ? this.position : (pos as number);
        if (at + data.length > 16 * 2 ** 40) throw new FsError("EFBIG", "file too large", { syscall: "write", path: this.path });
        await vol.fileData.buffer(s, at, data, this.path);
        const t = nowTime();
        s.fields.mtime = t;
        s.fields.ctime = t;
        const h = new CacheHandle(vol.cache);
        try {
          await s.save(vol, h);
        } finally {
          await h.stop();
        }
      }),
    );
    await vol.metaLock.run(() => vol.maybeWriteback());
    if (usePos || this.mode.append) this.position = at + data.length;
    return { bytesWritten: data.length, buffer };
  }

  async readFile(options?: { encoding?: string | null } | string | null): Promise<Uint8Array | string> {
    this.check("read");
    const inode = await this.current();
    const data = await readInodeData(this.vol, inode, 0, inode.size);
    const enc = typeof options === "string" ? options : options?.encoding;
    return enc ? new TextDecoder(enc === "utf8" ? "utf-8" : enc).decode(data) : data;
  }

  async writeFile(data: Uint8Array | string): Promise<void> {
    this.check("write");
    await this.truncate(0);
    this.position = 0;
    await this.write(typeof data === "string" ? new TextEncoder().encode(data) : data, 0, undefined, 0);
  }

  async truncate(len = 0): Promise<void> {
    this.check("ftruncate");
    if (!this.mode.write) throw new FsError("EINVAL", "file handle is not open for writing", { syscall: "ftruncate", path: this.path });
    if (!Number.isSafeInteger(len) || len < 0) throw new FsError("EINVAL", `bad length ${len}`, { syscall: "ftruncate", path: this.path });
    const vol = this.vol;
    await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        const s = await WState.load(vol, this.ino);
        await vol.fileData.writeback(h, s);
        // No request in flight may target blocks the truncate frees (see fallocate.ts).
        const endio = endioOf(vol);
        await endio.waitInode(this.ino, true);
        if ((s.fields.flags & extentsFlag(vol)) !== 0) await endio.convertInode(h, s, vol.writeParts.tree(s));
        await vol.fileData.truncate(h, s, len);
        const t = nowTime();
        s.fields.mtime = t;
        s.fields.ctime = t;
        await s.save(vol, h);
      } finally {
        await h.stop();
      }
    });
  }

  async stat(): Promise<Stats> {
    this.check("fstat");
    return this.vol.statOf(await this.current());
  }

  /**
   * The file's extents, like FIEMAP but in filesystem blocks (not bytes):
   * [{ logical, physical, length, unwritten }], one entry per on-disk extent, including
   * preallocated (KEEP_SIZE) extents past the end of the file. Buffered data not yet
   * written back has no extent yet. ext2/ext3 block-mapped files: runs of the block map.
   */
  async extents(): Promise<{ logical: number; physical: number; length: number; unwritten: boolean }[]> {
    this.check("fiemap");
    // A walk over every leaf: redone if a writer changes the tree meanwhile (treeseq.ts).
    return treeSeqOf(this.vol).stable(this.vol, await this.current(), false, (inode) => this.extentsOf(inode));
  }

  private async extentsOf(inode: Inode): Promise<{ logical: number; physical: number; length: number; unwritten: boolean }[]> {
    const out: { logical: number; physical: number; length: number; unwritten: boolean }[] = [];
    if ((inode.flags & extentsFlag(this.vol)) !== 0) {
      const tree = new ExtentTree(this.vol, {
        ino: inode.ino, generation: inode.generation, iblock: inode.iblock.slice(),
        goal: () => 0, addBlocks: () => {}, markDirty: () => {},
      });
      for (const e of await tree.extents()) out.push({ logical: e.lblk, physical: e.phys, length: e.len, unwritten: e.unwritten });
      return out;
    }
    const bs = this.vol.blockSize;
    const blocks = Math.ceil(inode.size / bs);
    for (let l = 0; l < blocks; ) {
      const m = await this.vol.mapper.map(inode, l, blocks - l);
      const len = Math.min(m.len, blocks - l);
      if (m.phys >= 0) {
        const prev = out[out.length - 1];
        if (prev && prev.logical + prev.length === l && prev.physical + prev.length === m.phys && prev.unwritten === m.unwritten) prev.length += len;
        else out.push({ logical: l, physical: m.phys, length: len, unwritten: m.unwritten });
      }
      l += len;
    }
    return out;
  }

  /**
   * fallocate(2): mode 0 (allocate, grow size), FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE |
   * FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE (± KEEP_SIZE). See fallocate.ts.
   */
  async fallocate(offset: number, len: number, mode = 0): Promise<void> {
    this.check("fallocate");
    if (!this.mode.write) throw new FsError("EBADF", "file handle is not open for writing", { syscall: "fallocate", path: this.path });
    if (this.vol.readOnly) throw new FsError("EROFS", "read-only volume", { syscall: "fallocate", path: this.path });
    await fallocateInode(this.vol, this.ino, this.path, offset, len, mode);
  }

  /** Write back this file's data and make it (and all metadata) durable. */
  async sync(): Promise<void> {
    this.check("fsync");
    await this.durable("fsync");
  }

  /** fdatasync(2): as sync() (metadata is written with the data either way). */
  async datasync(): Promise<void> {
    this.check("fdatasync");
    await this.durable("fdatasync");
  }

  /**
   * Wait for this file's direct I/O and IoEnds (their conversions included), write
   * everything back, flush the device; then report a write-back error of this file
   * (EIO) that no one has heard of yet.
   */
  private async durable(syscall: string): Promise<void> {
    if (!this.mode.write || this.vol.readOnly) return;
    const endio = endioOf(this.vol);
    await endio.waitInode(this.ino);
    await this.vol.sync();
    const err = endio.takeError(this.ino);
    if (err !== undefined) throw new FsError("EIO", err instanceof Error ? err.message : String(err), { syscall, path: this.path });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.vol.forgetHandle(this);
    const left = this.vol.countOpen(this.ino, -1);
    if (left === 0 || this.mode.write) await this.vol.lastClose(this.ino);
  }
}
