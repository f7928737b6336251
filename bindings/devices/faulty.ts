/**
 * FaultyDevice: a BlockDevice wrapper that misbehaves on purpose, for tests.
 *
 * Why: the engine's correctness rests on the BlockDevice contract (types.ts) — requests
 * may complete in any order, only a completed flush() makes completed writes durable, any
 * request may fail. Well-behaved devices never exercise that, so this one can
 *   - delay requests (fixed or seeded-random ms; zeroout can be slowed separately),
 *   - complete them out of order (hold a window of requests, run them in shuffled order),
 *   - fail chosen requests (a predicate over {kind, offset, length, seq, kindSeq}),
 *   - crash: lose everything written since the last flush, or a seeded random part of it.
 * Every random choice comes from one seeded PRNG drawn in submission order, so a failing
 * test reproduces from its seed.
 *
 * The volatile layer (on unless `volatile: false`) models a disk's write cache. A write
 * that completes is recorded in an in-memory log and is not passed to the wrapped device;
 * reads see the wrapped device with the log laid over it. flush() takes the log entries
 * present when it is *called* (exactly the writes that may count on it), writes them
 * through in log order, flushes the wrapped device and drops them from the log. Writes
 * completing while a flush runs stay volatile. crash() marks the device dead at once
 * (every queued or later request rejects EIO), lets a running flush stop between two
 * write-throughs, then writes through a random subset of the log plus the writes still in
 * flight (`keep` is each one's probability; default 0 = drop all), in order, optionally
 * tearing writes at 512-byte sectors. reopen() then returns a fresh FaultyDevice over the
 * wrapped device: the "persisted" state to mount again.
 *
 *   reads:   inner device  <-  log entries overlapping, in completion order
 *   log:     [e1 write][e2 zeroout][e3 write] ...   order = completion order
 *   index:   1 MiB bucket -> entries touching it; entries wider than 64 MiB in `wide`
 *
 * Ownership: the wrapped device belongs to the caller; FaultyDevice never closes it.
 * close() waits for requests in flight and keeps the log; reopen() after a clean close
 * writes the log through (the host would have, eventually), after a crash it does not.
 */
import { FsError, type ErrorCode } from "../fs/errors.ts";
import { checkRange } from "./range.ts";
import type { BlockDevice } from "./types.ts";
import { countRequest, emptyStats, type DeviceStats } from "./memory.ts";

export type RequestKind = "read" | "write" | "flush" | "zeroout" | "discard";

/** What a fault predicate sees. offset/length are 0 for flush; counters are 1-based. */
export interface FaultRequest {
  readonly kind: RequestKind;
  readonly offset: number;
  readonly length: number;
  /** Position among all requests submitted to this device. */
  readonly seq: number;
  /** Position among requests of the same kind (the 3rd write has kindSeq 3). */
  readonly kindSeq: number;
}

/** true → the request fails with EIO; an ErrorCode → fails with that code; falsy → runs. */
export type FaultPredicate = (req: FaultRequest) => boolean | ErrorCode | null | undefined;

/** Milliseconds: a fixed number, or uniform in [min, max] from the seeded PRNG. */
export type DelaySpec = number | { min: number; max: number };

export interface CrashOptions {
  /** Probability that each unflushed write survives the crash (0 = none, 1 = all). Default 0. */
  keep?: number;
  /** Surviving writes keep only a random subset of their 512-byte sectors. Default false. */
  torn?: boolean;
  /** Seed for this crash's choices; default: the device's PRNG. */
  seed?: number;
}

export interface CrashReport {
  /** Unflushed writes (completed, or still in flight) when the crash happened. */
  unflushed: number;
  /** How many of them were written through (possibly torn). */
  kept: number;
  /** Request seq numbers of the kept ones, in the order they were applied. */
  keptSeqs: number[];
}

