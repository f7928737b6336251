/**
 * bench/cross-runtime — BENCHMARKS.md workload 6: populate, read and db (./workload.ts)
 * on Node, Deno and Chromium, each on a MemoryDevice and on its own file device
 * (FileDevice over node:fs, FileDevice over Deno.FsFile, OpfsDevice in a worker), in one
 * command; the figure that matters is each runtime's speed as a ratio of Node's on the
 * same workload and device kind (target: Deno and Chromium ≥ 0.7×).
 *
 * Why it is built this way:
 * - Same code everywhere. The three runner entries are bundled here with esbuild from the
 *   same sources, each importing its runtime's *built* entry (dist/node.js, dist/deno.js,
 *   dist/browser.js) — what users of the package load — so the engine and bindings timed
 *   are byte-identical across runtimes and only the runtime differs.
 * - Same input everywhere. The tree is generated in memory by a seeded generator each
 *   runtime runs before its timer starts (a browser has no host tree; see workload.ts).
 * - Interleaved rounds. Each round runs every runtime once (a fresh process, or a fresh
 *   page and worker for Chromium, each warmed up on a small run first), rotating the
 *   order, so background load on this shared machine hits every runtime alike; medians
 *   over rounds are reported.
 * - Broken runs are not reported. Every round's images — every runtime, both devices —
 *   go through `e2fsck -fn`, and `debugfs dump` of sample files and of the whole db file
 *   must equal what the generator says was written; any failure exits 1 without touching
 *   bench/README.md.
 *
 *   npx tsx bench/cross-runtime/run.ts [--rounds 3] [--files 300] [--db-mib 64] [--ops 1500]
 *                                      [--only node,deno,chromium] [--no-readme]
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import { BENCH_DIR, MiB, ROOT, formatRatio, machineInfo, markdownTable, renderIntoReadme, runCommand, summarize, textTable, versionOf, writeResults } from "../lib.ts";
import { DEFAULT_SIZES, dbPattern, dbWrites, generateTree, type DeviceRun, type RepResult, type Sizes } from "./workload.ts";
import { ratioChart, type ChartGroup } from "./chart.ts";
// @ts-expect-error plain .mjs helpers shared with scripts/test-browser.mjs
import { startServer } from "../../scripts/web.mjs";
// @ts-expect-error plain .mjs helpers shared with scripts/test-browser.mjs
import { CHROMIUM, haveChromium, launchChromiumPersistent, reportMissingChromium } from "../../scripts/chromium.mjs";
import type { BrowserContext } from "playwright-core";

const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    files: { type: "string", default: String(DEFAULT_SIZES.files) },
    "db-mib": { type: "string", default: String(DEFAULT_SIZES.dbBytes / MiB) },
    ops: { type: "string", default: String(DEFAULT_SIZES.dbOps) },
    only: { type: "string", default: "node,deno,chromium" },
    "no-readme": { type: "boolean", default: false },
  },
});
const ROUNDS = Number(opt.rounds);
const sizes: Sizes = { ...DEFAULT_SIZES, files: Number(opt.files), dbBytes: Number(opt["db-mib"]) * MiB, dbOps: Number(opt.ops) };
const RUNTIMES = opt.only!.split(",").filter(Boolean) as Runtime[];
type Runtime = "node" | "deno" | "chromium";
type Kind = "memory" | "file";
const WORKLOADS = ["populate", "read", "db"] as const;
type Workload = (typeof WORKLOADS)[number];

const OUT = join(ROOT, ".tmp", "xrt");
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const DIR = mkdtempSync(join(tmpdir(), "bench-xrt-"));

// ---- bundles: one per runtime, same sources, the runtime's built entry as the API ----

async function bundle(entry: string, out: string, platform: "node" | "browser", api: RegExp, apiPath: string): Promise<void> {
  await esbuild.build({
    entryPoints: [join(BENCH_DIR, "cross-runtime", entry)],
    outfile: join(OUT, out),
    bundle: true,
    format: "esm",
    platform,
    target: "es2022",
    logLevel: "warning",
    plugins: [{ name: "use-built-entry", setup: (b) => b.onResolve({ filter: api }, () => ({ path: apiPath, external: true })) }],
  });
}

// ---- running one round of a runtime ----

interface RoundOutput {
  runs: DeviceRun[];
  /** Image files on the host, by device kind. */
  images: Partial<Record<Kind, string>>;
}

