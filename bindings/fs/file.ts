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
 * Refused rather than misread: inline-data files longer than the inode's 60-byte block
 * map (their tail lives in an extended attribute), and encrypted files (EOPNOTSUPP).
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import type { Stats } from "./stats.ts";

/** Runs at least this long (bytes) bypass the cache. */
const DIRECT_MIN = 64 << 10;
/** At most this many device reads of one request in flight. */
const MAX_PARALLEL = 8;

/**
 * Read bytes [pos, pos+len) of a file (clipped to its size) into a new buffer.
 * readaheadBlocks: extra blocks to pull into the cache past the end (sequential readers).
 */
export async function readInodeData(vol: Volume, inode: Inode, pos: number, len: number, into?: Uint8Array, readaheadBlocks = 0): Promise<Uint8Array> {
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
  for (let i = 0; i < tasks.length; i += MAX_PARALLEL) await Promise.all(tasks.slice(i, i + MAX_PARALLEL).map((t) => t()));
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

/** A file opened with vol.open (read-only for now). */
export class FileHandle {
  private readonly vol: Volume;
  private readonly inode: Inode;
  readonly path: string;
  private closed = false;
  private position = 0;
  private window = 0;

  constructor(vol: Volume, inode: Inode, path: string) {
    this.vol = vol;
    this.inode = inode;
    this.path = path;
  }

  private check(syscall: string): void {
    if (this.closed) throw new FsError("EBADF", "file handle is closed", { syscall, path: this.path });
    this.vol.assertMounted(syscall, this.path);
  }

  /** node:fs FileHandle.read(buffer, offset, length, position). position null = current. */
  async read<T extends ArrayBufferView>(buffer: T, offset = 0, length?: number, position?: number | null): Promise<ReadResult<T>> {
    this.check("read");
    if (!ArrayBuffer.isView(buffer)) throw new FsError("EINVAL", "buffer must be a TypedArray or DataView", { syscall: "read", path: this.path });
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const len = length ?? bytes.length - offset;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > bytes.length) throw new FsError("EINVAL", `bad offset ${offset}`, { syscall: "read", path: this.path });
    if (!Number.isSafeInteger(len) || len < 0 || offset + len > bytes.length) throw new FsError("EINVAL", `bad length ${len}`, { syscall: "read", path: this.path });
    const usePos = position === null || position === undefined || position === -1;
    const pos = usePos ? this.position : position;
    if (!Number.isSafeInteger(pos) || pos < 0) throw new FsError("EINVAL", `bad position ${String(position)}`, { syscall: "read", path: this.path });
    if (this.inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "read", path: this.path });
    // Sequential readers get a growing readahead window (32 KiB up to 1 MiB).
    const bs = this.vol.blockSize;
    this.window = pos === this.position ? Math.min(Math.max(this.window * 2, 32 << 10), 1 << 20) : 0;
    const got = await readInodeData(this.vol, this.inode, pos, len, bytes.subarray(offset, offset + len), Math.floor(this.window / bs));
    if (usePos || pos === this.position) this.position = pos + got.length;
    return { bytesRead: got.length, buffer };
  }

  async readFile(options?: { encoding?: string | null } | string | null): Promise<Uint8Array | string> {
    this.check("read");
    const data = await readInodeData(this.vol, this.inode, 0, this.inode.size);
    const enc = typeof options === "string" ? options : options?.encoding;
    return enc ? new TextDecoder(enc === "utf8" ? "utf-8" : enc).decode(data) : data;
  }

  async stat(): Promise<Stats> {
    this.check("fstat");
    return this.vol.statOf(this.inode);
  }

  /** The file's mapping, like FIEMAP: [{ logical, physical, length, unwritten }] in blocks. */
  async extents(): Promise<{ logical: number; physical: number; length: number; unwritten: boolean }[]> {
    this.check("fiemap");
    const bs = this.vol.blockSize;
    const blocks = Math.ceil(this.inode.size / bs);
    const out: { logical: number; physical: number; length: number; unwritten: boolean }[] = [];
    for (let l = 0; l < blocks; ) {
      const m = await this.vol.mapper.map(this.inode, l, blocks - l);
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

  async write(): Promise<never> {
    this.check("write");
    throw new FsError("EBADF", "file handle is not open for writing", { syscall: "write", path: this.path });
  }

  async sync(): Promise<void> { this.check("fsync"); }
  async datasync(): Promise<void> { this.check("fdatasync"); }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.vol.forgetHandle(this);
  }
}
