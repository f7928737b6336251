/**
 * FileDevice: a BlockDevice over a host file or block device, for Node.
 *
 * Why positional I/O on one FileHandle: the engine keeps many requests in flight and lets
 * them complete in any order, which is exactly what pread/pwrite give (no shared file
 * position to race on). Each request loops until its whole range is done, because the OS
 * may return short counts; a read that hits end-of-file fills the rest with zeros, since
 * the device's size can exceed the file's when the file was opened read-only with a
 * larger `size`.
 *
 * Views passed in are usually views of Wasm memory: they are handed to the syscall and
 * forgotten when the promise settles; nothing here keeps a reference.
 *
 * Why zeroout reads before it writes: Node cannot punch holes (no fallocate), and writing
 * zeros over a hole would allocate real disk blocks for an image that is meant to stay
 * sparse (mkfs zeroes journals and inode tables of freshly created, all-hole files). So
 * each 1 MiB piece is read first and only written, from one shared zero buffer, if it
 * holds a non-zero byte. Truncating and re-extending the file when the range reaches its
 * end would punch for real, but a crash between the two truncates leaves a shorter file,
 * and a later open without `size` would then see a smaller device; not worth it.
 * `discard` is a hint and is a no-op here.
 *
 * Errors: OS errors become FsError with the same code and the path (unknown codes: EIO);
 * requests after close() reject with EBADF, writes on a read-only device with EROFS, bad
 * ranges with EINVAL.
 */
import { open as openFile, type FileHandle } from "node:fs/promises";
import { constants } from "node:fs";
import { ERRNO, FsError, type ErrorCode } from "../fs/errors.ts";
import { checkRange } from "./range.ts";
import type { BlockDevice } from "./types.ts";
import { countRequest, emptyStats, isAllZero, type DeviceStats } from "./memory.ts";

export interface FileDeviceOptions {
  /**
   * Device size in bytes. A regular file opened writable is truncated or extended (sparse)
   * to it; opened read-only it only sets the visible size (bytes past the file's end read
   * as zeros). For a block device it must not exceed the device's capacity.
   * Without it: the file's size, or the block device's capacity.
   */
  size?: number;
  /** Create the file if it does not exist (never truncates unless `size` says so). */
  create?: boolean;
  /** Open read-only; writes, zeroout and discard reject with EROFS. */
  readOnly?: boolean;
}

/** Largest single pread/pwrite: Node refuses lengths over 2 GiB - 1. */
const MAX_IO = 1 << 30;
/** Zeroout works in pieces of this size, from one shared buffer of zeros. */
const ZERO_PIECE = 1 << 20;
let zeros: Uint8Array | null = null;

/** Turn whatever the OS threw into an FsError with the same code (EIO if we have no such code). */
function osError(e: unknown, syscall: string, path: string): FsError {
  if (e instanceof FsError) return e;
  const err = e as { code?: unknown; message?: unknown; syscall?: unknown } | null;
  const raw = typeof err?.code === "string" ? err.code : "";
  const code: ErrorCode = Object.prototype.hasOwnProperty.call(ERRNO, raw) ? (raw as ErrorCode) : "EIO";
  // Node's message repeats code, syscall and path, which FsError adds again; keep the middle.
  const text = typeof err?.message === "string" ? err.message : String(e);
  const why = text.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  return new FsError(code, raw && raw !== code ? `${why} (${raw})` : why, {
    syscall: typeof err?.syscall === "string" ? err.syscall : syscall,
    path,
    cause: e,
  });
}

