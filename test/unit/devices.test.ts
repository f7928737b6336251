/**
 * Block devices: one conformance suite (random I/O checked against a plain Uint8Array
 * model) run over MemoryDevice, FileDevice and FaultyDevice, then what is special to each:
 * sparseness, exports, OS errors, reordering, injected failures and crashes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryDevice, MEMORY_CHUNK } from "../../bindings/devices/memory.ts";
import { FileDevice } from "../../bindings/devices/node-file.ts";
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
