/**
 * FileDevice: a BlockDevice over a host file or block device, for Node.
 *
 * Why positional I/O on one FileHandle: the engine keeps many requests in flight and lets
 * them complete in any order, which is exactly what pread/pwrite give (no shared file
 * position to race on). Each request loops until its whole range is done, because the OS
 * may return short counts; a read that hits end-of-file fills the rest with zeros, since
 * the device's size can exceed the file's when the file was opened read-only with a
 * larger `size`.
 *
 * Views passed in are usually views of Wasm memory: they are handed to the syscall and
 * forgotten when the promise settles; nothing here keeps a reference.
 *
 * Why zeroout reads before it writes: Node cannot punch holes (no fallocate), and writing
 * zeros over a hole would allocate real disk blocks for an image that is meant to stay
 * sparse (mkfs zeroes journals and inode tables of freshly created, all-hole files). So
 * data is only overwritten where a 64 KiB granule holds a non-zero byte, from one shared
 * 1 MiB buffer of zeros. Truncating and re-extending the file when the range reaches its
 * end would punch for real, but a crash between the two truncates leaves a shorter file,
 * and a later open without `size` would then see a smaller device; not worth it.
 * `discard` is a hint and is a no-op here (so it teaches the device nothing).
 *
 * Why the device remembers where zeros are: reading a range to prove it is zero still
 * costs a copy per byte (mkfs zeroes 512 MiB of journal on 64 GiB, 16 GiB of inode tables
 * on 1 TiB without lazy init), while native mke2fs punches holes in no time. But most of
 * those ranges are holes this very device created: `open` extending the file appends a
 * hole no one has written. So the device keeps a bounded set of ranges certain to read as
 * zeros (ZeroRanges): `open` adds the appended tail, a successful zeroout adds its range,
 * and every write removes its range *before* the pwrite is issued. zeroout skips what the
 * set covers and read-checks the rest: 8 MiB pieces, at most 4 in flight per device,
 * each worker reusing one buffer. This relies on the file being ours while it is open
 * (another process writing into it would leave the set stale), which the engine assumes
 * anyway. Block devices start with an empty set: their old contents are unknown.
 *
 * Ordering with concurrent requests: a write issued while a zeroout of an overlapping
 * range is in flight (or in flight when the zeroout starts) may land before or after it,
 * so that zeroout does not claim the overlap when it finishes; on disjoint ranges the two
 * cannot interfere. A failed zeroout claims nothing; a failed write has already removed
 * its range. Forgetting a range is always safe, so the set drops its smallest ranges when
 * it outgrows ZERO_RANGE_CAP.
 *
 * Early write-back: a long stream of writes (a tree copied into a fresh image) would leave
 * all of its data dirty in the host's page cache until the engine's flush, which then
 * waits for the disk to take everything at once (~250 ms for 430 MiB here, a quarter of
 * such a copy). So once EARLY_FLUSH_BYTES have been written since the last flush, one
 * fdatasync is started in libuv's pool and left running while the engine goes on: the
 * disk works during the copy instead of after it, and flush() only waits for the tail.
 * It guarantees nothing by itself — flush() still does its own fdatasync — and its error
 * is not lost: Linux reports a write-back error to a file description once, so a failed
 * early fdatasync is kept and thrown by the next flush().
 *
 * Errors: OS errors become FsError with the same code and the path (unknown codes: EIO);
 * requests after close() reject with EBADF, writes on a read-only device with EROFS, bad
 * ranges with EINVAL.
 */
import { open as openFile, type FileHandle } from "node:fs/promises";
import { constants, readSync, writeSync } from "node:fs";
import { FsError, errnoCode } from "../fs/errors.ts";
import { checkRange } from "./range.ts";
import type { BlockDevice } from "./types.ts";
import type { FileDeviceOptions } from "./types.ts";
export type { FileDeviceOptions } from "./types.ts";
import { countRequest, emptyStats, type DeviceStats } from "./memory.ts";
import { ZeroRanges, subtract, type ZerooutWork } from "./zero-ranges.ts";

