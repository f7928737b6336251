/**
 * Path resolution: walking components from the root, following symbolic links.
 *
 * Rules (Linux's): a path is resolved from the volume root whether or not it starts with
 * '/'; empty components and '.' are skipped; '..' follows the directory's own '..' entry
 * (the root's is itself); a component longer than 255 bytes is ENAMETOOLONG; a
 * non-directory in the middle is ENOTDIR; a trailing '/' demands a directory. Symlinks in
 * the middle are always followed, the last one only when asked (stat vs lstat); absolute
 * targets restart at the root, relative ones at the link's directory; more than 40 links
 * in one resolution is ELOOP. Link targets are bytes: anything over 4095 bytes, or with a
 * NUL, is corruption.
 *
 * Names found are remembered per directory (dcache.ts), so the components every path
 * shares — "/big" of /big/f1 … /big/f50000 — are looked up once, not once per path.
 * Inodes and directory blocks are taken synchronously when resident (getResident,
 * lookupResident), so a walk through cached directories awaits nothing.
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import { readInodeData } from "./file.ts";
import { dcacheOf } from "./dcache.ts";
import { Missing } from "../cache.ts";

const MAX_SYMLINK_HOPS = 40;
const NAME_MAX = 255;
const PATH_MAX = 4096;
const ROOT_INO = 2;
const SLASH = 0x2f;
const utf8 = new TextEncoder();

/**
 * A path component's UTF-8 bytes. Most names are short ASCII, and for those a loop over
 * the characters beats a TextEncoder call (a trip into the runtime) several times over;
 * anything else goes to the TextEncoder. Any caller.
 */
export function nameBytes(name: string): Uint8Array {
  const n = name.length;
  if (n > 64) return utf8.encode(name);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x80) return utf8.encode(name);
    out[i] = c;
  }
  return out;
}

export class Namei {
  private readonly vol: Volume;

  constructor(vol: Volume) {
    this.vol = vol;
  }

  /**
   * The inode a path names; followLast: also follow a symlink in the last component.
   * locked: the caller holds metaLock (symlink targets are then read without waiting).
   */
  async resolve(path: string, followLast: boolean, syscall = "lstat", locked = false): Promise<Inode> {
    return (await this.walk(path, followLast, syscall, false, locked)).inode!;
  }

  /**
   * resolve without the ENOENT exception: `inode` is undefined when a component is
   * missing, and `danglingLast` tells whether that happened after following a symlink in
   * the last component (O_CREAT then creates the link's target). When only the last
   * component of `path` itself is missing, `parent` is the directory that lacks it (as
   * read during this walk — the caller holds the metadata lock if it will create it
   * there, so that no one can add the name meanwhile). For callers that expect
   * misses — every file a tree copy creates is one — building and catching an FsError
   * (stack capture included) costs more than the walk itself. Other errors still throw.
   */
  lookup(path: string, followLast: boolean, syscall = "lstat", locked = false): Promise<{ inode: Inode | undefined; danglingLast: boolean; parent?: Inode }> {
    return this.walk(path, followLast, syscall, true, locked);
  }

  /**
   * lookup(path, followLast) without waiting, for the paths a tree copy creates: plain
   * names (no '.', '..' or trailing '/'), no symbolic link on the way (a final one only
   * when not followed), every directory and inode cached or resident. Answers exactly
   * what lookup would — the inode, or, when only the last name is missing, its parent
   * (and `name`, that name's bytes: a valid name, at most 255 bytes, no '/' or NUL) —
   * and undefined for anything else (a link, a missing middle component, any error, a
   * block to read): then call lookup. No array, no promise. Any caller; `parent` is only
   * still right for a create while the caller holds metaLock.
   */
  lookupResident(path: string, followLast: boolean): { inode: Inode | undefined; danglingLast: false; parent?: Inode; name?: Uint8Array } | undefined {
    const n = path.length;
    if (n === 0 || n * 3 >= PATH_MAX || path.charCodeAt(n - 1) === SLASH || path.includes("\0")) return undefined;
    const vol = this.vol;
    const dcache = dcacheOf(vol.cache);
    let cur = this.inodeNow(ROOT_INO);
    for (let i = 0; cur;) {
      while (path.charCodeAt(i) === SLASH) i++;
      let j = path.indexOf("/", i);
      if (j < 0) j = n;
      const name = path.slice(i, j);
      if (name === "." || name === ".." || !cur.isDir) return undefined;
      let ino = dcache.get(cur.ino, cur.generation, name);
      let bytes: Uint8Array | undefined;
      if (!ino) {
        const epoch = dcache.epoch;
        bytes = nameBytes(name);
        if (bytes.length > NAME_MAX) return undefined;
        const found = vol.dirs.lookupResident(cur, bytes);
        if (found === undefined) return undefined;
        ino = found;
        if (ino) dcache.set(cur.ino, cur.generation, name, ino, epoch);
      }
      const last = j === n; // no trailing '/' (checked above): nothing follows
      if (!ino) return last ? { inode: undefined, danglingLast: false, parent: cur, name: bytes } : undefined;
      const child = this.inodeNow(ino);
      if (!child || (child.nlink === 0 && !child.isDir)) return undefined;
      if (child.isSymlink && (!last || followLast)) return undefined;
      if (last) return { inode: child, danglingLast: false };
      cur = child;
      i = j;
    }
    return undefined;
  }

