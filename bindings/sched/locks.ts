/**
 * Async locks for the engine's cooperative concurrency.
 *
 * JS runs one thing at a time, but an operation that awaits a device read gives others a
 * turn in the middle of its critical section. These locks make such sections exclusive:
 *   Mutex    — one holder at a time, FIFO fairness.
 *   RwLock   — many shared holders or one exclusive; waiting writers block new readers
 *              (no writer starvation). The lazy-init zeroer takes a group exclusively
 *              while inode allocation in that group takes it shared.
 * Always release in `finally` (or use `run`/`shared`/`exclusive`, which do).
 */

type Waiter = () => void;

export class Mutex {
  private held = false;
  private readonly queue: Waiter[] = [];

  /** Resolves when the caller holds the lock; call the returned function to release. */
  async lock(): Promise<() => void> {
    if (this.held) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.held = true;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next) next();
      else this.held = false;
    };
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

  get locked(): boolean {
    return this.held;
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
