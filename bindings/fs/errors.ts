/**
 * FsError: the one error type the public API throws.
 *
 * Why one type: callers port code from `node:fs/promises` and switch on `err.code`, so
 * every failure — a bad argument, a corrupt image, a device error, an engine assertion —
 * must arrive with Node's fields (`code`, `errno`, `syscall`, `path`) and a message that
 * says what was wrong. Nothing else may escape: a raw WebAssembly.RuntimeError or a
 * TypeError from deep inside is a bug, and `wrapUnknown` turns it into EIO at the API edge.
 *
 * errno values are Linux's, as Node reports them on Linux (negated there; positive here
 * like `os.constants.errno`). EFSCORRUPTED is Linux's alias of EUCLEAN (117).
 */

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  ENOMEM: 12,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EFSCORRUPTED: 117,
} as const;

export type ErrorCode = keyof typeof ERRNO;

export interface FsErrorOptions {
  syscall?: string;
  path?: string;
  dest?: string;
  cause?: unknown;
}

export class FsError extends Error {
  readonly code: ErrorCode;
  readonly errno: number;
  readonly syscall?: string;
  readonly path?: string;
  readonly dest?: string;

  constructor(code: ErrorCode, message: string, opts: FsErrorOptions = {}) {
    const where = opts.syscall ? `, ${opts.syscall}${opts.path !== undefined ? ` '${opts.path}'` : ""}` : "";
    super(`${code}: ${message}${where}`, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = "FsError";
    this.code = code;
    this.errno = ERRNO[code];
    if (opts.syscall !== undefined) this.syscall = opts.syscall;
    if (opts.path !== undefined) this.path = opts.path;
    if (opts.dest !== undefined) this.dest = opts.dest;
  }
}

/**
 * The code of a host error (Node's `err.code`, Deno's, a libc errno name) when it is one
 * of ours, else EIO: every device and host copy maps OS failures through this.
 */
export function errnoCode(raw: unknown): ErrorCode {
  return typeof raw === "string" && Object.prototype.hasOwnProperty.call(ERRNO, raw) ? (raw as ErrorCode) : "EIO";
}

/** True for an FsError, optionally of a given code. */
export function isFsError(e: unknown, code?: ErrorCode): e is FsError {
  return e instanceof FsError && (code === undefined || e.code === code);
}

/**
 * Convert anything thrown below the API edge into an FsError. An FsError passes through
 * (with syscall/path filled in when it had none); anything else is an internal failure and
 * becomes EIO with the original as `cause`, so it is reported but never escapes raw.
 */
export function wrapUnknown(e: unknown, syscall?: string, path?: string): FsError {
  if (e instanceof FsError) {
    if ((e.syscall === undefined && syscall !== undefined) || (e.path === undefined && path !== undefined)) {
      const again = new FsError(e.code, e.message.replace(/^[A-Z]+: /, "").replace(/, \w+ '.*'$/, ""), {
        syscall: e.syscall ?? syscall,
        path: e.path ?? path,
        cause: e.cause,
      });
      return again;
    }
    return e;
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new FsError("EIO", `internal error: ${msg}`, { syscall, path, cause: e });
}
