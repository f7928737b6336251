// Block cache tests. The reference is a device of our own (below) that records every
// request and checks the ordering contract of devices/types.ts, and a plain JS model of
// what each block must contain; the cache's own answers are never used as expectations.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import "../../bindings/node.ts";
import { Engine } from "../../bindings/wasm.ts";
import { BlockCache, type BlockCacheOptions, type CacheRef } from "../../bindings/cache.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { FsError } from "../../bindings/fs/errors.ts";

type Req = { kind: "read" | "write" | "flush"; offset: number; length: number };

/** Initial contents of block b (never all zeros, different for every block). */
function pattern(b: number, bs: number): Uint8Array {
  const out = new Uint8Array(bs);
  let h = (Math.floor(b / 0x100000000) * 0x9e3779b1) ^ (b >>> 0) ^ 0x5bd1e995;
  for (let i = 0; i < bs; i++) {
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) + i;
    out[i] = h >>> 24;
  }
  return out;
}

/**
 * Sparse in-memory device keyed by block, recording requests. It rejects unaligned
 * requests, and flags any overlap that the device contract forbids (two writes of a
 * block in flight, or a read of a block while it is being written).
 */
class RecDevice implements BlockDevice {
  readonly blocks = new Map<number, Uint8Array>();
  readonly log: Req[] = [];
  readonly violations: string[] = [];
  /** Reject the next n writes / reads with EIO. */
  failWrites = 0;
  failReads = 0;
  /** Random completion delays (out-of-order completion) when set. */
  rng: (() => number) | undefined;
  /** While set, requests wait for `open()`. */
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;
  private writing = new Set<number>();

  constructor(
    readonly size: number,
    readonly bs: number,
  ) {}

  hold(): void {
    this.gate = new Promise((r) => (this.openGate = r));
  }
  open(): void {
    this.openGate?.();
    this.gate = undefined;
  }

  content(b: number): Uint8Array {
    return this.blocks.get(b) ?? pattern(b, this.bs);
  }
  writesLog(): Req[] {
    return this.log.filter((r) => r.kind === "write");
  }
  readsLog(): Req[] {
    return this.log.filter((r) => r.kind === "read");
  }

  private async wait(): Promise<void> {
    if (this.gate) await this.gate;
    if (this.rng) {
      const d = Math.floor(this.rng() * 3);
      if (d === 2) await new Promise((r) => setTimeout(r, 0));
      else for (let i = 0; i < d * 3; i++) await Promise.resolve();
    }
  }

  private range(offset: number, length: number): [number, number] {
    if (offset % this.bs !== 0 || length % this.bs !== 0 || length === 0) throw new Error(`unaligned request ${offset}+${length}`);
    if (offset + length > this.size) throw new Error(`request past the end ${offset}+${length}`);
    return [offset / this.bs, length / this.bs];
  }

  async read(offset: number, into: Uint8Array): Promise<void> {
    this.log.push({ kind: "read", offset, length: into.length });
    const [first, n] = this.range(offset, into.length);
    for (let i = 0; i < n; i++) if (this.writing.has(first + i)) this.violations.push(`read of block ${first + i} during its write`);
    await this.wait();
    if (this.failReads > 0) {
      this.failReads--;
      throw new FsError("EIO", `injected read failure at ${offset}`);
    }
    for (let i = 0; i < n; i++) into.set(this.content(first + i), i * this.bs);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.log.push({ kind: "write", offset, length: data.length });
    const [first, n] = this.range(offset, data.length);
    for (let i = 0; i < n; i++) {
      if (this.writing.has(first + i)) this.violations.push(`two writes of block ${first + i} in flight`);
      this.writing.add(first + i);
    }
    try {
      // Take the data at completion time: a cache that reused the buffer early shows up.
      await this.wait();
      if (this.failWrites > 0) {
        this.failWrites--;
        throw new FsError("EIO", `injected write failure at ${offset}`);
      }
      for (let i = 0; i < n; i++) this.blocks.set(first + i, data.slice(i * this.bs, (i + 1) * this.bs));
    } finally {
      for (let i = 0; i < n; i++) this.writing.delete(first + i);
    }
  }

  async flush(): Promise<void> {
    this.log.push({ kind: "flush", offset: 0, length: 0 });
    await this.wait();
  }

  async close(): Promise<void> {}
}

