/**
 * "Run this soon, but not now": a macrotask without setTimeout's clamp.
 *
 * Completion work must never run inside the device callback that triggered it, so the
 * workers defer to a later macrotask. setTimeout(fn, 0) does that but is clamped (about
 * 1 ms in Node, 4 ms in browsers once nested), which caps a worker at a few hundred passes
 * a second. Node and Deno have setImmediate; a browser gets a MessageChannel post, which
 * is not clamped. Elsewhere setTimeout(0) is the fallback. None of these keeps a process
 * alive after it ran (the channel exists only in browsers, which have no process to keep).
 */

type Task = () => void;

function channelPoster(): (fn: Task) => void {
  const queue: Task[] = [];
  const ch = new MessageChannel();
  ch.port1.onmessage = () => queue.shift()?.();
  return (fn) => {
    queue.push(fn);
    ch.port2.postMessage(0);
  };
}

const g = globalThis as { setImmediate?: (fn: Task) => unknown; document?: unknown; WorkerGlobalScope?: unknown };
const inBrowser = typeof g.document === "object" || typeof g.WorkerGlobalScope === "function";

/** Run fn in a later macrotask, as soon as the runtime allows. */
export const macrotask: (fn: Task) => void =
  typeof g.setImmediate === "function"
    ? (fn) => void g.setImmediate!(fn)
    : inBrowser && typeof MessageChannel === "function"
      ? channelPoster()
      : (fn) => void setTimeout(fn, 0);
