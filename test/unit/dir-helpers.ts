/**
 * Fixtures shared by dir.test.ts and htree.test.ts: source trees full of awkward names,
 * images built from them by e2fsprogs (the oracle), the directory's blocks as e2fsprogs
 * lists them, its listing as `debugfs ls -p` prints it, and an obviously-correct
 * (slow, literal) reading of the ext4 directory-block rules to compare the engine with.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, symlinkSync } from "node:fs";
import { tool, toolStatus } from "./e2fs-oracle.ts";

/** Seeded PRNG (mulberry32): the same names and mutations on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const randInt = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,+=@~!%^&()[]{};' ";
const UNICODE = "äöüßéèêçñåøæ日本語中文字한국어абвгдежзийκλμνξπ€£¥©®±µ¶·¿🙂🚀";

/** Truncate a UTF-8 string's bytes to at most max bytes without splitting a character. */
function utf8Clip(s: string, max: number): Buffer {
  let b = Buffer.from(s, "utf8");
  while (b.length > max) {
    s = [...s].slice(0, -1).join("");
    b = Buffer.from(s, "utf8");
  }
  return b;
}

/**
 * `count` distinct valid file names as bytes: short and long ASCII, UTF-8 (bytes >= 0x80),
 * raw Latin-1 bytes that are not UTF-8, and 255-byte names. Never ".", "..", "/" or NUL.
 */
export function awkwardNames(seed: number, count: number): Buffer[] {
  const r = rng(seed);
  const seen = new Set<string>();
  const out: Buffer[] = [];
  while (out.length < count) {
    const kind = randInt(r, 0, 5);
    let b: Buffer;
    if (kind === 0) {
      b = Buffer.from(Array.from({ length: randInt(r, 1, 12) }, () => pick(r, [...ASCII])).join(""));
    } else if (kind === 1) {
      b = Buffer.from(Array.from({ length: randInt(r, 13, 80) }, () => pick(r, [...ASCII])).join(""));
    } else if (kind === 2) {
      b = utf8Clip(Array.from({ length: randInt(r, 1, 60) }, () => pick(r, [...UNICODE])).join(""), 255);
    } else if (kind === 3) {
      // Not UTF-8: arbitrary high bytes (Linux names are bytes).
      b = Buffer.from(Array.from({ length: randInt(r, 1, 40) }, () => randInt(r, 0x80, 0xff)));
    } else if (kind === 4) {
      const stem = `long${out.length}_`;
      b = Buffer.from(stem + "x".repeat(255 - stem.length));
    } else {
      b = utf8Clip(`n${out.length}-` + "é".repeat(randInt(r, 100, 127)), 255);
    }
    const key = b.toString("hex");
    if (b.length === 0 || b.length > 255 || seen.has(key)) continue;
    if (b.includes(0) || b.includes(0x2f)) continue;
    if (b.equals(Buffer.from(".")) || b.equals(Buffer.from(".."))) continue;
    seen.add(key);
    out.push(b);
  }
  return out;
}

/**
 * Create `names` inside dir (Buffer paths, so non-UTF-8 bytes survive): mostly empty
 * regular files, every 50th a subdirectory and every 50th (offset 25) a symlink, so the
 * file types vary. Returns the FT_* code each name should carry.
 */
export function populate(dir: string, names: Buffer[]): Map<string, number> {
  mkdirSync(dir, { recursive: true });
  const types = new Map<string, number>();
  const base = Buffer.from(dir + "/");
  names.forEach((n, i) => {
    const p = Buffer.concat([base, n]);
    if (i % 50 === 0) {
      mkdirSync(p);
      types.set(n.toString("hex"), 2);
    } else if (i % 50 === 25) {
      symlinkSync("target", p);
      types.set(n.toString("hex"), 7);
    } else {
      closeSync(openSync(p, "w"));
      types.set(n.toString("hex"), 1);
    }
  });
  return types;
}

/** Run e2fsck; returns its exit status (0: clean, 1: fixed). */
export function fsck(img: string, args: string[]): number {
  return toolStatus("e2fsck", [...args, img]).status;
}

export interface DirImage {
  img: string;
  bytes: Buffer;
  blockSize: number;
  sb: Buffer;
  /** Physical block of each logical block of the directory, in logical order. */
  blocks: number[];
  /** The directory's contents: logical block i at [i * blockSize, (i + 1) * blockSize). */
  data: Buffer;
}

/**
 * Read an image and the blocks of directory `path`, mapped logical → physical with
 * `debugfs bmap` (works for extent and block-mapped directories alike; `blocks` would
 * also list extent-tree and indirect blocks).
 */
export function loadDir(img: string, path: string): DirImage {
  const bytes = readFileSync(img);
  const sb = bytes.subarray(1024, 2048);
  const blockSize = 1024 << sb.readUInt32LE(0x18);
  const size = Number(/Size: (\d+)/.exec(tool("debugfs", ["-R", `stat ${path}`, img]))![1]);
  const n = size / blockSize;
  if (!Number.isInteger(n) || n <= 0) throw new Error(`directory size ${size}`);
  const script = Array.from({ length: n }, (_, i) => `bmap ${path} ${i}`).join("\n") + "\n";
  const out = tool("debugfs", ["-f", "-", img], script);
  const blocks = out.split("\n").filter((l) => /^\d+$/.test(l.trim())).map((l) => Number(l.trim()));
  if (blocks.length !== n || blocks.some((b) => b <= 0)) throw new Error(`bmap ${path}: ${out.slice(0, 400)}`);
  const data = Buffer.alloc(n * blockSize);
  blocks.forEach((b, i) => bytes.copy(data, i * blockSize, b * blockSize, (b + 1) * blockSize));
  return { img, bytes, blockSize, sb, blocks, data };
}

