/**
 * The lazy inode-table scheduler: ONE per JavaScript runtime, shared by every mounted
 * volume that still has inode tables to zero.
 *
 * Why one for everybody: zeroing is background work that competes with the user for the
 * device. Several volumes zeroing at once (often several images on the same host disk)
 * would multiply that competition; one walker that runs one group of one volume at a time
 * keeps the total bounded, and the per-request pacing (the request decides its own next
 * run time, see fs/itable_init.ts) keeps each volume's share at about 1/(1 + n).
 *
 * Life cycle (the point of this file): the scheduler does not exist until a request
 * registers; then it walks its list, runs every request that is due (one turn each, one
 * after the other — never two turns at once), and sleeps on a single timer until the
 * earliest next run. When the list becomes empty — the last request finished, or the last
 * volume unmounted / went read-only and unregistered — the timer is cleared and the
 * scheduler is dropped: no timer and no pending promise is left, so a process that
 * unmounted everything exits by itself. A later registration creates a new scheduler.
 *
 * The timer is deliberately NOT unref()'d: while a volume is mounted read-write with
 * tables left to zero, the work is real (like an open server socket), and a script that
 * awaits the end of zeroing must not see Node exit under it. Unmounting (or mounting with
 * initItable: false) is how a caller says "stop".
 *
 * Ownership: requests belong to their volume's service; the scheduler only calls
 * `turn()` and reads `nextRun`. A request is removed when its turn returns false (done,
 * or failed — the request records why) or when unregister() is called; unregister waits
 * for the request's turn in progress, so after it resolves nothing of that volume runs.
 * Turns run without any scheduler lock held (JS is single-threaded; the list is only
 * changed between awaits) and may take the volume's own locks.
 */

/** One volume's pending work, as the scheduler sees it. */
export interface LazyInitRequest {
  /** When the next turn is due, in performance.now() milliseconds. */
  readonly nextRun: number;
  /** Run one turn (one group); resolve false when the request is finished. Must not reject. */
  turn(): Promise<boolean>;
}

/** What the scheduler is doing, for tests and stats. */
export interface SchedulerState {
  requests: number;
  /** A walk (turns being run) is in progress. */
  walking: boolean;
  /** The sleep timer is armed. */
  timerArmed: boolean;
  /** Turns run since this scheduler was created. */
  turns: number;
}

// Longest stretch the walker runs turns back to back (initItable 0, or many volumes due)
// before yielding a macrotask, so timers and I/O callbacks of the foreground get a turn
// even when a turn completes without real I/O (a group with nothing left to zero).
const MAX_BUSY_MS = 20;

class Scheduler {
  /** Requests in registration order (the walk order). */
  readonly requests = new Set<LazyInitRequest>();
  /** The turn in progress, by request (at most one entry). */
  readonly running = new Map<LazyInitRequest, Promise<boolean>>();
  turns = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private walk: Promise<void> | undefined;

  /** Turns are being run (a walk that armed the timer is over, even before its promise settles). */
  get walking(): boolean {
    return this.walk !== undefined && this.timer === undefined;
  }
  get timerArmed(): boolean {
    return this.timer !== undefined;
  }

  /** Re-evaluate now: cancel the sleep and walk (unless a walk is already going). */
  kick(): void {
    // A walk that is running turns recomputes its sleep when its pass ends. (A walk that
    // has just armed the timer is over, even if its promise has not settled yet.)
    if (this.walking) return;
    this.clearTimer();
    const w: Promise<void> = this.run().finally(() => {
      if (this.walk === w) this.walk = undefined;
    });
    this.walk = w;
  }

  /** Drop the scheduler if nothing is left for it to do. */
  retireIfIdle(): void {
    if (this.requests.size > 0 || this.walking) return;
    this.clearTimer();
    if (current === this) current = undefined;
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async run(): Promise<void> {
    let busySince = performance.now();
    for (;;) {
      let next = Infinity;
      for (const r of [...this.requests]) {
        if (!this.requests.has(r)) continue; // unregistered during an earlier turn
        if (performance.now() >= r.nextRun) {
          const p = r.turn().catch(() => false);
          this.running.set(r, p);
          let more: boolean;
          try {
            more = await p;
          } finally {
            this.running.delete(r);
          }
          this.turns++;
          if (!more) this.requests.delete(r);
        }
        if (this.requests.has(r)) next = Math.min(next, r.nextRun);
      }
      if (this.requests.size === 0) break;
      const now = performance.now();
      if (next > now) {
        // Sleep until the earliest request is due; the timer starts a fresh walk.
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.kick();
        }, Math.min(next - now, 2 ** 31 - 1));
        return;
      }
      if (now - busySince > MAX_BUSY_MS) {
        await new Promise<void>((resolve) => setTimeout(resolve, 0));
        busySince = performance.now();
      }
    }
    // The list emptied: end this walk and, if nobody registered meanwhile, the scheduler.
    this.walk = undefined;
    this.retireIfIdle();
    // (kick() cannot have started another walk: it only does so while the timer is armed.)
  }
}

let current: Scheduler | undefined;

/** Add a request (creating the scheduler if there is none) and let it run when due. */
export function registerLazyInit(req: LazyInitRequest): void {
  const s = (current ??= new Scheduler());
  s.requests.add(req);
  s.kick();
}

/**
 * Remove a request; resolves once its turn in progress (if any) has finished, so nothing
 * of it runs afterwards. The scheduler goes away when this was the last request.
 */
export async function unregisterLazyInit(req: LazyInitRequest): Promise<void> {
  const s = current;
  if (!s) return;
  s.requests.delete(req);
  const turn = s.running.get(req);
  if (turn) await turn;
  s.retireIfIdle();
}

/** The scheduler's state, or undefined when there is none (no volume has work queued). */
export function lazyInitScheduler(): SchedulerState | undefined {
  const s = current;
  if (!s) return undefined;
  return { requests: s.requests.size, walking: s.walking, timerArmed: s.timerArmed, turns: s.turns };
}
