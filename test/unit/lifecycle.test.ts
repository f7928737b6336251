/**
 * Volume lifecycle: freeze/thaw, remount ro ⇄ rw, and the order in which the Background
 * seam is driven. The image state at each step is judged by e2fsck and dumpe2fs on a copy
 * of the device bytes taken at that moment, not by the engine's own view.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import type { BackgroundService } from "../../bindings/fs/background.ts";
import { e2fsck, dumpe2fsHeader, debugfs, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("lifecycle-");
afterAll(() => tmp.cleanup());
let n = 0;

async function snapshot(dev: MemoryDevice): Promise<string> {
  const p = join(tmp.dir, `snap${n++}.img`);
  await saveSparse(dev, p);
  return p;
}

async function fresh(): Promise<MemoryDevice> {
  const dev = new MemoryDevice(32 << 20);
  await mkfs(dev, { blockSize: 4096 });
  return dev;
}

/** A service that records the calls the volume makes. */
function recorder(log: string[]): BackgroundService {
  return {
    name: "probe",
    start: () => void log.push("start"),
    flush: async () => void log.push("flush"),
    stop: async () => void log.push("stop"),
    stats: () => ({ calls: log.length }),
  };
}

describe("freeze / thaw", () => {
  it("holds changes back, leaves a clean consistent image, and lets reads through", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    await vol.writeFile("/a", "before freeze\n");
    await vol.freeze();
    const img = await snapshot(dev);
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    expect((await dumpe2fsHeader(img)).get("Filesystem state")).toBe("clean");
    expect((await debugfs(img, "cat /a")).stdout).toBe("before freeze\n");

    let written = false;
    const pending = vol.writeFile("/b", "during freeze\n").then(() => (written = true));
    expect(await vol.readFile("/a", "utf8")).toBe("before freeze\n");
    await new Promise((r) => setTimeout(r, 30));
    expect(written).toBe(false);
    await expect(vol.freeze()).rejects.toMatchObject({ code: "EBUSY" });

    await vol.thaw();
    await pending;
    expect(written).toBe(true);
    expect((await dumpe2fsHeader(await snapshot(dev))).get("Filesystem state")).toBe("not clean");
    await expect(vol.thaw()).rejects.toMatchObject({ code: "EINVAL" });
    await vol.unmount();
    const end = await snapshot(dev);
    expect((await e2fsck(end)).code).toBe(0);
    expect((await debugfs(end, "cat /b")).stdout).toBe("during freeze\n");
  });

  it("unmount of a frozen volume thaws it first", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    await vol.freeze();
    await vol.unmount();
    const img = await snapshot(dev);
    expect((await e2fsck(img)).code).toBe(0);
    expect((await dumpe2fsHeader(img)).get("Filesystem state")).toBe("clean");
  });
});

describe("remount", () => {
  it("read-only refuses changes and writes a clean image; read-write again accepts them", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    await vol.mkdir("/d");
    const fh = await vol.open("/d/f", "w");
    await fh.write("buffered, not yet written back");
    await expect(vol.remount({ readOnly: true })).rejects.toMatchObject({ code: "EBUSY" });
    await fh.close();
    await vol.remount({ readOnly: true });
    expect(vol.readOnly).toBe(true);
    await expect(vol.writeFile("/x", "no")).rejects.toMatchObject({ code: "EROFS" });
    const img = await snapshot(dev);
    expect((await e2fsck(img)).code).toBe(0);
    expect((await dumpe2fsHeader(img)).get("Filesystem state")).toBe("clean");
    expect((await debugfs(img, "cat /d/f")).stdout).toBe("buffered, not yet written back");
    expect(await vol.readFile("/d/f", "utf8")).toBe("buffered, not yet written back");

    await vol.remount({ readOnly: false });
    expect((await dumpe2fsHeader(await snapshot(dev))).get("Filesystem state")).toBe("not clean");
    await vol.writeFile("/x", "yes");
    await vol.unmount();
    const end = await snapshot(dev);
    expect((await e2fsck(end)).code).toBe(0);
    expect((await debugfs(end, "cat /x")).stdout).toBe("yes");
  });

  it("a volume mounted read-only can become writable; bad options are EINVAL", async () => {
    const dev = await fresh();
    const vol = await mount(dev, { readOnly: true });
    await expect(vol.mkdir("/m")).rejects.toMatchObject({ code: "EROFS" });
    await expect(vol.remount({ readOnly: "no" } as never)).rejects.toMatchObject({ code: "EINVAL" });
    await vol.remount({ readOnly: false });
    await vol.mkdir("/m");
    await vol.unmount();
    const img = await snapshot(dev);
    expect((await e2fsck(img)).code).toBe(0);
    expect((await debugfs(img, "stat /m")).stdout).toMatch(/Type: directory/);
  });

  it("a volume forced read-only by its device answers EROFS with the reason", async () => {
    const dev = await fresh();
    const ro = {
      size: dev.size,
      readOnly: true,
      read: (offset: number, into: Uint8Array) => dev.read(offset, into),
      write: () => Promise.reject(new Error("write to a read-only device")),
      flush: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
    const vol = await mount(ro);
    expect(vol.readOnly).toBe(true);
    const err = await vol.remount({ readOnly: false }).catch((e) => e);
    expect(err).toBeInstanceOf(FsError);
    expect(err.code).toBe("EROFS");
    expect(err.message).toMatch(/device is read-only/);
  });
});

describe("background seam", () => {
  it("is started, flushed and stopped at the right moments", async () => {
    const dev = await fresh();
    const vol = await mount(dev);
    const log: string[] = [];
    vol.background.add(recorder(log));
    expect(log).toEqual(["start"]);
    await vol.statfs();
    await vol.sync();
    expect(log).toEqual(["start", "flush", "flush"]);
    log.length = 0;
    await vol.freeze();
    expect(log).toEqual(["flush", "stop"]);
    await vol.sync(); // frozen: nothing to do, nothing runs
    await vol.thaw();
    expect(log).toEqual(["flush", "stop", "start"]);
    log.length = 0;
    await vol.remount({ readOnly: true });
    await vol.remount({ readOnly: false });
    expect(log).toEqual(["flush", "stop", "start"]);
    expect((vol.stats() as Record<string, unknown>).probe).toEqual({ calls: 3 });
    log.length = 0;
    await vol.unmount();
    expect(log).toEqual(["flush", "stop"]);
  });
});
