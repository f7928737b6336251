/**
 * MemoryDevice: a block device held in JS memory, runtime-neutral.
 *
 * Why chunks: tests and benches format 64 GiB and 2 TiB devices to exercise 64-bit block
 * numbers, flex_bg layouts and huge group counts, but a formatted image touches only a
 * few MiB of that. So the image is a sparse map of fixed 16 KiB chunks allocated on the
 * first write that puts a non-zero byte in them; absent chunks read as zeros, and
 * `zeroout`/`discard` drop every chunk they cover whole (partial chunks are zero-filled).
 * Why 16 KiB: mkfs scatters small metadata writes over every block group, and each one
 * costs a whole chunk; formatting 2 TiB writes 25 MB, which holds 36 MiB in 16 KiB chunks
 * but 1 GiB in 1 MiB chunks, while per-chunk overhead (~1-2%) stays small.
 *
 * Why a second, flat mode: `MemoryDevice.from(bytes)` must wrap a caller's image without
 * copying it (an image read from disk or a download), and `bytes()` must hand back the
 * image for export. Both use one contiguous Uint8Array as the storage. `bytes()` on a
 * chunked device builds that array once and then *switches the device to it*, so the
 * returned array stays live (later writes show through it) and the image is never held
 * twice. A device too large for one ArrayBuffer (beyond ~4 GiB in V8) cannot be exported
 * that way; `bytes()` then throws ENOMEM and leaves the device as it was.
 *
 * Ownership: storage lives in a `Store` that `reopen()` shares with a fresh device, so a
 * test can close a device (as unmount may) and mount the same image again. After
 * `close()` every request rejects with EBADF — the error Node gives for I/O on a closed
 * file descriptor — while `bytes()` keeps working, because exporting the image after
 * unmounting it is the normal sequence. `close()` is idempotent.
 *
 * Requests complete in submission order (everything is synchronous under the promise);
 * use FaultyDevice for reordering, delays and failures.
 *
 *   chunked mode:  chunks: Map<index, Uint8Array(16 KiB)>  index = floor(offset / 16 KiB)
 *                  [ chunk 0 ][ absent = zeros ][ chunk 2 ] ... [ last chunk, maybe short ]
 *   flat mode:     flat: Uint8Array(size)  (the caller's array for from(), bytes()'s result)
 */
import { FsError } from "../fs/errors.ts";
import { checkRange } from "./range.ts";
import type { BlockDevice } from "./types.ts";

/** Request counters every device in this directory keeps (tests check batching with them). */
export interface DeviceStats {
  /** All counted requests: reads + writes + flushes + zeroouts + discards. */
  requests: number;
  reads: number;
  writes: number;
  flushes: number;
  zeroouts: number;
  discards: number;
  bytesRead: number;
  bytesWritten: number;
  bytesZeroed: number;
  bytesDiscarded: number;
}

/** A zeroed DeviceStats. */
export function emptyStats(): DeviceStats {
  return {
    requests: 0, reads: 0, writes: 0, flushes: 0, zeroouts: 0, discards: 0,
    bytesRead: 0, bytesWritten: 0, bytesZeroed: 0, bytesDiscarded: 0,
  };
}

/** Count one request of `kind` moving `length` bytes into `s`. */
export function countRequest(s: DeviceStats, kind: "read" | "write" | "flush" | "zeroout" | "discard", length: number): void {
  s.requests++;
  switch (kind) {
    case "read": s.reads++; s.bytesRead += length; break;
    case "write": s.writes++; s.bytesWritten += length; break;
    case "flush": s.flushes++; break;
    case "zeroout": s.zeroouts++; s.bytesZeroed += length; break;
    case "discard": s.discards++; s.bytesDiscarded += length; break;
  }
}

/** Chunk size of the sparse mode (see the header for the trade-off). */
export const MEMORY_CHUNK = 16 << 10;

