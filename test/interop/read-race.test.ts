/**
 * Lock-free readers against writers that change the same file's block map (treeseq.ts).
 *
 * Readers never take metaLock; they walk the extent tree and read the data across awaits.
 * These tests make a reader's awaits long on purpose and change the tree or free its data
 * blocks in the middle:
 *   - a file of 1,500 two-block extents (depth-1 tree, several leaves) on a device that
 *     delays every request, with a block cache too small to keep the tree, churned by hole
 *     fills (merges), punches (splits, freed leaves) and ZERO_RANGE (conversions) while
 *     buffered and direct readers run: no read may fail, and every block read must be
 *     zeros or a version really written at that place of that file;
 *   - a read held at the device while the file's blocks are punched out and taken by a
 *     second file: the reader must answer zeros or the old bytes, never the other file's.
 * Every block carries a tag (file, block, version), so the oracle is the test's own model
 * of what was written, not the engine's answers; afterwards `e2fsck -fn` must be clean and
 * `debugfs cat` must equal the model.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FaultyDevice, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from "../../bindings/index.ts";
import type { FileHandle, Volume } from "../../bindings/index.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { e2fsck, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";
import { Rng } from "../helpers/fixtures.ts";

const BS = 4096;
const MAGIC = 0x7a9c3e11;
const tmp = tempDir("read-race-");
afterAll(() => tmp.cleanup());
let imgN = 0;

/** Block lblk of file `file` at version v: a tag, then bytes derived from all three. */
function blockOf(file: number, lblk: number, v: number): Uint8Array {
  const b = new Uint8Array(BS);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, file);
  dv.setUint32(8, lblk);
  dv.setUint32(12, v);
  const fill = (file * 131 + lblk * 7 + v * 29) & 0xff || 1;
  b.fill(fill, 16);
  return b;
}

function blocks(file: number, first: number, n: number, v: number): Uint8Array {
  const out = new Uint8Array(n * BS);
  for (let k = 0; k < n; k++) out.set(blockOf(file, first + k, v), k * BS);
  return out;
}

/** Each block of buf (file block `first` on) is zeros or exactly a version allowed there. */
function check(buf: Uint8Array, file: number, first: number, allowed: (lblk: number) => Set<number>): string | undefined {
  for (let k = 0; k * BS < buf.length; k++) {
    const blk = buf.subarray(k * BS, Math.min(buf.length, (k + 1) * BS));
    if (blk.every((x) => x === 0)) continue;
    const dv = new DataView(blk.buffer, blk.byteOffset, blk.length);
    const lblk = first + k;
    if (blk.length < 16 || dv.getUint32(0) !== MAGIC) return `block ${lblk}: neither zeros nor tagged data`;
    if (dv.getUint32(4) !== file) return `block ${lblk}: holds file ${dv.getUint32(4)}'s data`;
    if (dv.getUint32(8) !== lblk) return `block ${lblk}: holds block ${dv.getUint32(8)}'s data`;
    const v = dv.getUint32(12);
    if (!allowed(lblk).has(v)) return `block ${lblk}: version ${v} was never written there`;
    if (!Buffer.from(blk).equals(Buffer.from(blockOf(file, lblk, v).subarray(0, blk.length)))) return `block ${lblk}: torn content`;
  }
  return undefined;
}

async function fsckClean(mem: MemoryDevice): Promise<string> {
  const img = join(tmp.dir, `img${imgN++}.img`);
  await saveSparse(mem, img);
  const r = await e2fsck(img);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return img;
}

function debugfsCat(img: string, path: string): Buffer {
  return spawnSync("/usr/sbin/debugfs", ["-R", `cat ${path}`, img], { maxBuffer: 1 << 28 }).stdout;
}

const FILE = 1;
const EXTENTS = 1500;
/** Two written blocks, one hole, EXTENTS times: every run a reader maps is 2 blocks long. */
const BLOCKS = EXTENTS * 3;
const writtenAtBuild = (l: number) => l % 3 !== 2;

/**
 * /f with EXTENTS two-block extents separated by one-block holes (a depth-1 tree of
 * several leaves), built on a plain device, then remounted over `wrap(mem)` with a small
 * block cache. A reader maps one 2-block run at a time and reads it through the cache
 * (a delayed device request) before mapping the next, so its walk spans many awaits.
 */