  /** The canonical absolute path (every symlink resolved, no '.' or '..'). */
  async realpath(path: string): Promise<string> {
    const names = (await this.walk(path, true, "realpath", false)).names;
    return "/" + names.join("/");
  }

  /** A symlink's target bytes. locked: the caller holds metaLock (see readInodeData). */
  async linkTarget(inode: Inode, locked = false): Promise<Uint8Array> {
    const size = inode.size;
    if (size === 0 || size >= PATH_MAX) {
      throw new FsError("EFSCORRUPTED", `symlink inode ${inode.ino} has a bad target length ${size}`, { syscall: "readlink" });
    }
    // A short target lives in the inode's block map itself ("fast" symlink).
    const target = size < 60 && !this.vol.inodeHasInlineData(inode)
      ? inode.iblock.slice(0, size)
      : await readInodeData(this.vol, inode, 0, size, undefined, 0, locked);
    if (target.length !== size || target.includes(0)) {
      throw new FsError("EFSCORRUPTED", `symlink inode ${inode.ino} has a malformed target`, { syscall: "readlink" });
    }
    return target;
  }

  /** The inode if it is at hand without I/O (then the walk awaits nothing for it), else undefined. */
  private inodeNow(ino: number): Inode | undefined {
    const r = this.vol.inodes.getResident(ino);
    return r instanceof Missing ? undefined : r;
  }

  /** soft: a missing component gives inode undefined instead of ENOENT; locked: the caller holds metaLock. */
  private async walk(path: string, followLast: boolean, syscall: string, soft: boolean, locked = false): Promise<{ inode: Inode | undefined; names: string[]; danglingLast: boolean; parent?: Inode }> {
    if (path.length === 0) throw new FsError("ENOENT", "no such file or directory", { syscall, path });
    if (path.includes("\0")) throw new FsError("EINVAL", "path contains a NUL byte", { syscall, path });
    // A UTF-16 code unit is at most 3 UTF-8 bytes: short paths need no encoding to check.
    if (path.length * 3 >= PATH_MAX && utf8.encode(path).length >= PATH_MAX) throw new FsError("ENAMETOOLONG", "path too long", { syscall, path });
    const vol = this.vol;
    const dcache = dcacheOf(vol.cache);
    let cur = this.inodeNow(ROOT_INO) ?? (await vol.inodes.get(ROOT_INO));
    // The chain of directories from the root to `cur`, for '..' in realpath.
    const names: string[] = [];
    const pending = path.split("/").reverse();
    let hops = 0;
    let wantDir = path.endsWith("/");
    // Set once a symlink in the last component was followed: what is left is its target.
    let viaLastLink = false;
    while (pending.length) {
      const name = pending.pop()!;
      if (name === "" || name === ".") continue;
      if (!cur.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall, path });
      if (name === "..") {
        if (cur.ino !== ROOT_INO) {
          const parent = await vol.dirs.lookup(cur, utf8.encode(".."));
          if (!parent) throw new FsError("EFSCORRUPTED", `directory inode ${cur.ino} has no '..' entry`, { syscall, path });
          cur = this.inodeNow(parent) ?? (await vol.inodes.get(parent));
          names.pop();
        }
        continue;
      }
      // Remembered names skip the encoding and the directory lookup (bindings/fs/dcache.ts).
      let ino = dcache.get(cur.ino, cur.generation, name);
      if (!ino) {
        const epoch = dcache.epoch;
        const bytes = nameBytes(name);
        if (bytes.length > NAME_MAX) throw new FsError("ENAMETOOLONG", `name '${name.slice(0, 32)}…' is longer than 255 bytes`, { syscall, path });
        ino = vol.dirs.lookupResident(cur, bytes) ?? (await vol.dirs.lookup(cur, bytes));
        if (ino) dcache.set(cur.ino, cur.generation, name, ino, epoch);
      }
      if (!ino) {
        if (soft) {
          const atEnd = !viaLastLink && pending.every((c) => c === "" || c === ".");
          return { inode: undefined, names, danglingLast: viaLastLink, parent: atEnd ? cur : undefined };
        }
        throw new FsError("ENOENT", "no such file or directory", { syscall, path });
      }
      const child = this.inodeNow(ino) ?? (await vol.inodes.get(ino));
      if (child.nlink === 0 && !child.isDir) {
        throw new FsError("EFSCORRUPTED", `entry '${name}' points to deleted inode ${ino}`, { syscall, path });
      }
      const last = pending.every((c) => c === "" || c === ".");
      if (child.isSymlink && (!last || followLast || wantDir)) {
        if (++hops > MAX_SYMLINK_HOPS) throw new FsError("ELOOP", "too many levels of symbolic links", { syscall, path });
        const target = new TextDecoder().decode(await this.linkTarget(child, locked));
        if (target.startsWith("/")) {
          cur = this.inodeNow(ROOT_INO) ?? (await vol.inodes.get(ROOT_INO));
          names.length = 0;
        }
        if (target.endsWith("/") && last) wantDir = true;
        if (last) viaLastLink = true;
        for (const part of target.split("/").reverse()) pending.push(part);
        continue;
      }
      cur = child;
      names.push(name);
    }
    if (wantDir && !cur.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall, path });
    return { inode: cur, names, danglingLast: false };
  }
}
