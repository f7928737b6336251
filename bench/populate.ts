/**
 * bench/populate: building an ext4 image from a host directory with our engine, against
 * native `mke2fs -d`, the `ext2fs` npm package and a plain `cp -r` on the host
 * (BENCHMARKS.md workload 1, "populate").
 *
 * Workloads (inputs made once per run in a temp directory, deleted at exit):
 *   - tree: ~2,000 incompressible files, ~430 MiB, three levels of directories — the
 *     generator of bench/read (read-fixtures.ts), so both benches work on the same tree.
 *   - dir: 20,000 empty files in one directory (/big). The cost here is the directory
 *     itself: mke2fs and libext2fs insert linearly (quadratic in the entry count), an
 *     htree-building writer should not.
 *
 * Writers, all in the same run, rounds interleaved with the order rotated each round so
 * a burst of background load hits everyone alike (lib.ts):
 *   - ours, in this warm process: FileDevice.open(create) + mkfs + mount + copyIn +
 *     unmount + close. The same on a MemoryDevice separates the engine's own cost from
 *     the host's file I/O; copyIn's host side alone (the same lstat / readdir / open /
 *     read / close calls with nothing written) separates it from the host *reads*.
 *   - ours CLI: `node dist/cli.js mkfs IMG SIZE --from DIR -q`, spawn to exit — the
 *     whole-process figure to set against mke2fs.
 *   - mke2fs: `mke2fs -t ext4 -d DIR IMG SIZE`, spawn to exit.
 *   - the ext2fs package: it cannot format, so `mke2fs` (spawned, no -d) and then the
 *     package copies the tree in (peers/ext2fs-write.ts); both inside the timed span, as
 *     a user must do both. On a synchronous disk (the fair comparison) and on file-disk's
 *     FileDisk (its README's choice; tree only — on the directory it would take minutes).
 *   - host cp -r: the same tree copied on the host file system (page cache only, no
 *     fsync), the physical limit of the machine.
 * Every image writer ends with its data on stable storage: we flush (fdatasync) at
 * unmount, mke2fs fsyncs at close, the sync disk's flush is fdatasyncSync, FileDisk's is
 * datasync. cp -r does not sync; it is the lower bound, not a like-for-like peer.
 *
 * Correctness before speed: the first run of every writer is also its validation run —
 * after the timer stops, `e2fsck -fn` must exit 0, the used-inode count must be exactly
 * the tree's files + directories + the 11 reserved inodes, and every file's content is
 * compared by SHA-256 (debugfs `cat` of all files, parsed as one stream) with what the
 * generator recorded; for the directory, `debugfs ls -p /big` must list exactly the
 * 20,000 names. The MemoryDevice image is saved to a sparse file for the same checks.
 * A writer that fails is reported INVALID, left out of the later rounds, and the bench
 * exits 1 — and the other writers carry on.
 *
 * Peak RSS: spawned writers in an extra, untimed run under /usr/bin/time; in-process
 * writers in a child process of this script (`--child`) under /usr/bin/time, next to
 * that child's baseline (same modules loaded, nothing written). Images are deleted, and
 * their directory fsynced, between runs outside the timed spans (lib.ts removeAndSettle).
 *
 * Usage: tsx bench/populate.ts [--files 2000] [--entries 20000] [--seed 1] [--budget SECONDS per workload]
 *        [--min-rounds 3] [--max-rounds 5] [--dir-rounds 2] [--only tree,dir] [--writers ours,mke2fs,…]
 *        [--dir DIR] [--no-readme] [--keep]
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import "../bindings/node.ts";
import { MemoryDevice, mkfs, mount } from "../bindings/index.ts";
import { FileDevice } from "../bindings/devices/node-file.ts";
import { copyIn } from "../bindings/node-copyin.ts";
import { ext2fsCopyTree } from "./peers/ext2fs-write.ts";
import { generateTree, imageSizeFor, type TreeFile } from "./read-fixtures.ts";
import { checkDebugfsCat, debugfsErrors, sameNames } from "./read-verify.ts";
import {
  GiB, KiB, MiB, ROOT, formatBytes, formatMs, formatRatio, freeBytes, machineInfo, markdownTable, now, peakRss,
  removeAndSettle, removeQuietly, renderIntoReadme, rounds, runCommand, summarize, textTable, versionOf, writeResults, type Summary,
} from "./lib.ts";

const { values: argv } = parseArgs({
  options: {
    files: { type: "string", default: "2000" },
    entries: { type: "string", default: "20000" },
    seed: { type: "string", default: "1" },
    budget: { type: "string", default: "60" },
    "min-rounds": { type: "string", default: "3" },
    "max-rounds": { type: "string", default: "5" },
    only: { type: "string", default: "tree,dir" },
    writers: { type: "string" },
    "dir-rounds": { type: "string", default: "2" },
    dir: { type: "string" },
    "no-readme": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    child: { type: "string" },
    manifest: { type: "string" },
  },
});

const THIS_FILE = fileURLToPath(import.meta.url);
const CLI = join(ROOT, "dist", "cli.js");
/** Inodes 1..11 are in use on a fresh ext4 volume (reserved ones, root, lost+found). */
const RESERVED_INODES = 11;

