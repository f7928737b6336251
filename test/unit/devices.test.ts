/**
 * Block devices: one conformance suite (random I/O checked against a plain Uint8Array
 * model) run over MemoryDevice, FileDevice and FaultyDevice, then what is special to each:
 * sparseness, exports, OS errors, reordering, injected failures and crashes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { mkdtemp, readFile, rm, stat, writeFile, mkdir, open as openFile } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryDevice, MEMORY_CHUNK } from "../../bindings/devices/memory.ts";
import { FileDevice, ZeroRanges, ZERO_RANGE_CAP } from "../../bindings/devices/node-file.ts";
import { FaultyDevice } from "../../bindings/devices/faulty.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { FsError, type ErrorCode } from "../../bindings/fs/errors.ts";

const MiB = 1 << 20;
const GiB = 1024 * MiB;

/** A small deterministic generator for test data (the devices' own PRNG is not used). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | "resolved"> {
  try {
    await (typeof p === "function" ? p() : p);
    return "resolved";
  } catch (e) {
    expect(e).toBeInstanceOf(FsError);
    return (e as FsError).code;
  }
}

/** A view of `n` bytes in the middle of a larger buffer, like a view of Wasm memory. */
function wasmLikeView(n: number, at = 4099): { view: Uint8Array; whole: Uint8Array } {
  const whole = new Uint8Array(at + n + 777).fill(0xa5);
  return { view: new Uint8Array(whole.buffer, at, n), whole };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "ext4-wasm-devices-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCounter = 0;
interface Subject {
  name: string;
  make(size: number): Promise<BlockDevice>;
}
const subjects: Subject[] = [
  { name: "MemoryDevice", make: async (size) => new MemoryDevice(size) },
  {
    name: "FileDevice",
    make: (size) => FileDevice.open(join(dir, `conf-${fileCounter++}.img`), { size, create: true }),
  },
  { name: "FaultyDevice(MemoryDevice)", make: async (size) => new FaultyDevice(new MemoryDevice(size)) },
  {
    name: "FaultyDevice(MemoryDevice) delayed+reordered",
    make: async (size) =>
      new FaultyDevice(new MemoryDevice(size), { seed: 7, delay: { min: 0, max: 2 }, reorder: { window: 4 } }),
  },
];

// Crosses chunk boundaries and ends in a short chunk.
const SIZE = 3 * MiB + 4096 + 100;

describe.each(subjects)("$name conformance", ({ make }) => {
  it("reads zeros before anything is written", async () => {
    const dev = await make(SIZE);
    expect(dev.size).toBe(SIZE);
    const buf = new Uint8Array(SIZE).fill(1);
    await dev.read(0, buf);
    expect(buf.every((b) => b === 0)).toBe(true);
    await dev.close();
  });

  it("matches a byte-array model under random writes, reads, zeroouts and flushes", async () => {
    const dev = await make(SIZE);
    const model = new Uint8Array(SIZE);
    const rnd = lcg(12345);
    for (let step = 0; step < 300; step++) {
      const r = rnd();
      const len = Math.floor(rnd() * (rnd() < 0.2 ? 2 * MiB : 9000));
      const off = Math.floor(rnd() * (SIZE - len + 1));
      if (r < 0.45) {
        const { view } = wasmLikeView(len, 1 + Math.floor(rnd() * 5000));
        for (let i = 0; i < len; i++) view[i] = (rnd() * 256) | 0;
        await dev.write(off, view);
        model.set(view, off);
      } else if (r < 0.85) {
        const at = 1 + Math.floor(rnd() * 5000);
        const { view, whole } = wasmLikeView(len, at);
        await dev.read(off, view);
        expect(Buffer.from(view).equals(Buffer.from(model.subarray(off, off + len)))).toBe(true);
        // Nothing outside the view was touched.
        expect(whole.subarray(0, at).every((b) => b === 0xa5)).toBe(true);
        expect(whole.subarray(at + len).every((b) => b === 0xa5)).toBe(true);
      } else if (r < 0.95) {
        await dev.zeroout!(off, len);
        model.fill(0, off, off + len);
      } else {
        await dev.flush();
      }
    }
    const all = new Uint8Array(SIZE);
    await dev.read(0, all);
    expect(Buffer.from(all).equals(Buffer.from(model))).toBe(true);
    await dev.close();
  });

  it("handles many requests in flight at once", async () => {
    const dev = await make(SIZE);
    const model = new Uint8Array(SIZE);
    const rnd = lcg(99);
    const piece = 8192;
    const writes: Promise<void>[] = [];
    for (let off = 0; off + piece <= SIZE; off += piece * 3) {
      const data = new Uint8Array(piece).map(() => (rnd() * 256) | 0);
      model.set(data, off);
      writes.push(dev.write(off, data));
    }
    await Promise.all(writes);
    const reads: Promise<void>[] = [];
    const bufs: Array<[number, Uint8Array]> = [];
    for (let off = 0; off + piece <= SIZE; off += piece) {
      const b = new Uint8Array(piece);
      bufs.push([off, b]);
      reads.push(dev.read(off, b));
    }
    await Promise.all(reads);
    for (const [off, b] of bufs) expect(Buffer.from(b).equals(Buffer.from(model.subarray(off, off + piece)))).toBe(true);
    await dev.close();
  });

  it("rejects bad ranges with EINVAL", async () => {
    const dev = await make(SIZE);
    expect(await codeOf(dev.read(SIZE - 10, new Uint8Array(11)))).toBe("EINVAL");
    expect(await codeOf(dev.write(SIZE, new Uint8Array(1)))).toBe("EINVAL");
    expect(await codeOf(dev.read(-1, new Uint8Array(1)))).toBe("EINVAL");
    expect(await codeOf(dev.read(0.5, new Uint8Array(1)))).toBe("EINVAL");
    expect(await codeOf(dev.zeroout!(SIZE - 1, 2))).toBe("EINVAL");
    expect(await codeOf(dev.discard!(0, SIZE + 1))).toBe("EINVAL");
    // The edges themselves are fine.
    expect(await codeOf(dev.read(SIZE - 10, new Uint8Array(10)))).toBe("resolved");
    expect(await codeOf(dev.write(SIZE, new Uint8Array(0)))).toBe("resolved");
    await dev.close();
  });

  it("refuses every request after close with EBADF", async () => {
    const dev = await make(SIZE);
    await dev.write(0, new Uint8Array([1, 2, 3]));
    await dev.close();
    expect(await codeOf(dev.read(0, new Uint8Array(3)))).toBe("EBADF");
    expect(await codeOf(dev.write(0, new Uint8Array(3)))).toBe("EBADF");
    expect(await codeOf(dev.flush())).toBe("EBADF");
    expect(await codeOf(dev.zeroout!(0, 3))).toBe("EBADF");
    expect(await codeOf(dev.discard!(0, 3))).toBe("EBADF");
    await dev.close(); // idempotent
  });
});

describe("MemoryDevice", () => {
  it("creates and uses 64 GiB and 2 TiB devices without allocating them", async () => {
    for (const size of [64 * GiB, 2 * 1024 * GiB]) {
      const dev = new MemoryDevice(size);
      const data = new Uint8Array(8192).map((_, i) => (i * 7 + 3) & 255);
      // Straddles a chunk boundary near the end.
      const off = size - MEMORY_CHUNK - 4096;
      await dev.write(off, data);
      await dev.write(4096, data);
      const back = new Uint8Array(8192);
      await dev.read(off, back);
      expect(back).toEqual(data);
      expect(dev.allocatedBytes).toBe(3 * MEMORY_CHUNK);
      const far = new Uint8Array(4096).fill(9);
      await dev.read(size / 2, far);
      expect(far.every((b) => b === 0)).toBe(true);
      expect(await codeOf(() => dev.bytes())).toBe("ENOMEM");
      // bytes() failing leaves the device intact.
      await dev.read(off, back);
      expect(back).toEqual(data);
      // Zeroing nearly all of it keeps only the 4 bytes before the range.
      await dev.zeroout(4100, size - 4100);
      expect(dev.allocatedBytes).toBe(MEMORY_CHUNK);
      const head = new Uint8Array(8);
      await dev.read(4096, head);
      expect([...head]).toEqual([...data.subarray(0, 4), 0, 0, 0, 0]);
      await dev.discard(0, size);
      expect(dev.allocatedBytes).toBe(0);
    }
  });

  it("keeps zero writes to holes as holes and zeroout/discard drop whole chunks", async () => {
    const dev = new MemoryDevice(8 * MiB);
    await dev.write(MiB, new Uint8Array(2 * MiB));
    expect(dev.allocatedBytes).toBe(0);
    await dev.write(0, new Uint8Array(4 * MiB).fill(5));
    expect(dev.allocatedBytes).toBe(4 * MiB);
    // Covers chunk 1 and 2 whole, chunk 0 and 3 partly.
    await dev.zeroout(MiB - 10, 2 * MiB + 20);
    expect(dev.allocatedBytes).toBe(2 * MiB);
    await dev.discard(0, MiB);
    expect(dev.allocatedBytes).toBe(MiB);
    const all = new Uint8Array(8 * MiB);
    await dev.read(0, all);
    const expected = new Uint8Array(8 * MiB);
    expected.fill(5, 3 * MiB + 10, 4 * MiB);
    expect(Buffer.from(all).equals(Buffer.from(expected))).toBe(true);
  });

  it("allocatedRanges() lists exactly the stored data, in order", async () => {
    const size = 5 * MEMORY_CHUNK + 777;
    const dev = new MemoryDevice(size);
    const model = new Uint8Array(size);
    const put = async (off: number, data: Uint8Array) => {
      await dev.write(off, data);
      model.set(data, off);
    };
    await put(size - 100, new Uint8Array(100).fill(8));
    await put(MEMORY_CHUNK - 3, new Uint8Array(10).fill(6));
    await put(3 * MEMORY_CHUNK + 5, new Uint8Array(0));
    const ranges = [...dev.allocatedRanges()];
    expect(ranges.map(([o, b]) => [o, b.length])).toEqual([
      [0, MEMORY_CHUNK],
      [MEMORY_CHUNK, MEMORY_CHUNK],
      [5 * MEMORY_CHUNK, 777],
    ]);
    const rebuilt = new Uint8Array(size);
    for (const [o, b] of ranges) rebuilt.set(b, o);
    expect(Buffer.from(rebuilt).equals(Buffer.from(model))).toBe(true);
    dev.bytes();
    expect([...dev.allocatedRanges()].map(([o, b]) => [o, b.length])).toEqual([[0, size]]);
  });

  it("from() wraps without copying and bytes() stays live", async () => {
    const image = new Uint8Array(10000).map((_, i) => i & 255);
    const dev = MemoryDevice.from(image);
    expect(dev.size).toBe(10000);
    await dev.write(100, new Uint8Array([200, 201]));
    expect(image[100]).toBe(200);
    expect(image[101]).toBe(201);
    expect(dev.bytes()).toBe(image);
    await dev.zeroout(0, 10);
    expect(image.subarray(0, 10).every((b) => b === 0)).toBe(true);
  });

  it("bytes() of a chunked device returns the image and then backs the device", async () => {
    const size = 2 * MiB + 300;
    const dev = new MemoryDevice(size);
    const model = new Uint8Array(size);
    const data = new Uint8Array(5000).map((_, i) => (i * 13) & 255);
    await dev.write(MiB - 2500, data);
    model.set(data, MiB - 2500);
    await dev.write(size - 10, data.subarray(0, 10));
    model.set(data.subarray(0, 10), size - 10);
    const img = dev.bytes();
    expect(Buffer.from(img).equals(Buffer.from(model))).toBe(true);
    await dev.write(0, new Uint8Array([42]));
    expect(img[0]).toBe(42);
    expect(dev.bytes()).toBe(img);
  });

  it("counts requests and bytes", async () => {
    const dev = new MemoryDevice(MiB);
    await dev.write(0, new Uint8Array(4096));
    await dev.write(8192, new Uint8Array(512));
    await dev.read(0, new Uint8Array(1024));
    await dev.flush();
    await dev.zeroout(0, 4096);
    await dev.discard(0, 2048);
    await codeOf(dev.read(MiB, new Uint8Array(1))); // rejected: not counted
    expect(dev.stats).toEqual({
      requests: 6, reads: 1, writes: 2, flushes: 1, zeroouts: 1, discards: 1,
      bytesRead: 1024, bytesWritten: 4608, bytesZeroed: 4096, bytesDiscarded: 2048,
    });
    dev.resetStats();
    expect(dev.stats.requests).toBe(0);
  });

  it("keeps the image after close for bytes() and reopen()", async () => {
    const dev = new MemoryDevice(4096);
    await dev.write(10, new Uint8Array([7]));
    await dev.close();
    expect(dev.bytes()[10]).toBe(7);
    const again = dev.reopen();
    const b = new Uint8Array(1);
    await again.read(10, b);
    expect(b[0]).toBe(7);
  });

  it("rejects bad sizes", () => {
    expect(() => new MemoryDevice(-1)).toThrow(FsError);
    expect(() => new MemoryDevice(1.5)).toThrow(FsError);
    expect(() => new MemoryDevice(2 ** 60)).toThrow(FsError);
  });
});

describe("FileDevice", () => {
  it("creates a 64 GiB file sparse and writes land in it", async () => {
    const path = join(dir, "big.img");
    const dev = await FileDevice.open(path, { size: 64 * GiB, create: true });
    const st = await stat(path);
    expect(st.size).toBe(64 * GiB);
    expect(st.blocks * 512).toBeLessThan(MiB);
    const data = new Uint8Array(4096).fill(0x3c);
    await dev.write(64 * GiB - 4096, data);
    await dev.flush();
    const back = new Uint8Array(4096);
    await dev.read(64 * GiB - 4096, back);
    expect(back).toEqual(data);
    // zeroout over holes does not allocate them.
    await dev.zeroout(GiB, 64 * MiB);
    expect((await stat(path)).blocks * 512).toBeLessThan(2 * MiB);
    await dev.close();
    const reopened = await FileDevice.open(path);
    expect(reopened.size).toBe(64 * GiB);
    expect(reopened.isBlockDevice).toBe(false);
    await reopened.close();
  });

  it("starts early write-backs during a long stream of writes, and a failed one fails the next flush", async () => {
    const path = join(dir, "early.img");
    const dev = await FileDevice.open(path, { size: 160 * MiB, create: true });
    const chunk = (k: number) => new Uint8Array(8 * MiB).fill(k + 1);
    // Node's FileHandle class, reached through a handle of our own: its datasync is what
    // the device's early write-back calls. The first call fails like a lost write-back.
    const probe = await openFile(path, "r");
    const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
    await probe.close();
    const real = proto.datasync;
    let calls = 0;
    proto.datasync = function (this: unknown) {
      calls++;
      if (calls === 1) return Promise.reject(Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO", syscall: "fdatasync" }));
      return real.call(this);
    };
    try {
      for (let k = 0; k < 10; k++) await dev.write(k * 8 * MiB, chunk(k));
      expect(dev.earlyWritebacks, "80 MiB written without a flush").toBeGreaterThanOrEqual(1);
      expect(calls).toBeGreaterThanOrEqual(1);
      // The early write-back's error is not lost: the next flush reports it …
      await expect(dev.flush()).rejects.toMatchObject({ code: "EIO", syscall: "fdatasync" });
      // … once; then flushes work again and nothing written was lost.
      for (let k = 10; k < 20; k++) await dev.write(k * 8 * MiB, chunk(k));
      await dev.flush();
    } finally {
      proto.datasync = real;
    }
    expect(dev.earlyWritebacks).toBeGreaterThanOrEqual(2);
    await dev.close();
    const back = await readFile(path);
    for (let k = 0; k < 20; k++) expect(back[k * 8 * MiB + 12345], `chunk ${k}`).toBe(k + 1);
  });

  it("writes what the host file then holds", async () => {
    const path = join(dir, "content.img");
    const dev = await FileDevice.open(path, { size: 100000, create: true });
    const model = new Uint8Array(100000);
    const rnd = lcg(4);
    for (let i = 0; i < 40; i++) {
      const len = Math.floor(rnd() * 5000);
      const off = Math.floor(rnd() * (100000 - len));
      const { view } = wasmLikeView(len, 33);
      view.forEach((_, j) => (view[j] = (rnd() * 256) | 0));
      await dev.write(off, view);
      model.set(view, off);
    }
    await dev.zeroout(5000, 20000);
    model.fill(0, 5000, 25000);
    await dev.close();
    expect((await readFile(path)).equals(Buffer.from(model))).toBe(true);
  });

  it("opens an existing file at its size, and truncates or extends to a given size", async () => {
    const path = join(dir, "sized.img");
    await writeFile(path, new Uint8Array(3000).fill(1));
    const a = await FileDevice.open(path);
    expect(a.size).toBe(3000);
    await a.close();
    const b = await FileDevice.open(path, { size: 1000 });
    expect(b.size).toBe(1000);
    await b.close();
    expect((await stat(path)).size).toBe(1000);
    const c = await FileDevice.open(path, { size: 5000 });
    const tail = new Uint8Array(4500);
    await c.read(500, tail);
    expect(tail.subarray(0, 500).every((x) => x === 1)).toBe(true);
    expect(tail.subarray(500).every((x) => x === 0)).toBe(true);
    await c.close();
  });

  it("read-only: refuses writes with EROFS and reads zeros past the file's end", async () => {
    const path = join(dir, "ro.img");
    await writeFile(path, new Uint8Array(1024).fill(9));
    const dev = await FileDevice.open(path, { readOnly: true, size: 4096 });
    expect(dev.size).toBe(4096);
    expect(await codeOf(dev.write(0, new Uint8Array(1)))).toBe("EROFS");
    expect(await codeOf(dev.zeroout(0, 1))).toBe("EROFS");
    expect(await codeOf(dev.discard(0, 1))).toBe("EROFS");
    await dev.flush();
    const b = new Uint8Array(2048).fill(3);
    await dev.read(0, b);
    expect(b.subarray(0, 1024).every((x) => x === 9)).toBe(true);
    expect(b.subarray(1024).every((x) => x === 0)).toBe(true);
    await dev.close();
    expect((await stat(path)).size).toBe(1024);
  });

  it("maps OS errors to FsError with the path", async () => {
    const missing = join(dir, "nope", "missing.img");
    const err = await FileDevice.open(missing).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).code).toBe("ENOENT");
    expect((err as FsError).errno).toBe(2);
    expect((err as FsError).path).toBe(missing);
    const sub = join(dir, "adir");
    await mkdir(sub);
    expect(await codeOf(FileDevice.open(sub))).toBe("EISDIR");
    expect(await codeOf(FileDevice.open(sub, { readOnly: true }))).toBe("EISDIR");
    expect(await codeOf(FileDevice.open(join(dir, "x.img"), { create: true, readOnly: true }))).toBe("EINVAL");
    expect(await codeOf(FileDevice.open(join(dir, "y.img"), { create: true, size: -5 }))).toBe("EINVAL");
  });

  it("counts requests", async () => {
    const dev = await FileDevice.open(join(dir, "stats.img"), { size: 65536, create: true });
    await dev.write(0, new Uint8Array(4096));
    await dev.read(0, new Uint8Array(100));
    await dev.flush();
    await dev.zeroout(0, 8192);
    expect(dev.stats).toMatchObject({ requests: 4, reads: 1, writes: 1, flushes: 1, zeroouts: 1, bytesRead: 100, bytesWritten: 4096, bytesZeroed: 8192 });
    await dev.close();
  });

  // Read-only probe of a real block device, checked against the kernel's sysfs size.
  const blockDev = (() => {
    if (!existsSync("/sys/class/block")) return null;
    for (const name of readdirSync("/sys/class/block")) {
      try {
        const sectors = Number(readFileSync(`/sys/class/block/${name}/size`, "utf8").trim());
        if (sectors > 0 && existsSync(`/dev/${name}`)) return { path: `/dev/${name}`, size: sectors * 512 };
      } catch {
        // not readable: try the next one
      }
    }
    return null;
  })();
  it.skipIf(blockDev === null)("finds a block device's size", async () => {
    let dev: FileDevice;
    try {
      dev = await FileDevice.open(blockDev!.path, { readOnly: true });
    } catch (e) {
      // Not allowed here (not root, or a container without device access): nothing to check.
      expect(["EACCES", "EPERM"]).toContain((e as FsError).code);
      return;
    }
    expect(dev.isBlockDevice).toBe(true);
    expect(dev.size).toBe(blockDev!.size);
    await dev.close();
  });
});

