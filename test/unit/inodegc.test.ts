/**
 * Deferred inode inactivation (sched/inodegc.ts) through the public API. Every image state
 * is judged by e2fsck -fn, dumpe2fs and debugfs on a copy of the device bytes taken at that
 * moment; "the same as synchronous mode" means the same free counts *as dumpe2fs reports
 * them* for an identical sequence of operations run with inodegc: false.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import type { Volume } from "../../bindings/fs/volume.ts";
import type { InodeGc, InodeGcStats } from "../../bindings/sched/inodegc.ts";
import { e2fsck, dumpe2fsHeader, debugfs, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("inodegc-");
afterAll(() => tmp.cleanup());
let n = 0;

async function snapshot(dev: MemoryDevice): Promise<string> {
  const p = join(tmp.dir, `snap${n++}.img`);
  await saveSparse(dev, p);
  return p;
}

/** 64 MiB, 1 KiB blocks: eight groups, so inodes land in different lanes. */
async function fresh(): Promise<MemoryDevice> {
  const dev = new MemoryDevice(64 << 20);
  await mkfs(dev, { blockSize: 1024 });
  return dev;
}

function gc(vol: Volume): InodeGc {
  const s = vol.background.get<InodeGc>("inodegc");
  if (!s) throw new Error("inodegc not registered");
  return s;
}
function gcStats(vol: Volume): InodeGcStats {
  return vol.stats().inodegc as InodeGcStats;
}

/** A file of `extents` separate extents: every other block written, holes between. */
async function fragmented(vol: Volume, path: string, extents: number): Promise<void> {
  const fh = await vol.open(path, "w");
  const blk = new Uint8Array(1024).fill(0x5a);
  for (let i = 0; i < extents; i++) await fh.write(blk, 0, blk.length, i * 2 * 1024);
  await fh.close();
}

async function freeCounts(img: string): Promise<{ blocks: string; inodes: string; orphan: string | undefined }> {
  const h = await dumpe2fsHeader(img);
  return { blocks: h.get("Free blocks")!, inodes: h.get("Free inodes")!, orphan: h.get("First orphan inode") };
}

async function expectClean(img: string): Promise<void> {
  const r = await e2fsck(img);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

/** The same workload in both modes; returns the unmounted images' dumpe2fs counts. */
async function workload(inodegc: boolean | { lanes: number }): Promise<{ img: string; counts: Awaited<ReturnType<typeof freeCounts>> }> {
  const dev = await fresh();
  const vol = await mount(dev, { inodegc });
  for (let d = 0; d < 4; d++) {
    await vol.mkdir(`/d${d}`);
    for (let i = 0; i < 10; i++) await fragmented(vol, `/d${d}/f${i}`, 1 + ((d * 10 + i) % 7) * 40);
  }
  for (let d = 0; d < 4; d++) for (let i = 0; i < 10; i += 2) await vol.unlink(`/d${d}/f${i}`);
  await vol.rm("/d3", { recursive: true });
  await vol.sync();
  const img = await snapshot(dev);
  await vol.unmount();
  return { img, counts: await freeCounts(img) };
}

describe("inodegc: unlink queues, sync frees", () => {
  it("after sync the free block and inode counts equal those of synchronous mode", async () => {
    const sync = await workload(false);
    const deferred = await workload({ lanes: 4 });
    await expectClean(sync.img);
    await expectClean(deferred.img);
    expect(deferred.counts.orphan).toBeUndefined();
    expect(deferred.counts.blocks).toBe(sync.counts.blocks);
    expect(deferred.counts.inodes).toBe(sync.counts.inodes);
  });

  it("unlink returns with the inode queued and still allocated; statfs flushes first", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { inodegc: { lanes: 2 } });
    await fragmented(vol, "/big", 300);
    const ino = (await vol.stat("/big")).ino;
    const before = await vol.statfs();
    await gc(vol).stop();
    await vol.unlink("/big");
    expect(gcStats(vol).queued.reduce((a, b) => a + b, 0)).toBe(1);
    await expect(vol.stat("/big")).rejects.toMatchObject({ code: "ENOENT" });
    // Write the volume out without flushing the queue: the inode is an orphan on disk.
    await vol.metaLock.run(() => vol.cache.flush());
    await (vol as unknown as { writeSuper(clean: boolean): Promise<void> }).writeSuper(false);
    const img = await snapshot(dev);
    expect((await freeCounts(img)).orphan).toBe(String(ino));
    expect((await debugfs(img, `stat <${ino}>`)).stdout).toMatch(/Links: 0/);
    gc(vol).start();
    const after = await vol.statfs();
    expect(after.bfree).toBeGreaterThanOrEqual(before.bfree + 300);
    expect(after.ffree).toBe(before.ffree + 1);
    await vol.unmount();
    const done = await snapshot(dev);
    await expectClean(done);
    expect((await freeCounts(done)).orphan).toBeUndefined();
  });

  it("frees a big file's tree in several transactions", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    await fragmented(vol, "/huge", 1000);
    const b0 = gcStats(vol).batches;
    await vol.unlink("/huge");
    await vol.sync();
    expect(gcStats(vol).batches - b0).toBeGreaterThanOrEqual(4); // 1000 extents, 256 per batch
    expect(gcStats(vol).inactivated).toBe(1);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });
});

