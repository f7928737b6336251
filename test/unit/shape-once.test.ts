/**
 * Shape-once: a directory leaf's structure (record chain, names, inode numbers) is
 * checked in full when the block comes in from the device, and afterwards — while it
 * stays in the cache and only our own edits touch it — by its geometry alone
 * (BlockCache.isShaped, CACHE_SHAPED in assembly/cache.ts, `shaped` in assembly/dir.ts).
 *
 * What could go wrong with such a shortcut, and what these tests pin down:
 *  - a block checked, evicted, damaged on the device and read again must be checked in
 *    full again (the flag must not survive a refill). The image has no metadata_csum, so
 *    no checksum can be what catches the damage: only the structure check can. The image
 *    is made by mke2fs -d and indexed by `e2fsck -fyD` (Linux's tools, not ours);
 *  - the geometry walk that remains for a "shaped" block must still stop a chain that
 *    would loop or leave the block, so even a wrong promise cannot hang or trap the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import { Engine } from "../../bindings/wasm.ts";
import { debugfs, run, tempDir, tool } from "../helpers/e2fsprogs.ts";
import { sibling, codeOf } from "../helpers/damaged-dir.ts";

const BS = 4096;
const tmp = tempDir("shape-once-");
let image: Uint8Array;
afterAll(() => tmp.cleanup());

beforeAll(async () => {
  const src = join(tmp.dir, "src");
  mkdirSync(join(src, "d"), { recursive: true });
  for (let i = 0; i < 400; i++) writeFileSync(join(src, "d", `name-${String(i).padStart(4, "0")}`), "");
  for (let i = 0; i < 80; i++) {
    mkdirSync(join(src, `x${i}`));
    writeFileSync(join(src, `x${i}`, "f"), `${i}\n`);
  }
  const img = join(tmp.dir, "base.img");
  const mk = await run(tool("mke2fs"), ["-t", "ext4", "-F", "-q", "-b", String(BS), "-O", "^metadata_csum", "-d", src, img, "32M"]);
  expect(mk.code, mk.stderr).toBe(0);
  const fsck = await run(tool("e2fsck"), ["-fyD", img]);
  expect(fsck.code & ~1, fsck.stderr).toBe(0);
  expect((await debugfs(img, "htree /d")).stdout).toMatch(/Root node dump/);
  image = new Uint8Array(readFileSync(img));
}, 120_000);

/** Byte offset of the (unique) name in the image. */
function offsetOf(bytes: Uint8Array, name: string): number {
  const at = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(name));
  expect(at).toBeGreaterThan(0);
  return at;
}

