/**
 * Deferred inode inactivation ("inodegc"): unlink returns once the name is gone and the
 * inode is on the orphan list; background lanes free the blocks and the inode later.
 *
 * Why: freeing a file with thousands of extents is thousands of bitmap and tree updates.
 * Doing that inside unlink makes deleting a VM image or a build tree block the caller for
 * as long as the free takes. XFS answers with per-CPU queues drained by workers (seed
 * 004); here lanes stand in for CPUs. Crash safety comes from ext4's orphan list: the
 * transaction that drops the last link (or, for an open file, the one that dropped it
 * earlier) already put the inode on the list, so whatever the queues held when the machine
 * stopped, the next mount finishes it (fs/orphan.ts completeOrphans).
 *
 * The life of a queued inode:
 *   queue()       last link gone and no open handle → NEED_INACTIVE, pushed on the lane of
 *                 its allocation group (locality: its blocks and bitmap are near each
 *                 other). More than SCHEDULE_AT queued on a lane starts the worker now;
 *                 otherwise an idle timer (IDLE_DELAY_MS) starts it, so a few inodes do
 *                 not wait forever. More than THROTTLE_AT makes the caller wait for that
 *                 lane's worker once its transaction is over (settle), so a burst cannot
 *                 build an unbounded backlog.
 *   worker        takes the lane's whole list at once (the count drops to 0), flags every
 *                 inode INACTIVATING, and frees them through fs/orphan.ts inactivateStep:
 *                 transactions of at most BATCH_EXTENTS extents (so other operations
 *                 interleave) — several small inodes in one, a big one over several —
 *                 each inode's extents, then the inode, off the orphan list, out of the
 *                 inode cache.
 *   grab()        an inode number looked up while NEED_INACTIVE with no links is ENOENT
 *                 (it can never be re-grabbed); with links (not produced by this engine,
 *                 kept for the rule) every lane is kicked and the lookup retried;
 *                 INACTIVATING waits for the free. Paths cannot reach such inodes at all:
 *                 the transaction that queues an inode is the one that removed its last
 *                 name, and hard links and rename targets are found by name.
 *
 * Priority: in the kernel the worker runs on another CPU; here it shares the caller's thread
 * and metaLock. So a worker takes metaLock for a batch through Mutex.lockIdle (sched/
 * locks.ts): only when no foreground operation waits and none released the lock in the
 * last QUIET_MS — back-to-back unlinks never find a batch between them. The work is
 * "wanted now", and queues in FIFO order like any operation, when someone flushes
 * (sync/statfs/freeze/unmount), a lookup waits on one of its inodes, a throttled caller
 * waits for the lane, or the lane holds more than THROTTLE_AT (the foreground would be
 * throttled anyway). A batch that waited MAX_DEFER_MS for quiet queues too, so a busy
 * foreground slows the freeing down but never stops it.
 *
 * ENOSPC: space held by queued inodes is free in every sense but the bitmaps'. An
 * operation that fails with ENOSPC while the lanes hold work drains them (reclaim) and
 * runs once more (retryAfterReclaim; VolumeWriter.txn uses its second half,
 * retryIfReclaimable), as XFS flushes its inodegc queues before it reports ENOSPC.
 *
 * Lifecycle (fs/background.ts): start() lets workers run; flush() drains every lane;
 * stop() keeps inodes queueing but runs nothing (a worker stops between batches, its
 * unfinished inode goes back to the head of its lane still on the orphan list). Shrinking
 * the lanes (setLanes) folds each removed lane's queue into a remaining one and schedules
 * it, like XFS moving a dead CPU's list.
 *
 * Locking: queue() runs inside an operation's transaction, under metaLock: it only touches
 * JS state. Workers, flush(), settle() and grab() run without metaLock; a worker takes it
 * once per batch transaction, so flush may wait for workers without deadlock.
 */
import { FsError } from "../fs/errors.ts";
import type { BackgroundService } from "../fs/background.ts";
import type { Volume } from "../fs/volume.ts";
import { inactivateStep, BATCH_EXTENTS, type StepResult } from "../fs/orphan.ts";
import { CacheHandle } from "../journal/handle.ts";

/** A lane with more than this many queued inodes starts its worker at once. */
export const SCHEDULE_AT = 32;
/** A lane with more than this many queued inodes makes the queuing caller wait. */
export const THROTTLE_AT = 256;
/** A lane below SCHEDULE_AT is drained this long after its first queued inode. */
export const IDLE_DELAY_MS = 5;
/**
 * A worker batch waits until foreground operations have left metaLock alone this long
 * (ms): back-to-back operations never find a batch between them.
 */
