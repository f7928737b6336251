/**
 * Verify-once: directory blocks are checksum-verified when they come in from the device,
 * not on every lookup (bindings/cache.ts `isVerified`). The risk of such a shortcut is a
 * block that is verified, evicted, changed on the device, and read again without being
 * checked. These tests damage a leaf of an htree directory (made by mke2fs -d and indexed
 * by `e2fsck -fyD`, so the image comes from Linux's tools, not from us) underneath a
 * mounted volume, force the block out of the cache — by eviction under a tiny cache, and
 * by invalidation — and require the next lookup (read-only and inside a write) to fail
 * with EFSCORRUPTED. The allocator's bitmaps follow the same rule (bindings/fs/alloc.ts
 * bitmapOk), checked here the same way: damaged on the device under the cached copy,
 * trusted while resident, refused once read again.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mount, mkfs, MemoryDevice, FsError } from "../../bindings/index.ts";
import { debugfs, run, tempDir, tool } from "../helpers/e2fsprogs.ts";
import { sibling, codeOf } from "../helpers/damaged-dir.ts";

const BS = 4096;
const tmp = tempDir("verify-once-");
let image: Uint8Array;
afterAll(() => tmp.cleanup());

beforeAll(async () => {
  const src = join(tmp.dir, "src");
  mkdirSync(join(src, "d"), { recursive: true });
  for (let i = 0; i < 400; i++) writeFileSync(join(src, "d", `name-${String(i).padStart(4, "0")}`), "");
  // Other directories to read through, so that the cache has to evict.
  for (let i = 0; i < 80; i++) {
    mkdirSync(join(src, `x${i}`));
    writeFileSync(join(src, `x${i}`, "f"), `${i}\n`);
  }
  const img = join(tmp.dir, "base.img");
  const mk = await run(tool("mke2fs"), ["-t", "ext4", "-F", "-q", "-b", String(BS), "-O", "metadata_csum", "-d", src, img, "32M"]);
  expect(mk.code, mk.stderr).toBe(0);
  const fsck = await run(tool("e2fsck"), ["-fyD", img]);
  expect(fsck.code & ~1, fsck.stderr).toBe(0); // 1 = "fixed": the directories were indexed
  const ht = await debugfs(img, "htree /d");
  expect(ht.stdout).toMatch(/Root node dump/);
  image = new Uint8Array(readFileSync(img));
}, 120_000);

/** The block holding the directory entry `name` (names are unique in this image). */
function blockOf(bytes: Uint8Array, name: string): number {
  const needle = Buffer.from(name);
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(needle);
  expect(at).toBeGreaterThan(0);
  return Math.floor(at / BS);
}

describe("directory checksums are verified once per read from the device", () => {
  for (const how of ["evicted", "invalidated"] as const) {
    it(`a leaf damaged on the device is caught after it was ${how}`, async () => {
      const bytes = image.slice();
      const dev = MemoryDevice.from(bytes);
      // The smallest cache the engine allows (its minimum slot count): easy to churn.
      const vol = await mount(dev, { readOnly: true, cacheBytes: 1 });
      const name = "name-0123";
      expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);
      const blk = blockOf(bytes, name);
      const resident = vol.cache.peek(blk);
      expect(resident).toBeDefined();
      vol.cache.release(resident!);

      // Damage the leaf's checksum tail (its last 4 bytes) on the device.
      bytes[blk * BS + BS - 1] ^= 0x5a;
      // The cached copy was verified when it was read and is trusted while it stays.
      expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);

      if (how === "invalidated") {
        expect(await vol.cache.invalidate(blk)).toBe(true);
      } else {
        // Read through 80 other directories (more blocks than the cache has slots).
        for (let round = 0; round < 10; round++) {
          const ref = vol.cache.peek(blk);
          if (!ref) break;
          vol.cache.release(ref);
          for (let i = 0; i < 80; i++) await vol.readFile(`/x${i}/f`);
        }
        expect(vol.cache.peek(blk)).toBeUndefined();
        expect(vol.cache.stats().evictions).toBeGreaterThan(0);
      }
      expect(await codeOf(vol.stat(`/d/${sibling(bytes, blk, name, BS)}`))).toBe("EFSCORRUPTED");
      // Names in undamaged leaves still resolve.
      const other = ["name-0000", "name-0200", "name-0399"].find((n) => blockOf(bytes, n) !== blk)!;
      expect((await vol.stat(`/d/${other}`)).isFile()).toBe(true);
      await vol.unmount();
    });
  }

  it("a write through a leaf damaged after it was verified and dropped fails", async () => {
    const bytes = image.slice();
    const dev = MemoryDevice.from(bytes);
    const vol = await mount(dev, { cacheBytes: 1 });
    const name = "name-0321";
    expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);
    const blk = blockOf(bytes, name);
    bytes[blk * BS + BS - 1] ^= 0x5a;
    expect(await vol.cache.invalidate(blk)).toBe(true);
    // A name of the same leaf: its lookup lands there (a new name might hash elsewhere).
    expect(await codeOf(vol.writeFile(`/d/${sibling(bytes, blk, name, BS)}`, "x"))).toBe("EFSCORRUPTED");
    await vol.unmount().catch(() => {});
  });
});

describe("allocation bitmaps are verified once per read from the device", () => {
  it("an inode bitmap damaged on the device is refused once it is read again", async () => {
    // 16 MiB of 4 KiB blocks is one group: no other group to fall back to.
    const bytes = new Uint8Array(16 << 20);
    const dev = MemoryDevice.from(bytes);
    await mkfs(dev, { blockSize: BS });
    const vol = await mount(dev, { initItable: false });
    await vol.writeFile("/a", "1");
    await vol.sync(); // the bitmap is clean on the device and still resident
    const blk = vol.engine.x.groupInodeBitmapF(0) as number;
    const resident = vol.cache.peek(blk);
    expect(resident).toBeDefined();
    vol.cache.release(resident!);

    // Flip a bit of the bitmap where no inode is in use yet: only its checksum tells.
    bytes[blk * BS + 100] ^= 0x01;
    // The cached copy was verified and is trusted while it stays.
    await vol.writeFile("/b", "2");
    await vol.sync(); // writes the good cached copy over the damage: damage it again
    bytes[blk * BS + 100] ^= 0x01;
    expect(await vol.cache.invalidate(blk)).toBe(true);
    expect(await codeOf(vol.writeFile("/c", "3"))).toBe("EFSCORRUPTED");
    expect(vol.warnings.join("\n")).toMatch(/inode bitmap checksum mismatch/);
    await vol.unmount().catch(() => {});
  });
});
