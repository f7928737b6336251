/**
 * Lazy inode-table initialisation, judged from outside: after the background zeroing has
 * run, dumpe2fs must show ITABLE_ZEROED on every group, e2fsck -fn must pass, and the raw
 * device bytes of every inode table must be zero except where inodes live. The never-used
 * table tails are filled with garbage before mounting, so a zeroing that skipped a block
 * (or one that never ran: the control cases) is visible in the bytes.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FaultyDevice, lazyInitScheduler, type Volume, type LazyInitProgress } from "../../bindings/index.ts";
import type { MkfsOptions } from "../../bindings/mkfs.ts";
import { e2fsck, debugfs, run, tool, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";
import { tableLayout, fillGarbage, unusedTail, nonZeroBlocks } from "../helpers/itable.ts";

const tmp = tempDir("lazyinit-");
afterAll(() => tmp.cleanup());
let n = 0;

async function snapshot(dev: MemoryDevice): Promise<string> {
  const p = join(tmp.dir, `img${n++}.img`);
  await saveSparse(dev, p);
  return p;
}

/** A lazily formatted device whose never-used table tails hold garbage. */
async function garbageVolume(size: number, opts: MkfsOptions): Promise<MemoryDevice> {
  const dev = new MemoryDevice(size);
  await mkfs(dev, { lazyItableInit: true, ...opts });
  const before = await tableLayout(await snapshot(dev));
  expect(before.groups.every((g) => !g.flags.includes("ITABLE_ZEROED"))).toBe(true);
  expect(await fillGarbage(dev, before)).toBeGreaterThan(0);
  return dev;
}

/** Resolves with the final "lazyinit" event of vol. */
function finished(vol: Volume): Promise<LazyInitProgress> {
  return new Promise((resolve) => {
    const off = vol.on("lazyinit", (p) => {
      if (p.done) {
        off();
        resolve(p);
      }
    });
  });
}

/** Every group flagged, e2fsck clean, every table tail (as dumpe2fs now sees it) zero. */
async function expectZeroedImage(dev: MemoryDevice): Promise<string> {
  const img = await snapshot(dev);
  const fsck = await e2fsck(img);
  expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  const after = await tableLayout(img);
  expect(after.groups.filter((g) => !g.flags.includes("ITABLE_ZEROED")).map((g) => g.group)).toEqual([]);
  for (const g of after.groups) {
    const { first, count } = unusedTail(after, g);
    expect(await nonZeroBlocks(dev, after.blockSize, first, count), `group ${g.group}`).toEqual([]);
  }
  return img;
}

describe("lazy inode-table zeroing runs to the end", () => {
  it("8 GiB, 4 KiB blocks: every table zeroed and flagged, e2fsck clean", async () => {
    const dev = await garbageVolume(8 * 2 ** 30, { blockSize: 4096 });
    const vol = await mount(dev, { initItable: 1, initItableDelay: 0 });
    const end = await finished(vol);
    expect(end.error).toBeUndefined();
    expect(end.groupsZeroed).toBe(end.groupsTotal);
    expect(vol.stats().lazyInit).toMatchObject({ groupsZeroed: 64, groupsTotal: 64, running: false });
    await vol.unmount();
    expect(lazyInitScheduler()).toBeUndefined();
    await expectZeroedImage(dev);
  });

  it("1 KiB blocks with files: inodes in use survive, the rest of every table is zero", async () => {
    const dev = await garbageVolume(48 << 20, { blockSize: 1024, inodeRatio: 4096 });
    // Files first (read-write mount without lazy init), so some tables have a used head.
    const pre = await mount(dev, { initItable: false });
    expect(pre.stats().lazyInit).toMatchObject({ running: false, initItable: false });
    for (let d = 0; d < 6; d++) {
      await pre.mkdir(`/d${d}`);
      for (let f = 0; f < 40; f++) await pre.writeFile(`/d${d}/f${f}`, `dir ${d} file ${f}\n`);
    }
    await pre.unmount();
    const control = await tableLayout(await snapshot(dev));
    // Control: without lazy init the garbage is still there (so the check below can fail).
    const tail0 = unusedTail(control, control.groups[control.groups.length - 1]!);
    expect((await nonZeroBlocks(dev, control.blockSize, tail0.first, tail0.count)).length).toBe(tail0.count);

    const vol = await mount(dev, { initItable: 2, initItableDelay: 0 });
    const end = await finished(vol);
    expect(end).toMatchObject({ done: true, groupsZeroed: control.groups.length });
    await vol.unmount();
    const img = await expectZeroedImage(dev);
    expect((await debugfs(img, "cat /d3/f17")).stdout).toBe("dir 3 file 17\n");
  });
});