describe("inodegc: open files", () => {
  it("an unlinked open file keeps its blocks until the last close", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    await fragmented(vol, "/open", 50);
    const ino = (await vol.stat("/open")).ino;
    const a = await vol.open("/open", "r");
    const b = await vol.open("/open", "r");
    await vol.unlink("/open");
    await vol.sync();
    let img = await snapshot(dev);
    expect((await freeCounts(img)).orphan).toBe(String(ino));
    expect((await debugfs(img, `testi <${ino}>`)).stdout).toMatch(/is marked in use/);
    const buf = new Uint8Array(1024);
    expect((await a.read(buf, 0, 1024, 0)).bytesRead).toBe(1024);
    expect(buf[0]).toBe(0x5a);
    await a.close();
    await vol.sync();
    img = await snapshot(dev);
    expect((await debugfs(img, `testi <${ino}>`)).stdout).toMatch(/is marked in use/);
    await b.close();
    await vol.sync();
    img = await snapshot(dev);
    expect((await debugfs(img, `testi <${ino}>`)).stdout).toMatch(/not in use/);
    expect((await freeCounts(img)).orphan).toBeUndefined();
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });
});

describe("inodegc: lookup by inode number", () => {
  it("a queued unlinked inode is ENOENT; once freed the number is free to look up", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    await vol.writeFile("/x", "data");
    const ino = (await vol.stat("/x")).ino;
    await gc(vol).grab(ino); // linked: fine
    await gc(vol).stop();
    await vol.unlink("/x");
    const err = await gc(vol).grab(ino).catch((e) => e);
    expect(err).toBeInstanceOf(FsError);
    expect(err.code).toBe("ENOENT");
    expect(gcStats(vol).lookupsRefused).toBe(1);
    gc(vol).start();
    await vol.sync();
    await gc(vol).grab(ino);
    await vol.unmount();
    const img = await snapshot(dev);
    expect((await debugfs(img, `testi <${ino}>`)).stdout).toMatch(/not in use/);
  });

  it("a lookup of an inode being freed waits for the free", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    await fragmented(vol, "/big", 800);
    const ino = (await vol.stat("/big")).ino;
    await vol.unlink("/big");
    // Let the worker start on it (idle delay), then look it up mid-free.
    while (gcStats(vol).batches === 0) await new Promise((r) => setTimeout(r, 1));
    await gc(vol).grab(ino);
    expect(gcStats(vol).inactivated).toBe(1);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });
});

