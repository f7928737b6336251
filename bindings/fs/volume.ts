/**
 * mount() and the mounted Volume: the state every other fs/ module works on.
 *
 * Mounting an untrusted image, in order: read the superblock; let the engine validate it
 * as a whole (sbCheck: magic, checksum, sizes, group geometry, counts); apply feature
 * policy (refuse what we cannot read, say which feature); load the group descriptor table
 * into engine memory and check each descriptor (gdCheck) — a descriptor whose tables lie
 * outside the volume makes only its own group unusable (its inodes give EFSCORRUPTED),
 * a checksum mismatch is recorded as a warning; finally the root inode must be a
 * directory. Only then does mount() resolve.
 *
 * Read-only for now: the write path arrives with its own issue, so every volume is
 * mounted read-only and mutating calls answer EROFS. A volume whose journal needs
 * recovery mounts with a warning saying its newest changes may be missing.
 *
 * Concurrency: JS is single-threaded and the engine is re-entrant only between awaits;
 * each public method validates its arguments, then awaits block-cache reads. No method
 * keeps a block pinned across an await it does not own.
 */
import type { BlockDevice } from "../devices/types.ts";
import { Engine } from "../wasm.ts";
import { BlockCache } from "../cache.ts";
import { FsError, wrapUnknown } from "./errors.ts";
import { Superblock } from "./superblock.ts";
import { InodeTable, type Inode } from "./inode.ts";
import { Stats, Dirent } from "./stats.ts";
import { BlockMapper } from "./bmap.ts";
import { Directories } from "./dir.ts";
import { Namei } from "./namei.ts";
import { FileHandle, readInodeData } from "./file.ts";
import { volumeInfo, type VolumeInfo } from "./info.ts";

export interface MountOptions {
  readOnly?: boolean;
  initItable?: number | false;
  initItableDelay?: number;
  dioreadNolock?: boolean;
  inodegc?: boolean | { lanes?: number };
  /** Block-cache budget in bytes (default 32 MiB). */
  cacheBytes?: number;
}

export interface StatFs {
  type: number;
  bsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
}

const EXT4_SUPER_MAGIC = 0xef53;
const DEFAULT_CACHE_BYTES = 32 << 20;

function badOption(message: string): FsError {
  return new FsError("EINVAL", message, { syscall: "mount" });
}

function checkOptions(o: MountOptions): void {
  if (o === null || typeof o !== "object") throw badOption("mount options must be an object");
  if (o.readOnly !== undefined && typeof o.readOnly !== "boolean") throw badOption("readOnly must be a boolean");
  if (o.cacheBytes !== undefined && !(Number.isSafeInteger(o.cacheBytes) && o.cacheBytes >= 0)) {
    throw badOption(`bad cacheBytes ${String(o.cacheBytes)}: expected a whole number of bytes`);
  }
  if (o.initItable !== undefined && o.initItable !== false && !(typeof o.initItable === "number" && o.initItable >= 0)) {
    throw badOption(`bad initItable ${String(o.initItable)}: expected a number ≥ 0 or false`);
  }
}

const SB_REASONS: Record<string, string> = {
  SBE_CHECKSUM: "superblock checksum mismatch",
  SBE_BLOCK_SIZE: "unsupported block size",
  SBE_CLUSTER_SIZE: "cluster size inconsistent with block size",
  SBE_GROUP_SIZE: "bad blocks or inodes per group",
  SBE_INODE_SIZE: "bad inode size",
  SBE_COUNTS: "inode and block counts disagree with the group geometry",
  SBE_FIRST_DATA_BLOCK: "bad first data block",
  SBE_DESC_SIZE: "bad group descriptor size",
  SBE_PAST_DEVICE: "the filesystem is larger than the device",
  SBE_REVISION: "unknown revision level",
  SBE_FIRST_INO: "bad first inode number",
  SBE_GDT: "group descriptor table does not fit",
  SBE_FLEX: "bad flex_bg size",
};

/** Mount an ext4 (or ext2/ext3) volume on a device. */
export async function mount(device: BlockDevice, options: MountOptions = {}): Promise<Volume> {
  if (!device || typeof device.read !== "function") throw badOption("mount needs a BlockDevice");
  checkOptions(options);
  try {
    return await Volume.open(device, options);
  } catch (e) {
    throw wrapUnknown(e, "mount");
  }
}

