/**
 * FaultyDevice: reordering really happens and is reproducible, injected failures hit
 * exactly the chosen requests, and crash() keeps exactly what the flush contract says
 * (checked against an independent model: a copy of the image taken at each flush).
 */
import { describe, expect, it } from "vitest";
import { MemoryDevice } from "../../bindings/devices/memory.ts";
import { FaultyDevice, type FaultyOptions } from "../../bindings/devices/faulty.ts";
import { FsError, type ErrorCode } from "../../bindings/fs/errors.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";

const MiB = 1 << 20;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

async function codeOf(p: Promise<unknown>): Promise<ErrorCode | "resolved"> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    expect(e).toBeInstanceOf(FsError);
    return (e as FsError).code;
  }
}

async function image(dev: { size: number; read(o: number, b: Uint8Array): Promise<void> }): Promise<Buffer> {
  const b = new Uint8Array(dev.size);
  await dev.read(0, b);
  return Buffer.from(b);
}

/** Submit `n` writes at once; return the order their promises settled in. */
async function completionOrder(options: FaultyOptions, n = 32): Promise<number[]> {
  const dev = new FaultyDevice(new MemoryDevice(n * 4096), options);
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: n }, (_, i) => dev.write(i * 4096, new Uint8Array(4096).fill(i + 1)).then(() => order.push(i))),
  );
  // Whatever the order, every write landed where it was meant to.
  const img = await image(dev);
  for (let i = 0; i < n; i++) expect(img[i * 4096 + 4095]).toBe(i + 1);
  return order;
}

const sorted = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe("FaultyDevice reordering and delays", () => {
  it("completes requests out of order when reordering", async () => {
    const order = await completionOrder({ seed: 3, reorder: { window: 32 } });
    expect([...order].sort((a, b) => a - b)).toEqual(sorted(32));
    expect(order).not.toEqual(sorted(32));
  });

  it("random delays alone reorder completions too", async () => {
    const order = await completionOrder({ seed: 3, delay: { min: 0, max: 8 } });
    expect(order).not.toEqual(sorted(32));
  });

  it("is reproducible from its seed", async () => {
    const a = await completionOrder({ seed: 5, reorder: { window: 32 } });
    const b = await completionOrder({ seed: 5, reorder: { window: 32 } });
    const c = await completionOrder({ seed: 6, reorder: { window: 32 } });
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it("without faults configured, completes in submission order", async () => {
    expect(await completionOrder({})).toEqual(sorted(32));
  });

  it("slows zeroout down specifically", async () => {
    const dev = new FaultyDevice(new MemoryDevice(8 * MiB), { zerooutMsPerMiB: 15, zerooutDelay: 10 });
    let t = performance.now();
    await dev.zeroout(0, 4 * MiB);
    expect(performance.now() - t).toBeGreaterThanOrEqual(65); // 10 + 4 * 15, minus timer slack
    t = performance.now();
    await dev.write(0, new Uint8Array(4 * MiB));
    expect(performance.now() - t).toBeLessThan(60);
  });

  it("counts requests by kind", async () => {
    const dev = new FaultyDevice(new MemoryDevice(MiB), { fail: FaultyDevice.nth("read", 2) });
    await dev.write(0, new Uint8Array(100));
    await dev.write(100, new Uint8Array(200));
    await dev.read(0, new Uint8Array(10));
    await codeOf(dev.read(0, new Uint8Array(10)));
    await dev.zeroout(0, 512);
    await dev.discard(0, 512);
    await dev.flush();
    expect(dev.stats).toMatchObject({
      requests: 7, reads: 2, writes: 2, flushes: 1, zeroouts: 1, discards: 1,
      bytesRead: 20, bytesWritten: 300, bytesZeroed: 512, bytesDiscarded: 512, failed: 1, inFlight: 0, unflushed: 0,
    });
  });
});

describe("FaultyDevice failures", () => {
  it("fails exactly the n-th write with EIO and leaves its range untouched", async () => {
    const dev = new FaultyDevice(new MemoryDevice(64 * 1024), { fail: FaultyDevice.nth("write", 3) });
    const results: Array<ErrorCode | "resolved"> = [];
    for (let i = 0; i < 5; i++) results.push(await codeOf(dev.write(i * 4096, new Uint8Array(4096).fill(0xee))));
    expect(results).toEqual(["resolved", "resolved", "EIO", "resolved", "resolved"]);
    const img = await image(dev);
    for (let i = 0; i < 5; i++) expect(img[i * 4096]).toBe(i === 2 ? 0 : 0xee);
    expect(dev.stats.failed).toBe(1);
  });

  it("fails writes overlapping a range, with a chosen code, and from the n-th on", async () => {
    const dev = new FaultyDevice(new MemoryDevice(64 * 1024));
    dev.configure({ fail: (r) => (FaultyDevice.overlapping(10000, 100)(r) ? "ENOSPC" : false) });
    expect(await codeOf(dev.write(0, new Uint8Array(10000)))).toBe("resolved");
    expect(await codeOf(dev.write(0, new Uint8Array(10001)))).toBe("ENOSPC");
    expect(await codeOf(dev.write(10099, new Uint8Array(1)))).toBe("ENOSPC");
    expect(await codeOf(dev.write(10100, new Uint8Array(10)))).toBe("resolved");
    expect(await codeOf(dev.read(10000, new Uint8Array(100)))).toBe("resolved");
    dev.configure({ fail: FaultyDevice.fromNth("any", dev.stats.requests + 2) });
    expect(await codeOf(dev.flush())).toBe("resolved");
    expect(await codeOf(dev.read(0, new Uint8Array(1)))).toBe("EIO");
    expect(await codeOf(dev.flush())).toBe("EIO");
  });

  it("delivers failures out of order as well", async () => {
    const dev = new FaultyDevice(new MemoryDevice(32 * 4096), {
      seed: 11,
      reorder: { window: 32 },
      fail: (r) => r.kindSeq % 2 === 0,
    });
    const outcome: string[] = [];
    await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        dev.write(i * 4096, new Uint8Array(4096).fill(1)).then(
          () => outcome.push(`ok${i}`),
          (e: FsError) => outcome.push(`${e.code}${i}`),
        ),
      ),
    );
    expect(outcome.filter((s) => s.startsWith("EIO")).length).toBe(16);
    for (const s of outcome) expect(s.startsWith("EIO")).toBe(Number(s.replace(/\D+/, "")) % 2 === 1);
    expect(outcome.map((s) => Number(s.replace(/\D+/, "")))).not.toEqual(sorted(32));
  });
});

