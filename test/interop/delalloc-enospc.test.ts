/**
 * Delayed allocation on a volume that fills up: ENOSPC must come from write(), never from
 * close/sync, and every byte a write() accepted must reach the disk.
 *
 * Judged from outside: after unmount, e2fsck -fn must pass, debugfs `dump` of each file
 * must equal what the test itself recorded as accepted (a plain byte model kept here, not
 * the engine's reading), and dumpe2fs's free-block count must equal what statfs reported
 * once nothing was buffered any more. While data is buffered, statfs must count its
 * reservation as used: bfree never offers space a later write-back needs.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError, type Volume } from "../../bindings/index.ts";
import type { FileHandle } from "../../bindings/fs/file.ts";
import { Rng } from "../helpers/fixtures.ts";
import { debugfs, dumpe2fsHeader, e2fsck, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("delalloc-");
afterAll(() => tmp.cleanup());

function randomBytes(rng: Rng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.u32() & 0xff;
  return out;
}

/** What the writes accepted so far make of one file (holes are zeros). */
class Expected {
  bytes = new Uint8Array(0);
  write(pos: number, data: Uint8Array): void {
    const end = pos + data.length;
    if (end > this.bytes.length) {
      const grown = new Uint8Array(end);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes.set(data, pos);
  }
}

async function isEnospc<T>(p: Promise<T>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch (e) {
    if (e instanceof FsError && e.code === "ENOSPC") return true;
    throw e;
  }
}

/** The allocator's reservation bookkeeping (internal; read to check its invariants). */
function resvOf(vol: Volume) {
  return vol.writeParts.alloc.resv;
}

async function imageOf(dev: MemoryDevice, name: string): Promise<string> {
  const img = join(tmp.dir, name);
  await saveSparse(dev, img);
  return img;
}

async function dumpFile(img: string, path: string): Promise<Uint8Array> {
  const out = join(tmp.dir, `dump-${path.replace(/\//g, "_")}`);
  const r = await debugfs(img, `dump ${path} ${out}`);
  expect(r.stderr).not.toMatch(/not found|error/i);
  return readFileSync(out);
}

describe("delayed allocation on a filling volume", () => {
  for (const blockSize of [4096, 1024] as const) {
    it(`${blockSize}-byte blocks: handle writes until ENOSPC; close never fails; every accepted byte is on disk`, { timeout: 120_000 }, async () => {
      const size = blockSize === 4096 ? 8 << 20 : 4 << 20;
      const dev = new MemoryDevice(size);
      await mkfs(dev, { blockSize, inodeRatio: 16384, uuid: "11111111-2222-4333-8444-555555555555" });
      // A small cache: the write-back budget is exceeded during the writes, so write-back
      // also runs inside write() and must draw on the reservations there.
      const vol = await mount(dev, { cacheBytes: 256 << 10 });
      const rng = new Rng(blockSize);
      const names = ["/a", "/b", "/c", "/sparse"];
      const handles: FileHandle[] = [];
      const expected = names.map(() => new Expected());
      for (const n of names) handles.push(await vol.open(n, "w"));
      let enospc = 0;
      let accepted = 0;
      for (let step = 0; step < 4000 && enospc < 40; step++) {
        const i = rng.int(names.length);
        const fh = handles[i]!;
        const exp = expected[i]!;
        // Mostly appends of up to 64 KiB; the sparse file gets scattered writes (holes,
        // so many extents and tree blocks), and everyone sometimes overwrites.
        const len = enospc > 0 ? 1 + rng.int(3 * blockSize) : 1 + rng.int(64 << 10);
        const pos =
          names[i] === "/sparse" ? rng.int(64) * 7 * blockSize + rng.int(blockSize) :
          rng.int(8) === 0 ? rng.int(exp.bytes.length + 1) :
          exp.bytes.length;
        const data = randomBytes(rng, len);
        const before = await fh.stat();
        const sfsBefore = await vol.statfs();
        if (await isEnospc(fh.write(data, 0, len, pos))) {
          enospc++;
          // Nothing changed: size, mtime, and the free space statfs reports.
          const after = await fh.stat();
          expect({ size: after.size, mtimeNs: after.mtimeNs }).toEqual({ size: before.size, mtimeNs: before.mtimeNs });
          expect((await vol.statfs()).bfree).toBe(sfsBefore.bfree);
          continue;
        }
        exp.write(pos, data);
        accepted += len;
        const sfs = await vol.statfs();
        // Reserved blocks count as used: bfree is what nothing has claimed yet.
        expect(sfs.bfree).toBeGreaterThanOrEqual(0);
        expect(sfs.bfree + resvOf(vol).reserved).toBe(vol.writeParts.alloc.totals().freeBlocks);
      }
      expect(enospc, "the volume never filled up").toBeGreaterThan(0);
      expect(accepted).toBeGreaterThan(size / 4);
      // Closing writes everything back: it must not fail, and write-back must never have
      // needed more than its reservation.
      for (const fh of handles) await fh.close();
      expect(resvOf(vol).overdrafts).toBe(0);
      expect(resvOf(vol).reserved).toBe(0);
      await vol.sync();
      const sfs = await vol.statfs();
      await vol.unmount();
      const img = await imageOf(dev, `fill-${blockSize}.img`);
      const fsck = await e2fsck(img);
      expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
      const header = await dumpe2fsHeader(img);
      expect(Number(header.get("Free blocks"))).toBe(sfs.bfree);
      for (let i = 0; i < names.length; i++) {
        const got = await dumpFile(img, names[i]!);
        const want = expected[i]!.bytes;
        expect(got.length, `${names[i]} size`).toBe(want.length);
        expect(Buffer.compare(Buffer.from(got), Buffer.from(want)), `${names[i]} contents`).toBe(0);
      }
      // A fresh mount agrees with dumpe2fs too.
      const again = await mount(dev, { readOnly: true });
      expect((await again.statfs()).bfree).toBe(sfs.bfree);
      await again.unmount();
    });
  }

  it("reserved space is out of reach of direct allocations, and the reserving writer's close succeeds", { timeout: 60_000 }, async () => {
    const dev = new MemoryDevice(4 << 20);
    await mkfs(dev, { blockSize: 4096 });
    const vol = await mount(dev);
    const free0 = (await vol.statfs()).bfree;
    const fh = await vol.open("/big", "w");
    // Buffer nearly all free space (stays under the write-back budget, so it stays buffered).
    const data = randomBytes(new Rng(7), (free0 - 24) * 4096);
    await fh.write(data, 0, data.length, 0);
    const held = resvOf(vol).reserved;
    expect(held).toBeGreaterThanOrEqual(free0 - 24);
    expect((await vol.statfs()).bfree).toBe(free0 - held);
    // writeFile allocates at once; it may only use what the reservation left.
    expect(await isEnospc(vol.writeFile("/other", new Uint8Array(64 * 4096)))).toBe(true);
    await fh.close();
    expect(resvOf(vol).overdrafts).toBe(0);
    await vol.unmount();
    const img = await imageOf(dev, "steal.img");
    expect((await e2fsck(img)).code).toBe(0);
    const got = await dumpFile(img, "/big");
    expect(Buffer.compare(Buffer.from(got), Buffer.from(data))).toBe(0);
  });

  it("discarding buffered data returns its reservation: unlink of an open file, writeFile over it", { timeout: 60_000 }, async () => {
    const dev = new MemoryDevice(8 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev);
    const free0 = (await vol.statfs()).bfree;
    const a = await vol.open("/a", "w");
    await a.write(new Uint8Array(300 * 1024).fill(1), 0, 300 * 1024, 0);
    expect((await vol.statfs()).bfree).toBeLessThanOrEqual(free0 - 300);
    await vol.unlink("/a");
    await a.close();
    expect(resvOf(vol).reserved).toBe(0);
    expect((await vol.statfs()).bfree).toBe(free0);

    const b = await vol.open("/b", "w");
    await b.write(new Uint8Array(200 * 1024).fill(2), 0, 200 * 1024, 0);
    await vol.writeFile("/b", "replaced");
    expect(resvOf(vol).reserved).toBe(0);
    await b.close();
    expect(await vol.readFile("/b", "utf8")).toBe("replaced");
    await vol.unmount();
    const img = await imageOf(dev, "discard.img");
    expect((await e2fsck(img)).code).toBe(0);
    const header = await dumpe2fsHeader(img);
    // /b holds one data block; the root directory did not grow.
    expect(Number(header.get("Free blocks"))).toBe(free0 - 1);
  });

  it("fragmented free space (one block per extent): write-back stays inside its reservation", { timeout: 120_000 }, async () => {
    const dev = new MemoryDevice(4 << 20);
    await mkfs(dev, { blockSize: 1024, inodeRatio: 2048 });
    const vol = await mount(dev);
    // Checkerboard the free space: 1-block files, every other one removed again.
    await vol.mkdir("/f");
    const n = 1400;
    for (let i = 0; i < n; i++) await vol.writeFile(`/f/${i}`, new Uint8Array(1024).fill(i & 0xff | 1));
    for (let i = 0; i < n; i += 2) await vol.unlink(`/f/${i}`);
    const fh = await vol.open("/frag", "w");
    const rng = new Rng(99);
    const exp = new Expected();
    let enospc = 0;
    // 8 KiB appends (under the write-back budget, so it all stays buffered) until full.
    while (enospc === 0) {
      const data = randomBytes(rng, 8192);
      if (await isEnospc(fh.write(data, 0, data.length, exp.bytes.length))) enospc++;
      else exp.write(exp.bytes.length, data);
    }
    await fh.close();
    expect(resvOf(vol).overdrafts).toBe(0);
    await vol.unmount();
    const img = await imageOf(dev, "frag.img");
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
    const got = await dumpFile(img, "/frag");
    expect(Buffer.compare(Buffer.from(got), Buffer.from(exp.bytes))).toBe(0);
    // The point of the test: the file really is in many extents, over several tree blocks.
    const ex = await debugfs(img, "ex /frag");
    const extents = ex.stdout.split("\n").filter((l) => {
      const m = /^\s*(\d+)\/\s*(\d+)/.exec(l);
      return m !== null && m[1] === m[2]; // a leaf entry: its level is the tree's depth
    }).length;
    const perLeaf = Math.floor((1024 - 12) / 12);
    expect(extents, ex.stdout.slice(0, 400)).toBeGreaterThan(2 * perLeaf);
  });
});