describe("zeroing races with inode allocation", () => {
  it("thousands of files created in every group while a slow zeroout runs are all intact", async () => {
    const inner = await garbageVolume(128 << 20, { blockSize: 1024, inodeRatio: 8192, flexBgSize: 1 });
    // ~100 ms per group's table: zeroing is still going on while the files are created. Every
    // request waits a timer tick, so the foreground yields to the event loop as it would on
    // a real device (a MemoryDevice answers in microtasks, which starves timers).
    const dev = new FaultyDevice(inner, { zerooutMsPerMiB: 400, delay: { min: 0, max: 1 } });
    const vol = await mount(dev, { initItable: 0, initItableDelay: 0 });
    const end = finished(vol);
    const groups = vol.groups;
    const inodesPerGroup = (await tableLayout(await snapshot(inner))).inodesPerGroup;
    // Top-level directories spread over the groups (no flex_bg); the root's files stay in group 0.
    const dirs = ["", ...Array.from({ length: 2 * groups }, (_, i) => `/d${i}`)];
    for (const d of dirs) if (d) await vol.mkdir(d);
    const zeroedAtStart = (vol.stats().lazyInit as { groupsZeroed: number }).groupsZeroed;
    const perGroup = new Map<number, number>();
    const files = 100;
    const writes: Promise<void>[] = [];
    for (let f = 0; f < files; f++) {
      for (const d of dirs) writes.push(vol.writeFile(`${d}/f${f}`, `${d}/f${f}\n`));
      if (writes.length >= 64) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    const zeroedAtEnd = (vol.stats().lazyInit as { groupsZeroed: number }).groupsZeroed;
    for (const d of dirs) {
      for (const f of [0, files - 1]) {
        const ino = (await vol.stat(`${d}/f${f}`)).ino;
        const g = Math.floor((ino - 1) / inodesPerGroup);
        perGroup.set(g, (perGroup.get(g) ?? 0) + 1);
      }
    }
    // The race really happened: zeroing was in progress while the files were created, and
    // files went into every group.
    expect(zeroedAtStart).toBeLessThan(groups);
    expect(zeroedAtEnd).toBeGreaterThan(zeroedAtStart);
    expect([...perGroup.keys()].sort((a, b) => a - b)).toEqual([...Array(groups).keys()]);
    expect((await end).groupsZeroed).toBe(groups);
    await vol.unmount();

    const img = await expectZeroedImage(inner);
    const out = join(tmp.dir, "rdump");
    mkdirSync(out);
    const r = await run(tool("debugfs"), ["-R", `rdump / ${out}`, img]);
    expect(r.code, r.stderr).toBe(0);
    const root = readdirSync(out).length === 1 ? join(out, readdirSync(out)[0]!) : out;
    let checked = 0;
    for (const d of dirs) {
      for (let f = 0; f < files; f++) {
        expect(readFileSync(join(root, d, `f${f}`), "utf8")).toBe(`${d}/f${f}\n`);
        checked++;
      }
    }
    expect(checked).toBe(dirs.length * files);
  });
});

describe("errors", () => {
  it("EIO during zeroing stops the request, leaves that group unflagged, and the volume works", async () => {
    const inner = await garbageVolume(64 << 20, { blockSize: 1024 });
    const dev = new FaultyDevice(inner, { fail: FaultyDevice.nth("zeroout", 3) });
    const vol = await mount(dev, { initItable: 0, initItableDelay: 0 });
    const end = await finished(vol);
    expect(end.error).toMatch(/./);
    expect(end.group).toBeGreaterThanOrEqual(0);
    expect(vol.warnings.some((w) => /lazy inode-table init stopped at group/.test(w))).toBe(true);
    expect(vol.stats().lazyInit).toMatchObject({ running: false, groupsZeroed: 2 });
    await vol.writeFile("/after-eio", "still usable\n");
    await vol.unmount();
    const img = await snapshot(inner);
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    const layout = await tableLayout(img);
    const flagged = layout.groups.filter((g) => g.flags.includes("ITABLE_ZEROED")).map((g) => g.group);
    expect(flagged.length).toBe(2);
    expect(flagged).not.toContain(end.group);
    // The failed group's garbage is still there, and it is not flagged as zeroed.
    const failed = layout.groups[end.group]!;
    const tail = unusedTail(layout, failed);
    expect((await nonZeroBlocks(inner, layout.blockSize, tail.first, tail.count)).length).toBeGreaterThan(0);
    expect((await debugfs(img, "cat /after-eio")).stdout).toBe("still usable\n");
  });
});
