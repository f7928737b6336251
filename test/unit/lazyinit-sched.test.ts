/**
 * The lazy-init scheduler's life cycle through the public API: one scheduler shared by
 * every volume, gone (no timer left) when the last request leaves; unmount, read-only
 * remount and freeze stop a volume's zeroing, read-write remount and thaw resume it from
 * the first unzeroed group. What was zeroed is judged by dumpe2fs on a copy of the device.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { execFile } from "node:child_process";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FaultyDevice, lazyInitScheduler, type Volume, type LazyInitStats } from "../../bindings/index.ts";
import { e2fsck, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";
import { tableLayout } from "../helpers/itable.ts";

const tmp = tempDir("lazyinit-sched-");
afterAll(() => tmp.cleanup());
let n = 0;

/** Flags as dumpe2fs sees them on a copy of the device (inner: what a flush has made durable). */
async function zeroedGroups(dev: MemoryDevice): Promise<number[]> {
  const p = join(tmp.dir, `img${n++}.img`);
  await saveSparse(dev, p);
  const layout = await tableLayout(p);
  return layout.groups.filter((g) => g.flags.includes("ITABLE_ZEROED")).map((g) => g.group);
}

const li = (vol: Volume) => vol.stats().lazyInit as LazyInitStats;

/** Resolves when vol has flagged at least `count` groups (or its request ended). */
function zeroedAtLeast(vol: Volume, count: number): Promise<void> {
  if (li(vol).groupsZeroed >= count) return Promise.resolve();
  return new Promise((resolve) => {
    const off = vol.on("lazyinit", (p) => {
      if (p.groupsZeroed >= count || p.done) {
        off();
        resolve();
      }
    });
  });
}

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A lazily formatted 1 KiB-block volume (16 groups) behind a device whose zeroout is slow. */
async function slowVolume(): Promise<{ inner: MemoryDevice; dev: FaultyDevice }> {
  const inner = new MemoryDevice(128 << 20);
  await mkfs(inner, { blockSize: 1024 });
  return { inner, dev: new FaultyDevice(inner, { zerooutMsPerMiB: 100, delay: { min: 0, max: 1 } }) };
}

describe("one scheduler per runtime", () => {
  it("two volumes share it; it disappears when both have unmounted", async () => {
    expect(lazyInitScheduler()).toBeUndefined();
    const a = await slowVolume();
    const b = await slowVolume();
    const va = await mount(a.dev, { initItable: 1, initItableDelay: 0 });
    const vb = await mount(b.dev, { initItable: 1, initItableDelay: 0 });
    expect(lazyInitScheduler()?.requests).toBe(2);
    await Promise.all([zeroedAtLeast(va, 2), zeroedAtLeast(vb, 2)]);
    expect(lazyInitScheduler()?.requests).toBe(2);
    await va.unmount();
    expect(lazyInitScheduler()?.requests).toBe(1);
    await vb.unmount();
    expect(lazyInitScheduler()).toBeUndefined();
    // What each volume reported is what dumpe2fs finds.
    expect((await zeroedGroups(a.inner)).length).toBe(li(va).groupsZeroed);
    expect((await zeroedGroups(b.inner)).length).toBe(li(vb).groupsZeroed);
    expect(li(va).groupsZeroed).toBeGreaterThanOrEqual(2);
    expect(li(va).groupsZeroed).toBeLessThan(16);
  });

  it("initItable: false and read-only mounts register nothing", async () => {
    const { dev } = await slowVolume();
    const off = await mount(dev, { initItable: false, initItableDelay: 0 });
    expect(lazyInitScheduler()).toBeUndefined();
    expect(li(off)).toMatchObject({ running: false, initItable: false });
    await off.unmount();
    const ro = await mount(dev, { readOnly: true, initItableDelay: 0 });
    expect(lazyInitScheduler()).toBeUndefined();
    expect(ro.stats().lazyInit).toBeUndefined();
    await ro.unmount();
  });

  it("a process that unmounts every volume exits by itself (no timer left behind)", async () => {
    // The child's next turn is paced ~forever away; a surviving timer would keep it alive
    // until the 60 s hang guard kills it.
    const r = await new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", "test/helpers/lazyinit-child.ts"], { timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, signal: err?.signal ?? null, stdout, stderr });
      });
    });
    expect(r.signal, "the child had to be killed: something kept it alive").toBeNull();
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
    expect(out.during.requests).toBe(1);
    expect(out.after).toBeNull();
    expect(out.zeroed).toBeGreaterThanOrEqual(1);
  });
});

describe("lifecycle", () => {
  it("read-only remount stops zeroing; read-write remount resumes at the first unzeroed group", async () => {
    const { inner, dev } = await slowVolume();
    const vol = await mount(dev, { initItable: 1, initItableDelay: 0 });
    await zeroedAtLeast(vol, 3);
    await vol.remount({ readOnly: true });
    expect(lazyInitScheduler()).toBeUndefined();
    const stopped = li(vol).groupsZeroed;
    expect(li(vol).running).toBe(false);
    const onDisk = await zeroedGroups(inner);
    expect(onDisk.length).toBe(stopped);
    await tick(300); // several turns' worth: nothing may happen meanwhile
    expect(li(vol).groupsZeroed).toBe(stopped);
    expect(await zeroedGroups(inner)).toEqual(onDisk);

    await vol.remount({ readOnly: false });
    expect(lazyInitScheduler()?.requests).toBe(1);
    const firstUnzeroed = [...Array(16).keys()].find((g) => !onDisk.includes(g));
    expect(li(vol)).toMatchObject({ running: true, nextGroup: firstUnzeroed });
    await zeroedAtLeast(vol, 16);
    await vol.unmount();
    expect(lazyInitScheduler()).toBeUndefined();
    expect(await zeroedGroups(inner)).toEqual([...Array(16).keys()]);
    const p = join(tmp.dir, `final${n++}.img`);
    await saveSparse(inner, p);
    expect((await e2fsck(p)).code).toBe(0);
  });

  it("freeze stops zeroing and leaves a consistent image; thaw resumes", async () => {
    const { inner, dev } = await slowVolume();
    const vol = await mount(dev, { initItable: 1, initItableDelay: 0 });
    await zeroedAtLeast(vol, 2);
    await vol.freeze();
    expect(lazyInitScheduler()).toBeUndefined();
    const frozen = li(vol).groupsZeroed;
    const p = join(tmp.dir, `frozen${n++}.img`);
    await saveSparse(inner, p);
    expect((await e2fsck(p)).code).toBe(0);
    expect((await tableLayout(p)).groups.filter((g) => g.flags.includes("ITABLE_ZEROED")).length).toBe(frozen);
    await tick(300);
    expect(li(vol).groupsZeroed).toBe(frozen);
    await vol.thaw();
    expect(lazyInitScheduler()?.requests).toBe(1);
    await zeroedAtLeast(vol, frozen + 1);
    await vol.unmount();
    expect(lazyInitScheduler()).toBeUndefined();
    expect((await zeroedGroups(inner)).length).toBe(li(vol).groupsZeroed);
  });
});