export interface Listed {
  name: Buffer;
  ino: number;
  type: number;
}

const MODE_TO_FT: Record<number, number> = { 0o10: 1, 0o04: 2, 0o02: 3, 0o06: 4, 0o01: 5, 0o14: 6, 0o12: 7 };

/** `debugfs ls -p`: every live entry of a directory with its inode and type (from the mode). */
export function listDir(img: string, path: string): Listed[] {
  const raw = execBinary("debugfs", ["-R", `ls -p ${path}`, img]);
  const res: Listed[] = [];
  // Lines are /ino/mode/uid/gid/name/size/ ; names cannot contain '/' or '\n'.
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf(0x0a, start);
    if (end < 0) end = raw.length;
    const line = raw.subarray(start, end);
    start = end + 1;
    if (line.length === 0) continue;
    const parts: Buffer[] = [];
    let s = 0;
    for (let i = 0; i <= line.length; i++) {
      if (i === line.length || line[i] === 0x2f) {
        parts.push(line.subarray(s, i));
        s = i + 1;
      }
    }
    if (parts.length !== 8 || parts[0].length !== 0) throw new Error(`ls -p line: ${line.toString("latin1")}`);
    const mode = parseInt(parts[2].toString(), 8);
    const ino = Number(parts[1].toString());
    // ls also prints unused entries that open a block (htree nodes, emptied blocks).
    if (ino === 0) continue;
    res.push({ name: Buffer.from(parts[5]), ino, type: MODE_TO_FT[mode >> 12] ?? 0 });
  }
  return res;
}

function execBinary(cmd: string, args: string[]): Buffer {
  // tool() decodes as UTF-8, which would mangle non-UTF-8 names; ask for the raw bytes.
  return execFileSync(cmd, args, {
    env: { ...process.env, PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ""}`, LC_ALL: "C" },
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 64 << 20,
  });
}

// ── the reference reading of a directory block (spec rules, written literally) ─────────

export interface RefEntry {
  off: number;
  ino: number;
  type: number;
  name: Buffer;
}

/**
 * Parse a directory block by the rules of Documentation/filesystems/ext4/directory.rst and
 * the kernel's entry checks, one rule at a time. null if the block is invalid. With
 * hasTail the chain must end 12 bytes early at a checksum tail, unless the block is shaped
 * like an htree root or interior node (which carry a dx_tail instead).
 */
export function refParseBlock(
  blk: Uint8Array, bs: number, hasTail: boolean, hasFileType: boolean, inodeLimit = 0,
): RefEntry[] | null {
  const u16 = (o: number) => blk[o] | (blk[o + 1] << 8);
  const u32 = (o: number) => (blk[o] | (blk[o + 1] << 8) | (blk[o + 2] << 16) | (blk[o + 3] << 24)) >>> 0;
  const recLen = (o: number) => {
    const v = u16(o + 4);
    return bs === 65536 && (v === 0 || v === 65535) ? 65536 : v;
  };
  const entries: RefEntry[] = [];
  const offs: number[] = [];
  let off = 0;
  let end = -1;
  while (true) {
    if (off === bs) {
      end = bs;
      break;
    }
    if (hasTail && off === bs - 12) {
      const tailOk = u32(off) === 0 && u16(off + 4) === 12 && blk[off + 6] === 0 && blk[off + 7] === 0xde;
      if (!tailOk) return null;
      end = off;
      break;
    }
    if (off + 12 > bs) return null;
    const rl = recLen(off);
    const nl = blk[off + 6];
    const ino = u32(off);
    if (rl < 12 || rl % 4 !== 0 || off + rl > bs) return null;
    if (8 + Math.ceil(nl / 4) * 4 > rl) return null;
    if (ino !== 0) {
      if (nl === 0) return null;
      if (inodeLimit !== 0 && ino > inodeLimit) return null;
      const name = Buffer.from(blk.subarray(off + 8, off + 8 + nl));
      if (name.includes(0) || name.includes(0x2f)) return null;
      const t = blk[off + 7];
      entries.push({ off, ino, type: hasFileType && t < 8 ? t : 0, name });
    }
    offs.push(off);
    off += rl;
  }
  if (hasTail && end === bs) {
    const node = offs.length === 1 && u32(0) === 0 && blk[6] === 0 && recLen(0) === bs;
    const root = offs.length === 2 && recLen(0) === 12 && blk[6] === 1 && blk[8] === 0x2e &&
      recLen(12) === bs - 12 && blk[18] === 2 && blk[20] === 0x2e && blk[21] === 0x2e;
    if (!node && !root) return null;
  }
  return entries;
}

/** Decode dirIterate's packed records. */
export function decodeRecords(buf: Uint8Array, n: number): { ino: number; type: number; name: Buffer }[] {
  const out: { ino: number; type: number; name: Buffer }[] = [];
  let p = 0;
  for (let i = 0; i < n; i++) {
    const ino = (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
    const type = buf[p + 4];
    const len = buf[p + 5];
    out.push({ ino, type, name: Buffer.from(buf.subarray(p + 6, p + 6 + len)) });
    p += 6 + len;
  }
  return out;
}
