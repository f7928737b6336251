/**
 * Async locks for the engine's cooperative concurrency.
 *
 * JS runs one thing at a time, but an operation that awaits a device read gives others a
 * turn in the middle of its critical section. These locks make such sections exclusive:
 *   Mutex    — one holder at a time, FIFO fairness; plus a low-priority way in
 *              (`lockIdle`) for background work.
 *   RwLock   — many shared holders or one exclusive; waiting writers block new readers
 *              (no writer starvation). The lazy-init zeroer takes a group exclusively
 *              while inode allocation in that group takes it shared.
 * Always release in `finally` (or use `run`/`shared`/`exclusive`, which do). `tryLock` /
 * `tryLockShared` take a lock only when that needs no waiting, for synchronous fast
 * paths that fall back to the waiting forms.
 *
 * Why a low-priority way in: in the kernel a background worker runs on another CPU, so a
 * single-threaded caller doing back-to-back operations never finds it in the way. Here
 * the worker shares the caller's thread and the volume's metaLock; in plain FIFO order it
 * slips in between two foreground operations whenever the caller awaits, and the caller's
 * next operation waits a whole batch. `lockIdle` is the idle detector: an idle waiter is
 * granted the lock only when no ordinary waiter is queued and no ordinary holder released
 * it within the last `quietMs`. Two escapes keep it from starving: `urgent()` (someone
 * needs the work done now — a flush, a throttled caller) and `maxWaitMs` (an idle waiter
 * that has waited that long queues like everyone else), so background work always makes
 * progress. Idle waiters are re-examined on every release, by a timer at the moment the
 * quiet period ends, and by `nudge()` when their urgency may have changed.
 */

type Waiter = () => void;

/** What lockIdle waits for (see the file comment). */
export interface IdleOptions {
  /** Grant only after ordinary holders left the lock alone this long (ms). */
  quietMs: number;
  /** After waiting this long the idle waiter queues like an ordinary one (ms). */
  maxWaitMs: number;
  /** True = the work is wanted now: queue like an ordinary waiter. */
  urgent?: () => boolean;
}

interface IdleWaiter {
  grant: Waiter;
  since: number;
  o: IdleOptions;
}

const clock = (): number => (typeof performance !== "undefined" ? performance.now() : Date.now());

export class Mutex {
  private held = false;
  private readonly queue: Waiter[] = [];
  private idleQueue: IdleWaiter[] = [];
  /** When an ordinary holder last released the lock (idle holders do not count). */
  private lastActive = -Infinity;
  /** When the pending timer fires (Infinity: none pending). */
  private timerAt = Infinity;

  /** Resolves when the caller holds the lock; call the returned function to release. */
  async lock(): Promise<() => void> {
    if (this.held) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.held = true;
    return this.releaser(false);
  }

  /**
   * lock() when that would not wait: the releaser, or undefined if the lock is held (then
   * call lock). A free lock has nobody queued, so this jumps no queue; idle waiters
   * yield to it exactly as to lock().
   */
  tryLock(): (() => void) | undefined {
    if (this.held) return undefined;
    this.held = true;
    return this.releaser(false);
  }

  /**
   * Low-priority lock for background work: resolves when the lock is free, nobody else
   * waits for it and it has been quiet for o.quietMs — or at once in FIFO order when
   * o.urgent() or o.maxWaitMs has passed. Never call while holding this lock.
   */
  async lockIdle(o: IdleOptions): Promise<() => void> {
    await new Promise<void>((grant) => {
      this.idleQueue.push({ grant, since: clock(), o });
      this.pump();
    });
    return this.releaser(true);
  }

  /** Re-examine idle waiters now (their urgency may have changed). */
  nudge(): void {
    this.pump();
  }

  private releaser(idle: boolean): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (!idle) this.lastActive = clock();
      const next = this.queue.shift();
      if (next) next();
      else {
        this.held = false;
        this.pump();
      }
    };
  }

  // Grant the lock to an idle waiter if the rules allow; promote urgent or aged ones to
  // the FIFO queue when the lock is busy; otherwise arm a timer for the next change.
  private pump(): void {
    if (this.idleQueue.length === 0) return;
    const t = clock();
    let wake = Infinity;
    const keep: IdleWaiter[] = [];
    for (const w of this.idleQueue) {
      const pressing = (w.o.urgent?.() ?? false) || t - w.since >= w.o.maxWaitMs;
      const quiet = this.queue.length === 0 && t - this.lastActive >= w.o.quietMs;
      if (!this.held && (pressing || quiet)) {
        this.held = true;
        w.grant();
        continue;
      }
      if (pressing) {
        // Busy lock: take a place in the ordinary queue (served in turn).
        this.queue.push(w.grant);
        continue;
      }
      keep.push(w);
      wake = Math.min(wake, w.since + w.o.maxWaitMs, this.lastActive + w.o.quietMs);
    }
    this.idleQueue = keep;
    if (keep.length === 0) return;
    // A busy lock pumps again on release; only the aging deadline needs the timer then.
    if (this.held) wake = Math.min(...keep.map((w) => w.since + w.o.maxWaitMs));
    this.arm(Math.max(wake, t + 0.5));
  }

  // One timer for the earliest deadline. A timer that is no longer needed is left to fire
  // (pump then finds nothing to do): cancelling costs more than the empty wake-up, and
  // this runs on every batch.
  private arm(at: number): void {
    if (this.timerAt <= at) return;
    this.timerAt = at;
    setTimeout(() => {
      if (this.timerAt === at) this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, at - clock()));
  }

  /** Run fn while holding the lock. */
  async run<T>(fn: () => Promise<T> | T): Promise<T> {
    const unlock = await this.lock();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  /** Run fn holding the lock taken through lockIdle. */
  async runIdle<T>(o: IdleOptions, fn: () => Promise<T> | T): Promise<T> {
    const unlock = await this.lockIdle(o);
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  get locked(): boolean {
    return this.held;
  }

  /** Ordinary waiters queued (the foreground demand on this lock). */
  get waiting(): number {
    return this.queue.length;
  }
}

export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly readQueue: Waiter[] = [];
  private readonly writeQueue: Waiter[] = [];

  async lockShared(): Promise<() => void> {
    if (this.writer || this.writeQueue.length > 0) await new Promise<void>((r) => this.readQueue.push(r));
    else this.readers++;
    return this.sharedReleaser();
  }

  /** lockShared() when that would not wait (no writer holds or waits), else undefined. */
  tryLockShared(): (() => void) | undefined {
    if (this.writer || this.writeQueue.length > 0) return undefined;
    this.readers++;
    return this.sharedReleaser();
  }

  private sharedReleaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.readers--;
      this.wake();
    };
  }

  async lockExclusive(): Promise<() => void> {
    if (this.writer || this.readers > 0) await new Promise<void>((r) => this.writeQueue.push(r));
    else this.writer = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.writer = false;
      this.wake();
    };
  }

  private wake(): void {
    if (this.writer || this.readers > 0) return;
    const w = this.writeQueue.shift();
    if (w) {
      this.writer = true;
      w();
      return;
    }
    while (this.readQueue.length) {
      this.readers++;
      this.readQueue.shift()!();
    }
  }

  async shared<T>(fn: () => Promise<T> | T): Promise<T> {
    const unlock = await this.lockShared();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }

  async exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    const unlock = await this.lockExclusive();
    try {
      return await fn();
    } finally {
      unlock();
    }
  }
}
