/**
 * Namespace operations: create, mkdir, symlink, link, unlink, rmdir, rename, setattr.
 *
 * Each operation is one transaction (a Handle from begin() to stop()) under the volume's
 * metadata lock, so operations never interleave half-way. The order inside each follows
 * one rule, so that an error (ENOSPC above all) leaves the volume consistent: first
 * everything that can fail for lack of space (inode, directory entry, blocks), undoing
 * what was taken if a later step fails; then the changes that cannot fail (link counts,
 * times); then save every inode touched.
 *
 * Engine pieces come in through `WriteParts` (allocator, extent tree, directory writer),
 * so this file is only about the order of operations and POSIX semantics:
 *   - names: empty, '.', '..' where a new name is needed → EEXIST/EINVAL; '/' or NUL → EINVAL;
 *     over 255 bytes → ENAMETOOLONG;
 *   - link counts: a directory has 2 + its subdirectories (dir_nlink: past 65,000 the
 *     count is pinned to 1, meaning "many"); files count their names;
 *   - rename replaces its target atomically, refuses a directory into its own subtree
 *     (EINVAL), a directory over a non-directory (ENOTDIR) and vice versa (EISDIR), a
 *     directory over a non-empty one (ENOTEMPTY).
 */
import { FsError } from "./errors.ts";
import type { Handle } from "../journal/handle.ts";
import type { Volume } from "./volume.ts";
import type { Inode } from "./inode.ts";
import { WState, extentsFlag, nowTime } from "./wstate.ts";
import { quiesceForFree } from "./treeseq.ts";
import { Missing } from "../cache.ts";
import { nameBytes } from "./namei.ts";

export const FT = { REG: 1, DIR: 2, CHR: 3, BLK: 4, FIFO: 5, SOCK: 6, LNK: 7 } as const;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const LINK_MAX = 65000;
const utf8 = new TextEncoder();

/** Directory writer, allocator and extent tree as this file needs them (see wiring.ts). */
export interface WriteParts {
  allocInode(h: Handle, parentIno: number, isDir: boolean): Promise<number>;
  /** allocInode without waiting: 0 (nothing done) when it would have to wait. */
  allocInodeResident(h: Handle, parentIno: number, isDir: boolean): number;
  freeInode(h: Handle, ino: number, isDir: boolean): Promise<void>;
  /** Free every block of the file past `fromLblk` (extent tree remove). */
  truncateBlocks(h: Handle, s: WState, fromLblk: number): Promise<void>;
  /** Write a small symlink target into a new data block of s. */
  writeSmallData(h: Handle, s: WState, data: Uint8Array): Promise<void>;
  addEntry(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): Promise<void>;
  /** addEntry without waiting: false (nothing done) when it would have to wait or grow the directory. */
  addEntryResident(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): boolean;
  removeEntry(h: Handle, dir: WState, name: Uint8Array): Promise<number>;
  replaceEntry(h: Handle, dir: WState, name: Uint8Array, ino: number, fileType: number): Promise<number>;
  setDotDot(h: Handle, dir: WState, parentIno: number): Promise<void>;
  isEmpty(dir: WState): Promise<boolean>;
  initDirectory(h: Handle, dir: WState, selfIno: number, parentIno: number): Promise<void>;
  /** Inodes with open handles (their blocks stay until the last close). */
  isOpen(ino: number): boolean;
  /** Put an unlinked-but-open inode on the orphan list. */
  addOrphan(h: Handle, s: WState): Promise<void>;
  /** Queue a closed inode with no links for background freeing (true), or not (false: free now). */
  deferRelease(h: Handle, s: WState): Promise<boolean>;
}

export function fileTypeOf(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return FT.REG;
    case S_IFDIR: return FT.DIR;
    case S_IFLNK: return FT.LNK;
    case 0o020000: return FT.CHR;
    case 0o060000: return FT.BLK;
    case 0o010000: return FT.FIFO;
    case 0o140000: return FT.SOCK;
    default: return 0;
  }
}

