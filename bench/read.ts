/**
 * bench/read: reading ext4 images with our engine against native debugfs, the `ext2fs`
 * npm package and the host's own file system, on the workloads of BENCHMARKS.md "read".
 *
 * Workloads (inputs built by read-fixtures.ts, once per run, in a temp directory):
 *   - tree: ~2,000 incompressible files, ~400 MiB, nested directories, in an image made
 *     by `mke2fs -t ext4 -d`; every file read back whole.
 *   - dir stat: one directory of 50,000 empty files, hash-indexed (htree, via
 *     `e2fsck -fyD`); readdir, then stat every entry.
 *   - dir open: the same directory; open + read + close every entry.
 *
 * Readers, all in the same run, rounds interleaved and their order rotated each round so
 * background noise hits everyone alike (lib.ts):
 *   - ours, in this warm process: FileDevice (read-only) + mount + the reads + unmount.
 *     Mount is inside the timed span, as every other reader pays its own open too.
 *   - debugfs: `-f cmds` with one `cat` per file, stdout to /dev/null (in-process reads,
 *     nothing written); `rdump / OUT` (writes the tree out, compared with our copyOut
 *     to the same tmpfs); `ls -l /big` for readdir + stat.
 *   - the ext2fs package on a synchronous disk (the fair comparison) and on file-disk's
 *     FileDisk (what its README shows); binary reads through open + read in 1 MiB chunks.
 *   - the host: `cat` of the source files to /dev/null, `find -printf` for stat, and the
 *     same loops through node:fs (sync calls, the fastest Node offers) in this process.
 * The image files and the source trees stay in the page cache (dropping caches needs
 * privileges these machines do not grant): every reader reads everything once untimed,
 * then all timed reads are warm. So this measures CPU cost per file and per byte, the
 * part an engine controls, not the disk.
 *
 * Quadratic peers are sampled: libext2fs looks a name up by scanning the directory
 * linearly even when it is an htree, so `debugfs cat` and the ext2fs package on 50,000
 * entries cost 1–35 ms per lookup (minutes per pass). They run on the first k names of
 * one seeded uniform random sample (default 1,000), k set by a 40-name calibration run so
 * that a run takes about --sample-ms, and their full-directory time is extrapolated:
 * fixed costs (process start, mount, the one readdir) + per-entry cost × 50,000. A uniform
 * sample is unbiased: a lookup's cost depends only on where the name sits in the directory.
 *
 * Correctness before speed: a verification pass, untimed, runs first — every byte every
 * reader returns is checked against the SHA-256 recorded when the tree was generated
 * (debugfs's output stream is parsed file by file; rdump's and copyOut's output trees are
 * hashed), and every directory listing against the names created. A reader that fails
 * is reported INVALID, left out of the timed rounds, and the bench exits 1.
 *
 * Peak RSS: spawned readers under /usr/bin/time (untimed extra run); in-process readers in
 * a child process (`--child ID`) of this script under /usr/bin/time, next to the child's
 * baseline with the same modules loaded and nothing mounted.
 *
 * Usage: tsx bench/read.ts [--files 2000] [--entries 50000] [--sample 1000] [--sample-ms 1500] [--seed 1]
 *        [--budget SECONDS per workload] [--max-rounds N] [--only tree,stat,open]
 *        [--dir DIR] [--no-readme] [--keep]
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import "../bindings/node.ts";
import { mount } from "../bindings/index.ts";
import { FileDevice } from "../bindings/devices/node-file.ts";
import { copyOut } from "../bindings/node-copyout.ts";
import { ext2fsReadFile, mountExt2fs, type Ext2fsDiskKind } from "./peers/ext2fs-npm.ts";
import { buildBigDir, buildImage, generateTree, imageSizeFor, type TreeFile } from "./read-fixtures.ts";
import { checkDebugfsCat, checkWrittenTree, debugfsErrors, sameNames, treeChecker, type ChunkSink } from "./read-verify.ts";
import {
  GiB, MiB, ROOT, formatBytes, formatMs, formatRatio, freeBytes, machineInfo, markdownTable, now, peakRss, peakRssQuiet,
  removeQuietly, renderIntoReadme, rounds, runCommand, runCommandQuiet, summarize, textTable, versionOf, writeResults, type Summary,
} from "./lib.ts";

const { values: argv } = parseArgs({
  options: {
    files: { type: "string", default: "2000" },
    entries: { type: "string", default: "50000" },
    sample: { type: "string", default: "1000" },
    "sample-ms": { type: "string", default: "1500" },
    seed: { type: "string", default: "1" },
    budget: { type: "string", default: "30" },
    "max-rounds": { type: "string", default: "5" },
    "min-rounds": { type: "string", default: "3" },
    only: { type: "string", default: "tree,stat,open" },
    dir: { type: "string" },
    "no-readme": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    child: { type: "string" },
    manifest: { type: "string" },
  },
});

const CHUNK = 1 << 20;
/** Entries of the calibration run that sizes a sampled reader's sample. */
const CALIBRATE_ENTRIES = 40;
const THIS_FILE = fileURLToPath(import.meta.url);