export interface FaultyOptions {
  /** PRNG seed for delays, reordering and crash choices. Default 1. */
  seed?: number;
  /** Delay before every request runs. */
  delay?: DelaySpec;
  /** Extra delay for zeroout requests. */
  zerooutDelay?: DelaySpec;
  /** Extra zeroout delay per MiB zeroed (a slow zeroing disk). */
  zerooutMsPerMiB?: number;
  /**
   * Hold requests (all but flush) and run them in shuffled order: a batch is released when
   * `window` requests are held (default 8) or `holdMs` after the first (default 0 — one
   * macrotask, which catches everything submitted in one burst).
   */
  reorder?: boolean | { window?: number; holdMs?: number };
  /** Decide, at submission, whether a request fails (see FaultyDevice.nth / overlapping). */
  fail?: FaultPredicate | null;
  /** Crash at the submission of the first request this matches (that request fails EIO). */
  crashWhen?: ((req: FaultRequest) => boolean) | null;
  /** How crashWhen crashes. */
  crashOptions?: CrashOptions;
  /** Model a volatile write cache (needed for crash()). Fixed at construction. Default true. */
  volatile?: boolean;
}

export interface FaultyStats extends DeviceStats {
  /** Requests rejected by the `fail` predicate. */
  failed: number;
  /** Requests submitted and not yet settled. */
  inFlight: number;
  /** Requests held for reordering right now. */
  held: number;
  /** Completed writes/zeroouts/discards not yet flushed (the volatile log). */
  unflushed: number;
  crashed: boolean;
}

/** xorshift32 over a scrambled seed: tiny, fast and reproducible; not for anything secret. */
class Prng {
  #s: number;
  constructor(seed: number) {
    let s = Math.imul((seed | 0) ^ 0x5bd1e995, 0x9e3779b1) >>> 0;
    if (s === 0) s = 0x6d2b79f5;
    this.#s = s;
    for (let i = 0; i < 4; i++) this.next();
  }
  /** Uniform in [0, 1). */
  next(): number {
    let x = this.#s;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.#s = x;
    return x / 4294967296;
  }
}

/** One completed, unflushed change. data null means "reads as zeros" (zeroout, discard). */
interface Entry {
  order: number;
  seq: number;
  kind: "write" | "zeroout" | "discard";
  offset: number;
  length: number;
  data: Uint8Array | null;
}

const BUCKET = 1 << 20;
const WIDE_BUCKETS = 64;
const SECTOR = 512;

function crashedError(syscall: string): FsError {
  return new FsError("EIO", "device has crashed (reopen() it)", { syscall });
}