export class Volume {
  readonly device: BlockDevice;
  readonly engine: Engine;
  readonly sb: Superblock;
  readonly cache: BlockCache;
  readonly inodes: InodeTable;
  readonly mapper: BlockMapper;
  readonly dirs: Directories;
  readonly namei: Namei;
  readonly blockSize: number;
  readonly groups: number;
  readonly readOnly: boolean;
  /** Things a user should know about this volume (recovery pending, bad checksums …). */
  readonly warnings: string[] = [];
  /** Groups whose descriptor cannot be trusted (their inodes answer EFSCORRUPTED). */
  readonly badGroups = new Set<number>();
  /** First group whose inode table is not known zeroed (lazy init starts there). */
  readonly firstUnzeroedGroup: number;
  private mounted = true;
  private readonly handles = new Set<FileHandle>();

  private constructor(device: BlockDevice, engine: Engine, sb: Superblock, options: MountOptions, info: {
    readOnly: boolean;
    badGroups: Set<number>;
    warnings: string[];
    firstUnzeroed: number;
  }) {
    this.device = device;
    this.engine = engine;
    this.sb = sb;
    this.blockSize = sb.blockSize;
    this.groups = engine.x.geoGroupCount() as number;
    this.readOnly = info.readOnly;
    this.badGroups = info.badGroups;
    this.warnings.push(...info.warnings);
    this.firstUnzeroedGroup = info.firstUnzeroed;
    this.cache = new BlockCache(engine, device, this.blockSize, options.cacheBytes ?? DEFAULT_CACHE_BYTES);
    const groupCsum = engine.x.sbFeatureGroupCsum(sb.ptr) !== 0;
    this.inodes = new InodeTable(
      engine,
      this.cache,
      {
        inodesCount: sb.inodesCount,
        inodesPerGroup: engine.x.geoInodesPerGroup() as number,
        inodeSize: sb.inodeSize,
        blockSize: this.blockSize,
        hugeFile: sb.has("huge_file"),
        groupCsum,
      },
      (g) => !this.badGroups.has(g),
    );
    this.mapper = new BlockMapper(this);
    this.dirs = new Directories(this);
    this.namei = new Namei(this);
  }

  /** See mount(). */
  static async open(device: BlockDevice, options: MountOptions): Promise<Volume> {
    if (!Number.isSafeInteger(device.size) || device.size < 2048) {
      throw new FsError("EINVAL", `device of ${device.size} bytes is too small to hold an ext4 superblock`, { syscall: "mount" });
    }
    const engine = await Engine.create();
    const x = engine.x;
    const sbPtr = engine.alloc(1024);
    await device.read(1024, engine.bytes(sbPtr, 1024));
    const sb = new Superblock(engine, sbPtr);
    if (sb.u16("SB_MAGIC") !== EXT4_SUPER_MAGIC) {
      throw new FsError("EINVAL", "no ext2/3/4 filesystem on this device (bad superblock magic)", { syscall: "mount" });
    }
    const rc = engine.call(() => x.sbCheck(sbPtr, device.size)) as number;
    if (rc < 0) {
      const name = Object.keys(SB_REASONS).find((k) => engine.constant(k) === -rc);
      throw new FsError("EFSCORRUPTED", `bad superblock: ${name ? SB_REASONS[name] : `reason ${-rc}`}`, { syscall: "mount" });
    }
    const unreadable = sb.unreadableFeatures();
    if (unreadable.length) {
      const journalDev = unreadable.includes("journal_dev");
      throw new FsError(
        "EOPNOTSUPP",
        journalDev
          ? "this is an external journal device, not a filesystem"
          : `the filesystem uses features this engine cannot read: ${unreadable.join(", ")}`,
        { syscall: "mount" },
      );
    }
    const warnings: string[] = [];
    let readOnly = true; // the write path is not built yet
    if (options.readOnly === false) warnings.push("mounted read-only: writing is not supported yet");
    if (sb.has("needs_recovery")) {
      readOnly = true;
      warnings.push("the journal needs recovery (the volume was not cleanly unmounted): mounted read-only, and the newest changes may be missing until the journal is replayed");
    }
    if (sb.lastOrphan !== 0 || sb.has("orphan_present")) {
      warnings.push("the volume has unfinished deletions (orphan inodes) that a read-write mount will complete");
    }

    engine.call(() => x.sbLoadGeometry(sbPtr));
    engine.call(() => x.gdtInit());
    const bs = sb.blockSize;
    const gdtBlocks = x.geoGdtBlocks() as number;
    const chunk = Math.min(gdtBlocks, Math.max(1, Math.floor((1 << 20) / bs)));
    const buf = engine.alloc(chunk * bs);
    for (let i = 0; i < gdtBlocks; ) {
      // Contiguous descriptor blocks (always, without meta_bg) are read in one request.
      const first = x.gdtBlockLocation(i) as number;
      let n = 1;
      while (n < chunk && i + n < gdtBlocks && (x.gdtBlockLocation(i + n) as number) === first + n) n++;
      await device.read(first * bs, engine.bytes(buf, n * bs));
      for (let k = 0; k < n; k++) engine.call(() => x.gdtLoadBlock(i + k, buf + k * bs));
      i += n;
    }
    const groups = x.geoGroupCount() as number;
    const flex = sb.has("flex_bg");
    const groupCsum = x.sbFeatureGroupCsum(sbPtr) !== 0;
    const badGroups = new Set<number>();
    let badCsums = 0;
    let firstUnzeroed = groups;
    const GDE_CHECKSUM = engine.constant("GDE_CHECKSUM");
    const ZEROED = engine.constant("BG_INODE_ZEROED");
    for (let g = 0; g < groups; g++) {
      const r = x.gdCheck(g, flex ? 1 : 0, groupCsum ? 1 : 0) as number;
      if (r === -GDE_CHECKSUM) badCsums++;
      else if (r < 0) badGroups.add(g);
      if (firstUnzeroed === groups && groupCsum && ((x.groupFlags(g) as number) & ZEROED) === 0) firstUnzeroed = g;
    }
    if (badCsums) warnings.push(`${badCsums} group descriptor checksum(s) do not match`);
    if (badGroups.size) {
      const list = [...badGroups].slice(0, 8).join(", ");
      warnings.push(`${badGroups.size} group descriptor(s) point outside the volume (groups ${list}${badGroups.size > 8 ? ", …" : ""}): files there are unreadable`);
    }
    const vol = new Volume(device, engine, sb, options, { readOnly, badGroups, warnings, firstUnzeroed });
    const root = await vol.inodes.get(2);
    if (!root.isDir) throw new FsError("EFSCORRUPTED", "the root inode is not a directory", { syscall: "mount" });
    return vol;
  }

