/**
 * mkfs judged by e2fsprogs: every image must pass `e2fsck -fn`, and `dumpe2fs` must show
 * what was asked for (features, sizes, per-group flags) and the defaults mke2fs itself
 * picks for a volume of that size.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { truncateSync, rmSync, writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, defaultJournalBlocks, type MkfsOptions, type MkfsResult } from "../../bindings/mkfs.ts";
import { MemoryDevice } from "../../bindings/devices/memory.ts";
import { FsError } from "../../bindings/fs/errors.ts";
import { e2fsck, dumpe2fsHeader, dumpe2fsGroups, debugfs, saveSparse, tempDir, run, tool } from "../helpers/e2fsprogs.ts";

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const TiB = 2 ** 40;
const tmp = tempDir("mkfs-");
afterAll(() => tmp.cleanup());

const UUID = "0b1c2d3e-4f50-4617-8283-94a5b6c7d8e9";
let counter = 0;

async function format(size: number, opts: MkfsOptions): Promise<{ img: string; r: MkfsResult; dev: MemoryDevice }> {
  const dev = new MemoryDevice(size);
  const r = await mkfs(dev, { uuid: UUID, label: "t", ...opts });
  const img = join(tmp.dir, `m${counter++}.img`);
  await saveSparse(dev, img);
  return { img, r, dev };
}

function expectedFeatures(o: MkfsOptions): string[] {
  const f = ["ext_attr", "dir_index", "filetype", "extent", "sparse_super", "large_file", "huge_file", "dir_nlink"];
  if (o.journal !== false) f.push("has_journal");
  if (o.bit64 !== false) f.push("64bit");
  if ((o.flexBgSize ?? 16) > 1) f.push("flex_bg");
  if ((o.inodeSize ?? 256) > 128) f.push("extra_isize");
  f.push(o.metadataCsum === false ? "uninit_bg" : "metadata_csum");
  return f.sort();
}

async function checkImage(img: string, r: MkfsResult, o: MkfsOptions): Promise<void> {
  const fsck = await e2fsck(img);
  expect(fsck.code, `e2fsck -fn failed:\n${fsck.stdout}\n${fsck.stderr}`).toBe(0);

  const h = await dumpe2fsHeader(img);
  expect(h.get("Filesystem features")!.split(/\s+/).sort()).toEqual(expectedFeatures(o));
  expect(h.get("Filesystem magic number")).toBe("0xEF53");
  expect(h.get("Filesystem state")).toBe("clean");
  expect(h.get("Filesystem UUID")).toBe(UUID);
  expect(h.get("Filesystem volume name")).toBe("t");
  expect(Number(h.get("Block size"))).toBe(r.blockSize);
  expect(Number(h.get("Block count"))).toBe(r.blocksCount);
  expect(Number(h.get("Inode count"))).toBe(r.inodesCount);
  expect(Number(h.get("Inode size"))).toBe(o.inodeSize ?? 256);
  expect(Number(h.get("Free blocks"))).toBe(r.freeBlocks);
  expect(Number(h.get("Free inodes"))).toBe(r.freeInodes);
  expect(Number(h.get("Reserved block count"))).toBe(r.reservedBlocks);
  expect(Number(h.get("Inodes per group"))).toBe(r.inodesPerGroup);
  expect(Number(h.get("First block"))).toBe(r.blockSize === 1024 ? 1 : 0);
  if (o.journal === false) {
    expect(h.has("Journal inode")).toBe(false);
  } else {
    expect(Number(h.get("Journal inode"))).toBe(8);
    expect(Number(h.get("Total journal blocks"))).toBe(defaultJournalBlocks(r.blocksCount));
    expect(h.get("Journal start")).toBe("0");
  }

  const groups = await dumpe2fsGroups(img);
  expect(groups.length).toBe(r.groups);
  const lazy = o.lazyItableInit !== false;
  for (const g of groups) {
    expect(g.flags.includes("ITABLE_ZEROED"), `group ${g.group} ITABLE_ZEROED`).toBe(!lazy);
    expect(g.flags.includes("INODE_UNINIT"), `group ${g.group} INODE_UNINIT`).toBe(g.group !== 0);
    if (g.group === 0 || g.group === groups.length - 1) expect(g.flags).not.toContain("BLOCK_UNINIT");
    expect(g.unusedInodes).toBe(g.group === 0 ? r.inodesPerGroup - 11 : r.inodesPerGroup);
  }
  expect(groups.reduce((s, g) => s + g.freeBlocks, 0)).toBe(r.freeBlocks);

  // The root directory holds exactly lost+found, which is an empty directory.
  const ls = await debugfs(img, "ls -l /");
  expect(ls.stdout).toMatch(/\s11\s+40700.*lost\+found/);
  const lpf = await debugfs(img, "ls /lost+found");
  // "." and ".." and then only empty slots (inode 0) filling the preallocated blocks.
  expect(lpf.stdout.replace(/\s+/g, " ")).toMatch(/^ ?11 \(12\) \. 2 \(\d+\) \.\.( 0 \(\d+\))* ?$/);
}

const SIZES: [string, number][] = [
  ["4 MiB (1 KiB blocks)", 4 * MiB],
  ["64 MiB", 64 * MiB],
  ["1 GiB", GiB],
  ["64 GiB sparse", 64 * GiB],
  ["2 TiB sparse", 2 * TiB],
];
const VARIANTS: [string, MkfsOptions][] = [
  ["metadata_csum + journal", {}],
  ["no metadata_csum, no journal", { metadataCsum: false, journal: false }],
];

describe("mkfs matrix: e2fsck -fn exits 0 and dumpe2fs shows what was asked", () => {
  for (const [sizeName, size] of SIZES) {
    for (const lazy of [true, false]) {
      for (const [vname, v] of VARIANTS) {
        const o = { ...v, lazyItableInit: lazy };
        it.concurrent(`${sizeName}, ${lazy ? "lazy" : "non-lazy"}, ${vname}`, async () => {
          const { img, r } = await format(size, o);
          await checkImage(img, r, o);
          rmSync(img);
        });
      }
    }
  }
});

describe("mkfs feature and geometry variants", () => {
  const cases: [string, number, MkfsOptions][] = [
    ["journal without metadata_csum", 256 * MiB, { metadataCsum: false }],
    ["metadata_csum without journal", 256 * MiB, { journal: false }],
    ["2 KiB blocks, 128-byte inodes", 300 * MiB, { blockSize: 2048, inodeSize: 128 }],
    ["no flex_bg", 1 * GiB, { flexBgSize: 1 }],
    ["flex_bg of 4, 1 KiB blocks", 200 * MiB, { flexBgSize: 4, blockSize: 1024 }],
    ["32-bit (no 64bit)", 8 * GiB, { bit64: false }],
    ["inode ratio 1 MiB, 0% reserved", 4 * GiB, { inodeRatio: 1 << 20, reservedPercent: 0 }],
    ["odd size: short last group", 100 * MiB + 12345 * 1024, {}],
    ["4 KiB blocks on a small volume", 16 * MiB, { blockSize: 4096 }],
    ["more than 2^32 blocks (8 TiB + 64 MiB, 2 KiB blocks)", 8 * TiB + 64 * MiB, { blockSize: 2048 }],
  ];
  for (const [name, size, o] of cases) {
    it.concurrent(name, async () => {
      const { img, r } = await format(size, o);
      await checkImage(img, r, o);
      rmSync(img);
    });
  }
});

describe("mkfs at the 16 TiB limit", () => {
  it("formats 2^32 4 KiB blocks lazily in few, large device requests", async () => {
    // The host filesystem cannot hold a 16 TiB file for e2fsck, so this checks the I/O
    // shape and the counts; the 8 TiB 2 KiB-block case above covers > 2^32 blocks on disk.
    const dev = new MemoryDevice(16 * TiB);
    const r = await mkfs(dev, {});
    expect(r.blocksCount).toBe(2 ** 32);
    expect(r.groups).toBe(131072);
    const s = dev.stats;
    const blocksWritten = s.bytesWritten / r.blockSize;
    expect(s.writes).toBeLessThan(blocksWritten / 4);
    expect(s.writes).toBeLessThan(20_000);
  });
});

describe("mkfs picks mke2fs's defaults", () => {
  for (const size of [8 * MiB, 600 * MiB, 5 * GiB, 100 * GiB]) {
    it.concurrent(`${size / MiB} MiB`, async () => {
      const ref = join(tmp.dir, `ref${counter++}.img`);
      writeFileSync(ref, "");
      truncateSync(ref, size);
      const mk = await run(tool("mke2fs"), ["-t", "ext4", "-F", "-q", "-E", "lazy_itable_init=1,lazy_journal_init=1", ref]);
      expect(mk.code, mk.stderr).toBe(0);
      const want = await dumpe2fsHeader(ref);
      rmSync(ref);
      const { img, r } = await format(size, {});
      rmSync(img);
      expect(r.blockSize).toBe(Number(want.get("Block size")));
      expect(r.blocksPerGroup).toBe(Number(want.get("Blocks per group")));
      expect(r.journalBlocks).toBe(Number(want.get("Total journal blocks")));
      expect(r.inodeSize).toBe(Number(want.get("Inode size")));
      // Inode counts agree up to rounding to whole inode-table blocks per group.
      const theirs = Number(want.get("Inode count"));
      expect(Math.abs(r.inodesCount - theirs) / theirs).toBeLessThan(0.02);
    });
  }
});

describe("mkfs refuses bad input with FsError", () => {
  const dev = new MemoryDevice(64 * MiB);
  const cases: [string, MkfsOptions, string][] = [
    ["block size 8192", { blockSize: 8192 as 4096 }, "EINVAL"],
    ["inode size 512", { inodeSize: 512 as 256 }, "EINVAL"],
    ["label of 17 bytes", { label: "x".repeat(17) }, "EINVAL"],
    ["label with multibyte characters over 16 bytes", { label: "ééééééééé" }, "EINVAL"],
    ["malformed uuid", { uuid: "not-a-uuid" }, "EINVAL"],
    ["inode ratio 100", { inodeRatio: 100 }, "EINVAL"],
    ["flex_bg size 3", { flexBgSize: 3 }, "EINVAL"],
    ["reserved 60%", { reservedPercent: 60 }, "EINVAL"],
    ["size larger than the device", { size: 128 * MiB }, "ENOSPC"],
    ["size below 4 MiB", { size: 1 * MiB }, "ENOSPC"],
    ["negative size", { size: -5 }, "EINVAL"],
    ["non-boolean flag", { journal: "yes" as unknown as boolean }, "EINVAL"],
  ];
  for (const [name, o, code] of cases) {
    it(name, async () => {
      const err = await mkfs(dev, o).then(() => undefined, (e) => e);
      expect(err).toBeInstanceOf(FsError);
      expect((err as FsError).code).toBe(code);
      expect((err as FsError).message.length).toBeGreaterThan(20);
    });
  }
  it("more than 16 TiB", async () => {
    const err = await mkfs(new MemoryDevice(17 * TiB), {}).catch((e) => e);
    expect(err).toBeInstanceOf(FsError);
    expect(err.code).toBe("EINVAL");
  });
  it("16 TiB without 64bit", async () => {
    const err = await mkfs(new MemoryDevice(16 * TiB), { bit64: false }).catch((e) => e);
    expect(err.code).toBe("EINVAL");
    expect(err.message).toMatch(/64bit/);
  });
  it("4 TiB with 1 KiB blocks (descriptor table too big for a group)", async () => {
    const err = await mkfs(new MemoryDevice(4 * TiB), { blockSize: 1024 }).catch((e) => e);
    expect(err.code).toBe("EINVAL");
    expect(err.message).toMatch(/block size/);
  });
});
