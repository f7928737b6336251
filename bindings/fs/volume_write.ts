/**
 * The write side of the Volume API (node:fs/promises shape): mkdir, writeFile,
 * appendFile, unlink, rmdir, rm, rename, link, symlink, chmod, chown, utimes, truncate,
 * plus sync and the read-write parts of mount/unmount.
 *
 * Every call takes the volume's metadata lock for its whole transaction (ops.ts explains
 * the order inside one), opens a Handle, and stops it before the lock is released.
 * Argument validation happens first, outside the lock, with Node's error codes.
 */
import { FsError } from "./errors.ts";
import { CacheHandle, type Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import { WState, nowTime } from "./wstate.ts";
import { quiesceForFree } from "./treeseq.ts";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
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

  /** Run fn as one transaction under the metadata lock. */
  async txn<T>(syscall: string, path: string | undefined, fn: (h: Handle) => Promise<T>): Promise<T> {
    const vol = this.vol;
    vol.assertMounted(syscall, path);
    if (vol.readOnly) throw new FsError("EROFS", "read-only volume", { syscall, path });
    const h = new CacheHandle(vol.cache);
    const out = await vol.metaLock.run(async () => {
      try {
        return await fn(h);
      } finally {
        await h.stop();
        await vol.maybeWriteback();
      }
    });
    // Backpressure from inodegc is waited for here, once metaLock is free for its worker.
    await vol.writeParts.settle(h);
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
    await this.txn("open", path, async (h) => {
      const s = await this.openForWrite(h, path, mode < 0 ? 0o666 : mode, flag.includes("x"));
      this.vol.fileData.discard(s.ino);
      await this.vol.fileData.truncate(h, s, 0);
      const t = nowTime();
      s.fields.mtime = t;
      s.fields.ctime = t;
      try {
        // writeNew grows the size as extents land, so a failure (ENOSPC) leaves the file
        // truncated-then-partly-written, like open(O_TRUNC) + a short write.
        if (bytes.length) await this.vol.fileData.writeNew(h, s, 0, bytes, true);
        s.fields.size = bytes.length;
      } finally {
        await s.save(this.vol, h);
      }
    });
  }

  async appendFile(path: string, data: unknown, options?: WriteOptions): Promise<void> {
    checkPath(path, "open");
    const o = typeof options === "string" ? { encoding: options } : options ?? {};
    const bytes = toBytes(data, o.encoding ?? undefined, "write", path);
    const mode = checkMode(o.mode, "open", path);
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
    });
  }

  /** The regular file at path for writing, created (mode) when missing. */
  async openForWrite(h: Handle, path: string, mode: number, exclusive: boolean, depth = 0): Promise<WState> {
    if (exclusive) {
      // O_EXCL never follows a final symlink: anything there at all is EEXIST.
      const there = await this.vol.lstat(path).then(() => true, (e) => {
        if (e instanceof FsError && e.code === "ENOENT") return false;
        throw e;
      });
      if (there) throw new FsError("EEXIST", "file already exists", { syscall: "open", path });
      return this.vol.ops.create(h, path, { mode: S_IFREG | (mode & 0o7777 & ~this.vol.umask) }, "open");
    }
    const inode = await this.vol.namei.resolve(path, true, "open", true).catch((e) => {
      if (e instanceof FsError && e.code === "ENOENT") return undefined;
      throw e;
    });
    if (!inode) {
      // O_CREAT through a dangling symlink creates the link's target (as Linux does).
      const link = await this.vol.lstat(path).catch(() => undefined);
      if (link?.isSymbolicLink()) {
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
      if (inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "open", path });
      if (!inode.isReg) throw new FsError("EINVAL", "not a regular file", { syscall: "open", path });
      return WState.load(this.vol, inode.ino);
    }
    return this.vol.ops.create(h, path, { mode: S_IFREG | (mode & 0o7777 & ~this.vol.umask) }, "open");
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