function sbin(name: string): string {
  for (const d of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} not found: install e2fsprogs`);
}
const DEBUGFS = sbin("debugfs");

/** Everything a reader needs; also handed to --child processes as JSON. */
interface Manifest {
  treeImg: string;
  treeRoot: string;
  files: { path: string; size: number }[];
  bigImg: string;
  bigHost: string;
  bigDir: string;
  names: string[];
  /** The seeded random subset the quadratic peers run on. */
  sample: string[];
  outDir: string;
}

/** What one run of a reader did; ms is the measured span, fullMs the whole-workload estimate. */
interface RunResult {
  ms: number;
  fullMs: number;
}

// ---------------------------------------------------------------- ours

/** Device requests of the last ours run: each read is one thread-pool round trip in Node. */
let lastDeviceStats: { reads: number; bytesRead: number } | null = null;

async function oursMount(img: string) {
  const dev = await FileDevice.open(img, { readOnly: true });
  const vol = await mount(dev, { readOnly: true, cacheBytes: 64 << 20 });
  return {
    vol,
    close: async () => {
      await vol.unmount();
      const { reads, bytesRead } = dev.stats;
      lastDeviceStats = { reads, bytesRead };
      await dev.close();
    },
  };
}

async function oursTree(m: Manifest, sink?: ChunkSink): Promise<RunResult> {
  const t0 = now();
  const { vol, close } = await oursMount(m.treeImg);
  const buf = new Uint8Array(CHUNK);
  for (let i = 0; i < m.files.length; i++) {
    const fh = await vol.open("/" + m.files[i]!.path, "r");
    for (let pos = 0; ; ) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      sink?.(i, buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    await fh.close();
  }
  await close();
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

async function oursTreeReadFile(m: Manifest, sink?: ChunkSink): Promise<RunResult> {
  const t0 = now();
  const { vol, close } = await oursMount(m.treeImg);
  for (let i = 0; i < m.files.length; i++) {
    const data = (await vol.readFile("/" + m.files[i]!.path)) as Uint8Array;
    sink?.(i, data);
  }
  await close();
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

async function oursCopyOut(m: Manifest): Promise<RunResult> {
  freshDir(m.outDir);
  const t0 = now();
  const { vol, close } = await oursMount(m.treeImg);
  await copyOut(vol, "/", m.outDir);
  await close();
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

async function oursDirStat(m: Manifest, seen?: (name: string, size: number, isFile: boolean) => void): Promise<RunResult> {
  const t0 = now();
  const { vol, close } = await oursMount(m.bigImg);
  const names = await vol.readdir(m.bigDir);
  for (const name of names) {
    const st = await vol.stat(`${m.bigDir}/${name}`);
    seen?.(name, st.size, st.isFile());
  }
  await close();
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

async function oursDirOpen(m: Manifest): Promise<RunResult> {
  const t0 = now();
  const { vol, close } = await oursMount(m.bigImg);
  const buf = new Uint8Array(4096);
  let bytes = 0;
  for (const name of m.names) {
    const fh = await vol.open(`${m.bigDir}/${name}`, "r");
    bytes += (await fh.read(buf, 0, buf.length, 0)).bytesRead;
    await fh.close();
  }
  await close();
  const ms = now() - t0;
  if (bytes !== 0) throw new Error(`ours read ${bytes} bytes from empty files`);
  return { ms, fullMs: ms };
}

// ---------------------------------------------------------------- the ext2fs package

async function ext2fsTree(m: Manifest, kind: Ext2fsDiskKind, sink?: ChunkSink): Promise<RunResult> {
  const t0 = now();
  const e = await mountExt2fs(m.treeImg, kind);
  const buf = Buffer.alloc(CHUNK);
  for (let i = 0; i < m.files.length; i++) {
    await ext2fsReadFile(e.fs, "/" + m.files[i]!.path, buf, sink && ((c) => sink(i, c)));
  }
  await e.close();
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

async function ext2fsDirStat(m: Manifest, kind: Ext2fsDiskKind, k: number, seen?: (names: string[], sizes: number[]) => void): Promise<RunResult> {
  const t0 = now();
  const e = await mountExt2fs(m.bigImg, kind);
  const names = (await e.fs.readdir(m.bigDir)).filter((n) => n !== "." && n !== "..");
  const t1 = now();
  const sizes: number[] = [];
  for (const name of m.sample.slice(0, k)) sizes.push((await e.fs.stat(`${m.bigDir}/${name}`)).size);
  const t2 = now();
  await e.close();
  const t3 = now();
  seen?.(names, sizes);
  return { ms: t3 - t0, fullMs: t1 - t0 + (t3 - t2) + ((t2 - t1) * m.names.length) / k };
}

async function ext2fsDirOpen(m: Manifest, kind: Ext2fsDiskKind, k: number): Promise<RunResult> {
  const t0 = now();
  const e = await mountExt2fs(m.bigImg, kind);
  const t1 = now();
  const buf = Buffer.alloc(4096);
  let bytes = 0;
  for (const name of m.sample.slice(0, k)) bytes += await ext2fsReadFile(e.fs, `${m.bigDir}/${name}`, buf);
  const t2 = now();
  await e.close();
  const t3 = now();
  if (bytes !== 0) throw new Error(`ext2fs read ${bytes} bytes from empty files`);
  return { ms: t3 - t0, fullMs: t1 - t0 + (t3 - t2) + ((t2 - t1) * m.names.length) / k };
}

// ---------------------------------------------------------------- the host, in process

function hostTree(m: Manifest): RunResult {
  const t0 = now();
  const buf = Buffer.alloc(CHUNK);
  let bytes = 0;
  for (const f of m.files) {
    const fd = openSync(join(m.treeRoot, f.path), "r");
    for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; ) bytes += n;
    closeSync(fd);
  }
  const ms = now() - t0;
  const want = m.files.reduce((a, f) => a + f.size, 0);
  if (bytes !== want) throw new Error(`host node:fs read ${bytes} bytes of ${want}`);
  return { ms, fullMs: ms };
}

function hostDirStat(m: Manifest): RunResult {
  const t0 = now();
  for (const name of readdirSync(m.bigHost)) statSync(join(m.bigHost, name));
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

function hostDirOpen(m: Manifest): RunResult {
  const t0 = now();
  const buf = Buffer.alloc(4096);
  for (const name of m.names) {
    const fd = openSync(join(m.bigHost, name), "r");
    readSync(fd, buf, 0, buf.length, null);
    closeSync(fd);
  }
  const ms = now() - t0;
  return { ms, fullMs: ms };
}

// ---------------------------------------------------------------- spawned readers

function freshDir(dir: string): void {
  removeQuietly(dir);
  mkdirSync(dir, { recursive: true });
}

async function spawned(cmd: string, args: string[], opts: { cwd?: string; quiet?: boolean } = {}): Promise<number> {
  const r = opts.quiet ? await runCommandQuiet(cmd, args, { cwd: opts.cwd, timeoutMs: 600_000 }) : await runCommand(cmd, args, { cwd: opts.cwd, timeoutMs: 600_000 });
  const errs = cmd === DEBUGFS ? debugfsErrors(r.stderr) : r.stderr.trim() ? [r.stderr.trim()] : [];
  if (r.code !== 0 || errs.length) throw new Error(`${cmd} exited ${r.code}: ${errs.slice(0, 3).join(" / ")}`);
  return r.ms;
}

/**
 * `cat` every name (relative to cwd) to /dev/null; returns the summed spawn-to-exit time.
 * Names are split over several processes only when they would overflow the kernel's
 * argument limit (2 MiB here; 50,000 entries need ~0.7 MiB, so normally one process).
 */
async function catAll(cwd: string, names: string[]): Promise<number> {
  const ARG_BYTES = 1 << 20;
  let ms = 0;
  for (let i = 0; i < names.length; ) {
    let j = i;
    for (let bytes = 0; j < names.length && bytes + names[j]!.length + 1 <= ARG_BYTES; j++) bytes += names[j]!.length + 1;
    ms += await spawned("cat", ["--", ...names.slice(i, Math.max(j, i + 1))], { cwd, quiet: true });
    i = Math.max(j, i + 1);
  }
  return ms;
}

// ---------------------------------------------------------------- variants

type Workload = "tree" | "stat" | "open";

interface Variant {
  id: string;
  workload: Workload;
  label: string;
  how: string;
  ours: boolean;
  /** The ours variant this peer's ratio is taken against. */
  vs?: string;
  /** One run; sampled readers use the first `k` names of the sample. */
  run: (m: Manifest, k: number) => Promise<RunResult>;
  /** For --child (peak RSS of an in-process reader). */
  inProcess: boolean;
  /** Arguments of an untimed /usr/bin/time run for spawned readers. */
  rss?: (m: Manifest) => [string, string[], { cwd?: string; quiet?: boolean }];
  sampled?: boolean;
  /** Timed in at most this many rounds (the slowest peers: their noise is irrelevant next to their gap). */
  maxRounds?: number;
}

/** Time of `debugfs` with nothing to do on an image: the fixed cost in a sampled run. */
async function debugfsStartup(img: string, empty: string): Promise<number> {
  return spawned(DEBUGFS, ["-f", empty, img], { quiet: true });
}

interface Paths {
  treeCmds: string;
  emptyCmds: string;
  /** A debugfs command file catting the first k names of the sample. */
  bigCmds: (m: Manifest, k: number) => string;
}

function variants(paths: Paths): Variant[] {
  const ms = (t: number): RunResult => ({ ms: t, fullMs: t });
  return [
    { id: "ours", workload: "tree", label: "ours", how: "open + read, 1 MiB chunks", ours: true, inProcess: true, run: (m) => oursTree(m) },
    { id: "ours-readFile", workload: "tree", label: "ours readFile", how: "vol.readFile per file", ours: true, inProcess: true, run: (m) => oursTreeReadFile(m) },
    { id: "debugfs-cat", workload: "tree", label: "debugfs cat", how: "`debugfs -f` with a `cat` per file, stdout → /dev/null", ours: false, vs: "ours", inProcess: false,
      run: async (m) => ms(await spawned(DEBUGFS, ["-f", paths.treeCmds, m.treeImg], { quiet: true })),
      rss: (m) => [DEBUGFS, ["-f", paths.treeCmds, m.treeImg], { quiet: true }] },
    { id: "ext2fs-sync", workload: "tree", label: "ext2fs + sync disk", how: "npm ext2fs, fs.readSync disk, open + read 1 MiB", ours: false, vs: "ours", inProcess: true, run: (m) => ext2fsTree(m, "sync") },
    { id: "ext2fs-filedisk", workload: "tree", label: "ext2fs + FileDisk", how: "npm ext2fs, file-disk FileDisk (README), open + read 1 MiB", ours: false, vs: "ours", inProcess: true, maxRounds: 1, run: (m) => ext2fsTree(m, "filedisk") },
    { id: "host-cat", workload: "tree", label: "host cat", how: "`cat` of the source tree → /dev/null", ours: false, vs: "ours", inProcess: false,
      run: async (m) => ms(await catAll(m.treeRoot, m.files.map((f) => f.path))),
      rss: (m) => ["cat", ["--", ...m.files.map((f) => f.path)], { cwd: m.treeRoot, quiet: true }] },
    { id: "host-node", workload: "tree", label: "host node:fs", how: "openSync + readSync 1 MiB + closeSync of the source tree", ours: false, vs: "ours", inProcess: true, run: async (m) => hostTree(m) },
    { id: "ours-copyOut", workload: "tree", label: "ours copyOut", how: "copyOut(vol, '/', tmpfs dir)", ours: true, inProcess: true, run: (m) => oursCopyOut(m) },
    { id: "debugfs-rdump", workload: "tree", label: "debugfs rdump", how: "`debugfs -R 'rdump / DIR'` to the same tmpfs dir", ours: false, vs: "ours-copyOut", inProcess: false,
      run: async (m) => { freshDir(m.outDir); return ms(await spawned(DEBUGFS, ["-R", `rdump / ${m.outDir}`, m.treeImg])); },
      rss: (m) => { freshDir(m.outDir); return [DEBUGFS, ["-R", `rdump / ${m.outDir}`, m.treeImg], {}]; } },

    { id: "ours", workload: "stat", label: "ours", how: "readdir + stat(path) each", ours: true, inProcess: true, run: (m) => oursDirStat(m) },
    { id: "debugfs-ls", workload: "stat", label: "debugfs ls -l", how: "`debugfs -R 'ls -l /big'` → /dev/null", ours: false, vs: "ours", inProcess: false,
      run: async (m) => ms(await spawned(DEBUGFS, ["-R", `ls -l ${m.bigDir}`, m.bigImg], { quiet: true })),
      rss: (m) => [DEBUGFS, ["-R", `ls -l ${m.bigDir}`, m.bigImg], { quiet: true }] },
    { id: "ext2fs-sync", workload: "stat", label: "ext2fs + sync disk", how: "readdir + stat(path), sampled", ours: false, vs: "ours", inProcess: true, sampled: true, run: (m, k) => ext2fsDirStat(m, "sync", k) },
    { id: "ext2fs-filedisk", workload: "stat", label: "ext2fs + FileDisk", how: "readdir + stat(path), sampled", ours: false, vs: "ours", inProcess: true, sampled: true, run: (m, k) => ext2fsDirStat(m, "filedisk", k) },
    { id: "host-find", workload: "stat", label: "host find", how: "`find DIR -printf '%i %s'` → /dev/null", ours: false, vs: "ours", inProcess: false,
      run: async (m) => ms(await spawned("find", [m.bigHost, "-mindepth", "1", "-printf", "%i %s\\n"], { quiet: true })),
      rss: (m) => ["find", [m.bigHost, "-mindepth", "1", "-printf", "%i %s\\n"], { quiet: true }] },
    { id: "host-node", workload: "stat", label: "host node:fs", how: "readdirSync + statSync each", ours: false, vs: "ours", inProcess: true, run: async (m) => hostDirStat(m) },

    { id: "ours", workload: "open", label: "ours", how: "open + read + close each", ours: true, inProcess: true, run: (m) => oursDirOpen(m) },
    { id: "debugfs-cat", workload: "open", label: "debugfs cat", how: "`debugfs -f` with a `cat` per entry, sampled", ours: false, vs: "ours", inProcess: false, sampled: true,
      run: async (m, k) => {
        const cmds = paths.bigCmds(m, k);
        const start = await debugfsStartup(m.bigImg, paths.emptyCmds);
        const t = await spawned(DEBUGFS, ["-f", cmds, m.bigImg], { quiet: true });
        return { ms: t, fullMs: start + (Math.max(0, t - start) * m.names.length) / k };
      },
      rss: (m) => [DEBUGFS, ["-f", paths.bigCmds(m, Math.min(100, m.sample.length)), m.bigImg], { quiet: true }] },
    { id: "ext2fs-sync", workload: "open", label: "ext2fs + sync disk", how: "open + read + close, sampled", ours: false, vs: "ours", inProcess: true, sampled: true, run: (m, k) => ext2fsDirOpen(m, "sync", k) },
    { id: "ext2fs-filedisk", workload: "open", label: "ext2fs + FileDisk", how: "open + read + close, sampled", ours: false, vs: "ours", inProcess: true, sampled: true, run: (m, k) => ext2fsDirOpen(m, "filedisk", k) },
    { id: "host-cat", workload: "open", label: "host cat", how: "`cat` of every entry → /dev/null", ours: false, vs: "ours", inProcess: false,
      run: async (m) => ms(await catAll(m.bigHost, m.names)),
      // cat's memory does not grow with the number of files: one argument list's worth is enough.
      rss: (m) => ["cat", ["--", ...m.names.slice(0, 20000)], { cwd: m.bigHost, quiet: true }] },
    { id: "host-node", workload: "open", label: "host node:fs", how: "openSync + readSync + closeSync each", ours: false, vs: "ours", inProcess: true, run: async (m) => hostDirOpen(m) },
  ];
}

// ---------------------------------------------------------------- verification (untimed)

/** Check one reader's output once (this is also its warm-up run); null = correct. */
async function verify(v: Variant, m: Manifest, k: number, tree: TreeFile[], paths: Paths): Promise<string | null> {
  const key = `${v.workload}:${v.id}`;
  switch (key) {
    case "tree:ours": { const c = treeChecker(tree); await oursTree(m, c.sink); return c.result(); }
    case "tree:ours-readFile": { const c = treeChecker(tree); await oursTreeReadFile(m, c.sink); return c.result(); }
    case "tree:ext2fs-sync": { const c = treeChecker(tree); await ext2fsTree(m, "sync", c.sink); return c.result(); }
    case "tree:ext2fs-filedisk": { const c = treeChecker(tree); await ext2fsTree(m, "filedisk", c.sink); return c.result(); }
    case "tree:debugfs-cat": return checkDebugfsCat(DEBUGFS, m.treeImg, paths.treeCmds, tree);
    case "tree:ours-copyOut":
    case "tree:debugfs-rdump": await v.run(m, k); return checkWrittenTree(m.outDir, tree);
    case "stat:ours": {
      const names: string[] = [];
      let bad = 0;
      await oursDirStat(m, (n, size, isFile) => { names.push(n); if (size !== 0 || !isFile) bad++; });
      return sameNames(names, m.names) ?? (bad ? `${bad} entries did not stat as empty regular files` : null);
    }
    case "stat:ext2fs-sync":
    case "stat:ext2fs-filedisk": {
      let problem: string | null = null;
      await ext2fsDirStat(m, v.id === "ext2fs-sync" ? "sync" : "filedisk", k, (names, sizes) => {
        problem = sameNames(names, m.names) ?? (sizes.some((s) => s !== 0) ? "a sampled entry did not stat as empty" : null);
      });
      return problem;
    }
    case "stat:debugfs-ls": {
      const r = await runCommand(DEBUGFS, ["-R", `ls -l ${m.bigDir}`, m.bigImg], { timeoutMs: 600_000 });
      // One line per dirent: "ino mode (type) uid gid size date time name"; htree index
      // blocks show up as unnamed entries with inode 0.
      const names = r.stdout.split("\n").map((l) => l.trim().split(/\s+/)).filter((t) => t.length >= 9 && t[0] !== "0").map((t) => t[t.length - 1]!).filter((n) => n !== "." && n !== "..");
      return debugfsErrors(r.stderr)[0] ?? sameNames(names, m.names);
    }
    case "open:debugfs-cat": return checkDebugfsCat(DEBUGFS, m.bigImg, paths.bigCmds(m, k), m.sample.slice(0, k).map((n) => ({ path: `${m.bigDir.slice(1)}/${n}`, size: 0, sha256: createHash("sha256").digest("hex") })));
    default:
      // Host readers read the source itself; ours/ext2fs open runs throw on any failure
      // and check that empty files read as empty.
      await v.run(m, k);
      return null;
  }
}

// ---------------------------------------------------------------- main

const WORKLOADS: { id: Workload; title: string }[] = [
  { id: "tree", title: "Read every file of a tree" },
  { id: "stat", title: "readdir + stat every entry of an htree directory" },
  { id: "open", title: "open + read + close every entry of the same directory" },
];

interface VariantResult {
  id: string;
  label: string;
  how: string;
  ours: boolean;
  vs: string | null;
  valid: boolean;
  problem: string | null;
  /** Whole-workload times (extrapolated for sampled readers), one per round. */
  samples: number[];
  /** What was actually measured per round (the sample only, for sampled readers). */
  measured: number[];
  summary: Summary | null;
  mibPerSec: number | null;
  filesPerSec: number | null;
  /** ours speed ÷ this reader's speed, from the medians (> 1: ours is faster). */
  oursOverThis: number | null;
  /** Median over rounds of each round's own ratio. */
  pairedOursOverThis: number | null;
  /** Peak RSS: of the spawned command, or of a child process running this reader alone. */
  rssBytes: number | null;
  inProcess: boolean;
  sampled: { entries: number; of: number } | null;
  /** Ours only: device reads and bytes of one run (from the verification run). */
  deviceReads: { reads: number; bytesRead: number } | null;
}

async function childMain(): Promise<void> {
  const m = JSON.parse(readFileSync(argv.manifest!, "utf8")) as Manifest;
  if (argv.child === "noop") return;
  const [w, id] = argv.child!.split(":");
  const v = variants({ treeCmds: "", emptyCmds: "", bigCmds: () => "" }).find((x) => x.workload === w && x.id === id && x.inProcess);
  if (!v) throw new Error(`no in-process reader ${argv.child}`);
  await v.run(m, m.sample.length);
}

async function main(): Promise<void> {
  const only = new Set(argv.only!.split(",").map((s) => s.trim()) as Workload[]);
  const fileCount = Number(argv.files);
  const entries = Number(argv.entries);
  const sampleSize = Math.min(Number(argv.sample), entries);
  const sampleMs = Number(argv["sample-ms"]);
  const seed = Number(argv.seed);
  const budgetMs = Number(argv.budget) * 1000;
  const maxRounds = Number(argv["max-rounds"]);
  const minRounds = Math.min(Number(argv["min-rounds"]), maxRounds);
  const base = argv.dir ?? tmpdir();
  const loadStart = loadavg();
  const phases: Record<string, number> = {};
  let phaseT = now();
  const phase = (name: string) => { phases[name] = now() - phaseT; phaseT = now(); };
  const estTree = (400 * MiB * fileCount) / 2000;

  // Disk headroom: tree + image + the big directory's image, with a GiB to spare.
  const need = (only.has("tree") ? 2.3 * estTree : 0) + (only.has("stat") || only.has("open") ? 256 * MiB : 0) + GiB;
  if (freeBytes(base) < need) throw new Error(`${base} has ${formatBytes(freeBytes(base))} free; this bench needs about ${formatBytes(need)}`);
  const workDir = join(base, `ext4-wasm-bench-read-${process.pid}`);
  mkdirSync(workDir);
  // rdump and copyOut write the tree out: to tmpfs when it has room, so the host's disk is not measured.
  const shm = "/dev/shm";
  const outBase = existsSync(shm) && freeBytes(shm) > 2 * estTree + 256 * MiB ? shm : workDir;
  const outDir = join(outBase, `ext4-wasm-bench-read-out-${process.pid}`);
  const cleanup = () => {
    if (argv.keep) return;
    removeQuietly(workDir);
    removeQuietly(outDir);
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { cleanup(); process.exit(130); });

  const MKE2FS = sbin("mke2fs");
  const E2FSCK = sbin("e2fsck");
  const log = (s: string) => process.stdout.write(s + "\n");
  const m: Manifest = { treeImg: join(workDir, "tree.img"), treeRoot: join(workDir, "tree"), files: [], bigImg: join(workDir, "big.img"), bigHost: "", bigDir: "/big", names: [], sample: [], outDir };
  let tree: TreeFile[] = [];
  let treeBytes = 0;
  const setup: Record<string, number> = {};
  if (only.has("tree")) {
    let t0 = now();
    const t = generateTree(m.treeRoot, fileCount, seed);
    setup.generateTreeMs = now() - t0;
    tree = t.files;
    treeBytes = t.bytes;
    m.files = t.files.map(({ path, size }) => ({ path, size }));
    t0 = now();
    await buildImage(MKE2FS, E2FSCK, m.treeRoot, m.treeImg, imageSizeFor(t));
    setup.mke2fsTreeMs = now() - t0;
    log(`tree: ${t.files.length} files, ${formatBytes(t.bytes)}, ${t.dirs} directories; image ${formatBytes(statSync(m.treeImg).size)} (generate ${formatMs(setup.generateTreeMs)}, mke2fs -d ${formatMs(setup.mke2fsTreeMs)})`);
  }
  if (only.has("stat") || only.has("open")) {
    const t0 = now();
    const big = await buildBigDir({ mke2fs: MKE2FS, e2fsck: E2FSCK, debugfs: DEBUGFS }, join(workDir, "bigsrc"), m.bigImg, entries);
    setup.bigDirMs = now() - t0;
    m.bigHost = big.hostDir;
    m.names = big.names;
    // Seeded uniform sample (partial Fisher–Yates) for the readers whose lookups are linear.
    const pool = [...big.names];
    let s = seed * 2654435761 >>> 0;
    for (let i = 0; i < sampleSize; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = i + (s % (pool.length - i));
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    m.sample = pool.slice(0, sampleSize);
    log(`directory: ${entries} empty files in an htree ${m.bigDir}; quadratic readers sample ${sampleSize} (built in ${formatMs(setup.bigDirMs)})`);
  }
  phase("setup");
  const paths: Paths = {
    treeCmds: join(workDir, "tree.cmds"),
    emptyCmds: join(workDir, "empty.cmds"),
    bigCmds: (mf, k) => {
      const p = join(workDir, `big-${k}.cmds`);
      if (!existsSync(p)) writeFileSync(p, mf.sample.slice(0, k).map((n) => `cat ${mf.bigDir}/${n}\n`).join(""));
      return p;
    },
  };
  writeFileSync(paths.treeCmds, m.files.map((f) => `cat /${f.path}\n`).join(""));
  writeFileSync(paths.emptyCmds, "");
  const manifestPath = join(workDir, "manifest.json");
  writeFileSync(manifestPath, JSON.stringify(m));

  const all = variants(paths).filter((v) => only.has(v.workload));
  const problems: string[] = [];
  const results: Record<string, VariantResult[]> = {};
  const warmupOf: Record<string, boolean> = {};

  for (const w of WORKLOADS.filter((x) => only.has(x.id))) {
    const vs = all.filter((v) => v.workload === w.id);
    // Verification = the warm-up: every reader reads everything once, checked, untimed.
    const valid = new Map<string, string | null>();
    const kOf = new Map<string, number>();
    const devOf = new Map<string, { reads: number; bytesRead: number } | null>();
    for (const v of vs) {
      const t0 = now();
      let problem: string | null;
      try {
        // Sampled readers: a short calibration run sets how many sample entries make a run
        // of about --sample-ms, so the slowest peer does not eat the bench's time budget.
        let k = m.sample.length;
        if (v.sampled && m.sample.length) {
          const k0 = Math.min(CALIBRATE_ENTRIES, m.sample.length);
          const c = await v.run(m, k0);
          k = Math.max(k0, Math.min(m.sample.length, Math.floor((sampleMs * k0) / Math.max(c.ms, 1))));
        }
        kOf.set(v.id, k);
        lastDeviceStats = null;
        problem = await verify(v, m, k, tree, paths);
        devOf.set(v.id, v.ours ? lastDeviceStats : null);
      } catch (e) {
        problem = `failed: ${e instanceof Error ? e.message.split("\n")[0]!.slice(0, 300) : String(e)}`;
      }
      valid.set(v.id, problem);
      if (problem) problems.push(`${w.id} / ${v.label}: ${problem}`);
      log(`  verify ${w.id} / ${v.label}: ${problem ? "INVALID — " + problem : "ok"} (${formatMs(now() - t0)})`);
    }
    const timed = vs.filter((v) => !valid.get(v.id));
    const { samples, warmupDiscarded } = await rounds(async (r) => {
      const out: Record<string, number> = {};
      const order = timed.map((_, i) => timed[(i + r) % timed.length]!);
      for (const v of order) {
        if (v.maxRounds !== undefined && r >= v.maxRounds) continue;
        const res = await v.run(m, kOf.get(v.id)!);
        out[v.id] = res.fullMs;
        out[v.id + ":measured"] = res.ms;
      }
      return out;
    }, { budgetMs, minRounds, maxRounds, warmupBelowMs: 0 });
    warmupOf[w.id] = warmupDiscarded;

    const count = w.id === "tree" ? m.files.length : m.names.length;
    const bytes = w.id === "tree" ? treeBytes : 0;
    const rows: VariantResult[] = vs.map((v) => {
      const s = samples[v.id] ?? [];
      const summary = s.length ? summarize(s) : null;
      return {
        id: v.id, label: v.label, how: v.how, ours: v.ours, vs: v.vs ?? null, valid: !valid.get(v.id), problem: valid.get(v.id) ?? null,
        samples: s, measured: samples[v.id + ":measured"] ?? [], summary,
        mibPerSec: summary && bytes ? bytes / MiB / (summary.median / 1000) : null,
        filesPerSec: summary ? count / (summary.median / 1000) : null,
        oursOverThis: null, pairedOursOverThis: null, rssBytes: null, inProcess: v.inProcess,
        sampled: v.sampled ? { entries: kOf.get(v.id) ?? 0, of: m.names.length } : null,
        deviceReads: devOf.get(v.id) ?? null,
      };
    });
    for (const r of rows) {
      const o = rows.find((x) => x.id === r.vs);
      if (!r.summary || !o?.summary) continue;
      r.oursOverThis = r.summary.median / o.summary.median;
      const n = Math.min(r.samples.length, o.samples.length);
      if (n) r.pairedOursOverThis = summarize(Array.from({ length: n }, (_, i) => r.samples[i]! / o.samples[i]!)).median;
    }
    results[w.id] = rows;
    phase(w.id);
    log(`  ${w.id}: ${Math.max(...rows.map((r) => r.samples.length))} timed rounds (${formatMs(phases[w.id]!)} with verification)`);
  }

  // Peak RSS, untimed: spawned readers under GNU time; in-process ones in a child process.
  let baselineRss: number | null = null;
  const childRss = async (spec: string) => {
    const r = await peakRss(process.execPath, ["--import", "tsx", THIS_FILE, "--child", spec, "--manifest", manifestPath], { cwd: ROOT, timeoutMs: 600_000 });
    if (r && r.result.code !== 0) throw new Error(`child ${spec} exited ${r.result.code}: ${r.result.stderr.slice(0, 500)}`);
    return r?.rss ?? null;
  };
  try {
    baselineRss = await childRss("noop");
    for (const w of WORKLOADS.filter((x) => only.has(x.id))) {
      for (const r of results[w.id]!) {
        if (!r.valid) continue;
        const v = all.find((x) => x.workload === w.id && x.id === r.id)!;
        if (v.rss) {
          const [cmd, args, o] = v.rss(m);
          const got = o.quiet ? await peakRssQuiet(cmd, args, { cwd: o.cwd }) : await peakRss(cmd, args, { cwd: o.cwd });
          r.rssBytes = got?.rss ?? null;
        } else if (v.inProcess && (v.ours || (w.id === "tree" && v.id === "ext2fs-sync"))) {
          r.rssBytes = await childRss(`${w.id}:${v.id}`);
        }
      }
    }
  } catch (e) {
    problems.push(`peak RSS: ${e instanceof Error ? e.message : String(e)}`);
  }
  phase("rss");

  // ---- report
  const versions = {
    debugfs: await versionOf(DEBUGFS, ["-V"]),
    ext2fsPackage: JSON.parse(readFileSync(join(ROOT, "node_modules", "ext2fs", "package.json"), "utf8")).version as string,
    fileDiskPackage: JSON.parse(readFileSync(join(ROOT, "node_modules", "file-disk", "package.json"), "utf8")).version as string,
    cat: await versionOf("cat", ["--version"]),
  };
  const machine = machineInfo(base);
  const rate = (x: number | null) => (x === null ? "—" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));
  const tables: { title: string; header: string[]; rows: string[][]; align: ("l" | "r")[] }[] = [];
  for (const w of WORKLOADS.filter((x) => only.has(x.id))) {
    const isTree = w.id === "tree";
    const header = ["reader", "how", isTree ? "time" : "time (whole dir)", ...(isTree ? ["MiB/s"] : []), isTree ? "files/s" : "entries/s", "ours ÷ reader", "peak RSS", "n"];
    const rows = results[w.id]!.map((r) => [
      r.ours ? `**${r.label}**` : r.label,
      r.sampled ? `${r.how} ${r.sampled.entries.toLocaleString("en-US")} of ${r.sampled.of.toLocaleString("en-US")}` : r.how,
      r.valid ? (r.summary ? formatMs(r.summary.median) : "—") : "INVALID",
      ...(isTree ? [rate(r.mibPerSec)] : []),
      rate(r.filesPerSec),
      r.ours ? "—" : r.oursOverThis === null ? "—" : formatRatio(r.oursOverThis) + (r.vs !== "ours" ? ` (vs ${results[w.id]!.find((x) => x.id === r.vs)?.label})` : ""),
      r.rssBytes === null ? "—" : r.inProcess && baselineRss !== null ? `${formatBytes(r.rssBytes)} (+${formatBytes(Math.max(0, r.rssBytes - baselineRss))})` : formatBytes(r.rssBytes),
      String(r.samples.length),
    ]);
    const title = isTree ? `${w.title}: ${m.files.length.toLocaleString("en-US")} files, ${formatBytes(treeBytes)}` : `${w.title}: ${m.names.length.toLocaleString("en-US")} empty files`;
    tables.push({ title, header, rows, align: ["l", "l", ...header.slice(2).map(() => "r" as const)] });
  }
  for (const t of tables) {
    log(`\n${t.title}\n`);
    log(textTable(t.header, t.rows.map((r) => r.map((c) => c.replace(/\*\*/g, "").replace(/`/g, ""))), t.align));
  }
  if (baselineRss !== null) log(`\nchild-process baseline (node + tsx + both libraries loaded, nothing mounted): ${formatBytes(baselineRss)}`);
  for (const p of problems) log(`PROBLEM: ${p}`);

  const json = {
    bench: "read",
    date: new Date().toISOString(),
    machine,
    versions,
    params: { files: m.files.length, treeBytes, entries: m.names.length, sample: m.sample.length, seed, budgetMs, minRounds, maxRounds, outDir: outBase },
    setup,
    phasesMs: phases,
    loadavg: { start: loadStart, end: loadavg() },
    warmupDiscarded: warmupOf,
    baselineRssBytes: baselineRss,
    results,
    problems,
  };
  const jsonPath = writeResults("read", json);
  log(`\nresults: ${jsonPath}`);

  if (!argv["no-readme"]) {
    const date = json.date.slice(0, 10);
    const body = [
      ...tables.flatMap((t) => [`**${t.title}**`, "", markdownTable(t.header, t.rows, t.align), ""]),
      `Medians of n interleaved rounds (reader order rotated each round), everything warm in the page cache; "ours ÷ reader" is our speed over theirs from the same run (above 1× = we are faster). ` +
        `Sampled readers ran the first entries of one seeded random sample (count in the table) and are extrapolated to the whole directory: libext2fs looks names up linearly, so a full pass would take minutes. ` +
        `Peak RSS of an in-process reader is that of a child process (node + tsx, both libraries loaded) running it alone, with its growth over that child's baseline (${baselineRss === null ? "unknown" : formatBytes(baselineRss)}, nothing mounted) in brackets. ` +
        `Device reads per run of ours (each a thread-pool round trip): ${WORKLOADS.filter((w) => only.has(w.id)).flatMap((w) => results[w.id]!.filter((r) => r.deviceReads).map((r) => `${w.id} / ${r.label} ${r.deviceReads!.reads.toLocaleString("en-US")} (${formatBytes(r.deviceReads!.bytesRead)})`)).join(", ")}. ` +
        `Load average during the run: ${loadStart.map((x) => x.toFixed(1)).join(" / ")} at start, ${loadavg().map((x) => x.toFixed(1)).join(" / ")} at the end (this machine has ${machine.cpus} cores; other work shares it).`,
      `Measured ${date} on ${machine.cpu} ×${machine.cpus}, ${formatBytes(machine.memBytes)} RAM, Linux ${machine.kernel}, images on ${machine.tmpdirFs ?? "?"}, written trees on ${outBase === shm ? "tmpfs" : machine.tmpdirFs ?? "?"}; node ${machine.node}; ${versions.debugfs}; ext2fs ${versions.ext2fsPackage}, file-disk ${versions.fileDiskPackage}; commit ${machine.commit?.slice(0, 12) ?? "?"}.`,
      ...(problems.length ? ["", ...problems.map((p) => `**PROBLEM:** ${p}`)] : []),
    ].join("\n");
    renderIntoReadme("read", body);
  }
  if (problems.length) process.exitCode = 1;
}

if (argv.child) await childMain();
else await main();
