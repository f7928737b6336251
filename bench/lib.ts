/**
 * Shared plumbing for the benches in bench/: timing, child processes, peak memory, results.
 *
 * Why the helpers look like this: the machines these benches run on are shared and noisy,
 * so a single absolute time means little (see /work/shared/BENCHMARKS.md). Every bench
 * therefore measures our code and its peer in the same run, interleaved round by round
 * (so a burst of background load hits both sides rather than one), repeats each figure,
 * and reports the median (robust to one slow outlier) next to the minimum (the
 * least-disturbed run). The number of rounds adapts to how slow a case is, so one command
 * covers fast and slow cases within a bounded wall time instead of a fixed repetition
 * count that is either too few for 30 ms cases or far too many for 30 s ones.
 *
 * Child processes are timed from spawn to exit with nothing wrapped around them: a wrapper
 * such as /usr/bin/time costs several milliseconds per run, which is a large share of a
 * 30 ms mke2fs. Peak RSS, which needs the wrapper (`/usr/bin/time -f %M`), is therefore
 * taken in a separate, untimed run (see `peakRss`).
 *
 * Results: each bench writes bench/results/<name>.json (raw samples, so any statistic can
 * be recomputed later) and renders its table into bench/README.md between the markers
 * `<!-- bench:<name> -->` and `<!-- /bench:<name> -->`; text outside the markers is never
 * touched, so the README's prose stays hand-written.
 *
 * Nothing here is a test: benches never assert on times, only on correctness of what
 * they measured (a broken result must abort the bench, not be timed).
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, statfsSync, writeFileSync, rmSync } from "node:fs";
import { cpus, totalmem, release, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, "..");

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function now(): number {
  return performance.now();
}

/** Time one call of `fn` in milliseconds (the value it returns is passed back). */
export async function timeOnce<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = now();
  const value = await fn();
  return { ms: now() - t0, value };
}

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

/** Median, min and max of a non-empty list of samples. */
export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: no samples");
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { n: s.length, median, min: s[0]!, max: s[s.length - 1]! };
}

export interface RoundsOptions {
  /** Wall-time budget for all timed rounds of this case, in ms. */
  budgetMs: number;
  /** At least this many timed rounds (default 1). */
  minRounds?: number;
  /** At most this many timed rounds (default 5). */
  maxRounds?: number;
  /**
   * A first round is discarded as warm-up when it took less than this (default 2000 ms):
   * for fast cases it absorbs first-touch effects (page cache, JIT of a new code path);
   * for slow ones those effects are noise against the run time and the round is kept.
   */
  warmupBelowMs?: number;
}

/**
 * Run `round(i)` repeatedly and collect per-variant samples. A round measures every
 * variant once (interleaved, so ratios between variants come from the same conditions)
 * and returns { variant: ms }. The number of rounds is chosen from the first round's
 * duration and `budgetMs`.
 */
export async function rounds(
  round: (i: number) => Promise<Record<string, number>>,
  opts: RoundsOptions,
): Promise<{ samples: Record<string, number[]>; warmupDiscarded: boolean }> {
  const { budgetMs, minRounds = 1, maxRounds = 5, warmupBelowMs = 2000 } = opts;
  const samples: Record<string, number[]> = {};
  const add = (r: Record<string, number>) => {
    for (const [k, v] of Object.entries(r)) (samples[k] ??= []).push(v);
  };
  const t0 = now();
  const first = await round(0);
  const firstMs = now() - t0;
  const warmupDiscarded = firstMs < warmupBelowMs;
  if (!warmupDiscarded) add(first);
  const target = Math.max(minRounds, Math.min(maxRounds, Math.floor(budgetMs / Math.max(firstMs, 1))));
  for (let i = warmupDiscarded ? 0 : 1; i < target; i++) add(await round(i + 1));
  return { samples, warmupDiscarded };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time from spawn to exit, in ms. */
  ms: number;
}

/** Run a command to completion (stdin closed), capturing output; never throws on exit codes. */
export function runCommand(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"], timeout: opts.timeoutMs });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = now() - t0;
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms });
    });
  });
}

