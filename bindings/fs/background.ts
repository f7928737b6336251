/**
 * The seam between a mounted volume and its background machinery.
 *
 * Three mechanisms do work behind the caller's back: lazy inode-table zeroing
 * (sched/lazyinit.ts), completion-time conversion of unwritten extents (sched/endio.ts)
 * and deferred inode inactivation (sched/inodegc.ts). They differ in what they do, but the
 * volume drives all of them through the same four moments, so that lifecycle rules live in
 * one place instead of being re-derived in every mechanism:
 *
 *   start  — the volume became writable (read-write mount, read-write remount, thaw);
 *   flush  — someone needs the results now (sync, statfs, freeze, remount, unmount): every
 *            queued item finishes before flush resolves;
 *   stop   — the volume stops being writable (freeze, read-only remount, unmount): nothing
 *            runs until the next start; queued items may stay queued;
 *   stats  — numbers for vol.stats().
 *
 * Ordering: callers flush before they stop; start and stop are idempotent. The volume calls
 * flush and stop only while it does NOT hold its metaLock, so a service's workers may take
 * metaLock to do their work and flush may wait for them without deadlock.
 */

/** One background mechanism attached to a volume. */
export interface BackgroundService {
  /** Key under which stats() appear in vol.stats(). */
  readonly name: string;
  /** Begin (or resume) work. Called without metaLock held. */
  start(): void;
  /** Resolve once every queued item is done. Called without metaLock held. */
  flush(): Promise<void>;
  /** Stop running work and wait for the item in progress. Called without metaLock held. */
  stop(): Promise<void>;
  /** Plain-data counters for vol.stats(). */
  stats(): unknown;
}

/** The services of one volume, driven together in registration order. */
export class Background {
  private readonly services: BackgroundService[] = [];
  private running = false;

  /** Attach a service; it starts at once if the volume is already running. */
  add(service: BackgroundService): void {
    this.services.push(service);
    if (this.running) service.start();
  }

  /** The service registered under name, if any. */
  get<T extends BackgroundService>(name: string): T | undefined {
    return this.services.find((s) => s.name === name) as T | undefined;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** The volume became writable: start every service. */
  start(): void {
    this.running = true;
    for (const s of this.services) s.start();
  }

  /** Finish all queued work of every service (errors from the first failing one are thrown after all ran). */
  async flush(): Promise<void> {
    let failure: unknown;
    for (const s of this.services) {
      try {
        await s.flush();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Stop every service (in reverse order of registration) and wait for work in progress. */
  async stop(): Promise<void> {
    this.running = false;
    let failure: unknown;
    for (const s of [...this.services].reverse()) {
      try {
        await s.stop();
      } catch (e) {
        failure ??= e;
      }
    }
    if (failure !== undefined) throw failure;
  }

  /** Every service's counters, keyed by name. */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.services) out[s.name] = s.stats();
    return out;
  }
}
