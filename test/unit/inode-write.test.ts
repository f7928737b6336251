/**
 * Writing inodes back (inodeEncode through InodeTable.write), judged by debugfs and
 * e2fsck: fields land where e2fsprogs reads them, timestamps keep nanoseconds and the
 * epoch bits past 2038, checksums stay valid.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice } from "../../bindings/index.ts";
import { CacheHandle } from "../../bindings/journal/handle.ts";
import { e2fsck, debugfs, tempDir, saveSparse } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("iwrite-");
afterAll(() => tmp.cleanup());

describe("InodeTable.write", () => {
  for (const inodeSize of [256, 128] as const) {
    it(`writes fields e2fsprogs reads back (${inodeSize}-byte inodes)`, async () => {
      const dev = new MemoryDevice(64 << 20);
      await mkfs(dev, { inodeSize });
      const vol = await mount(dev);
      const root = await vol.inodes.get(2);
      const f = root.fields();
      f.mode = 0o40710;
      f.uid = 70000;
      f.gid = 1234;
      // 2040-01-02: past the signed 32-bit range, so the epoch bits are exercised.
      f.mtime = [2209161600, 123456789];
      f.atime = [1700000000, 5];
      const h = new CacheHandle(vol.cache);
      await vol.inodes.write(h, 2, f);
      await h.stop();
      expect((await vol.inodes.get(2)).mode).toBe(0o40710);
      await vol.cache.flush();
      const img = join(tmp.dir, `i${inodeSize}.img`);
      await saveSparse(dev, img);
      const fsck = await e2fsck(img);
      expect(fsck.code, fsck.stdout).toBe(0);
      const st = (await debugfs(img, "stat <2>")).stdout;
      expect(st).toMatch(/Mode:\s+0710/);
      expect(st).toMatch(/User:\s+70000\s+Group:\s+1234/);
      if (inodeSize === 256) {
        // The extra word holds nanoseconds << 2 | epoch: (123456789 << 2) | 1 = 0x1d6f3455,
        // and debugfs dates it in 2040 (the epoch bit carries seconds past 2^31).
        expect(st).toMatch(/mtime: 0x83ad2180:1d6f3455 -- .* 2040/);
      }
      // Read back through a fresh mount too.
      const again = await mount(MemoryDevice.from(dev.bytes()));
      const st2 = await again.stat("/");
      expect(st2.uid).toBe(70000);
      if (inodeSize === 256) expect(st2.mtimeNs).toBe(2209161600n * 1_000_000_000n + 123456789n);
      else expect(st2.mtimeNs).toBe(BigInt(2209161600 - 2 ** 32) * 1_000_000_000n); // 128-byte inodes: no epoch bits
    });
  }
});

describe("a new inode alone in its inode-table block", () => {
  /** A MemoryDevice that records which blocks (of `bs` bytes) were read. */
  class ReadLog extends MemoryDevice {
    readonly reads = new Set<number>();
    constructor(size: number, readonly bs: number) {
      super(size);
    }
    override async read(offset: number, into: Uint8Array): Promise<void> {
      for (let b = Math.floor(offset / this.bs); b * this.bs < offset + into.length; b++) this.reads.add(b);
      return super.read(offset, into);
    }
  }

  it("is written without reading its table block, and e2fsck accepts the result", async () => {
    const bs = 4096;
    const dev = new ReadLog(64 << 20, bs);
    await mkfs(dev, { blockSize: bs, inodeSize: 256 });
    const vol = await mount(dev, { initItable: false });
    await vol.mkdir("/d");
    const table = vol.engine.x.groupInodeTableF(0) as number;
    dev.reads.clear();
    // Past the table blocks read ahead at mount (128 KiB around the root inode).
    for (let i = 0; i < 1200; i++) await vol.writeFile(`/d/f${i}`, "");
    const lastIno = (await vol.stat("/d/f1199")).ino;
    const tableReads = [...dev.reads].filter((b) => b >= table && b <= table + Math.floor((lastIno - 1) / 16));
    expect(lastIno).toBeGreaterThan(1100);
    expect(tableReads).toEqual([]);
    await vol.unmount();
    const img = join(tmp.dir, "alone.img");
    await saveSparse(dev, img);
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
  });

  it("is not alone when another inode of the block is in use: the block is read, that inode kept", async () => {
    const bs = 4096;
    const dev = new ReadLog(64 << 20, bs);
    await mkfs(dev, { blockSize: bs, inodeSize: 256 });
    const vol = await mount(dev, { initItable: false });
    await vol.mkdir("/d");
    // Fill past the table blocks read ahead at mount, then start a fresh block with "a".
    for (let i = 0; i < 600; i++) await vol.writeFile(`/d/x${i}`, "");
    let a = 0;
    for (let i = 0; ; i++) {
      await vol.writeFile(`/d/a${i}`, "A");
      a = (await vol.stat(`/d/a${i}`)).ino;
      if ((a - 1) % 16 === 0) {
        await vol.rename(`/d/a${i}`, "/d/a");
        break;
      }
    }
    await vol.sync();
    const blk = (vol.engine.x.groupInodeTableF(0) as number) + Math.floor((a - 1) / 16);
    expect(await vol.cache.invalidate(blk)).toBe(true);
    dev.reads.clear();
    await vol.writeFile("/d/b", "B"); // the next inode: the same block as "a"
    expect((await vol.stat("/d/b")).ino).toBe(a + 1);
    expect(dev.reads.has(blk)).toBe(true);
    expect(await vol.readFile("/d/a", "utf8")).toBe("A");
    await vol.unmount();
    const img = join(tmp.dir, "shared.img");
    await saveSparse(dev, img);
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
    expect((await debugfs(img, "cat /d/a")).stdout).toBe("A");
  });
});
