/**
 * A tiny typed event emitter for a Volume (`vol.on("lazyinit", cb)`).
 *
 * Why not node:events: the bindings are runtime-neutral (Node, Deno, browser), and what
 * a volume reports is a handful of progress events, not a stream API. Why events at all:
 * background work (lazy inode-table zeroing) finishes behind the caller's back; polling
 * vol.stats() works, but a progress bar or a test that waits for "done" wants a push.
 *
 * Rules: listeners run synchronously inside the background worker that emits, so they
 * must be quick and must not throw — a listener that throws is reported once in the
 * volume's warnings and otherwise ignored (background work never fails because of a
 * listener). on() returns the function that removes the listener.
 */

/** What a lazy-init event carries (see fs/itable_init.ts). */
export interface LazyInitProgress {
  /** Groups whose inode table is flagged ITABLE_ZEROED now. */
  groupsZeroed: number;
  groupsTotal: number;
  /** The group this event is about (-1 when none). */
  group: number;
  /** The request ended: every reachable group is zeroed, or an error stopped it. */
  done: boolean;
  /** Why zeroing stopped early (an I/O error), when it did. */
  error?: string;
}

export interface VolumeEventMap {
  lazyinit: LazyInitProgress;
}

type Listener<T> = (payload: T) => void;

/** Listeners by event name; owned by one Volume. */
export class VolumeEvents {
  private readonly listeners = new Map<keyof VolumeEventMap, Set<Listener<never>>>();
  private readonly report: (message: string) => void;

  /** report: where a throwing listener is mentioned (the volume's warnings). */
  constructor(report: (message: string) => void) {
    this.report = report;
  }

  /** Add a listener; returns its remover. Anyone may call. */
  on<K extends keyof VolumeEventMap>(event: K, cb: Listener<VolumeEventMap[K]>): () => void {
    if (typeof cb !== "function") throw new TypeError("listener must be a function");
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const l = cb as Listener<never>;
    set.add(l);
    return () => void set.delete(l);
  }

  /** Call every listener of `event` (background workers only). */
  emit<K extends keyof VolumeEventMap>(event: K, payload: VolumeEventMap[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as Listener<VolumeEventMap[K]>)(payload);
      } catch (e) {
        set.delete(l);
        this.report(`a '${event}' listener threw and was removed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
}
