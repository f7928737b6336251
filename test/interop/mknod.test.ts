/**
 * vol.mknod and copyIn of special files, judged by e2fsprogs: e2fsck -fn must pass,
 * debugfs `stat` must show each inode's type and device numbers, and `inode_dump -b`
 * must show i_block in the form the ext4 on-disk documentation gives for device inodes
 * (old 8:8 form in word 0 when both numbers fit in a byte, else word 0 zero and the new
 * form — minor's low byte, 12-bit major, minor's upper bits — in word 1).
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, chmodSync, statSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError, type Volume } from "../../bindings/index.ts";
import { copyIn } from "../../bindings/node-copyin.ts";
import { debugfs, e2fsck, saveSparse, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("mknod-");
afterAll(() => tmp.cleanup());

/** glibc's makedev: the dev_t layout stat().rdev reports. */
function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 256 + (minor & 0xfff00) * 4096;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (e instanceof FsError) return e.code;
    throw e;
  }
}

async function image(dev: MemoryDevice, name: string): Promise<string> {
  const img = join(tmp.dir, name);
  await saveSparse(dev, img);
  return img;
}

/** debugfs `stat` fields of one path: Type, Mode, and the device line. */
async function dstat(img: string, path: string): Promise<{ type: string; mode: string; device?: [number, number] }> {
  const r = await debugfs(img, `stat ${path}`);
  const type = /Type:\s*(.+?)\s+Mode:/.exec(r.stdout)?.[1] ?? `? ${r.stdout}${r.stderr}`;
  const mode = /Mode:\s*(\d+)/.exec(r.stdout)?.[1] ?? "?";
  const dev = /Device major\/minor number:\s*(\d+):(\d+)/.exec(r.stdout);
  return { type, mode, ...(dev ? { device: [Number(dev[1]), Number(dev[2])] as [number, number] } : {}) };
}

/** The first words of i_block, from `debugfs inode_dump -b` (hex, little-endian). */
async function iblockWords(img: string, path: string): Promise<number[]> {
  const r = await debugfs(img, `inode_dump -b ${path}`);
  const bytes: number[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /^[0-9a-f]{4}\s+((?:[0-9a-f]{4}\s*){1,8})/.exec(line.trim());
    if (!m) continue;
    for (const quad of m[1]!.trim().split(/\s+/)) bytes.push(parseInt(quad.slice(0, 2), 16), parseInt(quad.slice(2, 4), 16));
  }
  const dv = new DataView(Uint8Array.from(bytes).buffer);
  return [dv.getUint32(0, true), dv.getUint32(4, true), dv.getUint32(8, true)];
}

describe("mknod", () => {
  it("FIFOs, sockets, character and block devices: debugfs sees type, mode and device; e2fsck is clean", async () => {
    const dev = new MemoryDevice(8 << 20);
    await mkfs(dev, { blockSize: 4096 });
    const vol: Volume = await mount(dev, { umask: 0 });
    await vol.mkdir("/dev");
    const nodes = [
      { path: "/dev/null", mode: 0o020666, major: 1, minor: 3, type: "character special" },
      { path: "/dev/nvme0n1", mode: 0o060660, major: 259, minor: 70000, type: "block special" },
      { path: "/dev/big", mode: 0o020600, major: 300, minor: 5, type: "character special" },
      { path: "/dev/sda", mode: 0o060660, major: 8, minor: 0, type: "block special" },
      { path: "/fifo", mode: 0o010640, major: 0, minor: 0, type: "FIFO" },
      { path: "/sock", mode: 0o140755, major: 0, minor: 0, type: "socket" },
      { path: "/plain", mode: 0o000644, major: 0, minor: 0, type: "regular" },
    ];
    for (const n of nodes) await vol.mknod(n.path, n.mode, makedev(n.major, n.minor));
    for (const n of nodes) {
      const st = await vol.lstat(n.path);
      const isDev = n.type.endsWith("special");
      expect({ p: n.path, mode: st.mode.toString(8), rdev: st.rdev }).toEqual({
        p: n.path, mode: ((n.mode & 0o170000 || 0o100000) | (n.mode & 0o7777)).toString(8), rdev: isDev ? makedev(n.major, n.minor) : 0,
      });
    }
    // Errors like the rest of the API.
    expect(await codeOf(vol.mknod("/fifo", 0o010644))).toBe("EEXIST");
    expect(await codeOf(vol.mknod("/nope/x", 0o010644))).toBe("ENOENT");
    expect(await codeOf(vol.mknod("/lnk", 0o120777))).toBe("EINVAL");
    expect(await codeOf(vol.mknod("/d", 0o040755))).toBe("EPERM");
    expect(await codeOf(vol.mknod("/huge", 0o020644, 2 ** 40))).toBe("EINVAL");
    expect(await codeOf(vol.mknod("/plain/x", 0o010644))).toBe("ENOTDIR");
    // A special file can be removed again.
    await vol.mknod("/gone", 0o020644, makedev(5, 1));
    await vol.unlink("/gone");
    await vol.unmount();

    const img = await image(dev, "mknod.img");
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
    for (const n of nodes) {
      const d = await dstat(img, n.path);
      const isDev = n.type.endsWith("special");
      expect({ p: n.path, ...d }).toEqual({
        p: n.path, type: n.type, mode: "0" + (n.mode & 0o7777).toString(8).padStart(3, "0"), ...(isDev ? { device: [n.major, n.minor] } : {}),
      });
      if (!isDev) continue;
      const words = await iblockWords(img, n.path);
      if (n.major < 256 && n.minor < 256) expect(words.slice(0, 2), n.path).toEqual([(n.major << 8) | n.minor, 0]);
      else expect(words.slice(0, 3), n.path).toEqual([0, ((n.minor & 0xff) | (n.major << 8) | ((n.minor & 0xfff00) << 12)) >>> 0, 0]);
    }
    expect((await debugfs(img, "stat /gone")).stderr).toMatch(/not found/);
  });

  it("copyIn creates a FIFO made by mkfifo (mode from lstat) and keeps group/other write bits", async () => {
    const src = join(tmp.dir, "src");
    mkdirSync(join(src, "sub"), { recursive: true });
    execFileSync("mkfifo", ["-m", "0620", join(src, "sub", "pipe")]);
    writeFileSync(join(src, "sub", "shared"), "rw for all\n");
    chmodSync(join(src, "sub", "shared"), 0o666);
    expect(statSync(join(src, "sub", "pipe")).isFIFO()).toBe(true);
    const dev = new MemoryDevice(8 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev);
    const skipped: string[] = [];
    const res = await copyIn(vol, src, "/", { onSkip: (h) => skipped.push(h) });
    expect(skipped).toEqual([]);
    expect(res.specials).toBe(1);
    await vol.unmount();
    const img = await image(dev, "copyin-fifo.img");
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
    expect(await dstat(img, "/sub/pipe")).toEqual({ type: "FIFO", mode: "0620" });
    expect(await dstat(img, "/sub/shared")).toEqual({ type: "regular", mode: "0666" });
  });
});