// Re-exported: tests and tools reach the zero bookkeeping through the Node device.
export { ZeroRanges, ZERO_RANGE_CAP, type ZerooutWork } from "./zero-ranges.ts";

/**
 * Requests up to this size use synchronous pread/pwrite (see read()). A cached 8 MiB copy
 * takes about a millisecond; through the pool the same copy leaves the engine — one JS
 * thread that has nothing else to do meanwhile — idle for it plus the round trip.
 */
const SYNC_IO_MAX = 8 << 20;
/** Bytes written since the last flush that start an early write-back (see the header). */
const EARLY_FLUSH_BYTES = 64 << 20;
/** Largest single pread/pwrite: Node refuses lengths over 2 GiB - 1. */
const MAX_IO = 1 << 30;
/** Zeroout writes zeros from one shared buffer of this size, in as many pwrites as needed. */
const ZERO_PIECE = 1 << 20;
let zeros: Uint8Array | null = null;
/** Read-check piece: large enough that syscall overhead vanishes, small enough to hold 4. */
const CHECK_PIECE = 8 << 20;
/** Read-check pieces in flight per device, across all its zeroouts (bounds memory at 32 MiB). */
const CHECK_DEPTH = 4;
/** Within a checked piece, zeros are rewritten only over 64 KiB granules holding data. */
const CHECK_GRANULE = 64 << 10;

/** A request whose range must not be claimed as zero by a zeroout overlapping it in time. */
interface Pending {
  start: number;
  end: number;
}
/** A zeroout in flight and the write ranges that overlapped it in time. */
interface ZeroJob extends Pending {
  dirty: Array<[number, number]>;
}

/** Turn whatever the OS threw into an FsError with the same code (EIO if we have no such code). */
function osError(e: unknown, syscall: string, path: string): FsError {
  if (e instanceof FsError) return e;
  const err = e as { code?: unknown; message?: unknown; syscall?: unknown } | null;
  const raw = typeof err?.code === "string" ? err.code : "";
  const code = errnoCode(raw);
  // Node's message repeats code, syscall and path, which FsError adds again; keep the middle.
  const text = typeof err?.message === "string" ? err.message : String(e);
  const why = text.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, "");
  return new FsError(code, raw && raw !== code ? `${why} (${raw})` : why, {
    syscall: typeof err?.syscall === "string" ? err.syscall : syscall,
    path,
    cause: e,
  });
}

