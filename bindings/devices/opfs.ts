/**
 * OpfsDevice: a BlockDevice over a file in the browser's Origin Private File System.
 *
 * Why FileSystemSyncAccessHandle: it is the only OPFS interface with positional reads and
 * writes into caller memory (no copy, no stream, no whole-file rewrite), which is what a
 * block device needs — and each call completes synchronously, so a request costs about
 * what a pread costs. The price: browsers grant it only inside a dedicated Worker. On the
 * main thread `open` fails with ENOSYS and says to use `openVolume()`, which runs the
 * engine (and this device) in a worker and proxies the volume to the page.
 *
 * Ownership and locking: a read-write sync access handle is exclusive — while this device
 * is open no other tab, worker or device can open the same file read-write (the browser
 * answers NoModificationAllowedError, reported as EBUSY). `close()` releases it; a
 * read-only device uses the shared "read-only" mode, so several readers may coexist.
 *
 * Contract details (bindings/devices/types.ts): every request completes before its
 * promise settles, so requests never reorder; `flush()` maps to `handle.flush()`, the
 * browser's durability barrier. Reads past the file's end (a read-only device opened with
 * a larger `size`) fill zeros. Views of Wasm memory are handed to the handle and
 * forgotten when the call returns.
 *
 * Why zeroout remembers fresh space: OPFS cannot punch holes, so zeroing means writing
 * zeros, and mkfs zeroes whole journals. But the part of the file that `open` appended by
 * extending it already reads as zeros; the device keeps that boundary plus a set of the
 * 1 MiB granules written beyond it since, and zeroout writes only over granules that may
 * hold data. `discard` is a hint and does nothing here.
 *
 * Errors: DOMExceptions become FsError (NotFoundError → ENOENT, NoModificationAllowedError
 * → EBUSY, QuotaExceededError → ENOSPC, others EIO); requests after close() reject EBADF,
 * writes on a read-only device EROFS, bad ranges EINVAL.
 */
import { FsError, type ErrorCode } from "../fs/errors.ts";
import { checkRange } from "./range.ts";
import type { BlockDevice } from "./types.ts";
import { countRequest, emptyStats, type DeviceStats } from "./memory.ts";

/** The slice of FileSystemSyncAccessHandle we use (declared here: TS's DOM lib lacks it). */
export interface SyncAccessHandle {
  read(buffer: Uint8Array, options?: { at?: number }): number;
  write(buffer: Uint8Array, options?: { at?: number }): number;
  flush(): void;
  getSize(): number;
  truncate(size: number): void;
  close(): void;
}

interface SyncCapableFileHandle extends FileSystemFileHandle {
  createSyncAccessHandle?(options?: { mode?: "readwrite" | "read-only" | "readwrite-unsafe" }): Promise<SyncAccessHandle>;
}

export interface OpfsDeviceOptions {
  /** Device size in bytes: a writable file is extended or truncated to it. Default: the file's size. */
  size?: number;
  /** Create the file (and its parent directories) when missing. */
  create?: boolean;
  /** Open in shared read-only mode; writes and zeroout reject with EROFS. */
  readOnly?: boolean;
}

/** Granule of the fresh-space bookkeeping (see the header). */
const GRANULE = 1 << 20;
let zeros: Uint8Array | undefined;

/** Turn a DOMException (or anything) from the OPFS API into an FsError. */
export function opfsError(e: unknown, syscall: string, path?: string): FsError {
  if (e instanceof FsError) return e;
  const name = (e as { name?: string })?.name ?? "";
  const code: ErrorCode =
    name === "NotFoundError" ? "ENOENT"
    : name === "NoModificationAllowedError" || name === "InvalidStateError" ? "EBUSY"
    : name === "QuotaExceededError" ? "ENOSPC"
    : name === "TypeMismatchError" ? "EISDIR"
    : name === "TypeError" ? "EINVAL"
    : "EIO";
  const msg = e instanceof Error ? e.message : String(e);
  return new FsError(code, `OPFS ${name || "error"}: ${msg}`, { syscall, path, cause: e });
}

