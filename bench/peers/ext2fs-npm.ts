/**
 * The `ext2fs` npm package (balena's libext2fs compiled with emscripten) as a bench peer.
 *
 * Why two disks: the package does no I/O of its own. Every block libext2fs wants goes
 * through an async JavaScript `disk` object (read/write/discard/flush), reached from Wasm
 * by an Asyncify unwind and rewind per request. Its README pairs it with `file-disk`'s
 * FileDisk, which answers each request through fs.promises (a thread-pool round trip per
 * block), so that is what most users run; `SyncFileDisk` below answers with
 * fs.readSync/fs.writeSync instead and is the strongest configuration a user could build
 * (several times faster). BENCHMARKS.md asks for both; the sync one is the fair comparison.
 *
 * Known limits respected here (BENCHMARKS.md): the module has a 16 MiB heap and a single
 * read above ~10 MiB aborts it, so data is read in chunks of at most 1 MiB; its readFile
 * always decodes UTF-8, so binary data is read through open + read. Its stat(path) is
 * open + fstat + close, and path lookup in libext2fs scans a directory linearly even when
 * it has an htree index, which makes per-entry work on a big directory quadratic.
 *
 * Read-only use: the image is opened read-only and both disks refuse writes loudly
 * (FileDisk in read-only mode drops them silently, so it is wrapped to count them), so a
 * peer that modified the image between rounds would be noticed rather than skew the next
 * peer's figures.
 *
 * Global side effect: loading the package installs process-wide `uncaughtException` and
 * `unhandledRejection` handlers (emscripten's Node glue) that rethrow; the bench never
 * leaves a rejection unhandled, so they change nothing there.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { mount, umount, type Ext2fsDisk, type Ext2fsFs, type Ext2fsPromises } from "ext2fs";
import { FileDisk } from "file-disk";

export type Ext2fsDiskKind = "sync" | "filedisk";

/** Largest single read handed to the package (its heap is 16 MiB; see the essay). */
export const EXT2FS_MAX_READ = 1 << 20;

/**
 * A disk for the ext2fs package over a host file, answering every request with blocking
 * positional I/O: the promise it returns is already settled, so libext2fs resumes after
 * one microtask instead of a thread-pool round trip.
 */
export class SyncFileDisk implements Ext2fsDisk {
  private fd: number;
  reads = 0;
  writes = 0;

  constructor(path: string) {
    this.fd = openSync(path, "r");
  }

  async read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    this.reads++;
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, bufferOffset + done, length - done, fileOffset + done);
      if (n === 0) {
        // Past the end of the image file: a device reads zeros there.
        buffer.fill(0, bufferOffset + done, bufferOffset + length);
        break;
      }
      done += n;
    }
    return { bytesRead: length, buffer };
  }

  async write(_buffer: Buffer, _bufferOffset: number, length: number): Promise<{ bytesWritten: number }> {
    this.writes++;
    return { bytesWritten: length };
  }

  async discard(): Promise<void> {}

  async flush(): Promise<void> {}

  close(): void {
    closeSync(this.fd);
  }
}

/** FileDisk as the package README uses it, read-only, counting the writes it would drop. */
class CountingFileDisk extends FileDisk {
  writes = 0;
  override async write(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number) {
    this.writes++;
    return super.write(buffer, bufferOffset, length, fileOffset);
  }
}

export interface Ext2fsMount {
  fs: Ext2fsPromises;
  /** Write requests libext2fs issued (a read-only workload expects 0). */
  writes(): number;
  close(): Promise<void>;
}

/** Mount an image file with the ext2fs package on the given kind of disk. */
export async function mountExt2fs(path: string, kind: Ext2fsDiskKind): Promise<Ext2fsMount> {
  let disk: SyncFileDisk | CountingFileDisk;
  let handle: FileHandle | null = null;
  if (kind === "sync") {
    disk = new SyncFileDisk(path);
  } else {
    handle = await open(path, "r");
    disk = new CountingFileDisk(handle, true);
  }
  let fs: Ext2fsFs;
  try {
    fs = await mount(disk, 0);
  } catch (e) {
    if (disk instanceof SyncFileDisk) disk.close();
    await handle?.close();
    throw e;
  }
  return {
    fs: fs.promises,
    writes: () => disk.writes,
    close: async () => {
      await umount(fs);
      if (disk instanceof SyncFileDisk) disk.close();
      await handle?.close();
    },
  };
}

/**
 * Read a whole file through open + read in chunks of at most EXT2FS_MAX_READ bytes into
 * `buf`, handing each chunk to `onChunk` when given; returns the byte count.
 */
export async function ext2fsReadFile(fs: Ext2fsPromises, path: string, buf: Buffer, onChunk?: (chunk: Buffer) => void): Promise<number> {
  // The handle's own close() drops its promise (an error there would be unhandled), so
  // the fd-level read and close are used instead.
  const { fd } = await fs.open(path, "r");
  let pos = 0;
  try {
    const len = Math.min(buf.length, EXT2FS_MAX_READ);
    for (;;) {
      const { bytesRead } = await fs.read(fd, buf, 0, len, pos);
      if (bytesRead === 0) break;
      onChunk?.(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
  } finally {
    await fs.close(fd);
  }
  return pos;
}
