/**
 * copyIn: copy a host file or directory tree into a volume (Node) — the engine of
 * `ext4-wasm mkfs --from DIR` and `ext4-wasm cp -r DIR IMAGE:PATH`.
 *
 * What is preserved, and how:
 *  - Types: directories, regular files, symlinks (re-created from readlink, never
 *    followed), hard links (a multiply-linked host inode is copied once; later names
 *    become `vol.link` to the first volume path, keyed by host dev:ino), and special
 *    files (FIFOs, sockets, char/block devices) when the volume offers `mknod` —
 *    otherwise they are reported through onSkip and left out.
 *  - Contents, with holes: blocks that are entirely zero are not written (like
 *    `mke2fs -d`), and the size is set with truncate, so sparse files stay sparse.
 *  - Mode including setuid/setgid/sticky (chmod after chown: a chown may clear them),
 *    atime and mtime from `lstat({ bigint: true })`, passed to utimes as bigint
 *    nanoseconds so nothing is lost to floating point, set last — for a
 *    directory after all its children, since creating children changes its mtime.
 *  - Ownership: `preserveOwner` defaults to true when running as root (the tree's owners
 *    were set on purpose) and to false otherwise, where everything is owned by `owner`
 *    (default 0:0) — what a non-root user building a root filesystem wants; files owned
 *    by that user should not end up owned by uid 1000 inside the image.
 *
 * Memory stays bounded for huge trees: the walk is depth-first and holds only the sorted
 * names of the directories on the current path (a directory is read with opendir and its
 * names sorted, so the order — and therefore inode numbering — is reproducible), plus
 * the dev:ino → path map of multiply-linked files. File data moves in 1 MiB chunks.
 *
 * Speed: the host side runs ahead of the volume (readAhead: lstat of the next entries and
 * the bytes of small files, bounded), and a small file becomes one volume transaction
 * with its owner, mode and times (VolumeWriter.writeFileWithAttrs) when the volume is
 * ours; with another WritableVolume it is writeFile + chown/chmod/utimes as before.
 *
 * Host paths are only read; volume paths are built by joining host names, and a name
 * containing NUL or '/' (impossible on a real host) is rejected rather than interpreted.
 */
import { opendir, lstat, readlink, readFile, open as hostOpen } from "node:fs/promises";
import { lstatSync, type BigIntStats } from "node:fs";
import { join } from "node:path";
import type { Volume } from "./fs/volume.ts";
import type { Stats } from "./fs/stats.ts";
import { FsError, ERRNO, type ErrorCode } from "./fs/errors.ts";
import { runningAsRoot } from "./host-root.ts";
import { writerOf } from "./fs/volume_write.ts";

/**
 * The slice of the Volume write API copyIn (and the CLI write commands) rely on, spelled
 * out so this file type-checks against the API in DESIGN.md while volume.ts still has
 * read-only stubs. Optional members are used when present.
 */
export interface WritableVolume {
  readonly blockSize: number;
  lstat(path: string): Promise<Stats>;
  stat(path: string): Promise<Stats>;
  readdir(path: string): Promise<string[]>;
  readlink(path: string): Promise<string>;
  readFile(path: string): Promise<Uint8Array | string>;
  mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<unknown>;
  writeFile(path: string, data: Uint8Array | string, options?: { mode?: number }): Promise<void>;
  appendFile(path: string, data: Uint8Array | string, options?: { mode?: number }): Promise<void>;
  open(path: string, flags?: string, mode?: number): Promise<WritableFileHandle>;
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(oldPath: string, newPath: string): Promise<void>;
  link(existingPath: string, newPath: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, uid: number, gid: number): Promise<void>;
  /** Times as seconds, Dates, or bigint nanoseconds (exact). */
  utimes(path: string, atime: number | Date | bigint, mtime: number | Date | bigint): Promise<void>;
  truncate(path: string, len?: number): Promise<void>;
  sync(): Promise<void>;
  unmount(): Promise<void>;
  lchown?(path: string, uid: number, gid: number): Promise<void>;
  lutimes?(path: string, atime: number | Date | bigint, mtime: number | Date | bigint): Promise<void>;
  mknod?(path: string, mode: number, rdev: number): Promise<void>;
}