/** True when every byte of `b` is zero (word-at-a-time: zeroout scans whole MiBs with it). */
export function isAllZero(b: Uint8Array): boolean {
  // Four bytes at a time when the view is aligned (most are); BigInt words would be slower.
  let i = 0;
  const n = b.length;
  if ((b.byteOffset & 3) === 0 && n >= 64) {
    const words = new Uint32Array(b.buffer, b.byteOffset, n >>> 2);
    for (let w = 0; w < words.length; w++) if (words[w] !== 0) return false;
    i = words.length << 2;
  }
  for (; i < n; i++) if (b[i] !== 0) return false;
  return true;
}

/** The image itself, shared by every device that reopen() hands out. */
class Store {
  flat: Uint8Array | null;
  readonly chunks = new Map<number, Uint8Array>();
  constructor(readonly size: number, flat: Uint8Array | null) {
    this.flat = flat;
  }

  chunkLength(index: number): number {
    return Math.min(MEMORY_CHUNK, this.size - index * MEMORY_CHUNK);
  }

  read(offset: number, into: Uint8Array): void {
    if (this.flat) {
      into.set(this.flat.subarray(offset, offset + into.length));
      return;
    }
    let done = 0;
    while (done < into.length) {
      const pos = offset + done;
      const index = Math.floor(pos / MEMORY_CHUNK);
      const within = pos - index * MEMORY_CHUNK;
      const n = Math.min(into.length - done, MEMORY_CHUNK - within);
      const chunk = this.chunks.get(index);
      if (chunk) into.set(chunk.subarray(within, within + n), done);
      else into.fill(0, done, done + n);
      done += n;
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (this.flat) {
      this.flat.set(data, offset);
      return;
    }
    let done = 0;
    while (done < data.length) {
      const pos = offset + done;
      const index = Math.floor(pos / MEMORY_CHUNK);
      const within = pos - index * MEMORY_CHUNK;
      const n = Math.min(data.length - done, MEMORY_CHUNK - within);
      const part = data.subarray(done, done + n);
      let chunk = this.chunks.get(index);
      // Zeros written into a hole stay a hole: mkfs writes plenty of them.
      if (!chunk && !isAllZero(part)) {
        chunk = new Uint8Array(this.chunkLength(index));
        this.chunks.set(index, chunk);
      }
      if (chunk) chunk.set(part, within);
      done += n;
    }
  }

  zero(offset: number, length: number): void {
    if (this.flat) {
      this.flat.fill(0, offset, offset + length);
      return;
    }
    if (length === 0) return;
    const end = offset + length;
    const first = Math.floor(offset / MEMORY_CHUNK);
    const last = Math.floor((end - 1) / MEMORY_CHUNK);
    this.zeroWithin(first, offset, end);
    if (last !== first) this.zeroWithin(last, offset, end);
    // Chunks strictly between are covered whole. Zeroing a whole 2 TiB device spans 2^27
    // chunk indices, so walk whichever is smaller: that span or the chunks that exist.
    if (last - first - 1 > this.chunks.size) {
      for (const index of [...this.chunks.keys()]) if (index > first && index < last) this.chunks.delete(index);
    } else {
      for (let index = first + 1; index < last; index++) this.chunks.delete(index);
    }
  }

  /** Zero the part of chunk `index` inside [start, end): drop it if that is all of it. */
  private zeroWithin(index: number, start: number, end: number): void {
    const base = index * MEMORY_CHUNK;
    const from = Math.max(start, base) - base;
    const to = Math.min(end, base + this.chunkLength(index)) - base;
    if (from === 0 && to === this.chunkLength(index)) this.chunks.delete(index);
    else this.chunks.get(index)?.fill(0, from, to);
  }

  *ranges(): Generator<[number, Uint8Array]> {
    if (this.flat) {
      yield [0, this.flat];
      return;
    }
    for (const index of [...this.chunks.keys()].sort((a, b) => a - b)) {
      yield [index * MEMORY_CHUNK, this.chunks.get(index)!];
    }
  }

  allocatedBytes(): number {
    if (this.flat) return this.flat.length;
    let total = 0;
    for (const c of this.chunks.values()) total += c.length;
    return total;
  }

  toFlat(): Uint8Array {
    if (this.flat) return this.flat;
    let flat: Uint8Array;
    try {
      flat = new Uint8Array(this.size);
    } catch (e) {
      throw new FsError(
        "ENOMEM",
        `a ${this.size}-byte device does not fit in one Uint8Array; export it in pieces with read()`,
        { syscall: "bytes", cause: e },
      );
    }
    for (const [index, chunk] of this.chunks) flat.set(chunk, index * MEMORY_CHUNK);
    this.chunks.clear();
    this.flat = flat;
    return flat;
  }
}

/** Storage handed from from()/reopen() to the constructor; set and consumed synchronously. */
let adopt: Store | null = null;

function checkSize(size: number): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new FsError("EINVAL", `bad device size ${size}`, { syscall: "open" });
  }
}

