/**
 * bench/mkfs: our mkfs against native `mke2fs -t ext4`, on sparse image files of 1 GiB to
 * 1 TiB, with lazy inode-table initialisation and without.
 *
 * What is compared, and why these four figures:
 *   - native: `mke2fs -t ext4 -F -q IMG SIZE`, spawned, wall time. The strongest peer a
 *     user has; a whole process, so it includes exec and its own file I/O.
 *   - ours, in-process: FileDevice.open + mkfs() in this (warm) process. What a program
 *     embedding the library pays per image; compared with the whole mke2fs process because
 *     mke2fs has no in-process form. The engine's compilation is paid once per process,
 *     so it is excluded here and reported once as the "cold" first call.
 *   - ours, whole process: `node dist/cli.js mkfs IMG SIZE -q`, spawned, wall time. What a
 *     shell user pays, Node start-up and engine compilation included.
 *   - ours on a MemoryDevice: the engine and bindings alone, no file I/O, to tell how much
 *     of the in-process time is our computation and how much is the host file system.
 * Every ratio is ours ÷ native measured in the same run, rounds interleaved (lib.ts).
 *
 * Correctness guard: every configuration's images (in-process and CLI) are checked once
 * with `e2fsck -fn` (untimed); our geometry (blocks, inodes) is compared with mke2fs's so
 * the two sides do the same amount of work. A failed check marks the row INVALID and the
 * bench exits 1, so a broken mkfs is never reported as a fast one.
 *
 * Disk safety: images are deleted after every run. mke2fs zeroes journals and, non-lazy,
 * inode tables with fallocate on files, which allocates (unwritten) host blocks — about
 * 1.7 % of the image size, ~18 GiB for 1 TiB non-lazy — so each configuration first checks
 * the free space where the images live and is skipped, with a note, when it is short.
 *
 * Usage: tsx bench/mkfs.ts [--sizes 1G,16G,64G,1T] [--budget SECONDS] [--max-rounds N]
 *        [--dir DIR] [--no-readme]
 */
