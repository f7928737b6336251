#!/usr/bin/env node
// Throughput of the engine's compute kernels (crc32c, crc16, bitmaps) against plain
// JavaScript versions of the same algorithms, in one process, on the same bytes.
//
//   node scripts/build.mjs --wasm-only && node bench/kernels.mjs [--quick]
//
// Plain ESM JavaScript so that Node 20 runs it without a TypeScript loader: it
// instantiates build/engine.wasm itself (the WASI imports are stubs — the kernels never
// call them; an abort would throw). Prints a table and writes bench/results/kernels.json.
//
// Why these baselines: the question is whether moving a kernel into Wasm pays, so each JS
// version is what a careful JS author would write, not a strawman — crc32c as table-driven
// slicing-by-8 and slicing-by-16 reading aligned 32-bit words through a Uint32Array (the
// same algorithm as the kernel); bitmaps scanned 32 bits at a time through an Int32Array
// with Math.clz32 and SWAR popcount, findZeroRun both as the kernel's own one-pass
// algorithm and as alternating find-zero / find-set scans; bitmap views created once
// outside the timed loop (a real caller would often pay for them per call). Both sides
// read the very same bytes: the JS functions get views of the Wasm memory.
//
// Each row: check that every version gives the same answer, warm up, calibrate each
// version's repetition count to ~`ROUND_MS`, then run `ROUNDS` rounds interleaving the
// versions; report each version's best round in MiB/s (bytes of input consumed per
// second; for bitmap searches, bytes of bitmap scanned). Best-of because the machine may
// be shared and interference only ever slows a round down; medians go to the JSON too.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const quick = process.argv.includes("--quick");
const ROUND_MS = quick ? 60 : 150;
const ROUNDS = quick ? 3 : 15;
const MiB = 1 << 20;

// ---- the engine ------------------------------------------------------------------------

const module = new WebAssembly.Module(readFileSync(join(root, "build/engine.wasm")));
const imports = {};
for (const imp of WebAssembly.Module.imports(module)) {
  if (imp.kind !== "function") continue;
  imports[imp.module] ??= {};
  imports[imp.module][imp.name] =
    imp.name === "proc_exit"
      ? (code) => {
          throw new Error(`engine abort (proc_exit ${code})`);
        }
      : imp.name === "fd_write"
        ? () => 0
        : () => 52;
}
const x = new WebAssembly.Instance(module, imports).exports;
x._start();

const BIG = 64 * MiB;
const bigPtr = x.memAlloc(BIG + 64);
const smallPtr = x.memAlloc(64 * 1024);
const bmPtr = x.memAlloc(256 * 1024);
const mem = () => new Uint8Array(x.memory.buffer);
{
  // Deterministic pseudo-random fill (xorshift32), so runs are comparable.
  const u32 = new Uint32Array(x.memory.buffer, bigPtr, (BIG + 64) / 4);
  let s = 0x9e3779b9;
  for (let i = 0; i < u32.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    u32[i] = s;
  }
}

// ---- JavaScript baselines --------------------------------------------------------------

function makeTables(poly, n, width) {
  const t = width === 32 ? new Int32Array(n * 256) : new Uint16Array(n * 256);
  for (let b = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    t[b] = c;
  }
  for (let k = 1; k < n; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b] >>> 0;
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff];
    }
  }
  return t;
}
const C8 = makeTables(0x82f63b78, 8, 32);
const C16 = makeTables(0x82f63b78, 16, 32);
const H8 = makeTables(0xa001, 8, 16);

/** CRC-32C, slicing-by-8, raw update (no inversion); buf is a Uint8Array. */
function crc32cJs8(crc, buf) {
  const t = C8;
  let i = 0;
  const n = buf.length;
  while (i < n && ((buf.byteOffset + i) & 3) !== 0) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  const words = ((n - i) >>> 3) << 1;
  if (words > 0) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let j = 0; j < words; j += 2) {
      const a = w[j] ^ crc;
      const b = w[j + 1];
      crc =
        t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
        t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^ t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
    }
    i += words << 2;
  }
  while (i < n) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  return crc >>> 0;
}