function spawnRunner(cmd: string, args: string[]): Promise<RoundOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const line = stdout.split("\n").find((l) => l.startsWith("XRT-RESULT "));
      if (code !== 0 || !line) return reject(new Error(`${cmd} exited ${code}:\n${stderr || stdout}`));
      resolve(JSON.parse(line.slice("XRT-RESULT ".length)) as RoundOutput);
    });
  });
}

function hostJob(): string {
  return JSON.stringify({ sizes, reps: 1, warmup: true, dir: DIR, devices: ["memory", "file"] });
}

const runNode = () => spawnRunner(process.execPath, [join(OUT, "runner-node.mjs"), hostJob()]);
const runDeno = () =>
  spawnRunner(DENO, ["run", "--no-check", "--no-lock", `--allow-read=${ROOT},${DIR}`, `--allow-write=${DIR}`, join(OUT, "runner-deno.mjs"), hostJob()]);

/**
 * One Chromium round: a fresh page (new JS realm, new worker) on the served origin, the
 * runner in a worker, images downloaded. The context is a persistent profile, not an
 * incognito-like one: there OPFS is kept in memory behind a slower path that no user
 * with a normal profile gets, and the OPFS figures would measure that instead.
 */
async function runChromium(context: BrowserContext, origin: string, workerSource: string): Promise<RoundOutput> {
  const page = await context.newPage();
  try {
    const log: string[] = [];
    page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
    // An empty page on the server's origin (so OPFS and /dist/browser.js are same-origin);
    // the worker runs from a Blob URL, so the bench needs nothing added to the server.
    const blank = new URL("/xrt-bench.html", origin).href;
    await page.route(blank, (r) => r.fulfill({ contentType: "text/html", body: "<!doctype html><title>xrt</title><body></body>" }));
    await page.goto(blank);
    const runs = await page.evaluate(async ({ src, job }) => {
      const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      const w = new Worker(url, { type: "module" });
      const out = await new Promise<{ runs: unknown[]; images: Record<string, Blob> }>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => reject(new Error(`worker: ${e.message}`));
        w.postMessage(job);
      });
      w.terminate();
      (window as unknown as { xrtImages: Record<string, Blob> }).xrtImages = out.images;
      return out.runs;
    }, { src: workerSource.replaceAll('"/dist/browser.js"', JSON.stringify(new URL("/dist/browser.js", origin).href)), job: { sizes, reps: 1, warmup: true } })
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${log.join("\n")}`);
      });
    const images: RoundOutput["images"] = {};
    for (const kind of ["memory", "file"] as const) {
      const has = await page.evaluate((k) => !!(window as unknown as { xrtImages: Record<string, Blob> }).xrtImages[k], kind);
      if (!has) continue;
      const [dl] = await Promise.all([
        page.waitForEvent("download", { timeout: 120_000 }),
        page.evaluate((k) => {
          const a = document.createElement("a");
          a.href = URL.createObjectURL((window as unknown as { xrtImages: Record<string, Blob> }).xrtImages[k]!);
          a.download = `chromium-${k}.img`;
          document.body.append(a);
          a.click();
        }, kind),
      ]);
      const path = join(DIR, `chromium-${kind}.img`);
      await dl.saveAs(path);
      images[kind] = path;
    }
    return { runs: runs as DeviceRun[], images };
  } finally {
    await page.close();
  }
}

// ---- judging the images: e2fsck -fn, and debugfs dumps against the generator ----

const tree = generateTree(sizes);
const expectedDb = (() => {
  const p = dbPattern(sizes.dbBytes, sizes.seed);
  const covered = new Uint8Array(sizes.dbBytes >>> 14);
  for (const [pos, io] of dbWrites(sizes)) covered.fill(1, pos >>> 14, (pos + io) >>> 14);
  for (let s = 0; s < covered.length; s++) if (!covered[s]) p.fill(0, s << 14, (s + 1) << 14);
  return p;
})();
const samples = (() => {
  const biggest = tree.files.reduce((a, b) => (b.data.length > a.data.length ? b : a));
  return [tree.files[0]!, biggest, tree.files[tree.files.length - 1]!];
})();

/** Problems found in one image (empty = clean and holding what was written). */
async function judge(image: string): Promise<string[]> {
  const problems: string[] = [];
  const fsck = await runCommand("/usr/sbin/e2fsck", ["-fn", image]);
  if (fsck.code !== 0) problems.push(`e2fsck -fn exit ${fsck.code}:\n${fsck.stdout}${fsck.stderr}`);
  const dumps: [string, Uint8Array][] = [...samples.map((f) => [f.path, f.data] as [string, Uint8Array]), ["/db", expectedDb]];
  for (const [path, want] of dumps) {
    const out = join(DIR, "dump.bin");
    rmSync(out, { force: true });
    const r = await runCommand("/usr/sbin/debugfs", ["-R", `dump ${path} ${out}`, image]);
    let got: Buffer | null = null;
    try {
      got = readFileSync(out);
    } catch {
      problems.push(`debugfs dump ${path}: nothing (${r.stderr.trim()})`);
    }
    if (got && Buffer.compare(got, Buffer.from(want.buffer, want.byteOffset, want.length)) !== 0) {
      problems.push(`debugfs dump ${path}: ${got.length} bytes differ from the ${want.length} written`);
    }
  }
  rmSync(join(DIR, "dump.bin"), { force: true });
  return problems;
}

// ---- main ----

const rate = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);
function metric(w: Workload, r: RepResult): number {
  return w === "populate" ? rate(r.treeBytes, r.populateMs) : w === "read" ? rate(r.treeBytes, r.readMs) : rate(r.dbWriteBytes, r.dbMs);
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  await bundle("runner-node.ts", "runner-node.mjs", "node", /bindings[\\/]node\.ts$/, join(ROOT, "dist", "node.js"));
  await bundle("runner-deno.ts", "runner-deno.mjs", "node", /dist[\\/]deno\.js$/, join(ROOT, "dist", "deno.js"));
  await bundle("runner-browser.ts", "runner-browser.js", "browser", /bindings[\\/]browser\.ts$/, "/dist/browser.js");
  const workerSource = readFileSync(join(OUT, "runner-browser.js"), "utf8");

  const want = new Set(RUNTIMES);
  let browser: BrowserContext | null = null;
  let server: { close(): void } | null = null;
  let origin = "";
  if (want.has("chromium")) {
    if (!haveChromium()) {
      reportMissingChromium("THE CHROMIUM PART OF THE BENCH");
      process.exitCode = 1;
      want.delete("chromium");
    } else {
      const s = await startServer({ port: 0 });
      server = s.server;
      origin = s.url;
      browser = await launchChromiumPersistent(join(DIR, "chromium-profile"), { acceptDownloads: true });
    }
  }
  const order = RUNTIMES.filter((r) => want.has(r));
  const results: Record<string, RepResult[]> = {};
  const deviceNames: Record<string, string> = {};
  const failures: string[] = [];
  const checked: string[] = [];
  const t0 = performance.now();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const rotated = order.map((_, i) => order[(i + round) % order.length]!);
      for (const rt of rotated) {
        const started = performance.now();
        let out: RoundOutput;
        try {
          out = rt === "node" ? await runNode() : rt === "deno" ? await runDeno() : await runChromium(browser!, origin, workerSource);
        } catch (e) {
          failures.push(`${rt} round ${round + 1}: ${(e as Error).message}`);
          continue;
        }
        for (const run of out.runs) {
          const key = `${rt}/${run.device}`;
          deviceNames[key] = run.deviceName;
          if (run.error) failures.push(`${key} round ${round + 1}: ${run.error}`);
          else (results[key] ??= []).push(...run.reps);
        }
        for (const [kind, image] of Object.entries(out.images)) {
          const problems = await judge(image!);
          if (problems.length) failures.push(`${rt}/${kind} round ${round + 1} image: ${problems.join("\n")}`);
          else checked.push(`${rt}/${kind}`);
          rmSync(image!, { force: true });
        }
        const line = out.runs.map((r) => (r.error ? `${r.device} FAILED` : `${r.device}: ${WORKLOADS.map((w) => `${w} ${metric(w, r.reps[0]!).toFixed(0)}`).join(", ")} MiB/s`)).join(" | ");
        console.log(`round ${round + 1} ${rt.padEnd(8)} ${((performance.now() - started) / 1000).toFixed(1)} s  ${line}`);
      }
    }
  } finally {
    await browser?.close();
    server?.close();
  }
  const totalS = (performance.now() - t0) / 1000;

  // ---- table: median MiB/s per runtime, ratio to Node per workload and device kind ----
  const med = (key: string, w: Workload) => (results[key]?.length ? summarize(results[key]!.map((r) => metric(w, r))).median : null);
  const others = order.filter((r) => r !== "node");
  const header = ["workload", "device", ...order.map((r) => `${r} MiB/s`), ...others.map((r) => `${r} ÷ node`), "n"];
  const rows: string[][] = [];
  const groups: ChartGroup[] = [];
  const ratios: Record<string, Record<string, number | null>> = {};
  const medians: Record<string, Record<string, number | null>> = {};
  for (const w of WORKLOADS) {
    for (const kind of ["memory", "file"] as const) {
      const m = Object.fromEntries(order.map((r) => [r, med(`${r}/${kind}`, w)]));
      const node = m.node ?? null;
      const rat = Object.fromEntries(order.map((r) => [r, node && m[r] !== null ? m[r]! / node : null]));
      medians[`${w}/${kind}`] = m;
      ratios[`${w}/${kind}`] = rat;
      const devLabel = kind === "memory" ? "memory" : "file (FileDevice / OPFS)";
      const n = Math.min(...order.map((r) => results[`${r}/${kind}`]?.length ?? 0));
      rows.push([w, devLabel, ...order.map((r) => (m[r] === null ? "—" : m[r]!.toFixed(0))), ...others.map((r) => (rat[r] === null ? "—" : formatRatio(rat[r]!))), String(n)]);
      groups.push({ label: `${w}\n${kind === "memory" ? "memory" : "file/OPFS"}`, ratios: rat });
    }
  }
  console.log("\n" + textTable(header, rows, ["l", "l", ...header.slice(2).map(() => "r" as const)]));
  console.log(`\n${ROUNDS} rounds in ${totalS.toFixed(0)} s; images checked (e2fsck -fn + debugfs dump): ${checked.length}`);

  const m = machineInfo(DIR);
  const denoVersion = want.has("deno") ? await versionOf(DENO, ["--version"]) : null;
  const chromiumVersion = browser ? await versionOf(CHROMIUM, ["--version"]) : null;
  const valid = failures.length === 0;
  writeResults("cross-runtime", {
    machine: m, deno: denoVersion, chromium: chromiumVersion, chromiumPath: CHROMIUM, sizes, rounds: ROUNDS, treeBytes: tree.bytes,
    valid, failures, imagesChecked: checked, deviceNames, medians, ratios, samples: results, totalSeconds: totalS,
  });
  const svg = ratioChart("ext4-wasm: speed relative to Node, same workload and device kind (higher is better)", groups, order);
  writeFileSync(join(BENCH_DIR, "results", "cross-runtime.svg"), svg);

  if (!valid) {
    console.error(`\nINVALID RUN — not rendered into bench/README.md:\n${failures.join("\n\n")}`);
    process.exitCode = 1;
  } else if (!opt["no-readme"]) {
    const dn = (k: string) => deviceNames[k] ?? "?";
    const body = `${markdownTable(header, rows, ["l", "l", ...header.slice(2).map(() => "r" as const)])}

