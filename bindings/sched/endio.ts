/**
 * io_end: completion-time conversion of unwritten extents (the volume's "endio" service).
 *
 * Why: a block that was just allocated still holds whatever a deleted file left there. If
 * the extent that maps it were written before the data reached the device, a reader — or
 * a crash — in between would see those stale bytes. So new blocks are mapped *unwritten*
 * (they read as zeros), the data is sent to the device, and only when the device has
 * completed every request carrying that extent's data is the extent flipped to written.
 *
 * One IoEnd per extent being written, reference counted:
 *   +1 the submitter, from begin() until it has handed every piece to the device (put());
 *   +1 each device request ("bio") carrying part of the extent (submit());
 *   −1 as each request completes, successfully or not.
 * A write split into many device requests (size limits) therefore shares one IoEnd and is
 * converted once, as one range, instead of piecewise. The last put never converts inline
 * — it runs inside a device completion — it only queues the IoEnd and schedules the
 * completion worker on a later macrotask. A failed request marks its IoEnd failed: the
 * range is left unwritten (reads zeros, never stale bytes) and the error goes to the
 * writer that waits on `done`, or, for write-back with no waiter, to the inode's next
 * fsync. An IoEnd of zero length, or a failed one, is released without converting.
 *
 * Locking: conversion changes the extent tree, so it runs under the volume's metaLock in
 * one CacheHandle transaction per inode. The queue has three consumers, all holding
 * metaLock: the worker (takes metaLock itself, converts everything queued, merges each
 * converted range with its written neighbours through ExtentTree.convert); a direct writer
 * whose own requests just completed (convertOwn: it is waiting anyway, so it converts its
 * inode's queue itself rather than pay a macrotask hop and a worker pass per write — it
 * runs in the writer's async context, after the device promise settled, never inside the
 * device callback); and a metaLock holder that needs one inode's conversions now —
 * write-back and fsync call convertInode(h, s, tree) with the WState they are already
 * changing, because the worker cannot get the lock they hold, and converting through a
 * second WState of the same inode would be overwritten by theirs. No IoEnd is ever
 * converted twice: whoever converts it first removes it from the queue. The worker and
 * convertOwn settle `done` only after the inode is saved.
 *
 * Lifecycle (BackgroundService): start() lets the worker run; flush() waits until nothing
 * is in flight and the queue is empty (while running); stop() waits for a pass in progress
 * and leaves later completions queued until start(). Completions keep being accepted while
 * stopped — the device finishes what it was given.
 */
import { macrotask } from "./macrotask.ts";
import { FsError } from "../fs/errors.ts";
import type { BackgroundService } from "../fs/background.ts";
import type { Handle } from "../journal/handle.ts";
import { CacheHandle } from "../journal/handle.ts";
import type { Volume } from "../fs/volume.ts";
import { WState, nowTime } from "../fs/wstate.ts";
import type { ExtentTree } from "../fs/extent_tree.ts";

/** One extent being written: logical [lblk, lblk+len) of inode ino at physical phys. */
export class IoEnd {
  readonly ino: number;
  readonly lblk: number;
  readonly phys: number;
  readonly len: number;
  /** i_size to reach once converted (a direct write extending the file), or 0. */
  readonly sizeTo: number;
  /** Someone awaits `done` (a direct writer); otherwise errors go to the inode's fsync. */
  readonly waited: boolean;
  /** Set mtime/ctime in the conversion's transaction (a direct write that saved nothing up front). */
  readonly touch: boolean;
  /** References held (submitter + device requests in flight). */
  refs = 1;
  /** Device requests that carried part of this extent. */
  bios = 0;
  error: unknown = undefined;
  /** Settles after conversion (or with the I/O error). */
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (e: unknown) => void;

  constructor(ino: number, lblk: number, phys: number, len: number, sizeTo: number, waited: boolean, touch = false) {
    this.ino = ino;
    this.lblk = lblk;
    this.phys = phys;
    this.len = len;
    this.sizeTo = sizeTo;
    this.waited = waited;
    this.touch = touch;
    this.done = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // A waiter that gave up (e.g. threw earlier) must not leave an unhandled rejection.
    this.done.catch(() => {});
  }
}

