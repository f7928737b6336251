/**
 * Inodes: reading one from its group's inode table through the block cache, decoding it
 * in the engine (one call), and a bounded cache of decoded inodes.
 *
 * Contract: `InodeTable.get(ino)` returns a validated Inode or throws FsError
 * EFSCORRUPTED naming the inode — for numbers outside the volume, inodes in a group whose
 * descriptor is unusable, inodes in the never-used tail of a group (a directory entry
 * pointing there is corruption), bad extra-field sizes and checksum mismatches.
 * Callers hold no lock; the cache is plain JS state mutated between awaits.
 *
 * `getResident` and `writeResident` are the synchronous forms (cached inode or resident
 * table block; else Missing / undefined and nothing done) for the fast paths of the
 * namespace operations: an inode read or saved without I/O then costs no promise.
 */
import type { Engine } from "../wasm.ts";
import { Missing, type BlockCache, type CacheRef } from "../cache.ts";
import { FsError } from "./errors.ts";
import { FILE_TYPE } from "./stats.ts";
import type { Handle } from "../journal/handle.ts";

/** What InodeTable.write may do besides the fields (see there). */
export interface InodeWriteOptions {
  iblock?: Uint8Array;
  fresh?: boolean;
  extents?: boolean;
}

/**
 * The fields an update may change (everything inodeEncode writes). Times are
 * [seconds, nanoseconds] pairs that are replaced, never changed in place: a decoded
 * Inode and the states loaded from it share them.
 */
export interface InodeFields {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  flags: number;
  blocks512: number;
  atime: readonly [number, number];
  mtime: readonly [number, number];
  ctime: readonly [number, number];
  crtime: readonly [number, number] | null;
  generation: number;
  dtime: number;
}

export interface InodeGeometry {
  inodesCount: number;
  inodesPerGroup: number;
  inodeSize: number;
  blockSize: number;
  hugeFile: boolean;
  groupCsum: boolean;
  /** large_dir: directories may use i_size_high. */
  largeDir?: boolean;
}

export class Inode {
  readonly ino: number;
  /** The 60-byte block map (extent root or indirect pointers, or inline bytes): a copy. */
  readonly iblock: Uint8Array;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly nlink: number;
  readonly flags: number;
  readonly blocks512: number;
  readonly atime: readonly [number, number];
  readonly mtime: readonly [number, number];
  readonly ctime: readonly [number, number];
  readonly crtime: readonly [number, number] | null;
  readonly generation: number;
  readonly dtime: number;
  readonly fileAcl: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;

  /** r: the engine's decode record; idx: its slot numbers in SLOT_NAMES order. */
  constructor(ino: number, iblock: Uint8Array, r: Float64Array, idx: readonly number[]) {
    this.ino = ino;
    this.iblock = iblock;
    this.mode = r[idx[0]!]!;
    this.uid = r[idx[1]!]!;
    this.gid = r[idx[2]!]!;
    this.size = r[idx[3]!]!;
    this.nlink = r[idx[4]!]!;
    this.flags = r[idx[5]!]! >>> 0;
    this.blocks512 = r[idx[6]!]!;
    this.atime = [r[idx[7]!]!, r[idx[8]!]!];
    this.mtime = [r[idx[9]!]!, r[idx[10]!]!];
    this.ctime = [r[idx[11]!]!, r[idx[12]!]!];
    this.crtime = Number.isNaN(r[idx[13]!]!) ? null : [r[idx[13]!]!, r[idx[14]!]!];
    this.generation = r[idx[15]!]! >>> 0;
    this.dtime = r[idx[16]!]!;
    this.fileAcl = r[idx[17]!]!;
    this.rdevMajor = r[idx[18]!]!;
    this.rdevMinor = r[idx[19]!]!;
  }

  /**
   * A plain copy of the writable fields, for InodeTable.write. The time pairs are shared,
   * not copied: a pair is never changed in place, only replaced (see InodeFields).
   */
  fields(): InodeFields {
    return {
      mode: this.mode, uid: this.uid, gid: this.gid, size: this.size, nlink: this.nlink, flags: this.flags,
      blocks512: this.blocks512, atime: this.atime, mtime: this.mtime, ctime: this.ctime,
      crtime: this.crtime, generation: this.generation, dtime: this.dtime,
    };
  }

  get type(): number { return this.mode & FILE_TYPE.S_IFMT; }
  get isDir(): boolean { return this.type === FILE_TYPE.S_IFDIR; }
  get isReg(): boolean { return this.type === FILE_TYPE.S_IFREG; }
  get isSymlink(): boolean { return this.type === FILE_TYPE.S_IFLNK; }
}