export const QUIET_MS = 2;
/** …but never waits longer than this (ms) for quiet: background work always progresses. */
export const MAX_DEFER_MS = 50;
/** Upper bound for setLanes / the lanes option. */
export const MAX_LANES = 64;

export type InodeGcOptions = boolean | { lanes?: number } | undefined;

const NEED_INACTIVE = 1;
const INACTIVATING = 2;

interface Lane {
  items: number[];
  /** Throttled callers waiting for this lane. */
  waiters: number;
  run: Promise<void> | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface InodeGcStats {
  lanes: number;
  queued: number[];
  /** Callers made to wait for a lane's worker (backpressure). */
  throttled: number;
  /** Inodes freed. */
  inactivated: number;
  /** Transactions the workers committed (a big file takes several). */
  batches: number;
  /** Worker runs started. */
  runs: number;
  /** Lookups answered ENOENT because the inode was queued. */
  lookupsRefused: number;
  /** Operations that hit ENOSPC with inodes queued, drained the lanes and retried. */
  enospcReclaims: number;
  errors: number;
  running: boolean;
}

function checkLanes(n: unknown, syscall: string): number {
  if (!(typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= MAX_LANES)) {
    throw new FsError("EINVAL", `bad inodegc lane count ${String(n)}: expected 1 to ${MAX_LANES}`, { syscall });
  }
  return n;
}

/** Lane count from the mount option (validated; EINVAL on nonsense). */
export function inodegcLanes(option: InodeGcOptions): number {
  if (option === undefined || option === true) return 4;
  if (option === false) return 0;
  if (option === null || typeof option !== "object") {
    throw new FsError("EINVAL", "inodegc must be a boolean or { lanes?: number }", { syscall: "mount" });
  }
  return option.lanes === undefined ? 4 : checkLanes(option.lanes, "mount");
}

/**
 * Run fn; if it fails with ENOSPC while inodegc still holds space (queued inodes or a
 * worker freeing), drain the lanes and run it once more. fn must be safe to run again
 * after an ENOSPC failure: it changed nothing, or running it again gives the state a
 * first success would have (VolumeWriter.txn documents which operations qualify). Call
 * without metaLock; fn takes it itself.
 */
export async function retryAfterReclaim<T>(vol: Volume, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    return retryIfReclaimable(vol, e, fn);
  }
}

/**
 * The second half of retryAfterReclaim, for callers that ran fn's first attempt
 * themselves (VolumeWriter.txn, without a wrapper on its success path): `e` is what that
 * attempt threw; rethrown unless it is an ENOSPC that draining inodegc may cure.
 */
export async function retryIfReclaimable<T>(vol: Volume, e: unknown, fn: () => Promise<T>): Promise<T> {
  const gc = e instanceof FsError && e.code === "ENOSPC" ? vol.background.get<InodeGc>("inodegc") : undefined;
  if (!gc?.reclaimable) throw e;
  await gc.reclaim();
  return fn();
}

export class InodeGc implements BackgroundService {
  readonly name = "inodegc";
  private readonly vol: Volume;
  private lanes: Lane[] = [];
  /** Workers of lanes removed by setLanes, still finishing the list they took. */
  private readonly retired = new Set<Promise<void>>();
  private readonly state = new Map<number, number>();
  /** Per-inode completion, for lookups that wait on an INACTIVATING inode. */
  private readonly done = new Map<number, { promise: Promise<void>; resolve: () => void }>();
  /** Transactions whose queue() overfilled a lane: the lane their caller must wait for. */
  private readonly owed = new WeakMap<object, Lane>();
  private running = false;
  /** flush()/reclaim() calls and lookups waiting on an inode: every lane's work is wanted now. */
  private pressing = 0;
  private startWaiters: (() => void)[] = [];
  private failure: unknown;
  private readonly inodesPerGroup: number;
  private readonly counters = { throttled: 0, inactivated: 0, batches: 0, runs: 0, lookupsRefused: 0, enospcReclaims: 0, errors: 0 };

  /** Created by Volume.buildWriteParts when the inodegc option is not false. */
  constructor(vol: Volume, lanes: number) {
    this.vol = vol;
    this.inodesPerGroup = vol.engine.x.geoInodesPerGroup() as number;
    for (let i = 0; i < checkLanes(lanes, "mount"); i++) this.lanes.push(this.newLane());
  }

