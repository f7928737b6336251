/**
 * bench/db — BENCHMARKS.md workload 4, the benchmark the seed-003 thread asked for: a
 * database-like load on one big file. Preallocate it (fallocate → unwritten extents) or
 * not (writes allocate into holes), then random 16/32/64 KiB direct writes at queue depth
 * 1/8/32; each configuration runs writes-only (the clean comparison) and with concurrent
 * readers; at one size and depth, 1/4/16 readers show that readers are not serialised
 * behind writers.
 *
 * The physical limit, measured in the same run with the same offsets and concurrency:
 * positional writes/reads (node:fs FileHandle, i.e. pwrite/pread through libuv's thread
 * pool) on a preallocated, zero-filled host file. Both sides go through the host page
 * cache (our FileDevice is a plain file too) and both end with one fdatasync inside the
 * timed span. Each configuration runs `--rounds` times (3), ours on a fresh file each
 * round, then the host; the table gives per-metric medians and the median of the
 * per-round ratios (the machine is shared and a single 1,000-write run is noisy).
 *
 * Why the read load is metered: a reader that loops "until the writers finish" does as
 * many reads as the side lets it, and a read of still-unwritten space of ours answers
 * zeros with no device request, so the two sides would compare writes under different
 * loads. Here both sides do exactly the same read work: one read per completed write
 * (the k-th read waits until k writes completed), `writes` reads in all shared among the
 * readers, each of a range that is already written (a random pick, by a fixed sequence,
 * among the writes completed so far) — a real device read on both sides. Writes and
 * reads are timed separately: write time ends at the datasync, read time at the last read.
 *
 * Correctness is checked, not assumed: every write stamps its position into its first
 * bytes; after the run the image is unmounted and must pass `e2fsck -fn`, and for a
 * sample of the last file's writes `debugfs bmap` gives the physical block whose bytes
 * in the image must carry that stamp.
 *
 *   npx tsx bench/db.ts [--size 1G] [--ops 1000] [--rounds 3] [--dir DIR] [--no-readme]
 */
import { open as fsOpen, rm } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { FileDevice } from "../bindings/node.ts";
import { mkfs, mount } from "../bindings/index.ts";
import { GiB, KiB, MiB, formatRatio, machineInfo, markdownTable, now, renderIntoReadme, textTable, writeResults, freeBytes } from "./lib.ts";

const args = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : dflt;
};
const parseSize = (s: string) => Number(s.replace(/[GMK]$/i, "")) * ({ G: GiB, M: MiB, K: KiB } as Record<string, number>)[s.slice(-1).toUpperCase()]! || Number(s);
const FILE_SIZE = parseSize(arg("size", "1G"));
const OPS = Number(arg("ops", "1000"));
const DIR = mkdtempSync(join(arg("dir", tmpdir()), "bench-db-"));
const README = !args.includes("--no-readme");
/** Rounds per configuration, each on a fresh file of ours; medians are reported (the machine is shared). */
const ROUNDS = Number(arg("rounds", "3"));
const BS = 4096;

/** xorshift: the same offsets for both sides of a configuration. */
function offsets(seed: number, n: number, io: number): number[] {
  let x = seed >>> 0 || 1;
  const slots = Math.floor(FILE_SIZE / io);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.push((x % slots) * io);
  }
  return out;
}