/** CRC-32C, slicing-by-16, raw update (no inversion). */
function crc32cJs16(crc, buf) {
  const t = C16;
  let i = 0;
  const n = buf.length;
  while (i < n && ((buf.byteOffset + i) & 3) !== 0) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  const words = ((n - i) >>> 4) << 2;
  if (words > 0) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let j = 0; j < words; j += 4) {
      const a = w[j] ^ crc;
      const b = w[j + 1];
      const c = w[j + 2];
      const d = w[j + 3];
      crc =
        t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^ t[3072 + (a >>> 24)] ^
        t[2816 + (b & 0xff)] ^ t[2560 + ((b >>> 8) & 0xff)] ^ t[2304 + ((b >>> 16) & 0xff)] ^ t[2048 + (b >>> 24)] ^
        t[1792 + (c & 0xff)] ^ t[1536 + ((c >>> 8) & 0xff)] ^ t[1280 + ((c >>> 16) & 0xff)] ^ t[1024 + (c >>> 24)] ^
        t[768 + (d & 0xff)] ^ t[512 + ((d >>> 8) & 0xff)] ^ t[256 + ((d >>> 16) & 0xff)] ^ t[d >>> 24];
    }
    i += words << 2;
  }
  while (i < n) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  return crc >>> 0;
}

/** CRC-16/ARC, slicing-by-8, raw update (no inversion). */
function crc16Js(crc, buf) {
  const t = H8;
  crc &= 0xffff;
  let i = 0;
  const n = buf.length;
  while (i < n && ((buf.byteOffset + i) & 3) !== 0) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  const words = ((n - i) >>> 3) << 1;
  if (words > 0) {
    const w = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let j = 0; j < words; j += 2) {
      const a = w[j] ^ crc;
      const b = w[j + 1];
      crc =
        t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^ t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
        t[768 + (b & 0xff)] ^ t[512 + ((b >>> 8) & 0xff)] ^ t[256 + ((b >>> 16) & 0xff)] ^ t[b >>> 24];
    }
    i += words << 2;
  }
  while (i < n) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]) & 0xff];
  return crc;
}

// Bitmaps: `w` is an Int32Array view of the bitmap (bit i at bit i & 31 of word i >> 5,
// little-endian), ranges half-open, -1 for none. Same contracts as assembly/bitmap.ts.
const ctz32 = (v) => 31 - Math.clz32(v & -v);
function jsScan(w, start, end, flip) {
  if (start >= end) return -1;
  let i = start >>> 5;
  const last = (end - 1) >>> 5;
  let v = (w[i] ^ flip) & (-1 << (start & 31));
  while (i < last) {
    if (v !== 0) return (i << 5) + ctz32(v);
    v = w[++i] ^ flip;
  }
  if ((end & 31) !== 0) v &= (1 << (end & 31)) - 1;
  return v !== 0 ? (i << 5) + ctz32(v) : -1;
}
const jsFindZero = (w, s, e) => jsScan(w, s, e, -1);
const jsFindSet = (w, s, e) => jsScan(w, s, e, 0);
const pop32 = (v) => {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) | 0;
};
function jsCount(w, start, end) {
  if (start >= end) return 0;
  let i = start >>> 5;
  const last = (end - 1) >>> 5;
  let v = w[i] & (-1 << (start & 31));
  let n = 0;
  while (i < last) {
    n += pop32(v);
    v = w[++i];
  }
  if ((end & 31) !== 0) v &= (1 << (end & 31)) - 1;
  return n + pop32(v);
}
/** Bit p set iff bits p .. p + len - 1 of z are all set (1 <= len < 32, within z). */
function jsRunsOf(z, len) {
  let y = z;
  let k = 1;
  while (k << 1 <= len) {
    y &= y >>> k;
    k <<= 1;
  }
  if (k < len) y &= y >>> (len - k);
  return y;
}
/** The same one-pass, carry-the-run algorithm as the Wasm kernel, 32 bits at a time. */
function jsFindZeroRunSwar(w, start, end, minLen) {
  if (start >= end || end - start < minLen) return -1;
  const last = (end - 1) >>> 5;
  let i = start >>> 5;
  let runStart = 0;
  let runLen = 0;
  let z = ~w[i] & (-1 << (start & 31));
  for (;;) {
    if (i === last && (end & 31) !== 0) z &= (1 << (end & 31)) - 1;
    if (z === 0) {
      runLen = 0;
    } else if (z === -1) {
      if (runLen === 0) runStart = i << 5;
      runLen += 32;
      if (runLen >= minLen) return runStart;
    } else {
      const low = ctz32(~z);
      if (runLen + low >= minLen) return runLen !== 0 ? runStart : i << 5;
      if (minLen < 32) {
        const y = jsRunsOf(z >>> 0, minLen);
        if (y !== 0) return (i << 5) + ctz32(y);
      }
      runLen = Math.clz32(~z);
      runStart = (i << 5) + 32 - runLen;
    }
    if (i === last) return -1;
    z = ~w[++i];
  }
}
/** First-fit by alternating find-zero / find-set scans. */
function jsFindZeroRun(w, start, end, minLen) {
  let pos = start;
  while (pos < end && end - pos >= minLen) {
    const z = jsFindZero(w, pos, end);
    if (z < 0 || end - z < minLen) return -1;
    const s = jsFindSet(w, z, z + minLen);
    if (s < 0) return z;
    pos = s + 1;
  }
  return -1;
}

