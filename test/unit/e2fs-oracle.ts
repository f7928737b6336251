/**
 * Helpers shared by the on-disk layout and checksum tests: build small ext4 images with
 * e2fsprogs (the independent oracle) and parse what its tools print.
 *
 * Every image is made by mke2fs/debugfs/e2fsck, never by our engine, so a value read at
 * one of our offsets can be compared with what e2fsprogs says is there.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
const ENV = { ...process.env, PATH: `${SBIN.join(":")}:${process.env.PATH ?? ""}`, LC_ALL: "C", TZ: "UTC" };

/** Run an e2fsprogs tool; returns stdout (stderr is discarded). Throws on a non-zero exit. */
export function tool(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { env: ENV, input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"], maxBuffer: 64 << 20 });
}

/** Like tool() but returns the exit status with the output instead of throwing. */
export function toolStatus(cmd: string, args: string[]): { status: number; out: string } {
  try {
    return { status: 0, out: tool(cmd, args) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? -1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

export function debugfs(img: string, request: string, write = false): string {
  return tool("debugfs", [...(write ? ["-w"] : []), "-R", request, img]);
}

/** Run several debugfs requests in one session (read-write). */
export function debugfsScript(img: string, lines: string[]): string {
  return tool("debugfs", ["-w", "-f", "-", img], lines.join("\n") + "\n");
}

export function scratchDir(prefix: string): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A small source tree for `mke2fs -d`: a 1000-block file (to be fragmented into a deep
 * extent tree), a directory with 600 long names (enough leaves for a two-level htree once
 * `e2fsck -D` indexes it), and a few small files and a symlink.
 */
export function buildTree(root: string, bigBlocks = 1000, blockSize = 1024): void {
  mkdirSync(join(root, "many"), { recursive: true });
  mkdirSync(join(root, "sub"), { recursive: true });
  const big = Buffer.alloc(bigBlocks * blockSize);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
  writeFileSync(join(root, "big.bin"), big);
  for (let i = 1; i <= 600; i++) {
    writeFileSync(join(root, "many", `f${String(i).padStart(4, "0")}_${"x".repeat(195)}`), "");
  }
  writeFileSync(join(root, "sub", "a"), "hello\n");
  symlinkSync("a", join(root, "sub", "l"));
}

/** Punch every other block of a file with debugfs, leaving one extent per block. */
export function fragment(img: string, path: string, blocks: number): void {
  const lines: string[] = [];
  for (let b = 1; b < blocks; b += 2) lines.push(`punch ${path} ${b} ${b}`);
  debugfsScript(img, lines);
}

/** Parse `Key:   value` lines (dumpe2fs -h, debugfs stat headers) into a map. */
export function parseColonLines(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    const key = line.slice(0, i).trim();
    if (!m.has(key)) m.set(key, line.slice(i + 1).trim());
  }
  return m;
}

/** "b55a2256-6b30-4ded-acf9-c031b4463944" → its 16 bytes. */
export function uuidBytes(text: string): Uint8Array {
  const hex = text.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export interface GroupInfo {
  group: number;
  csum?: number;
  flags: string[];
  blockBitmap: number;
  blockBitmapCsum?: number;
  inodeBitmap: number;
  inodeBitmapCsum?: number;
  inodeTable: number;
  freeBlocks: number;
  freeInodes: number;
  dirs: number;
  unusedInodes?: number;
}

/** The per-group section of a full `dumpe2fs` listing. */
export function parseGroups(text: string): GroupInfo[] {
  const groups: GroupInfo[] = [];
  let g: GroupInfo | undefined;
  for (const line of text.split("\n")) {
    let m = /^Group (\d+): \(Blocks [^)]*\)(?: csum 0x([0-9a-f]+))?(?: \[([^\]]*)\])?/.exec(line);
    if (m) {
      g = {
        group: Number(m[1]),
        csum: m[2] !== undefined ? parseInt(m[2], 16) : undefined,
        flags: m[3] ? m[3].split(",").map((s) => s.trim()) : [],
        blockBitmap: -1, inodeBitmap: -1, inodeTable: -1, freeBlocks: -1, freeInodes: -1, dirs: -1,
      };
      groups.push(g);
      continue;
    }
    if (!g) continue;
    if ((m = /^\s+Block bitmap at (\d+)[^,]*(?:, csum 0x([0-9a-f]+))?/.exec(line))) {
      g.blockBitmap = Number(m[1]);
      if (m[2] !== undefined) g.blockBitmapCsum = parseInt(m[2], 16);
    } else if ((m = /^\s+Inode bitmap at (\d+)[^,]*(?:, csum 0x([0-9a-f]+))?/.exec(line))) {
      g.inodeBitmap = Number(m[1]);
      if (m[2] !== undefined) g.inodeBitmapCsum = parseInt(m[2], 16);
    } else if ((m = /^\s+Inode table at (\d+)/.exec(line))) {
      g.inodeTable = Number(m[1]);
    } else if ((m = /^\s+(\d+) free (?:blocks|clusters), (\d+) free inodes, (\d+) directories(?:, (\d+) unused inodes)?/.exec(line))) {
      g.freeBlocks = Number(m[1]);
      g.freeInodes = Number(m[2]);
      g.dirs = Number(m[3]);
      if (m[4] !== undefined) g.unusedInodes = Number(m[4]);
    }
  }
  return groups;
}

export function readImage(img: string): Buffer {
  return readFileSync(img);
}