describe("inodegc: lifecycle", () => {
  it("freeze flushes and stops; nothing runs while frozen; thaw resumes", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    for (let i = 0; i < 20; i++) await fragmented(vol, `/f${i}`, 20);
    for (let i = 0; i < 10; i++) await vol.unlink(`/f${i}`);
    await vol.freeze();
    expect(gcStats(vol).running).toBe(false);
    expect(gcStats(vol).inactivated).toBe(10);
    const frozen = await snapshot(dev);
    await expectClean(frozen);
    expect((await freeCounts(frozen)).orphan).toBeUndefined();
    const batches = gcStats(vol).batches;
    const pending = Promise.all(Array.from({ length: 10 }, (_, i) => vol.unlink(`/f${10 + i}`)));
    await new Promise((r) => setTimeout(r, 30));
    expect(gcStats(vol).batches).toBe(batches);
    expect(readFileSync(await snapshot(dev)).equals(readFileSync(frozen))).toBe(true);
    await vol.thaw();
    await pending;
    expect(gcStats(vol).running).toBe(true);
    await vol.sync();
    expect(gcStats(vol).inactivated).toBe(20);
    await vol.unmount();
    const img = await snapshot(dev);
    await expectClean(img);
  });

  it("read-only remount stops the workers, read-write remount starts them", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    for (let i = 0; i < 5; i++) await fragmented(vol, `/f${i}`, 30);
    for (let i = 0; i < 5; i++) await vol.unlink(`/f${i}`);
    await vol.remount({ readOnly: true });
    expect(gcStats(vol).running).toBe(false);
    expect(gcStats(vol).inactivated).toBe(5);
    const img = await snapshot(dev);
    await expectClean(img);
    await vol.remount({ readOnly: false });
    expect(gcStats(vol).running).toBe(true);
    await vol.writeFile("/g", "x");
    await vol.unlink("/g");
    await vol.unmount();
    expect(gcStats(vol).inactivated).toBe(6);
    await expectClean(await snapshot(dev));
  });
});

describe("inodegc: backpressure and lanes", () => {
  it("the 257th queued inode on a lane makes its caller wait for the worker", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    await vol.mkdir("/t");
    for (let i = 0; i < 257; i++) await vol.writeFile(`/t/${i}`, "x");
    await gc(vol).stop();
    for (let i = 0; i < 256; i++) await vol.unlink(`/t/${i}`);
    expect(gcStats(vol).queued).toEqual([256]);
    expect(gcStats(vol).throttled).toBe(0);
    let returned = false;
    const last = vol.unlink("/t/256").then(() => (returned = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(returned).toBe(false);
    expect(gcStats(vol).queued).toEqual([257]);
    expect(gcStats(vol).throttled).toBe(1);
    gc(vol).start();
    await last;
    expect(gcStats(vol).inactivated).toBe(257);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });

  it("removing lanes folds their queues into the remaining lane", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, { blockSize: 1024, inodeRatio: 65536 });
    const vol = await mount(dev, { inodegc: { lanes: 4 } });
    // 128 inodes per group here: 330 files span three groups, hence three lanes.
    await vol.mkdir("/d");
    for (let i = 0; i < 330; i++) await vol.writeFile(`/d/${i}`, "y");
    await gc(vol).stop();
    for (let i = 0; i < 330; i += 15) await vol.unlink(`/d/${i}`);
    for (let i = 1; i <= 2; i++) await vol.unlink(`/d/${i}`);
    const spread = gcStats(vol).queued;
    expect(spread.reduce((a, b) => a + b, 0)).toBe(24);
    expect(spread.filter((q) => q > 0).length).toBeGreaterThan(1);
    vol.setLanes(1);
    expect(gcStats(vol).queued).toEqual([24]);
    expect(() => vol.setLanes(0)).toThrow(FsError);
    gc(vol).start();
    await vol.sync();
    expect(gcStats(vol).inactivated).toBe(24);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });

  it("inodegc: false frees in the unlink itself", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { inodegc: false });
    expect(vol.stats().inodegc).toBeUndefined();
    expect(() => vol.setLanes(2)).toThrow(FsError);
    await fragmented(vol, "/a", 40);
    const before = (await vol.statfs()).bfree;
    await vol.unlink("/a");
    expect((await vol.statfs()).bfree).toBeGreaterThanOrEqual(before + 40);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });

  it("bad lane options are EINVAL", async () => {
    const dev = await fresh();
    await expect(mount(dev, { inodegc: { lanes: 0 } })).rejects.toMatchObject({ code: "EINVAL" });
    await expect(mount(dev, { inodegc: { lanes: 1.5 } })).rejects.toMatchObject({ code: "EINVAL" });
  });
});
