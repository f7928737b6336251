import { FsError } from "../fs/errors.ts";

/** Validate a byte range against a device size; the shared guard of every device. */
export function checkRange(size: number, offset: number, length: number, syscall: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FsError("EINVAL", `bad device range offset=${offset} length=${length}`, { syscall });
  }
  if (offset + length > size) {
    throw new FsError("EINVAL", `range [${offset}, ${offset + length}) is past the end of the device (${size} bytes)`, { syscall });
  }
}