/** True when every byte of `b` is zero (compared against a fresh zero buffer, not the device's check). */
function allZero(b: Uint8Array): boolean {
  return Buffer.from(b.buffer, b.byteOffset, b.length).equals(new Uint8Array(b.length));
}

/** Every range `dev` claims to be zero is zero in `model` (the safety property of the set). */
function claimsOnlyZeros(ranges: Array<[number, number]>, model: Uint8Array): boolean {
  return ranges.every(([s, e]) => allZero(model.subarray(s, e)));
}

describe("ZeroRanges", () => {
  /** Sorted, non-empty, separated by at least one byte, within the cap. */
  function wellFormed(z: ZeroRanges): void {
    const r = z.ranges();
    expect(r.length).toBeLessThanOrEqual(z.cap);
    for (let i = 0; i < r.length; i++) {
      expect(r[i]![0]).toBeLessThan(r[i]![1]);
      if (i > 0) expect(r[i - 1]![1]).toBeLessThan(r[i]![0]);
    }
  }

  it("matches a byte model under random adds and removes, and forgets only when capped", async () => {
    const L = 200;
    const range = fc.tuple(fc.integer({ min: 0, max: L }), fc.integer({ min: 0, max: L })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);
    const op = fc.record({ add: fc.boolean(), r: range, q: range });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(2, 3, 7, 1000), fc.array(op, { maxLength: 80 }), async (cap, ops) => {
        const z = new ZeroRanges(cap);
        const truth = new Uint8Array(L); // 1 = really zero (added and not removed since)
        for (const { add, r: [a, b], q: [qa, qb] } of ops) {
          if (add) {
            z.add(a, b);
            truth.fill(1, a, b);
          } else {
            z.remove(a, b);
            truth.fill(0, a, b);
          }
          wellFormed(z);
          const claimed = new Uint8Array(L);
          for (const [s, e] of z.ranges()) claimed.fill(1, s, e);
          // Never claims what is not zero; with a cap it can't reach (at most L/2 ranges
          // fit in L bytes), it forgets nothing.
          for (let i = 0; i < L; i++) if (claimed[i]) expect(truth[i]).toBe(1);
          if (cap >= L) expect([...claimed]).toEqual([...truth]);
          // gaps() is exactly the unclaimed bytes of the query, as maximal runs.
          const want: Array<[number, number]> = [];
          for (let i = qa; i < qb; i++) {
            if (claimed[i]) continue;
            const last = want[want.length - 1];
            if (last && last[1] === i) last[1] = i + 1;
            else want.push([i, i + 1]);
          }
          expect(z.gaps(qa, qb)).toEqual(want);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("drops the smallest ranges when over the cap", () => {
    const z = new ZeroRanges(8);
    z.add(0, 1000);
    // Splits into [0,10) [11,20) ... [191,200) [201,1000): 21 pieces, far over 8.
    for (let p = 10; p <= 200; p += 10) z.remove(p, p + 1);
    wellFormed(z);
    expect(z.count).toBeGreaterThan(0);
    // The big tail is the largest piece and must survive every shrink.
    expect(z.ranges()).toContainEqual([201, 1000]);
    expect(z.gaps(201, 1000)).toEqual([]);
  });
});

describe("FileDevice zeroout over known zeros", () => {
  it("skips a freshly created or extended region without reading it", async () => {
    const path = join(dir, "fresh.img");
    const dev = await FileDevice.open(path, { size: GiB, create: true });
    expect(dev.knownZeroRanges()).toEqual([[0, GiB]]);
    await dev.zeroout(0, GiB);
    expect(dev.zerooutWork).toEqual({ bytesSkipped: GiB, bytesChecked: 0, bytesRewritten: 0 });
    // Independent of the counters: bytes put there behind the device's back survive, so
    // the range was neither read nor written (the device assumes exclusive access).
    const other = await openFile(path, "r+");
    await other.write(new Uint8Array([1, 2, 3]), 0, 3, 300 * MiB);
    await other.close();
    await dev.zeroout(299 * MiB, 2 * MiB);
    const peek = new Uint8Array(3);
    await dev.read(300 * MiB, peek);
    expect([...peek]).toEqual([1, 2, 3]);
    // A write makes its range unknown again: only that range is checked and rewritten.
    dev.resetStats();
    await dev.write(100 * MiB + 7, new Uint8Array(4096).fill(0xee));
    await dev.zeroout(0, GiB);
    expect(dev.zerooutWork).toEqual({ bytesSkipped: GiB - 4096, bytesChecked: 4096, bytesRewritten: 4096 });
    const back = new Uint8Array(8192);
    await dev.read(100 * MiB, back);
    expect(allZero(back)).toBe(true);
    // discard is a no-op and must not teach the device anything.
    await dev.write(5, new Uint8Array([9]));
    await dev.discard(0, MiB);
    expect(dev.knownZeroRanges()).toEqual([[0, 5], [6, GiB]]);
    await dev.close();

    // Extending an existing file: only the appended tail is known.
    const ext = join(dir, "extend.img");
    await writeFile(ext, new Uint8Array(MiB + 3).fill(0x11));
    const grown = await FileDevice.open(ext, { size: 2 * GiB });
    expect(grown.knownZeroRanges()).toEqual([[MiB + 3, 2 * GiB]]);
    await grown.zeroout(0, 2 * GiB);
    expect(grown.zerooutWork).toEqual({ bytesSkipped: 2 * GiB - MiB - 3, bytesChecked: MiB + 3, bytesRewritten: MiB + 3 });
    const head = new Uint8Array(MiB + 4096);
    await grown.read(0, head);
    expect(allZero(head)).toBe(true);
    await grown.close();
    // Shrinking appends nothing.
    const shrunk = await FileDevice.open(ext, { size: MiB });
    expect(shrunk.knownZeroRanges()).toEqual([]);
    await shrunk.close();
  });

  it("a reopened file has no known zeros and still zeroes correctly", async () => {
    const path = join(dir, "reopen.img");
    const size = 20 * MiB + 12345;
    const model = new Uint8Array(size);
    const first = await FileDevice.open(path, { size, create: true });
    const rnd = lcg(77);
    for (let i = 0; i < 30; i++) {
      const len = 1 + Math.floor(rnd() * 200000);
      const off = Math.floor(rnd() * (size - len));
      const data = new Uint8Array(len).map(() => 1 + ((rnd() * 255) | 0));
      await first.write(off, data);
      model.set(data, off);
    }
    await first.close();
    const dev = await FileDevice.open(path);
    expect(dev.knownZeroRanges()).toEqual([]);
    // Crosses several 8 MiB check pieces, so several are in flight at once.
    const from = 333;
    const len = size - 2 * from;
    await dev.zeroout(from, len);
    model.fill(0, from, from + len);
    expect(dev.zerooutWork.bytesSkipped).toBe(0);
    expect(dev.zerooutWork.bytesChecked).toBe(len);
    expect(dev.knownZeroRanges()).toEqual([[from, from + len]]);
    await dev.close();
    expect((await readFile(path)).equals(Buffer.from(model))).toBe(true);
    // The file stayed sparse where it was never written: rewriting whole pieces would
    // have allocated the full 20 MiB.
    expect((await stat(path)).blocks * 512).toBeLessThan(size);
  });

  it("matches a model under random writes and zeroouts, some issued concurrently", async () => {
    // Just over one 8 MiB check piece, so a zeroout may have two in flight.
    const size = 10 * MiB + 4097;
    const range = (max: number) =>
      fc.tuple(fc.integer({ min: 0, max: size }), fc.integer({ min: 0, max: max })).map(([o, l]) => {
        const off = Math.min(o, size - 1);
        return [off, Math.min(l, size - off)] as const;
      });
    const op = fc.oneof(
      { weight: 4, arbitrary: fc.record({ k: fc.constant("write" as const), r: range(300000), seed: fc.integer() }) },
      { weight: 3, arbitrary: fc.record({ k: fc.constant("zeroout" as const), r: range(size) }) },
      // A write and a zeroout (or two zeroouts) in flight together on disjoint ranges.
      { weight: 2, arbitrary: fc.record({ k: fc.constant("both" as const), w: range(300000), z: range(size), seed: fc.integer(), twoZero: fc.boolean() }) },
    );
    let n = 0;
    const initial = new Uint8Array(size).map((_, i) => (i * 131 + (i >>> 12)) & 255);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("create", "extend", "reopen"), fc.array(op, { maxLength: 14 }), async (how, ops) => {
        const path = join(dir, `model-${n++}.img`);
        const model = new Uint8Array(size);
        const fill = (data: Uint8Array, seed: number) => {
          const r = lcg(seed);
          for (let i = 0; i < data.length; i++) data[i] = (r() * 256) | 0;
          return data;
        };
        // Start with all known, part known, or nothing known.
        if (how !== "create") {
          const data = initial.subarray(0, how === "extend" ? 5 * MiB + 1 : size);
          await writeFile(path, data);
          model.set(data);
        }
        const dev = await FileDevice.open(path, how === "create" ? { size, create: true } : how === "extend" ? { size } : {});
        try {
          for (const o of ops) {
            if (o.k === "write") {
              const data = fill(new Uint8Array(o.r[1]), o.seed);
              await dev.write(o.r[0], data);
              model.set(data, o.r[0]);
            } else if (o.k === "zeroout") {
              await dev.zeroout(o.r[0], o.r[1]);
              model.fill(0, o.r[0], o.r[0] + o.r[1]);
            } else {
              const [wo, wl] = o.w;
              // Clip the zeroout to lie wholly before or after the write.
              let [zo, zl] = o.z;
              if (zo < wo + wl && wo < zo + zl) {
                if (zo < wo) zl = wo - zo;
                else {
                  zo = wo + wl;
                  zl = Math.min(zl, size - zo);
                }
              }
              const data = fill(new Uint8Array(wl), o.seed);
              const other = o.twoZero ? dev.zeroout(wo, wl) : dev.write(wo, data);
              await Promise.all([dev.zeroout(zo, zl), other]);
              if (o.twoZero) model.fill(0, wo, wo + wl);
              else model.set(data, wo);
              model.fill(0, zo, zo + zl);
            }
            expect(claimsOnlyZeros(dev.knownZeroRanges(), model)).toBe(true);
          }
        } finally {
          await dev.close();
        }
        expect((await readFile(path)).equals(Buffer.from(model))).toBe(true);
        await rm(path);
      }),
      { numRuns: 30 },
    );
  }, 60000);

  it("does not claim a range a write overlapped in time", async () => {
    const path = join(dir, "overlap.img");
    const size = 48 * MiB;
    await writeFile(path, new Uint8Array(size).fill(0x5a));
    // Larger than the synchronous-I/O threshold (8 MiB), so the write really is in flight
    // while the zeroout runs (small writes complete before anything else can start).
    const W = 16 * MiB;
    const data = new Uint8Array(W).fill(7);
    const written = (r: Array<[number, number]>) => r.some(([s, e]) => s < 5 * MiB + W && 5 * MiB < e);
    for (const writeFirst of [false, true]) {
      const dev = await FileDevice.open(path);
      // Which lands last is unknown, so neither order may leave the write's range known.
      const both = writeFirst
        ? [dev.write(5 * MiB, data), dev.zeroout(0, size)]
        : [dev.zeroout(0, size), dev.write(5 * MiB, data)];
      await Promise.all(both);
      expect(written(dev.knownZeroRanges())).toBe(false);
      expect(dev.knownZeroRanges()).toEqual([[0, 5 * MiB], [5 * MiB + W, size]]);
      // A later zeroout therefore checks it and the whole device reads as zeros.
      await dev.zeroout(0, size);
      await dev.close();
      expect(allZero(await readFile(path))).toBe(true);
      await writeFile(path, new Uint8Array(size).fill(0x5a));
    }
  });

  it("keeps its set within the cap and still zeroes everything", async () => {
    const path = join(dir, "capped.img");
    const size = 64 * MiB;
    const dev = await FileDevice.open(path, { size, create: true });
    const count = ZERO_RANGE_CAP + 1000;
    const step = Math.floor(size / count);
    const offsets: number[] = [];
    for (let i = 0; i < count; i++) offsets.push(i * step + ((i * 7919) % (step - 3)));
    // Issue them in shuffled batches, many in flight at once.
    const rnd = lcg(5);
    const order = offsets.map((o) => [rnd(), o] as const).sort((a, b) => a[0] - b[0]).map(([, o]) => o);
    for (let i = 0; i < order.length; i += 200) {
      await Promise.all(order.slice(i, i + 200).map((o) => dev.write(o, new Uint8Array([1, 2, 3]))));
    }
    const known = dev.knownZeroRanges();
    expect(known.length).toBeLessThanOrEqual(ZERO_RANGE_CAP);
    expect(known.length).toBeGreaterThan(0);
    for (const o of offsets) expect(known.some(([s, e]) => s < o + 3 && o < e)).toBe(false);
    await dev.zeroout(0, size);
    const work = dev.zerooutWork;
    // Some knowledge was dropped (so checked), some kept (so skipped).
    expect(work.bytesChecked).toBeGreaterThan(0);
    expect(work.bytesSkipped).toBeGreaterThan(0);
    expect(work.bytesChecked + work.bytesSkipped).toBe(size);
    expect(dev.knownZeroRanges()).toEqual([[0, size]]);
    await dev.close();
    expect(allZero(await readFile(path))).toBe(true);
  });
});
