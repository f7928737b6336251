/**
 * inodegc as a low-priority neighbour of the foreground, and as a source of space.
 *
 * Why these tests: the worker shares the caller's thread and metaLock, so "background"
 * only holds if the lock hands it turns when the foreground is quiet (sched/locks.ts
 * lockIdle) — yet it must still make progress and must run at once when someone needs the
 * space (a flush, an ENOSPC). The lock rules are checked on the Mutex itself with a
 * scripted foreground; the volume-level behaviour through the public API, with the images
 * judged by e2fsck -fn, dumpe2fs and debugfs. A worker step stopped half-way through a
 * big file must leave an image e2fsck's own orphan processing finishes exactly as our
 * next mount does.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { copyFileSync, readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice } from "../../bindings/index.ts";
import type { Volume } from "../../bindings/fs/volume.ts";
import { Mutex } from "../../bindings/sched/locks.ts";
import { MAX_DEFER_MS, type InodeGc, type InodeGcStats } from "../../bindings/sched/inodegc.ts";
import { inactivateStep } from "../../bindings/fs/orphan.ts";
import { CacheHandle } from "../../bindings/journal/handle.ts";
import { e2fsck, dumpe2fsHeader, debugfs, run, saveSparse, tempDir, tool } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("inodegc-prio-");
afterAll(() => tmp.cleanup());
let n = 0;

async function snapshot(dev: MemoryDevice): Promise<string> {
  const p = join(tmp.dir, `snap${n++}.img`);
  await saveSparse(dev, p);
  return p;
}

async function expectClean(img: string): Promise<void> {
  const r = await e2fsck(img);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

function gc(vol: Volume): InodeGc {
  const s = vol.background.get<InodeGc>("inodegc");
  if (!s) throw new Error("inodegc not registered");
  return s;
}

function gcStats(vol: Volume): InodeGcStats {
  return vol.stats().inodegc as InodeGcStats;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("Mutex.lockIdle", () => {
  it("is not granted between back-to-back ordinary holders, and is granted once they go quiet", async () => {
    const m = new Mutex();
    const order: string[] = [];
    await m.run(() => void order.push("fg")); // the foreground is active from here on
    const idle = m.lockIdle({ quietMs: 5, maxWaitMs: 60_000 }).then((release) => {
      order.push("idle");
      release();
    });
    // 200 ordinary critical sections, each re-taking the lock as soon as the last ended.
    for (let i = 0; i < 200; i++) await m.run(() => void order.push("fg"));
    expect(order.filter((o) => o === "idle")).toEqual([]);
    await idle;
    expect(order.at(-1)).toBe("idle");
    expect(order.length).toBe(202);
  });

  it("urgent work takes its turn in FIFO order even while the foreground is busy", async () => {
    const m = new Mutex();
    let urgent = false;
    const order: string[] = [];
    const hold = await m.lock();
    const idle = m.lockIdle({ quietMs: 60_000, maxWaitMs: 60_000, urgent: () => urgent }).then((release) => {
      order.push("idle");
      release();
    });
    const fg1 = m.run(() => void order.push("fg1"));
    urgent = true;
    m.nudge(); // the urgency changed: the idle waiter joins the queue behind fg1
    const fg2 = m.run(() => void order.push("fg2"));
    hold();
    await Promise.all([idle, fg1, fg2]);
    expect(order).toEqual(["fg1", "idle", "fg2"]);
  });

  it("an idle waiter that waited maxWaitMs is served although the foreground never pauses", async () => {
    const m = new Mutex();
    let granted = false;
    const idle = m.lockIdle({ quietMs: 60_000, maxWaitMs: 20 }).then((release) => {
      granted = true;
      release();
    });
    const t0 = performance.now();
    // A foreground that never leaves the lock quiet for long (it yields to timers only).
    while (!granted && performance.now() - t0 < 10_000) {
      await m.run(() => sleep(1));
    }
    await idle;
    expect(granted).toBe(true);
  });
});

describe("inodegc priority on a volume", () => {
  it("back-to-back unlinks run no batch between them beyond the aging bound; quiet drains the lanes without a flush", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    const img0 = await (async () => {
      await vol.sync();
      return snapshot(dev);
    })();
    await vol.mkdir("/d");
    const files = 200; // one lane: past SCHEDULE_AT (32), below THROTTLE_AT (256)
    for (let i = 0; i < files; i++) await vol.writeFile(`/d/f${i}`, new Uint8Array(3000).fill(i));
    await vol.sync();
    const b0 = gcStats(vol).batches;
    const t0 = performance.now();
    for (let i = 0; i < files; i++) await vol.unlink(`/d/f${i}`);
    const elapsed = performance.now() - t0;
    // FIFO order would put a worker batch after nearly every unlink (≥ 168 of them here).
    // Idle priority allows only batches that waited MAX_DEFER_MS for quiet.
    expect(gcStats(vol).batches - b0).toBeLessThanOrEqual(Math.ceil(elapsed / MAX_DEFER_MS) + 1);
    // No flush: the worker finishes on its own once the foreground is quiet.
    for (let i = 0; i < 500 && gcStats(vol).inactivated < files; i++) await sleep(10);
    expect(gcStats(vol).inactivated).toBe(files);
    await vol.rmdir("/d");
    await vol.unmount();
    const img = await snapshot(dev);
    await expectClean(img);
    const [before, after] = [await dumpe2fsHeader(img0), await dumpe2fsHeader(img)];
    expect(after.get("Free blocks")).toBe(before.get("Free blocks"));
    expect(after.get("Free inodes")).toBe(before.get("Free inodes"));
    expect(after.get("First orphan inode")).toBeUndefined();
  });

  it("ENOSPC with inodes queued drains the lanes and retries once", async () => {
    const dev = new MemoryDevice(16 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev, { inodegc: { lanes: 2 } });
    const free0 = (await vol.statfs()).bfree;
    // Most of the volume in one file, then gone — but still queued, not yet freed.
    const big = new Uint8Array(Math.floor(free0 * 0.8) * 1024).fill(0x11);
    await vol.writeFile("/big", big);
    await vol.sync();
    await vol.unlink("/big");
    expect(gcStats(vol).queued.reduce((a, b) => a + b, 0)).toBe(1);
    // Needs the queued file's space: without the retry this is ENOSPC.
    const next = new Uint8Array(Math.floor(free0 * 0.6) * 1024).fill(0x22);
    await vol.writeFile("/next", next);
    expect(gcStats(vol).enospcReclaims).toBe(1);
    await vol.unmount();
    const img = await snapshot(dev);
    await expectClean(img);
    const cat = await debugfs(img, "cat /next");
    expect(Buffer.from(cat.stdout, "latin1").equals(Buffer.from(next))).toBe(true);
  });

  it("appendFile is not retried (a failed append keeps what it wrote)", async () => {
    const dev = new MemoryDevice(16 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev, { inodegc: { lanes: 2 } });
    const free0 = (await vol.statfs()).bfree;
    await vol.writeFile("/big", new Uint8Array(Math.floor(free0 * 0.8) * 1024));
    await vol.sync();
    await vol.unlink("/big");
    await expect(vol.appendFile("/log", new Uint8Array(Math.floor(free0 * 0.6) * 1024))).rejects.toMatchObject({ code: "ENOSPC" });
    expect(gcStats(vol).enospcReclaims).toBe(0);
    await vol.unmount();
    await expectClean(await snapshot(dev));
  });
});

describe("inodegc steps", () => {
  it("a partial step leaves a valid sparse orphan (front freed, rest intact) that e2fsck and our mount both finish alike", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    const fh = await vol.open("/big", "w");
    const blk = new Uint8Array(1024).fill(0x5a);
    for (let i = 0; i < 600; i++) await fh.write(blk, 0, blk.length, i * 2 * 1024); // 600 extents: a tree of depth ≥ 1
    await fh.close();
    const ino = (await vol.stat("/big")).ino;
    await vol.sync();
    await gc(vol).stop();
    await vol.unlink("/big");
    // One step of at most 100 extents, as the worker runs it.
    const step = await vol.metaLock.run(async () => {
      const h = new CacheHandle(vol.cache);
      try {
        return await inactivateStep(vol, h, ino, 100);
      } finally {
        await h.stop();
      }
    });
    expect(step.done).toBe(false);
    expect(step.used).toBeGreaterThan(0);
    expect(step.used).toBeLessThanOrEqual(100);
    await vol.metaLock.run(() => vol.cache.flush());
    await (vol as unknown as { writeSuper(clean: boolean): Promise<void> }).writeSuper(false);
    const mid = await snapshot(dev);
    // debugfs: the mapping now starts where the step stopped, with every later extent kept.
    const stat = (await debugfs(mid, `stat <${ino}>`)).stdout;
    const starts = [...stat.matchAll(/\((\d+)(?:-\d+)?\):\d+/g)].map((m) => Number(m[1]));
    expect(starts[0]).toBe(step.used * 2);
    expect(starts.length).toBe(600 - step.used);
    // e2fsck's orphan processing (on a copy) and our mount reach the same counts.
    const ref = join(tmp.dir, `ref-${n++}.img`);
    copyFileSync(mid, ref);
    const fy = await run(tool("e2fsck"), ["-fy", ref]);
    expect(fy.code, fy.stdout).toBeLessThanOrEqual(1);
    const dev2 = MemoryDevice.from(new Uint8Array(readFileSync(mid)));
    await (await mount(dev2)).unmount();
    const ours = await snapshot(dev2);
    await expectClean(ours);
    const [a, b] = [await dumpe2fsHeader(ref), await dumpe2fsHeader(ours)];
    expect(b.get("Free blocks")).toBe(a.get("Free blocks"));
    expect(b.get("Free inodes")).toBe(a.get("Free inodes"));
    gc(vol).start();
    await vol.unmount();
  });
});