/**
 * Random writes/zeroouts with flushes in between; `durable` is a copy of the model taken
 * at each flush (every write before it was awaited), `current` the model now.
 */
async function workload(dev: FaultyDevice, seed: number, steps = 60) {
  const size = dev.size;
  const current = new Uint8Array(size);
  let durable = current.slice();
  const rnd = lcg(seed);
  const unflushed: Array<{ seq: number; apply(m: Uint8Array): void }> = [];
  for (let i = 0; i < steps; i++) {
    const r = rnd();
    const len = 1 + Math.floor(rnd() * 20000);
    const off = Math.floor(rnd() * (size - len));
    if (r < 0.7) {
      const data = new Uint8Array(len).map(() => 1 + ((rnd() * 255) | 0));
      await dev.write(off, data);
      current.set(data, off);
      unflushed.push({ seq: dev.stats.requests, apply: (m) => m.set(data, off) });
    } else if (r < 0.8) {
      await dev.zeroout(off, len);
      current.fill(0, off, off + len);
      unflushed.push({ seq: dev.stats.requests, apply: (m) => m.fill(0, off, off + len) });
    } else {
      await dev.flush();
      durable = current.slice();
      unflushed.length = 0;
    }
  }
  // Make sure something is left unflushed.
  const tail = new Uint8Array(3000).fill(0x77);
  await dev.write(size - 3000, tail);
  current.set(tail, size - 3000);
  unflushed.push({ seq: dev.stats.requests, apply: (m) => m.set(tail, size - 3000) });
  return { current, durable, unflushed };
}

