/**
 * What debugfs says an image holds, in shapes tests can compare with: the directory tree
 * (path → inode number, mode, owner), per-inode facts (links, block count, all four
 * timestamps with their raw extra fields, device numbers), extent-tree depth, htree
 * depth, and where an inode's bytes live.
 *
 * Why batch scripts: debugfs takes ~10 ms to open an image, and a read test asks about
 * thousands of inodes; one `debugfs -f script` answers them all. Inodes are named as
 * `<ino>` so no path ever has to be quoted for debugfs' command parser (names here
 * contain spaces, quotes and newlines).
 *
 * Parsing notes: `ls -p` prints `/ino/mode/uid/gid/name/size/` per entry with the raw name
 * bytes, so a name may contain a newline but never a '/', which is what the regular
 * expression relies on. `stat` prints each time as `0xLO:EXTRA` when the inode has extra
 * fields and `0xLO` otherwise; decodeTime() applies the on-disk rule from the format
 * documentation (seconds = signed 32-bit LO + (EXTRA & 3) · 2^32, nanoseconds = EXTRA >> 2),
 * and the tests cross-check it against debugfs' own rendering of the same date.
 */
import { writeFileSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run, tool, type RunResult } from "./e2fsprogs.ts";

/** Run debugfs commands from a script file; `write` opens the image read-write. */
export async function debugfsScript(img: string, cmds: readonly string[], opts: { write?: boolean } = {}): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), "dbgfs-"));
  const file = join(dir, "cmds");
  try {
    writeFileSync(file, cmds.join("\n") + "\n");
    return await run(tool("debugfs"), [...(opts.write ? ["-w"] : []), "-f", file, img], 600_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Split `debugfs -f` output into the output of each command, in order. */
export function splitScriptOutput(stdout: string): string[] {
  const parts = stdout.split(/^debugfs: .*\n?/m);
  return parts.slice(1);
}

export interface ImageEntry {
  path: string;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
}

const LS_P = /\/(\d+)\/(\d+)\/(-?\d+)\/(-?\d+)\/([^/]*)\/(\d*)\/\n/g;

/** Parse `ls -p` output: [ino, mode, uid, gid, name] per entry (".", ".." included). */
export function parseLsP(text: string): Array<{ ino: number; mode: number; uid: number; gid: number; name: string }> {
  const out: Array<{ ino: number; mode: number; uid: number; gid: number; name: string }> = [];
  for (const m of text.matchAll(LS_P)) {
    out.push({ ino: Number(m[1]), mode: parseInt(m[2]!, 8), uid: Number(m[3]) >>> 0, gid: Number(m[4]) >>> 0, name: m[5]! });
  }
  return out;
}

/**
 * The whole directory tree, breadth-first, one debugfs run per level. `under` limits it
 * to one subtree; `skipChildrenOf` lists directories whose entries are not wanted (their
 * own entry still is); deleted entries are not shown by `ls -p`.
 */
export async function listImage(
  img: string,
  opts: { under?: string; maxDepth?: number; skipChildrenOf?: readonly string[] } = {},
): Promise<Map<string, ImageEntry>> {
  const out = new Map<string, ImageEntry>();
  const rootPath = opts.under ?? "/";
  const r0 = await debugfsScript(img, [`stat "${rootPath}"`]);
  const m0 = /Inode: (\d+)\s+Type: directory\s+Mode:\s+(\d+)/.exec(r0.stdout);
  if (!m0) throw new Error(`listImage: ${rootPath} is not a directory in ${img}:\n${r0.stdout}${r0.stderr}`);
  const u0 = /User:\s+(-?\d+)\s+Group:\s+(-?\d+)/.exec(r0.stdout)!;
  out.set(rootPath, { path: rootPath, ino: Number(m0[1]), mode: 0o040000 | parseInt(m0[2]!, 8), uid: Number(u0[1]) >>> 0, gid: Number(u0[2]) >>> 0 });
  let level: Array<{ path: string; ino: number }> = [{ path: rootPath, ino: Number(m0[1]) }];
  for (let depth = 0; level.length && depth < (opts.maxDepth ?? 1000); depth++) {
    const r = await debugfsScript(img, level.map((d) => `ls -p <${d.ino}>`));
    const outputs = splitScriptOutput(r.stdout);
    if (outputs.length !== level.length) throw new Error(`listImage: expected ${level.length} listings, got ${outputs.length}`);
    const next: Array<{ path: string; ino: number }> = [];
    level.forEach((d, i) => {
      for (const e of parseLsP(outputs[i]!)) {
        if (e.name === "." || e.name === "..") continue;
        const p = d.path === "/" ? `/${e.name}` : `${d.path}/${e.name}`;
        out.set(p, { path: p, ino: e.ino, mode: e.mode, uid: e.uid, gid: e.gid });
        if ((e.mode & 0o170000) === 0o040000 && !opts.skipChildrenOf?.includes(p)) next.push({ path: p, ino: e.ino });
      }
    });
    level = next;
  }
  return out;
}

export interface RawTime {
  lo: number;
  /** null when the inode has no extra field for this time. */
  extra: number | null;
  /** debugfs' own rendering ("Sat Nov 21 20:22:29 2026"). */
  printed: string;
}

export interface InodeFacts {
  ino: number;
  type: string;
  mode: number;
  flags: number;
  generation: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  blockcount: number;
  atime?: RawTime;
  ctime?: RawTime;
  mtime?: RawTime;
  crtime?: RawTime;
  /** [major, minor] for device nodes. */
  device?: [number, number];
  /** Data mapping as [logical, physical, count] runs (BLOCKS/EXTENTS section). */
  runs: Array<[number, number, number]>;
  /** Mapping metadata blocks: extent tree blocks ("ETB0", "ETB1"…) and "IND"/"DIND"/"TIND". */
  metaBlocks: Array<{ kind: string; block: number }>;
}

/** Parse the BLOCKS/EXTENTS section of a debugfs `stat`. */
export function parseBlockMap(statText: string): { runs: Array<[number, number, number]>; metaBlocks: Array<{ kind: string; block: number }> } {
  const sect = /\n(?:BLOCKS|EXTENTS):\n([\s\S]*)$/.exec(statText)?.[1] ?? "";
  const runs: Array<[number, number, number]> = [];
  const metaBlocks: Array<{ kind: string; block: number }> = [];
  for (const m of sect.matchAll(/\(([A-Z]+\d*|\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?/g)) {
    if (/^[A-Z]/.test(m[1]!)) {
      metaBlocks.push({ kind: m[1]!, block: Number(m[3]) });
      continue;
    }
    const l0 = Number(m[1]);
    const l1 = m[2] ? Number(m[2]) : l0;
    runs.push([l0, Number(m[3]), l1 - l0 + 1]);
  }
  return { runs, metaBlocks };
}

/** The seconds/nanoseconds rule for an ext4 timestamp, as bigint nanoseconds since 1970. */
export function decodeTime(t: RawTime): bigint {
  const sec = BigInt(t.lo | 0) + (t.extra === null ? 0n : BigInt(t.extra & 3) << 32n);
  const nsec = t.extra === null ? 0n : BigInt(t.extra >>> 2);
  return sec * 1_000_000_000n + nsec;
}

/** Parse one `stat` output of debugfs. */
export function parseStat(text: string): InodeFacts | null {
  const head = /Inode: (\d+)\s+Type: (.+?)\s+Mode:\s+(\d+)\s+Flags: (0x[0-9a-f]+)/.exec(text);
  if (!head) return null;
  const num = (re: RegExp) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const f: InodeFacts = {
    ino: Number(head[1]),
    type: head[2]!,
    mode: parseInt(head[3]!, 8),
    flags: parseInt(head[4]!, 16),
    generation: num(/Generation: (\d+)/),
    // debugfs prints owners as signed 32-bit numbers.
    uid: num(/User:\s+(-?\d+)/) >>> 0,
    gid: num(/Group:\s+(-?\d+)/) >>> 0,
    size: num(/Size: (\d+)/),
    links: num(/Links: (\d+)/),
    blockcount: num(/Blockcount: (\d+)/),
    ...parseBlockMap(text),
  };
  for (const k of ["atime", "ctime", "mtime", "crtime"] as const) {
    const m = new RegExp(`^\\s*${k}: 0x([0-9a-f]{8})(?::([0-9a-f]{8}))? -- (.*)$`, "m").exec(text);
    if (m) f[k] = { lo: parseInt(m[1]!, 16) >>> 0, extra: m[2] ? parseInt(m[2], 16) >>> 0 : null, printed: m[3]!.trim() };
  }
  const dev = /Device major\/minor number: ([0-9]+):([0-9]+)/.exec(text);
  if (dev) f.device = [Number(dev[1]), Number(dev[2])];
  return f;
}

/** `stat` of many inodes in one run (in chunks, to bound the output held at once). */
export async function statInodes(img: string, inos: readonly number[]): Promise<Map<number, InodeFacts>> {
  const out = new Map<number, InodeFacts>();
  const CHUNK = 4000;
  for (let i = 0; i < inos.length; i += CHUNK) {
    const chunk = inos.slice(i, i + CHUNK);
    const r = await debugfsScript(img, chunk.map((n) => `stat <${n}>`));
    for (const part of splitScriptOutput(r.stdout)) {
      const f = parseStat(part);
      if (f) out.set(f.ino, f);
    }
  }
  return out;
}

/** Byte offset of inode `ino` in the image (debugfs "imap"). */
export async function rawInodeLocation(img: string, ino: number, blockSize: number): Promise<number> {
  const r = await debugfsScript(img, [`imap <${ino}>`]);
  const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(r.stdout);
  if (!m) throw new Error(`imap <${ino}> failed:\n${r.stdout}${r.stderr}`);
  return Number(m[1]) * blockSize + parseInt(m[2]!, 16);
}

/** Byte offsets of many inodes in the image (one debugfs run of "imap"). */
export async function inodeLocations(img: string, inos: readonly number[], blockSize: number): Promise<Map<number, number>> {
  const r = await debugfsScript(img, inos.map((n) => `imap <${n}>`));
  const out = new Map<number, number>();
  splitScriptOutput(r.stdout).forEach((part, i) => {
    const m = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(part);
    if (m) out.set(inos[i]!, Number(m[1]) * blockSize + parseInt(m[2]!, 16));
  });
  return out;
}

/** Depth of an inode's extent tree from `ex` (the "level/max" column), -1 if none. */
export async function extentDepth(img: string, spec: string): Promise<number> {
  const r = await debugfsScript(img, [`ex ${spec}`]);
  let depth = -1;
  for (const m of r.stdout.matchAll(/^\s*(\d+)\/\s*(\d+)\s+\d+\/\s*\d+/gm)) depth = Math.max(depth, Number(m[2]));
  return depth;
}

/** Indirect levels of an htree directory (debugfs "htree"), -1 when it is not indexed. */
export async function htreeLevels(img: string, spec: string): Promise<number> {
  const r = await debugfsScript(img, [`htree ${spec}`]);
  const m = /Indirect levels: (\d+)/.exec(r.stdout);
  return m ? Number(m[1]) : -1;
}

/** debugfs `stat` text for a spec (path in quotes or <ino>), for ad-hoc checks. */
export async function debugfsStat(img: string, spec: string): Promise<string> {
  return (await debugfsScript(img, [`stat ${spec}`])).stdout;
}
