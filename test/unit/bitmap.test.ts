/**
 * Bitmap kernels against a naive model: a plain JS bit array using ext4's bit order
 * (bit i in byte i >> 3 at bit i & 7), with every query written as the obvious loop.
 * Random operation sequences over buffers whose sizes are not multiples of 8 bytes,
 * placed at random (mis)alignments, with random unaligned ranges; boundary bits; and the
 * no-overread contract checked two ways: guard bytes around the bitmap must neither
 * change results nor be changed, and a bitmap placed flush against the end of linear
 * memory must not trap for any query whose `end` reaches its last byte.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { readFile } from "node:fs/promises";
import { Engine, setEngineSource } from "../../bindings/wasm.ts";

// Load the engine directly (what bindings/node.ts does), so these kernel tests depend on
// nothing but the Wasm boundary.
setEngineSource(() => readFile(new URL("../../build/engine.wasm", import.meta.url)));

// ---- the model -------------------------------------------------------------------------

const bit = (m: Uint8Array, i: number) => ((m[i >> 3] >> (i & 7)) & 1) === 1;
const setBit = (m: Uint8Array, i: number, v: boolean) => {
  if (v) m[i >> 3] |= 1 << (i & 7);
  else m[i >> 3] &= ~(1 << (i & 7));
};
function findFirst(m: Uint8Array, s: number, e: number, want: boolean): number {
  for (let i = s; i < e; i++) if (bit(m, i) === want) return i;
  return -1;
}
function count(m: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e; i++) if (bit(m, i)) n++;
  return n;
}
function zeroRun(m: Uint8Array, s: number, e: number): number {
  let n = 0;
  for (let i = s; i < e && !bit(m, i); i++) n++;
  return n;
}
function findZeroRun(m: Uint8Array, s: number, e: number, minLen: number): number {
  const need = Math.max(1, minLen);
  for (let i = s; i < e; i++) if (zeroRun(m, i, e) >= need) return i;
  return -1;
}

// ---- engine plumbing -------------------------------------------------------------------

let e: Engine;
let region: number;
const REGION = 4096;
const GUARD = 64;

beforeAll(async () => {
  e = await Engine.create();
  region = e.alloc(REGION);
});

/** Query results from the engine, in the same shape as from the model. */
function queries(ptr: number, s: number, end: number, minLen: number) {
  const x = e.x;
  return {
    findZero: x.bitmapFindZero(ptr, s, end),
    findSet: x.bitmapFindSet(ptr, s, end),
    count: x.bitmapCount(ptr, s, end) >>> 0,
    zeroRun: x.bitmapZeroRunLength(ptr, s, end) >>> 0,
    findZeroRun: x.bitmapFindZeroRun(ptr, s, end, minLen),
  };
}
function modelQueries(m: Uint8Array, s: number, end: number, minLen: number) {
  return {
    findZero: findFirst(m, s, end, false),
    findSet: findFirst(m, s, end, true),
    count: s < end ? count(m, s, end) : 0,
    zeroRun: s < end ? zeroRun(m, s, end) : 0,
    findZeroRun: findZeroRun(m, s, end, minLen),
  };
}

/**
 * Arbitrary bitmap contents of a uniformly drawn length (fast-check's default sizing
 * would keep arrays to about ten elements, never crossing more than one 64-bit word),
 * biased towards runs, as real bitmaps are, with a random sprinkling of noise bytes.
 */
const RUNNY = [0x00, 0xff, 0x00, 0xff, 0x0f, 0xf0, 0x80, 0x01, 0x7f, 0xfe];
const bitmapBytes = (minLength: number, maxLength: number) =>
  fc.tuple(fc.integer({ min: minLength, max: maxLength }), fc.integer(), fc.double({ min: 0, max: 0.3, noNaN: true })).map(([len, seed, noise]) => {
    let x = seed | 1;
    const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
    const out = new Uint8Array(len);
    let cur = RUNNY[0];
    for (let i = 0; i < len; i++) {
      if (rnd() < 0.15) cur = RUNNY[Math.floor(rnd() * RUNNY.length)];
      out[i] = rnd() < noise ? Math.floor(rnd() * 256) : cur;
    }
    return out;
  });

type Op =
  | { k: "set" | "clear"; a: number; b: number }
  | { k: "setBit" | "clearBit"; a: number; b: number }
  | { k: "query"; a: number; b: number; minLen: number };

