/**
 * Stats and Dirent: the shapes `node:fs` users already know. Stats carries both Node's
 * millisecond fields and exact nanosecond BigInts (`mtimeNs` …), since ext4 stores
 * nanoseconds and tests (and rsync-like tools) compare them exactly.
 */
const S_IFMT = 0o170000;
const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;

export const FILE_TYPE = { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO } as const;

abstract class TypeChecks {
  protected abstract typeBits(): number;
  isFile(): boolean { return this.typeBits() === S_IFREG; }
  isDirectory(): boolean { return this.typeBits() === S_IFDIR; }
  isSymbolicLink(): boolean { return this.typeBits() === S_IFLNK; }
  isFIFO(): boolean { return this.typeBits() === S_IFIFO; }
  isCharacterDevice(): boolean { return this.typeBits() === S_IFCHR; }
  isBlockDevice(): boolean { return this.typeBits() === S_IFBLK; }
  isSocket(): boolean { return this.typeBits() === S_IFSOCK; }
}

export interface StatsInit {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atime: readonly [number, number];
  mtime: readonly [number, number];
  ctime: readonly [number, number];
  birthtime: readonly [number, number];
}

const ns = ([s, n]: readonly [number, number]): bigint => BigInt(s) * 1_000_000_000n + BigInt(n);
const ms = ([s, n]: readonly [number, number]): number => s * 1000 + n / 1e6;

export class Stats extends TypeChecks {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;
  atime: Date;
  mtime: Date;
  ctime: Date;
  birthtime: Date;

  constructor(s: StatsInit) {
    super();
    this.dev = s.dev;
    this.ino = s.ino;
    this.mode = s.mode;
    this.nlink = s.nlink;
    this.uid = s.uid;
    this.gid = s.gid;
    this.rdev = s.rdev;
    this.size = s.size;
    this.blksize = s.blksize;
    this.blocks = s.blocks;
    this.atimeMs = ms(s.atime);
    this.mtimeMs = ms(s.mtime);
    this.ctimeMs = ms(s.ctime);
    this.birthtimeMs = ms(s.birthtime);
    this.atimeNs = ns(s.atime);
    this.mtimeNs = ns(s.mtime);
    this.ctimeNs = ns(s.ctime);
    this.birthtimeNs = ns(s.birthtime);
    this.atime = new Date(this.atimeMs);
    this.mtime = new Date(this.mtimeMs);
    this.ctime = new Date(this.ctimeMs);
    this.birthtime = new Date(this.birthtimeMs);
  }

  protected typeBits(): number {
    return this.mode & S_IFMT;
  }
}

/** ext4 directory-entry file types (the byte in each entry) → mode type bits. */
const DIRENT_TYPE_BITS = [0, S_IFREG, S_IFDIR, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK, S_IFLNK];

export class Dirent extends TypeChecks {
  readonly name: string;
  readonly parentPath: string;
  /** Deprecated alias Node still provides. */
  readonly path: string;
  readonly ino: number;
  private readonly bits: number;

  constructor(name: string, parentPath: string, ino: number, fileType: number, modeBits?: number) {
    super();
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
    this.ino = ino;
    this.bits = modeBits ?? DIRENT_TYPE_BITS[fileType] ?? 0;
  }

  protected typeBits(): number {
    return this.bits;
  }
}
