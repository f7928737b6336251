/**
 * Open files across the worker boundary: FileHost (engine's thread) and BrowserFileHandle
 * (the caller's side), together the browser's `vol.open()`.
 *
 * Why not hand the FileHandle itself through Comlink: node's `read(buffer, …)` fills the
 * caller's buffer in place, which cannot happen across threads. So the host reads into a
 * buffer of its own and transfers it; BrowserFileHandle copies it into the caller's
 * buffer — the same signature and result as FileHandle.read. Writes send the bytes (one
 * structured-clone copy; the caller keeps its buffer). The file position lives in the
 * worker's FileHandle, so `position: null` reads and writes advance it as on Node.
 *
 * Lifetime: the handle holds the inode open in the engine (unlinked files stay readable
 * until close); `close()` releases it and the Comlink proxy. Unmount closes nothing for
 * you: close handles first, as with a real filesystem.
 */
import type { FileHandle } from "../fs/file.ts";
import type { Stats } from "../fs/stats.ts";
import { Comlink, reviveStats, transferOut } from "./rpc.ts";

/** One open FileHandle, driven by a BrowserFileHandle (possibly from another thread). */
export class FileHost {
  readonly #fh: FileHandle;

  constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  /** Read up to `length` bytes at `position` (null: the handle's position); the bytes come back transferred. */
  async read(length: number, position: number | null): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    const { bytesRead } = await this.#fh.read(buf, 0, length, position);
    return transferOut(bytesRead === length ? buf : buf.slice(0, bytesRead));
  }

  /** Write all of `data` at `position` (null: the handle's position / append); returns bytes written. */
  async write(data: Uint8Array, position: number | null): Promise<number> {
    return (await this.#fh.write(data, 0, data.length, position)).bytesWritten;
  }

  /** FileHandle.readFile, transferred. */
  async readFile(options?: { encoding?: string | null } | string | null): Promise<Uint8Array | string> {
    return transferOut(await this.#fh.readFile(options));
  }
  /** FileHandle.writeFile. */
  writeFile(data: Uint8Array | string): Promise<void> { return this.#fh.writeFile(data); }
  /** FileHandle.stat (the caller revives the prototype). */
  stat(): Promise<Stats> { return this.#fh.stat(); }
  /** FileHandle.truncate. */
  truncate(len?: number): Promise<void> { return this.#fh.truncate(len); }
  /** FileHandle.sync. */
  sync(): Promise<void> { return this.#fh.sync(); }
  /** FileHandle.datasync. */
  datasync(): Promise<void> { return this.#fh.datasync(); }
  /** The file's extents (logical, physical, length, unwritten). */
  extents(): Promise<{ logical: number; physical: number; length: number; unwritten: boolean }[]> { return this.#fh.extents(); }
  /** FileHandle.close. */
  close(): Promise<void> { return this.#fh.close(); }
}

type Host = FileHost | Comlink.Remote<FileHost>;

/** The browser's FileHandle: node:fs/promises' signatures over a FileHost. */
export class BrowserFileHandle {
  readonly #h: Host;
  readonly #remote: boolean;
  /** The path it was opened with. */
  readonly path: string;

  /** Made by BrowserVolume.open(). */
  constructor(host: Host, path: string, remote: boolean) {
    this.#h = host;
    this.path = path;
    this.#remote = remote;
  }

  /** node: read(buffer, offset?, length?, position?) → { bytesRead, buffer }, filling `buffer` in place. */
  async read<T extends Uint8Array>(buffer: T, offset = 0, length = buffer.length - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: T }> {
    const data = await this.#h.read(length, position);
    buffer.set(data, offset);
    return { bytesRead: data.length, buffer };
  }

  /** node: write(buffer, offset?, length?, position?) or write(string, position?). */
  async write<T extends Uint8Array | string>(data: T, offset?: number | null, length?: number, position?: number | null): Promise<{ bytesWritten: number; buffer: T }> {
    let bytes: Uint8Array;
    let pos: number | null;
    if (typeof data === "string") {
      bytes = new TextEncoder().encode(data);
      pos = offset ?? null;
    } else {
      const off = offset ?? 0;
      bytes = data.subarray(off, off + (length ?? data.length - off));
      pos = position ?? null;
    }
    const bytesWritten = await this.#h.write(bytes, pos);
    return { bytesWritten, buffer: data };
  }

  readFile(): Promise<Uint8Array>;
  readFile(options: string | { encoding: string }): Promise<string>;
  /** The whole file from the start. */
  readFile(options?: { encoding?: string | null } | string | null): Promise<Uint8Array | string> {
    return Promise.resolve(this.#h.readFile(options));
  }
  /** Replace the contents. */
  async writeFile(data: Uint8Array | string): Promise<void> { await this.#h.writeFile(data); }
  /** Stats with isFile() and friends. */
  async stat(): Promise<Stats> { return reviveStats(await this.#h.stat()); }
  /** Truncate or extend to `len` (default 0). */
  async truncate(len?: number): Promise<void> { await this.#h.truncate(len); }
  /** Write back data and metadata and flush the device. */
  async sync(): Promise<void> { await this.#h.sync(); }
  /** Write back data (and the metadata needed to read it) and flush. */
  async datasync(): Promise<void> { await this.#h.datasync(); }
  /** The file's extent map. */
  extents(): Promise<{ logical: number; physical: number; length: number; unwritten: boolean }[]> {
    return Promise.resolve(this.#h.extents());
  }
  /** Close the file (and release the proxy to it). */
  async close(): Promise<void> {
    try {
      await this.#h.close();
    } finally {
      if (this.#remote) (this.#h as Comlink.Remote<FileHost>)[Comlink.releaseProxy]();
    }
  }
}
