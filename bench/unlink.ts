/**
 * bench/unlink — BENCHMARKS.md workload 5: deleting big files and big trees with deferred
 * inode inactivation (inodegc) on and off, in the same run.
 *
 * Why these numbers: inodegc exists so that the *caller* of unlink does not pay for
 * freeing extents. So the bench reports what the caller sees — latency of each unlink
 * (median, p99) and the whole foreground phase — next to what the system still owes: the
 * time until the space is actually free (the unlink phase plus statfs(), which drains every
 * lane). While the lanes drain, a bounded foreground workload (small writeFile calls) runs, and its
 * throughput is compared with the same workload on an idle volume (off mode).
 *
 * Files get their extents by writing every other block (1 KiB blocks, so 1,000 × 1,000
 * extents hold 1 GB of data in the MemoryDevice; fallocate would avoid that once the
 * FileHandle has it). Each configuration's
 * image is checked with e2fsck -fn afterwards; a broken run exits 1.
 *
 *   npx tsx bench/unlink.ts [--files 1000] [--extents 1000] [--tree 20000] [--no-readme]
 */
import { join } from "node:path";
import { loadavg, tmpdir } from "node:os";
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import "../bindings/node.ts";
import { mkfs, mount, MemoryDevice } from "../bindings/index.ts";
import type { Volume } from "../bindings/fs/volume.ts";
import {
  formatMs, formatRatio, machineInfo, markdownTable, now, renderIntoReadme, runCommand, textTable, writeResults,
} from "./lib.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const FILES = opt("files", 1000);
const EXTENTS = opt("extents", 1000);
const TREE = opt("tree", 20000);
const README = !args.includes("--no-readme");
const BS = 1024;
/** The machines are shared: the load when the run began goes into the report. */
const LOAD0 = loadavg();

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!;
}

interface Result {
  workload: string;
  mode: "off" | "on";
  unlinkMedianMs: number;
  unlinkP99Ms: number;
  foregroundMs: number;
  untilFreeMs: number;
  /** Process CPU time (user + system) of the unlink phase, and until space free. */
  foregroundCpuMs: number;
  untilFreeCpuMs: number;
  fgOpsPerSec: number;
}

