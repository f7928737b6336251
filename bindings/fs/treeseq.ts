/**
 * Tree sequences: how lock-free readers notice that a file's block map changed under them.
 *
 * Why: readers (readInodeData, directRead, FileHandle.extents) must not take metaLock —
 * that would serialise them behind every write-back and conversion — yet they walk the
 * extent tree across awaits, starting from the inode's saved i_block. A writer may split,
 * merge or free a node they are about to load, or free (punch, truncate, unlink) a data
 * block they already mapped and hand it to another file. Without a check, such a reader
 * trips over a node that is no longer what its parent promised (EFSCORRUPTED on a healthy
 * volume) or, worse, returns another file's bytes.
 *
 * The answer is a sequence lock per inode, in the kernel's spirit:
 *   writer: the first time a transaction (Handle) changes inode N's block map it calls
 *           enter(h, N) — N becomes "busy" and its stamp moves; when h stops (after the
 *           inode was saved, so the inode table holds the new i_block) N's stamp moves
 *           again and N is idle once no other handle has it busy;
 *   reader: stable(): sample N's stamp (waiting while N is busy), read — the walk *and*
 *           the device reads of the data — then sample again. Same stamp: nothing that
 *           could free or move a block it used happened in between, the bytes are good.
 *           Changed (even if the read threw): fetch the inode again and redo the read.
 *           After MAX_TRIES the read runs under metaLock, where nothing can change.
 *           An error with the stamp unchanged is genuine corruption and is thrown at once.
 * Stamps come from one volume-wide counter that only grows, so a stamp can never come
 * back to a value a reader recorded (no ABA across a busy → idle → busy cycle).
 *
 * Locking and ownership: every writer holds metaLock (write path, fallocate, endio worker,
 * inodegc, orphan recovery), so enter() is called with metaLock held and the idle wakeups
 * happen in CacheHandle.stop before the lock is released. A reader that *holds* metaLock
 * must say so (locked = true): it reads once with no sampling — nobody else can change a
 * tree meanwhile, and waiting for "idle" or for metaLock would deadlock on itself.
 * Not covered yet: directory lookups and listings (dir.ts) map directory blocks without
 * a sequence; directories only change under metaLock too, but a lock-free readdir racing
 * a directory's growth or removal is not re-read.
 * Memory: an inode's entry lives while a handle has it busy or while any reader is inside
 * stable(); the last reader leaving drops the idle entries (a later reader that finds no
 * entry records stamp 0, and any later change gives a non-zero stamp).
 */
import { extentsFlag } from "./wstate.ts";
import { FsError } from "./errors.ts";
import type { Handle } from "../journal/handle.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import type { WState } from "./wstate.ts";
import type { EndIo } from "../sched/endio.ts";

/** Optimistic attempts before a reader falls back to reading under metaLock. */
export const MAX_TRIES = 4;

interface Entry {
  /** Handles that have changed (or are changing) this inode's block map and not stopped. */
  busy: number;
  /** Volume-wide clock value of the last enter/leave on this inode. */
  stamp: number;
  /** Readers waiting for busy to drop to 0. */
  waiters: (() => void)[];
}

/** Counters for vol.stats()-style inspection and tests. */
export interface TreeSeqStats {
  /** Reads that had to be redone because the block map changed under them. */
  retries: number;
  /** Reads that exhausted MAX_TRIES and ran under metaLock. */
  lockedFallbacks: number;
  /** Times a reader waited for a busy inode to become idle before reading. */
  waits: number;
}

export class TreeSeq {
  readonly stats: TreeSeqStats = { retries: 0, lockedFallbacks: 0, waits: 0 };
  private readonly entries = new Map<number, Entry>();
  private readonly entered = new WeakMap<Handle, Set<number>>();
  private clock = 0;
  private readers = 0;

  /**
   * Inode ino's block map is about to change (or blocks it mapped to be freed) inside h.
   * Caller holds metaLock and owns h; the first call per (h, ino) marks ino busy until h stops.
   */
  enter(h: Handle, ino: number): void {
    let mine = this.entered.get(h);
    if (mine?.has(ino)) return;
    if (!mine) {
      mine = new Set();
      this.entered.set(h, mine);
      const set = mine;
      h.onStop(() => {
        for (const n of set) this.leave(n);
        set.clear();
      });
    }
    mine.add(ino);
    const e = this.entry(ino);
    e.busy++;
    e.stamp = ++this.clock;
  }

