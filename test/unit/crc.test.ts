/**
 * CRC-32C and CRC-16 kernels against independent oracles: published check values
 * (the CRC catalogue's CRC-32C/ISCSI and CRC-16/ARC entries, RFC 3720's iSCSI vectors)
 * and bitwise references written here from the polynomial alone, over random buffers of
 * random lengths at random alignments (so every head/bulk/tail path of the sliced loops
 * is crossed), with random seeds.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { readFile } from "node:fs/promises";
import { Engine, setEngineSource } from "../../bindings/wasm.ts";

// Load the engine directly (what bindings/node.ts does), so these kernel tests depend on
// nothing but the Wasm boundary.
setEngineSource(() => readFile(new URL("../../build/engine.wasm", import.meta.url)));

/** Bitwise reflected CRC-32C register update, no inversion (Linux crc32c() semantics). */
function refCrc32c(crc: number, bytes: Uint8Array): number {
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return crc >>> 0;
}

/** Bitwise reflected CRC-16 (poly 0xA001) register update, no inversion (Linux crc16()). */
function refCrc16(crc: number, bytes: Uint8Array): number {
  crc &= 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

let e: Engine;
let scratch: number;
const SCRATCH = 1 << 16;

beforeAll(async () => {
  e = await Engine.create();
  scratch = e.alloc(SCRATCH + 64);
});

/** Copy `bytes` into engine memory at scratch + offset and return the pointer. */
function put(bytes: Uint8Array, offset = 0): number {
  const p = scratch + offset;
  e.u8.set(bytes, p);
  return p;
}

function crc32c(seed: number, bytes: Uint8Array, offset = 0): number {
  return e.x.crc32cUpdate(seed, put(bytes, offset), bytes.length) >>> 0;
}

function crc16(seed: number, bytes: Uint8Array, offset = 0): number {
  return e.x.crc16Update(seed, put(bytes, offset), bytes.length) >>> 0;
}

/** Random bytes of a uniformly drawn length (fast-check's default sizing keeps arrays tiny). */
const bytesUpTo = (max: number) => fc.integer({ min: 0, max }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));

const ascii = (s: string) => new TextEncoder().encode(s);
const inv = (x: number) => ~x >>> 0;

describe("crc32c", () => {
  it("matches the CRC-32C/ISCSI check value", () => {
    expect(inv(crc32c(0xffffffff, ascii("123456789")))).toBe(0xe3069283);
  });

  it("matches the RFC 3720 (iSCSI) test vectors", () => {
    const zeros = new Uint8Array(32);
    const ones = new Uint8Array(32).fill(0xff);
    const inc = Uint8Array.from({ length: 32 }, (_, i) => i);
    const dec = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
    expect(inv(crc32c(0xffffffff, zeros))).toBe(0x8a9136aa);
    expect(inv(crc32c(0xffffffff, ones))).toBe(0x62a8ab43);
    expect(inv(crc32c(0xffffffff, inc))).toBe(0x46dd794e);
    expect(inv(crc32c(0xffffffff, dec))).toBe(0x113fdb5c);
  });

  it("matches the RFC 3720 iSCSI read PDU vector at every alignment", () => {
    // RFC 3720 B.4: the 48-byte SCSI Read (10) command PDU.
    const pdu = new Uint8Array(48);
    for (const [at, v] of [[0, 0x01], [1, 0xc0], [16, 0x14], [22, 0x04], [27, 0x14], [31, 0x18], [32, 0x28], [40, 0x02]]) pdu[at] = v;
    for (let off = 0; off < 16; off++) expect(inv(crc32c(0xffffffff, pdu, off))).toBe(0xd9963a56);
  });

  it("returns the seed unchanged for an empty buffer", () => {
    expect(crc32c(0x12345678, new Uint8Array(0))).toBe(0x12345678);
  });

  it("agrees with the bitwise reference for random buffers, seeds and alignments", () => {
    fc.assert(
      fc.property(
        bytesUpTo(600),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, offset, seed) => {
          expect(crc32c(seed, bytes, offset)).toBe(refCrc32c(seed, bytes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("agrees with the reference on large buffers (a 4 KiB block and beyond)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 4000, max: SCRATCH - 64 }),
        fc.integer({ min: 0, max: 63 }),
        fc.integer({ min: 0, max: 0xffffffff }),
        (len, offset, seed) => {
          const bytes = new Uint8Array(len);
          crypto.getRandomValues(bytes);
          expect(crc32c(seed, bytes, offset)).toBe(refCrc32c(seed, bytes));
        },
      ),
      { numRuns: 30 },
    );
  });

  it("chains: one update over a+b equals update(update(seed, a), b)", () => {
    fc.assert(
      fc.property(bytesUpTo(300), bytesUpTo(300), fc.integer({ min: 0, max: 0xffffffff }), (a, b, seed) => {
        const ab = new Uint8Array(a.length + b.length);
        ab.set(a);
        ab.set(b, a.length);
        expect(crc32c(crc32c(seed, a, 3), b, 5)).toBe(crc32c(seed, ab, 1));
      }),
      { numRuns: 500 },
    );
  });

  it("does not read outside [ptr, ptr + len)", () => {
    const data = new Uint8Array(100);
    crypto.getRandomValues(data);
    const want = refCrc32c(0xffffffff, data);
    for (const guard of [0x00, 0xff, 0x5a]) {
      e.u8.fill(guard, scratch, scratch + 200);
      for (let off = 1; off < 40; off++) expect(crc32c(0xffffffff, data, off)).toBe(want);
    }
  });

  it("crc32cZeros(seed, n) is the register after n zero bytes (the reference over a zero buffer)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 9000 }), (seed, n) => {
        // Memory under scratch is not zero: the result must not depend on it.
        e.u8.fill(0xa5, scratch, scratch + 64);
        expect(e.x.crc32cZeros(seed, n) >>> 0).toBe(refCrc32c(seed, new Uint8Array(n)));
      }),
      { numRuns: 300 },
    );
  });
});

describe("crc16", () => {
  it("matches the CRC-16/ARC check value", () => {
    expect(crc16(0, ascii("123456789"))).toBe(0xbb3d);
  });

  it("matches the CRC-16/MODBUS check value (same polynomial, seed 0xFFFF)", () => {
    expect(crc16(0xffff, ascii("123456789"))).toBe(0x4b37);
  });

  it("ignores the upper half of the seed and returns 16 bits", () => {
    expect(crc16(0xabcd0000, ascii("123456789"))).toBe(0xbb3d);
  });

  it("agrees with the bitwise reference for random buffers, seeds and alignments", () => {
    fc.assert(
      fc.property(
        bytesUpTo(300),
        fc.integer({ min: 0, max: 31 }),
        fc.integer({ min: 0, max: 0xffff }),
        (bytes, offset, seed) => {
          expect(crc16(seed, bytes, offset)).toBe(refCrc16(seed, bytes));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("does not read outside [ptr, ptr + len)", () => {
    const data = new Uint8Array(61);
    crypto.getRandomValues(data);
    const want = refCrc16(0xffff, data);
    for (const guard of [0x00, 0xff]) {
      e.u8.fill(guard, scratch, scratch + 200);
      for (let off = 1; off < 20; off++) expect(crc16(0xffff, data, off)).toBe(want);
    }
  });
});
