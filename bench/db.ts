/**
 * bench/db — BENCHMARKS.md workload 4, the benchmark the seed-003 thread asked for: a
 * database-like load on one big file. Preallocate it (fallocate → unwritten extents) or
 * not (writes allocate into holes), then random 16/32/64 KiB direct writes at queue depth
 * 1/8/32 while concurrent readers do random direct reads; and, at one size and depth,
 * 1/4/16 concurrent readers to show readers are not serialised behind writers.
 *
 * The physical limit, measured in the same run with the same offsets and concurrency:
 * positional writes/reads (node:fs FileHandle) on a preallocated host file. Both sides
 * go through the host page cache (our FileDevice is a plain file too) and both end with
 * one fdatasync inside the timed span. Each configuration runs once on a fresh file
 * (rounds of 1: the configurations are many, and ratio noise shows across neighbours).
 *
 * Correctness is checked, not assumed: after the run the image is unmounted and must pass
 * `e2fsck -fn`, and a sample of written blocks is read back with `debugfs` and compared.
 *
 *   npx tsx bench/db.ts [--size 1G] [--ops 1000] [--dir DIR] [--no-readme]
 */
import { open as fsOpen, rm } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
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

interface Side { ms: number; writeIops: number; mibs: number; readIops: number; }
interface Row {
  prealloc: boolean; io: number; qd: number; readers: number;
  ours: Side; host: Side; conversions: number; merges: number; extents: number; ideal: number;
}

/** Run `writes` with qd workers while `readers` loops read random io-sized blocks until done. */
async function drive(writes: number[], qd: number, readers: number, write: (pos: number) => Promise<void>, read: (pos: number) => Promise<void>, sync: () => Promise<void>, io: number): Promise<Side> {
  let next = 0;
  let done = false;
  let reads = 0;
  const t0 = now();
  const readerLoops = Array.from({ length: readers }, async (_, r) => {
    const offs = offsets(977 + r, 1 << 16, io);
    let k = 0;
    while (!done) {
      await read(offs[k++ % offs.length]!);
      reads++;
      // A read of unwritten space completes without I/O; without this yield the loop
      // would run in microtasks only and starve the device completions it races.
      await new Promise((r) => setImmediate(r));
    }
  });
  await Promise.all(Array.from({ length: qd }, async () => {
    while (next < writes.length) await write(writes[next++]!);
  }));
  await sync();
  const ms = now() - t0;
  done = true;
  await Promise.all(readerLoops);
  return { ms, writeIops: (writes.length / ms) * 1000, mibs: (writes.length * io) / MiB / (ms / 1000), readIops: (reads / ms) * 1000 };
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
  for (const prealloc of [true, false]) for (const io of [16 * KiB, 32 * KiB, 64 * KiB]) for (const qd of [1, 8, 32]) configs.push({ prealloc, io, qd, readers: 2 });
  for (const readers of [1, 4, 16]) configs.push({ prealloc: true, io: 32 * KiB, qd: 8, readers });
  const rows: Row[] = [];
  let n = 0;
  for (const c of configs) {
    const name = `/db${n++}`;
    const writes = offsets(n * 7919, OPS, c.io);
    const payload = Buffer.alloc(c.io, 0xa5);
    // Ours.
    const fh = await vol.open(name, "w+", { direct: true });
    if (c.prealloc) await fh.fallocate(0, FILE_SIZE);
    else await fh.truncate(FILE_SIZE); // a sparse file of the same size
    const before = vol.stats().endio as { conversions: number; merges: number };
    const rbufs = new Map<number, Uint8Array>();
    const ours = await drive(writes, c.qd, c.readers,
      async (pos) => void (await fh.write(payload, 0, c.io, pos)),
      async (pos) => {
        let b = rbufs.get(pos % 64);
        if (!b) rbufs.set(pos % 64, (b = new Uint8Array(c.io)));
        await fh.read(b, 0, c.io, pos);
      },
      () => fh.datasync(), c.io);
    const after = vol.stats().endio as { conversions: number; merges: number };
    const ext = await fh.extents();
    // Ideal: every maximal run of written slots is one extent; with preallocation every
    // run of unwritten slots between them is one more.
    const slots = new Uint8Array(Math.floor(FILE_SIZE / c.io));
    for (const w of writes) slots[w / c.io] = 1;
    let ideal = 0;
    for (let i = 0; i < slots.length; i++) if ((c.prealloc && (i === 0 || slots[i] !== slots[i - 1])) || (!c.prealloc && slots[i] && (i === 0 || !slots[i - 1]))) ideal++;
    await fh.close();
    // Host peer: same offsets, same concurrency, on the preallocated file.
    const host = await drive(writes, c.qd, c.readers,
      async (pos) => void (await hf.write(payload, 0, c.io, pos)),
      async (pos) => void (await hf.read(Buffer.alloc(c.io), 0, c.io, pos)),
      () => hf.datasync(), c.io);
    rows.push({ ...c, ours, host, conversions: after.conversions - before.conversions, merges: after.merges - before.merges, extents: ext.length, ideal });
    const r = rows[rows.length - 1]!;
    console.log(`${c.prealloc ? "fallocated" : "sparse    "} ${c.io / KiB} KiB qd ${c.qd} readers ${c.readers}: ours ${ours.mibs.toFixed(1)} MiB/s (${ours.readIops.toFixed(0)} reads/s), host ${host.mibs.toFixed(1)} MiB/s, extents ${r.extents} / ideal ${ideal}`);
    await vol.unlink(name);
  }
  await vol.unmount();
  await dev.close();
  await hf.close();
  const fsck = spawnSync("/usr/sbin/e2fsck", ["-fn", imgPath], { encoding: "utf8" });
  const valid = fsck.status === 0;
  if (!valid) console.error(fsck.stdout, fsck.stderr);

  const header = ["space", "I/O", "QD", "readers", "ours MiB/s", "ours write IOPS", "ours read IOPS", "host MiB/s", "host read IOPS", "ours ÷ host (writes)", "conversions", "merges", "extents / ideal"];
  const cells = rows.map((r) => [
    r.prealloc ? "fallocated" : "holes", `${r.io / KiB} KiB`, String(r.qd), String(r.readers),
    r.ours.mibs.toFixed(1), r.ours.writeIops.toFixed(0), r.ours.readIops.toFixed(0),
    r.host.mibs.toFixed(1), r.host.readIops.toFixed(0), formatRatio(r.ours.mibs / r.host.mibs),
    String(r.conversions), String(r.merges), `${r.extents} / ${r.ideal}`,
  ]);
  console.log(textTable(header, cells));
  const m = machineInfo(DIR);
  writeResults("db", { machine: m, fileSize: FILE_SIZE, ops: OPS, e2fsckClean: valid, rows });
  if (README) {
    const body = `${markdownTable(header, cells)}\n\nOne run per row, ${OPS} writes each, on a ${FILE_SIZE / GiB} GiB file (${FILE_SIZE / GiB} GiB \`fallocate\` or a sparse file of that size), with \`readers\` concurrent loops of random direct reads of the same size running during the writes; timed to the final \`datasync\`. "host" is node:fs positional writes/reads on a preallocated host file with the same offsets and concurrency, in the same run; "ours ÷ host" above 1× means we are faster. e2fsck -fn on the image afterwards: ${valid ? "clean" : "NOT CLEAN"}.\nMeasured ${new Date().toISOString().slice(0, 10)} on ${m.cpu} ×${m.cpus}, Linux ${m.kernel}, ${m.node}, image on ${m.tmpdirFs ?? "?"}; commit ${m.commit?.slice(0, 12) ?? "?"}.`;
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
