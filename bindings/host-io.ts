/**
 * What copyIn and copyOut (Node, and Deno through its node: modules) share about talking
 * to the host file system.
 *
 * Both make synchronous host calls: a promise call is a round trip through libuv's thread
 * pool during which the engine — CPU-bound, on the same one thread — has nothing to do,
 * and for a tree of small files those round trips were most of the time (node-copyin.ts
 * has the numbers). A loop of synchronous calls never gives the event loop a turn,
 * though, so the copies take one every few milliseconds (turnTaker): timers, other
 * requests and I/O completions (a device's early write-back) are not starved.
 *
 * Host failures leave as FsError with the host's errno code (EIO when ours has no such
 * code), the syscall and the host path — the same shape as every other error of the API.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { FsError, errnoCode } from "./fs/errors.ts";

/** A host failure as an FsError, keeping its errno code when ours has it. */
export function hostError(e: unknown, path: string, syscall: string): FsError {
  if (e instanceof FsError) return e;
  const err = e as NodeJS.ErrnoException;
  return new FsError(errnoCode(err?.code), `host ${path}: ${err?.message ?? String(e)}`, { syscall, path, cause: e });
}

/** A synchronous host call, its failure as an FsError. */
export function hostSync<T>(path: string, syscall: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw hostError(e, path, syscall);
  }
}

/**
 * A function to await between pieces of synchronous work: it resolves at once, except
 * when `sliceMs` have passed since the last turn, and then only after one macrotask.
 */
export function turnTaker(sliceMs = 10): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < sliceMs) return;
    await nextTurn();
    since = performance.now();
  };
}
