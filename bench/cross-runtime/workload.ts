/**
 * The cross-runtime workloads, written once and run unchanged by Node, Deno and Chromium
 * (BENCHMARKS.md workload 6: populate, read and db on every runtime).
 *
 * Why everything comes from memory: a browser has no host tree to copy from, and a
 * comparison is only fair when every runtime takes its input the same way. So the tree is
 * produced by a seeded generator (xorshift128, incompressible bytes) that every runtime
 * runs before the timer starts, and populate writes it through the runtime-neutral API
 * (`mkdir` + `writeFile`), not through copyIn or the browser's importFiles — those would
 * measure each runtime's host-file or Blob reading instead of the engine under it.
 *
 * What is timed (one repetition = one fresh device):
 *   populate — mkfs + mount + every mkdir/writeFile + unmount (which flushes the device);
 *   read     — read-only mount + a recursive readdir + readFile of every file + unmount;
 *   db       — on a read-write mount, a `{ direct: true }` handle with the file
 *              fallocated (untimed), then random 16/32/64 KiB direct writes at queue
 *              depth 8 while two reader loops do random direct reads, up to the final
 *              datasync (as bench/db.ts).
 * Correctness is checked after each timer stops, never inside it: every file read back
 * must equal what was generated, and the db file must hold exactly the bytes written
 * (zeros elsewhere). The caller keeps the device of the last repetition so the runner can
 * hand its image to `e2fsck -fn` and `debugfs` (the external oracles).
 *
 * No runtime APIs here beyond what all three share (performance.now, MessageChannel,
 * typed arrays): the runner of each runtime supplies the API module and the devices.
 */
import type { BlockDevice } from "../../bindings/devices/types.ts";
import type { MkfsOptions } from "../../bindings/mkfs.ts";
import type { MountOptions, Volume } from "../../bindings/fs/volume.ts";

/** The slice of the public API the workloads need (every runtime entry exports it). */
export interface Api {
  mkfs(dev: BlockDevice, options?: MkfsOptions): Promise<unknown>;
  mount(dev: BlockDevice, options?: MountOptions): Promise<Volume>;
}

/** Workload sizes; the orchestrator passes the same object to every runtime. */
export interface Sizes {
  /** Files in the generated tree (70 % 1–16 KiB, 25 % 16–256 KiB, 5 % 1–`bigMaxKiB`). */
  files: number;
  bigMaxKiB: number;
  /** Size of the db file (fallocated) and number of direct writes into it. */
  dbBytes: number;
  dbOps: number;
  queueDepth: number;
  readers: number;
  /** Device size for one repetition. */
  imageBytes: number;
  seed: number;
}

export const DEFAULT_SIZES: Sizes = {
  files: 300,
  bigMaxKiB: 4096,
  dbBytes: 64 << 20,
  dbOps: 1500,
  queueDepth: 8,
  readers: 2,
  imageBytes: 256 << 20,
  seed: 20261121,
};

/** A tiny run for warming the JIT and compiling the engine before anything is timed. */
export function warmupSizes(s: Sizes): Sizes {
  return { ...s, files: 30, bigMaxKiB: 256, dbBytes: 4 << 20, dbOps: 100, imageBytes: 64 << 20 };
}

export interface TreeFile {
  path: string;
  data: Uint8Array;
}

/** xorshift128 state; deterministic across runtimes (32-bit integer arithmetic only). */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = seed >>> 0 || 1;
    this.b = 0x9e3779b9;
    this.c = 0x243f6a88;
    this.d = 0xb7e15162;
    for (let i = 0; i < 16; i++) this.next();
  }
  next(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c;
    this.c = this.b;
    this.b = s;
    t ^= t << 11;
    t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.a;
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + (this.next() % (hi - lo + 1));
  }
}

/** Fill with incompressible bytes: four per PRNG step, through a Uint32Array view. */
function fillRandom(out: Uint8Array, rng: Rng): void {
  const words = out.length >>> 2;
  const w = new Uint32Array(out.buffer, out.byteOffset, words);
  for (let i = 0; i < words; i++) w[i] = rng.next();
  for (let i = words << 2; i < out.length; i++) out[i] = rng.next() & 0xff;
}