async function setup(opts: { bs?: number; blocks?: number; budget?: number } & BlockCacheOptions = {}) {
  const bs = opts.bs ?? 1024;
  const engine = await Engine.create();
  const dev = new RecDevice((opts.blocks ?? 4096) * bs, bs);
  const cache = new BlockCache(engine, dev, bs, opts.budget ?? 0, opts);
  return { engine, dev, cache, bs };
}

function bytesOf(cache: BlockCache, ref: CacheRef): Uint8Array {
  return cache.bytes(ref);
}

/** Byte-array equality, fast when equal (vitest's deep toEqual is slow on large arrays). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (actual.length === expected.length && Buffer.compare(actual, expected) === 0) return;
  expect(Array.from(actual)).toEqual(Array.from(expected));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error("expected a rejection");
}

describe("BlockCache basics", () => {
  it("reads blocks from the device, writes changes back on flush", async () => {
    const { dev, cache, bs } = await setup();
    const r = await cache.get(7);
    expectBytes(bytesOf(cache, r), pattern(7, bs));
    bytesOf(cache, r).fill(0xab, 100, 200);
    cache.markDirty(r);
    cache.release(r);
    expect(dev.writesLog()).toHaveLength(0);
    await cache.flush();
    const want = pattern(7, bs);
    want.fill(0xab, 100, 200);
    expectBytes(dev.content(7), want);
    expect(dev.writesLog()).toEqual([{ kind: "write", offset: 7 * bs, length: bs }]);
    expect(dev.log.at(-1)!.kind).toBe("flush");
    expect(cache.stats().dirty).toBe(0);
  });

  it("has at least 64 slots with a tiny budget and scales with the budget", async () => {
    expect((await setup({ budget: 1 })).cache.slots).toBe(64);
    expect((await setup({ budget: 1000 * 1024 })).cache.slots).toBe(1000);
  });

  it("refuses a second cache in one engine, bad block sizes and bad block numbers", async () => {
    const { engine, dev, cache } = await setup();
    expect(() => new BlockCache(engine, dev, 1024, 0)).toThrow(FsError);
    const e2 = await Engine.create();
    expect(() => new BlockCache(e2, dev, 1000, 0)).toThrow(FsError);
    for (const b of [-1, 1.5, NaN, 4096, 2 ** 60]) {
      const e = await rejection(cache.get(b));
      expect(e).toBeInstanceOf(FsError);
      expect((e as FsError).code).toBe("EINVAL");
    }
    expect(dev.log).toHaveLength(0);
  });

  it("getNew issues no read and yields a zeroed, dirty block", async () => {
    const { dev, cache, bs } = await setup();
    const r = await cache.getNew(12);
    expectBytes(bytesOf(cache, r), new Uint8Array(bs));
    bytesOf(cache, r)[5] = 9;
    cache.release(r);
    expect(dev.readsLog()).toHaveLength(0);
    expect(cache.stats().dirty).toBe(1);
    await cache.flush();
    const want = new Uint8Array(bs);
    want[5] = 9;
    expectBytes(dev.content(12), want);
  });

  it("invalidate drops unwritten changes; EBUSY while pinned", async () => {
    const { dev, cache, bs } = await setup();
    const r = await cache.get(3);
    bytesOf(cache, r).fill(1);
    cache.markDirty(r);
    expect(((await rejection(cache.invalidate(3))) as FsError).code).toBe("EBUSY");
    cache.release(r);
    expect(await cache.invalidate(3)).toBe(true);
    expect(await cache.invalidate(3)).toBe(false);
    expect(cache.stats().dirty).toBe(0);
    await cache.flush();
    expect(dev.writesLog()).toHaveLength(0);
    const again = await cache.get(3);
    expectBytes(bytesOf(cache, again), pattern(3, bs));
    cache.release(again);
  });
});

describe("BlockCache batching", () => {
  it("sends each run of adjacent dirty blocks as ONE write, whatever the slot order", async () => {
    const { dev, cache, bs } = await setup({ budget: 256 * 1024 });
    // Touch blocks in a scrambled order so their slots are not in block order.
    const order = [15, 30, 11, 19, 10, 32, 14, 12, 18, 13, 17, 16];
    for (const b of order) {
      const r = await cache.get(b);
      bytesOf(cache, r).fill(b & 0xff);
      cache.markDirty(r);
      cache.release(r);
    }
    const n = await cache.writeback();
    expect(n).toBe(order.length);
    const writes = dev.writesLog().sort((a, b) => a.offset - b.offset);
    expect(writes).toEqual([
      { kind: "write", offset: 10 * bs, length: 10 * bs },
      { kind: "write", offset: 30 * bs, length: bs },
      { kind: "write", offset: 32 * bs, length: bs },
    ]);
    for (const b of order) expectBytes(dev.content(b), new Uint8Array(bs).fill(b & 0xff));
    expect(cache.stats().writeRequests).toBe(3);
    expect(cache.stats().writeBlocks).toBe(12);
  });

  it("caps a run at one staging lane", async () => {
    const { dev, cache, bs } = await setup({ budget: 256 * 1024, stagingBytes: 16 * 1024, maxInFlight: 1 });
    for (let b = 100; b < 140; b++) cache.release(await cache.getNew(b));
    await cache.flush();
    expect(dev.writesLog().map((r) => [r.offset / bs, r.length / bs])).toEqual([
      [100, 16],
      [116, 16],
      [132, 8],
    ]);
  });

  it("readRun fetches a run of missing blocks with one request, skipping resident ones", async () => {
    const { dev, cache, bs } = await setup({ budget: 256 * 1024 });
    await cache.readRun(40, 32);
    expect(dev.readsLog()).toEqual([{ kind: "read", offset: 40 * bs, length: 32 * bs }]);
    for (let b = 40; b < 72; b++) {
      const r = await cache.get(b);
      expectBytes(bytesOf(cache, r), pattern(b, bs));
      cache.release(r);
    }
    expect(dev.readsLog()).toHaveLength(1);
    cache.release(await cache.get(205));
    await cache.readRun(200, 10);
    expect(dev.readsLog().slice(2).map((r) => [r.offset / bs, r.length / bs])).toEqual([
      [200, 5],
      [206, 4],
    ]);
  });

  it("readRun into scattered slots goes through staging and lands in the right slots", async () => {
    const { dev, cache, bs } = await setup({ budget: 64 * 1024 });
    for (let b = 0; b < 64; b++) cache.release(await cache.get(b));
    // Free slots in a scrambled order so the next run gets non-adjacent slots.
    for (const b of [50, 3, 41, 7, 22, 9, 60, 1]) await cache.invalidate(b);
    const before = dev.readsLog().length;
    await cache.readRun(1000, 8);
    expect(dev.readsLog().slice(before)).toEqual([{ kind: "read", offset: 1000 * bs, length: 8 * bs }]);
    for (let b = 1000; b < 1008; b++) {
      const r = cache.peek(b)!;
      expect(r).toBeDefined();
      expectBytes(bytesOf(cache, r), pattern(b, bs));
      cache.release(r);
    }
  });

  it("writes back under pressure in batches when every slot is dirty", async () => {
    const { dev, cache, bs } = await setup({ budget: 0 });
    for (let b = 0; b < 500; b++) {
      const r = await cache.getNew(b);
      bytesOf(cache, r).fill((b * 7) & 0xff);
      cache.release(r);
    }
    await cache.flush();
    for (let b = 0; b < 500; b++) expectBytes(dev.content(b), new Uint8Array(bs).fill((b * 7) & 0xff));
    // 500 blocks through a 64-slot cache: far fewer requests than blocks.
    expect(dev.writesLog().length).toBeLessThan(50);
    expect(dev.violations).toEqual([]);
  });
});

describe("BlockCache LRU", () => {
  it("evicts the least recently used clean, unpinned block", async () => {
    const { cache } = await setup({ budget: 0 });
    const n = cache.slots;
    for (let b = 0; b < n; b++) cache.release(await cache.get(b));
    cache.release(await cache.get(0)); // 0 is now most recent; 1 is the oldest
    const d = await cache.get(2); // 2 dirty and touched; 3 is now the oldest clean block
    cache.markDirty(d);
    cache.release(d);
    const pinned = await cache.get(4); // pinned blocks are skipped too
    cache.release(await cache.get(n)); // evicts 1
    expect(cache.peek(1)).toBeUndefined();
    cache.release(await cache.get(n + 1)); // evicts 3
    expect(cache.peek(3)).toBeUndefined();
    for (const b of [0, 2, 4, 5]) {
      const r = cache.peek(b);
      expect(r).toBeDefined();
      cache.release(r!);
    }
    cache.release(pinned);
  });

  it("matches a model LRU on random access sequences", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 400, size: "max" }), async (seq) => {
        const { cache } = await setup({ budget: 0 });
        const n = cache.slots;
        const model: number[] = []; // most recent last
        for (const b of seq) {
          cache.release(await cache.get(b));
          const i = model.indexOf(b);
          if (i >= 0) model.splice(i, 1);
          else if (model.length === n) model.shift();
          model.push(b);
        }
        for (let b = 0; b <= 120; b++) {
          const r = cache.peek(b);
          expect(r !== undefined).toBe(model.includes(b));
          if (r) cache.release(r);
        }
      }),
      { numRuns: 40, interruptAfterTimeLimit: 30_000 },
    );
  });
});

describe("engine cache index", () => {
  it("survives heavy insert/evict/invalidate churn, matching a JS Map + LRU list", async () => {
    // Drives the raw exports: many deletions exercise backward-shift deletion in every
    // cluster shape, including clusters that wrap around the end of the table.
    const engine = await Engine.create();
    const x = engine.x;
    const n: number = x.cacheInit(0, 512, 0);
    expect(n).toBe(64);
    const lru: number[] = []; // resident blocks, most recent last
    let s = 12345;
    const rnd = (m: number) => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % m;
    const U = 400;
    for (let step = 0; step < 200_000; step++) {
      // Blocks above 2^32 share low bits with small ones: the key is all 64 bits.
      const b = rnd(U) + (rnd(2) ? 2 ** 40 : 0);
      if (rnd(4) === 0) {
        const r: number = x.cacheInvalidate(b);
        const i = lru.indexOf(b);
        if (r !== (i >= 0 ? 1 : 0)) expect(r, `invalidate(${b}) at step ${step}`).toBe(i >= 0 ? 1 : 0);
        if (i >= 0) lru.splice(i, 1);
      } else {
        const slot: number = x.cacheAcquire(b);
        if (slot < 0 || x.cacheSlotBlock(slot) !== b) expect(x.cacheSlotBlock(slot), `acquire(${b}) at step ${step}`).toBe(b);
        x.cacheMarkValid(slot);
        const i = lru.indexOf(b);
        if (i >= 0) lru.splice(i, 1);
        else if (lru.length === n) lru.shift();
        lru.push(b);
      }
      if (step % 5000 === 0 || step === 199_999) {
        const seen = new Set<number>();
        for (const hi of [0, 2 ** 40]) {
          for (let k = 0; k < U; k++) {
            const slot: number = x.cacheProbe(hi + k);
            const want = lru.includes(hi + k);
            if (slot >= 0 !== want) expect(slot >= 0, `block ${hi + k} resident at step ${step}`).toBe(want);
            if (slot >= 0) {
              if (seen.has(slot)) expect.fail(`slot ${slot} holds two blocks`);
              seen.add(slot);
            }
          }
        }
        expect(x.cacheResidentCount()).toBe(lru.length);
      }
    }
  });
});

describe("BlockCache concurrency and failures", () => {
  it("concurrent gets of one block share a single device read", async () => {
    const { dev, cache, bs } = await setup();
    dev.hold();
    const ps = [cache.get(9), cache.get(9), cache.get(9)];
    await Promise.resolve();
    dev.open();
    const refs = await Promise.all(ps);
    expect(dev.readsLog()).toEqual([{ kind: "read", offset: 9 * bs, length: bs }]);
    expect(new Set(refs.map((r) => r.slot)).size).toBe(1);
    for (const r of refs) expectBytes(bytesOf(cache, r), pattern(9, bs));
    for (const r of refs) cache.release(r);
    expect(cache.stats().pinned).toBe(0);
  });

  it("a failed read rejects every waiter, leaves nothing valid, and a later get retries", async () => {
    const { dev, cache, bs } = await setup();
    dev.failReads = 1;
    const errs = await Promise.all([rejection(cache.get(5)), rejection(cache.get(5))]);
    for (const e of errs) {
      expect(e).toBeInstanceOf(FsError);
      expect((e as FsError).code).toBe("EIO");
    }
    expect(dev.readsLog()).toHaveLength(1);
    expect(cache.peek(5)).toBeUndefined();
    expect(cache.stats().pinned).toBe(0);
    const r = await cache.get(5);
    expectBytes(bytesOf(cache, r), pattern(5, bs));
    cache.release(r);
  });

  it("a failed write keeps the data dirty and a later writeback persists it", async () => {
    const { dev, cache, bs } = await setup();
    for (const b of [20, 21, 22]) {
      const r = await cache.get(b);
      bytesOf(cache, r).fill(0x5a);
      cache.markDirty(r);
      cache.release(r);
    }
    dev.failWrites = 1;
    const e = await rejection(cache.flush());
    expect(e).toBeInstanceOf(FsError);
    expect((e as FsError).code).toBe("EIO");
    expect(cache.stats().dirty).toBe(3);
    expectBytes(dev.content(21), pattern(21, bs));
    await cache.flush();
    for (const b of [20, 21, 22]) expectBytes(dev.content(b), new Uint8Array(bs).fill(0x5a));
    expect(cache.stats().dirty).toBe(0);
    expect(dev.writesLog()).toHaveLength(2);
  });

  it("a block changed while its write is in flight stays dirty", async () => {
    const { dev, cache, bs } = await setup();
    const r = await cache.get(8);
    bytesOf(cache, r).fill(1);
    cache.markDirty(r);
    dev.hold();
    const wb = cache.writeback();
    await new Promise((res) => setTimeout(res, 1));
    bytesOf(cache, r).fill(2);
    cache.markDirty(r);
    // A second write-out must not send block 8 again while the first is in flight.
    const wb2 = cache.writeback();
    dev.open();
    expect(await wb).toBe(1);
    expect(await wb2).toBe(0);
    expectBytes(dev.content(8), new Uint8Array(bs).fill(1));
    expect(cache.stats().dirty).toBe(1);
    cache.release(r);
    await cache.flush();
    expectBytes(dev.content(8), new Uint8Array(bs).fill(2));
    expect(dev.violations).toEqual([]);
  });

  it("all slots pinned → ENOMEM FsError", async () => {
    const { cache } = await setup({ budget: 0 });
    const refs: CacheRef[] = [];
    for (let b = 0; b < cache.slots; b++) refs.push(await cache.get(b));
    const e = await rejection(cache.get(1000));
    expect(e).toBeInstanceOf(FsError);
    expect((e as FsError).code).toBe("ENOMEM");
    expect((e as FsError).message).toContain(`all ${cache.slots} slots pinned`);
    cache.release(refs.pop()!);
    cache.release(await cache.get(1000));
    for (const r of refs) cache.release(r);
  });

  it("handles block numbers above 2^32", async () => {
    const bs = 4096;
    const big = 2 ** 32 + 5;
    const { dev, cache } = await setup({ bs, blocks: 2 ** 32 + 100 });
    const low = await cache.get(5);
    const a = await cache.get(big);
    expect(a.slot).not.toBe(low.slot);
    expectBytes(bytesOf(cache, a), pattern(big, bs));
    expectBytes(bytesOf(cache, low), pattern(5, bs));
    const b = await cache.getNew(big + 1);
    bytesOf(cache, a).fill(0x11);
    bytesOf(cache, b).fill(0x22);
    cache.markDirty(a);
    for (const r of [low, a, b]) cache.release(r);
    await cache.flush();
    expect(dev.writesLog()).toEqual([{ kind: "write", offset: big * bs, length: 2 * bs }]);
    expectBytes(dev.content(big), new Uint8Array(bs).fill(0x11));
    expectBytes(dev.content(big + 1), new Uint8Array(bs).fill(0x22));
    expectBytes(dev.content(5), pattern(5, bs));
    expect(await cache.invalidate(big)).toBe(true);
    expect(cache.peek(5)).toBeDefined();
  });
});

type Op =
  | { k: "get"; b: number; mod: number; hold: boolean }
  | { k: "new"; b: number; fill: number }
  | { k: "release" }
  | { k: "writeback"; max: number }
  | { k: "invalidate"; b: number }
  | { k: "readRun"; b: number; n: number }
  | { k: "batch"; bs: number[]; mod: number }
  | { k: "flush" };

describe("BlockCache model-based", () => {
  it("random operations with a tiny budget agree with a model of the device", async () => {
    const U = 150;
    const blk = fc.integer({ min: 0, max: U - 1 });
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ k: fc.constant("get" as const), b: blk, mod: fc.integer({ min: -1, max: 255 }), hold: fc.boolean() }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant("new" as const), b: blk, fill: fc.integer({ min: 0, max: 255 }) }) },
      { weight: 2, arbitrary: fc.constant({ k: "release" as const }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("writeback" as const), max: fc.integer({ min: 1, max: 100 }) }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("invalidate" as const), b: blk }) },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("readRun" as const), b: fc.integer({ min: 0, max: U - 40 }), n: fc.integer({ min: 1, max: 40 }) }) },
      { weight: 2, arbitrary: fc.record({ k: fc.constant("batch" as const), bs: fc.uniqueArray(blk, { minLength: 2, maxLength: 12, size: "max" }), mod: fc.integer({ min: 0, max: 255 }) }) },
      { weight: 1, arbitrary: fc.constant({ k: "flush" as const }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 120, size: "max" }), fc.integer(), async (ops, seed) => {
        const { dev, cache, bs } = await setup({ budget: 0, blocks: U, stagingBytes: 8 * 1024, maxInFlight: 3 });
        let s = seed >>> 0;
        dev.rng = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
        const model = new Map<number, Uint8Array>();
        const want = (b: number) => model.get(b) ?? pattern(b, bs);
        const held: CacheRef[] = [];
        const stampOf = (r: CacheRef, v: number) => {
          const view = bytesOf(cache, r);
          view[v % bs] = v;
          view[(v * 13 + 7) % bs] = 255 - v;
          cache.markDirty(r);
          model.set(r.blk, view.slice());
        };
        for (const o of ops) {
          switch (o.k) {
            case "get": {
              const r = await cache.get(o.b);
              expectBytes(bytesOf(cache, r), want(o.b));
              if (o.mod >= 0) stampOf(r, o.mod);
              if (o.hold && held.length < 4) held.push(r);
              else cache.release(r);
              break;
            }
            case "new": {
              if (held.some((h) => h.blk === o.b)) break; // a holder would see its block zeroed
              const r = await cache.getNew(o.b);
              bytesOf(cache, r).fill(o.fill);
              model.set(o.b, bytesOf(cache, r).slice());
              cache.release(r);
              break;
            }
            case "release":
              if (held.length) cache.release(held.shift()!);
              break;
            case "writeback":
              expect(await cache.writeback({ maxBlocks: o.max })).toBeLessThanOrEqual(o.max);
              break;
            case "invalidate":
              if (held.some((h) => h.blk === o.b)) {
                expect(((await rejection(cache.invalidate(o.b))) as FsError).code).toBe("EBUSY");
              } else {
                await cache.invalidate(o.b);
                // Dropped changes are gone: the block is whatever the device holds now.
                model.set(o.b, dev.content(o.b).slice());
              }
              break;
            case "readRun":
              await cache.readRun(o.b, o.n);
              break;
            case "batch": {
              // Distinct blocks modified concurrently, with a write-out racing them.
              const jobs: Promise<unknown>[] = o.bs.map((b, i) =>
                cache.with(b, (r) => {
                  expectBytes(bytesOf(cache, r), want(b));
                  stampOf(r, (o.mod + i) & 0xff);
                }),
              );
              jobs.push(cache.writeback({ maxBlocks: 8 }));
              await Promise.all(jobs);
              break;
            }
            case "flush":
              await cache.flush();
              break;
          }
        }
        for (const r of held.splice(0)) cache.release(r);
        await cache.flush();
        expect(cache.stats().dirty).toBe(0);
        expect(cache.stats().pinned).toBe(0);
        for (let b = 0; b < U; b++) expectBytes(dev.content(b), want(b));
        expect(dev.violations).toEqual([]);
      }),
      { numRuns: 150, interruptAfterTimeLimit: 60_000 },
    );
  });
});

describe("BlockCache micro-benchmark", () => {
  it("reports warm lookups per second", async () => {
    const { cache, engine } = await setup({ budget: 4096 * 1024, blocks: 16384 });
    const N = 4096;
    for (let b = 0; b < N; b++) cache.release(await cache.get(b * 3));
    const rounds = 1_000_000;
    let t = performance.now();
    for (let i = 0; i < rounds; i++) {
      const r = cache.peek(((i * 2654435761) % N) * 3)!;
      cache.release(r);
    }
    const peekRate = rounds / ((performance.now() - t) / 1000);
    const x = engine.x;
    t = performance.now();
    for (let i = 0; i < rounds; i++) x.cacheLookup(((i * 2654435761) % N) * 3);
    const rawRate = rounds / ((performance.now() - t) / 1000);
    const asyncRounds = 200_000;
    t = performance.now();
    for (let i = 0; i < asyncRounds; i++) cache.release(await cache.get(((i * 2654435761) % N) * 3));
    const getRate = asyncRounds / ((performance.now() - t) / 1000);
    console.log(
      `block cache, ${N} warm blocks: cacheLookup ${(rawRate / 1e6).toFixed(1)} M/s, ` +
        `peek+release ${(peekRate / 1e6).toFixed(1)} M/s, await get+release ${(getRate / 1e6).toFixed(2)} M/s`,
    );
    expect(cache.stats().misses).toBe(N);
  });
});
