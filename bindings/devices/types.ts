/**
 * BlockDevice: what the engine needs from storage, and nothing more.
 *
 * Offsets and lengths are in bytes. The engine only issues requests aligned to its block
 * size (a multiple of 512), but a device must not depend on that for correctness.
 *
 * Ordering contract: requests may complete in any order. The engine never has two writes
 * to the same byte in flight, and never reads a range while a write to it is in flight.
 * `flush()` is the only barrier: when it resolves, every write that resolved before the
 * flush was called is durable. A write that resolved is not durable until a later flush.
 *
 * `read(offset, into)` fills all of `into` (zeros past the end of a sparse or short file
 * are the device's business, not an error). `into` is often a view of Wasm memory: a
 * device must copy into it before resolving and must not keep a reference after.
 * `write(offset, data)` likewise must be done with `data` once its promise resolves.
 *
 * Failures reject with an FsError (code EIO for media errors, EINVAL for bad ranges).
 */
export interface BlockDevice {
  /** Size in bytes. */
  readonly size: number;
  /** The device's preferred (logical) block size, if it has one. */
  readonly blockSize?: number;
  read(offset: number, into: Uint8Array): Promise<void>;
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
  /** Make [offset, offset+length) read as zeros, cheaply if the device can (sparse punch). */
  zeroout?(offset: number, length: number): Promise<void>;
  /** Hint that [offset, offset+length) holds nothing useful any more. */
  discard?(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
}

/** How a file-backed device (Node's and Deno's FileDevice) opens its file. */
export interface FileDeviceOptions {
  /**
   * Device size in bytes. A regular file opened writable is truncated or extended (sparse)
   * to it; opened read-only it only sets the visible size (bytes past the file's end read
   * as zeros). For a block device it must not exceed the device's capacity.
   * Without it: the file's size, or the block device's capacity.
   */
  size?: number;
  /** Create the file if it does not exist (never truncates unless `size` says so). */
  create?: boolean;
  /** Open read-only; writes, zeroout and discard reject with EROFS. */
  readOnly?: boolean;
}

/** Bound-check a request against a device; throws an FsError EINVAL on a bad range. */
export { checkRange } from "./range.ts";