/** Every directory of the tree (parents first) and every file with its bytes. */
export function generateTree(s: Sizes): { dirs: string[]; files: TreeFile[]; bytes: number } {
  const rng = new Rng(s.seed);
  const dirs = new Set<string>();
  const files: TreeFile[] = [];
  let bytes = 0;
  for (let i = 0; i < s.files; i++) {
    const r = rng.next() % 100;
    const size = r < 70 ? rng.range(1024, 16 << 10) : r < 95 ? rng.range(16 << 10, 256 << 10) : rng.range(1 << 20, s.bigMaxKiB << 10);
    // Three levels, like the populate bench's tree: /dNN/eN/fNNNN.bin.
    const d1 = `/d${(i % 12).toString().padStart(2, "0")}`;
    const d2 = `${d1}/e${(i >>> 2) % 5}`;
    dirs.add(d1);
    dirs.add(d2);
    const data = new Uint8Array(size);
    fillRandom(data, rng);
    files.push({ path: `${d2}/f${i.toString().padStart(5, "0")}.bin`, data });
    bytes += size;
  }
  return { dirs: [...dirs].sort(), files, bytes };
}

/** The db file's contents as a function of the byte offset: any write covering a byte writes the same value, so the final file is known whatever order the queue completes in. */
export function dbPattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes);
  fillRandom(out, new Rng(seed ^ 0x5bd1e995));
  return out;
}

/** The direct writes: [offset, length] pairs, each 16, 32 or 64 KiB, aligned to its own size. */
export function dbWrites(s: Sizes): [number, number][] {
  const rng = new Rng(s.seed + 7919);
  const out: [number, number][] = [];
  for (let i = 0; i < s.dbOps; i++) {
    const io = (16 << 10) << (rng.next() % 3);
    out.push([(rng.next() % (s.dbBytes / io)) * io, io]);
  }
  return out;
}

/**
 * A macrotask yield for the reader loops. They need one: a direct read of unwritten space
 * completes without device I/O, so a loop of such reads would otherwise run in microtasks
 * only and starve the writes it races. Which primitive matters, or the runtimes are not
 * doing the same work: Node and Deno have setImmediate, which runs after pending I/O and
 * timers (as bench/db.ts uses). Node's MessagePort is NOT equivalent — it delivers
 * messages posted while it drains in the same drain, so readers looping through it never
 * let timers run and did ~17× the reads of the other runtimes. Browsers have no
 * setImmediate; a MessageChannel message there is one task (setTimeout(0) would be
 * clamped to ≥ 4 ms when nested). `close()` releases the channel so a process can exit.
 */
class Yielder {
  private ch: MessageChannel | null = null;
  private readonly waiting: (() => void)[] = [];
  private readonly immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  yield(): Promise<void> {
    if (this.immediate) return new Promise((resolve) => void this.immediate!(resolve));
    if (!this.ch) {
      this.ch = new MessageChannel();
      this.ch.port1.onmessage = () => this.waiting.shift()?.();
    }
    const ch = this.ch;
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      ch.port2.postMessage(0);
    });
  }
  close(): void {
    this.ch?.port1.close();
    this.ch?.port2.close();
  }
}