export class FaultyDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize?: number;
  readonly #inner: BlockDevice;
  readonly #volatile: boolean;
  #opts: FaultyOptions = {};
  #rng: Prng = new Prng(1);
  #stats = emptyStats();
  #failed = 0;
  #seq = 0;
  #kindSeq: Record<RequestKind, number> = { read: 0, write: 0, flush: 0, zeroout: 0, discard: 0 };

  // Volatile log and its index (see header).
  #log: Entry[] = [];
  #order = 0;
  #buckets = new Map<number, Entry[]>();
  #wide: Entry[] = [];
  /** Writes submitted but not yet in the log: crash() may still let them reach the disk. */
  #pendingWrites = new Map<number, Entry>();

  #held: Array<() => Promise<void>> = [];
  #holdTimer: ReturnType<typeof setTimeout> | null = null;
  #releasing: Promise<void> = Promise.resolve();
  #flushing: Promise<void> = Promise.resolve();

  #inFlight = 0;
  #idleWaiters: Array<() => void> = [];
  #closed = false;
  #crashed = false;
  #crashDone: Promise<CrashReport> | null = null;

  /** Wrap `inner`; see FaultyOptions. */
  constructor(inner: BlockDevice, options: FaultyOptions = {}) {
    this.#inner = inner;
    this.size = inner.size;
    if (inner.blockSize !== undefined) this.blockSize = inner.blockSize;
    this.#volatile = options.volatile ?? true;
    this.configure(options);
  }

  /** Predicate: the n-th request (1-based) of `kind`, or of any kind. */
  static nth(kind: RequestKind | "any", n: number): (req: FaultRequest) => boolean {
    return (r) => (kind === "any" ? r.seq === n : r.kind === kind && r.kindSeq === n);
  }

  /** Predicate: the n-th request of `kind` and every later one (a disk that died). */
  static fromNth(kind: RequestKind | "any", n: number): (req: FaultRequest) => boolean {
    return (r) => (kind === "any" ? r.seq >= n : r.kind === kind && r.kindSeq >= n);
  }

  /** Predicate: requests of the given kinds (default: writes) touching [offset, offset+length). */
  static overlapping(offset: number, length: number, kinds: RequestKind[] = ["write"]): (req: FaultRequest) => boolean {
    return (r) => kinds.includes(r.kind) && r.offset < offset + length && offset < r.offset + r.length;
  }

  /** The wrapped device. */
  get inner(): BlockDevice {
    return this.#inner;
  }

  /** Change options from now on (volatile excepted); a given seed restarts the PRNG. */
  configure(options: FaultyOptions): void {
    this.#opts = { ...this.#opts, ...options };
    if (options.seed !== undefined) this.#rng = new Prng(options.seed);
  }

  /** A snapshot of the counters. */
  get stats(): FaultyStats {
    return {
      ...this.#stats,
      failed: this.#failed,
      inFlight: this.#inFlight,
      held: this.#held.length,
      unflushed: this.#log.length,
      crashed: this.#crashed,
    };
  }

  get crashed(): boolean {
    return this.#crashed;
  }

  /** Resolves when no request is in flight (delayed, held or running). */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Release every held request now (in shuffled order) instead of waiting for the window. */
  releaseHeld(): void {
    if (this.#holdTimer !== null) clearTimeout(this.#holdTimer);
    this.#holdTimer = null;
    const batch = this.#held;
    if (batch.length === 0) return;
    this.#held = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = Math.floor(this.#rng.next() * (i + 1));
      [batch[i], batch[j]] = [batch[j]!, batch[i]!];
    }
    // One at a time, so the completion order is the shuffled order, not a race.
    this.#releasing = this.#releasing.then(async () => {
      for (const run of batch) await run();
    });
  }

  /** Fill `into` from the wrapped device with unflushed writes laid over it. */
  read(offset: number, into: Uint8Array): Promise<void> {
    return this.#submit("read", offset, into.length, async () => {
      const over = this.#volatile ? this.#overlapping(offset, into.length) : [];
      await this.#inner.read(offset, into);
      for (const e of over) layEntry(e, offset, into);
    });
  }

  /** Record a write (copied now: the caller's view may be Wasm memory that moves). */
  write(offset: number, data: Uint8Array): Promise<void> {
    const copy = data.slice();
    return this.#submit("write", offset, data.length, (r) => this.#change(r.seq, "write", offset, copy.length, copy), copy);
  }

  /** Make the writes that completed before this call durable. */
  flush(): Promise<void> {
    const upTo = this.#order;
    return this.#submit("flush", 0, 0, () => {
      if (!this.#volatile) return this.#inner.flush();
      const run = this.#flushing.then(() => this.#persist(upTo));
      this.#flushing = run.catch(() => {});
      return run;
    });
  }

  /** Zero a range (volatile until flushed, like a write). */
  zeroout(offset: number, length: number): Promise<void> {
    return this.#submit("zeroout", offset, length, (r) => this.#change(r.seq, "zeroout", offset, length, null));
  }

  /** Discard a range: reads as zeros while volatile, then passed on to the wrapped device. */
  discard(offset: number, length: number): Promise<void> {
    return this.#submit("discard", offset, length, (r) => this.#change(r.seq, "discard", offset, length, null));
  }

  /** Refuse new requests (EBADF) and wait for those in flight. The wrapped device stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.releaseHeld();
    await this.idle();
  }

  /**
   * Power loss now: every queued and later request rejects EIO; unflushed writes are dropped
   * except a `keep`-probability subset. Resolves when the survivors are on the wrapped device.
   */
  crash(options: CrashOptions = {}): Promise<CrashReport> {
    if (this.#crashDone) return this.#crashDone;
    this.#crashed = true;
    // Taken now: released requests drop out of #pendingWrites as they fail.
    const inFlight = [...this.#pendingWrites.values()].sort((a, b) => a.seq - b.seq);
    this.#pendingWrites.clear();
    this.releaseHeld();
    const done = this.#flushing.then(() => this.#crashPersist(options, inFlight));
    this.#crashDone = done;
    done.catch(() => {});
    return done;
  }

  /**
   * A fresh FaultyDevice over the wrapped device's persisted state (with `options`, none by
   * default). Requires close() or crash() first; after a clean close the log is written
   * through and flushed first.
   */
  async reopen(options: FaultyOptions = {}): Promise<FaultyDevice> {
    if (this.#crashDone) {
      await this.#crashDone;
    } else if (this.#closed) {
      await this.idle();
      await this.#flushing;
      const all = this.#log.splice(0);
      for (const e of all) await this.#applyToInner(e, e.data);
      this.#reindexAll();
      await this.#inner.flush();
    } else {
      throw new FsError("EBUSY", "close() or crash() the device before reopen()", { syscall: "reopen" });
    }
    return new FaultyDevice(this.#inner, options);
  }

  // ---- request pipeline ----

  #submit(
    kind: RequestKind,
    offset: number,
    length: number,
    perform: (req: FaultRequest) => Promise<void>,
    writeData?: Uint8Array,
  ): Promise<void> {
    try {
      if (this.#closed) throw new FsError("EBADF", "faulty device is closed", { syscall: kind });
      if (this.#crashed) throw crashedError(kind);
      checkRange(this.size, offset, length, kind);
    } catch (e) {
      return Promise.reject(e);
    }
    countRequest(this.#stats, kind, length);
    const req: FaultRequest = { kind, offset, length, seq: ++this.#seq, kindSeq: ++this.#kindSeq[kind] };
    if (this.#opts.crashWhen?.(req)) {
      void this.crash(this.#opts.crashOptions);
      return Promise.reject(crashedError(kind));
    }
    const verdict = this.#opts.fail?.(req);
    const failCode: ErrorCode | null = verdict === true ? "EIO" : verdict ? verdict : null;
    const wait = this.#delayFor(kind, length);
    // A write not yet complete might still reach the media if the power fails now.
    let pending: Entry | undefined;
    if (writeData && this.#volatile && !failCode) {
      pending = { order: -1, seq: req.seq, kind: "write", offset, length, data: writeData };
      this.#pendingWrites.set(req.seq, pending);
    }
    this.#inFlight++;
    return new Promise<void>((resolve, reject) => {
      const run = async (): Promise<void> => {
        try {
          if (this.#crashed) throw crashedError(kind);
          if (failCode) {
            this.#failed++;
            throw new FsError(failCode, `injected failure of ${kind} #${req.kindSeq} at ${offset}+${length}`, { syscall: kind });
          }
          await perform(req);
          if (this.#crashed && kind !== "read") throw crashedError(kind);
          resolve();
        } catch (e) {
          reject(e);
        } finally {
          if (pending) this.#pendingWrites.delete(req.seq);
          this.#settled();
        }
      };
      const reorder = this.#opts.reorder;
      const afterDelay = (): void => {
        if (reorder && kind !== "flush" && !this.#crashed) this.#hold(run, reorder);
        else void run();
      };
      if (wait > 0) setTimeout(afterDelay, wait);
      else afterDelay();
    });
  }

  #settled(): void {
    if (--this.#inFlight > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #hold(run: () => Promise<void>, reorder: true | { window?: number; holdMs?: number }): void {
    const window = reorder === true ? 8 : reorder.window ?? 8;
    const holdMs = reorder === true ? 0 : reorder.holdMs ?? 0;
    this.#held.push(run);
    if (this.#held.length >= window || this.#closed) this.releaseHeld();
    else if (this.#holdTimer === null) this.#holdTimer = setTimeout(() => this.releaseHeld(), holdMs);
  }

  #delayFor(kind: RequestKind, length: number): number {
    const o = this.#opts;
    let ms = this.#draw(o.delay);
    if (kind === "zeroout") ms += this.#draw(o.zerooutDelay) + ((o.zerooutMsPerMiB ?? 0) * length) / (1 << 20);
    return ms;
  }

  #draw(spec: DelaySpec | undefined): number {
    if (spec === undefined) return 0;
    if (typeof spec === "number") return spec;
    return spec.min + this.#rng.next() * (spec.max - spec.min);
  }

  // ---- volatile log ----

  /** Complete a change: into the log (volatile) or straight to the wrapped device. */
  async #change(seq: number, kind: Entry["kind"], offset: number, length: number, data: Uint8Array | null): Promise<void> {
    if (!this.#volatile) {
      await this.#applyToInner({ order: 0, seq, kind, offset, length, data }, data);
      return;
    }
    // Completed now: from here on a crash sees it in the log, not as in flight.
    this.#pendingWrites.delete(seq);
    if (length === 0) return;
    const e: Entry = { order: this.#order++, seq, kind, offset, length, data };
    this.#log.push(e);
    this.#index(e);
  }

  #index(e: Entry): void {
    const first = Math.floor(e.offset / BUCKET);
    const last = Math.floor((e.offset + e.length - 1) / BUCKET);
    if (last - first >= WIDE_BUCKETS) {
      this.#wide.push(e);
      return;
    }
    for (let b = first; b <= last; b++) {
      const list = this.#buckets.get(b);
      if (list) list.push(e);
      else this.#buckets.set(b, [e]);
    }
  }

  /** Log entries touching a range, in log order. */
  #overlapping(offset: number, length: number): Entry[] {
    if (length === 0 || this.#log.length === 0) return [];
    const end = offset + length;
    const found = new Set<Entry>();
    const hits = (e: Entry): boolean => e.offset < end && offset < e.offset + e.length;
    for (let b = Math.floor(offset / BUCKET); b <= Math.floor((end - 1) / BUCKET); b++) {
      for (const e of this.#buckets.get(b) ?? []) if (hits(e)) found.add(e);
    }
    for (const e of this.#wide) if (hits(e)) found.add(e);
    return [...found].sort((a, b) => a.order - b.order);
  }

  /** Write the log entries older than `upTo` through, then flush the wrapped device. */
  async #persist(upTo: number): Promise<void> {
    let n = 0;
    while (n < this.#log.length && this.#log[n]!.order < upTo) n++;
    const batch = this.#log.slice(0, n);
    let done = 0;
    try {
      for (const e of batch) {
        if (this.#crashed) throw crashedError("flush");
        await this.#applyToInner(e, e.data);
        done++;
      }
    } finally {
      // Drop what reached the wrapped device, so a crash cannot re-apply it over newer data.
      this.#log.splice(0, done);
      this.#reindexAll();
    }
    if (this.#crashed) throw crashedError("flush");
    await this.#inner.flush();
  }

  #reindexAll(): void {
    this.#buckets.clear();
    this.#wide = [];
    for (const e of this.#log) this.#index(e);
  }

  async #applyToInner(e: Entry, data: Uint8Array | null): Promise<void> {
    const inner = this.#inner;
    if (e.kind === "write") {
      await inner.write(e.offset, data!);
    } else if (e.kind === "discard") {
      if (inner.discard) await inner.discard(e.offset, e.length);
    } else if (inner.zeroout) {
      await inner.zeroout(e.offset, e.length);
    } else {
      const zeros = new Uint8Array(Math.min(e.length, BUCKET));
      for (let pos = e.offset; pos < e.offset + e.length; pos += zeros.length) {
        await inner.write(pos, zeros.subarray(0, Math.min(zeros.length, e.offset + e.length - pos)));
      }
    }
  }

  async #crashPersist(options: CrashOptions, inFlight: Entry[]): Promise<CrashReport> {
    const rng = options.seed !== undefined ? new Prng(options.seed) : this.#rng;
    const keep = options.keep ?? 0;
    // Completed entries first: an in-flight write may rewrite bytes of an older one, never the reverse.
    const candidates = [...this.#log, ...inFlight];
    this.#log = [];
    this.#reindexAll();
    const report: CrashReport = { unflushed: candidates.length, kept: 0, keptSeqs: [] };
    for (const e of candidates) {
      // Draw for every candidate, kept or not, so one seed gives one outcome.
      if (!(rng.next() < keep)) continue;
      report.kept++;
      report.keptSeqs.push(e.seq);
      if (options.torn && e.kind === "write" && e.data) await this.#tornWrite(e, rng);
      else await this.#applyToInner(e, e.data);
    }
    return report;
  }

  /** Write a random subset of the 512-byte sectors (absolute alignment) of a write. */
  async #tornWrite(e: Entry, rng: Prng): Promise<void> {
    const end = e.offset + e.length;
    let pos = e.offset;
    while (pos < end) {
      const next = Math.min(end, (Math.floor(pos / SECTOR) + 1) * SECTOR);
      if (rng.next() < 0.5) await this.#inner.write(pos, e.data!.subarray(pos - e.offset, next - e.offset));
      pos = next;
    }
  }
}

/** Copy the part of entry `e` that overlaps [offset, offset+into.length) into `into`. */
function layEntry(e: Entry, offset: number, into: Uint8Array): void {
  const start = Math.max(e.offset, offset);
  const stop = Math.min(e.offset + e.length, offset + into.length);
  if (start >= stop) return;
  if (e.data) into.set(e.data.subarray(start - e.offset, stop - e.offset), start - offset);
  else into.fill(0, start - offset, stop - offset);
}
