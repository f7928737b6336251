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
 * Read-write unless asked otherwise or the image forbids it (journal needing recovery,
 * features we cannot write): then the volume is forced read-only, the reason is kept in
 * `forcedReadOnly`, and a later remount({ readOnly: false }) answers EROFS with it.
 *
 * Lifecycle of a writable volume: mount → (freeze ⇄ thaw | remount ro ⇄ rw)* → unmount.
 * The background machinery (lazy init, endio, inodegc) follows it through the Background
 * seam (background.ts): started when the volume becomes writable, flushed before sync,
 * statfs, freeze, remount and unmount, stopped when it stops being writable. freeze() holds
 * metaLock until thaw(), so every metadata change (and every write, which takes metaLock)
 * waits; reads go on.
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
import { FileHandle, readInodeData, parseOpenFlags } from "./file.ts";
import { volumeInfo, type VolumeInfo } from "./info.ts";
import { Mutex } from "../sched/locks.ts";
import { CacheHandle } from "../journal/handle.ts";
import { WriteWiring } from "./wiring.ts";
import { Ops } from "./ops.ts";
import { FileData } from "./data.ts";
import { VolumeWriter, type WriteOptions } from "./volume_write.ts";
import { WState, nowTime } from "./wstate.ts";
import { Background } from "./background.ts";
import { EndIo } from "../sched/endio.ts";
import { InodeGc, inodegcLanes } from "../sched/inodegc.ts";
import { completeOrphans } from "./orphan.ts";
import { LazyInit } from "./itable_init.ts";
import { VolumeEvents, type VolumeEventMap } from "./events.ts";