function sbin(name: string): string {
  for (const d of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} not found: install e2fsprogs`);
}
const MKE2FS = sbin("mke2fs");
const E2FSCK = sbin("e2fsck");
const DEBUGFS = sbin("debugfs");

type Workload = "tree" | "dir";

/** One workload's input, as handed to writers (and to --child processes as JSON). */
interface Input {
  workload: Workload;
  /** Host directory whose contents become the image's root. */
  src: string;
  /** Image size in bytes (a MiB multiple, ≥ 1 GiB so mke2fs picks its default profile). */
  size: number;
  /** Where this workload's writers put their image (deleted between runs). */
  img: string;
  /** Where cp -r copies to. */
  cpOut: string;
  files: number;
  dirs: number;
  bytes: number;
}

// ---------------------------------------------------------------- writers

/** Device counters of the last FileDevice run of ours (requests are what the host saw). */
let lastDeviceStats: Record<string, number> | null = null;

async function oursFile(inp: Input): Promise<number> {
  const t0 = now();
  const dev = await FileDevice.open(inp.img, { size: inp.size, create: true });
  await mkfs(dev, {});
  const vol = await mount(dev, { cacheBytes: 64 << 20 });
  await copyIn(vol, inp.src, "/");
  await vol.unmount();
  await dev.close();
  const ms = now() - t0;
  lastDeviceStats = { ...dev.stats };
  return ms;
}

/** The MemoryDevice of the last run, kept so validation can save it (then dropped). */
let lastMemoryDevice: MemoryDevice | null = null;

async function oursMemory(inp: Input): Promise<number> {
  lastMemoryDevice = null;
  const t0 = now();
  const dev = new MemoryDevice(inp.size);
  await mkfs(dev, {});
  const vol = await mount(dev, { cacheBytes: 64 << 20 });
  await copyIn(vol, inp.src, "/");
  await vol.unmount();
  const ms = now() - t0;
  lastMemoryDevice = dev;
  return ms;
}

/** Save the last MemoryDevice image to `img` as a sparse file (for the checks). */
function saveMemoryImage(img: string): void {
  const dev = lastMemoryDevice;
  if (!dev) throw new Error("no MemoryDevice image to save");
  const fd = openSync(img, "w");
  try {
    for (const [off, bytes] of dev.allocatedRanges()) for (let d = 0; d < bytes.length; ) d += writeSync(fd, bytes, d, bytes.length - d, off + d);
  } finally {
    closeSync(fd);
  }
  // Extend to the full size without writing: the tail is a hole.
  truncateSync(img, dev.size);
  lastMemoryDevice = null;
}

/**
 * copyIn's host side alone: the same calls copyIn makes on the host (lstat per entry,
 * readdir per directory, open + read in 1 MiB chunks + close per non-empty file, all
 * synchronous), with nothing written anywhere — the floor under ours for this tree.
 */
async function hostWalk(inp: Input): Promise<number> {
  const t0 = now();
  const buf = Buffer.alloc(1 << 20);
  let bytes = 0;
  // The calls copyIn makes, synchronous as it makes them (node-copyin.ts says why).
  const visit = (h: string): void => {
    for (const name of readdirSync(h).sort()) {
      const p = join(h, name);
      const st = lstatSync(p, { bigint: true });
      if (st.isDirectory()) visit(p);
      else if (st.isFile() && st.size > 0n) {
        const fd = openSync(p, "r");
        for (let pos = 0; ; ) {
          const n = readSync(fd, buf, 0, buf.length, pos);
          pos += n;
          bytes += n;
          if (n < buf.length) break;
        }
        closeSync(fd);
      }
    }
  };
  lstatSync(inp.src, { bigint: true });
  visit(inp.src);
  const ms = now() - t0;
  if (bytes !== inp.bytes) throw new Error(`host walk read ${bytes} bytes of ${inp.bytes}`);
  return ms;
}

async function spawned(cmd: string, args: string[]): Promise<number> {
  const r = await runCommand(cmd, args, { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.slice(0, 3).join(" ")}… exited ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 300)}`);
  return r.ms;
}

