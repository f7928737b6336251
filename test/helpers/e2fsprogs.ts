/**
 * The external oracles: e2fsprogs run on images the engine wrote. Tests never judge the
 * engine by its own reading of what it wrote; they ask e2fsck, dumpe2fs and debugfs.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { open } from "node:fs/promises";
import type { MemoryDevice } from "../../bindings/devices/memory.ts";

const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/** Absolute path of an e2fsprogs tool; throws (the test fails loudly) when missing. */
export function tool(name: string): string {
  for (const dir of SBIN) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install e2fsprogs (apt-get install -y e2fsprogs); .ci/run does this`);
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command, never throwing on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 256 << 20, timeout: timeoutMs, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === "string") return reject(err);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** e2fsck -fn: forced full check, answer no to everything (read-only). */
export function e2fsck(image: string): Promise<RunResult> {
  return run(tool("e2fsck"), ["-fn", image]);
}

/** dumpe2fs -h as a field → value map ("Block count" → "65536"). */
export async function dumpe2fsHeader(image: string): Promise<Map<string, string>> {
  const r = await run(tool("dumpe2fs"), ["-h", image]);
  if (r.code !== 0) throw new Error(`dumpe2fs -h failed (${r.code}): ${r.stderr}`);
  return parseFields(r.stdout);
}

export function parseFields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i <= 0) continue;
    m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

export interface GroupInfo {
  group: number;
  flags: string[];
  freeBlocks: number;
  freeInodes: number;
  unusedInodes: number;
}

/** Per-group summary from full dumpe2fs output. */
export async function dumpe2fsGroups(image: string): Promise<GroupInfo[]> {
  const r = await run(tool("dumpe2fs"), [image]);
  if (r.code !== 0) throw new Error(`dumpe2fs failed (${r.code}): ${r.stderr}`);
  const groups: GroupInfo[] = [];
  for (const line of r.stdout.split("\n")) {
    const g = /^Group (\d+): .*?(?:\[([^\]]*)\])?$/.exec(line);
    if (g) {
      groups.push({
        group: Number(g[1]),
        flags: g[2] ? g[2].split(",").map((s) => s.trim()) : [],
        freeBlocks: -1,
        freeInodes: -1,
        unusedInodes: -1,
      });
      continue;
    }
    const c = /^\s+(\d+) free (?:blocks|clusters), (\d+) free inodes, \d+ directories(?:, (\d+) unused inodes)?/.exec(line);
    if (c && groups.length) {
      const last = groups[groups.length - 1]!;
      last.freeBlocks = Number(c[1]);
      last.freeInodes = Number(c[2]);
      last.unusedInodes = c[3] !== undefined ? Number(c[3]) : -1;
    }
  }
  return groups;
}

/** debugfs -R "cmd" image (read-only). */
export function debugfs(image: string, cmd: string): Promise<RunResult> {
  return run(tool("debugfs"), ["-R", cmd, image]);
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = "ext4-wasm-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Write a (possibly huge, sparse) MemoryDevice to a sparse file for the tools to read. */
export async function saveSparse(dev: MemoryDevice, path: string): Promise<void> {
  const fh = await open(path, "w");
  try {
    await fh.truncate(dev.size);
    for (const [offset, bytes] of dev.allocatedRanges()) await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

/** True when e2fsprogs is installed (for messages only; tests require it). */
export function haveE2fsprogs(): boolean {
  try {
    execFileSync(tool("e2fsck"), ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