/** Bytes of inode table read per device request on a miss (see InodeTable.readAhead). */
const INODE_READAHEAD_BYTES = 128 << 10;

const SLOT_NAMES = [
  "INO_MODE", "INO_UID", "INO_GID", "INO_SIZE", "INO_NLINK", "INO_FLAGS", "INO_BLOCKS512", "INO_ATIME",
  "INO_ATIME_NS", "INO_MTIME", "INO_MTIME_NS", "INO_CTIME", "INO_CTIME_NS", "INO_CRTIME", "INO_CRTIME_NS",
  "INO_GENERATION", "INO_DTIME", "INO_FILE_ACL", "INO_RDEV_MAJOR", "INO_RDEV_MINOR",
];

export class InodeTable {
  private readonly engine: Engine;
  private readonly cache: BlockCache;
  private readonly geo: InodeGeometry;
  private readonly isUsable: (group: number) => boolean;
  private readonly record: number;
  private readonly slots = new Map<string, number>();
  /** Slot numbers of SLOT_NAMES, in order (for the Inode constructor). */
  private readonly idx: number[];
  private recView: Float64Array;
  private readonly reasons: Record<number, string>;
  /** Decoded inodes, evicted oldest-inserted first. */
  private readonly lru = new Map<number, Inode>();
  private readonly capacity: number;
  private readonly flExtents: number;

  constructor(engine: Engine, cache: BlockCache, geo: InodeGeometry, isUsable: (group: number) => boolean, capacity = 65536) {
    this.engine = engine;
    this.cache = cache;
    this.geo = geo;
    this.isUsable = isUsable;
    this.capacity = capacity;
    this.record = engine.alloc(8 * engine.constant("INO_RECORD_SLOTS"));
    for (const n of SLOT_NAMES) this.slots.set(n, engine.constant(n));
    this.idx = SLOT_NAMES.map((n) => this.slots.get(n)!);
    this.recView = new Float64Array(engine.x.memory.buffer, this.record, engine.constant("INO_RECORD_SLOTS"));
    engine.x.inodeConfigure(geo.largeDir ? 1 : 0);
    this.flExtents = engine.constant("INODE_FL_EXTENTS") >>> 0;
    this.reasons = {
      [engine.constant("INOE_EXTRA_ISIZE")]: "bad extra inode size",
      [engine.constant("INOE_CHECKSUM")]: "inode checksum mismatch",
    };
  }

  /** The inode `ino`, validated (see the file header for what throws). Any caller. */
  async get(ino: number): Promise<Inode> {
    const r = this.getResident(ino);
    if (!(r instanceof Missing)) return r;
    await this.readAhead(r.blk, Math.floor((ino - 1) / this.geo.inodesPerGroup));
    return this.decode(ino, await this.cache.get(r.blk));
  }

  /**
   * get() without waiting: the inode when it is cached or its inode-table block is
   * resident, else Missing (that block; then call get). Throws what get throws. Any caller.
   */
  getResident(ino: number): Inode | Missing {
    const hit = this.lru.get(ino);
    // No reordering on a hit: re-inserting the same hot keys (the directory every create
    // touches) into a large Map cost ~16 us per operation (bench/populate profile), and
    // insertion-order eviction is good enough for a cache this large.
    if (hit) return hit;
    const g = this.geo;
    if (!Number.isInteger(ino) || ino < 1 || ino > g.inodesCount) throw this.bad(ino, `number outside 1..${g.inodesCount}`);
    const group = Math.floor((ino - 1) / g.inodesPerGroup);
    const index = (ino - 1) % g.inodesPerGroup;
    if (!this.isUsable(group)) throw this.bad(ino, `its group ${group} has an unusable descriptor`);
    const x = this.engine.x;
    if (index >= (x.groupInodesInUse(group, g.groupCsum ? 1 : 0) as number)) {
      throw this.bad(ino, `lies in the never-used part of group ${group}`);
    }
    const blk = (x.groupInodeTableF(group) as number) + Math.floor((index * g.inodeSize) / g.blockSize);
    const ref = this.cache.peek(blk);
    return ref ? this.decode(ino, ref) : new Missing(blk);
  }

  private bad(ino: number, why: string): FsError {
    return new FsError("EFSCORRUPTED", `inode ${ino}: ${why}`, { syscall: "iget" });
  }

