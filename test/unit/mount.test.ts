/**
 * mount(): what it accepts, what it refuses and how. Images are made and damaged with
 * e2fsprogs itself (mke2fs, debugfs "feature" / "set_bg" / "ssv"), so the engine is
 * judged against what those tools consider valid or broken.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { copyFileSync, mkdirSync, readFileSync, truncateSync, writeFileSync, symlinkSync } from "node:fs";
import "../../bindings/node.ts";
import { mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import { FileDevice } from "../../bindings/devices/node-file.ts";
import { run, tool, tempDir, dumpe2fsHeader, debugfs } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("mount-");
let base = "";
afterAll(() => tmp.cleanup());

beforeAll(async () => {
  const src = join(tmp.dir, "src");
  mkdirSync(join(src, "d1/d2"), { recursive: true });
  writeFileSync(join(src, "d1/d2/deep.txt"), "deep\n");
  writeFileSync(join(src, "top.txt"), "top\n");
  symlinkSync("d1/d2/deep.txt", join(src, "ln"));
  for (let i = 0; i < 40; i++) mkdirSync(join(src, `spread${i}`));
  for (let i = 0; i < 40; i++) writeFileSync(join(src, `spread${i}/f`), `file ${i}\n`);
  base = join(tmp.dir, "base.img");
  // -N 80: few inodes per group, so the tree spreads over several groups.
  const r = await run(tool("mke2fs"), ["-t", "ext4", "-F", "-q", "-b", "1024", "-N", "160", "-d", src, base, "64M"]);
  expect(r.code, r.stderr).toBe(0);
});

function copy(name: string): string {
  const p = join(tmp.dir, name);
  copyFileSync(base, p);
  return p;
}

async function mountFile(img: string) {
  return mount(await FileDevice.open(img, { readOnly: true }), { readOnly: true });
}

async function errorOf(p: Promise<unknown>): Promise<FsError> {
  const e = await p.then(() => undefined, (x) => x);
  expect(e).toBeInstanceOf(FsError);
  return e as FsError;
}

describe("mount", () => {
  it("mounts a mke2fs image and agrees with dumpe2fs on the counts", async () => {
    const vol = await mountFile(base);
    const h = await dumpe2fsHeader(base);
    const s = await vol.statfs();
    expect(s.blocks).toBe(Number(h.get("Block count")));
    expect(s.bfree).toBe(Number(h.get("Free blocks")));
    expect(s.files).toBe(Number(h.get("Inode count")));
    expect(s.ffree).toBe(Number(h.get("Free inodes")));
    expect(s.bsize).toBe(1024);
    expect(await vol.readFile("/ln", "utf8")).toBe("deep\n");
    expect((await vol.info()).features.sort()).toEqual(h.get("Filesystem features")!.split(/\s+/).sort());
    await vol.unmount();
    expect((await errorOf(vol.stat("/"))).code).toBe("EIO");
  });

  it("refuses a device without an ext4 superblock with EINVAL", async () => {
    const e = await errorOf(mount(new MemoryDevice(8 << 20)));
    expect(e.code).toBe("EINVAL");
    expect(e.message).toMatch(/no ext2\/3\/4 filesystem/);
  });

  it("refuses a tiny device", async () => {
    expect((await errorOf(mount(new MemoryDevice(1024)))).code).toBe("EINVAL");
  });

  it("refuses a superblock whose checksum does not match (EFSCORRUPTED)", async () => {
    const bytes = new Uint8Array(readFileSync(base));
    bytes[1024 + 0x78] ^= 0x55; // a byte of the volume name: covered by the checksum only
    const e = await errorOf(mount(MemoryDevice.from(bytes)));
    expect(e.code).toBe("EFSCORRUPTED");
    expect(e.message).toMatch(/checksum/);
  });

  it("refuses an image larger than its device", async () => {
    const img = copy("short.img");
    truncateSync(img, 32 << 20);
    const e = await errorOf(mountFile(img));
    expect(e.code).toBe("EFSCORRUPTED");
    expect(e.message).toMatch(/larger than the device/);
  });

  it("refuses unknown incompatible features, naming them", async () => {
    const img = copy("unknown.img");
    expect((await debugfs(img, "feature FEATURE_I31").then(() => run(tool("debugfs"), ["-w", "-R", "feature FEATURE_I31", img]))).code).toBe(0);
    const e = await errorOf(mountFile(img));
    expect(e.code).toBe("EOPNOTSUPP");
    expect(e.message).toMatch(/FEATURE_INCOMPAT_0x80000000/);
  });

  it("mounts a volume whose journal needs recovery, read-only with a warning", async () => {
    const img = copy("recover.img");
    expect((await run(tool("debugfs"), ["-w", "-R", "feature needs_recovery", img])).code).toBe(0);
    const vol = await mountFile(img);
    expect(vol.readOnly).toBe(true);
    expect(vol.warnings.join("\n")).toMatch(/journal needs recovery/);
    expect(await vol.readFile("/top.txt", "utf8")).toBe("top\n");
  });

  it("keeps other groups readable when one descriptor points outside the volume", async () => {
    // Find a group that holds one of the spread directories' files, and break it.
    const vol0 = await mountFile(base);
    let victim = -1;
    let victimPath = "";
    const ipg = vol0.engine.x.geoInodesPerGroup() as number;
    for (let i = 0; i < 40 && victim < 1; i++) {
      const st = await vol0.stat(`/spread${i}/f`);
      const g = Math.floor((st.ino - 1) / ipg);
      if (g > 0) {
        victim = g;
        victimPath = `/spread${i}/f`;
      }
    }
    expect(victim).toBeGreaterThan(0);
    const img = copy("badgroup.img");
    const r = await run(tool("debugfs"), ["-w", "-R", `set_bg ${victim} inode_table 99999999`, img]);
    expect(r.code, r.stderr).toBe(0);
    const vol = await mountFile(img);
    expect(vol.badGroups.has(victim)).toBe(true);
    expect(vol.warnings.join("\n")).toMatch(/point outside the volume/);
    expect((await errorOf(vol.readFile(victimPath))).code).toBe("EFSCORRUPTED");
    expect(await vol.readFile("/d1/d2/deep.txt", "utf8")).toBe("deep\n");
  });

  it("answers writes with EROFS and bad options with EINVAL", async () => {
    const vol = await mountFile(base);
    expect((await errorOf(vol.writeFile("/x", "data"))).code).toBe("EROFS");
    expect((await errorOf(vol.mkdir("/x"))).code).toBe("EROFS");
    expect((await errorOf(vol.open("/top.txt", "w"))).code).toBe("EROFS");
    const dev = await FileDevice.open(base, { readOnly: true });
    expect((await errorOf(mount(dev, { cacheBytes: -1 }))).code).toBe("EINVAL");
    expect((await errorOf(mount(dev, { readOnly: "yes" as unknown as boolean }))).code).toBe("EINVAL");
    expect((await errorOf(vol.stat(42 as unknown as string))).code).toBe("EINVAL");
  });

  it("resolves paths like Linux: symlinks, '..', trailing slashes, ELOOP, ENOTDIR, ENAMETOOLONG", async () => {
    const vol = await mountFile(base);
    expect((await vol.stat("/d1/../d1/./d2/deep.txt")).size).toBe(5);
    expect((await vol.lstat("/ln")).isSymbolicLink()).toBe(true);
    expect((await vol.stat("/ln")).isFile()).toBe(true);
    expect(await vol.readlink("/ln")).toBe("d1/d2/deep.txt");
    expect(await vol.realpath("/ln")).toBe("/d1/d2/deep.txt");
    expect((await vol.stat("/..")).ino).toBe(2);
    expect((await errorOf(vol.stat("/top.txt/"))).code).toBe("ENOTDIR");
    expect((await errorOf(vol.stat("/top.txt/x"))).code).toBe("ENOTDIR");
    expect((await errorOf(vol.stat("/nope"))).code).toBe("ENOENT");
    expect((await errorOf(vol.stat(""))).code).toBe("ENOENT");
    expect((await errorOf(vol.stat("/" + "x".repeat(256)))).code).toBe("ENAMETOOLONG");
    expect((await errorOf(vol.readFile("/d1"))).code).toBe("EISDIR");
    expect((await errorOf(vol.readlink("/top.txt"))).code).toBe("EINVAL");
    expect((await vol.readdir("/", { withFileTypes: true })).find((d) => d.name === "ln")!.isSymbolicLink()).toBe(true);
  });
});