describe("directory leaves are structure-checked once per read from the device", () => {
  for (const how of ["evicted", "invalidated"] as const) {
    it(`a leaf whose name was damaged on the device is caught after it was ${how}`, async () => {
      const bytes = image.slice();
      const vol = await mount(MemoryDevice.from(bytes), { readOnly: true, cacheBytes: 1 });
      const name = "name-0123";
      expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);
      const at = offsetOf(bytes, name);
      const blk = Math.floor(at / BS);
      const resident = vol.cache.peek(blk)!;
      expect(resident).toBeDefined();
      expect(vol.cache.isShaped(resident)).toBe(true);
      vol.cache.release(resident);

      // A '/' inside the name: the record chain stays intact, only the full check sees it.
      bytes[at + 4] = 0x2f;
      // Resident and shaped, the cached (undamaged) copy keeps answering.
      expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);

      if (how === "invalidated") {
        expect(await vol.cache.invalidate(blk)).toBe(true);
      } else {
        for (let round = 0; round < 10; round++) {
          const ref = vol.cache.peek(blk);
          if (!ref) break;
          vol.cache.release(ref);
          for (let i = 0; i < 80; i++) await vol.readFile(`/x${i}/f`);
        }
        expect(vol.cache.peek(blk)).toBeUndefined();
      }
      // Re-read: checked in full again, so the damaged name makes the leaf corrupt.
      expect(await codeOf(vol.stat(`/d/${sibling(bytes, blk, name, BS)}`))).toBe("EFSCORRUPTED");
      expect(await codeOf(vol.readdir("/d"))).toBe("EFSCORRUPTED");
      await vol.unmount();
    });
  }

  it("a write into a leaf damaged on the device after it was dropped fails", async () => {
    const bytes = image.slice();
    const vol = await mount(MemoryDevice.from(bytes), { cacheBytes: 1 });
    const name = "name-0321";
    expect((await vol.stat(`/d/${name}`)).isFile()).toBe(true);
    const at = offsetOf(bytes, name);
    const blk = Math.floor(at / BS);
    bytes[at + 2] = 0;
    expect(await vol.cache.invalidate(blk)).toBe(true);
    // Replacing the same name goes through the same (now damaged) leaf.
    expect(await codeOf(vol.rename(`/x0/f`, `/d/${name}`))).toBe("EFSCORRUPTED");
    await vol.unmount().catch(() => {});
  });

  it("our own inserts keep the flag, and the leaves stay what e2fsck accepts", async () => {
    const bytes = image.slice();
    const dev = MemoryDevice.from(bytes);
    const vol = await mount(dev, { cacheBytes: 64 << 20 });
    for (let i = 0; i < 600; i++) await vol.writeFile(`/d/new-${i}`, "");
    const at = offsetOf(bytes, "name-0200");
    const ref = vol.cache.peek(Math.floor(at / BS))!;
    expect(ref).toBeDefined();
    expect(vol.cache.isShaped(ref)).toBe(true);
    vol.cache.release(ref);
    await vol.unmount();
    const img = join(tmp.dir, "after.img");
    writeFileSync(img, bytes);
    const fsck = await run(tool("e2fsck"), ["-fn", img]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    const ls = await debugfs(img, "ls -p /d");
    for (const n of ["new-0", "new-599", "name-0200"]) expect(ls.stdout).toContain(`/${n}/`);
  });
});

describe("the geometry walk left for shaped blocks", () => {
  it("skips the name scan but still refuses chains that loop or leave the block", async () => {
    const e = await Engine.create();
    const x = e.x;
    const blk = e.alloc(BS);
    const name = e.alloc(256);
    const put = (s: string) => e.u8.set(Buffer.from(s), name);
    x.dirInitFirst(blk, BS, 2, 2, 2, 0);
    put("abc");
    expect(x.dirAddEntry(blk, BS, name, 3, 12, 1, 0, 0) as number).toBeGreaterThan(0);
    const entry = x.dirLookup(blk, BS, name, 3, 0, 0) as number;
    expect(entry).toBeGreaterThan(0);
    // A '/' in the name: caught by the full check, not by the geometry walk.
    e.u8[blk + entry + 8 + 1] = 0x2f;
    put("a/c");
    expect(x.dirLookup(blk, BS, name, 3, 0, 0) as number).toBeLessThan(-1);
    expect(x.dirLookup(blk, BS, name, 3, 0, 1) as number).toBe(entry);
    // rec_len 0 would loop, rec_len past the block would leave it: refused either way.
    const rl = e.u8[blk + entry + 4]! | (e.u8[blk + entry + 5]! << 8);
    for (const bad of [0, 8, BS]) {
      e.u8[blk + entry + 4] = bad & 0xff;
      e.u8[blk + entry + 5] = bad >> 8;
      expect(x.dirLookup(blk, BS, name, 3, 0, 1) as number).toBeLessThan(-1);
      expect(x.dirAddEntry(blk, BS, name, 1, 13, 1, 0, 1) as number).toBeLessThan(-1);
      expect(x.dirFreeSpace(blk, BS, 0, 0, 1) as number).toBeLessThan(0);
    }
    e.u8[blk + entry + 4] = rl & 0xff;
    e.u8[blk + entry + 5] = rl >> 8;
    expect(x.dirFreeSpace(blk, BS, 0, 0, 1) as number).toBeGreaterThan(0);
  });
});