/** Split a path into its parent path and last name, validating the name. */
export function splitPath(path: string, syscall: string): { parent: string; name: string; bytes: Uint8Array } {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  const name = trimmed.slice(i + 1);
  const parent = i <= 0 ? "/" : trimmed.slice(0, i);
  if (name === "" ) throw new FsError(trimmed === "" ? "EEXIST" : "EINVAL", "path names no entry", { syscall, path });
  if (name === "." || name === "..") throw new FsError("EINVAL", `'${name}' cannot be created or removed`, { syscall, path });
  if (name.includes("\0")) throw new FsError("EINVAL", "name contains a NUL byte", { syscall, path });
  const bytes = nameBytes(name);
  if (bytes.length > 255) throw new FsError("ENAMETOOLONG", "name longer than 255 bytes", { syscall, path });
  return { parent, name, bytes };
}

export interface NewInodeOptions {
  mode: number;
  uid?: number;
  gid?: number;
}

export class Ops {
  private readonly vol: Volume;
  private readonly parts: WriteParts;

  constructor(vol: Volume, parts: WriteParts) {
    this.vol = vol;
    this.parts = parts;
  }

  /** The parent directory of path, loaded for writing, and the validated last name. */
  private async parentOf(path: string, syscall: string): Promise<{ dir: WState; name: Uint8Array; text: string }> {
    // The parent is resolved before the name is judged, so a bad parent wins (ENOTDIR,
    // ENOENT) over a bad name (ENAMETOOLONG), as in Linux.
    const trimmed = path.replace(/\/+$/, "");
    const i = trimmed.lastIndexOf("/");
    const inode = await this.vol.namei.resolve(i <= 0 ? "/" : trimmed.slice(0, i), true, syscall, true);
    if (!inode.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall, path });
    const { name, bytes } = splitPath(path, syscall);
    return { dir: await WState.load(this.vol, inode.ino), name: bytes, text: name };
  }

  private touch(s: WState, m = true): void {
    const t = nowTime();
    s.fields.ctime = t;
    if (m) s.fields.mtime = t;
  }

  private incLinks(s: WState): void {
    if (s.isDir && s.fields.nlink >= LINK_MAX - 1) s.fields.nlink = 1; // dir_nlink: "many"
    else if (!(s.isDir && s.fields.nlink === 1)) s.fields.nlink++;
  }

  private decLinks(s: WState): void {
    if (s.isDir && s.fields.nlink === 1) return; // still "many" (dir_nlink)
    if (s.fields.nlink > 0) s.fields.nlink--;
  }

  /** The state of new inode `ino` of the given mode (allocated, not yet saved or linked). */
  private newInode(ino: number, o: NewInodeOptions, fastSymlink = false): WState {
    const isDir = (o.mode & S_IFMT) === S_IFDIR;
    const t = nowTime();
    // A fast symlink keeps its target in i_block itself, so it has no extent root.
    const extents = this.vol.sb.has("extent") && !fastSymlink;
    const flags = extents ? extentsFlag(this.vol) : 0;
    const iblock = new Uint8Array(60);
    if (extents) {
      // An empty extent root: magic 0xf30a, 0 entries, room for 4, depth 0 (little-endian
      // bytes: a DataView would move this small array off the JS heap).
      iblock[0] = 0x0a;
      iblock[1] = 0xf3;
      iblock[4] = 4;
    }
    const s = new WState(
      ino,
      {
        mode: o.mode, uid: o.uid ?? 0, gid: o.gid ?? 0, size: 0, nlink: isDir ? 2 : 1, flags,
        blocks512: 0, atime: t, mtime: t, ctime: t, crtime: t,
        generation: (Math.random() * 2 ** 32) >>> 0, dtime: 0,
      },
      iblock,
      undefined,
      true,
    );
    return s;
  }

  /** Undo an inode taken by a failed operation: mark it deleted and free it. */
  private async dropInode(h: Handle, s: WState): Promise<void> {
    s.fields.nlink = 0;
    s.fields.dtime = nowTime()[0];
    await s.saveQuietly(this.vol, h);
    await this.parts.freeInode(h, s.ino, s.isDir);
  }

  /** Create a file, directory or symlink at path. Returns the new inode's state. */
  async create(h: Handle, path: string, o: NewInodeOptions, syscall: string, symlinkTarget?: Uint8Array): Promise<WState> {
    const { dir, name } = await this.parentOf(path, syscall);
    if (await this.vol.dirs.lookup(dir.asInode(), name)) throw new FsError("EEXIST", "file already exists", { syscall, path });
    return this.createIn(h, dir, name, path, o, syscall, symlinkTarget);
  }

  /**
   * create() for a caller that has just seen path's last name missing from `parent`
   * (Namei.lookup's `parent`) in this same transaction, under the metadata lock, so the
   * name is still absent: the path walk and the directory lookup are not repeated.
   * `name`, when given, is that last name's bytes, already validated by the walk.
   */
  createAt(h: Handle, parent: Inode, path: string, o: NewInodeOptions, syscall: string, name?: Uint8Array): Promise<WState> {
    let dir: WState | Missing;
    let bytes: Uint8Array;
    try {
      if (!parent.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall, path });
      // `name`: path's last name as the walk validated it (Namei.lookupResident).
      bytes = name ?? splitPath(path, syscall).bytes;
      dir = WState.loadResident(this.vol, parent.ino);
    } catch (e) {
      return Promise.reject(e); // failures arrive as rejections, as from an async function
    }
    if (dir instanceof Missing) return WState.load(this.vol, parent.ino).then((d) => this.createIn(h, d, bytes, path, o, syscall));
    return this.createIn(h, dir, bytes, path, o, syscall);
  }

  /**
   * The body of every create. Each step is first tried without waiting (allocInodeResident,
   * addEntryResident, a save into a resident inode-table block) and only done the
   * waiting way when that declines — a create in a cached directory then awaits nothing
   * here. The order and the undo on failure are the same either way.
   */
  private async createIn(h: Handle, dir: WState, name: Uint8Array, path: string, o: NewInodeOptions, syscall: string, symlinkTarget?: Uint8Array): Promise<WState> {
    const isDir = (o.mode & S_IFMT) === S_IFDIR;
    if (isDir && dir.fields.nlink >= LINK_MAX && !this.vol.sb.has("dir_nlink")) {
      throw new FsError("EMLINK", "too many subdirectories", { syscall, path });
    }
    const ino = this.parts.allocInodeResident(h, dir.ino, isDir) || (await this.parts.allocInode(h, dir.ino, isDir));
    const s = this.newInode(ino, o, symlinkTarget !== undefined && symlinkTarget.length < 60);
    try {
      if (isDir) await this.parts.initDirectory(h, s, s.ino, dir.ino);
      if (symlinkTarget) {
        if (symlinkTarget.length < 60) {
          s.iblock.fill(0);
          s.iblock.set(symlinkTarget);
        } else {
          await this.parts.writeSmallData(h, s, symlinkTarget);
        }
        s.fields.size = symlinkTarget.length;
      }
      const ft = fileTypeOf(o.mode);
      if (!this.parts.addEntryResident(h, dir, name, s.ino, ft)) await this.parts.addEntry(h, dir, name, s.ino, ft);
    } catch (e) {
      if (isDir || symlinkTarget) await this.parts.truncateBlocks(h, s, 0).catch(() => {});
      await this.dropInode(h, s);
      // The directory may have grown a block before the failure: keep its inode in step.
      await dir.saveQuietly(this.vol, h);
      throw e;
    }
    if (isDir) this.incLinks(dir);
    this.touch(dir);
    const saved = s.save(this.vol, h);
    if (saved instanceof Promise) await saved;
    const dirSaved = dir.save(this.vol, h);
    if (dirSaved instanceof Promise) await dirSaved;
    return s;
  }

  /** Add a name for an existing non-directory. */
  async link(h: Handle, existing: string, newPath: string): Promise<void> {
    const target = await this.vol.namei.resolve(existing, false, "link", true);
    const { dir, name } = await this.parentOf(newPath, "link");
    if (await this.vol.dirs.lookup(dir.asInode(), name)) throw new FsError("EEXIST", "file already exists", { syscall: "link", path: existing, dest: newPath });
    if (target.isDir) throw new FsError("EPERM", "hard links to directories are not allowed", { syscall: "link", path: existing, dest: newPath });
    if (target.nlink >= LINK_MAX) throw new FsError("EMLINK", "too many links", { syscall: "link", path: existing, dest: newPath });
    const s = await WState.load(this.vol, target.ino);
    try {
      await this.parts.addEntry(h, dir, name, s.ino, fileTypeOf(s.fields.mode));
    } catch (e) {
      await dir.saveQuietly(this.vol, h);
      throw e;
    }
    this.incLinks(s);
    this.touch(s, false);
    this.touch(dir);
    await s.save(this.vol, h);
    await dir.save(this.vol, h);
  }

  /**
   * Drop one link of s (already removed from its directory). The last link of a closed
   * inode frees it now; of an open one, puts it on the orphan list until the last close.
   */
  private async dropLink(h: Handle, s: WState): Promise<void> {
    if (s.isDir) s.fields.nlink = 0;
    else this.decLinks(s);
    this.touch(s, false);
    if (s.fields.nlink > 0) {
      await s.save(this.vol, h);
      return;
    }
    if (this.parts.isOpen(s.ino)) {
      await this.parts.addOrphan(h, s);
      await s.save(this.vol, h);
      return;
    }
    if (await this.parts.deferRelease(h, s)) return;
    await this.release(h, s);
  }

  /** Free an inode with no links and no open handles: its blocks, then the inode. */
  async release(h: Handle, s: WState): Promise<void> {
    const fast = (s.fields.mode & S_IFMT) === S_IFLNK && s.fields.size < 60 && s.fields.blocks512 === 0;
    // A direct write still in flight (the last handle closed under it) must land first.
    if (!fast) await quiesceForFree(this.vol, h, s);
    if (!fast) await this.parts.truncateBlocks(h, s, 0);
    s.fields.size = 0;
    s.fields.nlink = 0;
    s.fields.dtime = nowTime()[0];
    await s.save(this.vol, h);
    await this.parts.freeInode(h, s.ino, s.isDir);
  }

  async unlink(h: Handle, path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path, "unlink");
    const ino = await this.vol.dirs.lookup(dir.asInode(), name);
    if (!ino) throw new FsError("ENOENT", "no such file or directory", { syscall: "unlink", path });
    const s = await WState.load(this.vol, ino);
    if (s.isDir) throw new FsError("EISDIR", "is a directory", { syscall: "unlink", path });
    await this.parts.removeEntry(h, dir, name);
    this.touch(dir);
    await dir.save(this.vol, h);
    await this.dropLink(h, s);
  }

  async rmdir(h: Handle, path: string): Promise<void> {
    const { dir, name } = await this.parentOf(path, "rmdir");
    const ino = await this.vol.dirs.lookup(dir.asInode(), name);
    if (!ino) throw new FsError("ENOENT", "no such file or directory", { syscall: "rmdir", path });
    const s = await WState.load(this.vol, ino);
    if (!s.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall: "rmdir", path });
    if (!(await this.parts.isEmpty(s))) throw new FsError("ENOTEMPTY", "directory not empty", { syscall: "rmdir", path });
    await this.parts.removeEntry(h, dir, name);
    this.decLinks(dir);
    this.touch(dir);
    await dir.save(this.vol, h);
    await this.dropLink(h, s);
  }

  /** Is `ino` the directory `ancestor` or below it? (walks '..' up to the root) */
  private async isWithin(ino: number, ancestor: number): Promise<boolean> {
    let cur = ino;
    for (let hops = 0; hops < 65536; hops++) {
      if (cur === ancestor) return true;
      if (cur === 2) return false;
      const parent = await this.vol.dirs.lookup(await this.vol.inodes.get(cur), utf8.encode(".."));
      if (!parent || parent === cur) return false;
      cur = parent;
    }
    throw new FsError("EFSCORRUPTED", "directory '..' chain does not reach the root", { syscall: "rename" });
  }

  async rename(h: Handle, oldPath: string, newPath: string): Promise<void> {
    const src = await this.parentOf(oldPath, "rename");
    const srcIno = await this.vol.dirs.lookup(src.dir.asInode(), src.name);
    if (!srcIno) throw new FsError("ENOENT", "no such file or directory", { syscall: "rename", path: oldPath, dest: newPath });
    const dst = await this.parentOf(newPath, "rename");
    const sameDir = src.dir.ino === dst.dir.ino;
    const dstDir = sameDir ? src.dir : dst.dir;
    const moving = await WState.load(this.vol, srcIno);
    if (moving.isDir && !sameDir && (await this.isWithin(dstDir.ino, srcIno))) {
      throw new FsError("EINVAL", "cannot move a directory into itself", { syscall: "rename", path: oldPath, dest: newPath });
    }
    const dstIno = await this.vol.dirs.lookup(dstDir.asInode(), dst.name);
    if (dstIno === srcIno) return; // same file (or hard links to it): nothing to do
    let victim: WState | undefined;
    if (dstIno) {
      victim = await WState.load(this.vol, dstIno);
      if (victim.isDir && (await this.isWithin(src.dir.ino, dstIno))) {
        // The target is an ancestor of the source: it cannot be empty.
        throw new FsError("ENOTEMPTY", "directory not empty", { syscall: "rename", path: oldPath, dest: newPath });
      }
      if (moving.isDir && !victim.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall: "rename", path: oldPath, dest: newPath });
      if (!moving.isDir && victim.isDir) throw new FsError("EISDIR", "is a directory", { syscall: "rename", path: oldPath, dest: newPath });
      if (victim.isDir && !(await this.parts.isEmpty(victim))) {
        throw new FsError("ENOTEMPTY", "directory not empty", { syscall: "rename", path: oldPath, dest: newPath });
      }
    }
    const ft = fileTypeOf(moving.fields.mode);
    // Space first: adding the new name is the only step that can need a block.
    try {
      if (victim) await this.parts.replaceEntry(h, dstDir, dst.name, srcIno, ft);
      else await this.parts.addEntry(h, dstDir, dst.name, srcIno, ft);
    } catch (e) {
      await dstDir.saveQuietly(this.vol, h);
      throw e;
    }
    await this.parts.removeEntry(h, src.dir, src.name);
    if (moving.isDir && !sameDir) {
      await this.parts.setDotDot(h, moving, dstDir.ino);
      this.decLinks(src.dir);
      this.incLinks(dstDir);
    }
    if (victim?.isDir) this.decLinks(dstDir);
    this.touch(moving, false);
    this.touch(src.dir);
    if (!sameDir) this.touch(dstDir);
    await moving.save(this.vol, h);
    await src.dir.save(this.vol, h);
    if (!sameDir) await dstDir.save(this.vol, h);
    if (victim) await this.dropLink(h, victim);
  }

  /** chmod / chown / utimes on the inode a path names. */
  async setattr(h: Handle, path: string, follow: boolean, change: { mode?: number; uid?: number; gid?: number; atime?: [number, number]; mtime?: [number, number] }, syscall: string): Promise<void> {
    const inode = await this.vol.namei.resolve(path, follow, syscall, true);
    const s = await WState.load(this.vol, inode.ino);
    if (change.mode !== undefined) s.fields.mode = (s.fields.mode & S_IFMT) | (change.mode & 0o7777);
    if (change.uid !== undefined && change.uid !== -1) s.fields.uid = change.uid >>> 0;
    if (change.gid !== undefined && change.gid !== -1) s.fields.gid = change.gid >>> 0;
    if (change.atime) s.fields.atime = change.atime;
    if (change.mtime) s.fields.mtime = change.mtime;
    this.touch(s, false);
    await s.save(this.vol, h);
  }
}
