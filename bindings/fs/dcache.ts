/**
 * A small name cache for path walks: (directory inode, generation, name) → inode number,
 * like Linux's dentry cache but positive entries only and far smaller.
 *
 * Why: every path operation walks from the root, so `/big/f123` looks "big" up in the
 * root directory again for each of 50,000 files — a hash, an index walk and a leaf scan
 * per component, every time. Remembering a name that was found costs a Map probe.
 *
 * Correctness rule: an entry may only be answered while the directory's names are
 * exactly what they were when it was stored. Directory blocks change only through
 * DirWriter (bindings/fs/dir_write.ts), which calls `dropDir` for every block it seals
 * (add, remove, replace, "..", conversion to an index) and when a directory inode is
 * freed or initialised; the generation in the key covers an inode number reused by a
 * new directory. Misses are not cached (a create would have to invalidate them too, and
 * misses are what creates look up), so a stale answer could only be a name that was
 * removed — and every removal goes through DirWriter.
 *
 * Readers do not hold the metadata lock, so a lookup can read a block, yield, and come
 * back after a writer removed the name and dropped the directory; storing the answer
 * then would outlive the drop. Hence `epoch`: every drop bumps it, a walk notes it before
 * its lookup, and `set` stores nothing if a drop happened meanwhile. (A writer edits a
 * block and drops its directory in one synchronous step, so a lookup that saw the old
 * contents always sees the bump.)
 *
 * It also carries the last htree miss (MissProbe), for the same reason: a create's
 * lookup has just walked the index to the leaf its insert needs.
 *
 * Ownership: one cache per mounted volume, found through the volume's BlockCache (both
 * the read side, Namei, and the write side, DirWriter, hold that object and nothing
 * else in common). Single-threaded JS: lookups and drops never interleave inside a
 * call. Bounded: at most MAX_NAMES names in all; past that the directories stored
 * longest ago are dropped whole.
 */

const MAX_NAMES = 8192;

interface DirNames {
  gen: number;
  names: Map<string, number>;
}

/**
 * Where the last htree lookup that missed would insert its name: the index path (logical
 * and physical block, entries offset, entry followed, per level) that the hash led to,
 * and the leaf that path names, before any move to a following leaf. A create looks its
 * name up (missing) and then inserts it in the same transaction; with this the insert
 * reuses the lookup's walk instead of walking root → leaf again. Valid only while
 * `epoch` is unchanged, i.e. no directory block changed — which also keeps the physical
 * numbers right: a directory's map changes only when it gains a block (appendBlock,
 * followed in the same operation by the block's first seal, a dropDir) or is freed
 * (forget, a dropDir).
 */
export interface MissProbe {
  dir: number;
  gen: number;
  name: Uint8Array;
  epoch: number;
  hash: number;
  version: number;
  levels: number;
  path: { lblk: number; phys: number; off: number; i: number }[];
  /** The leaf the path's last entry points to (logical, physical). */
  leaf: number;
  leafPhys: number;
  /** Where in that leaf the name would go: the first record with room for it, or -1. */
  fit: number;
}

export class DentryCache {
  /** The last htree miss (see MissProbe); consumed by DirWriter's insert. */
  lastMiss: MissProbe | undefined;

  private readonly dirs = new Map<number, DirNames>();
  private count = 0;
  /** Bumped by every dropDir: a lookup begun before a drop must not store its answer. */
  epoch = 0;

  /** Names held in all (for tests and stats). */
  get size(): number {
    return this.count;
  }

  /** The inode `name` names in directory (dir, gen), or 0 when not remembered. Any caller. */
  get(dir: number, gen: number, name: string): number {
    const d = this.dirs.get(dir);
    if (!d || d.gen !== gen) return 0;
    return d.names.get(name) ?? 0;
  }

  /** Remember a name found in (dir, gen) by a lookup begun at `epoch` (ignored if stale). */
  set(dir: number, gen: number, name: string, ino: number, epoch: number): void {
    if (epoch !== this.epoch) return;
    let d = this.dirs.get(dir);
    if (d && d.gen !== gen) {
      this.dropDir(dir);
      d = undefined;
    }
    if (!d) {
      d = { gen, names: new Map() };
      this.dirs.set(dir, d);
    }
    if (!d.names.has(name)) this.count++;
    d.names.set(name, ino);
    while (this.count > MAX_NAMES) {
      // A directory holding half the budget gives up its own oldest names, so walking
      // one huge directory does not keep flushing the small ones on the way to it.
      if (d.names.size > MAX_NAMES / 2) {
        // A quarter of the budget at once: one pass per 2,048 inserts instead of an
        // iterator per insert (a one-pass walk of a huge directory never hits anyway).
        let n = MAX_NAMES / 4;
        for (const k of d.names.keys()) {
          d.names.delete(k);
          if (--n === 0) break;
        }
        this.count -= MAX_NAMES / 4 - n;
      } else {
        this.dropDir(this.dirs.keys().next().value!);
      }
    }
  }

  /** Forget every name of directory `dir` (DirWriter: its names changed or it was freed). */
  dropDir(dir: number): void {
    this.epoch++;
    const d = this.dirs.get(dir);
    if (!d) return;
    this.count -= d.names.size;
    this.dirs.delete(dir);
  }
}

const caches = new WeakMap<object, DentryCache>();

/** The volume's name cache, keyed by its BlockCache (see the file header). */
export function dcacheOf(owner: object): DentryCache {
  let c = caches.get(owner);
  if (!c) caches.set(owner, (c = new DentryCache()));
  return c;
}
