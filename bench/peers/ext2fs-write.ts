/**
 * The `ext2fs` npm package (balena's libext2fs under emscripten) as a *writing* bench peer:
 * copy a host directory tree into an image that mke2fs has just formatted (the package
 * cannot format), the way a user of the package would build an image from a directory.
 *
 * Why two disks (as in ext2fs-npm.ts, which reads): the package does no I/O of its own;
 * every block goes through an async JavaScript `disk` object reached from Wasm by an
 * Asyncify unwind and rewind. `SyncRwFileDisk` answers with fs.readSync / fs.writeSync and
 * flushes with fdatasyncSync — the strongest configuration a user could build and the
 * fair comparison; file-disk's `FileDisk` (what the package README shows) answers each
 * request through fs.promises, a thread-pool round trip per block.
 *
 * Known limits respected (BENCHMARKS.md): the module's heap is 16 MiB and one request above
 * ~10 MiB aborts it, so file data goes in at most 1 MiB per write. Its promise `write`
 * ignores the offset argument (it always copies from offset 0 of the buffer it is given),
 * so each chunk is handed over as its own subarray. It has no utimes (its implementation
 * throws "unimplemented"), so copied files keep the time of the copy; modes are passed to
 * mkdir and open. That is a little less work per file than our copyIn, which also sets
 * times — noted in the bench's report, not compensated.
 *
 * The walk matches copyIn's order (depth-first, names sorted) so both writers allocate in
 * the same order; regular files, directories and symlinks only (the bench trees hold
 * nothing else; anything else throws rather than being skipped silently).
 *
 * discard is a no-op: it is advisory, and this disk only serves freshly formatted images.
 */
import { closeSync, fdatasyncSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, writeSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { mount, umount, type Ext2fsDisk } from "ext2fs";
import { FileDisk } from "file-disk";
import type { Ext2fsDiskKind } from "./ext2fs-npm.ts";

/** Largest single write handed to the package (its heap is 16 MiB; see the essay). */
export const EXT2FS_MAX_WRITE = 1 << 20;

/** A read-write disk over a host file answering with blocking positional I/O. */
export class SyncRwFileDisk implements Ext2fsDisk {
  private fd: number;
  reads = 0;
  writes = 0;
  flushes = 0;

  constructor(path: string) {
    this.fd = openSync(path, "r+");
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

  async write(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<{ bytesWritten: number; buffer: Buffer }> {
    this.writes++;
    for (let done = 0; done < length; ) done += writeSync(this.fd, buffer, bufferOffset + done, length - done, fileOffset + done);
    return { bytesWritten: length, buffer };
  }

  async discard(): Promise<void> {}

  async flush(): Promise<void> {
    this.flushes++;
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** What one copy did (for the bench's sanity checks). */
export interface Ext2fsCopyResult {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
}

/**
 * Mount `img` (already formatted) read-write with the ext2fs package on the given kind of
 * disk, copy the contents of host directory `src` into its root, unmount (which flushes).
 */
export async function ext2fsCopyTree(img: string, src: string, kind: Ext2fsDiskKind): Promise<Ext2fsCopyResult> {
  let disk: SyncRwFileDisk | FileDisk;
  let handle: FileHandle | null = null;
  if (kind === "sync") {
    disk = new SyncRwFileDisk(img);
  } else {
    handle = await open(img, "r+");
    disk = new FileDisk(handle, false);
  }
  const res: Ext2fsCopyResult = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  try {
    const fs = await mount(disk, 0);
    const p = fs.promises as unknown as Ext2fsWritePromises;
    const buf = Buffer.alloc(EXT2FS_MAX_WRITE);
    const copyDir = async (h: string, dest: string): Promise<void> => {
      for (const name of readdirSync(h).sort()) {
        const child = join(h, name);
        const to = dest === "/" ? `/${name}` : `${dest}/${name}`;
        const st = lstatSync(child);
        if (st.isDirectory()) {
          await p.mkdir(to, st.mode & 0o7777);
          res.dirs++;
          await copyDir(child, to);
        } else if (st.isSymbolicLink()) {
          await p.symlink(readlinkSync(child), to);
          res.symlinks++;
        } else if (st.isFile()) {
          const { fd } = await p.open(to, "w", st.mode & 0o7777);
          const hfd = openSync(child, "r");
          try {
            for (let pos = 0; ; ) {
              const n = readSync(hfd, buf, 0, EXT2FS_MAX_WRITE, pos);
              if (n === 0) break;
              // The package ignores `offset` (see the essay): hand it a buffer starting at the data.
              for (let done = 0; done < n; ) {
                const { bytesWritten } = await p.write(fd, buf.subarray(done, n), 0, n - done, pos + done);
                if (bytesWritten <= 0) throw new Error(`ext2fs: short write to ${to}`);
                done += bytesWritten;
              }
              pos += n;
              res.bytes += n;
            }
          } finally {
            closeSync(hfd);
            await p.close(fd);
          }
          res.files++;
        } else {
          throw new Error(`ext2fs copy: ${child} is neither a file, a directory nor a symlink`);
        }
      }
    };
    await copyDir(src, "/");
    await umount(fs);
  } finally {
    if (disk instanceof SyncRwFileDisk) disk.close();
    await handle?.close();
  }
  return res;
}

/** The write half of the package's promise API (ext2fs.d.ts declares the read half). */
interface Ext2fsWritePromises {
  open(path: string, flags: string | number, mode?: number): Promise<{ fd: number }>;
  write(fd: number, buffer: Buffer, offset: number, length: number, position: number | null): Promise<{ bytesWritten: number }>;
  close(fd: number): Promise<void>;
  mkdir(path: string, mode?: number): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
}