/** Capacity of an open block device: stat reports 0, so find the last readable byte. */
async function probeSize(fh: FileHandle): Promise<number> {
  const one = new Uint8Array(1);
  const readable = async (n: number): Promise<boolean> =>
    n === 0 || (await fh.read(one, 0, 1, n - 1)).bytesRead === 1;
  // Grow an upper bound by doubling, then bisect on "byte n-1 exists".
  let lo = 0;
  let hi = 1 << 20;
  while (await readable(hi)) {
    lo = hi;
    if (hi * 2 > Number.MAX_SAFE_INTEGER) return hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await readable(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

export class FileDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize = 512;
  /** The path this device was opened with. */
  readonly path: string;
  readonly readOnly: boolean;
  /** True when the path is a block device rather than a regular file. */
  readonly isBlockDevice: boolean;
  #fh: FileHandle | null;
  #stats = emptyStats();
  #work = emptyWork();
  /** Ranges certain to read as zeros (see the header for who adds and who removes). */
  #known = new ZeroRanges();
  /** Writes issued and not yet settled. */
  #writing = new Set<Pending>();
  /** Zeroouts issued and not yet settled. */
  #zeroing = new Set<ZeroJob>();
  /** Free read-check slots, and the workers waiting for one (FIFO). */
  #slots = CHECK_DEPTH;
  #slotWaiters: Array<() => void> = [];
  /** Bytes written since the last flush or early write-back started. */
  #unflushed = 0;
  /** The early write-back in flight, if any, and the error of a failed one not yet thrown. */
  #early: Promise<void> | null = null;
  #earlyError: FsError | null = null;
  #earlyCount = 0;

  private constructor(fh: FileHandle, path: string, size: number, readOnly: boolean, isBlockDevice: boolean) {
    this.#fh = fh;
    this.path = path;
    this.size = size;
    this.readOnly = readOnly;
    this.isBlockDevice = isBlockDevice;
  }

  /** Open (or create) `path` as a device; OS errors reject as FsError with the OS code. */
  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const { size, create = false, readOnly = false } = options;
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new FsError("EINVAL", `bad device size ${size}`, { syscall: "open", path });
    }
    if (create && readOnly) {
      throw new FsError("EINVAL", "cannot create a file read-only", { syscall: "open", path });
    }
    const flags = readOnly ? constants.O_RDONLY : constants.O_RDWR | (create ? constants.O_CREAT : 0);
    let fh: FileHandle;
    try {
      fh = await openFile(path, flags, 0o666);
    } catch (e) {
      throw osError(e, "open", path);
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw new FsError("EISDIR", "is a directory", { syscall: "open", path });
      const isBlock = st.isBlockDevice();
      if (!isBlock && !st.isFile()) {
        throw new FsError("EINVAL", "not a regular file or block device", { syscall: "open", path });
      }
      let deviceSize: number;
      let holeFrom = -1;
      if (isBlock) {
        const capacity = await probeSize(fh);
        if (size !== undefined && size > capacity) {
          throw new FsError("EINVAL", `size ${size} exceeds the block device's ${capacity} bytes`, { syscall: "open", path });
        }
        deviceSize = size ?? capacity;
      } else {
        deviceSize = size ?? st.size;
        if (size !== undefined && !readOnly && st.size !== size) {
          await fh.truncate(size);
          if (size > st.size) holeFrom = st.size;
        }
      }
      const dev = new FileDevice(fh, path, deviceSize, readOnly, isBlock);
      // What truncate just appended is a hole: nobody has written it.
      if (holeFrom >= 0) dev.#known.add(holeFrom, deviceSize);
      return dev;
    } catch (e) {
      await fh.close().catch(() => {});
      throw osError(e, "open", path);
    }
  }

  /** A snapshot of the request counters. */
  get stats(): DeviceStats {
    return { ...this.#stats };
  }

  /** Zero the request counters (and the zeroout work counters). */
  resetStats(): void {
    this.#stats = emptyStats();
    this.#work = emptyWork();
  }

  /** A snapshot of how much zeroout skipped, read and rewrote. */
  get zerooutWork(): ZerooutWork {
    return { ...this.#work };
  }

  /** The ranges currently known to read as zeros, as [start, end) pairs in order. */
  knownZeroRanges(): Array<[number, number]> {
    return this.#known.ranges();
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#fh === null;
  }

  #handle(syscall: string, offset: number, length: number, writes: boolean): FileHandle {
    const fh = this.#fh;
    if (!fh) throw new FsError("EBADF", "file device is closed", { syscall, path: this.path });
    if (writes && this.readOnly) throw new FsError("EROFS", "device is read-only", { syscall, path: this.path });
    checkRange(this.size, offset, length, syscall);
    return fh;
  }

  /** Fill `into` from `offset`, zeros past the end of the file. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    const fh = this.#handle("read", offset, into.length, false);
    countRequest(this.#stats, "read", into.length);
    try {
      let done = 0;
      while (done < into.length) {
        const n = Math.min(into.length - done, MAX_IO);
        // Small requests (metadata blocks, small files) go through a synchronous pread:
        // a round trip through libuv's thread pool costs 10-30x the read itself for 4 KiB
        // (measured by bench/read), while a pread of a cached page takes microseconds.
        const bytesRead = n <= SYNC_IO_MAX ? readSync(fh.fd, into, done, n, offset + done) : (await fh.read(into, done, n, offset + done)).bytesRead;
        if (bytesRead === 0) {
          into.fill(0, done);
          break;
        }
        done += bytesRead;
      }
    } catch (e) {
      throw osError(e, "read", this.path);
    }
  }

  /** Write all of `data` at `offset`. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    const fh = this.#handle("write", offset, data.length, true);
    countRequest(this.#stats, "write", data.length);
    if (data.length === 0) return;
    // Before the pwrite is issued, so no zeroout from here on can skip this range, and
    // zeroouts already running learn not to claim it when they finish.
    const w: Pending = { start: offset, end: offset + data.length };
    this.#known.remove(w.start, w.end);
    for (const z of this.#zeroing) if (w.start < z.end && z.start < w.end) z.dirty.push([w.start, w.end]);
    this.#writing.add(w);
    try {
      if (data.length <= SYNC_IO_MAX) {
        // As for reads: small writes land in the page cache in microseconds (see read()).
        for (let done = 0; done < data.length; ) done += writeSync(fh.fd, data, done, data.length - done, offset + done);
      } else {
        await writeAll(fh, data, offset);
      }
    } catch (e) {
      throw osError(e, "write", this.path);
    } finally {
      this.#writing.delete(w);
    }
    this.#unflushed += data.length;
    if (this.#unflushed >= EARLY_FLUSH_BYTES && !this.#early) this.#startEarlyWriteback(fh);
  }

  /** How many early write-backs were started (see the header). */
  get earlyWritebacks(): number {
    return this.#earlyCount;
  }

  // Caller: write(), with no early write-back in flight.
  #startEarlyWriteback(fh: FileHandle): void {
    this.#unflushed = 0;
    this.#earlyCount++;
    this.#early = fh.datasync().then(
      () => {},
      (e) => {
        this.#earlyError ??= osError(e, "fdatasync", this.path);
      },
    ).finally(() => {
      this.#early = null;
    });
  }

  // Wait out an early write-back and take its error, if it failed (flush and close).
  async #settleEarly(): Promise<FsError | null> {
    if (this.#early) await this.#early;
    const err = this.#earlyError;
    this.#earlyError = null;
    return err;
  }

  /** fdatasync: every write that resolved before this call is on stable storage after it. */
  async flush(): Promise<void> {
    const fh = this.#handle("flush", 0, 0, false);
    countRequest(this.#stats, "flush", 0);
    if (this.readOnly) return;
    this.#unflushed = 0;
    const early = await this.#settleEarly();
    if (early) throw early;
    try {
      await fh.datasync();
    } catch (e) {
      throw osError(e, "fdatasync", this.path);
    }
  }

  /** Make a range read as zeros, leaving holes as holes (see the header for how and why). */
  async zeroout(offset: number, length: number): Promise<void> {
    const fh = this.#handle("zeroout", offset, length, true);
    countRequest(this.#stats, "zeroout", length);
    if (length === 0) return;
    const job: ZeroJob = { start: offset, end: offset + length, dirty: [] };
    for (const w of this.#writing) if (w.start < job.end && job.start < w.end) job.dirty.push([w.start, w.end]);
    this.#zeroing.add(job);
    const gaps = this.#known.gaps(job.start, job.end);
    let unknown = 0;
    for (const [s, e] of gaps) unknown += e - s;
    this.#work.bytesSkipped += length - unknown;
    try {
      if (unknown > 0) await this.#checkAndZero(fh, gaps);
    } catch (e) {
      throw osError(e, "zeroout", this.path);
    } finally {
      this.#zeroing.delete(job);
    }
    // Reads as zeros now, except where a write overlapped this zeroout in time: which of
    // the two landed last is unknown there, so that part is not claimed.
    for (const [s, e] of subtract(job.start, job.end, job.dirty)) this.#known.add(s, e);
  }

  // Read-check `gaps` in CHECK_PIECE pieces with up to CHECK_DEPTH workers (shared by all
  // zeroouts of this device), each reusing one buffer for all its pieces. Settles only
  // once every worker has stopped, so nothing of this zeroout is in flight afterwards.
  async #checkAndZero(fh: FileHandle, gaps: Array<[number, number]>): Promise<void> {
    let gi = 0;
    let pos = gaps[0]![0];
    let pieces = 0;
    let widest = 0;
    for (const [s, e] of gaps) {
      pieces += Math.ceil((e - s) / CHECK_PIECE);
      widest = Math.max(widest, Math.min(CHECK_PIECE, e - s));
    }
    const next = (): [number, number] | null => {
      while (gi < gaps.length) {
        const gapEnd = gaps[gi]![1];
        if (pos < gapEnd) {
          const n = Math.min(CHECK_PIECE, gapEnd - pos);
          pos += n;
          return [pos - n, n];
        }
        if (++gi < gaps.length) pos = gaps[gi]![0];
      }
      return null;
    };
    let failed = false;
    const worker = async (): Promise<void> => {
      await this.#takeSlot();
      try {
        const buf = new Uint8Array(widest);
        for (let p = next(); p && !failed; p = next()) await this.#checkPiece(fh, buf.subarray(0, p[1]), p[0]);
      } catch (e) {
        failed = true;
        throw e;
      } finally {
        this.#giveSlot();
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < Math.min(CHECK_DEPTH, pieces); i++) workers.push(worker());
    const settled = await Promise.allSettled(workers);
    for (const r of settled) if (r.status === "rejected") throw r.reason;
  }

  // Read one piece into `view` and rewrite zeros over each run of granules holding data.
  async #checkPiece(fh: FileHandle, view: Uint8Array, pos: number): Promise<void> {
    const got = await readUpTo(fh, view, pos);
    this.#work.bytesChecked += view.length;
    const rewrite = async (from: number, to: number): Promise<void> => {
      await writeZeros(fh, pos + from, to - from);
      this.#work.bytesRewritten += to - from;
    };
    // Past `got` is end-of-file, which already reads as zeros.
    let run = -1;
    for (let g = 0; g < got; g += CHECK_GRANULE) {
      if (!isZero(view.subarray(g, Math.min(got, g + CHECK_GRANULE)))) {
        if (run < 0) run = g;
      } else if (run >= 0) {
        await rewrite(run, g);
        run = -1;
      }
    }
    if (run >= 0) await rewrite(run, got);
  }

  #takeSlot(): Promise<void> | void {
    if (this.#slots > 0) {
      this.#slots--;
      return;
    }
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  #giveSlot(): void {
    const waiter = this.#slotWaiters.shift();
    if (waiter) waiter();
    else this.#slots++;
  }

  /** A hint only: counted, range-checked, otherwise nothing (Node cannot punch holes). */
  async discard(offset: number, length: number): Promise<void> {
    this.#handle("discard", offset, length, true);
    countRequest(this.#stats, "discard", length);
  }

  /** Close the file (Node waits for requests in flight); later requests reject EBADF. */
  async close(): Promise<void> {
    const fh = this.#fh;
    if (!fh) return;
    this.#fh = null;
    // Not left running on a closed descriptor; its error, if any, was never asked for.
    await this.#settleEarly();
    try {
      await fh.close();
    } catch (e) {
      throw osError(e, "close", this.path);
    }
  }
}

/** Read into `view` from `offset` until full or end-of-file; returns the bytes read. */
async function readUpTo(fh: FileHandle, view: Uint8Array, offset: number): Promise<number> {
  let done = 0;
  while (done < view.length) {
    const { bytesRead } = await fh.read(view, done, view.length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** True when `view` (at most ZERO_PIECE bytes) is all zeros; memcmp is ~15x a JS word loop. */
function isZero(view: Uint8Array): boolean {
  const zero = (zeros ??= new Uint8Array(ZERO_PIECE));
  return Buffer.from(view.buffer, view.byteOffset, view.length).equals(zero.subarray(0, view.length));
}

/** Write `length` zeros at `offset` from the shared zero buffer. */
async function writeZeros(fh: FileHandle, offset: number, length: number): Promise<void> {
  const zero = (zeros ??= new Uint8Array(ZERO_PIECE));
  for (let done = 0; done < length; done += ZERO_PIECE) {
    await writeAll(fh, zero.subarray(0, Math.min(ZERO_PIECE, length - done)), offset + done);
  }
}

function emptyWork(): ZerooutWork {
  return { bytesSkipped: 0, bytesChecked: 0, bytesRewritten: 0 };
}

async function writeAll(fh: FileHandle, data: Uint8Array, offset: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const n = Math.min(data.length - done, MAX_IO);
    const { bytesWritten } = await fh.write(data, done, n, offset + done);
    if (bytesWritten === 0) throw new FsError("EIO", "write made no progress", { syscall: "write" });
    done += bytesWritten;
  }
}