  private newLane(): Lane {
    return { items: [], waiters: 0, run: undefined, timer: undefined };
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /** Queued inodes or a worker still freeing: space may come back. */
  get reclaimable(): boolean {
    return this.backlog > 0 || this.retired.size > 0 || this.lanes.some((l) => l.run !== undefined);
  }

  /**
   * Free everything queued now, for a caller that hit ENOSPC (XFS does the same before it
   * gives up). Unlike flush() a worker's stored failure stays for the next flush: it is
   * not this caller's error. Call without metaLock.
   */
  async reclaim(): Promise<void> {
    this.counters.enospcReclaims++;
    await this.urgently(() => this.drain());
  }

  // Run `work` (a wait on the workers) with their lock requests urgent (see lockIdle).
  private async urgently<T>(work: () => Promise<T>): Promise<T> {
    this.pressing++;
    this.vol.metaLock.nudge();
    try {
      return await work();
    } finally {
      this.pressing--;
    }
  }

  /** Total inodes waiting (not yet taken by a worker). */
  get backlog(): number {
    return this.lanes.reduce((n, l) => n + l.items.length, 0);
  }

  private laneOf(ino: number): Lane {
    const group = Math.floor((ino - 1) / this.inodesPerGroup);
    return this.lanes[group % this.lanes.length]!;
  }

  /**
   * Queue ino (nlink 0, no open handle, already on the orphan list in transaction h) for
   * freeing. Called inside h under metaLock; the caller's wait, if any, is settle(h).
   */
  queue(h: object, ino: number): void {
    if (this.state.has(ino)) return;
    this.state.set(ino, NEED_INACTIVE);
    const lane = this.laneOf(ino);
    lane.items.push(ino);
    if (lane.items.length > THROTTLE_AT) this.owed.set(h, lane);
    this.schedule(lane);
  }

  /** Does transaction h owe a wait (its queue() overfilled a lane)? Then call settle(h). */
  owes(h: object): boolean {
    return this.owed.has(h);
  }

  /** After transaction h released metaLock: wait for the lane its queue() overfilled, if any. */
  async settle(h: object): Promise<void> {
    const lane = this.owed.get(h);
    if (!lane) return;
    this.owed.delete(h);
    this.counters.throttled++;
    lane.waiters++;
    this.vol.metaLock.nudge();
    try {
      do {
        if (!this.running) await new Promise<void>((r) => this.startWaiters.push(r));
        // Joins the worker start() may already have launched: the caller waits for its run.
        await this.kick(lane);
      } while (lane.items.length > THROTTLE_AT && this.lanes.includes(lane));
    } finally {
      lane.waiters--;
    }
  }

  /**
   * How a worker of `lane` takes metaLock for one batch: low priority (only when the
   * foreground has been quiet, sched/locks.ts lockIdle) unless the work is wanted now —
   * a flush or a waiting lookup, a throttled caller, or more than THROTTLE_AT waiting in
   * the lane (the next caller waits anyway). Inodes the worker already took do not count,
   * as in XFS: they are being freed, the backlog is what was queued since.
   */
  private lockFor(lane: Lane): <T>(fn: () => Promise<T>) => Promise<T> {
    const idle = {
      quietMs: QUIET_MS,
      maxWaitMs: MAX_DEFER_MS,
      urgent: () => this.pressing > 0 || lane.waiters > 0 || lane.items.length > THROTTLE_AT,
    };
    return (fn) => this.vol.metaLock.runIdle(idle, fn);
  }

  /** Start the lane's worker now (over SCHEDULE_AT) or after the idle delay. */
  private schedule(lane: Lane): void {
    if (!this.running || lane.run || lane.items.length === 0) return;
    if (lane.items.length > SCHEDULE_AT) {
      void this.kick(lane);
      return;
    }
    lane.timer ??= setTimeout(() => {
      lane.timer = undefined;
      void this.kick(lane);
    }, IDLE_DELAY_MS);
  }

  /** Run the lane's worker (or join the running one); resolves when it stops. */
  private kick(lane: Lane): Promise<void> {
    if (lane.timer) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    if (lane.run) return lane.run;
    if (!this.running || lane.items.length === 0) return Promise.resolve();
    this.counters.runs++;
    const run = this.work(lane).finally(() => {
      lane.run = undefined;
      if (this.lanes.includes(lane)) this.schedule(lane);
    });
    lane.run = run;
    return run;
  }

  /**
   * The worker: take the lane's whole list, newest first (the order XFS's lockless list
   * hands it over; on the classic chain the newest orphan is the head, so taking it off
   * rewrites no other inode), and free it in transactions of at most BATCH_EXTENTS
   * extents — many small inodes share one, a big one takes several. Repeat while more
   * arrived. Stopped: what is left goes back to the lane, still on the orphan list.
   */
  private async work(lane: Lane): Promise<void> {
    const runLocked = this.lockFor(lane);
    while (this.running && lane.items.length) {
      const list = lane.items.reverse();
      lane.items = [];
      for (const ino of list) this.state.set(ino, INACTIVATING);
      let i = 0;
      while (i < list.length) {
        if (!this.running) {
          const rest = list.slice(i);
          for (const r of rest) this.state.set(r, NEED_INACTIVE);
          lane.items = rest.concat(lane.items);
          return;
        }
        const finished: [number, boolean][] = [];
        i = await runLocked(async () => {
          const h = new CacheHandle(this.vol.cache);
          let at = i;
          try {
            for (let budget = BATCH_EXTENTS; budget > 0 && at < list.length; ) {
              const ino = list[at]!;
              let step: StepResult;
              try {
                step = await inactivateStep(this.vol, h, ino, budget);
              } catch (e) {
                // The inode stays on the orphan list; the next mount retries it.
                this.counters.errors++;
                this.failure ??= e;
                finished.push([ino, false]);
                at++;
                continue;
              }
              budget -= step.used;
              if (!step.done) break;
              finished.push([ino, true]);
              at++;
            }
          } finally {
            await h.stop();
          }
          return at;
        });
        this.counters.batches++;
        // Only now, with the transaction over, may lookups of these numbers go ahead.
        for (const [ino, ok] of finished) {
          this.state.delete(ino);
          if (ok) this.counters.inactivated++;
          const d = this.done.get(ino);
          this.done.delete(ino);
          d?.resolve();
        }
      }
    }
  }

  /**
   * Lookup by inode number: ENOENT for a queued unlinked inode, wait for one being freed.
   * Call without metaLock (it may wait for a worker).
   */
  async grab(ino: number): Promise<void> {
    for (let tries = 0; tries < 1000; tries++) {
      const st = this.state.get(ino);
      if (st === undefined) return;
      if (st === NEED_INACTIVE) {
        const inode = await this.vol.inodes.get(ino);
        if (inode.nlink === 0) {
          this.counters.lookupsRefused++;
          throw new FsError("ENOENT", `inode ${ino} is unlinked and queued for freeing`, { syscall: "iget" });
        }
        await Promise.all(this.lanes.map((l) => this.kick(l)));
        continue;
      }
      let d = this.done.get(ino);
      if (!d) {
        let resolve!: () => void;
        const promise = new Promise<void>((r) => (resolve = r));
        d = { promise, resolve };
        this.done.set(ino, d);
      }
      const freed = d.promise;
      await this.urgently(() => freed);
    }
  }

  /** Resize to n lanes (1..MAX_LANES); removed lanes' queues fold into the rest and run. */
  setLanes(n: number): void {
    checkLanes(n, "setLanes");
    while (this.lanes.length < n) this.lanes.push(this.newLane());
    if (this.lanes.length === n) return;
    const removed = this.lanes.splice(n);
    for (let i = 0; i < removed.length; i++) {
      const old = removed[i]!;
      if (old.timer) clearTimeout(old.timer);
      old.timer = undefined;
      const into = this.lanes[(n + i) % n]!;
      into.items.push(...old.items);
      old.items = [];
      if (old.run) {
        const r = old.run;
        this.retired.add(r);
        void r.finally(() => this.retired.delete(r));
      }
      // Folded work runs now rather than after the idle delay.
      if (this.running && into.items.length) void this.kick(into);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const waiters = this.startWaiters;
    this.startWaiters = [];
    for (const w of waiters) w();
    for (const l of this.lanes) this.schedule(l);
  }

  async flush(): Promise<void> {
    await this.urgently(() => this.drain());
    const f = this.failure;
    this.failure = undefined;
    if (f !== undefined) throw f;
  }

  // Every lane empty and every worker (also retired ones) stopped.
  private async drain(): Promise<void> {
    for (;;) {
      const inFlight = [...this.retired, ...this.lanes.flatMap((l) => (l.run ? [l.run] : []))];
      if (this.running && this.backlog > 0) {
        await Promise.all([...this.retired, ...this.lanes.map((l) => this.kick(l))]);
        continue;
      }
      if (inFlight.length === 0) break;
      await Promise.all(inFlight);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const l of this.lanes) {
      if (l.timer) clearTimeout(l.timer);
      l.timer = undefined;
    }
    await Promise.all([...this.retired, ...this.lanes.flatMap((l) => (l.run ? [l.run] : []))]);
  }

  stats(): InodeGcStats {
    return {
      lanes: this.lanes.length,
      queued: this.lanes.map((l) => l.items.length),
      ...this.counters,
      running: this.running,
    };
  }
}
