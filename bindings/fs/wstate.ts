/**
 * Writable inode state: what an operation holds while it changes an inode.
 *
 * An operation loads the inodes it changes into WState objects (a copy of the writable
 * fields and of the 60-byte block map), changes them — the block map in place, through
 * the extent tree — and saves them through its handle before stop(). Readers keep using
 * the InodeTable's decoded copies, which save() refreshes, so they see each inode either
 * before or after an operation, never half-way (the volume's metadata lock serialises
 * writers; readers do not take it).
 *
 * `asInode()` gives the read-side walkers (bmap, dir lookup) a view of the *current*
 * state, e.g. a directory's block map after appendBlock but before save().
 *
 * Without waiting where possible: `loadResident` and `save` (synchronous when the
 * inode-table block is resident, a promise otherwise) keep a create in a cached
 * directory free of promises; failures of save always arrive as rejections.
 */
import type { Handle } from "../journal/handle.ts";
import { Inode, type InodeFields } from "./inode.ts";
import { Missing } from "../cache.ts";
import type { Volume } from "./volume.ts";

export class WState {
  readonly ino: number;
  readonly fields: InodeFields;
  readonly iblock: Uint8Array;
  /** Inode is new in this operation (its slot must be initialised on save). */
  fresh: boolean;
  private readonly base: Inode | undefined;
  /** The last asInode() view. */
  private view: Inode | undefined;

  constructor(ino: number, fields: InodeFields, iblock: Uint8Array, base?: Inode, fresh = false) {
    this.ino = ino;
    this.fields = fields;
    this.iblock = iblock;
    this.base = base;
    this.fresh = fresh;
  }

  static async load(vol: Volume, ino: number): Promise<WState> {
    return WState.of(await vol.inodes.get(ino));
  }

  /** load() without waiting: Missing when the inode's table block must be read first. */
  static loadResident(vol: Volume, ino: number): WState | Missing {
    const inode = vol.inodes.getResident(ino);
    return inode instanceof Missing ? inode : WState.of(inode);
  }

  private static of(inode: Inode): WState {
    return new WState(inode.ino, inode.fields(), inode.iblock.slice(), inode);
  }

  get generation(): number {
    return this.fields.generation;
  }

  get isDir(): boolean {
    return (this.fields.mode & 0o170000) === 0o040000;
  }

  /**
   * A read-side Inode view of the current (unsaved) state. Walkers call this once per
   * block they map (a directory insert maps each index level), so a view is handed out
   * again while it still shows exactly the current state — the last one built, or the
   * inode this state was loaded from (a directory a create has not changed yet): the
   * fields are compared one by one and the block map byte by byte, which is far cheaper
   * than copying the block map and building a new object.
   */
  asInode(): Inode {
    if (this.view && this.viewCurrent(this.view)) return this.view;
    if (this.base && this.viewCurrent(this.base)) return (this.view = this.base);
    const f = this.fields;
    const view = Object.create(Inode.prototype) as Inode;
    Object.assign(view, {
      ino: this.ino, iblock: this.iblock.slice(), mode: f.mode, uid: f.uid, gid: f.gid, size: f.size, nlink: f.nlink,
      flags: f.flags >>> 0, blocks512: f.blocks512, atime: f.atime, mtime: f.mtime, ctime: f.ctime, crtime: f.crtime,
      generation: f.generation, dtime: f.dtime, fileAcl: this.base?.fileAcl ?? 0, rdevMajor: 0, rdevMinor: 0,
    });
    return (this.view = view);
  }

  /** Does inode v show exactly the current state? */
  private viewCurrent(v: Inode): boolean {
    const f = this.fields;
    if (v.mode !== f.mode || v.uid !== f.uid || v.gid !== f.gid || v.size !== f.size || v.nlink !== f.nlink) return false;
    if (v.flags !== f.flags >>> 0 || v.blocks512 !== f.blocks512 || v.generation !== f.generation || v.dtime !== f.dtime) return false;
    if (!sameTime(v.atime, f.atime) || !sameTime(v.mtime, f.mtime) || !sameTime(v.ctime, f.ctime)) return false;
    if (v.crtime === null || f.crtime === null ? v.crtime !== f.crtime : !sameTime(v.crtime, f.crtime)) return false;
    const a = this.iblock;
    const b = v.iblock;
    for (let i = 0; i < 60; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /**
   * Write this state through h (fresh inodes get their slot initialised). Synchronous
   * when the inode-table block is resident (the common case), else a promise.
   */
  save(vol: Volume, h: Handle): void | Promise<void> {
    const opts = { iblock: this.iblock, fresh: this.fresh, extents: (this.fields.flags & extentsFlag(vol)) !== 0 };
    let done: boolean;
    try {
      done = vol.inodes.writeResident(h, this.ino, this.fields, opts);
    } catch (e) {
      return Promise.reject(e); // failures arrive as rejections, as they always did
    }
    if (done) {
      this.fresh = false;
      return;
    }
    return vol.inodes.write(h, this.ino, this.fields, opts).then(() => {
      this.fresh = false;
    });
  }

  /** save() on an error path, where a failure to save must not hide the first error. */
  async saveQuietly(vol: Volume, h: Handle): Promise<void> {
    try {
      await this.save(vol, h);
    } catch {
      // The operation is failing anyway; its own error is the one to report.
    }
  }
}

function sameTime(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

/** Current time as [seconds, nanoseconds]. */
export function nowTime(): [number, number] {
  const ms = Date.now();
  const s = Math.floor(ms / 1000);
  return [s, (ms - s * 1000) * 1_000_000];
}

/** INODE_FL_EXTENTS of vol's engine, read from the engine once (every save needs it). */
const extentsFlags = new WeakMap<object, number>();
export function extentsFlag(vol: Volume): number {
  let f = extentsFlags.get(vol.engine);
  if (f === undefined) extentsFlags.set(vol.engine, (f = vol.engine.constant("INODE_FL_EXTENTS") >>> 0));
  return f;
}