export class MemoryDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize = 512;
  #store: Store;
  #closed = false;
  #stats = emptyStats();

  /** A zero-filled sparse device of `size` bytes; nothing is allocated until written. */
  constructor(size: number) {
    // from() and reopen() hand their store over through `adopt` to keep Store private.
    const handed = adopt;
    adopt = null;
    checkSize(size);
    this.size = size;
    this.#store = handed ?? new Store(size, null);
  }

  /** Wrap an existing image without copying: writes land in `bytes` itself. */
  static from(bytes: Uint8Array): MemoryDevice {
    adopt = new Store(bytes.length, bytes);
    return new MemoryDevice(bytes.length);
  }

  /**
   * The whole image as one live Uint8Array (the array passed to from(), or a new one that
   * from now on backs this device). Throws FsError ENOMEM when the size cannot be one array.
   */
  bytes(): Uint8Array {
    return this.#store.toFlat();
  }

  /** Bytes of storage actually held (chunks allocated, or the flat array's length). */
  get allocatedBytes(): number {
    return this.#store.allocatedBytes();
  }

  /**
   * The stored parts of the image as [offset, bytes] in ascending offset order; everything
   * else reads as zeros. The arrays are the storage itself (no copy): use them before the
   * next write. This is how a huge sparse device is saved to a sparse file.
   */
  allocatedRanges(): IterableIterator<[number, Uint8Array]> {
    return this.#store.ranges();
  }

  /** A snapshot of the request counters. */
  get stats(): DeviceStats {
    return { ...this.#stats };
  }

  /** Zero the request counters (benches measure one phase at a time). */
  resetStats(): void {
    this.#stats = emptyStats();
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** A new open device over the same storage (no copy); works on a closed device too. */
  reopen(): MemoryDevice {
    adopt = this.#store;
    return new MemoryDevice(this.size);
  }

  #check(syscall: string, offset: number, length: number): void {
    if (this.#closed) throw new FsError("EBADF", "memory device is closed", { syscall });
    checkRange(this.size, offset, length, syscall);
  }

  /** Fill `into` from `offset`; absent chunks read as zeros. */
  async read(offset: number, into: Uint8Array): Promise<void> {
    this.#check("read", offset, into.length);
    countRequest(this.#stats, "read", into.length);
    this.#store.read(offset, into);
  }

  /** Copy `data` to `offset` (allocating chunks it makes non-zero). */
  async write(offset: number, data: Uint8Array): Promise<void> {
    this.#check("write", offset, data.length);
    countRequest(this.#stats, "write", data.length);
    this.#store.write(offset, data);
  }

  /** Nothing is volatile in memory; counted so tests can see the barriers issued. */
  async flush(): Promise<void> {
    this.#check("flush", 0, 0);
    countRequest(this.#stats, "flush", 0);
  }

  /** Zero a range, dropping whole chunks so the device gets sparser. */
  async zeroout(offset: number, length: number): Promise<void> {
    this.#check("zeroout", offset, length);
    countRequest(this.#stats, "zeroout", length);
    this.#store.zero(offset, length);
  }

  /** Discarded ranges read as zeros afterwards (like a thin-provisioned disk). */
  async discard(offset: number, length: number): Promise<void> {
    this.#check("discard", offset, length);
    countRequest(this.#stats, "discard", length);
    this.#store.zero(offset, length);
  }

  /** End I/O (later requests reject EBADF); the image stays available to bytes()/reopen(). */
  async close(): Promise<void> {
    this.#closed = true;
  }
}