async function fsck(dev: MemoryDevice, label: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-unlink-"));
  try {
    const img = join(dir, "img");
    // Sparse copy: the big-file volume is gigabytes of mostly untouched space.
    const fd = openSync(img, "w");
    try {
      ftruncateSync(fd, dev.size);
      for (const [offset, bytes] of dev.allocatedRanges()) writeSync(fd, bytes, 0, bytes.length, offset);
    } finally {
      closeSync(fd);
    }
    const r = await runCommand("/usr/sbin/e2fsck", ["-fn", img]);
    if (r.code !== 0) {
      console.error(`${label}: e2fsck -fn failed (${r.code})\n${r.stdout}`);
      process.exit(1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Up to FG_OPS small writes while `until` is pending; ops per second over the writes alone.
 * Bounded, so the workload does not stretch the drain it shares the thread with (an
 * unbounded loop would make "until space free" measure the workload, not the drain).
 */
const FG_OPS = 200;
async function foreground(vol: Volume, until: Promise<unknown>, tag: string): Promise<number> {
  let done = false;
  void until.then(() => (done = true));
  let ops = 0;
  await vol.mkdir(`/fg-${tag}`);
  const t0 = now();
  do {
    await vol.writeFile(`/fg-${tag}/${ops}`, "hello\n");
    ops++;
  } while (!done && ops < FG_OPS);
  const rate = (ops * 1000) / Math.max(1e-6, now() - t0);
  await until;
  return rate;
}

async function bigFiles(mode: "off" | "on"): Promise<Result> {
  const size = Math.max(256 << 20, FILES * EXTENTS * 2 * BS * 1.1 + (128 << 20));
  const dev = new MemoryDevice(size);
  await mkfs(dev, { blockSize: BS });
  const vol = await mount(dev, { inodegc: mode === "on" ? { lanes: 4 } : false });
  await vol.mkdir("/vm");
  const blk = new Uint8Array(BS).fill(0xa5);
  for (let f = 0; f < FILES; f++) {
    const fh = await vol.open(`/vm/disk${f}.raw`, "w");
    for (let e = 0; e < EXTENTS; e++) await fh.write(blk, 0, BS, e * 2 * BS);
    await fh.close();
  }
  await vol.sync();
  return measure(vol, dev, mode, `${FILES} files × ${EXTENTS} extents`, Array.from({ length: FILES }, (_, f) => `/vm/disk${f}.raw`), undefined);
}

async function tree(mode: "off" | "on"): Promise<Result> {
  const dev = new MemoryDevice(512 << 20);
  await mkfs(dev, { blockSize: BS });
  const vol = await mount(dev, { inodegc: mode === "on" ? { lanes: 4 } : false });
  const perDir = 200;
  for (let i = 0; i < TREE; i++) {
    if (i % perDir === 0) await vol.mkdir(`/build/d${i / perDir}`, { recursive: true });
    await vol.writeFile(`/build/d${Math.floor(i / perDir)}/o${i}.o`, "x".repeat(1 + (i % 3000)));
  }
  await vol.sync();
  return measure(vol, dev, mode, `${TREE}-file tree (rm -r)`, [], "/build");
}

async function measure(vol: Volume, dev: MemoryDevice, mode: "off" | "on", workload: string, files: string[], rmTree: string | undefined): Promise<Result> {
  const lat: number[] = [];
  const c0 = process.cpuUsage();
  const cpuMs = () => {
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const t0 = now();
  if (rmTree) {
    // rm -r as a user would do it, one unlink per file (timed individually).
    for (const d of await vol.readdir(rmTree)) {
      for (const f of await vol.readdir(`${rmTree}/${d}`)) {
        const s = now();
        await vol.unlink(`${rmTree}/${d}/${f}`);
        lat.push(now() - s);
      }
      await vol.rmdir(`${rmTree}/${d}`);
    }
    await vol.rmdir(rmTree);
  } else {
    for (const p of files) {
      const s = now();
      await vol.unlink(p);
      lat.push(now() - s);
    }
  }
  const foregroundMs = now() - t0;
  const foregroundCpuMs = cpuMs();
  let untilFreeCpuMs = 0;
  const drained = vol.statfs().then(() => {
    untilFreeCpuMs = cpuMs();
    return now() - t0;
  });
  const fgOpsPerSec = await foreground(vol, drained, mode);
  const untilFreeMs = await drained;
  await vol.unmount();
  await fsck(dev, `${workload} inodegc ${mode}`);
  lat.sort((a, b) => a - b);
  return { workload, mode, unlinkMedianMs: pct(lat, 0.5), unlinkP99Ms: pct(lat, 0.99), foregroundMs, untilFreeMs, foregroundCpuMs, untilFreeCpuMs, fgOpsPerSec };
}

async function main(): Promise<void> {
  const results: Result[] = [];
  for (const w of [bigFiles, tree]) {
    for (const mode of ["off", "on"] as const) {
      const r = await w(mode);
      results.push(r);
      console.error(`${r.workload} ${mode}: median ${formatMs(r.unlinkMedianMs)} p99 ${formatMs(r.unlinkP99Ms)} fg ${formatMs(r.foregroundMs)} free ${formatMs(r.untilFreeMs)}`);
    }
  }
  const header = ["workload", "inodegc", "unlink median", "unlink p99", "foreground phase (CPU)", "until space free (CPU)", "foreground writes/s while draining", "median off ÷ on", "foreground off ÷ on", "until free off ÷ on"];
  const rows: string[][] = [];
  for (const r of results) {
    const off = results.find((o) => o.workload === r.workload && o.mode === "off")!;
    rows.push([
      r.workload, r.mode, formatMs(r.unlinkMedianMs), formatMs(r.unlinkP99Ms),
      `${formatMs(r.foregroundMs)} (${formatMs(r.foregroundCpuMs)})`, `${formatMs(r.untilFreeMs)} (${formatMs(r.untilFreeCpuMs)})`,
      r.fgOpsPerSec.toFixed(0),
      r.mode === "on" ? formatRatio(off.unlinkMedianMs / r.unlinkMedianMs) : "",
      r.mode === "on" ? formatRatio(off.foregroundMs / r.foregroundMs) : "",
      r.mode === "on" ? formatRatio(off.untilFreeMs / r.untilFreeMs) : "",
    ]);
  }
  console.log(textTable(header, rows));
  const machine = machineInfo();
  writeResults("unlink", { date: new Date().toISOString(), machine, files: FILES, extents: EXTENTS, tree: TREE, results });
  if (README) {
    renderIntoReadme("unlink", [
      markdownTable(header, rows),
      "",
      `One run, both modes side by side (${FILES} files × ${EXTENTS} extents, ${TREE}-file tree; 4 lanes). "until space free" = unlink phase + statfs() (which drains every lane); (CPU) = the process's CPU time over the same span, less distorted than wall time when the shared machine preempts the bench; "foreground writes/s" = up to ${FG_OPS} small writeFile calls while statfs drains (off: nothing to drain, so an idle volume). Load average at start: ${LOAD0.map((l) => l.toFixed(1)).join(" ")}. Measured ${new Date().toISOString().slice(0, 10)} on ${machine.cpu} ×${machine.cpus}, node ${machine.node}, commit ${machine.commit?.slice(0, 12) ?? "?"}.`,
    ].join("\n"));
  }
}

await main();