![speed relative to Node per workload and device kind](results/cross-runtime.svg)

Medians of ${ROUNDS} interleaved rounds (one fresh process, or page + worker, per runtime per round, each warmed up on a small run first); ratios are the runtime's median throughput over Node's on the same workload and device kind, from the same run (above 1× = faster than Node; target ≥ 0.7×). Sizes: tree of ${sizes.files} files, ${(tree.bytes / MiB).toFixed(1)} MiB, on a ${sizes.imageBytes / MiB} MiB device; db: ${sizes.dbOps} direct writes of 16/32/64 KiB at QD ${sizes.queueDepth} with ${sizes.readers} readers into a ${sizes.dbBytes / MiB} MiB fallocated file. Devices: ${(["node", "deno", "chromium"] as Runtime[]).filter((r) => want.has(r)).map((r) => `${r}: ${dn(`${r}/memory`)} / ${dn(`${r}/file`)}`).join("; ")}. Every image of every round (${checked.length}) passed \`e2fsck -fn\` and \`debugfs dump\` of sample files and the db file.
Measured ${new Date().toISOString().slice(0, 10)} on ${m.cpu} ×${m.cpus}, Linux ${m.kernel}; node ${m.node}, ${denoVersion ?? "deno: not run"}, ${chromiumVersion ?? "Chromium not run"}; images on ${m.tmpdirFs ?? "?"} (Chromium: OPFS in its profile); commit ${m.commit?.slice(0, 12) ?? "?"}; ${totalS.toFixed(0)} s in all.`;
    renderIntoReadme("cross-runtime", body);
  }
  rmSync(DIR, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  rmSync(DIR, { recursive: true, force: true });
  process.exit(1);
});