  private leave(ino: number): void {
    const e = this.entries.get(ino);
    if (!e) return;
    e.busy = Math.max(0, e.busy - 1);
    e.stamp = ++this.clock;
    if (e.busy > 0) return;
    const w = e.waiters.splice(0);
    for (const wake of w) wake();
    if (this.readers === 0) this.entries.delete(ino);
  }

  private entry(ino: number): Entry {
    let e = this.entries.get(ino);
    if (!e) this.entries.set(ino, (e = { busy: 0, stamp: 0, waiters: [] }));
    return e;
  }

  /** ino's stamp now, or -1 while a handle has it busy. Any caller. */
  sample(ino: number): number {
    const e = this.entries.get(ino);
    if (!e) return 0;
    return e.busy > 0 ? -1 : e.stamp;
  }

  /** Resolve when no handle has ino busy. Caller must NOT hold metaLock. */
  idle(ino: number): Promise<void> {
    const e = this.entries.get(ino);
    if (!e || e.busy === 0) return Promise.resolve();
    this.stats.waits++;
    return new Promise((r) => e.waiters.push(r));
  }

  /**
   * Run read(inode) so that its result is consistent with one saved state of the inode's
   * block map (see the header). locked: the caller holds metaLock (read once, never wait).
   * read must be restartable: it may run several times and only its last result counts.
   */
  async stable<T>(vol: Volume, inode: Inode, locked: boolean, read: (inode: Inode) => Promise<T>): Promise<T> {
    if (locked) return read(inode);
    const ino = inode.ino;
    const generation = inode.generation;
    this.readers++;
    try {
      let cur = inode;
      for (let attempt = 0; attempt < MAX_TRIES; attempt++) {
        let before = this.sample(ino);
        if (before < 0) {
          await this.idle(ino);
          cur = await refetch(vol, ino, generation);
          before = this.sample(ino);
          if (before < 0) continue;
        }
        let result: T;
        try {
          result = await read(cur);
        } catch (e) {
          // Unchanged stamp: the error is about the tree as it is (genuine corruption, EIO).
          if (this.sample(ino) === before) throw e;
          this.stats.retries++;
          cur = await refetch(vol, ino, generation);
          continue;
        }
        if (this.sample(ino) === before) return result;
        this.stats.retries++;
        cur = await refetch(vol, ino, generation);
      }
      this.stats.lockedFallbacks++;
      return await vol.metaLock.run(async () => read(await refetch(vol, ino, generation)));
    } finally {
      if (--this.readers === 0) {
        for (const [n, e] of this.entries) if (e.busy === 0) this.entries.delete(n);
      }
    }
  }
}

/**
 * The inode as saved now. A different generation means the file was freed and its number
 * reused while we read: its bytes are not ours to return.
 */
async function refetch(vol: Volume, ino: number, generation: number): Promise<Inode> {
  const now = await vol.inodes.get(ino);
  if (now.generation !== generation || now.mode === 0) {
    throw new FsError("ENOENT", `inode ${ino} was deleted while being read`, { syscall: "read" });
  }
  return now;
}

const seqs = new WeakMap<Volume, TreeSeq>();

/** The volume's tree sequences (created on first use). Any caller. */
export function treeSeqOf(vol: Volume): TreeSeq {
  let t = seqs.get(vol);
  if (!t) seqs.set(vol, (t = new TreeSeq()));
  return t;
}

/**
 * Before blocks of s are freed (truncate, punch, unlink's release, inodegc): wait for the
 * device requests of s's direct I/O and IoEnds, and convert the completed ones in h, so no
 * request in flight lands on a block after it has been freed (and perhaps reallocated).
 * Caller holds metaLock, owns h and saves s.
 */
export async function quiesceForFree(vol: Volume, h: Handle, s: WState): Promise<void> {
  const endio = vol.background.get<EndIo>("endio");
  if (!endio) return;
  await endio.waitInode(s.ino, true);
  if ((s.fields.flags & extentsFlag(vol)) !== 0) {
    await endio.convertInode(h, s, vol.writeParts.tree(s));
  }
}

/**
 * Wait for every promise, then throw the first failure. Unlike Promise.all, no request of
 * a failed read pass is still writing into the caller's buffer when the pass is redone.
 */
export async function settleAll(ps: Promise<unknown>[]): Promise<void> {
  const r = await Promise.allSettled(ps);
  const bad = r.find((x) => x.status === "rejected") as PromiseRejectedResult | undefined;
  if (bad) throw bad.reason;
}