describe("FaultyDevice crash", () => {
  it("reads see unflushed writes, which reach the wrapped device only at flush", async () => {
    const mem = new MemoryDevice(8192);
    const dev = new FaultyDevice(mem);
    await dev.write(0, new Uint8Array([1, 2, 3]));
    expect([...(await image(dev)).subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...(await image(mem)).subarray(0, 3)]).toEqual([0, 0, 0]);
    await dev.flush();
    expect([...(await image(mem)).subarray(0, 3)]).toEqual([1, 2, 3]);
    expect(mem.stats.flushes).toBe(1);
  });

  it("drops exactly the unflushed writes", async () => {
    for (const seed of [1, 2, 3]) {
      const mem = new MemoryDevice(MiB + 1000);
      const dev = new FaultyDevice(mem, { seed });
      const { current, durable, unflushed } = await workload(dev, seed);
      expect((await image(dev)).equals(Buffer.from(current))).toBe(true);
      const report = await dev.crash();
      expect(report).toEqual({ unflushed: unflushed.length, kept: 0, keptSeqs: [] });
      expect(await codeOf(dev.read(0, new Uint8Array(1)))).toBe("EIO");
      expect(await codeOf(dev.write(0, new Uint8Array(1)))).toBe("EIO");
      expect(await codeOf(dev.flush())).toBe("EIO");
      const after = await dev.reopen();
      expect((await image(after)).equals(Buffer.from(durable))).toBe(true);
      expect((await image(mem)).equals(Buffer.from(durable))).toBe(true);
    }
  });

  it("keep: 1 keeps everything", async () => {
    const mem = new MemoryDevice(MiB);
    const dev = new FaultyDevice(mem);
    const { current } = await workload(dev, 9);
    await dev.crash({ keep: 1 });
    expect((await image(await dev.reopen())).equals(Buffer.from(current))).toBe(true);
  });

  it("keeps a seeded random subset, applied in order, reproducibly", async () => {
    const run = async (crashSeed: number) => {
      const mem = new MemoryDevice(MiB);
      const dev = new FaultyDevice(mem, { seed: 4 });
      const w = await workload(dev, 21, 120);
      const report = await dev.crash({ keep: 0.5, seed: crashSeed });
      return { ...w, report, img: await image(mem) };
    };
    const a = await run(100);
    expect(a.report.unflushed).toBe(a.unflushed.length);
    expect(a.report.kept).toBeGreaterThan(0);
    expect(a.report.kept).toBeLessThan(a.unflushed.length);
    const expected = a.durable.slice();
    for (const u of a.unflushed) if (a.report.keptSeqs.includes(u.seq)) u.apply(expected);
    expect(a.img.equals(Buffer.from(expected))).toBe(true);
    const b = await run(100);
    expect(b.report).toEqual(a.report);
    expect(b.img.equals(a.img)).toBe(true);
    const c = await run(101);
    expect(c.report.keptSeqs).not.toEqual(a.report.keptSeqs);
  });

  it("tears kept writes at sector boundaries when asked", async () => {
    const mem = new MemoryDevice(64 * 4096);
    const dev = new FaultyDevice(mem);
    for (let i = 0; i < 64; i++) await dev.write(i * 4096, new Uint8Array(4096).fill(i + 1));
    await dev.crash({ keep: 1, torn: true, seed: 8 });
    const img = await image(mem);
    let whole = 0;
    let none = 0;
    for (let i = 0; i < 64; i++) {
      let hit = 0;
      for (let s = 0; s < 8; s++) {
        const sector = img.subarray(i * 4096 + s * 512, i * 4096 + (s + 1) * 512);
        const v = sector[0]!;
        expect(v === 0 || v === i + 1).toBe(true);
        expect(sector.every((x) => x === v)).toBe(true); // sectors are atomic
        if (v) hit++;
      }
      if (hit === 8) whole++;
      if (hit === 0) none++;
    }
    expect(whole).toBeLessThan(64);
    expect(none).toBeLessThan(64);
  });

  it("crashes at the k-th write", async () => {
    const mem = new MemoryDevice(64 * 1024);
    const dev = new FaultyDevice(mem, { crashWhen: FaultyDevice.nth("write", 5) });
    await dev.write(0, new Uint8Array(4096).fill(1));
    await dev.flush();
    const results: Array<ErrorCode | "resolved"> = [];
    for (let i = 1; i < 6; i++) results.push(await codeOf(dev.write(i * 4096, new Uint8Array(4096).fill(1))));
    expect(results).toEqual(["resolved", "resolved", "resolved", "EIO", "EIO"]);
    expect(dev.crashed).toBe(true);
    const img = await image(await dev.reopen());
    expect(img.subarray(0, 4096).every((x) => x === 1)).toBe(true);
    expect(img.subarray(4096).every((x) => x === 0)).toBe(true);
  });

  it("a write completing while a flush runs is not covered by it", async () => {
    const mem = new MemoryDevice(8192);
    let release: (() => void) | null = null;
    const slow: BlockDevice = {
      size: mem.size,
      read: (o, b) => mem.read(o, b),
      write: (o, d) => mem.write(o, d),
      flush: () => new Promise<void>((r) => (release = () => void mem.flush().then(r))),
      close: () => mem.close(),
    };
    const dev = new FaultyDevice(slow);
    await dev.write(0, new Uint8Array([1]));
    const f = dev.flush();
    await dev.write(1, new Uint8Array([2]));
    // The flush has written its entries through and waits on the wrapped device's flush.
    while (release === null) await new Promise((r) => setTimeout(r, 1));
    expect(mem.stats.writes).toBe(1);
    (release as () => void)();
    await f;
    await dev.crash();
    const img = await image(await dev.reopen());
    expect([img[0], img[1]]).toEqual([1, 0]);
  });

  it("writes still in flight at the crash fail, and may survive with keep", async () => {
    for (const keep of [0, 1]) {
      const mem = new MemoryDevice(8192);
      const dev = new FaultyDevice(mem, { delay: 30 });
      const w = dev.write(100, new Uint8Array([9]));
      await new Promise((r) => setTimeout(r, 5));
      const report = await dev.crash({ keep });
      expect(await codeOf(w)).toBe("EIO");
      expect(report.unflushed).toBe(1);
      expect((await image(await dev.reopen()))[100]).toBe(keep ? 9 : 0);
    }
  });

  it("reopen needs close or crash; a clean close writes the cache through", async () => {
    const mem = new MemoryDevice(8192);
    const dev = new FaultyDevice(mem, { reorder: true, delay: { min: 0, max: 3 } });
    await dev.write(10, new Uint8Array([5]));
    expect(await codeOf(dev.reopen())).toBe("EBUSY");
    const pending = dev.write(20, new Uint8Array([6]));
    await dev.close();
    await pending;
    expect(await codeOf(dev.read(0, new Uint8Array(1)))).toBe("EBADF");
    expect((await image(mem))[10]).toBe(0);
    const again = await dev.reopen({ seed: 2 });
    expect([(await image(mem))[10], (await image(mem))[20]]).toEqual([5, 6]);
    expect((await image(again))[20]).toBe(6);
    expect(mem.closed).toBe(false);
  });

  it("handles zeroouts wider than its index buckets", async () => {
    const mem = new MemoryDevice(256 * MiB);
    const dev = new FaultyDevice(mem);
    await dev.write(10 * MiB, new Uint8Array(MiB).fill(3));
    await dev.write(200 * MiB, new Uint8Array(16).fill(4));
    await dev.flush();
    await dev.zeroout(5 * MiB, 100 * MiB);
    await dev.write(50 * MiB, new Uint8Array(16).fill(5));
    const b = new Uint8Array(16);
    await dev.read(10 * MiB, b);
    expect(b.every((x) => x === 0)).toBe(true);
    await dev.read(50 * MiB, b);
    expect(b.every((x) => x === 5)).toBe(true);
    await dev.read(200 * MiB, b);
    expect(b.every((x) => x === 4)).toBe(true);
    await dev.flush();
    await mem.read(10 * MiB, b);
    expect(b.every((x) => x === 0)).toBe(true);
    await mem.read(50 * MiB, b);
    expect(b.every((x) => x === 5)).toBe(true);
  });

  it("volatile: false writes straight through", async () => {
    const mem = new MemoryDevice(8192);
    const dev = new FaultyDevice(mem, { volatile: false });
    await dev.write(0, new Uint8Array([7]));
    expect((await image(mem))[0]).toBe(7);
    expect((await dev.crash()).unflushed).toBe(0);
    expect((await image(await dev.reopen()))[0]).toBe(7);
  });
});