export interface EndIoStats {
  /** IoEnds begun and not yet converted or released. */
  inFlight: number;
  /** Completed IoEnds waiting for the worker. */
  queued: number;
  ioEnds: number;
  bios: number;
  conversions: number;
  blocksConverted: number;
  /** Extent merges done by conversions (converted range joined a neighbour). */
  merges: number;
  failures: number;
  workerPasses: number;
  /** Conversion passes run by direct writers themselves (convertOwn), skipping the worker. */
  writerPasses: number;
}

/** Per-inode bookkeeping: IoEnds not yet finished, waiters, the error fsync must report. */
interface InodeIo {
  open: number;
  dio: number;
  waiters: (() => void)[];
  error: unknown;
}

export class EndIo implements BackgroundService {
  readonly name = "endio";
  private readonly vol: Volume;
  private queue: IoEnd[] = [];
  private readonly live = new Set<IoEnd>();
  private readonly inodes = new Map<number, InodeIo>();
  private running = false;
  private scheduled = false;
  private pass: Promise<void> | undefined;
  private readonly writerRuns = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  private readonly counters = { ioEnds: 0, bios: 0, conversions: 0, blocksConverted: 0, merges: 0, failures: 0, workerPasses: 0, writerPasses: 0 };

  /** MountOptions.dioreadNolock: buffered write-back maps new blocks unwritten and converts at completion. */
  readonly dioreadNolock: boolean;

  constructor(vol: Volume, opts: { dioreadNolock?: boolean } = {}) {
    this.vol = vol;
    this.dioreadNolock = opts.dioreadNolock ?? true;
  }

  // ── submission side (any caller; begin() while holding metaLock so that punch and
  //    truncate, which wait for the inode's IoEnds under metaLock, see it) ────────────

  /** Start an IoEnd for [lblk, lblk+len) → phys of ino; the caller holds the submitter reference. */
  begin(ino: number, lblk: number, phys: number, len: number, opts: { sizeTo?: number; waited?: boolean; touch?: boolean } = {}): IoEnd {
    const io = new IoEnd(ino, lblk, phys, len, opts.sizeTo ?? 0, opts.waited ?? false, opts.touch ?? false);
    this.live.add(io);
    this.inode(ino).open++;
    this.counters.ioEnds++;
    return io;
  }