export interface WritableFileHandle {
  read(buffer: Uint8Array, offset?: number, length?: number, position?: number | null): Promise<{ bytesRead: number }>;
  write(buffer: Uint8Array, offset?: number, length?: number, position?: number | null): Promise<{ bytesWritten: number }>;
  truncate(len?: number): Promise<void>;
  stat(): Promise<Stats>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The Volume seen through its write API (a type-level view; no runtime change). */
export function writable(vol: Volume | WritableVolume): WritableVolume {
  return vol as unknown as WritableVolume;
}

export interface CopyInProgress {
  files: number;
  dirs: number;
  symlinks: number;
  hardlinks: number;
  specials: number;
  /** Bytes of file data read from the host (holes included). */
  bytes: number;
  /** Host path being copied. */
  path: string;
}

export interface CopyInOptions {
  /** Called after each entry (throttle on the caller's side). */
  onProgress?: (p: CopyInProgress) => void;
  /** Called for entries that could not be copied (special files without mknod …). */
  onSkip?: (hostPath: string, reason: string) => void;
  /** Keep host uid/gid (default: true when running as root, else false). */
  preserveOwner?: boolean;
  /** Owner for everything when not preserving (default 0:0). */
  owner?: { uid: number; gid: number };
}

export type CopyInResult = Omit<CopyInProgress, "path"> & { skipped: number };

const CHUNK = 1 << 20;
/** Directory entries whose host reads run ahead of the volume (see readAhead). */
const AHEAD = 32;
/** Files up to this size are read ahead whole … */
const AHEAD_FILE = 256 << 10;
/** … while the read-ahead holds no more than this many bytes in all. */
const AHEAD_BYTES = 8 << 20;

/** One entry's read-ahead: its lstat (or the error), and the bytes of a small file. */
interface Ahead {
  st?: BigIntStats;
  err?: unknown;
  data?: Buffer;
  /** Bytes counted against AHEAD_BYTES until the entry is consumed. */
  reserved?: number;
}

/** A host failure as an FsError, keeping its errno code when ours has it. */
function hostError(e: unknown, path: string, syscall: string): FsError {
  if (e instanceof FsError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = (typeof err?.code === "string" && Object.prototype.hasOwnProperty.call(ERRNO, err.code) ? err.code : "EIO") as ErrorCode;
  return new FsError(code, `host ${path}: ${err?.message ?? String(e)}`, { syscall, path, cause: e });
}

async function host<T>(path: string, syscall: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw hostError(e, path, syscall);
  }
}

/** utimes takes bigint nanoseconds exactly (a double of seconds would round ~100 ns). */
function timeArg(ns: bigint): bigint {
  return ns;
}

function volJoin(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** True when every byte of b is zero (compared natively in one call). */
function allZero(b: Uint8Array, zero: Uint8Array): boolean {
  return Buffer.compare(b, zero.subarray(0, b.length)) === 0;
}

/**
 * Copy hostPath (file, symlink, special file or directory tree) to volPath. An existing
 * directory at volPath is merged into (and takes the host directory's mode, owner and
 * times); an existing file is overwritten; other collisions fail with the volume's error.
 */
export async function copyIn(volume: Volume | WritableVolume, hostPath: string, volPath: string, opts: CopyInOptions = {}): Promise<CopyInResult> {
  const vol = writable(volume);
  const writer = writerOf(volume);
  const asRoot = runningAsRoot();
  const preserveOwner = opts.preserveOwner ?? asRoot;
  const owner = opts.owner ?? { uid: 0, gid: 0 };
  // Permission bits the volume strips from what it creates; unknown: assume all of them,
  // so the mode is always set explicitly.
  const umask = typeof (volume as { umask?: unknown }).umask === "number" ? (volume as { umask: number }).umask : 0o7777;
  const p: CopyInProgress = { files: 0, dirs: 0, symlinks: 0, hardlinks: 0, specials: 0, bytes: 0, path: hostPath };
  let skipped = 0;
  const links = new Map<string, string>();
  const bs = vol.blockSize;
  const buf = Buffer.alloc(CHUNK);
  const zero = Buffer.alloc(Math.max(bs, CHUNK));

  const skip = (h: string, why: string) => {
    skipped++;
    opts.onSkip?.(h, why);
  };
  const uidOf = (st: BigIntStats) => (preserveOwner ? Number(st.uid) : owner.uid);
  const gidOf = (st: BigIntStats) => (preserveOwner ? Number(st.gid) : owner.gid);

  /** The owner the volume gives new inodes, learned from the first one we create. */
  let newOwner: { uid: number; gid: number } | undefined;

  /**
   * Owner, mode, times — in that order, since chown may clear setuid/setgid. `fresh`: we
   * created the inode just now with mode `createdMode` (less the volume's umask), so a
   * chown to the owner new inodes get anyway and a chmod to the mode it already has can
   * be skipped — a third of
   * the transactions of a big copy. (Its parent is never setgid while children are
   * created — directory modes are applied after their contents — so the default owner
   * cannot vary by directory.)
   */
  const finish = async (path: string, st: BigIntStats, kind: "dir" | "file" | "symlink" | "special", fresh: boolean, createdMode: number) => {
    const uid = uidOf(st);
    const gid = gidOf(st);
    if (kind === "symlink") {
      if (vol.lchown) await vol.lchown(path, uid, gid);
      if (vol.lutimes) await vol.lutimes(path, timeArg(st.atimeNs), timeArg(st.mtimeNs));
      return;
    }
    const mode = Number(st.mode) & 0o7777;
    if (fresh && !newOwner) {
      const s = await vol.lstat(path);
      newOwner = { uid: s.uid, gid: s.gid };
    }
    const chown = !fresh || uid !== newOwner!.uid || gid !== newOwner!.gid;
    if (chown) await vol.chown(path, uid, gid);
    if (chown || mode !== (createdMode & ~umask)) await vol.chmod(path, mode);
    await vol.utimes(path, timeArg(st.atimeNs), timeArg(st.mtimeNs));
  };

  const hasZeroBlock = (data: Uint8Array) => {
    for (let o = 0; o < data.length; o += bs) if (allZero(data.subarray(o, o + bs), zero)) return true;
    return false;
  };

  /**
   * A whole small file in one volume call. With the package's own Volume, owner, mode
   * and times go in the same transaction (true: finish() has nothing left to do).
   */
  const writeWhole = async (dest: string, data: Uint8Array, st: BigIntStats): Promise<boolean> => {
    const mode = Number(st.mode) & 0o7777;
    p.bytes += data.length;
    if (writer) {
      await writer.writeFileWithAttrs(dest, data, { mode, uid: uidOf(st), gid: gidOf(st), atime: st.atimeNs, mtime: st.mtimeNs });
      return true;
    }
    await vol.writeFile(dest, data, { mode });
    return false;
  };

  /** Copy a regular file; true when its attributes were set on the way (see writeWhole). */
  const copyFile = async (h: string, dest: string, st: BigIntStats, ahead?: Buffer): Promise<boolean> => {
    const size = Number(st.size);
    const mode = Number(st.mode) & 0o7777;
    // Empty at lstat: nothing to read (a file growing meanwhile is copied as it was seen).
    if (size === 0) return writeWhole(dest, new Uint8Array(0), st);
    if (ahead && ahead.length === size && !hasZeroBlock(ahead)) return writeWhole(dest, ahead, st);
    const src = await host(h, "open", () => hostOpen(h, "r"));
    try {
      // Small files without a zero block: one writeFile. Everything else streams, and
      // zero blocks become holes.
      if (size <= CHUNK) {
        const { bytesRead } = await host(h, "read", () => src.read(buf, 0, CHUNK, 0));
        const data = buf.subarray(0, bytesRead);
        if (!hasZeroBlock(data) && bytesRead === size) return await writeWhole(dest, data, st);
      }
      const fh = await vol.open(dest, "w", mode);
      try {
        let pos = 0;
        for (;;) {
          const { bytesRead } = await host(h, "read", () => src.read(buf, 0, CHUNK, pos));
          if (bytesRead === 0) break;
          // Write each run of non-zero blocks as one request.
          let o = 0;
          while (o < bytesRead) {
            while (o < bytesRead && allZero(buf.subarray(o, Math.min(o + bs, bytesRead)), zero)) o += bs;
            if (o >= bytesRead) break;
            let e = o;
            while (e < bytesRead && !allZero(buf.subarray(e, Math.min(e + bs, bytesRead)), zero)) e += bs;
            e = Math.min(e, bytesRead);
            let done = 0;
            while (done < e - o) {
              const { bytesWritten } = await fh.write(buf, o + done, e - o - done, pos + o + done);
              if (bytesWritten <= 0) throw new FsError("EIO", `short write to ${dest}`, { syscall: "write", path: dest });
              done += bytesWritten;
            }
            o = e;
          }
          pos += bytesRead;
          p.bytes += bytesRead;
        }
        // The size, including a trailing hole (and files that grew or shrank meanwhile).
        await fh.truncate(pos);
      } finally {
        await fh.close();
      }
    } finally {
      await src.close();
    }
    return false;
  };

  /**
   * Read-ahead of a directory's entries: their lstat and, for small regular files, their
   * bytes, started up to AHEAD entries before the volume needs them. Host calls go through
   * libuv's thread pool; issued one at a time, each costs a round trip during which the
   * volume waits (for 20,000 empty files the host side alone took 3× the 25× target).
   * Issued ahead, they run while the volume works. Memory stays bounded: AHEAD stats per
   * directory on the current path, file bytes only up to AHEAD_FILE each and AHEAD_BYTES
   * in all (past that a file is read when its turn comes, as before).
   *
   * The lstat itself is synchronous: measured on a cached 20,000-entry directory, a
   * promise lstat costs ~4× the CPU of lstatSync (thread-pool hand-off, promise and
   * callback on top of a ~3 µs syscall), and CPU is what a copy of many small entries is
   * short of — the volume side is CPU-bound too. mke2fs -d stats synchronously as well.
   * File bytes are still read through the pool, where the overlap pays.
   */
  let aheadBytes = 0;
  const readAhead = (path: string): Promise<Ahead> => {
    let st: BigIntStats;
    try {
      st = lstatSync(path, { bigint: true });
    } catch (err) {
      return Promise.resolve({ err });
    }
    const size = Number(st.size);
    if (!st.isFile() || size === 0 || size > AHEAD_FILE || aheadBytes + size > AHEAD_BYTES) return Promise.resolve({ st });
    aheadBytes += size;
    // A read error is left for the ordinary path to meet (and report) again.
    return readFile(path).then((data) => ({ st, data, reserved: size }), () => ({ st, reserved: size }));
  };

  /** parentFresh: dest's directory was created by this copy (so dest is new too). */
  const copyEntry = async (h: string, dest: string, st: BigIntStats, parentFresh: boolean, ahead?: Buffer): Promise<void> => {
    p.path = h;
    if (st.isDirectory()) {
      // An existing directory (the root, lost+found, a cp target) is merged into.
      let fresh = true;
      await vol.mkdir(dest, { mode: Number(st.mode) & 0o777 }).catch(async (e) => {
        if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
        if (!(await vol.lstat(dest)).isDirectory()) throw e;
        fresh = false;
      });
      p.dirs++;
      const names: string[] = [];
      const dir = await host(h, "opendir", () => opendir(h));
      await host(h, "readdir", async () => {
        for await (const d of dir) names.push(d.name);
      });
      names.sort();
      const queue: (Promise<Ahead> | undefined)[] = [];
      let queued = 0;
      for (let k = 0; k < names.length; k++) {
        for (; queued < names.length && queued < k + AHEAD; queued++) {
          const n = names[queued]!;
          queue.push(n.includes("\0") || n.includes("/") ? undefined : readAhead(join(h, n)));
        }
        const name = names[k]!;
        const child = join(h, name);
        const pending = queue[k];
        queue[k] = undefined;
        if (!pending) {
          skip(child, "unrepresentable name");
          continue;
        }
        const got = await pending;
        aheadBytes -= got.reserved ?? 0;
        if (got.err !== undefined) throw hostError(got.err, child, "lstat");
        await copyEntry(child, volJoin(dest, name), got.st!, fresh, got.data);
      }
      p.path = h;
      await finish(dest, st, "dir", fresh, Number(st.mode) & 0o777);
      opts.onProgress?.({ ...p });
      return;
    }
    if (st.isSymbolicLink()) {
      const target = await host(h, "readlink", () => readlink(h));
      await vol.symlink(target, dest);
      p.symlinks++;
      await finish(dest, st, "symlink", parentFresh, 0o777);
      opts.onProgress?.({ ...p });
      return;
    }
    const key = `${st.dev}:${st.ino}`;
    if (st.nlink > 1n && !st.isDirectory()) {
      const first = links.get(key);
      if (first !== undefined) {
        await vol.link(first, dest);
        p.hardlinks++;
        opts.onProgress?.({ ...p });
        return;
      }
    }
    let attrsDone = false;
    if (st.isFile()) {
      attrsDone = await copyFile(h, dest, st, ahead);
      p.files++;
    } else {
      const kind = st.isFIFO() ? "FIFO" : st.isSocket() ? "socket" : st.isCharacterDevice() ? "character device" : "block device";
      if (!vol.mknod) {
        skip(h, `${kind}: the volume cannot create special files (no mknod)`);
        return;
      }
      // Made from lstat's type, permission bits and device number: a FIFO cannot even be
      // opened for reading without a writer, and nothing of a special file is in its data.
      await vol.mknod(dest, Number(st.mode), Number(st.rdev));
      p.specials++;
    }
    if (st.nlink > 1n) links.set(key, dest);
    if (!attrsDone) await finish(dest, st, st.isFile() ? "file" : "special", parentFresh, Number(st.mode) & 0o7777);
    opts.onProgress?.({ ...p });
  };

  const st = await host(hostPath, "lstat", () => lstat(hostPath, { bigint: true }));
  await copyEntry(hostPath, volPath, st, false);
  const { path: _path, ...counts } = p;
  return { ...counts, skipped };
}

/** Files, directories and bytes under hostPath (for a progress bar's totals); streams. */
export async function countTree(hostPath: string): Promise<{ entries: number; bytes: number }> {
  let entries = 0;
  let bytes = 0;
  const visit = async (h: string): Promise<void> => {
    const st = await lstat(h);
    entries++;
    if (st.isFile()) bytes += st.size;
    if (!st.isDirectory()) return;
    for await (const d of await opendir(h)) await visit(join(h, d.name));
  };
  await host(hostPath, "lstat", () => visit(hostPath));
  return { entries, bytes };
}