/** Like runCommand, but a non-zero exit throws with the command's stderr. */
export async function mustRun(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  const r = await runCommand(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.code}:\n${r.stderr || r.stdout}`);
  return r;
}

const TIME_BIN = "/usr/bin/time";

/** True when GNU time is available for peak-RSS measurement. */
export function canMeasureRss(): boolean {
  return existsSync(TIME_BIN);
}

/**
 * Run a command once under GNU time and return its exit status and peak RSS in bytes
 * (null when /usr/bin/time is missing: then the command is not run at all). Untimed on
 * purpose: the wrapper's own cost would distort a wall-time figure.
 */
export async function peakRss(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ rss: number; result: CommandResult } | null> {
  if (!canMeasureRss()) return null;
  // -f %M prints the maximum resident set size in KiB on the last line of stderr.
  const r = await runCommand(TIME_BIN, ["-f", "%M", cmd, ...args], opts);
  const lines = r.stderr.trimEnd().split("\n");
  const kib = Number(lines.pop());
  if (!Number.isFinite(kib)) throw new Error(`cannot read peak RSS from /usr/bin/time output: ${r.stderr}`);
  return { rss: kib * KiB, result: { ...r, stderr: lines.join("\n") } };
}

/**
 * Like runCommand, but the command's stdout goes straight to /dev/null (stderr is still
 * captured): for commands whose output *is* the work measured (`cat`, `debugfs cat` of
 * hundreds of MiB), which must neither be buffered in this process nor cost a pipe.
 */
export function runCommandQuiet(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const devnull = openSync("/dev/null", "w");
    const t0 = now();
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ["ignore", devnull, "pipe"], timeout: opts.timeoutMs });
    closeSync(devnull);
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const ms = now() - t0;
      resolve({ code: code ?? (signal ? 128 : 1), stdout: "", stderr, ms });
    });
  });
}

/**
 * peakRss for a command whose stdout must go to /dev/null (see runCommandQuiet): GNU time
 * writes its figure to a temporary file instead of stderr. Null when /usr/bin/time is missing.
 */
export async function peakRssQuiet(cmd: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ rss: number; result: CommandResult } | null> {
  if (!canMeasureRss()) return null;
  const out = join(tmpdir(), `bench-rss-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  try {
    const r = await runCommandQuiet(TIME_BIN, ["-f", "%M", "-o", out, cmd, ...args], opts);
    const kib = Number(readFileSync(out, "utf8").trim().split("\n").pop());
    if (!Number.isFinite(kib)) throw new Error(`cannot read peak RSS from ${out}`);
    return { rss: kib * KiB, result: r };
  } finally {
    rmSync(out, { force: true });
  }
}

/** First line of a command's output (stdout, else stderr), or null when it cannot run. */
export async function versionOf(cmd: string, args: string[]): Promise<string | null> {
  try {
    const r = await runCommand(cmd, args);
    return (r.stdout.trim() || r.stderr.trim()).split("\n")[0] ?? null;
  } catch {
    return null;
  }
}

/** Bytes free for an unprivileged user on the filesystem holding `path`. */
export function freeBytes(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

/** The host filesystem type of `path` (from /proc/self/mounts; longest matching mount point). */
export function hostFsType(path: string): string | null {
  try {
    let best: [string, string] | null = null;
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const [, mnt, type] = line.split(" ");
      if (!mnt || !type) continue;
      const m = mnt.replace(/\\040/g, " ");
      if ((path === m || path.startsWith(m.endsWith("/") ? m : m + "/")) && (!best || m.length > best[0].length)) best = [m, type];
    }
    return best ? best[1] : null;
  } catch {
    return null;
  }
}