export interface MountOptions {
  readOnly?: boolean;
  initItable?: number | false;
  initItableDelay?: number;
  dioreadNolock?: boolean;
  inodegc?: boolean | { lanes?: number };
  /** Block-cache budget in bytes (default 32 MiB). */
  cacheBytes?: number;
  /** Permission bits removed from the mode of created files and directories (default 0o022). */
  umask?: number;
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
  if (o.dioreadNolock !== undefined && typeof o.dioreadNolock !== "boolean") throw badOption("dioreadNolock must be a boolean");
  if (o.cacheBytes !== undefined && !(Number.isSafeInteger(o.cacheBytes) && o.cacheBytes >= 0)) {
    throw badOption(`bad cacheBytes ${String(o.cacheBytes)}: expected a whole number of bytes`);
  }
  if (o.umask !== undefined && !(Number.isInteger(o.umask) && o.umask >= 0 && o.umask <= 0o777)) {
    throw badOption(`bad umask ${String(o.umask)}: expected 0 to 0o777`);
  }
  if (o.initItable !== undefined && o.initItable !== false && !(typeof o.initItable === "number" && o.initItable >= 0)) {
    throw badOption(`bad initItable ${String(o.initItable)}: expected a number ≥ 0 or false`);
  }
  inodegcLanes(o.inodegc);
  if (o.initItableDelay !== undefined && !(typeof o.initItableDelay === "number" && o.initItableDelay >= 0)) {
    throw badOption(`bad initItableDelay ${String(o.initItableDelay)}: expected milliseconds ≥ 0`);
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
  /** Why this volume can never be written (set at mount), or undefined. */
  readonly forcedReadOnly: string | undefined;
  /** Lazy init, endio and inodegc, driven through one lifecycle (background.ts). */
  readonly background = new Background();
  /** Things a user should know about this volume (recovery pending, bad checksums …). */
  readonly warnings: string[] = [];
  /** Progress of background work ("lazyinit"); see on(). */
  readonly events = new VolumeEvents((m) => this.warnings.push(m));
  /** Groups whose descriptor cannot be trusted (their inodes answer EFSCORRUPTED). */
  readonly badGroups = new Set<number>();
  /** Mode bits cleared on creation (MountOptions.umask). */
  readonly umask: number;
  private mounted = true;
  private ro: boolean;
  /** Set while frozen: releases the metaLock that freeze() holds. */
  private frozenRelease: (() => void) | undefined;
  private readonly options: MountOptions;
  private readonly handles = new Set<FileHandle>();
  /** Open handles per inode (an unlinked inode lives until its count drops to 0). */
  private readonly openCounts = new Map<number, number>();
  /** Serialises metadata-changing operations (each is one transaction). */
  readonly metaLock = new Mutex();
  /** Write-path parts (present on read-write volumes). */
  writeParts!: WriteWiring;
  ops!: Ops;
  fileData!: FileData;
  writer!: VolumeWriter;

  private constructor(device: BlockDevice, engine: Engine, sb: Superblock, options: MountOptions, info: {
    readOnly: boolean;
    forcedReadOnly: string | undefined;
    badGroups: Set<number>;
    warnings: string[];
  }) {
    this.device = device;
    this.engine = engine;
    this.sb = sb;
    this.blockSize = sb.blockSize;
    this.groups = engine.x.geoGroupCount() as number;
    this.ro = info.readOnly;
    this.forcedReadOnly = info.forcedReadOnly;
    this.options = options;
    this.badGroups = info.badGroups;
    this.warnings.push(...info.warnings);
    this.umask = options.umask ?? 0o022;
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
        largeDir: sb.has("large_dir"),
      },
      (g) => !this.badGroups.has(g),
    );
    this.mapper = new BlockMapper(this);
    this.dirs = new Directories(this);
    this.namei = new Namei(this);
    this.writer = new VolumeWriter(this);
    if (!this.ro) this.buildWriteParts();
  }

  /** True while the volume answers EROFS to changes (read-only mount or remount). */
  get readOnly(): boolean {
    return this.ro;
  }

  /** Create the write-path parts (at a read-write mount, or the first read-write remount). */
  private buildWriteParts(): void {
    if (this.writeParts) return;
    this.writeParts = new WriteWiring(this);
    this.ops = new Ops(this, this.writeParts);
    this.fileData = new FileData(this, this.writeParts, Math.max(1 << 20, Math.floor((this.options.cacheBytes ?? DEFAULT_CACHE_BYTES) / 2)));
    this.background.add(new EndIo(this, { dioreadNolock: this.options.dioreadNolock ?? true }));
    if (this.options.inodegc !== false) this.background.add(new InodeGc(this, inodegcLanes(this.options.inodegc)));
    this.background.add(new LazyInit(this, this.options, this.events));
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
    let readOnly = options.readOnly ?? false;
    const deviceRo = (device as { readOnly?: boolean }).readOnly === true;
    let forcedReadOnly: string | undefined;
    const forceRo = (why: string) => {
      if (!readOnly) warnings.push(`mounted read-only: ${why}`);
      forcedReadOnly ??= why;
      readOnly = true;
    };
    if (deviceRo) forceRo("the device is read-only");
    if (sb.has("needs_recovery")) {
      forceRo("the journal needs recovery (the volume was not cleanly unmounted)");
      warnings.push("the journal needs recovery: the newest changes may be missing until the journal is replayed");
    }
    const unknownRo = sb.features().filter((f) => f.startsWith("FEATURE_RO_COMPAT_"));
    if (unknownRo.length) forceRo(`unknown read-only-compatible features ${unknownRo.join(", ")}`);
    for (const f of ["bigalloc", "meta_bg", "inline_data", "quota", "shared_blocks", "read-only", "snapshot", "replica"]) {
      if (sb.has(f)) forceRo(`writing volumes with ${f} is not supported`);
    }
    if (!sb.has("extent")) forceRo("writing ext2/ext3 volumes (no extent feature) is not supported");
    if (readOnly && (sb.lastOrphan !== 0 || sb.has("orphan_present"))) {
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
    const GDE_CHECKSUM = engine.constant("GDE_CHECKSUM");
    for (let g = 0; g < groups; g++) {
      const r = x.gdCheck(g, flex ? 1 : 0, groupCsum ? 1 : 0) as number;
      if (r === -GDE_CHECKSUM) badCsums++;
      else if (r < 0) badGroups.add(g);
    }
    if (badCsums) warnings.push(`${badCsums} group descriptor checksum(s) do not match`);
    if (badGroups.size) {
      const list = [...badGroups].slice(0, 8).join(", ");
      warnings.push(`${badGroups.size} group descriptor(s) point outside the volume (groups ${list}${badGroups.size > 8 ? ", …" : ""}): files there are unreadable`);
    }
    const vol = new Volume(device, engine, sb, options, { readOnly, forcedReadOnly, badGroups, warnings });
    const root = await vol.inodes.get(2);
    if (!root.isDir) throw new FsError("EFSCORRUPTED", "the root inode is not a directory", { syscall: "mount" });
    if (!vol.readOnly) {
      await vol.markMounted();
      await completeOrphans(vol);
      vol.background.start();
    }
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

  open(path: string, flags: string | number = "r", mode?: number | { direct?: boolean }, opts?: { direct?: boolean }): Promise<FileHandle> {
    // open(path, flags, { direct }) is accepted too (the options in the mode's place).
    if (typeof mode === "object" && mode !== null) [opts, mode] = [mode, undefined];
    return this.guard("open", path, async () => {
      const m = parseOpenFlags(flags, path);
      if (m.write && this.readOnly) throw new FsError("EROFS", "read-only volume", { syscall: "open", path });
      let inode: Inode | undefined;
      if (m.create) {
        // Create (or, with O_EXCL, insist on creating) under the metadata lock.
        inode = await this.writer.txn("open", path, async (h) => {
          const s = await this.writer.openForWrite(h, path, mode ?? 0o666, m.exclusive);
          if (m.truncate) {
            await this.fileData.writeback(h, s);
            await this.fileData.truncate(h, s, 0);
            await s.save(this, h);
          }
          return this.inodes.get(s.ino);
        });
      } else {
        inode = await this.namei.resolve(path, true);
        if (m.write && inode.isDir) throw new FsError("EISDIR", "illegal operation on a directory", { syscall: "open", path });
        if (m.truncate && m.write) await this.writer.truncate(path, 0);
      }
      const fh = new FileHandle(this, inode, path, m, opts);
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
    if (!this.readOnly && this.background.isRunning) await this.background.flush();
    const sb = this.sb;
    const totals = this.readOnly ? undefined : this.writeParts.alloc.totals();
    // Blocks promised to buffered data count as used (the kernel's dirty clusters), so
    // bfree never offers space that delayed allocation already owns. Writes may use the
    // root-reserved blocks (there are no unprivileged users here), so bfree is what a
    // write can still get; bavail keeps df's meaning, bfree less the root reserve.
    const bfree = totals ? totals.freeBlocks - this.writeParts.alloc.resv.reserved : sb.freeBlocks;
    return {
      type: EXT4_SUPER_MAGIC,
      bsize: this.blockSize,
      blocks: sb.blocksCount,
      bfree,
      bavail: Math.max(0, bfree - sb.reservedBlocks),
      files: sb.inodesCount,
      ffree: totals ? totals.freeInodes : sb.freeInodes,
    };
  }

  /** Everything `ext4-wasm info` prints: features, sizes, counts, per-group flags. */
  async info(): Promise<VolumeInfo> {
    this.assertMounted("info");
    return volumeInfo(this);
  }

  /** Listen to background progress (fs/events.ts); returns the remover. */
  on<K extends keyof VolumeEventMap>(event: K, cb: (payload: VolumeEventMap[K]) => void): () => void {
    return this.events.on(event, cb);
  }

  stats(): Record<string, unknown> {
    return {
      cache: this.cache.stats(),
      openFiles: this.handles.size,
      frozen: this.frozenRelease !== undefined,
      ...this.background.stats(),
    };
  }

  inodeHasInlineData(inode: Inode): boolean {
    // Read once: Engine.constant reads a WebAssembly.Global, and every lookup asks this.
    this.inlineDataFl ??= this.engine.constant("INODE_FL_INLINE_DATA") >>> 0;
    return (inode.flags & this.inlineDataFl) !== 0;
  }
  private inlineDataFl: number | undefined;
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

  // ---- write side (bindings/fs/volume_write.ts) ----
  writeFile(path: string, data: unknown, options?: WriteOptions): Promise<void> {
    return this.guard("open", path, () => this.writer.writeFile(path, data, options));
  }
  appendFile(path: string, data: unknown, options?: WriteOptions): Promise<void> {
    return this.guard("open", path, () => this.writer.appendFile(path, data, options));
  }
  mkdir(path: string, options?: { recursive?: boolean; mode?: number | string } | number): Promise<string | undefined> {
    return this.guard("mkdir", path, () => this.writer.mkdir(path, options));
  }
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> {
    return this.guard("rm", path, () => this.writer.rm(path, options));
  }
  rmdir(path: string): Promise<void> { return this.guard("rmdir", path, () => this.writer.rmdir(path)); }
  unlink(path: string): Promise<void> { return this.guard("unlink", path, () => this.writer.unlink(path)); }
  rename(oldPath: string, newPath: string): Promise<void> {
    return this.guard("rename", oldPath, () => this.writer.rename(oldPath, newPath));
  }
  link(existing: string, newPath: string): Promise<void> {
    return this.guard("link", existing, () => this.writer.link(existing, newPath));
  }
  symlink(target: string, path: string): Promise<void> {
    return this.guard("symlink", path, () => this.writer.symlink(target, path));
  }
  mknod(path: string, mode: number, rdev = 0): Promise<void> { return this.guard("mknod", path, () => this.writer.mknod(path, mode, rdev)); }
  chmod(path: string, mode: number | string): Promise<void> { return this.guard("chmod", path, () => this.writer.chmod(path, mode)); }
  chown(path: string, uid: number, gid: number): Promise<void> { return this.guard("chown", path, () => this.writer.chown(path, uid, gid)); }
  lchown(path: string, uid: number, gid: number): Promise<void> { return this.guard("lchown", path, () => this.writer.chown(path, uid, gid, false)); }
  utimes(path: string, atime: unknown, mtime: unknown): Promise<void> {
    return this.guard("utime", path, () => this.writer.utimes(path, atime, mtime));
  }
  lutimes(path: string, atime: unknown, mtime: unknown): Promise<void> {
    return this.guard("lutime", path, () => this.writer.utimes(path, atime, mtime, false));
  }
  truncate(path: string, len?: number): Promise<void> { return this.guard("open", path, () => this.writer.truncate(path, len)); }

  // ---- open files and orphans ----
  isOpen(ino: number): boolean {
    return (this.openCounts.get(ino) ?? 0) > 0;
  }
  /** Called by FileHandle on open/close. Returns the count after the change. */
  countOpen(ino: number, delta: 1 | -1): number {
    const n = (this.openCounts.get(ino) ?? 0) + delta;
    if (n <= 0) this.openCounts.delete(ino);
    else this.openCounts.set(ino, n);
    return Math.max(0, n);
  }
  setLastOrphan(ino: number): void {
    this.sb.set32("SB_LAST_ORPHAN", ino);
  }

  /**
   * After the last close of an inode (or the close of a writer): write back its buffered
   * data, whose space was reserved when it was written, so this cannot fail for space;
   * if it has no links left, drop that data instead, take it off the orphan list and
   * free it. Takes metaLock.
   */
  async lastClose(ino: number): Promise<void> {
    if (this.readOnly) return;
    const h = new CacheHandle(this.cache);
    await this.metaLock.run(async () => {
      try {
        const s = await WState.load(this, ino);
        if (s.fields.nlink === 0) {
          if (this.isOpen(ino)) return; // another handle still reads or writes it
          this.fileData.discard(ino);
          // Already on the orphan list (since its unlink): inodegc frees it later, or now.
          if (await this.writeParts.deferRelease(h, s)) return;
          await this.writeParts.orphans.remove(h, s);
          await this.ops.release(h, s);
          return;
        }
        const failure = await this.fileData.writebackOrDrop(h, s);
        await s.save(this, h);
        if (failure !== undefined) throw failure;
      } finally {
        await h.stop();
      }
    });
    await this.writeParts.settle(h);
  }

  /** Resize the inodegc lanes (1..64); a removed lane's queue moves to a remaining one. EINVAL with inodegc off. */
  setLanes(n: number): void {
    this.assertMounted("setLanes");
    const gc = this.background.get<InodeGc>("inodegc");
    if (!gc) throw new FsError("EINVAL", "inodegc is off on this volume", { syscall: "setLanes" });
    gc.setLanes(n);
  }

  /**
   * Write back buffered file data when it exceeds its budget (a promise then; nothing to
   * await otherwise, the common case after each operation). Caller holds metaLock.
   */
  maybeWriteback(): Promise<void> | undefined {
    if (this.readOnly || this.fileData.bufferedBytes <= this.fileData.budget) return undefined;
    return this.writebackData();
  }

  /** Give every inode's buffered data its blocks. Caller holds metaLock. */
  private async writebackData(): Promise<void> {
    let failure: unknown;
    for (const ino of this.fileData.inodesWithPending()) {
      const h = new CacheHandle(this.cache);
      try {
        const s = await WState.load(this, ino);
        // Every inode is written back even after one fails (??= would skip the call).
        const f = await this.fileData.writebackOrDrop(h, s);
        failure ??= f;
        await s.save(this, h);
      } finally {
        await h.stop();
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Superblock counts and state, then the 1024 bytes at offset 1024. */
  private async writeSuper(clean: boolean): Promise<void> {
    const sb = this.sb;
    const t = this.writeParts.alloc.totals();
    sb.set32("SB_FREE_BLOCKS_COUNT_LO", t.freeBlocks % 2 ** 32);
    if (sb.is64bit) sb.set32("SB_FREE_BLOCKS_COUNT_HI", Math.floor(t.freeBlocks / 2 ** 32));
    sb.set32("SB_FREE_INODES_COUNT", t.freeInodes);
    const state = sb.state;
    sb.set16("SB_STATE", clean ? state | 1 : state & ~1);
    const now = nowTime()[0];
    sb.set32("SB_WTIME", now % 2 ** 32);
    sb.set8("SB_WTIME_HI", Math.floor(now / 2 ** 32));
    this.engine.call(() => this.engine.x.sbCsumSet(sb.ptr));
    await this.device.write(1024, this.engine.bytes(sb.ptr, 1024));
  }

  /** Read-write mount: count the mount and mark the volume "not clean" until unmount. */
  async markMounted(): Promise<void> {
    const sb = this.sb;
    const now = nowTime()[0];
    sb.set16("SB_MNT_COUNT", (sb.u16("SB_MNT_COUNT") + 1) & 0xffff);
    sb.set32("SB_MTIME", now % 2 ** 32);
    sb.set8("SB_MTIME_HI", Math.floor(now / 2 ** 32));
    await this.writeSuper(false);
    await this.device.flush();
  }

  /** Write everything back and make it durable (device flush). */
  async sync(): Promise<void> {
    this.assertMounted("sync");
    if (this.readOnly || this.frozenRelease) return;
    await this.background.flush();
    await this.metaLock.run(async () => {
      await this.writebackData();
      // One device flush for the blocks and the superblock: s_last_orphan must never be
      // durable later than the inode-table changes that rely on it (or earlier).
      await this.cache.writeback({ all: true });
      await this.writeSuper(false);
      await this.device.flush();
    });
  }

  /** Close every handle, write everything back, mark the volume clean. The device stays open. */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    if (this.frozenRelease) await this.thaw();
    for (const fh of [...this.handles]) await fh.close();
    if (!this.readOnly) {
      try {
        await this.background.flush();
      } finally {
        await this.background.stop();
      }
      await this.metaLock.run(() => this.writeBackAll(true));
    }
    this.mounted = false;
  }

  /** Everything buffered to the device, superblock marked clean or not, then a device flush. Caller holds metaLock. */
  private async writeBackAll(clean: boolean): Promise<void> {
    await this.writebackData();
    await this.cache.writeback({ all: true });
    await this.writeSuper(clean);
    await this.device.flush();
  }

  /**
   * Make the image on the device consistent and keep it so until thaw(): background work is
   * flushed and stopped, everything written back, the superblock marked clean, and metaLock
   * held so every change waits. Reads go on. EBUSY if already frozen.
   */
  async freeze(): Promise<void> {
    this.assertMounted("freeze");
    if (this.frozenRelease) throw new FsError("EBUSY", "the volume is already frozen", { syscall: "freeze" });
    if (this.readOnly) {
      this.frozenRelease = await this.metaLock.lock();
      return;
    }
    await this.background.flush();
    await this.background.stop();
    const release = await this.metaLock.lock();
    try {
      await this.writeBackAll(true);
    } catch (e) {
      release();
      this.background.start();
      throw e;
    }
    this.frozenRelease = release;
  }

  /** Undo freeze(): the superblock goes back to "not clean", changes and background work resume. EINVAL if not frozen. */
  async thaw(): Promise<void> {
    this.assertMounted("thaw");
    const release = this.frozenRelease;
    if (!release) throw new FsError("EINVAL", "the volume is not frozen", { syscall: "thaw" });
    this.frozenRelease = undefined;
    try {
      if (!this.readOnly) {
        await this.writeSuper(false);
        await this.device.flush();
      }
    } finally {
      release();
    }
    if (!this.readOnly) this.background.start();
  }

  /**
   * Switch between read-only and read-write without unmounting. To read-only: EBUSY while a
   * file is open for writing; everything is written back and the volume marked clean. To
   * read-write: EROFS when the image or device forbids writing (forcedReadOnly says why).
   */
  async remount(options: { readOnly?: boolean } = {}): Promise<void> {
    this.assertMounted("remount");
    if (options === null || typeof options !== "object" || (options.readOnly !== undefined && typeof options.readOnly !== "boolean")) {
      throw new FsError("EINVAL", "remount options must be { readOnly?: boolean }", { syscall: "remount" });
    }
    if (this.frozenRelease) throw new FsError("EBUSY", "the volume is frozen", { syscall: "remount" });
    const wantRo = options.readOnly ?? false;
    if (wantRo === this.ro) return;
    if (wantRo) {
      if ([...this.handles].some((fh) => fh.writable)) {
        throw new FsError("EBUSY", "a file is open for writing", { syscall: "remount" });
      }
      await this.background.flush();
      await this.background.stop();
      await this.metaLock.run(async () => {
        await this.writeBackAll(true);
        this.ro = true;
      });
      return;
    }
    if (this.forcedReadOnly) throw new FsError("EROFS", `cannot write this volume: ${this.forcedReadOnly}`, { syscall: "remount" });
    await this.metaLock.run(async () => {
      this.buildWriteParts();
      await this.markMounted();
      this.ro = false;
    });
    await completeOrphans(this);
    this.background.start();
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
