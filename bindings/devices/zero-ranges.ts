/**
 * ZeroRanges: what a file-backed device knows reads as zeros, shared by the Node and Deno
 * FileDevices (runtime-neutral: no I/O here, only interval bookkeeping).
 *
 * Why it exists: neither Node nor Deno can punch holes, so a device's zeroout has to prove
 * a range is zero by reading it, or write zeros over it. Most ranges mkfs zeroes are holes
 * the device itself just appended when it extended the file, so remembering them makes
 * those zeroouts free. The rules for who adds and who removes a range (open adds the
 * appended tail, a finished zeroout adds what no concurrent write overlapped, every write
 * removes its range before it is issued) live with each device; this file only keeps the
 * set correct and bounded.
 *
 * Ownership: one set per open device, touched only from that device's methods; the
 * runtime is single-threaded, so no locking.
 */

/** Known-zero intervals kept per device before the smallest are forgotten. */
export const ZERO_RANGE_CAP = 4096;

/** How much work zeroout did, for tests and benchmarks (never part of the BlockDevice contract). */
export interface ZerooutWork {
  /** Bytes skipped because they were known to read as zeros. */
  bytesSkipped: number;
  /** Bytes read to see whether they hold data. */
  bytesChecked: number;
  /** Bytes overwritten with zeros because their granule held data. */
  bytesRewritten: number;
}

/**
 * A bounded set of byte ranges known to read as zeros: sorted, disjoint, never touching
 * (touching ranges are merged on add), so binary search over either array finds a position.
 * Forgetting a range is always safe (zeroout then reads it), claiming one never is; so when
 * the set outgrows its cap it drops its smallest ranges, which cover the least.
 *
 *   starts: [ s0, s1, s2, ... ]   ends: [ e0, e1, e2, ... ]
 *   s0 < e0 < s1 < e1 < s2 < ...  (strict: a gap of at least one byte between ranges)
 */
export class ZeroRanges {
  #starts: number[] = [];
  #ends: number[] = [];
  readonly cap: number;

  /** An empty set holding at most `cap` ranges (at least 2, so a split always fits). */
  constructor(cap = ZERO_RANGE_CAP) {
    this.cap = Math.max(2, cap);
  }

  /** Number of ranges held. */
  get count(): number {
    return this.#starts.length;
  }

  /** A copy of the ranges as [start, end) pairs, in order. */
  ranges(): Array<[number, number]> {
    return this.#starts.map((s, i) => [s, this.#ends[i]!]);
  }

  /** First index whose end is > pos (or >= pos when `touching`); count if none. */
  #firstEndingAfter(pos: number, touching: boolean): number {
    const ends = this.#ends;
    let lo = 0;
    let hi = ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (touching ? ends[mid]! >= pos : ends[mid]! > pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** First index at or after `from` whose start is >= pos (or > pos when `touching`). */
  #firstStartingAt(pos: number, from: number, touching: boolean): number {
    const starts = this.#starts;
    let lo = from;
    let hi = starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (touching ? starts[mid]! > pos : starts[mid]! >= pos) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** Record that [start, end) reads as zeros, merging with ranges it overlaps or touches. */
  add(start: number, end: number): void {
    if (start >= end) return;
    const i = this.#firstEndingAfter(start, true);
    const k = this.#firstStartingAt(end, i, true);
    const s = i < k ? Math.min(start, this.#starts[i]!) : start;
    const e = i < k ? Math.max(end, this.#ends[k - 1]!) : end;
    this.#starts.splice(i, k - i, s);
    this.#ends.splice(i, k - i, e);
    if (this.#starts.length > this.cap) this.#shrink();
  }

  /** Forget [start, end): O(log n) when it misses every range, plus a splice when it hits. */
  remove(start: number, end: number): void {
    if (start >= end) return;
    const i = this.#firstEndingAfter(start, false);
    if (i === this.#starts.length || this.#starts[i]! >= end) return;
    const k = this.#firstStartingAt(end, i + 1, false);
    const firstStart = this.#starts[i]!;
    const lastEnd = this.#ends[k - 1]!;
    const ns: number[] = [];
    const ne: number[] = [];
    if (firstStart < start) {
      ns.push(firstStart);
      ne.push(start);
    }
    if (lastEnd > end) {
      ns.push(end);
      ne.push(lastEnd);
    }
    this.#starts.splice(i, k - i, ...ns);
    this.#ends.splice(i, k - i, ...ne);
    if (this.#starts.length > this.cap) this.#shrink();
  }

  /** The parts of [start, end) not known to be zero, in order. */
  gaps(start: number, end: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    let pos = start;
    for (let i = this.#firstEndingAfter(start, false); i < this.#starts.length && pos < end; i++) {
      const s = this.#starts[i]!;
      if (s >= end) break;
      if (s > pos) out.push([pos, s]);
      pos = Math.max(pos, this.#ends[i]!);
    }
    if (pos < end) out.push([pos, end]);
    return out;
  }

  /** Forget everything. */
  clear(): void {
    this.#starts = [];
    this.#ends = [];
  }

  // Drop the smallest ranges down to 3/4 of the cap, so a set that sits at its cap pays
  // the O(n log n) sort once per cap/4 splits rather than on every write.
  #shrink(): void {
    const n = this.#starts.length;
    const keep = Math.max(1, Math.floor((this.cap * 3) / 4));
    const lengths = new Float64Array(n);
    for (let i = 0; i < n; i++) lengths[i] = this.#ends[i]! - this.#starts[i]!;
    const sorted = lengths.slice().sort();
    // Ranges longer than `cut` all stay; of those exactly `cut` long, only the last few.
    const cut = sorted[n - keep - 1]!;
    let equalToDrop = 0;
    for (let i = 0; i < n - keep; i++) if (sorted[i] === cut) equalToDrop++;
    const ns: number[] = [];
    const ne: number[] = [];
    for (let i = 0; i < n; i++) {
      const len = lengths[i]!;
      if (len < cut) continue;
      if (len === cut && equalToDrop > 0) {
        equalToDrop--;
        continue;
      }
      ns.push(this.#starts[i]!);
      ne.push(this.#ends[i]!);
    }
    this.#starts = ns;
    this.#ends = ne;
  }
}

/** [start, end) minus the union of `holes`, in order. */
export function subtract(start: number, end: number, holes: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let pos = start;
  for (const [s, e] of [...holes].sort((a, b) => a[0] - b[0])) {
    if (s > pos) out.push([pos, Math.min(s, end)]);
    pos = Math.max(pos, e);
    if (pos >= end) break;
  }
  if (pos < end) out.push([pos, end]);
  return out;
}
