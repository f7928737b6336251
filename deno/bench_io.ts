/**
 * Why deno/file_device.ts does synchronous seek + read/write: this measures the choices on
 * the machine it runs on (warm page cache) — 4 KiB and 1 MiB reads through seekSync +
 * readSync, through awaited seek + read, and through four async handles in parallel.
 * Prints throughput; no assertions (speed is a benchmark, never a test).
 *
 *   deno run --allow-read --allow-write deno/bench_io.ts [MiB]
 */
const total = (Number(Deno.args[0]) || 256) << 20;
const R = 1 << 20;
const path = await Deno.makeTempFile({ prefix: "ext4-bench-io-" });
try {
  {
    const f = await Deno.open(path, { write: true });
    const b = new Uint8Array(R).fill(7);
    for (let o = 0; o < total; o += R) f.writeSync(b);
    f.close();
  }
  const f = await Deno.open(path, { read: true, write: true });
  const buf = new Uint8Array(R);
  const small = new Uint8Array(4096);
  const rate = (bytes: number, t: number) => `${(bytes / 1e6 / ((performance.now() - t) / 1000)).toFixed(0)} MB/s`;
  const perSec = (n: number, t: number) => `${(n / ((performance.now() - t) / 1000)).toFixed(0)}/s`;
  const fill = (h: Deno.FsFile, b: Uint8Array) => {
    for (let d = 0; d < b.length; ) d += h.readSync(b.subarray(d)) ?? b.length;
  };
  for (const round of [1, 2]) {
    let t = performance.now();
    for (let o = 0; o < total; o += R) {
      f.seekSync(o, Deno.SeekMode.Start);
      fill(f, buf);
    }
    const syncBig = rate(total, t);
    t = performance.now();
    const hs = await Promise.all([0, 1, 2, 3].map(() => Deno.open(path, { read: true })));
    let next = 0;
    await Promise.all(hs.map(async (h) => {
      const b = new Uint8Array(R);
      while (next < total) {
        const o = next;
        next += R;
        await h.seek(o, Deno.SeekMode.Start);
        for (let d = 0; d < R; ) d += (await h.read(b.subarray(d))) ?? R;
      }
    }));
    const async4 = rate(total, t);
    hs.forEach((h) => h.close());
    const n = Math.min(total, 64 << 20) / 4096;
    t = performance.now();
    for (let i = 0; i < n; i++) {
      f.seekSync(i * 4096, Deno.SeekMode.Start);
      fill(f, small);
    }
    const sync4k = perSec(n, t);
    t = performance.now();
    for (let i = 0; i < n / 4; i++) {
      await f.seek(i * 4096, Deno.SeekMode.Start);
      await f.read(small);
    }
    const async4k = perSec(n / 4, t);
    console.log(`round ${round}: 1 MiB reads sync ${syncBig}, 4 async handles ${async4}; 4 KiB reads sync ${sync4k}, awaited ${async4k}`);
  }
  f.close();
} finally {
  await Deno.remove(path);
}
