/**
 * VolumeWriter.writeFileWithAttrs with a ContentProducer — the path every file of a tree
 * copy takes (copyIn → runs of non-zero blocks straight from the read buffer to newly
 * allocated blocks). Judged from outside: e2fsck -fn, debugfs `dump` (bytes), `stat`
 * (size, mode, owner, times) and `ex` (holes stay holes: nothing mapped where no run was
 * put), against what the test itself handed over.
 *
 * Also its contract on bad producers (runs out of order or unaligned, a size that does not
 * cover the data): EINVAL, and the volume stays consistent; and ENOSPC in the middle of a
 * big file: the transaction is retried once after a reclaim, which calls the producer
 * again from the start.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import { writerOf } from "../../bindings/fs/volume_write.ts";
import { Rng } from "../helpers/fixtures.ts";
import { debugfs, e2fsck, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("producer-");
afterAll(() => tmp.cleanup());
const KiB = 1024;
const MiB = 1024 * KiB;

function bytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.u32() & 0xff) | 1;
  return out;
}

const attrs = { mode: 0o640, uid: 1234, gid: 567, atime: 1_700_000_000_123_456_789n, mtime: 1_600_000_000_000_000_001n };

describe("writeFileWithAttrs with a ContentProducer", () => {
  it("maps exactly the runs put, as the bytes put, with the size, owner, mode and times given", async () => {
    const dev = new MemoryDevice(256 * MiB);
    await mkfs(dev, {});
    const vol = await mount(dev);
    const w = writerOf(vol)!;
    const rng = new Rng(11);
    const bs = vol.blockSize;
    // Runs at block offsets (in blocks): [0,3) [3,300) (adjacent: must merge), a hole,
    // [1000, 1000+2.5 blocks) as the last run, then a trailing hole to 2 MiB.
    const runs: Array<[number, Uint8Array]> = [
      [0, bytes(rng, 3 * bs)],
      [3 * bs, bytes(rng, 297 * bs)],
      [1000 * bs, bytes(rng, 2 * bs + 100)],
    ];
    const size = 2 * MiB + 17;
    let calls = 0;
    await w.writeFileWithAttrs("/f", async (put) => {
      calls++;
      for (const [pos, b] of runs) await put(pos, b);
      return size;
    }, attrs);
    expect(calls).toBe(1);
    await vol.unmount();
    const img = join(tmp.dir, "runs.img");
    await saveSparse(dev, img);
    expect((await e2fsck(img)).code).toBe(0);
    const want = new Uint8Array(size);
    for (const [pos, b] of runs) want.set(b, pos);
    const out = join(tmp.dir, "runs.out");
    await debugfs(img, `dump /f ${out}`);
    expect(Buffer.compare(readFileSync(out), want)).toBe(0);
    const st = (await debugfs(img, "stat /f")).stdout;
    expect(st).toMatch(/Mode:\s+0640/);
    expect(st).toMatch(/User:\s+1234\s+Group:\s+567/);
    expect(st).toMatch(new RegExp(`Size: ${size}\\b`));
    expect(st).toMatch(/mtime: 0x5f5e1000:00000004/);
    // debugfs ex: logical ranges mapped — exactly the runs' blocks, the first two as one.
    const ex = (await debugfs(img, "ex /f")).stdout;
    const mapped = [...ex.matchAll(/^\s*\d+\/\s*\d+\s+\d+\/\s*\d+\s+(\d+)\s+-\s+(\d+)\s+\d+\s+-\s+\d+\s+(\d+)/gm)].map((m) => [Number(m[1]), Number(m[2])]);
    expect(mapped).toEqual([[0, 299], [1000, 1002]]);
  });

  it("rejects runs out of order, unaligned, overlapping, and a size short of the data — EINVAL, image clean", async () => {
    const dev = new MemoryDevice(64 * MiB);
    await mkfs(dev, {});
    const vol = await mount(dev);
    const w = writerOf(vol)!;
    const bs = vol.blockSize;
    const one = new Uint8Array(bs).fill(9);
    const cases: Array<[string, (put: (pos: number, b: Uint8Array) => Promise<void>) => Promise<number>]> = [
      ["backwards", async (put) => (await put(4 * bs, one), await put(0, one), 5 * bs)],
      ["unaligned", async (put) => (await put(100, one), 2 * bs)],
      ["into a partial block", async (put) => (await put(0, one.subarray(0, 10)), await put(0, one), 2 * bs)],
      ["size short of the data", async (put) => (await put(0, one), await put(bs, one), bs)],
      ["size not an integer", async (put) => (await put(0, one), Number.NaN)],
    ];
    for (const [name, producer] of cases) {
      const err = await w.writeFileWithAttrs(`/${name.replace(/ /g, "_")}`, producer, attrs).then(() => null, (e) => e);
      expect(err, name).toBeInstanceOf(FsError);
      expect((err as FsError).code, name).toBe("EINVAL");
    }
    // A producer's own error leaves the same way, unchanged.
    const boom = new FsError("EIO", "host read failed", { syscall: "read", path: "/host/x" });
    await expect(w.writeFileWithAttrs("/boom", async () => { throw boom; }, attrs)).rejects.toBe(boom);
    await vol.unmount();
    const img = join(tmp.dir, "bad.img");
    await saveSparse(dev, img);
    expect((await e2fsck(img)).code).toBe(0);
  });

  it("ENOSPC in mid-file after unlinks: retried after reclaim, the producer called again from the start", async () => {
    const dev = new MemoryDevice(48 * MiB);
    await mkfs(dev, {});
    const vol = await mount(dev);
    const w = writerOf(vol)!;
    const rng = new Rng(5);
    // Fill most of the volume, then delete it: with inodegc the space comes back only
    // once the queued inodes are freed, which the retry waits for.
    const filler = bytes(rng, 30 * MiB);
    await vol.writeFile("/filler", filler);
    await vol.unlink("/filler");
    const data = bytes(rng, 24 * MiB);
    let calls = 0;
    await w.writeFileWithAttrs("/big", async (put) => {
      calls++;
      for (let pos = 0; pos < data.length; pos += MiB) await put(pos, data.subarray(pos, pos + MiB));
      return data.length;
    }, attrs);
    await vol.unmount();
    const img = join(tmp.dir, "enospc.img");
    await saveSparse(dev, img);
    expect((await e2fsck(img)).code).toBe(0);
    const out = join(tmp.dir, "enospc.out");
    await debugfs(img, `dump /big ${out}`);
    expect(Buffer.compare(readFileSync(out), data)).toBe(0);
    // The unlinked filler was still queued for inactivation when the write began (no
    // macrotask in between), so the first attempt met ENOSPC part-way and the retry
    // read everything again.
    expect(calls).toBe(2);
  });
});