  // ---- guards ----

  /** Throw unless mounted. */
  assertMounted(syscall: string, path?: string): void {
    if (!this.mounted) throw new FsError("EIO", "the volume is unmounted", { syscall, path });
  }

  private guard<T>(syscall: string, path: unknown, fn: () => Promise<T>): Promise<T> {
    const p = typeof path === "string" ? path : undefined;
    return (async () => {
      this.assertMounted(syscall, p);
      if (path !== undefined && typeof path !== "string") {
        throw new FsError("EINVAL", `path must be a string, got ${typeof path}`, { syscall });
      }
      try {
        return await fn();
      } catch (e) {
        throw wrapUnknown(e, syscall, p);
      }
    })();
  }

  private rofs(syscall: string, path?: unknown): Promise<never> {
    return this.guard(syscall, path, async () => {
      throw new FsError("EROFS", "read-only volume", { syscall, path: typeof path === "string" ? path : undefined });
    });
  }

  // ---- read side of the node:fs/promises shape ----

  stat(path: string): Promise<Stats> {
    return this.guard("stat", path, async () => this.statOf(await this.namei.resolve(path, true)));
  }

  lstat(path: string): Promise<Stats> {
    return this.guard("lstat", path, async () => this.statOf(await this.namei.resolve(path, false)));
  }

  readlink(path: string): Promise<string> {
    return this.guard("readlink", path, async () => {
      const inode = await this.namei.resolve(path, false);
      if (!inode.isSymlink) throw new FsError("EINVAL", "not a symbolic link", { syscall: "readlink", path });
      return new TextDecoder().decode(await this.namei.linkTarget(inode));
    });
  }

  readdir(path: string): Promise<string[]>;
  readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | Dirent[]>;
  readdir(path: string, options: { withFileTypes?: boolean } = {}): Promise<string[] | Dirent[]> {
    return this.guard("scandir", path, async () => {
      const dir = await this.namei.resolve(path, true);
      if (!dir.isDir) throw new FsError("ENOTDIR", "not a directory", { syscall: "scandir", path });
      const entries = await this.dirs.list(dir);
      if (options?.withFileTypes) return entries.map((e) => new Dirent(e.name, path, e.ino, e.type));
      return entries.map((e) => e.name);
    });
  }