import { mkdtempSync, statSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { parseArgs } from "node:util";
import { mkfs, MemoryDevice, FileDevice, type MkfsResult } from "../bindings/node.ts";
import {
  GiB, ROOT, TiB, canMeasureRss, formatBytes, formatMs, formatRatio, freeBytes, machineInfo, markdownTable,
  mustRun, now, peakRss, removeAndSettle, removeQuietly, renderIntoReadme, rounds, runCommand, summarize, textTable, versionOf,
  writeResults, type Summary,
} from "./lib.ts";

const { values: argv } = parseArgs({
  options: {
    sizes: { type: "string", default: "1G,16G,64G,1T" },
    budget: { type: "string", default: "20" },
    "max-rounds": { type: "string", default: "9" },
    dir: { type: "string" },
    "no-readme": { type: "boolean", default: false },
  },
});

const UNITS: Record<string, number> = { M: 1 << 20, G: GiB, T: TiB };
function parseSizeArg(s: string): { label: string; bytes: number } {
  const m = /^(\d+)([MGT])$/i.exec(s.trim());
  if (!m) throw new Error(`bad size '${s}': use e.g. 1G, 64G, 1T`);
  const unit = m[2]!.toUpperCase();
  return { label: `${m[1]} ${unit === "M" ? "MiB" : unit + "iB"}`, bytes: Number(m[1]) * UNITS[unit]! };
}
const sizes = argv.sizes!.split(",").map((s) => ({ arg: s.trim().toUpperCase(), ...parseSizeArg(s) }));
const budgetMs = Number(argv.budget) * 1000;
const maxRounds = Number(argv["max-rounds"]);

function sbin(name: string): string {
  for (const d of ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]) if (existsSync(join(d, name))) return join(d, name);
  throw new Error(`${name} not found: install e2fsprogs`);
}
const MKE2FS = sbin("mke2fs");
const E2FSCK = sbin("e2fsck");
const DUMPE2FS = sbin("dumpe2fs");
const CLI = join(ROOT, "dist", "cli.js");
if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run node scripts/build.mjs first (npm run bench:mkfs does)`);

const workDir = mkdtempSync(join(argv.dir ?? tmpdir(), "ext4-wasm-bench-mkfs-"));
process.on("exit", () => removeQuietly(workDir));
// An interrupted run must not leave a multi-GiB image behind.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    removeQuietly(workDir);
    process.exit(130);
  });
}
const img = (name: string) => join(workDir, `${name}.img`);

/** Host bytes actually allocated to a file (sparse files: far below its size). */
const allocated = (path: string) => statSync(path).blocks * 512;

type Variant = "native" | "inproc" | "cli" | "memory";
// In-process before the CLI: in the first round its time tells whether the CLI run is slow
// enough to carry the peak-RSS wrapper (see runCase).
const VARIANTS: Variant[] = ["native", "inproc", "cli", "memory"];

interface Geometry {
  blocks: number;
  inodes: number;
}

interface CaseResult {
  size: string;
  sizeBytes: number;
  lazy: boolean;
  samples: Record<Variant, number[]>;
  summary: Record<Variant, Summary>;
  /** Ratios of the medians (the table's figures). */
  ratios: { inprocVsNative: number; cliVsNative: number; memoryVsNative: number };
  /** Median over rounds of each round's own ratio: less sensitive to load bursts spanning rounds. */
  pairedRatios: { inprocVsNative: number; cliVsNative: number; memoryVsNative: number };
  warmupDiscarded: boolean;
  rssBytes: { cli: number | null; native: number | null };
  allocatedBytes: { ours: number; native: number };
  geometry: { ours: Geometry; native: Geometry };
  ours: Pick<MkfsResult, "requests" | "bytesWritten" | "bytesZeroed" | "groups" | "journalBlocks">;
  valid: { inproc: boolean; cli: boolean; geometryMatches: boolean };
  problems: string[];
}

async function inProcess(path: string, size: number, lazy: boolean): Promise<{ ms: number; r: MkfsResult }> {
  removeAndSettle(path);
  const t0 = now();
  const dev = await FileDevice.open(path, { size, create: true });
  const r = await mkfs(dev, { lazyItableInit: lazy });
  const ms = now() - t0;
  await dev.close();
  return { ms, r };
}

async function inMemory(size: number, lazy: boolean): Promise<{ ms: number; r: MkfsResult }> {
  const t0 = now();
  const dev = new MemoryDevice(size);
  const r = await mkfs(dev, { lazyItableInit: lazy });
  const ms = now() - t0;
  await dev.close();
  return { ms, r };
}

const cliArgs = (path: string, sizeArg: string, lazy: boolean) =>
  [CLI, "mkfs", path, sizeArg, ...(lazy ? [] : ["--no-lazy-itable-init"]), "-q"];
const nativeArgs = (path: string, sizeArg: string, lazy: boolean) =>
  ["-t", "ext4", "-F", "-q", ...(lazy ? [] : ["-E", "lazy_itable_init=0"]), path, sizeArg];

async function geometryOf(path: string): Promise<Geometry> {
  const out = (await mustRun(DUMPE2FS, ["-h", path])).stdout;
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(out)?.[1]);
  return { blocks: field("Block count"), inodes: field("Inode count") };
}

async function fsck(path: string, problems: string[], what: string): Promise<boolean> {
  const r = await runCommand(E2FSCK, ["-fn", path], { timeoutMs: 600_000 });
  if (r.code === 0) return true;
  problems.push(`e2fsck -fn on the ${what} image exited ${r.code}: ${(r.stdout + r.stderr).trim().split("\n").slice(0, 8).join(" / ")}`);
  return false;
}

/** Median of per-round ratios a[i] / b[i]. */
const paired = (a: number[], b: number[]) => summarize(a.map((x, i) => x / b[i]!)).median;

/** Free space a configuration needs where the images live (mke2fs's fallocated tables + margin). */
const needBytes = (size: number) => Math.ceil(size * 0.02) + 2 * GiB;

async function runCase(sizeArg: string, label: string, size: number, lazy: boolean): Promise<CaseResult> {
  const problems: string[] = [];
  const pNative = img("native");
  const pCli = img("cli");
  const pIn = img("inproc");
  let ours: MkfsResult | undefined;
  let memResult: MkfsResult | undefined;
  let nativeGeometry: Geometry | undefined;
  const alloc = { ours: 0, native: 0 };
  let cliRss: number | null = null;
  let lastCliMs = 0;

  const { samples, warmupDiscarded } = await rounds(
    async (i) => {
      const out: Record<string, number> = {};
      // Rotate the order each round so no variant always runs right after the same one.
      const order = VARIANTS.map((_, k) => VARIANTS[(k + i) % VARIANTS.length]!);
      for (const v of order) {
        if (v === "native") {
          removeAndSettle(pNative);
          const r = await mustRun(MKE2FS, nativeArgs(pNative, sizeArg, lazy), { timeoutMs: 600_000 });
          out.native = r.ms;
          if (!nativeGeometry) {
            nativeGeometry = await geometryOf(pNative);
            alloc.native = allocated(pNative);
          }
          removeAndSettle(pNative);
        } else if (v === "cli") {
          removeAndSettle(pCli);
          // A slow case pays nothing noticeable for the GNU time wrapper: take peak RSS
          // from this timed run instead of a separate, equally slow untimed one.
          if (Math.max(lastCliMs, out.inproc ?? 0) > 2000 && cliRss === null && canMeasureRss()) {
            const m = (await peakRss(process.execPath, cliArgs(pCli, sizeArg, lazy), { timeoutMs: 1_800_000 }))!;
            if (m.result.code !== 0) throw new Error(`our CLI failed (${m.result.code}): ${m.result.stderr}`);
            out.cli = m.result.ms;
            cliRss = m.rss;
          } else {
            out.cli = (await mustRun(process.execPath, cliArgs(pCli, sizeArg, lazy), { timeoutMs: 1_800_000 })).ms;
          }
          lastCliMs = out.cli;
          // Kept until the next round or validation.
        } else if (v === "inproc") {
          const { ms, r } = await inProcess(pIn, size, lazy);
          out.inproc = ms;
          ours = r;
          // Kept until the next round or validation.
        } else {
          const { ms, r } = await inMemory(size, lazy);
          out.memory = ms;
          memResult = r;
        }
      }
      return out;
    },
    { budgetMs, maxRounds },
  );

  // Validation (untimed): the last in-process and CLI images, our geometry against mke2fs's.
  alloc.ours = allocated(pIn);
  const validIn = await fsck(pIn, problems, "in-process");
  removeAndSettle(pIn);
  const validCli = await fsck(pCli, problems, "CLI");
  removeAndSettle(pCli);
  const g = { blocks: ours!.blocksCount, inodes: ours!.inodesCount };
  const geometryMatches = g.blocks === nativeGeometry!.blocks && g.inodes === nativeGeometry!.inodes;
  if (!geometryMatches) {
    problems.push(`geometry differs: ours ${g.blocks} blocks / ${g.inodes} inodes, mke2fs ${nativeGeometry!.blocks} / ${nativeGeometry!.inodes}`);
  }
  if (memResult!.blocksCount !== g.blocks || memResult!.inodesCount !== g.inodes || memResult!.freeBlocks !== ours!.freeBlocks) {
    problems.push("MemoryDevice and FileDevice runs produced different layouts");
  }

  // Peak RSS (untimed runs) where the timed rounds did not already give it.
  let nativeRss: number | null = null;
  if (canMeasureRss()) {
    if (cliRss === null) {
      const m = (await peakRss(process.execPath, cliArgs(pCli, sizeArg, lazy), { timeoutMs: 1_800_000 }))!;
      if (m.result.code !== 0) throw new Error(`our CLI failed (${m.result.code}): ${m.result.stderr}`);
      cliRss = m.rss;
      removeAndSettle(pCli);
    }
    const m = (await peakRss(MKE2FS, nativeArgs(pNative, sizeArg, lazy), { timeoutMs: 600_000 }))!;
    if (m.result.code !== 0) throw new Error(`mke2fs failed (${m.result.code}): ${m.result.stderr}`);
    nativeRss = m.rss;
    removeAndSettle(pNative);
  }

  const s = samples as Record<Variant, number[]>;
  const summary = {
    native: summarize(s.native),
    inproc: summarize(s.inproc),
    cli: summarize(s.cli),
    memory: summarize(s.memory),
  };
  return {
    size: label,
    sizeBytes: size,
    lazy,
    samples: s,
    summary,
    ratios: {
      inprocVsNative: summary.inproc.median / summary.native.median,
      cliVsNative: summary.cli.median / summary.native.median,
      memoryVsNative: summary.memory.median / summary.native.median,
    },
    pairedRatios: {
      inprocVsNative: paired(s.inproc, s.native),
      cliVsNative: paired(s.cli, s.native),
      memoryVsNative: paired(s.memory, s.native),
    },
    warmupDiscarded,
    rssBytes: { cli: cliRss, native: nativeRss },
    allocatedBytes: alloc,
    geometry: { ours: g, native: nativeGeometry! },
    ours: {
      requests: ours!.requests,
      bytesWritten: ours!.bytesWritten,
      bytesZeroed: ours!.bytesZeroed,
      groups: ours!.groups,
      journalBlocks: ours!.journalBlocks,
    },
    valid: { inproc: validIn, cli: validCli, geometryMatches },
    problems,
  };
}

async function main(): Promise<number> {
  const started = new Date();
  const t0 = now();
  const machine = machineInfo(workDir);
  const tools = {
    mke2fs: await versionOf(MKE2FS, ["-V"]),
    e2fsck: await versionOf(E2FSCK, ["-V"]),
  };
  console.log(`mkfs bench: ${machine.cpu} ×${machine.cpus}, node ${machine.node}, ${tools.mke2fs}`);
  console.log(`images in ${workDir} (${machine.tmpdirFs ?? "?"}), ${formatBytes(freeBytes(workDir))} free\n`);

  // The first mkfs() of the process compiles the engine: measure that once, on its own.
  const cold = await inProcess(img("cold"), GiB, true);
  removeAndSettle(img("cold"));
  const coldWarm = await inProcess(img("cold"), GiB, true);
  removeAndSettle(img("cold"));
  console.log(`cold first mkfs() in this process (1 GiB, lazy, engine compile included): ${formatMs(cold.ms)}; the same call warm: ${formatMs(coldWarm.ms)}`);

  // The floor under every whole-process figure of ours: starting Node and doing nothing.
  const nodeStart: number[] = [];
  for (let i = 0; i < 6; i++) nodeStart.push((await mustRun(process.execPath, ["-e", "0"])).ms);
  nodeStart.shift(); // warm-up
  const nodeStartup = summarize(nodeStart);
  const nodeRss = (await peakRss(process.execPath, ["-e", "0"]))?.rss ?? null;
  console.log(`node start-up (node -e 0): ${formatMs(nodeStartup.median)} median of ${nodeStartup.n}\n`);

  const cases: CaseResult[] = [];
  const skipped: { size: string; lazy: boolean; reason: string }[] = [];
  for (const { arg, label, bytes } of sizes) {
    for (const lazy of [true, false]) {
      const free = freeBytes(workDir);
      if (free < needBytes(bytes)) {
        const reason = `only ${formatBytes(free)} free, need ${formatBytes(needBytes(bytes))}`;
        skipped.push({ size: label, lazy, reason });
        console.log(`${label} ${lazy ? "lazy" : "non-lazy"}: SKIPPED (${reason})`);
        continue;
      }
      const c = await runCase(arg, label, bytes, lazy);
      cases.push(c);
      const m = c.summary;
      console.log(
        `${label.padEnd(7)} ${(lazy ? "lazy" : "non-lazy").padEnd(8)}  mke2fs ${formatMs(m.native.median).padStart(8)}` +
          `  in-proc ${formatMs(m.inproc.median).padStart(8)} (${formatRatio(c.ratios.inprocVsNative)})` +
          `  CLI ${formatMs(m.cli.median).padStart(8)} (${formatRatio(c.ratios.cliVsNative)})` +
          `  memory ${formatMs(m.memory.median).padStart(8)}  n=${m.native.n}`,
      );
      for (const p of c.problems) console.log(`  !! ${p}`);
    }
  }

  const header = [
    "size", "inode tables", "mke2fs", "ours in-process", "ours CLI", "ours MemoryDevice",
    "in-process ÷ mke2fs", "CLI ÷ mke2fs", "peak RSS CLI / mke2fs", "host disk used ours / mke2fs", "n",
  ];
  const align: ("l" | "r")[] = ["l", "l", "r", "r", "r", "r", "r", "r", "r", "r", "r"];
  const rss = (n: number | null) => (n === null ? "–" : `${(n / 2 ** 20).toFixed(0)} MiB`);
  const rows = cases.map((c) => {
    const bad = !c.valid.inproc || !c.valid.cli;
    return [
      c.size,
      (c.lazy ? "lazy" : "zeroed") + (bad ? " **INVALID**" : ""),
      formatMs(c.summary.native.median),
      formatMs(c.summary.inproc.median),
      formatMs(c.summary.cli.median),
      formatMs(c.summary.memory.median),
      formatRatio(c.ratios.inprocVsNative),
      formatRatio(c.ratios.cliVsNative),
      `${rss(c.rssBytes.cli)} / ${rss(c.rssBytes.native)}`,
      `${formatBytes(c.allocatedBytes.ours)} / ${formatBytes(c.allocatedBytes.native)}`,
      String(c.summary.native.n),
    ];
  });
  const totalS = (now() - t0) / 1000;
  console.log("\n" + textTable(header, rows, align));
  for (const s of skipped) console.log(`skipped: ${s.size} ${s.lazy ? "lazy" : "non-lazy"}: ${s.reason}`);
  console.log(`\ntotal ${totalS.toFixed(0)} s`);

  const results = {
    bench: "mkfs",
    date: started.toISOString(),
    durationSeconds: totalS,
    machine,
    tools,
    settings: { budgetSecondsPerCase: budgetMs / 1000, maxRounds, sizes: sizes.map((s) => s.arg) },
    nodeStartupMs: { samples: nodeStart, ...nodeStartup },
    nodeStartupRssBytes: nodeRss,
    cold: { firstCallMs: cold.ms, sameCallWarmMs: coldWarm.ms, note: "1 GiB lazy FileDevice; first mkfs() in the process includes engine compilation" },
    cases,
    skipped,
  };
  console.log(`wrote ${writeResults("mkfs", results)}`);

  if (!argv["no-readme"]) {
    const day = started.toISOString().slice(0, 10);
    const body = [
      markdownTable(header, rows, align),
      "",
      `Medians of n interleaved rounds; ratios are ours ÷ mke2fs from the same run (below 1× = we are faster). ` +
        `Measured ${day} on ${machine.cpu} ×${machine.cpus}, ${machine.memBytes > 0 ? formatBytes(machine.memBytes) : "?"} RAM, ` +
        `Linux ${machine.kernel}, images on ${machine.tmpdirFs ?? "?"}; node ${machine.node}; ${tools.mke2fs}` +
        (machine.commit ? `; commit ${machine.commit.slice(0, 12)}` : "") + ".",
      `Cold first \`mkfs()\` in a process (1 GiB lazy, engine compilation included): ${formatMs(cold.ms)} (warm: ${formatMs(coldWarm.ms)}). ` +
        `Node start-up alone (\`node -e 0\`, the floor under every "ours CLI" figure): ${formatMs(nodeStartup.median)}` +
        (nodeRss !== null ? `, peak RSS ${(nodeRss / 2 ** 20).toFixed(0)} MiB.` : "."),
      ...skipped.map((s) => `Skipped ${s.size} ${s.lazy ? "lazy" : "zeroed"}: ${s.reason}.`),
    ].join("\n");
    console.log(`rendered into ${renderIntoReadme("mkfs", body)}`);
  }
  const invalid = cases.some((c) => !c.valid.inproc || !c.valid.cli);
  if (invalid) console.error("\nSOME IMAGES FAILED e2fsck: the times above measure a broken mkfs");
  return invalid ? 1 : 0;
}

process.exitCode = await main();