/** Timings and counts of one repetition (all times in ms). */
export interface RepResult {
  populateMs: number;
  readMs: number;
  dbMs: number;
  treeBytes: number;
  files: number;
  dbWriteBytes: number;
  dbWrites: number;
  dbReads: number;
  /** endio counters over the db phase: conversions and merges done at completion. */
  conversions: number;
  merges: number;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** All regular files under `dir`, depth first (readdir with file types, no stat). */
async function walk(vol: Volume, dir: string, out: string[]): Promise<void> {
  for (const d of await vol.readdir(dir, { withFileTypes: true })) {
    const p = dir === "/" ? `/${d.name}` : `${dir}/${d.name}`;
    if (d.isDirectory()) {
      if (p !== "/lost+found") await walk(vol, p, out);
    } else if (d.isFile()) out.push(p);
  }
}

/**
 * Run populate, read and db once on `dev` (fresh, at least s.imageBytes). Throws when
 * anything read back differs from what was written. Leaves the device open and unmounted.
 */
export async function runOnce(api: Api, dev: BlockDevice, s: Sizes, tree = generateTree(s)): Promise<RepResult> {
  // ---- populate ----
  let t0 = performance.now();
  await api.mkfs(dev, { blockSize: 4096, label: "xrt" });
  let vol = await api.mount(dev, { initItable: false });
  for (const d of tree.dirs) await vol.mkdir(d);
  for (const f of tree.files) await vol.writeFile(f.path, f.data);
  await vol.unmount();
  const populateMs = performance.now() - t0;

  // ---- read ----
  const got = new Map<string, Uint8Array>();
  t0 = performance.now();
  vol = await api.mount(dev, { readOnly: true });
  const paths: string[] = [];
  await walk(vol, "/", paths);
  for (const p of paths) got.set(p, (await vol.readFile(p)) as Uint8Array);
  await vol.unmount();
  const readMs = performance.now() - t0;
  if (got.size !== tree.files.length) throw new Error(`read back ${got.size} files, wrote ${tree.files.length}`);
  for (const f of tree.files) {
    const g = got.get(f.path);
    if (!g || !same(g, f.data)) throw new Error(`${f.path}: read back ${g ? `${g.length} different bytes` : "nothing"}, wrote ${f.data.length}`);
  }
  got.clear();

  // ---- db ----
  const pattern = dbPattern(s.dbBytes, s.seed);
  const writes = dbWrites(s);
  vol = await api.mount(dev, { initItable: false });
  const fh = await vol.open("/db", "w+", { direct: true });
  await fh.fallocate(0, s.dbBytes);
  const endio0 = (vol.stats().endio ?? {}) as { conversions?: number; merges?: number };
  const yielder = new Yielder();
  const rng = new Rng(s.seed + 104729);
  let next = 0;
  let done = false;
  let reads = 0;
  let writeBytes = 0;
  t0 = performance.now();
  const readers = Array.from({ length: s.readers }, async () => {
    const buf = new Uint8Array(64 << 10);
    while (!done) {
      const io = (16 << 10) << (rng.next() % 3);
      await fh.read(buf, 0, io, (rng.next() % (s.dbBytes / io)) * io);
      reads++;
      await yielder.yield();
    }
  });
  await Promise.all(Array.from({ length: s.queueDepth }, async () => {
    while (next < writes.length) {
      const [pos, io] = writes[next++]!;
      await fh.write(pattern, pos, io, pos);
      writeBytes += io;
    }
  }));
  await fh.datasync();
  const dbMs = performance.now() - t0;
  done = true;
  await Promise.all(readers);
  yielder.close();
  const endio1 = (vol.stats().endio ?? {}) as { conversions?: number; merges?: number };
  // Check: written 16 KiB slots hold the pattern, the rest reads as zeros.
  const covered = new Uint8Array(s.dbBytes >>> 14);
  for (const [pos, io] of writes) covered.fill(1, pos >>> 14, (pos + io) >>> 14);
  const back = new Uint8Array(1 << 20);
  for (let off = 0; off < s.dbBytes; off += back.length) {
    const { bytesRead } = await fh.read(back, 0, back.length, off);
    if (bytesRead !== back.length) throw new Error(`db read at ${off}: ${bytesRead} bytes`);
    for (let slot = 0; slot < back.length >>> 14; slot++) {
      const at = off + (slot << 14);
      const want = covered[at >>> 14] ? pattern.subarray(at, at + (1 << 14)) : new Uint8Array(1 << 14);
      if (!same(back.subarray(slot << 14, (slot + 1) << 14), want)) throw new Error(`db file differs at ${at} (${covered[at >>> 14] ? "written" : "unwritten"} slot)`);
    }
  }
  await fh.close();
  await vol.unmount();
  return {
    populateMs,
    readMs,
    dbMs,
    treeBytes: tree.bytes,
    files: tree.files.length,
    dbWriteBytes: writeBytes,
    dbWrites: writes.length,
    dbReads: reads,
    conversions: (endio1.conversions ?? 0) - (endio0.conversions ?? 0),
    merges: (endio1.merges ?? 0) - (endio0.merges ?? 0),
  };
}

/** One runtime's answer for one device kind. */
export interface DeviceRun {
  runtime: string;
  device: "memory" | "file";
  /** What the device is, e.g. "FileDevice (node:fs)" or "OpfsDevice (worker)". */
  deviceName: string;
  reps: RepResult[];
  error?: string;
}

/**
 * Run `reps` repetitions on fresh devices from `open` (after one untimed warm-up on a
 * small device when `warmup`); the last repetition's device is passed to `keep` (for the
 * image check) and closed, the others are closed at once.
 */
export async function runDevice(
  api: Api,
  open: (size: number, label: string) => Promise<BlockDevice>,
  s: Sizes,
  reps: number,
  warmup: boolean,
  keep: (dev: BlockDevice) => Promise<void>,
): Promise<RepResult[]> {
  if (warmup) {
    const w = warmupSizes(s);
    const dev = await open(w.imageBytes, "warmup");
    await runOnce(api, dev, w);
    await dev.close();
  }
  const tree = generateTree(s);
  const out: RepResult[] = [];
  for (let i = 0; i < reps; i++) {
    const dev = await open(s.imageBytes, `rep${i}`);
    out.push(await runOnce(api, dev, s, tree));
    if (i === reps - 1) await keep(dev);
    await dev.close();
  }
  return out;
}