  readFile(path: string, options?: BufferEncodingOption): Promise<Uint8Array | string> {
    return this.guard("open", path, async () => {
      const inode = await this.namei.resolve(path, true);
      if (inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "read", path });
      const data = await readInodeData(this, inode, 0, inode.size);
      const enc = typeof options === "string" ? options : options?.encoding;
      return enc ? decodeText(data, enc) : data;
    }) as Promise<Uint8Array | string>;
  }

  open(path: string, flags: string | number = "r", _mode?: number, _opts?: { direct?: boolean }): Promise<FileHandle> {
    return this.guard("open", path, async () => {
      if (flags !== "r" && flags !== 0) {
        throw new FsError("EROFS", "read-only volume: only flag 'r' is supported", { syscall: "open", path });
      }
      const inode = await this.namei.resolve(path, true);
      const fh = new FileHandle(this, inode, path);
      this.handles.add(fh);
      return fh;
    });
  }

  /** Called by FileHandle.close. */
  forgetHandle(fh: FileHandle): void {
    this.handles.delete(fh);
  }

  exists(path: string): Promise<boolean> {
    return this.stat(path).then(
      () => true,
      (e) => {
        if (e instanceof FsError && (e.code === "ENOENT" || e.code === "ENOTDIR")) return false;
        throw e;
      },
    );
  }

  realpath(path: string): Promise<string> {
    return this.guard("realpath", path, () => this.namei.realpath(path));
  }

  async statfs(): Promise<StatFs> {
    this.assertMounted("statfs");
    const sb = this.sb;
    const bfree = sb.freeBlocks;
    return {
      type: EXT4_SUPER_MAGIC,
      bsize: this.blockSize,
      blocks: sb.blocksCount,
      bfree,
      bavail: Math.max(0, bfree - sb.reservedBlocks),
      files: sb.inodesCount,
      ffree: sb.freeInodes,
    };
  }

  /** Everything `ext4-wasm info` prints: features, sizes, counts, per-group flags. */
  async info(): Promise<VolumeInfo> {
    this.assertMounted("info");
    return volumeInfo(this);
  }

  stats(): Record<string, unknown> {
    return {
      cache: this.cache.stats(),
      openFiles: this.handles.size,
      lazyInit: { groupsZeroed: this.firstUnzeroedGroup, groupsTotal: this.groups, running: false },
    };
  }

  inodeHasInlineData(inode: Inode): boolean {
    return (inode.flags & (this.engine.constant("INODE_FL_INLINE_DATA") >>> 0)) !== 0;
  }
  inodeIsEncrypted(inode: Inode): boolean {
    return (inode.flags & (this.engine.constant("INODE_FL_ENCRYPT") >>> 0)) !== 0;
  }

  /** Stats for an inode (shared by stat, lstat and FileHandle.stat). */
  statOf(inode: Inode): Stats {
    const rdev = inode.rdevMajor * 256 + (inode.rdevMinor & 0xff) + (inode.rdevMinor & ~0xff) * 4096;
    return new Stats({
      dev: 0,
      ino: inode.ino,
      mode: inode.mode,
      nlink: inode.nlink,
      uid: inode.uid,
      gid: inode.gid,
      rdev,
      size: inode.size,
      blksize: this.blockSize,
      blocks: inode.blocks512,
      atime: inode.atime,
      mtime: inode.mtime,
      ctime: inode.ctime,
      birthtime: inode.crtime ?? inode.ctime,
    });
  }

  // ---- writes: refused until the write path lands ----
  writeFile(path: string): Promise<void> { return this.rofs("open", path); }
  appendFile(path: string): Promise<void> { return this.rofs("open", path); }
  mkdir(path: string): Promise<void> { return this.rofs("mkdir", path); }
  rm(path: string): Promise<void> { return this.rofs("rm", path); }
  rmdir(path: string): Promise<void> { return this.rofs("rmdir", path); }
  unlink(path: string): Promise<void> { return this.rofs("unlink", path); }
  rename(path: string): Promise<void> { return this.rofs("rename", path); }
  link(path: string): Promise<void> { return this.rofs("link", path); }
  symlink(_target: string, path: string): Promise<void> { return this.rofs("symlink", path); }
  chmod(path: string): Promise<void> { return this.rofs("chmod", path); }
  chown(path: string): Promise<void> { return this.rofs("chown", path); }
  utimes(path: string): Promise<void> { return this.rofs("utime", path); }
  truncate(path: string): Promise<void> { return this.rofs("truncate", path); }

  async sync(): Promise<void> {
    this.assertMounted("sync");
  }

  /** Close every handle, drop the cache; the device stays open (the caller owns it). */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    for (const fh of [...this.handles]) await fh.close();
    this.mounted = false;
  }
}

export type BufferEncodingOption = string | { encoding?: string | null } | null | undefined;

function decodeText(data: Uint8Array, encoding: string): string {
  const enc = encoding.toLowerCase();
  if (enc === "utf8" || enc === "utf-8") return new TextDecoder().decode(data);
  if (enc === "latin1" || enc === "binary") return Array.from(data, (b) => String.fromCharCode(b)).join("");
  if (enc === "hex") return Array.from(data, (b) => b.toString(16).padStart(2, "0")).join("");
  if (enc === "base64") return btoa(Array.from(data, (b) => String.fromCharCode(b)).join(""));
  try {
    return new TextDecoder(enc).decode(data);
  } catch {
    throw new FsError("EINVAL", `unknown encoding '${encoding}'`, { syscall: "read" });
  }
}