// ---- measurement -----------------------------------------------------------------------

let sink = 0;
/** Repetitions of `fn` that take about ROUND_MS. */
function calibrate(fn) {
  for (let i = 0; i < 3; i++) sink ^= fn();
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) sink ^= fn();
    const dt = performance.now() - t0;
    if (dt >= ROUND_MS / 4) return Math.max(1, Math.round((reps * ROUND_MS) / dt));
    reps *= 4;
  }
}

const rows = [];
/**
 * Time the Wasm kernel and each JS version in interleaved rounds (so a burst of load from
 * elsewhere on the machine hits all of them alike); report the best round of each
 * (least disturbed) and keep the median too.
 */
function row(name, bytes, wasmFn, jsFns) {
  // All versions must agree before anything is timed.
  const want = wasmFn();
  for (const [label, f] of Object.entries(jsFns)) {
    const got = f();
    if (got !== want) throw new Error(`${name}: ${label} gives ${got}, wasm gives ${want}`);
  }
  const fns = { wasm: wasmFn, ...jsFns };
  const reps = Object.fromEntries(Object.entries(fns).map(([k, f]) => [k, calibrate(f)]));
  const rates = Object.fromEntries(Object.keys(fns).map((k) => [k, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, f] of Object.entries(fns)) {
      const n = reps[k];
      const t0 = performance.now();
      for (let i = 0; i < n; i++) sink ^= f();
      rates[k].push((bytes * n) / ((performance.now() - t0) / 1000) / MiB);
    }
  }
  const best = (a) => Math.max(...a);
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  const wasm = best(rates.wasm);
  const js = Object.fromEntries(Object.keys(jsFns).map((k) => [k, best(rates[k])]));
  const bestJs = Math.max(...Object.values(js));
  rows.push({
    name,
    bytesPerCall: bytes,
    wasmMiBs: round(wasm),
    jsMiBs: Object.fromEntries(Object.entries(js).map(([k, v]) => [k, round(v)])),
    ratio: round(wasm / bestJs, 2),
    medianMiBs: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, round(median(v))])),
  });
  const jsText = Object.entries(js)
    .map(([k, v]) => `${v.toFixed(0)} (${k})`)
    .join(", ");
  console.log(`${name.padEnd(44)} ${wasm.toFixed(0).padStart(10)}   ${jsText.padEnd(36)} ${(wasm / bestJs).toFixed(2).padStart(6)}x`);
}
const round = (v, d = 0) => Math.round(v * 10 ** d) / 10 ** d;

const load0 = loadavg()[0];
console.log(
  `node ${process.version}, ${cpus()[0]?.model ?? "?"} x${cpus().length}, load ${load0.toFixed(1)}; ` +
    `best of ${ROUNDS} interleaved rounds of ~${ROUND_MS} ms`,
);
console.log(`${"kernel".padEnd(44)} ${"wasm MiB/s".padStart(10)}   ${"js MiB/s".padEnd(36)}  ratio (wasm / best js)`);