  /** Decode inode ino from its pinned inode-table block (released here) and cache it. */
  private decode(ino: number, ref: CacheRef): Inode {
    const g = this.geo;
    const x = this.engine.x;
    let inode: Inode;
    try {
      const p = ref.ptr + ((((ino - 1) % g.inodesPerGroup) * g.inodeSize) % g.blockSize);
      const rc = this.engine.call(() => x.inodeDecode(p, ino, this.record, g.hugeFile ? 1 : 0, 0)) as number;
      if (rc < 0) throw this.bad(ino, this.reasons[-rc] ?? `undecodable (reason ${-rc})`);
      inode = new Inode(ino, this.iblockAt(p), this.rec(), this.idx);
    } finally {
      this.cache.release(ref);
    }
    this.lru.set(ino, inode);
    if (this.lru.size > this.capacity) this.lru.delete(this.lru.keys().next().value!);
    return inode;
  }

  /**
   * Before a miss on inode-table block blk: read the INODE_READAHEAD_BYTES window of the
   * group's table that holds it (within the table's used part) in one device request. Inodes allocated together are read together (a directory's files, a tree's
   * next files), and each device request is a round trip (a thread-pool hop for a file):
   * stat of 50,000 files cost ~3,400 single-block reads. Best effort — a block that is
   * already cached or being read splits the run, and a full cache reads less; errors are
   * left for the get that follows to meet and report.
   */
  private async readAhead(blk: number, group: number): Promise<void> {
    const probe = this.cache.peek(blk);
    if (probe) {
      this.cache.release(probe);
      return;
    }
    const g = this.geo;
    const x = this.engine.x;
    const used = x.groupInodesInUse(group, g.groupCsum ? 1 : 0) as number;
    const table = x.groupInodeTableF(group) as number;
    const tableEnd = table + Math.ceil((used * g.inodeSize) / g.blockSize);
    // Aligned windows: lookups in hash order touch the table at random, and windows that
    // started at each miss would overlap cached blocks and break into short reads.
    const window = Math.max(1, INODE_READAHEAD_BYTES / g.blockSize);
    const start = table + Math.floor((blk - table) / window) * window;
    const count = Math.min(start + window, tableEnd) - start;
    if (count > 1) await this.cache.readRun(start, count).catch(() => {});
  }

  /** The decode record as f64s (re-created if linear memory grew: the old view reads as empty). */
  private rec(): Float64Array {
    if (this.recView.length === 0) {
      this.recView = new Float64Array(this.engine.x.memory.buffer, this.record, this.engine.constant("INO_RECORD_SLOTS"));
    }
    return this.recView;
  }

  /**
   * A copy of the block map of the inode at p: all a decoded Inode keeps of the raw
   * bytes (60 bytes, small enough for V8 to keep on the JS heap, where a copy of the
   * whole 256-byte inode was a separately allocated buffer per inode decoded).
   */
  private iblockAt(p: number): Uint8Array {
    return this.engine.u8.slice(p + 0x28, p + 0x28 + 60);
  }

  /** Where inode `ino` lives: its inode-table block and byte offset in it. */
  private locate(ino: number): { blk: number; off: number } {
    const g = this.geo;
    if (!Number.isInteger(ino) || ino < 1 || ino > g.inodesCount) {
      throw new FsError("EFSCORRUPTED", `inode ${ino}: number outside 1..${g.inodesCount}`, { syscall: "iget" });
    }
    const group = Math.floor((ino - 1) / g.inodesPerGroup);
    const byteInTable = ((ino - 1) % g.inodesPerGroup) * g.inodeSize;
    const blk = (this.engine.x.groupInodeTableF(group) as number) + Math.floor(byteInTable / g.blockSize);
    return { blk, off: byteInTable % g.blockSize };
  }

  /**
   * Write inode `ino` through handle h: the given fields, and the 60-byte block map when
   * `iblock` is passed. `fresh`: a newly allocated inode — its slot is re-initialised
   * first (with an empty extent root when `extents`). get() then answers the new state.
   */
  async write(h: Handle, ino: number, f: InodeFields, opts: InodeWriteOptions = {}): Promise<void> {
    const { blk, off } = this.locate(ino);
    const ref = opts.fresh && this.aloneInBlock(ino) ? await h.getNewBlock(blk) : await h.getWriteAccess(blk);
    this.encode(h, ref, off, ino, f, opts);
  }