const mke2fsArgs = (inp: Input, withTree: boolean) => ["-q", "-t", "ext4", "-F", ...(withTree ? ["-d", inp.src] : []), inp.img, `${inp.size / KiB}k`];
// The node flags the CLI's own "#!/usr/bin/env -S node …" line asks for, so the bench runs
// it exactly as a user's shell does.
const cliNodeFlags = (): string[] => (readFileSync(CLI, "utf8").split("\n", 1)[0]!.match(/\bnode\b(.*)$/)?.[1] ?? "").trim().split(/\s+/).filter(Boolean);
const cliArgs = (inp: Input) => [...cliNodeFlags(), CLI, "mkfs", inp.img, String(inp.size), "--from", inp.src, "-q"];
const cpArgs = (inp: Input) => ["-r", inp.src, inp.cpOut];

async function ext2fsRun(inp: Input, kind: "sync" | "filedisk"): Promise<number> {
  const t0 = now();
  await spawned(MKE2FS, mke2fsArgs(inp, false));
  const r = await ext2fsCopyTree(inp.img, inp.src, kind);
  const ms = now() - t0;
  if (r.files !== inp.files || r.dirs !== inp.dirs || r.bytes !== inp.bytes) throw new Error(`ext2fs copied ${JSON.stringify(r)}`);
  return ms;
}

interface Variant {
  id: string;
  label: string;
  how: string;
  ours: boolean;
  /** The result lands in inp.img and gets the image checks (false: cp, host walk). */
  image: boolean;
  inProcess: boolean;
  run: (inp: Input) => Promise<number>;
  /** Arguments of an untimed /usr/bin/time run, for spawned writers. */
  rss?: (inp: Input) => [string, string[]];
  /** Run in at most this many rounds (the slowest peers: their noise is irrelevant next to their gap). */
  maxRounds?: number;
  /** The same, per workload. */
  maxRoundsOn?: Partial<Record<Workload, number>>;
  workloads: Workload[];
}

