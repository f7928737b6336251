/**
 * The wire between the page and the engine's worker: Comlink, plus what Comlink does not
 * carry by itself.
 *
 * Why a custom "throw" handler: Comlink re-creates a thrown Error from its message, name
 * and stack only, so an FsError would arrive without `code`, `errno`, `syscall` and
 * `path` — the fields callers switch on. Both ends install this handler (the worker
 * entry and the page side of openVolume), so an FsError crosses intact and anything else
 * takes Comlink's usual path.
 *
 * Why Stats and Dirent need reviving: structured clone keeps their data fields (Dates and
 * bigints included) but drops the prototype, and with it isFile()/isDirectory(). The page
 * side puts the prototype back; nothing is recomputed.
 */
import * as Comlink from "comlink";
import { FsError, type ErrorCode } from "../fs/errors.ts";
import { Stats, Dirent } from "../fs/stats.ts";

interface WireError {
  fs: true;
  message: string;
  stack?: string;
  code: ErrorCode;
  syscall?: string;
  path?: string;
  dest?: string;
}

let installed = false;

/** Install the FsError-preserving throw handler (both ends call it once at start-up). */
export function installRpcHandlers(): void {
  if (installed) return;
  installed = true;
  // Comlink's own handler recognises thrown values by a private marker: keep its
  // canHandle and its format for everything that is not an FsError.
  const base = Comlink.transferHandlers.get("throw")!;
  const handler: Comlink.TransferHandler<unknown, unknown> = {
    canHandle: (v): v is unknown => base.canHandle(v),
    serialize(thrown) {
      const value = (thrown as { value: unknown }).value;
      if (!(value instanceof FsError)) return base.serialize(thrown);
      const wire: WireError = {
        fs: true, message: value.message, stack: value.stack, code: value.code,
        syscall: value.syscall, path: value.path, dest: value.dest,
      };
      return [wire, []];
    },
    deserialize(w) {
      const wire = w as WireError;
      if (wire?.fs !== true) return base.deserialize(w);
      const e = new FsError(wire.code, "", { syscall: wire.syscall, path: wire.path, dest: wire.dest });
      e.message = wire.message;
      throw e;
    },
  };
  Comlink.transferHandlers.set("throw", handler);
}

/** Put Stats' prototype back on a structured-cloned Stats (page side). */
export function reviveStats(s: object): Stats {
  return Object.setPrototypeOf(s, Stats.prototype) as Stats;
}

/** Put Dirent's prototype back on a structured-cloned Dirent (page side). */
export function reviveDirent(d: object): Dirent {
  return Object.setPrototypeOf(d, Dirent.prototype) as Dirent;
}

/** Mark a worker-owned result for transfer when it owns its whole buffer (else it is copied). */
export function transferOut<T>(value: T): T {
  if (value instanceof Uint8Array && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer) {
    return Comlink.transfer(value, [value.buffer]);
  }
  return value;
}

export { Comlink };