interface Side {
  /** Writes: first write to the completed datasync. */
  ms: number;
  writeIops: number;
  mibs: number;
  /** Reads done (the same count on both sides) and their rate over the readers' span. */
  reads: number;
  readIops: number;
  /**
   * Process CPU time (all threads: main, libuv pool, GC) per write over the write span,
   * in µs. Unlike throughput, this barely depends on how busy the shared machine is.
   */
  cpuUs: number;
}
interface Row {
  prealloc: boolean; io: number; qd: number; readers: number;
  ours: Side; host: Side; ratio: number; conversions: number; merges: number; writerPasses: number; workerPasses: number; extents: number; ideal: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Per-metric medians over rounds. */
function medianSide(runs: Side[]): Side {
  return { ms: median(runs.map((r) => r.ms)), writeIops: median(runs.map((r) => r.writeIops)), mibs: median(runs.map((r) => r.mibs)), reads: runs[0]!.reads, readIops: median(runs.map((r) => r.readIops)), cpuUs: median(runs.map((r) => r.cpuUs)) };
}

/** Stamp pos into the first 8 bytes of buf: the debugfs check finds each write's block by it. */
function stamp(buf: Uint8Array, pos: number): Uint8Array {
  new DataView(buf.buffer, buf.byteOffset, 8).setFloat64(0, pos, true);
  return buf;
}

/**
 * Run `writes` with qd writers while `readers` readers do one read per completed write
 * (see the file comment). write/read get a buffer each worker owns.
 */
async function drive(writes: number[], qd: number, readers: number, io: number, write: (buf: Uint8Array, pos: number) => Promise<void>, read: (buf: Uint8Array, pos: number) => Promise<void>, sync: () => Promise<void>): Promise<Side> {
  let next = 0;
  const written: number[] = [];
  let wake: (() => void)[] = [];
  let issued = 0;
  const total = readers > 0 ? writes.length : 0;
  let x = 0x9e3779b9;
  const t0 = now();
  let readEnd = t0;
  const cpu0 = process.cpuUsage();
  const readerLoops = Array.from({ length: readers }, async () => {
    const buf = new Uint8Array(io);
    while (issued < total) {
      if (issued >= written.length) {
        await new Promise<void>((r) => wake.push(r));
        continue;
      }
      issued++;
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      await read(buf, written[x % written.length]!);
    }
    readEnd = Math.max(readEnd, now());
  });
  await Promise.all(Array.from({ length: qd }, async () => {
    const buf = new Uint8Array(io).fill(0xa5);
    while (next < writes.length) {
      const pos = writes[next++]!;
      await write(stamp(buf, pos), pos);
      written.push(pos);
      const w = wake;
      wake = [];
      for (const r of w) r();
    }
  }));
  await sync();
  const ms = now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(readerLoops);
  const rms = readEnd - t0;
  return { ms, writeIops: (writes.length / ms) * 1000, mibs: (writes.length * io) / MiB / (ms / 1000), reads: total, readIops: total ? (total / rms) * 1000 : 0, cpuUs: (cpu.user + cpu.system) / writes.length };
}

async function main(): Promise<void> {
  const need = FILE_SIZE * 2 + 512 * MiB;
  if (freeBytes(DIR) < need) throw new Error(`need ${need} bytes free in ${DIR}`);
  const imgPath = join(DIR, "db.img");
  const hostPath = join(DIR, "host.dat");
  // The host peer's file, preallocated with zeros once (untimed).
  const hf = await fsOpen(hostPath, "w+");
  const zeros = Buffer.alloc(8 * MiB);
  for (let p = 0; p < FILE_SIZE; p += zeros.length) await hf.write(zeros, 0, Math.min(zeros.length, FILE_SIZE - p), p);
  await hf.datasync();

  const dev = await FileDevice.open(imgPath, { size: FILE_SIZE + 512 * MiB, create: true });
  await mkfs(dev, { blockSize: BS });
  const vol = await mount(dev, { initItable: false });
  const configs: { prealloc: boolean; io: number; qd: number; readers: number }[] = [];
  for (const readers of [0, 2]) for (const prealloc of [true, false]) for (const io of [16 * KiB, 32 * KiB, 64 * KiB]) for (const qd of [1, 8, 32]) configs.push({ prealloc, io, qd, readers });
  for (const readers of [1, 4, 16]) configs.push({ prealloc: true, io: 32 * KiB, qd: 8, readers });
  const rows: Row[] = [];
  let n = 0;
  let kept: { name: string; writes: number[] } | undefined;
  for (const c of configs) {
    const writes = offsets((n + 1) * 7919, OPS, c.io);
    const ourRuns: Side[] = [];
    const hostRuns: Side[] = [];
    let last: Omit<Row, "prealloc" | "io" | "qd" | "readers" | "ours" | "host" | "ratio"> | undefined;
    let name = "";
    for (let round = 0; round < ROUNDS; round++) {
      name = `/db${n++}`;
      // Ours, on a fresh file each round.
      const fh = await vol.open(name, "w+", { direct: true });
      if (c.prealloc) await fh.fallocate(0, FILE_SIZE);
      else await fh.truncate(FILE_SIZE); // a sparse file of the same size
      await fh.datasync(); // start clean, as the host file does (untimed)
      const before = vol.stats().endio as { conversions: number; merges: number; writerPasses: number; workerPasses: number };
      ourRuns.push(await drive(writes, c.qd, c.readers, c.io,
        async (buf, pos) => void (await fh.write(buf, 0, c.io, pos)),
        async (buf, pos) => void (await fh.read(buf, 0, c.io, pos)),
        () => fh.datasync()));
      const after = vol.stats().endio as { conversions: number; merges: number; writerPasses: number; workerPasses: number };
      const ext = await fh.extents();
      // Ideal: every maximal run of written slots is one extent; with preallocation every
      // run of unwritten slots between them is one more.
      const slots = new Uint8Array(Math.floor(FILE_SIZE / c.io));
      for (const w of writes) slots[w / c.io] = 1;
      let ideal = 0;
      for (let i = 0; i < slots.length; i++) if ((c.prealloc && (i === 0 || slots[i] !== slots[i - 1])) || (!c.prealloc && slots[i] && (i === 0 || !slots[i - 1]))) ideal++;
      await fh.close();
      const d = (k: keyof typeof after) => after[k] - before[k];
      last = { conversions: d("conversions"), merges: d("merges"), writerPasses: d("writerPasses"), workerPasses: d("workerPasses"), extents: ext.length, ideal };
      // Host peer: same offsets, same concurrency, same read work, on the preallocated file.
      hostRuns.push(await drive(writes, c.qd, c.readers, c.io,
        async (buf, pos) => void (await hf.write(buf, 0, c.io, pos)),
        async (buf, pos) => void (await hf.read(buf, 0, c.io, pos)),
        () => hf.datasync()));
      // The very last file stays for the debugfs check.
      if (c === configs[configs.length - 1] && round === ROUNDS - 1) kept = { name, writes };
      else {
        await vol.unlink(name);
        await vol.sync(); // inodegc frees the blocks in the background: the next fallocate needs them
      }
    }
    const ours = medianSide(ourRuns);
    const host = medianSide(hostRuns);
    const ratio = median(ourRuns.map((o, i) => o.mibs / hostRuns[i]!.mibs));
    rows.push({ ...c, ours, host, ratio, ...last! });
    console.log(`${c.prealloc ? "fallocated" : "holes     "} ${c.io / KiB} KiB qd ${c.qd} readers ${c.readers}: ours ${ours.mibs.toFixed(1)} MiB/s ${ours.readIops.toFixed(0)} reads/s, host ${host.mibs.toFixed(1)} MiB/s ${host.readIops.toFixed(0)} reads/s, ratio ${formatRatio(ratio)} (rounds ${ourRuns.map((o, i) => (o.mibs / hostRuns[i]!.mibs).toFixed(2)).join(" ")}), extents ${last!.extents} / ideal ${last!.ideal}`);
  }
  await vol.unmount();
  await dev.close();
  await hf.close();
  const fsck = spawnSync("/usr/sbin/e2fsck", ["-fn", imgPath], { encoding: "utf8" });
  let valid = fsck.status === 0;
  if (!valid) console.error(fsck.stdout, fsck.stderr);
  // debugfs maps a sample of the kept file's writes; each block must carry its stamp.
  const img = await fsOpen(imgPath, "r");
  const sample = kept!.writes.filter((_, i) => i % Math.max(1, Math.floor(OPS / 16)) === 0);
  let stampsOk = 0;
  for (const pos of sample) {
    const out = spawnSync("/usr/sbin/debugfs", ["-R", `bmap ${kept!.name} ${pos / BS}`, imgPath], { encoding: "utf8" }).stdout.trim();
    const phys = Number(out.split(/\s+/)[0]);
    const got = Buffer.alloc(8);
    if (Number.isInteger(phys) && phys > 0) await img.read(got, 0, 8, phys * BS);
    if (got.readDoubleLE(0) === pos) stampsOk++;
    else console.error(`debugfs: ${kept!.name} offset ${pos} maps to ${out}, which does not hold that write`);
  }
  await img.close();
  if (stampsOk !== sample.length) valid = false;

  const header = ["space", "I/O", "QD", "readers", "ours MiB/s", "ours write IOPS", "host MiB/s", "host write IOPS", "ours ÷ host (writes)", "CPU µs/write ours / host", "reads", "ours read IOPS", "host read IOPS", "conversions (by writer / worker passes)", "merges", "extents / ideal"];
  const cells = rows.map((r) => [
    r.prealloc ? "fallocated" : "holes", `${r.io / KiB} KiB`, String(r.qd), String(r.readers),
    r.ours.mibs.toFixed(1), r.ours.writeIops.toFixed(0), r.host.mibs.toFixed(1), r.host.writeIops.toFixed(0), formatRatio(r.ratio),
    `${r.ours.cpuUs.toFixed(0)} / ${r.host.cpuUs.toFixed(0)}`,
    String(r.ours.reads), r.readers ? r.ours.readIops.toFixed(0) : "–", r.readers ? r.host.readIops.toFixed(0) : "–",
    `${r.conversions} (${r.writerPasses} / ${r.workerPasses})`, String(r.merges), `${r.extents} / ${r.ideal}`,
  ]);
  console.log(textTable(header, cells));
  const m = machineInfo(DIR);
  const load = loadavg().map((x) => x.toFixed(1)).join(" ");
  writeResults("db", { machine: m, fileSize: FILE_SIZE, ops: OPS, loadAvgAtEnd: load, e2fsckClean: fsck.status === 0, debugfsStamps: `${stampsOk}/${sample.length}`, rows });
  if (README) {
    const size = FILE_SIZE >= GiB ? `${FILE_SIZE / GiB} GiB` : `${FILE_SIZE / MiB} MiB`;
    const body = `${markdownTable(header, cells)}\n\nMedian of ${ROUNDS} rounds per row (ratio: median of the per-round ratios), ${OPS} writes each, on a ${size} file (\`fallocate\` of all of it, or a sparse file of that size). Rows with 0 readers are writes only; otherwise the readers do ${OPS} direct reads in all, one per completed write, each of an already-written range, on both sides alike. Writes are timed to the final \`datasync\`, reads to the last read. "host" is node:fs positional writes/reads (pwrite/pread on libuv's thread pool) on a preallocated host file with the same offsets, concurrency and read work, in the same run; "ours ÷ host" above 1× means we are faster. "CPU µs/write": process CPU time (every thread) per write during the write span — the load-independent cost, including the readers' reads in rows that have them. e2fsck -fn on the image afterwards: ${fsck.status === 0 ? "clean" : "NOT CLEAN"}; debugfs bmap of ${sample.length} sampled writes found their stamped blocks: ${stampsOk}/${sample.length}.\nMeasured ${new Date().toISOString().slice(0, 10)} on ${m.cpu} ×${m.cpus} (load average ${load} at the end: the machine is shared), Linux ${m.kernel}, ${m.node}, image on ${m.tmpdirFs ?? "?"}; commit ${m.commit?.slice(0, 12) ?? "?"}.`;
    renderIntoReadme("db", body);
  }
  await rm(DIR, { recursive: true, force: true });
  if (!valid) process.exit(1);
}

main().catch(async (e) => {
  console.error(e);
  await rm(DIR, { recursive: true, force: true }).catch(() => {});
  process.exit(1);
});