const VARIANTS: Variant[] = [
  { id: "ours", label: "ours", how: "FileDevice + mkfs + mount + copyIn + unmount, in process", ours: true, image: true, inProcess: true, run: oursFile, workloads: ["tree", "dir"] },
  { id: "ours-cli", label: "ours CLI", how: "`node dist/cli.js mkfs IMG SIZE --from DIR -q`", ours: true, image: true, inProcess: false,
    run: (inp) => spawned(process.execPath, cliArgs(inp)), rss: (inp) => [process.execPath, cliArgs(inp)], workloads: ["tree", "dir"] },
  { id: "ours-mem", label: "ours MemoryDevice", how: "the same on a MemoryDevice (no file I/O for the image)", ours: true, image: true, inProcess: true, run: oursMemory, workloads: ["tree", "dir"] },
  { id: "mke2fs", label: "mke2fs -d", how: "`mke2fs -t ext4 -d DIR IMG SIZE`", ours: false, image: true, inProcess: false,
    run: (inp) => spawned(MKE2FS, mke2fsArgs(inp, true)), rss: (inp) => [MKE2FS, mke2fsArgs(inp, true)], workloads: ["tree", "dir"] },
  { id: "ext2fs-sync", label: "ext2fs + sync disk", how: "mke2fs, then npm ext2fs on an fs.readSync/writeSync disk, 1 MiB writes", ours: false, image: true, inProcess: true,
    run: (inp) => ext2fsRun(inp, "sync"), maxRoundsOn: { dir: 1 }, workloads: ["tree", "dir"] },
  { id: "ext2fs-filedisk", label: "ext2fs + FileDisk", how: "mke2fs, then npm ext2fs on file-disk's FileDisk (README), 1 MiB writes", ours: false, image: true, inProcess: true,
    run: (inp) => ext2fsRun(inp, "filedisk"), maxRounds: 1, workloads: ["tree"] },
  { id: "host-cp", label: "host cp -r", how: "`cp -r DIR OUT` on the host (page cache, no fsync)", ours: false, image: false, inProcess: false,
    run: (inp) => spawned("cp", cpArgs(inp)), rss: (inp) => ["cp", cpArgs(inp)], workloads: ["tree", "dir"] },
  { id: "host-walk", label: "copyIn's host reads alone", how: "lstatSync/readdirSync/openSync/readSync/closeSync as copyIn does, nothing written", ours: false, image: false, inProcess: true,
    run: hostWalk, workloads: ["tree", "dir"] },
];

/** Writers whose peak RSS is measured per workload (the rest: tree only, to stay in budget). */
const RSS_ON_DIR = new Set(["ours", "ours-cli"]);

// ---------------------------------------------------------------- validation (untimed)

async function fsckAndCount(img: string, wantInodes: number): Promise<string | null> {
  const r = await runCommand(E2FSCK, ["-fn", img], { timeoutMs: 600_000 });
  if (r.code !== 0) return `e2fsck -fn exited ${r.code}: ${(r.stdout + r.stderr).trim().split("\n").slice(-4).join(" / ").slice(0, 400)}`;
  const m = / (\d+)\/(\d+) files /.exec(r.stdout);
  if (!m) return `cannot read the inode count from e2fsck: ${r.stdout.slice(-200)}`;
  if (Number(m[1]) !== wantInodes) return `${m[1]} inodes in use, expected ${wantInodes}`;
  return null;
}

interface Expect {
  tree: TreeFile[];
  catCmds: string;
  names: string[];
}

async function validateImage(inp: Input, ex: Expect): Promise<string | null> {
  const bad = await fsckAndCount(inp.img, inp.files + inp.dirs + RESERVED_INODES);
  if (bad) return bad;
  if (inp.workload === "tree") return checkDebugfsCat(DEBUGFS, inp.img, ex.catCmds, ex.tree);
  const r = await runCommand(DEBUGFS, ["-R", "ls -p /big", inp.img], { timeoutMs: 600_000 });
  const errs = debugfsErrors(r.stderr);
  if (r.code !== 0 || errs.length) return `debugfs ls: ${errs[0] ?? r.code}`;
  // ls -p: "/ino/mode/uid/gid/name/size/" per entry.
  const names = r.stdout.split("\n").map((l) => l.split("/")).filter((f) => f.length >= 7 && f[5] !== "." && f[5] !== "..").map((f) => f[5]!);
  return sameNames(names, ex.names);
}

async function validate(v: Variant, inp: Input, ex: Expect): Promise<string | null> {
  if (v.id === "ours-mem") saveMemoryImage(inp.img);
  if (v.image) return validateImage(inp, ex);
  return null; // cp -r and the host walk check their own byte counts / exit codes
}

// ---------------------------------------------------------------- inputs

function makeEmptyFiles(root: string, entries: number): string[] {
  mkdirSync(join(root, "big"), { recursive: true });
  const names = Array.from({ length: entries }, (_, i) => `entry-${String(i).padStart(6, "0")}`);
  for (const n of names) closeSync(openSync(join(root, "big", n), "w"));
  return names;
}