/** The commit the working tree is on, read from .git without running git (null if unknown). */
export function gitCommit(): string | null {
  try {
    // In a linked worktree .git is a file naming the worktree's own git dir, which holds
    // HEAD; branches and packed-refs live in the common dir it points to.
    let gitDir = join(ROOT, ".git");
    if (statSync(gitDir).isFile()) gitDir = resolve(ROOT, readFileSync(gitDir, "utf8").trim().replace(/^gitdir:\s*/, ""));
    const commonFile = join(gitDir, "commondir");
    const common = existsSync(commonFile) ? resolve(gitDir, readFileSync(commonFile, "utf8").trim()) : gitDir;
    const head = readFileSync(join(gitDir, "HEAD"), "utf8").trim();
    if (!head.startsWith("ref: ")) return head;
    const ref = head.slice(5);
    for (const d of [gitDir, common]) {
      const loose = join(d, ref);
      if (existsSync(loose)) return readFileSync(loose, "utf8").trim();
    }
    const packed = readFileSync(join(common, "packed-refs"), "utf8");
    const line = packed.split("\n").find((l) => l.endsWith(" " + ref));
    return line ? line.split(" ")[0]! : null;
  } catch {
    return null;
  }
}

export interface MachineInfo {
  cpu: string;
  cpus: number;
  memBytes: number;
  kernel: string;
  node: string;
  tmpdir: string;
  tmpdirFs: string | null;
  commit: string | null;
}

/** What the numbers were measured on; every results file carries it. */
export function machineInfo(dir = tmpdir()): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? "unknown",
    cpus: c.length,
    memBytes: totalmem(),
    kernel: release(),
    node: process.version,
    tmpdir: dir,
    tmpdirFs: hostFsType(dir),
    commit: gitCommit(),
  };
}

/** Write bench/results/<name>.json (pretty-printed) and return its path. */
export function writeResults(name: string, data: unknown): string {
  const dir = join(BENCH_DIR, "results");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + "\n");
  return path;
}

/** A Markdown table; cells are already formatted strings, alignment "l" | "r" per column. */
export function markdownTable(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const a = align ?? header.map(() => "r");
  const sep = a.map((x) => (x === "l" ? ":---" : "---:"));
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(sep), ...rows.map(line)].join("\n");
}

/** The same table as aligned plain text, for the terminal. */
export function textTable(header: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const a = align ?? header.map(() => "r");
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (a[i] === "l" ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(fmt)].join("\n");
}

/**
 * Replace the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` in
 * bench/README.md with `body`; appends a new marked section at the end when the markers
 * are missing. Returns the README path.
 */
export function renderIntoReadme(name: string, body: string): string {
  const path = join(BENCH_DIR, "README.md");
  const open = `<!-- bench:${name} -->`;
  const close = `<!-- /bench:${name} -->`;
  const text = existsSync(path) ? readFileSync(path, "utf8") : "# Benchmarks\n";
  const i = text.indexOf(open);
  const j = text.indexOf(close);
  const block = `${open}\n${body.trim()}\n${close}`;
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + close.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(path, next);
  return path;
}

/** "12.3 ms", "1.23 s" — three significant figures. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toPrecision(3)} s`;
  if (ms >= 1) return `${ms.toPrecision(3)} ms`;
  return `${(ms * 1000).toPrecision(3)} µs`;
}

/** "3.2×" (ratios below 0.1 get two significant figures). */
export function formatRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
}

/** Binary size with unit: "64 GiB", "12.5 MiB". */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  let v = n;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${Number.isInteger(v) ? v : v.toPrecision(3)} ${units[u]}`;
}

/** Remove a file or directory if present (never throws). */
export function removeQuietly(path: string): void {
  try {
    rmSync(path, { force: true, recursive: true });
  } catch {
    // best effort: a leftover temp file is not worth failing a bench over
  }
}

/**
 * Remove a file and wait until the host file system has committed the removal. Why: on a
 * journalling host (ext4, often mounted with `discard`) freeing a large image's extents is
 * work done at the next journal commit, and without this wait the next timed run's own
 * fsync would pay for the previous run's deletion.
 */
export function removeAndSettle(path: string): void {
  removeQuietly(path);
  try {
    const fd = openSync(dirname(path), "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // a directory that cannot be fsynced (some platforms): nothing to wait for then
  }
}