const op = fc.oneof(
  fc.record({ k: fc.constantFrom("set" as const, "clear" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ k: fc.constantFrom("setBit" as const, "clearBit" as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ k: fc.constant("query" as const), a: fc.nat(), b: fc.nat(), minLen: fc.integer({ min: 0, max: 200 }) }),
);

describe("bitmap kernels vs a naive model", () => {
  it("agree over random operation sequences, sizes, alignments and guard bytes", () => {
    fc.assert(
      fc.property(
        bitmapBytes(1, 150),
        fc.integer({ min: 0, max: 15 }),
        fc.constantFrom(0x00, 0xff, 0xa5),
        fc.integer({ min: 1, max: 40 }).chain((n) => fc.array(op, { minLength: n, maxLength: n })),
        (init, align, guardByte, ops) => {
          const nbytes = init.length;
          const nbits = nbytes * 8;
          const ptr = region + GUARD + align;
          const u8 = e.u8;
          u8.fill(guardByte, region, region + REGION);
          u8.set(init, ptr);
          const m = Uint8Array.from(init);
          for (const o of ops) {
            // Ranges anywhere in the bitmap, including empty and single-bit ones.
            const lo = o.a % (nbits + 1);
            const hi = lo + (o.b % (nbits - lo + 1));
            switch (o.k) {
              case "set":
              case "clear": {
                (o.k === "set" ? e.x.bitmapSetRange : e.x.bitmapClearRange)(ptr, lo, hi - lo);
                for (let i = lo; i < hi; i++) setBit(m, i, o.k === "set");
                break;
              }
              case "setBit":
              case "clearBit": {
                const i = o.a % nbits;
                const was = bit(m, i);
                expect(!!(o.k === "setBit" ? e.x.bitmapSetBit : e.x.bitmapClearBit)(ptr, i)).toBe(was);
                setBit(m, i, o.k === "setBit");
                break;
              }
              case "query": {
                expect(queries(ptr, lo, hi, o.minLen)).toEqual(modelQueries(m, lo, hi, o.minLen));
                const i = o.a % nbits;
                expect(!!e.x.bitmapTest(ptr, i)).toBe(bit(m, i));
                break;
              }
            }
            expect(e.u8.subarray(ptr, ptr + nbytes)).toEqual(m);
          }
          // Nothing outside the bitmap was written.
          const after = e.u8;
          for (let p = region; p < ptr; p++) if (after[p] !== guardByte) throw new Error(`guard byte before bitmap changed at -${ptr - p}`);
          for (let p = ptr + nbytes; p < region + REGION; p++) if (after[p] !== guardByte) throw new Error(`guard byte after bitmap changed at +${p - ptr - nbytes}`);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("answer every range query of a small bitmap exactly (exhaustive)", () => {
    // 13 bytes = 104 bits: crosses one 64-bit word boundary and ends mid-word.
    const m = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x10, 0xfe, 0x00, 0x81]);
    const ptr = region + 3;
    e.u8.set(m, ptr);
    for (let s = 0; s <= 104; s++) {
      for (let end = s; end <= 104; end++) {
        for (const minLen of [0, 1, 2, 3, 9, 40, 63, 64, 65, 100]) {
          expect(queries(ptr, s, end, minLen)).toEqual(modelQueries(m, s, end, minLen));
        }
      }
    }
  });

  it("handle the word-boundary bits 0, 63, 64 and end-1", () => {
    const nbytes = 20; // 160 bits, not a multiple of 64
    const ptr = region + 5;
    const boundary = [0, 63, 64, 127, 128, 159];
    for (const b of boundary) {
      // A single clear bit in a full bitmap, and a single set bit in an empty one.
      e.u8.fill(0xff, ptr, ptr + nbytes);
      expect(e.x.bitmapClearBit(ptr, b)).toBeTruthy();
      expect(e.x.bitmapFindZero(ptr, 0, 160)).toBe(b);
      expect(e.x.bitmapFindZero(ptr, b, b + 1)).toBe(b);
      expect(e.x.bitmapFindZero(ptr, b + 1, 160)).toBe(-1);
      expect(e.x.bitmapCount(ptr, 0, 160)).toBe(159);
      expect(e.x.bitmapFindZeroRun(ptr, 0, 160, 1)).toBe(b);
      expect(e.x.bitmapFindZeroRun(ptr, 0, 160, 2)).toBe(-1);
      e.u8.fill(0x00, ptr, ptr + nbytes);
      expect(e.x.bitmapSetBit(ptr, b)).toBeFalsy();
      expect(e.x.bitmapFindSet(ptr, 0, 160)).toBe(b);
      expect(e.x.bitmapFindSet(ptr, 0, b)).toBe(-1);
      expect(e.x.bitmapCount(ptr, 0, 160)).toBe(1);
      expect(e.x.bitmapCount(ptr, b, b + 1)).toBe(1);
      expect(e.x.bitmapZeroRunLength(ptr, 0, 160)).toBe(b);
      expect(e.x.bitmapZeroRunLength(ptr, b + 1, 160)).toBe(159 - b);
    }
    // Ranges whose ends sit exactly on word boundaries.
    e.u8.fill(0x00, ptr, ptr + nbytes);
    e.x.bitmapSetRange(ptr, 64, 64);
    const want = new Uint8Array(nbytes);
    want.fill(0xff, 8, 16);
    expect(e.u8.subarray(ptr, ptr + nbytes)).toEqual(want);
    expect(e.x.bitmapCount(ptr, 63, 129)).toBe(64);
    expect(e.x.bitmapFindZero(ptr, 64, 160)).toBe(128);
    expect(e.x.bitmapFindZeroRun(ptr, 0, 160, 64)).toBe(0);
    expect(e.x.bitmapFindZeroRun(ptr, 1, 160, 64)).toBe(-1);
    expect(e.x.bitmapFindZeroRun(ptr, 1, 160, 63)).toBe(1);
    expect(e.x.bitmapFindZeroRun(ptr, 64, 160, 32)).toBe(128);
    expect(e.x.bitmapFindZeroRun(ptr, 64, 160, 33)).toBe(-1);
    e.x.bitmapClearRange(ptr, 65, 62);
    expect(e.x.bitmapCount(ptr, 0, 160)).toBe(2);
    expect(e.x.bitmapTest(ptr, 64)).toBeTruthy();
    expect(e.x.bitmapTest(ptr, 127)).toBeTruthy();
  });

  it("treat empty and inverted ranges as empty", () => {
    const ptr = region;
    e.u8.fill(0x00, ptr, ptr + 16);
    expect(e.x.bitmapFindZero(ptr, 10, 10)).toBe(-1);
    expect(e.x.bitmapFindZero(ptr, 11, 10)).toBe(-1);
    expect(e.x.bitmapCount(ptr, 11, 10)).toBe(0);
    expect(e.x.bitmapZeroRunLength(ptr, 11, 10)).toBe(0);
    expect(e.x.bitmapFindZeroRun(ptr, 11, 10, 1)).toBe(-1);
    e.x.bitmapSetRange(ptr, 5, 0);
    expect(e.u8.subarray(ptr, ptr + 16)).toEqual(new Uint8Array(16));
  });
});

describe("bitmap kernels never read past ptr + ceil(end / 8)", () => {
  it("do not trap with the bitmap flush against the end of linear memory", async () => {
    // A separate instance: we use the top of its memory, above everything it allocated.
    const f = await Engine.create();
    const memEnd = f.x.memory.buffer.byteLength;
    const heapTop = f.x.memAlloc(16);
    expect(heapTop + 16 + 4096).toBeLessThan(memEnd);
    fc.assert(
      fc.property(bitmapBytes(1, 200), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 100 }), (bytes, a, b, minLen) => {
        // Choose a query [s, end) and place the bitmap so that byte ceil(end/8) - 1 is the
        // last byte of memory: any wider read is an out-of-bounds trap.
        const nbits = bytes.length * 8;
        const end = 1 + (a % nbits);
        const s = b % (end + 1);
        const used = Math.ceil(end / 8);
        const ptr = memEnd - used;
        const u8 = f.u8;
        u8.set(bytes.subarray(0, used), ptr);
        const m = bytes.subarray(0, used);
        const x = f.x;
        const got = {
          findZero: x.bitmapFindZero(ptr, s, end),
          findSet: x.bitmapFindSet(ptr, s, end),
          count: x.bitmapCount(ptr, s, end) >>> 0,
          zeroRun: x.bitmapZeroRunLength(ptr, s, end) >>> 0,
          findZeroRun: x.bitmapFindZeroRun(ptr, s, end, minLen),
        };
        expect(got).toEqual(modelQueries(m, s, end, minLen));
        // Range writes ending at `end` stay inside too (and are undone by the model check).
        x.bitmapSetRange(ptr, s, end - s);
        expect(x.bitmapCount(ptr, s, end)).toBe(end - s);
        x.bitmapClearRange(ptr, s, end - s);
        expect(x.bitmapFindSet(ptr, s, end)).toBe(-1);
        if (end > 0) {
          x.bitmapSetBit(ptr, end - 1);
          expect(x.bitmapTest(ptr, end - 1)).toBeTruthy();
        }
      }),
      { numRuns: 1500 },
    );
  });

  it("give the same answers whatever the bytes after the bitmap hold", () => {
    fc.assert(
      fc.property(bitmapBytes(1, 100), fc.nat(), fc.nat(), fc.integer({ min: 1, max: 80 }), (bytes, a, b, minLen) => {
        const nbits = bytes.length * 8;
        const end = 1 + (a % nbits);
        const s = b % (end + 1);
        const used = Math.ceil(end / 8);
        const ptr = region + 7;
        const m = bytes.subarray(0, used);
        const want = modelQueries(m, s, end, minLen);
        for (const guard of [0x00, 0xff]) {
          e.u8.fill(guard, region, region + REGION);
          e.u8.set(m, ptr);
          // The bits of the last byte at or past `end` are outside the range: flip them too.
          if (end & 7) {
            const keep = (1 << (end & 7)) - 1;
            e.u8[ptr + used - 1] = (m[used - 1] & keep) | (guard & ~keep);
          }
          expect(queries(ptr, s, end, minLen)).toEqual(want);
        }
      }),
      { numRuns: 500 },
    );
  });
});