// ---------------------------------------------------------------- results

interface VariantResult {
  id: string;
  label: string;
  how: string;
  ours: boolean;
  valid: boolean;
  problem: string | null;
  samples: number[];
  summary: Summary | null;
  mibPerSec: number | null;
  filesPerSec: number | null;
  /** Our speed ÷ this writer's, from the medians (> 1: ours is faster); ours = in-process, FileDevice. */
  oursOverThis: number | null;
  /** Median over rounds of each round's own ratio (same round, same conditions). */
  pairedOursOverThis: number | null;
  /** Our CLI's speed ÷ this writer's, for spawned peers only (whole process against whole process). */
  cliOverThis: number | null;
  rssBytes: number | null;
  inProcess: boolean;
}

async function childMain(): Promise<void> {
  const inp = JSON.parse(readFileSync(argv.manifest!, "utf8")) as Input;
  if (argv.child === "noop") return;
  const v = VARIANTS.find((x) => x.id === argv.child && x.inProcess);
  if (!v) throw new Error(`no in-process writer ${argv.child}`);
  removeAndSettle(inp.img);
  await v.run(inp);
}

async function main(): Promise<void> {
  const only = new Set(argv.only!.split(",").map((s) => s.trim()) as Workload[]);
  const fileCount = Number(argv.files);
  const entries = Number(argv.entries);
  const seed = Number(argv.seed);
  const budgetMs = Number(argv.budget) * 1000;
  const maxRounds = Number(argv["max-rounds"]);
  const minRounds = Math.min(Number(argv["min-rounds"]), maxRounds);
  const base = argv.dir ?? tmpdir();
  const loadStart = loadavg();
  const log = (s: string) => process.stdout.write(s + "\n");
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: run node scripts/build.mjs first`);

  // Disk headroom: the source tree, one image, the cp -r copy, the saved MemoryDevice image.
  const estTree = (430 * MiB * fileCount) / 2000;
  const need = (only.has("tree") ? 4.5 * estTree : 0) + (only.has("dir") ? 256 * MiB : 0) + GiB;
  if (freeBytes(base) < need) throw new Error(`${base} has ${formatBytes(freeBytes(base))} free; this bench needs about ${formatBytes(need)}`);
  const workDir = join(base, `ext4-wasm-bench-populate-${process.pid}`);
  mkdirSync(workDir);
  const cleanup = () => {
    if (!argv.keep) removeQuietly(workDir);
  };
  process.on("exit", cleanup);
  for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { cleanup(); process.exit(130); });

  const setup: Record<string, number> = {};
  const inputs: Input[] = [];
  const ex: Expect = { tree: [], catCmds: join(workDir, "cat.cmds"), names: [] };
  if (only.has("tree")) {
    const t0 = now();
    const t = generateTree(join(workDir, "tree"), fileCount, seed);
    setup.generateTreeMs = now() - t0;
    ex.tree = t.files;
    writeFileSync(ex.catCmds, t.files.map((f) => `cat /${f.path}\n`).join(""));
    inputs.push({ workload: "tree", src: t.root, size: imageSizeFor(t), img: join(workDir, "tree.img"), cpOut: join(workDir, "tree-cp"), files: t.files.length, dirs: t.dirs, bytes: t.bytes });
    log(`tree: ${t.files.length} files, ${formatBytes(t.bytes)}, ${t.dirs} directories; image ${formatBytes(imageSizeFor(t))} (generated in ${formatMs(setup.generateTreeMs)})`);
  }
  if (only.has("dir")) {
    const t0 = now();
    const root = join(workDir, "bigsrc");
    ex.names = makeEmptyFiles(root, entries);
    setup.emptyFilesMs = now() - t0;
    inputs.push({ workload: "dir", src: root, size: GiB, img: join(workDir, "dir.img"), cpOut: join(workDir, "dir-cp"), files: entries, dirs: 1, bytes: 0 });
    log(`dir: ${entries} empty files in /big; image ${formatBytes(GiB)} (made in ${formatMs(setup.emptyFilesMs)})`);
  }

  // Warm the engine (compile + first-run JIT) on a tiny tree, so round 0 of ours is not a cold start.
  {
    const tiny = join(workDir, "warm");
    mkdirSync(join(tiny, "d"), { recursive: true });
    writeFileSync(join(tiny, "d", "f"), Buffer.alloc(5000, 1));
    await oursFile({ workload: "tree", src: tiny, size: GiB, img: join(workDir, "warm.img"), cpOut: "", files: 1, dirs: 1, bytes: 5000 });
    removeAndSettle(join(workDir, "warm.img"));
  }

  const problems: string[] = [];
  const results: Record<string, VariantResult[]> = {};
  const phases: Record<string, number> = {};
  const deviceStats: Record<string, Record<string, number> | null> = {};
  const removeOutputs = (inp: Input) => { removeAndSettle(inp.img); removeAndSettle(inp.cpOut); };

  for (const inp of inputs) {
    const w = inp.workload;
    const tw = now();
    const pick = argv.writers ? new Set(argv.writers.split(",").map((x) => x.trim())) : null;
    const vs = VARIANTS.filter((v) => v.workloads.includes(w) && (!pick || pick.has(v.id)));
    // The directory workload's slow peers (mke2fs and libext2fs insert linearly) make one
    // round cost about a minute: fewer rounds there keep the whole bench near 6 minutes.
    const wMin = w === "dir" ? Math.min(minRounds, Number(argv["dir-rounds"])) : minRounds;
    const wMax = w === "dir" ? Math.min(maxRounds, Number(argv["dir-rounds"])) : maxRounds;
    const invalid = new Map<string, string>();
    // Round 0 is also the validation round: each writer's first run is timed like the
    // others, then (timer stopped) its image is checked; an invalid writer leaves the rounds.
    const { samples } = await rounds(async (r) => {
      const out: Record<string, number> = {};
      const live = vs.filter((v) => !invalid.has(v.id) && r < Math.min(v.maxRounds ?? Infinity, v.maxRoundsOn?.[w] ?? Infinity));
      const order = live.map((_, i) => live[(i + r) % live.length]!);
      for (const v of order) {
        removeOutputs(inp);
        let ms: number;
        try {
          ms = await v.run(inp);
          if (r === 0) {
            if (v.id === "ours") deviceStats[w] = lastDeviceStats;
            const t0 = now();
            const problem = await validate(v, inp, ex);
            log(`  check ${w} / ${v.label}: ${problem ? "INVALID — " + problem : "ok"} (run ${formatMs(ms)}, check ${formatMs(now() - t0)})`);
            if (problem) throw new Error(problem);
          }
        } catch (e) {
          const msg = e instanceof Error ? e.message.split("\n")[0]!.slice(0, 400) : String(e);
          invalid.set(v.id, msg);
          problems.push(`${w} / ${v.label}: ${msg}`);
          if (r !== 0) log(`  ${w} / ${v.label} failed in round ${r}: ${msg}`);
          continue;
        } finally {
          lastMemoryDevice = null;
        }
        out[v.id] = ms;
      }
      removeOutputs(inp);
      return out;
    }, { budgetMs, minRounds: wMin, maxRounds: wMax, warmupBelowMs: 0 });

    const rows: VariantResult[] = vs.map((v) => {
      const s = invalid.has(v.id) ? [] : samples[v.id] ?? [];
      const summary = s.length ? summarize(s) : null;
      return {
        id: v.id, label: v.label, how: v.how, ours: v.ours, valid: !invalid.has(v.id), problem: invalid.get(v.id) ?? null,
        samples: s, summary,
        mibPerSec: summary && inp.bytes ? inp.bytes / MiB / (summary.median / 1000) : null,
        filesPerSec: summary ? inp.files / (summary.median / 1000) : null,
        oursOverThis: null, pairedOursOverThis: null, cliOverThis: null, rssBytes: null, inProcess: v.inProcess,
      };
    });
    const ours = rows.find((x) => x.id === "ours");
    const cli = rows.find((x) => x.id === "ours-cli");
    for (const r of rows) {
      if (!r.summary) continue;
      if (r.ours) continue; // ours rows are read against each other directly (time column)
      if (ours?.summary) {
        r.oursOverThis = r.summary.median / ours.summary.median;
        const n = Math.min(r.samples.length, ours.samples.length);
        if (n) r.pairedOursOverThis = summarize(Array.from({ length: n }, (_, i) => r.samples[i]! / ours.samples[i]!)).median;
      }
      // Whole process against whole process only: the CLI pays Node's start-up, in-process peers do not.
      if (cli?.summary && !r.inProcess) r.cliOverThis = r.summary.median / cli.summary.median;
    }
    results[w] = rows;
    phases[w] = now() - tw;
    log(`  ${w}: ${Math.max(...rows.map((r) => r.samples.length))} rounds in ${formatMs(phases[w]!)}`);
  }

  // Peak RSS, untimed: spawned writers under GNU time; in-process ones in a child process.
  const tr = now();
  let baselineRss: number | null = null;
  const manifest = join(workDir, "manifest.json");
  const childRss = async (spec: string) => {
    const r = await peakRss(process.execPath, ["--import", "tsx", THIS_FILE, "--child", spec, "--manifest", manifest], { cwd: ROOT, timeoutMs: 900_000 });
    if (r && r.result.code !== 0) throw new Error(`child ${spec} exited ${r.result.code}: ${r.result.stderr.slice(0, 500)}`);
    return r?.rss ?? null;
  };
  try {
    for (const inp of inputs) {
      writeFileSync(manifest, JSON.stringify(inp));
      baselineRss ??= await childRss("noop");
      for (const r of results[inp.workload]!) {
        if (!r.valid || r.id === "ours-mem" || r.id === "ext2fs-filedisk" || r.id === "host-walk") continue;
        if (inp.workload === "dir" && !RSS_ON_DIR.has(r.id)) continue;
        const v = VARIANTS.find((x) => x.id === r.id)!;
        removeOutputs(inp);
        if (v.rss) {
          const [cmd, args] = v.rss(inp);
          const got = await peakRss(cmd, args, { timeoutMs: 900_000 });
          if (got && got.result.code !== 0) throw new Error(`${r.label} exited ${got.result.code} under /usr/bin/time`);
          r.rssBytes = got?.rss ?? null;
        } else {
          r.rssBytes = await childRss(r.id);
        }
      }
      removeOutputs(inp);
    }
  } catch (e) {
    problems.push(`peak RSS: ${e instanceof Error ? e.message : String(e)}`);
  }
  phases.rss = now() - tr;

  // ---- report
  const pkg = (name: string) => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version as string;
  const versions = { mke2fs: (await runCommand(MKE2FS, ["-V"])).stderr.split("\n")[0] ?? null, ext2fsPackage: pkg("ext2fs"), fileDiskPackage: pkg("file-disk"), cp: await versionOf("cp", ["--version"]) };
  const machine = machineInfo(base);
  const rate = (x: number | null) => (x === null ? "—" : x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3));
  const tables: { title: string; header: string[]; rows: string[][]; align: ("l" | "r")[] }[] = [];
  for (const inp of inputs) {
    const isTree = inp.workload === "tree";
    const header = ["writer", "how", "time", ...(isTree ? ["MiB/s"] : []), "files/s", "ours ÷ this", "ours CLI ÷ this", "peak RSS", "n"];
    const rows = results[inp.workload]!.map((r) => [
      r.ours ? `**${r.label}**` : r.label,
      r.how,
      r.valid ? (r.summary ? formatMs(r.summary.median) : "—") : "INVALID",
      ...(isTree ? [rate(r.mibPerSec)] : []),
      rate(r.filesPerSec),
      r.oursOverThis === null ? "—" : formatRatio(r.oursOverThis),
      r.cliOverThis === null ? "—" : formatRatio(r.cliOverThis),
      r.rssBytes === null ? "—" : r.inProcess && baselineRss !== null ? `${formatBytes(r.rssBytes)} (+${formatBytes(Math.max(0, r.rssBytes - baselineRss))})` : formatBytes(r.rssBytes),
      String(r.samples.length),
    ]);
    const title = isTree
      ? `Build an image from a tree: ${inp.files.toLocaleString("en-US")} files, ${formatBytes(inp.bytes)}, ${inp.dirs} directories (${formatBytes(inp.size)} image)`
      : `Build an image holding one directory of ${inp.files.toLocaleString("en-US")} empty files`;
    tables.push({ title, header, rows, align: ["l", "l", ...header.slice(2).map(() => "r" as const)] });
  }
  for (const t of tables) {
    log(`\n${t.title}\n`);
    log(textTable(t.header, t.rows.map((r) => r.map((c) => c.replace(/\*\*/g, "").replace(/`/g, ""))), t.align));
  }
  if (baselineRss !== null) log(`\nchild-process baseline (node + tsx + both libraries loaded, nothing written): ${formatBytes(baselineRss)}`);
  for (const p of problems) log(`PROBLEM: ${p}`);

  const loadEnd = loadavg();
  const json = {
    bench: "populate",
    date: new Date().toISOString(),
    machine,
    versions,
    params: { files: fileCount, entries, seed, budgetMs, minRounds, maxRounds },
    inputs: inputs.map(({ workload, size, files, dirs, bytes }) => ({ workload, size, files, dirs, bytes })),
    setup,
    phasesMs: phases,
    loadavg: { start: loadStart, end: loadEnd },
    baselineRssBytes: baselineRss,
    oursDeviceStats: deviceStats,
    results,
    problems,
  };
  const jsonPath = writeResults("populate", json);
  log(`\nresults: ${jsonPath}`);

  if (!argv["no-readme"]) {
    const dev = (w: string) => deviceStats[w] ? `${w}: ${deviceStats[w]!.writes!.toLocaleString("en-US")} writes (${formatBytes(deviceStats[w]!.bytesWritten!)}), ${deviceStats[w]!.reads!.toLocaleString("en-US")} reads, ${deviceStats[w]!.flushes} flushes` : null;
    const body = [
      ...tables.flatMap((t) => [`**${t.title}**`, "", markdownTable(t.header, t.rows, t.align), ""]),
      `Medians of n interleaved rounds (writer order rotated each round); the first run of each writer is also its validation run (\`e2fsck -fn\`, used-inode count, SHA-256 of every file or the full directory listing, checked after the timer stops). ` +
        `"ours ÷ this" is the speed of ours in process (FileDevice) over this writer's, "ours CLI ÷ this" that of the whole CLI process against a spawned peer, both from the same run (above 1× = we are faster). ` +
        `Every image writer ends with an fdatasync/fsync of the image; cp -r leaves its copy in the page cache. ext2fs rows include the spawned mke2fs that formats their image (the package cannot format). ` +
        `Peak RSS of an in-process writer is that of a child process (node + tsx, all libraries loaded) running it alone, with its growth over that child's baseline (${baselineRss === null ? "unknown" : formatBytes(baselineRss)}) in brackets; on the directory workload only ours is measured. ` +
        `Device requests of one ours run: ${inputs.map((i) => dev(i.workload)).filter(Boolean).join("; ")}. ` +
        `Load average: ${loadStart.map((x) => x.toFixed(1)).join(" / ")} at start, ${loadEnd.map((x) => x.toFixed(1)).join(" / ")} at the end (${machine.cpus} cores, shared).`,
      `Measured ${json.date.slice(0, 10)} on ${machine.cpu} ×${machine.cpus}, ${formatBytes(machine.memBytes)} RAM, Linux ${machine.kernel}, images on ${machine.tmpdirFs ?? "?"}; node ${machine.node}; ${versions.mke2fs}; ext2fs ${versions.ext2fsPackage}, file-disk ${versions.fileDiskPackage}; commit ${machine.commit?.slice(0, 12) ?? "?"}.`,
      ...(problems.length ? ["", ...problems.map((p) => `**PROBLEM:** ${p}`)] : []),
    ].join("\n");
    renderIntoReadme("populate", body);
  }
  if (problems.length) process.exitCode = 1;
}

if (argv.child) await childMain();
else await main();