/** Split an OPFS path ("images/disk.img") into checked names; rejects "", ".", "..". */
function splitPath(path: string): string[] {
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.some((p) => p === "." || p === ".." || p.includes("\0"))) {
    throw new FsError("EINVAL", `bad OPFS path '${path}'`, { syscall: "open", path });
  }
  return parts;
}

/** Walk from the origin's OPFS root to the file at `path` (creating parents when asked). */
export async function opfsFileHandle(path: string, create: boolean): Promise<FileSystemFileHandle> {
  const parts = splitPath(path);
  if (typeof navigator === "undefined" || !navigator.storage?.getDirectory) {
    throw new FsError("ENOSYS", "this runtime has no Origin Private File System", { syscall: "open", path });
  }
  try {
    let dir = await navigator.storage.getDirectory();
    for (const name of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(name, { create });
    return await dir.getFileHandle(parts[parts.length - 1], { create });
  } catch (e) {
    throw opfsError(e, "open", path);
  }
}

/** Delete an OPFS file (no error when it is already gone); callable from any context. */
export async function removeOpfsFile(path: string): Promise<void> {
  const parts = splitPath(path);
  try {
    let dir = await navigator.storage.getDirectory();
    for (const name of parts.slice(0, -1)) dir = await dir.getDirectoryHandle(name);
    await dir.removeEntry(parts[parts.length - 1]);
  } catch (e) {
    const err = opfsError(e, "unlink", path);
    if (err.code !== "ENOENT") throw err;
  }
}

export class OpfsDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize = 4096;
  readonly path: string;
  readonly readOnly: boolean;
  readonly file: FileSystemFileHandle;
  #h: SyncAccessHandle | null;
  #stats = emptyStats();
  /** Bytes at or past this offset read as zeros unless their granule is in #written. */
  #freshFrom: number;
  #written = new Set<number>();

  private constructor(file: FileSystemFileHandle, h: SyncAccessHandle, path: string, size: number, freshFrom: number, readOnly: boolean) {
    this.file = file;
    this.#h = h;
    this.path = path;
    this.size = size;
    this.#freshFrom = freshFrom;
    this.readOnly = readOnly;
  }

  /**
   * Open (or create) an OPFS file as a device. Only inside a dedicated Worker; `file` is a
   * path below the origin's OPFS root or a FileSystemFileHandle (e.g. from a picker).
   */
  static async open(file: string | FileSystemFileHandle, options: OpfsDeviceOptions = {}): Promise<OpfsDevice> {
    const { size, create = false, readOnly = false } = options;
    const path = typeof file === "string" ? file : file.name;
    if (size !== undefined && !(Number.isSafeInteger(size) && size >= 0)) {
      throw new FsError("EINVAL", `bad device size ${size}`, { syscall: "open", path });
    }
    if (create && readOnly) throw new FsError("EINVAL", "create and readOnly exclude each other", { syscall: "open", path });
    const fh = (typeof file === "string" ? await opfsFileHandle(file, create) : file) as SyncCapableFileHandle;
    if (typeof fh.createSyncAccessHandle !== "function") {
      throw new FsError(
        "ENOSYS",
        "OPFS sync access handles exist only in a dedicated Worker: use openVolume() from the page, or OpfsDevice inside a worker",
        { syscall: "open", path },
      );
    }
    let h: SyncAccessHandle;
    try {
      h = await fh.createSyncAccessHandle(readOnly ? { mode: "read-only" } : undefined);
    } catch (e) {
      throw opfsError(e, "open", path);
    }
    try {
      const had = h.getSize();
      let deviceSize = had;
      if (size !== undefined) {
        if (!readOnly && size !== had) h.truncate(size);
        deviceSize = size;
      }
      return new OpfsDevice(fh, h, path, deviceSize, Math.min(had, deviceSize), readOnly);
    } catch (e) {
      h.close();
      throw opfsError(e, "open", path);
    }
  }

  /** A snapshot of the request counters. */
  get stats(): DeviceStats {
    return { ...this.#stats };
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#h === null;
  }

  #handle(syscall: string, offset: number, length: number, writes: boolean): SyncAccessHandle {
    if (!this.#h) throw new FsError("EBADF", "OPFS device is closed", { syscall, path: this.path });
    if (writes && this.readOnly) throw new FsError("EROFS", "device is read-only", { syscall, path: this.path });
    checkRange(this.size, offset, length, syscall);
    return this.#h;
  }

  /** Fill `into` from `offset`; past the file's end reads zeros. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    const h = this.#handle("read", offset, into.length, false);
    countRequest(this.#stats, "read", into.length);
    let done = 0;
    try {
      while (done < into.length) {
        const n = h.read(into.subarray(done), { at: offset + done });
        if (n <= 0) break;
        done += n;
      }
    } catch (e) {
      throw opfsError(e, "read", this.path);
    }
    if (done < into.length) into.fill(0, done);
  }

  /** Write all of `data` at `offset` (a short write is EIO). */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const h = this.#handle("write", offset, data.length, true);
    countRequest(this.#stats, "write", data.length);
    this.#markWritten(offset, data.length);
    this.#writeAll(h, offset, data, "write");
  }

  #writeAll(h: SyncAccessHandle, offset: number, data: Uint8Array, syscall: string): void {
    let done = 0;
    try {
      while (done < data.length) {
        const n = h.write(data.subarray(done), { at: offset + done });
        if (n <= 0) throw new FsError("EIO", `short write at ${offset + done}`, { syscall, path: this.path });
        done += n;
      }
    } catch (e) {
      throw opfsError(e, syscall, this.path);
    }
  }

  #markWritten(offset: number, length: number): void {
    const end = offset + length;
    if (length === 0 || end <= this.#freshFrom) return;
    const first = Math.floor(Math.max(offset, this.#freshFrom) / GRANULE);
    for (let g = first; g * GRANULE < end; g++) this.#written.add(g);
  }

  /** Durability barrier: everything written before the call is on storage when it resolves. */
  async flush(): Promise<void> {
    const h = this.#handle("flush", 0, 0, false);
    countRequest(this.#stats, "flush", 0);
    if (this.readOnly) return;
    try {
      h.flush();
    } catch (e) {
      throw opfsError(e, "flush", this.path);
    }
  }

  /** Make a range read as zeros, skipping granules known never written since open. */
  async zeroout(offset: number, length: number): Promise<void> {
    const h = this.#handle("zeroout", offset, length, true);
    countRequest(this.#stats, "zeroout", length);
    zeros ??= new Uint8Array(GRANULE);
    const end = offset + length;
    let pos = offset;
    while (pos < end) {
      const g = Math.floor(pos / GRANULE);
      const stop = Math.min(end, (g + 1) * GRANULE);
      const fresh = g * GRANULE >= this.#freshFrom && !this.#written.has(g);
      if (!fresh) this.#writeAll(h, pos, zeros.subarray(0, stop - pos), "zeroout");
      pos = stop;
    }
  }

  /** A hint only: OPFS cannot punch holes. */
  async discard(offset: number, length: number): Promise<void> {
    this.#handle("discard", offset, length, false);
    countRequest(this.#stats, "discard", length);
  }

  /**
   * The whole image as a Blob (read in 4 MiB pieces through the handle, which a File from
   * getFile() could not do while the handle is open). For export/download.
   */
  async toBlob(type = "application/octet-stream"): Promise<Blob> {
    const parts: Uint8Array[] = [];
    const piece = 4 << 20;
    for (let off = 0; off < this.size; off += piece) {
      const buf = new Uint8Array(Math.min(piece, this.size - off));
      await this.read(off, buf);
      parts.push(buf);
    }
    return new Blob(parts as BlobPart[], { type });
  }

  /** Release the handle (and with it the file's exclusive lock); idempotent. */
  async close(): Promise<void> {
    const h = this.#h;
    if (!h) return;
    this.#h = null;
    try {
      if (!this.readOnly) h.flush();
    } finally {
      h.close();
    }
  }
}