async function manyExtents(wrap: (m: MemoryDevice) => BlockDevice): Promise<{ mem: MemoryDevice; vol: Volume }> {
  const mem = new MemoryDevice(64 << 20);
  await mkfs(mem, { blockSize: BS });
  const setup = await mount(mem);
  const fh = await setup.open("/f", "w+");
  for (let l = 0; l < BLOCKS; l += 3) await fh.write(blocks(FILE, l, 2, 1), 0, 2 * BS, l * BS);
  await fh.close();
  await setup.unmount();
  return { mem, vol: await mount(wrap(mem), { cacheBytes: 256 << 10 }) };
}

describe("readers straddling extent-tree changes", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: merges, splits, punches and conversions under delayed buffered and direct readers`, async () => {
      let faulty!: FaultyDevice;
      const { mem, vol } = await manyExtents((m) => (faulty = new FaultyDevice(m, { seed, delay: { min: 1, max: 6 }, reorder: { window: 4, holdMs: 1 } })));
      // The model: for every block, each version it may hold (0 = zeros always allowed).
      const model = new Array<number>(BLOCKS).fill(0);
      for (let l = 0; l < BLOCKS; l++) if (writtenAtBuild(l)) model[l] = 1;
      const allowed = Array.from({ length: BLOCKS }, (_, l) => new Set<number>(model[l] ? [model[l]!] : []));
      const rng = new Rng(seed * 101);
      const problems: string[] = [];
      let stop = false;
      // The first problem ends the test at once (a broken reader may leave writers stuck).
      let fail!: (e: Error) => void;
      const failed = new Promise<never>((_, reject) => (fail = reject));
      failed.catch(() => {});
      const report = (p: string) => {
        problems.push(p);
        stop = true;
        fail(new Error(p));
      };
      const reader = async (fh: FileHandle, direct: boolean) => {
        while (!stop) {
          const n = direct ? 1 + rng.int(48) : 1 + rng.int(96);
          const first = rng.int(BLOCKS - n);
          const buf = new Uint8Array(n * BS);
          try {
            const { bytesRead } = await fh.read(buf, 0, buf.length, first * BS);
            const p = check(buf.subarray(0, bytesRead), FILE, first, (l) => allowed[l]!);
            if (p) report(`${direct ? "direct" : "buffered"} read at ${first}+${n}: ${p}`);
          } catch (e) {
            report(`${direct ? "direct" : "buffered"} read at ${first}+${n} threw ${(e as Error).message}`);
          }
          // A macrotask between reads: writers waiting on this file's direct I/O get a turn.
          await new Promise((r) => setTimeout(r, 0));
        }
      };
      const w = await vol.open("/f", "r+", { direct: true });
      const bw = await vol.open("/f", "r+");
      const dr = await vol.open("/f", "r", { direct: true });
      const br = await vol.open("/f", "r");
      const readers = [reader(br, false), reader(br, false), reader(br, false), reader(br, false), reader(br, false), reader(dr, true)];
      let v = 1;
      const BIG = 384;
      let refill = -1;
      for (let round = 0; round < 20; round++) {
        // Disjoint ranges per round, so the final content is the model's whatever the order.
        const taken = new Set<number>();
        const claimAt = (first: number, n: number): boolean => {
          for (let k = 0; k < n; k++) if (taken.has(first + k)) return false;
          for (let k = 0; k < n; k++) taken.add(first + k);
          return true;
        };
        const claim = (n: number): number => {
          for (;;) {
            const first = rng.int(Math.floor(BLOCKS / n) - 1) * n;
            if (claimAt(first, n)) return first;
          }
        };
        const jobs: Promise<unknown>[] = [];
        if (refill >= 0 && claimAt(refill, BIG)) {
          // Last round's big punch, written again: its freed blocks (and leaves) are reused.
          const first = refill;
          const ver = ++v;
          for (let k = 0; k < BIG; k++) {
            model[first + k] = ver;
            allowed[first + k]!.add(ver);
          }
          jobs.push(w.write(blocks(FILE, first, BIG, ver), 0, BIG * BS, first * BS));
        }
        {
          // A big punch: whole leaves empty and are freed, extents vanish.
          const first = claim(512) + 64;
          for (let k = 0; k < BIG; k++) model[first + k] = 0;
          jobs.push(w.fallocate(first * BS, BIG * BS, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
          refill = first;
        }
        for (let i = 0; i < 4; i++) {
          // Fill a few holes: neighbours merge, leaf entries disappear.
          const first = claim(4);
          const ver = ++v;
          for (let k = 0; k < 4; k++) {
            model[first + k] = ver;
            allowed[first + k]!.add(ver);
          }
          jobs.push(w.write(blocks(FILE, first, 4, ver), 0, 4 * BS, first * BS));
        }
        for (let i = 0; i < 6; i++) {
          // Punch inside runs: extents split (or vanish), leaves split, fill or empty.
          const first = claim(8) + 1;
          for (let k = 0; k < 5; k++) model[first + k] = 0;
          jobs.push(w.fallocate(first * BS, 5 * BS, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE));
        }
        {
          // ZERO_RANGE: written blocks turn unwritten (a conversion splitting extents).
          const first = claim(16) + 3;
          for (let k = 0; k < 9; k++) model[first + k] = 0;
          jobs.push(w.fallocate(first * BS, 9 * BS, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE));
        }
        {
          // Buffered writes, written back (unwritten, converted at completion) by sync.
          const first = claim(8);
          const ver = ++v;
          for (let k = 0; k < 3; k++) {
            model[first + 2 * k] = ver;
            allowed[first + 2 * k]!.add(ver);
            jobs.push(bw.write(blocks(FILE, first + 2 * k, 1, ver), 0, BS, (first + 2 * k) * BS));
          }
        }
        await Promise.race([Promise.all(jobs), failed]);
        if (round % 3 === 2) await Promise.race([bw.sync(), failed]);
      }
      stop = true;
      await Promise.all(readers);
      expect(problems).toEqual([]);
      for (const fh of [w, bw, dr, br]) await fh.close();
      await vol.unmount();
      await faulty.idle();
      const img = await fsckClean(mem);
      const cat = debugfsCat(img, "/f");
      // Every write stays below block BLOCKS - 1, so the size is still the build's.
      const want = new Uint8Array((BLOCKS - 1) * BS);
      for (let l = 0; l < BLOCKS - 1; l++) if (model[l]) want.set(blockOf(FILE, l, model[l]!), l * BS);
      expect(cat.length).toBe(want.length);
      expect(cat.equals(Buffer.from(want))).toBe(true);
    }, 120_000);
  }
});

/**
 * A device whose reads of one byte range can be held: the next read overlapping the
 * range waits until release() (only that one; later reads go through).
 */
class GateDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize?: number;
  private readonly inner: BlockDevice;
  private armed: { from: number; to: number } | undefined;
  private held: (() => void) | undefined;
  private onHeld: (() => void) | undefined;

  constructor(inner: BlockDevice) {
    this.inner = inner;
    this.size = inner.size;
    this.blockSize = inner.blockSize;
  }

  /** Hold the next read overlapping [from, to); resolves once one is held. */
  arm(from: number, to: number): Promise<void> {
    this.armed = { from, to };
    return new Promise((r) => (this.onHeld = r));
  }

  release(): void {
    const h = this.held;
    this.held = undefined;
    h?.();
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    const a = this.armed;
    if (a && offset < a.to && offset + into.length > a.from) {
      this.armed = undefined;
      await new Promise<void>((r) => {
        this.held = r;
        this.onHeld?.();
      });
    }
    return this.inner.read(offset, into);
  }
  write(offset: number, data: Uint8Array): Promise<void> { return this.inner.write(offset, data); }
  flush(): Promise<void> { return this.inner.flush(); }
  zeroout(offset: number, length: number): Promise<void> { return this.inner.zeroout!(offset, length); }
  discard(offset: number, length: number): Promise<void> { return this.inner.discard!(offset, length); }
  close(): Promise<void> { return this.inner.close(); }
}

/**
 * /a (file tag A, version 1) laid out as `runs` [lblk, len] extents, then a filler that
 * leaves only a few blocks free; remounted over a GateDevice with an empty block cache.
 */
async function nearlyFull(runs: [number, number][]): Promise<{ mem: MemoryDevice; gate: GateDevice; vol: Volume }> {
  const mem = new MemoryDevice(16 << 20);
  await mkfs(mem, { blockSize: BS });
  const setup = await mount(mem);
  const fh = await setup.open("/a", "w+");
  for (const [l, n] of runs) await fh.write(blocks(A, l, n, 1), 0, n * BS, l * BS);
  await fh.close();
  await setup.sync();
  const free = (await setup.statfs()).bfree;
  // A few blocks stay for the filler's own tree; whatever is left /b takes first.
  await setup.writeFile("/filler", new Uint8Array((free - 8) * BS).fill(0x33));
  await setup.unmount();
  const gate = new GateDevice(mem);
  return { mem, gate, vol: await mount(gate, { cacheBytes: 1 << 20 }) };
}

const A = 1, B = 2;

/** Punch [from, to) of /a, then fill every free block with /b (direct): /b must reuse them. */
async function punchAndReuse(vol: Volume, a: FileHandle, from: number, to: number): Promise<{ b: FileHandle; bLen: number }> {
  await a.fallocate(from * BS, (to - from) * BS, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  const b = await vol.open("/b", "w+", { direct: true });
  const bLen = (await vol.statfs()).bfree;
  await b.write(blocks(B, 0, bLen, 1), 0, bLen * BS, 0);
  return { b, bLen };
}

async function owns(fh: FileHandle, phys: number): Promise<boolean> {
  return (await fh.extents()).some((e) => e.physical <= phys && phys < e.physical + e.length);
}

describe("a reader straddling a punch and the reuse of the blocks", () => {
  it("a long read (device straight into the buffer) returns the old bytes or zeros, never the other file's", async () => {
    const N = 32;
    const { mem, gate, vol } = await nearlyFull([[0, N]]);
    const a = await vol.open("/a", "r+");
    const [ext] = await a.extents();
    expect(ext).toMatchObject({ logical: 0, length: N });
    const aPhys = ext!.physical;
    // Blocks [4, 28) of /a: one 96 KiB run, read straight into the buffer, held once mapped.
    const first = 4, count = 24;
    const held = gate.arm((aPhys + first) * BS, (aPhys + first + count) * BS);
    const r = await vol.open("/a", "r");
    const out = new Uint8Array(count * BS);
    const reading = r.read(out, 0, out.length, first * BS);
    await held;
    const { b, bLen } = await punchAndReuse(vol, a, 1, N - 1);
    // The scenario's precondition: /b now owns the blocks the held read is aimed at.
    expect(await owns(b, aPhys + first)).toBe(true);
    gate.release();
    const { bytesRead } = await reading;
    expect(bytesRead).toBe(out.length);
    expect(check(out, A, first, () => new Set([1]))).toBeUndefined();
    for (const fh of [a, b, r]) await fh.close();
    await vol.unmount();
    const img = await fsckClean(mem);
    const wantA = new Uint8Array(N * BS);
    wantA.set(blockOf(A, 0, 1), 0);
    wantA.set(blockOf(A, N - 1, 1), (N - 1) * BS);
    expect(debugfsCat(img, "/a").equals(Buffer.from(wantA))).toBe(true);
    expect(debugfsCat(img, "/b").equals(Buffer.from(blocks(B, 0, bLen, 1)))).toBe(true);
  });

  it("a short read (through the block cache) returns the old bytes or zeros, never the other file's", async () => {
    // Two extents with a hole between: [0,16) and [17,33). Reading [14,19) maps and
    // caches run one (14,15), then waits at the device for run two (17,18): meanwhile
    // run one's blocks are punched and rewritten by /b, before they are copied out.
    const { mem, gate, vol } = await nearlyFull([[0, 16], [17, 16]]);
    const a = await vol.open("/a", "r+");
    const ex = await a.extents();
    expect(ex.map((e) => [e.logical, e.length])).toEqual([[0, 16], [17, 16]]);
    const held = gate.arm((ex[1]!.physical) * BS, (ex[1]!.physical + 2) * BS);
    const r = await vol.open("/a", "r");
    const out = new Uint8Array(5 * BS);
    const reading = r.read(out, 0, out.length, 14 * BS);
    await held;
    const { b, bLen } = await punchAndReuse(vol, a, 1, 16);
    expect(await owns(b, ex[0]!.physical + 14)).toBe(true);
    gate.release();
    const { bytesRead } = await reading;
    expect(bytesRead).toBe(out.length);
    expect(check(out, A, 14, () => new Set([1]))).toBeUndefined();
    for (const fh of [a, b, r]) await fh.close();
    await vol.unmount();
    const img = await fsckClean(mem);
    const wantA = new Uint8Array(33 * BS);
    wantA.set(blockOf(A, 0, 1), 0);
    wantA.set(blocks(A, 17, 16, 1), 17 * BS);
    expect(debugfsCat(img, "/a").equals(Buffer.from(wantA))).toBe(true);
    expect(debugfsCat(img, "/b").equals(Buffer.from(blocks(B, 0, bLen, 1)))).toBe(true);
  });
});
