/**
 * bench/lazyinit — background inode-table zeroing: what it costs and whether pacing works.
 *
 *   1. Zeroing speed: a lazily formatted 64 GiB sparse image file, mounted with initItable 0
 *      and no start delay, timed from mount to the final "lazyinit" event (+ unmount),
 *      against the same byte ranges zeroed without the engine: FileDevice.zeroout per
 *      range + one flush ("raw zeroout"), and plain 1 MiB zero writes through node:fs
 *      ("dd-style writes", which allocate the bytes on the host like `dd if=/dev/zero`).
 *      Each variant runs on a freshly formatted image (cold host page cache for its ranges).
 *   2. Pacing: a foreground workload (1 MiB files written into the volume, then sync) on a
 *      fresh 64 GiB image, while zeroing runs with initItable 0, 1, 10, or is off (false).
 *      Reported: foreground throughput relative to "off", and the share of wall time the
 *      zeroing turns took (lazyInit.busyMs ÷ elapsed), which pacing should hold near
 *      1/(1 + initItable).
 * Every image is checked with e2fsck -fn afterwards; a failure exits 1.
 *
 *   npx tsx bench/lazyinit.ts [--dir DIR] [--no-readme] [--mib 256]
 */
import { join } from "node:path";
import { tmpdir } from "node:os";
import { open } from "node:fs/promises";
import { parseArgs } from "node:util";
import "../bindings/node.ts";
import { FileDevice } from "../bindings/devices/node-file.ts";
import { mkfs, mount, type Volume, type LazyInitStats } from "../bindings/index.ts";
import {
  GiB, MiB, formatMs, formatRatio, formatBytes, machineInfo, markdownTable, textTable, renderIntoReadme, writeResults,
  removeAndSettle, runCommand,
} from "./lib.ts";

const { values: args } = parseArgs({
  options: { dir: { type: "string" }, "no-readme": { type: "boolean" }, mib: { type: "string" } },
});
const DIR = args.dir ?? tmpdir();
const SIZE = 64 * GiB;
const FOREGROUND_MIB = Number(args.mib ?? 256);

const li = (vol: Volume) => vol.stats().lazyInit as LazyInitStats;

async function fsckOk(path: string): Promise<void> {
  const r = await runCommand("/usr/sbin/e2fsck", ["-fn", path]);
  if (r.code !== 0) {
    console.error(`e2fsck failed on ${path}:\n${r.stdout}${r.stderr}`);
    process.exit(1);
  }
}

async function freshImage(path: string): Promise<void> {
  removeAndSettle(path);
  const dev = await FileDevice.open(path, { size: SIZE, create: true });
  await mkfs(dev, { blockSize: 4096, lazyItableInit: true });
  await dev.close();
}

/** The never-used table tail of every group, from the engine's own view at mount. */
async function tails(path: string): Promise<{ offset: number; length: number }[]> {
  const dev = await FileDevice.open(path, { readOnly: true });
  const vol = await mount(dev, { readOnly: true });
  const info = await vol.info();
  const perBlock = info.blockSize / info.inodeSize;
  const itBlocks = Math.ceil((info.inodesPerGroup * info.inodeSize) / info.blockSize);
  const out = info.groupsSummary.map((g) => {
    const used = g.flags.includes("INODE_UNINIT") ? 0 : info.inodesPerGroup - g.itableUnused;
    const usedBlocks = Math.ceil(used / perBlock);
    return { offset: (g.inodeTable + usedBlocks) * info.blockSize, length: (itBlocks - usedBlocks) * info.blockSize };
  });
  await vol.unmount();
  await dev.close();
  return out;
}

function waitDone(vol: Volume): Promise<void> {
  if (!li(vol).running) return Promise.resolve();
  return new Promise((resolve) => {
    const off = vol.on("lazyinit", (p) => {
      if (p.done) {
        off();
        resolve();
      }
    });
  });
}