/** Capacity of an open block device: stat reports 0, so find the last readable byte. */
async function probeSize(fh: FileHandle): Promise<number> {
  const one = new Uint8Array(1);
  const readable = async (n: number): Promise<boolean> =>
    n === 0 || (await fh.read(one, 0, 1, n - 1)).bytesRead === 1;
  // Grow an upper bound by doubling, then bisect on "byte n-1 exists".
  let lo = 0;
  let hi = 1 << 20;
  while (await readable(hi)) {
    lo = hi;
    if (hi * 2 > Number.MAX_SAFE_INTEGER) return hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export class FileDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize = 512;
  /** The path this device was opened with. */
  readonly path: string;
  readonly readOnly: boolean;
  /** True when the path is a block device rather than a regular file. */
  readonly isBlockDevice: boolean;
  #fh: FileHandle | null;
  #stats = emptyStats();

  private constructor(fh: FileHandle, path: string, size: number, readOnly: boolean, isBlockDevice: boolean) {
    this.#fh = fh;
    this.path = path;
    this.size = size;
    this.readOnly = readOnly;
    this.isBlockDevice = isBlockDevice;
  }

  /** Open (or create) `path` as a device; OS errors reject as FsError with the OS code. */
  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const { size, create = false, readOnly = false } = options;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new FsError("EINVAL", `bad device size ${size}`, { syscall: "open", path });
    }
    if (create && readOnly) {
      throw new FsError("EINVAL", "cannot create a file read-only", { syscall: "open", path });
    }
    const flags = readOnly ? constants.O_RDONLY : constants.O_RDWR | (create ? constants.O_CREAT : 0);
    let fh: FileHandle;
    try {
      fh = await openFile(path, flags, 0o666);
    } catch (e) {
      throw osError(e, "open", path);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new FsError("EISDIR", "is a directory", { syscall: "open", path });
      const isBlock = st.isBlockDevice();
      if (!isBlock && !st.isFile()) {
        throw new FsError("EINVAL", "not a regular file or block device", { syscall: "open", path });
      }
      let deviceSize: number;
      if (isBlock) {
        const capacity = await probeSize(fh);
        if (size !== undefined && size > capacity) {
          throw new FsError("EINVAL", `size ${size} exceeds the block device's ${capacity} bytes`, { syscall: "open", path });
        }
        deviceSize = size ?? capacity;
      } else {
        deviceSize = size ?? st.size;
        if (size !== undefined && !readOnly && st.size !== size) await fh.truncate(size);
      }
      return new FileDevice(fh, path, deviceSize, readOnly, isBlock);
    } catch (e) {
      await fh.close().catch(() => {});
      throw osError(e, "open", path);
    }
  }

  /** A snapshot of the request counters. */
  get stats(): DeviceStats {
    return { ...this.#stats };
  }

  /** Zero the request counters. */
  resetStats(): void {
    this.#stats = emptyStats();
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#fh === null;
  }

  #handle(syscall: string, offset: number, length: number, writes: boolean): FileHandle {
    const fh = this.#fh;
    if (!fh) throw new FsError("EBADF", "file device is closed", { syscall, path: this.path });
    if (writes && this.readOnly) throw new FsError("EROFS", "device is read-only", { syscall, path: this.path });
    checkRange(this.size, offset, length, syscall);
    return fh;
  }

  /** Fill `into` from `offset`, zeros past the end of the file. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    const fh = this.#handle("read", offset, into.length, false);
    countRequest(this.#stats, "read", into.length);
    try {
      let done = 0;
      while (done < into.length) {
        const n = Math.min(into.length - done, MAX_IO);
        const { bytesRead } = await fh.read(into, done, n, offset + done);
        if (bytesRead === 0) {
          into.fill(0, done);
          break;
        }
        done += bytesRead;
      }
    } catch (e) {
      throw osError(e, "read", this.path);
    }
  }

  /** Write all of `data` at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const fh = this.#handle("write", offset, data.length, true);
    countRequest(this.#stats, "write", data.length);
    try {
      await writeAll(fh, data, offset);
    } catch (e) {
      throw osError(e, "write", this.path);
    }
  }

  /** fdatasync: every write that resolved before this call is on stable storage after it. */
  async flush(): Promise<void> {
    const fh = this.#handle("flush", 0, 0, false);
    countRequest(this.#stats, "flush", 0);
    if (this.readOnly) return;
    try {
      await fh.datasync();
    } catch (e) {
      throw osError(e, "fdatasync", this.path);
    }
  }

  /** Make a range read as zeros, leaving holes as holes (see the header for why). */
  async zeroout(offset: number, length: number): Promise<void> {
    const fh = this.#handle("zeroout", offset, length, true);
    countRequest(this.#stats, "zeroout", length);
    const zero = (zeros ??= new Uint8Array(ZERO_PIECE));
    const scratch = new Uint8Array(Math.min(ZERO_PIECE, length));
    try {
      let pos = offset;
      const end = offset + length;
      while (pos < end) {
        const n = Math.min(ZERO_PIECE, end - pos);
        const piece = scratch.subarray(0, n);
        const { bytesRead } = await fh.read(piece, 0, n, pos);
        // A short read means end-of-file: the rest already reads as zeros.
        if (bytesRead > 0 && !isAllZero(piece.subarray(0, bytesRead))) {
          await writeAll(fh, zero.subarray(0, bytesRead), pos);
        }
        pos += bytesRead === 0 ? end - pos : bytesRead;
      }
    } catch (e) {
      throw osError(e, "zeroout", this.path);
    }
  }

  /** A hint only: counted, range-checked, otherwise nothing (Node cannot punch holes). */
  async discard(offset: number, length: number): Promise<void> {
    this.#handle("discard", offset, length, true);
    countRequest(this.#stats, "discard", length);
  }

  /** Close the file (Node waits for requests in flight); later requests reject EBADF. */
  async close(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = null;
    try {
      await fh.close();
    } catch (e) {
      throw osError(e, "close", this.path);
    }
  }
}

async function writeAll(fh: FileHandle, data: Uint8Array, offset: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = Math.min(data.length - done, MAX_IO);
    const { bytesWritten } = await fh.write(data, done, n, offset + done);
    if (bytesWritten === 0) throw new FsError("EIO", "write made no progress", { syscall: "write" });
    done += bytesWritten;
  }
}