// crc32c: one call over 64 MiB (streaming from memory).
{
  const view = mem().subarray(bigPtr, bigPtr + BIG);
  row("crc32c 64 MiB, one call", BIG, () => x.crc32cUpdate(-1, bigPtr, BIG) >>> 0, {
    "by-8": () => crc32cJs8(-1, view),
    "by-16": () => crc32cJs16(-1, view),
  });
}
// crc32c: the real use — one call per 4 KiB block, walking the 64 MiB buffer.
{
  const BLK = 4096;
  const N = BIG / BLK;
  const u8 = mem();
  const wasmFn = () => {
    let c = 0;
    for (let b = 0; b < N; b++) c ^= x.crc32cUpdate(-1, bigPtr + b * BLK, BLK);
    return c >>> 0;
  };
  const jsFn = (f) => () => {
    let c = 0;
    for (let b = 0; b < N; b++) c ^= f(-1, u8.subarray(bigPtr + b * BLK, bigPtr + (b + 1) * BLK));
    return c >>> 0;
  };
  row("crc32c 4 KiB blocks x 16384 (64 MiB)", BIG, wasmFn, { "by-8": jsFn(crc32cJs8), "by-16": jsFn(crc32cJs16) });
}
// crc32c: one hot 4 KiB block (cache-resident, as a just-written metadata block is).
{
  const view = mem().subarray(smallPtr, smallPtr + 4096);
  view.set(mem().subarray(bigPtr, bigPtr + 4096));
  row("crc32c 4 KiB, same block (hot)", 4096, () => x.crc32cUpdate(-1, smallPtr, 4096) >>> 0, {
    "by-8": () => crc32cJs8(-1, view),
    "by-16": () => crc32cJs16(-1, view),
  });
}
// crc32c: a 256-byte inode (the other frequent size).
{
  const view = mem().subarray(smallPtr, smallPtr + 256);
  row("crc32c 256 B (an inode)", 256, () => x.crc32cUpdate(-1, smallPtr, 256) >>> 0, {
    "by-8": () => crc32cJs8(-1, view),
    "by-16": () => crc32cJs16(-1, view),
  });
}
// crc16: a 16 MiB stream, and the 64-byte group descriptor it is really used on.
{
  const n = 16 * MiB;
  const view = mem().subarray(bigPtr, bigPtr + n);
  row("crc16 16 MiB, one call", n, () => x.crc16Update(0xffff, bigPtr, n), { "by-8": () => crc16Js(0xffff, view) });
  const d = mem().subarray(smallPtr, smallPtr + 64);
  row("crc16 64 B (a group descriptor)", 64, () => x.crc16Update(0xffff, smallPtr, 64), { "by-8": () => crc16Js(0xffff, d) });
}
// Bitmaps: one group's bitmap at 4 KiB blocks (4096 B = 32768 bits) and a flex group of
// 8 (32 KiB), plus 128 KiB.
for (const bytes of [4096, 32768, 131072]) {
  const bits = bytes * 8;
  const u8 = mem();
  const w = new Int32Array(x.memory.buffer, bmPtr, bytes / 4);
  const kib = `${bytes / 1024} KiB`;

  // Worst case for a first-fit search: full except the last bit.
  u8.fill(0xff, bmPtr, bmPtr + bytes);
  u8[bmPtr + bytes - 1] = 0x7f;
  row(`bitmap findZero ${kib}, full but last bit`, bytes, () => x.bitmapFindZero(bmPtr, 0, bits), {
    "int32": () => jsFindZero(w, 0, bits),
  });

  // Count over random contents, from an unaligned start.
  for (let i = 0; i < bytes; i++) u8[bmPtr + i] = u8[bigPtr + i];
  row(`bitmap count ${kib}, random`, bytes, () => x.bitmapCount(bmPtr, 3, bits) >>> 0, {
    "int32": () => jsCount(w, 3, bits),
  });

  // A fragmented, mostly full bitmap: free runs of 1..47 bits every 64..191 bits, and
  // one 256-bit hole near the end; ask for 64 contiguous free blocks.
  u8.fill(0xff, bmPtr, bmPtr + bytes);
  let s = 12345;
  const rnd = (n) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s % n);
  for (let b = 0; b < bits - 1024; b += 64 + rnd(128)) {
    const len = 1 + rnd(47);
    for (let i = b; i < b + len; i++) u8[bmPtr + (i >> 3)] &= ~(1 << (i & 7));
  }
  for (let i = bits - 512; i < bits - 256; i++) u8[bmPtr + (i >> 3)] &= ~(1 << (i & 7));
  row(`bitmap findZeroRun(64) ${kib}, fragmented`, bytes, () => x.bitmapFindZeroRun(bmPtr, 0, bits, 64), {
    "swar": () => jsFindZeroRunSwar(w, 0, bits, 64),
    "scans": () => jsFindZeroRun(w, 0, bits, 64),
  });
}

const out = {
  bench: "kernels",
  date: new Date().toISOString(),
  node: process.version,
  cpu: cpus()[0]?.model ?? null,
  cpus: cpus().length,
  loadAverage: { start: round(load0, 2), end: round(loadavg()[0], 2) },
  rounds: ROUNDS,
  roundMs: ROUND_MS,
  unit: "MiB/s (input bytes; bitmap bytes scanned), best round",
  ratio: "wasm / best js",
  medianMiBs: "median round of each version, for judging noise",
  rows,
};
mkdirSync(join(root, "bench/results"), { recursive: true });
writeFileSync(join(root, "bench/results/kernels.json"), JSON.stringify(out, null, 2) + "\n");
console.log("wrote bench/results/kernels.json");
