/**
 * The write side of the Volume API (node:fs/promises shape): mkdir, writeFile,
 * appendFile, unlink, rmdir, rm, rename, link, symlink, mknod, chmod, chown, utimes,
 * truncate, plus sync and the read-write parts of mount/unmount.
 *
 * Every call takes the volume's metadata lock for its whole transaction (ops.ts explains
 * the order inside one), opens a Handle, and stops it before the lock is released.
 * Argument validation happens first, outside the lock, with Node's error codes.
 */
import { FsError, wrapUnknown } from "./errors.ts";
import { CacheHandle, type Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import type { Inode } from "./inode.ts";
import { WState, nowTime, extentsFlag } from "./wstate.ts";
import { FILE_TYPE } from "./stats.ts";
import { retryIfReclaimable } from "../sched/inodegc.ts";
import { quiesceForFree } from "./treeseq.ts";

/**
 * File content handed over piecewise (VolumeWriter.writeFileWithAttrs): the producer calls
 * `put(pos, bytes)` for every run that is not a hole, in ascending order, each starting
 * on a block boundary past the previous run's last block; everything between runs reads
 * as zeros (a run's last partial block is zero-padded). `bytes` may be reused once put's
 * promise settles. It resolves to the file's size (at least the end of the last run;
 * more leaves a trailing hole).
 */
export type ContentProducer = (put: (pos: number, bytes: Uint8Array) => Promise<void>) => Promise<number>;

const { S_IFDIR, S_IFREG, S_IFLNK, S_IFMT, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK } = FILE_TYPE;
const utf8 = new TextEncoder();

function checkPath(path: unknown, syscall: string): asserts path is string {
  if (typeof path !== "string") throw new FsError("EINVAL", `path must be a string, got ${typeof path}`, { syscall });
  if (path.length === 0) throw new FsError("ENOENT", "no such file or directory", { syscall, path });
}

function checkMode(mode: unknown, syscall: string, path: string): number {
  if (mode === undefined) return -1;
  const m = typeof mode === "string" ? parseInt(mode, 8) : mode;
  if (typeof m !== "number" || !Number.isInteger(m) || m < 0 || m > 0o7777) {
    throw new FsError("EINVAL", `bad mode ${String(mode)}`, { syscall, path });
  }
  return m;
}

/** Node accepts seconds (number), numeric strings and Dates; → [s, ns]. */
export function toTime(t: unknown, syscall: string, path: string): [number, number] {
  let ms: number;
  if (t instanceof Date) ms = t.getTime();
  else if (typeof t === "number") ms = t * 1000;
  else if (typeof t === "string" && t.trim() !== "" && !Number.isNaN(Number(t))) ms = Number(t) * 1000;
  else if (typeof t === "bigint") {
    // Floor division: -1.25 s is [-2, 750000000], not [-1, -250000000].
    let sec = t / 1_000_000_000n;
    let ns = t % 1_000_000_000n;
    if (ns < 0n) {
      sec -= 1n;
      ns += 1_000_000_000n;
    }
    return [Number(sec), Number(ns)];
  }
  else throw new FsError("EINVAL", `bad time ${String(t)}`, { syscall, path });
  if (!Number.isFinite(ms)) throw new FsError("EINVAL", `bad time ${String(t)}`, { syscall, path });
  const s = Math.floor(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}

function toBytes(data: unknown, encoding: string | undefined, syscall: string, path: string): Uint8Array {
  if (typeof data === "string") {
    if (encoding && encoding !== "utf8" && encoding !== "utf-8") {
      if (encoding === "latin1" || encoding === "binary") return Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
      if (encoding === "hex") return Uint8Array.from(data.match(/../g) ?? [], (b) => parseInt(b, 16));
      if (encoding === "base64") return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      throw new FsError("EINVAL", `unknown encoding '${encoding}'`, { syscall, path });
    }
    return utf8.encode(data);
  }
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new FsError("EINVAL", "data must be a string, Uint8Array, TypedArray or ArrayBuffer", { syscall, path });
}

export type WriteOptions = string | { encoding?: string | null; mode?: number | string; flag?: string } | null | undefined;

export class VolumeWriter {
  private readonly vol: Volume;

  constructor(vol: Volume) {
    this.vol = vol;
  }

  /**
   * Run fn as one transaction under the metadata lock. On ENOSPC while inodegc still holds
   * freed-but-unreclaimed space, the lanes are drained and fn runs once more in a new
   * transaction (sched/inodegc.ts retryIfReclaimable) — so fn must be safe to rerun after
   * an ENOSPC: ops.ts undoes what a failed create/link/rename took, writeFile and truncate
   * set a whole state. Callers whose failure keeps partial effects pass retry false.
   */
  txn<T>(syscall: string, path: string | undefined, fn: (h: Handle) => Promise<T>, retry = true): Promise<T> {
    // One async frame on the way to fn (once): this runs for every operation, and each
    // wrapper (lock, retry) cost a promise and a turn even when it had nothing to do.
    const first = this.once(syscall, path, fn);
    return retry ? first.catch((e: unknown) => retryIfReclaimable(this.vol, e, () => this.once(syscall, path, fn))) : first;
  }

  /** One attempt of txn: fn in a new handle under metaLock, stopped before the lock is released. */
  private async once<T>(syscall: string, path: string | undefined, fn: (h: Handle) => Promise<T>): Promise<T> {
    const vol = this.vol;
    vol.assertMounted(syscall, path);
    if (vol.readOnly) throw new FsError("EROFS", "read-only volume", { syscall, path });
    const h = new CacheHandle(vol.cache);
    const unlock = vol.metaLock.tryLock() ?? (await vol.metaLock.lock());
    let out: T;
    try {
      out = await fn(h);
    } finally {
      try {
        const stopped = h.stop();
        if (stopped) await stopped;
        const written = vol.maybeWriteback();
        if (written) await written;
      } finally {
        unlock();
      }
    }
    // Backpressure from inodegc is waited for here, once metaLock is free for its worker.
    const owed = vol.writeParts.settle(h);
    if (owed) await owed;
    return out;
  }

  async mkdir(path: string, options?: { recursive?: boolean; mode?: number | string } | number): Promise<string | undefined> {
    checkPath(path, "mkdir");
    const o = typeof options === "number" ? { mode: options } : options ?? {};
    const mode = checkMode(o.mode, "mkdir", path);
    const perm = (mode < 0 ? 0o777 : mode) & ~this.vol.umask;
    if (!o.recursive) {
      await this.txn("mkdir", path, (h) => this.vol.ops.create(h, path, { mode: S_IFDIR | perm }, "mkdir"));
      return undefined;
    }
    // Recursive: create each missing component; returns the first one created (Node).
    const parts = path.split("/").filter((p) => p !== "" && p !== ".");

    let cur = "";
    let first: string | undefined;
    for (const part of parts) {
      // Like mkdir -p on Linux: parents before a too-long name are created, then it fails.
      if (utf8.encode(part).length > 255) throw new FsError("ENAMETOOLONG", "name longer than 255 bytes", { syscall: "mkdir", path });
      cur += "/" + part;
      const st = await this.vol.stat(cur).catch((e) => {
        if (e instanceof FsError && e.code === "ENOENT") return undefined;
        throw e;
      });
      const last = cur === "/" + parts.join("/");
      if (st) {
        if (!st.isDirectory()) {
          throw new FsError(last ? "EEXIST" : "ENOTDIR", last ? "file already exists" : "not a directory", { syscall: "mkdir", path });
        }
        continue;
      }
      // Missing as followed, but present itself: a dangling symlink (Node: ENOENT).
      if (await this.vol.lstat(cur).then(() => true, () => false)) {
        throw new FsError("ENOENT", "no such file or directory (dangling symbolic link)", { syscall: "mkdir", path });
      }
      const here = cur;
      await this.txn("mkdir", path, (h) => this.vol.ops.create(h, here, { mode: S_IFDIR | perm }, "mkdir")).catch((e) => {
        if (!(e instanceof FsError && e.code === "EEXIST")) throw e;
      });
      first ??= cur;
    }
    return first;
  }

  /** Replace (or create) a file's whole content. */
  async writeFile(path: string, data: unknown, options?: WriteOptions): Promise<void> {
    checkPath(path, "open");
    const o = typeof options === "string" ? { encoding: options } : options ?? {};
    const bytes = toBytes(data, o.encoding ?? undefined, "write", path);
    const mode = checkMode(o.mode, "open", path);
    const flag = o.flag ?? "w";
    if (flag.startsWith("a")) return this.appendFile(path, bytes, o);
    await this.txn("open", path, (h) => this.replaceContent(h, path, bytes, mode < 0 ? 0o666 : mode, flag.includes("x")));
  }

  /**
   * writeFile, then chown + chmod + utimes, as ONE transaction: what a tree copy does for
   * every small file (bindings/node-copyin.ts), at the cost of one path walk and one
   * inode save instead of four. The result is the same as the four calls in a row: owner,
   * then all of mode's permission bits (setuid/setgid/sticky included, no umask — it is a
   * chmod), then the times; ctime is now. For callers inside the package, reached through
   * writerOf(); not part of the public Volume API.
   */
  async writeFileWithAttrs(path: string, data: Uint8Array | ContentProducer, attrs: { mode: number; uid: number; gid: number; atime: bigint; mtime: bigint }): Promise<void> {
    checkPath(path, "open");
    const perm = checkMode(attrs.mode, "chmod", path);
    for (const [n, v] of [["uid", attrs.uid], ["gid", attrs.gid]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new FsError("EINVAL", `bad ${n} ${v}`, { syscall: "chown", path });
    }
    const a = toTime(attrs.atime, "utime", path);
    const m = toTime(attrs.mtime, "utime", path);
    try {
      await this.txn("open", path, (h) =>
        this.replaceContent(h, path, data, perm, false, (s) => {
          s.fields.uid = attrs.uid >>> 0;
          s.fields.gid = attrs.gid >>> 0;
          s.fields.mode = (s.fields.mode & 0o170000) | perm;
          s.fields.atime = a;
          s.fields.mtime = m;
        }),
      );
    } catch (e) {
      // What Volume's public methods do at their edge: only FsErrors leave, with a path.
      throw wrapUnknown(e, "open", path);
    }
  }

  /**
   * Inside a transaction: open (creating) path, replace its content, apply `then`, save.
   * `content` is the bytes, or a producer handing over the runs that are not holes (see
   * ContentProducer) — each run goes from the producer's buffer straight to newly
   * allocated blocks, so a file of any size passes through neither the block cache nor
   * the delayed-allocation buffers. A producer may be called again from the start when
   * the transaction is retried after an ENOSPC (txn → retryAfterReclaim).
   */
  private async replaceContent(h: Handle, path: string, content: Uint8Array | ContentProducer, mode: number, exclusive: boolean, then?: (s: WState) => void): Promise<void> {
    const s = await this.openForWrite(h, path, mode, exclusive);
    this.vol.fileData.discard(s.ino);
    await this.vol.fileData.truncate(h, s, 0);
    const t = nowTime();
    s.fields.mtime = t;
    s.fields.ctime = t;
    try {
      // writeNew grows the size as extents land, so a failure (ENOSPC) leaves the file
      // truncated-then-partly-written, like open(O_TRUNC) + a short write.
      if (typeof content !== "function") {
        if (content.length) await this.vol.fileData.writeNew(h, s, 0, content, true);
        s.fields.size = content.length;
      } else {
        s.fields.size = await this.produce(h, s, path, content);
      }
      then?.(s);
    } finally {
      await s.save(this.vol, h);
    }
  }

  /** Run a ContentProducer into the empty file s (caller holds the transaction); → size. */
  private async produce(h: Handle, s: WState, path: string, producer: ContentProducer): Promise<number> {
    const bs = this.vol.blockSize;
    // An extent maps 32-bit logical block numbers.
    const maxSize = 2 ** 32 * bs;
    // Where the next run may start: runs come in order, and one ending inside a block
    // takes all of it (writeNew zero-pads it).
    let next = 0;
    const bad = (why: string) => new FsError("EINVAL", `content producer: ${why}`, { syscall: "write", path });
    const size = await producer(async (pos, bytes) => {
      if (!Number.isSafeInteger(pos) || pos < next || pos % bs !== 0) throw bad(`run at ${pos} is out of order or not block-aligned`);
      if (bytes.length === 0) return;
      if (pos + bytes.length > maxSize) throw new FsError("EFBIG", "file too large", { syscall: "write", path });
      await this.vol.fileData.writeNew(h, s, pos / bs, bytes, true);
      next = Math.ceil((pos + bytes.length) / bs) * bs;
    });
    // The size may end in a trailing hole, never before data that was written.
    if (!Number.isSafeInteger(size) || size < s.fields.size || size > maxSize) throw bad(`size ${size} does not cover the data written`);
    return size;
  }

  async appendFile(path: string, data: unknown, options?: WriteOptions): Promise<void> {
    checkPath(path, "open");
    const o = typeof options === "string" ? { encoding: options } : options ?? {};
    const bytes = toBytes(data, o.encoding ?? undefined, "write", path);
    const mode = checkMode(o.mode, "open", path);
    // No ENOSPC retry: a failed append keeps what reached disk, a rerun would repeat it.
    await this.txn("open", path, async (h) => {
      const s = await this.openForWrite(h, path, mode < 0 ? 0o666 : mode, false);
      const oldSize = s.fields.size;
      const t = nowTime();
      s.fields.mtime = t;
      s.fields.ctime = t;
      try {
        await this.vol.fileData.buffer(s, oldSize, bytes);
        await this.vol.fileData.writeback(h, s);
      } catch (e) {
        // Keep only what reached disk: the size ends at the last block that got mapped.
        this.vol.fileData.discard(s.ino);
        s.fields.size = await this.vol.fileData.mappedEnd(s, oldSize, oldSize + bytes.length);
        throw e;
      } finally {
        await s.save(this.vol, h);
      }
    }, false);
  }

  /**
   * The regular file at path for writing, created (mode) when missing. Inside h, under
   * metaLock. A path whose walk needs no I/O (Namei.lookupResident) goes straight to the
   * create or the open, without the waiting walk's promise.
   */
  openForWrite(h: Handle, path: string, mode: number, exclusive: boolean, depth = 0): Promise<WState> {
    if (!exclusive) {
      let found;
      try {
        found = this.vol.namei.lookupResident(path, true);
      } catch (e) {
        return Promise.reject(e);
      }
      if (found?.inode) return this.openExisting(found.inode, path);
      if (found?.parent) return this.vol.ops.createAt(h, found.parent, path, { mode: S_IFREG | (mode & 0o7777 & ~this.vol.umask) }, "open", found.name);
    }
    return this.openForWriteWaiting(h, path, mode, exclusive, depth);
  }

  /** openForWrite of an existing inode: a regular file's state, or the error open(2) gives. */
  private async openExisting(inode: Inode, path: string): Promise<WState> {
    if (inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "open", path });
    if (!inode.isReg) throw new FsError("EINVAL", "not a regular file", { syscall: "open", path });
    return WState.load(this.vol, inode.ino);
  }

  /** openForWrite through the waiting path walk (symlinks, '..', blocks to read, O_EXCL). */
  private async openForWriteWaiting(h: Handle, path: string, mode: number, exclusive: boolean, depth: number): Promise<WState> {
    if (exclusive) {
      // O_EXCL never follows a final symlink: anything there at all is EEXIST.
      const there = await this.vol.lstat(path).then(() => true, (e) => {
        if (e instanceof FsError && e.code === "ENOENT") return false;
        throw e;
      });
      if (there) throw new FsError("EEXIST", "file already exists", { syscall: "open", path });
      return this.vol.ops.create(h, path, { mode: S_IFREG | (mode & 0o7777 & ~this.vol.umask) }, "open");
    }
    // A miss is the common case here (every new file), so probe without an exception.
    const { inode, danglingLast, parent } = await this.vol.namei.lookup(path, true, "open", true);
    if (!inode) {
      // O_CREAT through a dangling symlink creates the link's target (as Linux does).
      if (danglingLast) {
        if (depth >= 40) throw new FsError("ELOOP", "too many levels of symbolic links", { syscall: "open", path });
        const target = await this.vol.readlink(path);
        const base = path.replace(/\/+$/, "");
        const dir = base.slice(0, base.lastIndexOf("/")) || "/";
        const next = target.startsWith("/") ? target : `${dir === "/" ? "" : dir}/${target}`;
        return this.openForWrite(h, next, mode, false, depth + 1);
      }
    }
    if (inode) {
      if (exclusive) throw new FsError("EEXIST", "file already exists", { syscall: "open", path });
      return this.openExisting(inode, path);
    }
    const o = { mode: S_IFREG | (mode & 0o7777 & ~this.vol.umask) };
    // The walk stopped at the parent, inside this transaction: create there directly.
    if (parent) return this.vol.ops.createAt(h, parent, path, o, "open");
    return this.vol.ops.create(h, path, o, "open");
  }

  unlink(path: string): Promise<void> {
    checkPath(path, "unlink");
    return this.txn("unlink", path, (h) => this.vol.ops.unlink(h, path));
  }

  rmdir(path: string): Promise<void> {
    checkPath(path, "rmdir");
    return this.txn("rmdir", path, (h) => this.vol.ops.rmdir(h, path));
  }

  /** rm: files, or with recursive whole trees; force ignores a missing path. */
  async rm(path: string, options: { recursive?: boolean; force?: boolean } = {}): Promise<void> {
    checkPath(path, "rm");
    const st = await this.vol.lstat(path).catch((e) => {
      if (options.force && e instanceof FsError && e.code === "ENOENT") return undefined;
      throw e;
    });
    if (!st) return;
    if (!st.isDirectory()) return this.unlink(path);
    if (!options.recursive) throw new FsError("EISDIR", "is a directory (use recursive)", { syscall: "rm", path });
    // Depth-first with an explicit stack: memory stays bounded by the tree's depth × width.
    const stack: { path: string; entered: boolean }[] = [{ path, entered: false }];
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.entered) {
        stack.pop();
        await this.rmdir(top.path);
        continue;
      }
      top.entered = true;
      for (const e of await this.vol.readdir(top.path, { withFileTypes: true })) {
        const child = top.path.endsWith("/") ? top.path + e.name : `${top.path}/${e.name}`;
        if (e.isDirectory()) stack.push({ path: child, entered: false });
        else await this.unlink(child);
      }
    }
  }

  rename(oldPath: string, newPath: string): Promise<void> {
    checkPath(oldPath, "rename");
    checkPath(newPath, "rename");
    return this.txn("rename", oldPath, (h) => this.vol.ops.rename(h, oldPath, newPath));
  }

  link(existing: string, newPath: string): Promise<void> {
    checkPath(existing, "link");
    checkPath(newPath, "link");
    return this.txn("link", existing, (h) => this.vol.ops.link(h, existing, newPath));
  }

  async symlink(target: string, path: string): Promise<void> {
    checkPath(path, "symlink");
    if (typeof target !== "string") throw new FsError("EINVAL", "target must be a string", { syscall: "symlink", path });
    const bytes = utf8.encode(target);
    if (bytes.length === 0) throw new FsError("ENOENT", "empty symlink target", { syscall: "symlink", path });
    if (bytes.length >= 4096 || bytes.includes(0)) throw new FsError("ENAMETOOLONG", "symlink target too long", { syscall: "symlink", path });
    await this.txn("symlink", path, (h) => this.vol.ops.create(h, path, { mode: S_IFLNK | 0o777 }, "symlink", bytes));
  }

  /**
   * mknod(2): a FIFO, socket, character or block device (type 0 means a regular file)
   * at path, permission bits less the umask. rdev, in Linux's dev_t layout (what
   * stat().rdev reports), is kept for devices only. Takes metaLock.
   */
  async mknod(path: string, mode: number, rdev = 0): Promise<void> {
    checkPath(path, "mknod");
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o177777) throw new FsError("EINVAL", `bad mode ${String(mode)}`, { syscall: "mknod", path });
    const type = (mode & S_IFMT) || S_IFREG;
    // As Linux: a directory is EPERM (mkdir is the way), anything else unknown EINVAL.
    if (type === S_IFDIR) throw new FsError("EPERM", "mknod cannot make a directory", { syscall: "mknod", path });
    if (!([S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK] as number[]).includes(type)) throw new FsError("EINVAL", `bad file type in mode 0o${mode.toString(8)}`, { syscall: "mknod", path });
    // ext4 keeps at most a 12-bit major and a 20-bit minor: dev_t values past 32 bits do not fit.
    if (!Number.isSafeInteger(rdev) || rdev < 0 || rdev > 0xffffffff) throw new FsError("EINVAL", `bad device number ${String(rdev)}`, { syscall: "mknod", path });
    const perm = mode & 0o7777 & ~this.vol.umask;
    await this.txn("mknod", path, async (h) => {
      const s = await this.vol.ops.create(h, path, { mode: type | perm }, "mknod");
      if (type === S_IFREG) return;
      // Special inodes have no extent tree (e2fsck rejects one); i_block holds the
      // device number, or nothing.
      s.fields.flags = (s.fields.flags & ~extentsFlag(this.vol)) >>> 0;
      s.iblock.fill(0);
      if (type === S_IFCHR || type === S_IFBLK) encodeDevice(s.iblock, rdev);
      await s.save(this.vol, h);
    });
  }

  chmod(path: string, mode: number | string): Promise<void> {
    checkPath(path, "chmod");
    const m = checkMode(mode, "chmod", path);
    if (m < 0) throw new FsError("EINVAL", "mode is required", { syscall: "chmod", path });
    return this.txn("chmod", path, (h) => this.vol.ops.setattr(h, path, true, { mode: m }, "chmod"));
  }

  chown(path: string, uid: number, gid: number, follow = true): Promise<void> {
    checkPath(path, "chown");
    for (const [n, v] of [["uid", uid], ["gid", gid]] as const) {
      if (!Number.isInteger(v) || v < -1 || v > 0xffffffff) throw new FsError("EINVAL", `bad ${n} ${v}`, { syscall: "chown", path });
    }
    return this.txn("chown", path, (h) => this.vol.ops.setattr(h, path, follow, { uid, gid }, "chown"));
  }

  utimes(path: string, atime: unknown, mtime: unknown, follow = true): Promise<void> {
    checkPath(path, "utime");
    const a = toTime(atime, "utime", path);
    const m = toTime(mtime, "utime", path);
    return this.txn("utime", path, (h) => this.vol.ops.setattr(h, path, follow, { atime: a, mtime: m }, "utime"));
  }

  truncate(path: string, len = 0): Promise<void> {
    checkPath(path, "open");
    if (!Number.isSafeInteger(len) || len < 0) throw new FsError("EINVAL", `bad length ${len}`, { syscall: "truncate", path });
    return this.txn("open", path, async (h) => {
      const inode = await this.vol.namei.resolve(path, true, "open", true);
      if (inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "truncate", path });
      const s = await WState.load(this.vol, inode.ino);
      await this.vol.fileData.writeback(h, s);
      // Direct I/O of another handle may be in flight: none may land on a freed block.
      await quiesceForFree(this.vol, h, s);
      await this.vol.fileData.truncate(h, s, len);
      const t = nowTime();
      s.fields.mtime = t;
      s.fields.ctime = t;
      await s.save(this.vol, h);
    });
  }
}

/**
 * A device number into i_block the way Linux stores it: the old 16-bit form in word 0
 * when major and minor both fit in 8 bits, else word 0 zero and the new 32-bit form in
 * word 1 (minor's low byte, major, then minor's upper 12 bits — the dev_t layout).
 */
function encodeDevice(iblock: Uint8Array, rdev: number): void {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  const dv = new DataView(iblock.buffer, iblock.byteOffset, iblock.byteLength);
  if (major < 256 && minor < 256) dv.setUint32(0, (major << 8) | minor, true);
  else dv.setUint32(4, ((minor & 0xff) | (major << 8) | ((minor & 0xfff00) << 12)) >>> 0, true);
}

/**
 * The VolumeWriter behind a mounted Volume, for package-internal fast paths (copyIn);
 * undefined for anything else that merely has the Volume API's shape.
 */
export function writerOf(vol: unknown): VolumeWriter | undefined {
  const w = (vol as { writer?: unknown } | null)?.writer;
  return w instanceof VolumeWriter ? w : undefined;
}