  /**
   * Is new inode `ino` the only inode in use in its inode-table block? Then write() need
   * not read the block (a device round trip per block of new inodes, 16 per 4 KiB block
   * of 256-byte inodes): its other slots are free, so what they hold does not matter, and
   * the block can start from zeros, as Linux does for such a block. Decided by the group's
   * inode bitmap, which allocated `ino` a moment ago and is therefore resident; if it is
   * not, false (the block is read as usual).
   */
  private aloneInBlock(ino: number): boolean {
    const g = this.geo;
    const x = this.engine.x;
    const group = Math.floor((ino - 1) / g.inodesPerGroup);
    const index = (ino - 1) % g.inodesPerGroup;
    const perBlock = g.blockSize / g.inodeSize;
    const first = index - (index % perBlock);
    const bitmap = this.cache.peek(x.groupInodeBitmapF(group) as number);
    if (!bitmap) return false;
    try {
      return !!x.bitmapTest(bitmap.ptr, index) && (x.bitmapCount(bitmap.ptr, first, Math.min(first + perBlock, g.inodesPerGroup)) >>> 0) === 1;
    } finally {
      this.cache.release(bitmap);
    }
  }

  /**
   * write() without waiting: true when done (the inode-table block was resident), false
   * with nothing changed (then call write). Inside h.
   */
  writeResident(h: Handle, ino: number, f: InodeFields, opts: InodeWriteOptions = {}): boolean {
    const { blk, off } = this.locate(ino);
    const ref = h.getWriteAccessResident(blk) ?? (opts.fresh && this.aloneInBlock(ino) ? h.getNewBlockResident(blk) : undefined);
    if (!ref) return false;
    this.encode(h, ref, off, ino, f, opts);
    return true;
  }

  /** The body of write: encode into the table block `ref` (held in h) at byte `off`. */
  private encode(h: Handle, ref: CacheRef, off: number, ino: number, f: InodeFields, opts: InodeWriteOptions): void {
    const x = this.engine.x;
    const p = ref.ptr + off;
    if (opts.fresh) x.inodeInitNew(p, opts.extents ? 1 : 0);
    if (opts.iblock) {
      if (opts.iblock.length !== 60) throw new FsError("EINVAL", "i_block must be 60 bytes", { syscall: "iput" });
      this.engine.u8.set(opts.iblock, p + 0x28);
    }
    // Slots by index in SLOT_NAMES order (this runs for every inode every operation saves).
    const rec = this.rec();
    const I = this.idx;
    rec[I[0]!] = f.mode;
    rec[I[1]!] = f.uid;
    rec[I[2]!] = f.gid;
    rec[I[3]!] = f.size;
    rec[I[4]!] = f.nlink;
    rec[I[5]!] = opts.fresh && opts.extents ? (f.flags | this.flExtents) >>> 0 : f.flags >>> 0;
    rec[I[6]!] = f.blocks512;
    rec[I[7]!] = f.atime[0];
    rec[I[8]!] = f.atime[1];
    rec[I[9]!] = f.mtime[0];
    rec[I[10]!] = f.mtime[1];
    rec[I[11]!] = f.ctime[0];
    rec[I[12]!] = f.ctime[1];
    rec[I[13]!] = f.crtime ? f.crtime[0] : NaN;
    rec[I[14]!] = f.crtime ? f.crtime[1] : 0;
    rec[I[15]!] = f.generation >>> 0;
    rec[I[16]!] = f.dtime;
    const rc = this.engine.call(() => x.inodeEncode(p, ino, this.record, this.geo.hugeFile ? 1 : 0)) as number;
    if (rc < 0) throw new FsError(rc === -this.engine.constant("INOW_RANGE") ? "EFBIG" : "EFSCORRUPTED", `inode ${ino}: cannot encode (reason ${-rc})`, { syscall: "iput" });
    h.dirty(ref);
    // Readers must see exactly the written state. A cached copy (an inode read before,
    // and likely again: the directory of every create) is re-decoded now — its checksum
    // was set by inodeEncode just now, so it is not summed again; an inode nobody has
    // read (a new file, saved twice by a create and then left alone) is not decoded at
    // all: the next get() decodes it from the table block.
    if (!this.lru.has(ino)) return;
    this.engine.call(() => x.inodeDecode(p, ino, this.record, this.geo.hugeFile ? 1 : 0, 1));
    this.lru.set(ino, new Inode(ino, this.iblockAt(p), this.rec(), this.idx)); // replaces in place (see get)
  }

  /** Forget a cached inode (after it changes on disk). */
  forget(ino: number): void {
    this.lru.delete(ino);
  }
}