async function zeroSpeed(): Promise<{ rows: string[][]; data: Record<string, number> }> {
  const img = join(DIR, "lazyinit-bench.img");
  await freshImage(img);
  const ranges = await tails(img);
  const bytes = ranges.reduce((a, r) => a + r.length, 0);

  let t = performance.now();
  const dev = await FileDevice.open(img);
  const vol = await mount(dev, { initItable: 0, initItableDelay: 0 });
  await waitDone(vol);
  await vol.unmount();
  await dev.close();
  const ours = performance.now() - t;
  const groups = li(vol).groupsZeroed;
  await fsckOk(img);

  // Each variant gets a freshly formatted image: a second pass over the same ranges would
  // find the host's page cache already holding them.
  await freshImage(img);
  t = performance.now();
  const raw = await FileDevice.open(img);
  for (const r of ranges) await raw.zeroout(r.offset, r.length);
  await raw.flush();
  await raw.close();
  const rawMs = performance.now() - t;

  const zeros = new Uint8Array(MiB);
  await freshImage(img);
  t = performance.now();
  const fh = await open(img, "r+");
  for (const r of ranges) {
    for (let d = 0; d < r.length; d += MiB) await fh.write(zeros, 0, Math.min(MiB, r.length - d), r.offset + d);
  }
  await fh.sync();
  await fh.close();
  const ddMs = performance.now() - t;
  removeAndSettle(img);

  const rows = [
    ["ours: mount → every table zeroed → unmount (initItable 0)", formatMs(ours), "1×"],
    ["raw FileDevice.zeroout of the same ranges + flush", formatMs(rawMs), formatRatio(ours / rawMs)],
    ["dd-style 1 MiB zero writes of the same ranges + fsync", formatMs(ddMs), formatRatio(ours / ddMs)],
  ];
  console.log(`\n64 GiB image: ${groups} groups, ${formatBytes(bytes)} of inode tables to zero\n`);
  return { rows, data: { oursMs: ours, rawZerooutMs: rawMs, ddWritesMs: ddMs, bytes, groups } };
}

async function pacing(): Promise<{ rows: string[][]; data: Record<string, unknown>[] }> {
  const img = join(DIR, "lazyinit-pace.img");
  const payload = new Uint8Array(MiB).map((_, i) => (i * 7) & 0xff);
  const results: { mult: number | false; ms: number; busyMs: number; groups: number; total: number }[] = [];
  for (const mult of [false, 0, 1, 10] as const) {
    await freshImage(img);
    const dev = await FileDevice.open(img);
    const vol = await mount(dev, { initItable: mult, initItableDelay: 0 });
    const t = performance.now();
    await vol.mkdir("/w");
    for (let i = 0; i < FOREGROUND_MIB; i++) await vol.writeFile(`/w/f${i}`, payload);
    await vol.sync();
    const ms = performance.now() - t;
    const s = li(vol);
    results.push({ mult, ms, busyMs: s.busyMs, groups: s.groupsZeroed, total: s.groupsTotal });
    await vol.unmount();
    await dev.close();
    await fsckOk(img);
  }
  removeAndSettle(img);
  const base = results[0]!.ms;
  const rows = results.map((r) => [
    r.mult === false ? "false (off)" : String(r.mult),
    formatMs(r.ms),
    `${((FOREGROUND_MIB * MiB) / (r.ms / 1000) / MiB).toFixed(0)} MiB/s`,
    formatRatio(r.ms / base),
    `${((100 * r.busyMs) / r.ms).toFixed(0)} %`,
    r.mult === false ? "—" : `${((100 * 1) / (1 + r.mult)).toFixed(0)} %`,
    `${r.groups}/${r.total}`,
  ]);
  return { rows, data: results };
}

const speed = await zeroSpeed();
const pace = await pacing();
const speedHeader = ["what", "time", "ours ÷ this"];
const paceHeader = ["initItable", `foreground (${FOREGROUND_MIB} × 1 MiB files + sync)`, "throughput", "time vs off", "zeroing share of wall time", "target ≤ 1/(1+n)", "groups zeroed meanwhile"];
console.log(textTable(speedHeader, speed.rows, ["l", "r", "r"]));
console.log();
console.log(textTable(paceHeader, pace.rows, ["l", "r", "r", "r", "r", "r", "r"]));
const json = { machine: machineInfo(DIR), speed: speed.data, pacing: pace.data };
console.log(`\nraw results: ${writeResults("lazyinit", json)}`);
if (!args["no-readme"]) {
  renderIntoReadme(
    "lazyinit",
    [
      `**Zeroing a 64 GiB image's inode tables** (${speed.data.groups} groups, ${formatBytes(speed.data.bytes)}):`,
      "",
      markdownTable(speedHeader, speed.rows, ["l", "r", "r"]),
      "",
      "**Pacing: foreground writes while zeroing runs** (fresh 64 GiB image each):",
      "",
      markdownTable(paceHeader, pace.rows, ["l", "r", "r", "r", "r", "r", "r"]),
    ].join("\n"),
  );
}
