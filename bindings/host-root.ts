/**
 * Whether the host process runs as root, for copyIn/copyOut's ownership defaults.
 *
 * Why a helper: asking can itself fail. Deno answers `process.getuid()` only with
 * --allow-sys=uid and otherwise throws a permission error, which must not turn a copy
 * into a crash with a non-FsError. Not knowing is treated as "not root" — the safe
 * default (owners are then set to the caller's choice instead of copied).
 */

/** True only when the process is known to run as uid 0; any caller, no side effects. */
export function runningAsRoot(): boolean {
  try {
    return typeof process !== "undefined" && typeof process.getuid === "function" && process.getuid() === 0;
  } catch {
    return false;
  }
}