  /**
   * Send `data` to the device at byte `offset` as one request carrying part of io. The
   * returned promise settles (never rejects) after the request's reference is dropped.
   */
  submit(io: IoEnd, offset: number, data: Uint8Array): Promise<void> {
    if (io.refs <= 0) throw new FsError("EIO", "I/O submitted on a finished io_end");
    io.refs++;
    io.bios++;
    this.counters.bios++;
    let p: Promise<void>;
    try {
      p = this.vol.device.write(offset, data);
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.then(
      () => this.put(io),
      (e) => this.put(io, e),
    );
  }

  /** Drop one reference (the submitter's, or a completed request's, failed if err is given). */
  put(io: IoEnd, err?: unknown): void {
    if (err !== undefined) io.error ??= err;
    if (--io.refs > 0) return;
    if (io.refs < 0) return;
    if (io.error !== undefined || io.len === 0) {
      this.finish(io, io.error);
      return;
    }
    this.queue.push(io);
    // Lock holders waiting for the device (waitInode with holdsLock) may go on now.
    this.wake(io.ino);
    this.maybeAllIdle();
    this.schedule();
  }

  // ── direct-I/O accounting (the kernel's i_dio_count): punch/truncate wait for it ──

  /** A direct read or write of ino starts (counted until dioEnd). */
  dioBegin(ino: number): void {
    this.inode(ino).dio++;
  }

  dioEnd(ino: number): void {
    const s = this.inodes.get(ino);
    if (!s) return;
    s.dio--;
    this.maybeIdle(ino, s);
  }

  /**
   * Resolve when ino has no direct I/O in flight and every IoEnd of it has been converted
   * or released. A caller holding metaLock must pass holdsLock: it then waits only for the
   * device (the worker cannot convert without the lock) and converts with convertInode.
   */
  async waitInode(ino: number, holdsLock = false): Promise<void> {
    for (;;) {
      const s = this.inodes.get(ino);
      if (!s) return;
      const inFlight = holdsLock || !this.running ? this.submittedOf(ino) + s.dio : s.open + s.dio;
      if (inFlight === 0) return;
      await new Promise<void>((r) => s.waiters.push(r));
    }
  }

  /** The write-back error recorded for ino since the last call (cleared: reported once). */
  takeError(ino: number): unknown {
    const s = this.inodes.get(ino);
    if (!s || s.error === undefined) return undefined;
    const e = s.error;
    s.error = undefined;
    this.maybeIdle(ino, s);
    return e;
  }

  // ── conversion (metaLock held) ─────────────────────────────────────────────────────

  /**
   * Convert every queued IoEnd of s's inode through `tree` (the tree over s) in the
   * caller's transaction. Caller holds metaLock and will save s. Returns blocks converted.
   */
  async convertInode(h: Handle, s: WState, tree: ExtentTree): Promise<number> {
    const mine = this.take(s.ino);
    if (mine.length === 0) return 0;
    const n = await this.convertList(h, s, tree, mine);
    for (const io of mine) this.finish(io, undefined);
    return n;
  }

  /**
   * The direct writer's shortcut past the worker: once its own requests completed, the
   * writer (in its own async context, never a device callback) converts its inode's
   * queued IoEnds itself instead of waiting for a macrotask hop and a worker pass. Takes
   * metaLock; converts nothing if the worker or another writer already took `mine`
   * (whoever comes first converts everything queued for the inode, so concurrent writers
   * batch), or while the service is stopped (then the worker does it after start()).
   * Caller: directWrite, holding no lock. Settles mine's `done` (or leaves it to others).
   */
  async convertOwn(ino: number, mine: IoEnd[]): Promise<void> {
    if (!this.running || !mine.some((io) => this.queue.includes(io))) return;
    const run = this.vol.metaLock.run(async () => {
      if (!this.running) return;
      const list = this.take(ino);
      if (list.length === 0) return;
      this.counters.writerPasses++;
      await this.convertSaved(ino, list);
    });
    // stop() waits for these as it waits for a worker pass.
    this.writerRuns.add(run);
    try {
      await run;
    } finally {
      this.writerRuns.delete(run);
    }
  }

  /** Remove and return the queued IoEnds of ino. Caller holds metaLock. */
  private take(ino: number): IoEnd[] {
    const mine: IoEnd[] = [];
    const rest: IoEnd[] = [];
    for (const io of this.queue) (io.ino === ino ? mine : rest).push(io);
    if (mine.length) this.queue = rest;
    return mine;
  }

  /**
   * Convert list (all of ino) in a transaction of its own and settle every IoEnd only
   * after the inode is saved: a writer resumed by `done` must find the new root and size
   * in the inode, not just in a WState still being saved. Caller holds metaLock.
   */
  private async convertSaved(ino: number, list: IoEnd[]): Promise<void> {
    let err: unknown;
    const h = new CacheHandle(this.vol.cache);
    try {
      const s = await WState.load(this.vol, ino);
      await this.convertList(h, s, this.vol.writeParts.tree(s), list);
      await s.save(this.vol, h);
    } catch (e) {
      err = e;
    }
    try {
      await h.stop();
    } catch (e) {
      err ??= e;
    }
    // finish() ignores IoEnds already settled (convertList fails the rest itself).
    for (const io of list) this.finish(io, err);
  }

  /** Convert list's ranges through tree; on failure finishes them all with the error. Caller settles on success. */
  private async convertList(h: Handle, s: WState, tree: ExtentTree, list: IoEnd[]): Promise<number> {
    const bs = this.vol.blockSize;
    const alloc = this.vol.writeParts.alloc;
    let total = 0;
    // Ascending order lets each converted range merge into the one converted just before.
    list.sort((a, b) => a.lblk - b.lblk);
    for (let i = 0; i < list.length; i++) {
      const io = list[i]!;
      try {
        // Any cached copy of these blocks predates the data just written (a reader may have
        // pulled the old contents in while they belonged to another file): drop it before
        // the extent becomes readable. Uncached blocks (nearly all) cost no await.
        await this.vol.cache.invalidateRange(io.phys, io.len).catch(() => {});
        const before = tree.stats.merges;
        const n = await tree.convert(h, alloc, io.lblk, io.len, false);
        this.counters.merges += tree.stats.merges - before;
        this.counters.conversions++;
        this.counters.blocksConverted += n;
        total += n;
        if (io.sizeTo > s.fields.size) s.fields.size = Math.min(io.sizeTo, (io.lblk + io.len) * bs);
        if (io.touch) {
          const t = nowTime();
          s.fields.mtime = t;
          s.fields.ctime = t;
        }
      } catch (e) {
        // The rest stay unconverted (unwritten: zeros), and everyone waiting hears why.
        for (const rest of list.slice(i)) this.finish(rest, e);
        throw e;
      }
    }
    return total;
  }

  private finish(io: IoEnd, err: unknown): void {
    if (!this.live.delete(io)) return;
    const s = this.inode(io.ino);
    s.open--;
    if (err !== undefined) {
      this.counters.failures++;
      const e = err instanceof FsError && err.code === "EIO" ? err : new FsError("EIO", `write of logical blocks ${io.lblk}+${io.len} of inode ${io.ino} failed: ${err instanceof Error ? err.message : String(err)}`, { syscall: "write" });
      if (!io.waited) s.error ??= e;
      io.reject(e);
    } else {
      io.resolve();
    }
    this.maybeIdle(io.ino, s);
    this.maybeAllIdle();
  }

  // ── the worker ─────────────────────────────────────────────────────────────────────

  private schedule(): void {
    if (!this.running || this.scheduled) return;
    this.scheduled = true;
    // A later macrotask: never inside the device completion that made the last put.
    macrotask(() => {
      this.scheduled = false;
      if (!this.running || this.queue.length === 0) return;
      const prev = this.pass ?? Promise.resolve();
      this.pass = prev.then(() => this.runPass()).finally(() => {
        if (this.queue.length) this.schedule();
      });
    });
  }

  private async runPass(): Promise<void> {
    if (!this.running || this.queue.length === 0) return;
    await this.vol.metaLock.run(async () => {
      // Writers converting their own completions (convertOwn) may have emptied the queue
      // while this pass waited for the lock.
      const batch = this.queue;
      if (batch.length === 0) return;
      this.counters.workerPasses++;
      this.queue = [];
      const byIno = new Map<number, IoEnd[]>();
      for (const io of batch) {
        const l = byIno.get(io.ino);
        if (l) l.push(io);
        else byIno.set(io.ino, [io]);
      }
      for (const [ino, list] of byIno) await this.convertSaved(ino, list);
    });
  }

  // ── BackgroundService ─────────────────────────────────────────────────────────────

  /** The volume became writable: conversions may run. Called without metaLock. */
  start(): void {
    this.running = true;
    if (this.queue.length) this.schedule();
  }

  /** Wait until no IoEnd is in flight and (while running) none is queued. Called without metaLock. */
  async flush(): Promise<void> {
    for (;;) {
      const pending = this.running ? this.live.size : this.submittedCount();
      if (pending === 0) return;
      if (this.running && this.queue.length) this.schedule();
      await new Promise<void>((r) => {
        this.idleWaiters.push(r);
        // Re-check once the device or the worker made progress.
        setTimeout(r, 5);
      });
    }
  }

  /** Stop the worker after the pass (and writers' convertOwn) in progress; later completions stay queued. */
  async stop(): Promise<void> {
    this.running = false;
    await this.pass?.catch(() => {});
    await Promise.allSettled([...this.writerRuns]);
  }

  stats(): EndIoStats {
    return { inFlight: this.live.size, queued: this.queue.length, ...this.counters };
  }

  // ── bookkeeping ─────────────────────────────────────────────────────────────────────

  private inode(ino: number): InodeIo {
    let s = this.inodes.get(ino);
    if (!s) this.inodes.set(ino, (s = { open: 0, dio: 0, waiters: [], error: undefined }));
    return s;
  }

  /** IoEnds of ino still waiting for the device (not yet queued). */
  private submittedOf(ino: number): number {
    let n = 0;
    for (const io of this.live) if (io.ino === ino && io.refs > 0) n++;
    return n;
  }

  private submittedCount(): number {
    let n = 0;
    for (const io of this.live) if (io.refs > 0) n++;
    return n;
  }

  private wake(ino: number): void {
    const s = this.inodes.get(ino);
    if (!s) return;
    const w = s.waiters;
    s.waiters = [];
    for (const r of w) r();
  }

  private maybeIdle(ino: number, s: InodeIo): void {
    this.wake(ino);
    if (s.open === 0 && s.dio === 0 && s.error === undefined && s.waiters.length === 0) this.inodes.delete(ino);
  }

  private maybeAllIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const r of w) r();
  }
}

/** The endio service of a read-write volume (registered in Volume.buildWriteParts). */
export function endioOf(vol: Volume): EndIo {
  const e = vol.background.get<EndIo>("endio");
  if (!e) throw new FsError("EROFS", "read-only volume", { syscall: "write" });
  return e;
}
