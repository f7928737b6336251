/**
 * The block and inode allocators, judged by e2fsprogs. Volumes come from our mkfs (1 and
 * 4 KiB blocks, flex_bg or not, metadata_csum or uninit_bg) and from mke2fs (defaults,
 * no group checksums at all, meta_bg); every scenario ends with Rig.check(): e2fsck -fn
 * must report exactly the blocks and inodes the model says are allocated, and nothing
 * else, and dumpe2fs must show our descriptors and verifiable bitmap checksums.
 */
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "../helpers/e2fsprogs.ts";
import { csumContext, fixGroupDescCsum } from "../helpers/csum-ref.ts";
import { CacheHandle } from "../../bindings/journal/handle.ts";
import { Allocator } from "../../bindings/fs/alloc.ts";
import { mount, mkfs, MemoryDevice } from "../../bindings/index.ts";
import { Rig, rejection, inRanges } from "./alloc-rig.ts";

const MiB = 2 ** 20;
const tmp = tempDir("alloc-");
afterAll(() => tmp.cleanup());

/** The engine's view of the layout agrees with dumpe2fs's: prefixes and metadata blocks. */
function checkLayout(r: Rig): void {
  const x = r.x;
  for (let g = 0; g < r.groups; g++) {
    const base = x.allocGroupBaseBlocks(g) >>> 0;
    const listed = r.layout.prefix.get(g) ?? [];
    const start = r.groupStart(g);
    const blocks = listed.reduce((s, [a, b]) => s + b - a + 1, 0);
    expect(blocks, `group ${g} superblock/descriptor prefix`).toBe(base);
    for (const [a, b] of listed) {
      expect(a).toBeGreaterThanOrEqual(start);
      expect(b).toBeLessThan(start + base);
    }
  }
  for (const [a, b] of r.layout.metadata) {
    expect(x.allocMetaFirst(a, b - a + 1), `metadata ${a}-${b}`).toBe(a);
    if (a > r.first) {
      const before = a - 1;
      if (!inRanges(before, r.layout.metadata)) expect(x.allocMetaFirst(before, 1)).toBe(-1);
      expect(x.allocMetaFirst(before, 2)).toBe(inRanges(before, r.layout.metadata) ? before : a);
    }
  }
}

/**
 * A mixed workload: single blocks chained on their goal, a long run near a goal, a run
 * that meets a group boundary, inodes (top-level and nested directories, files), frees
 * (also from the middle of a run), and refused frees that must change nothing.
 */
async function workload(r: Rig): Promise<void> {
  checkLayout(r);
  const a = r.alloc;
  // Chained single blocks: each goal is the previous block + 1, so they stay contiguous
  // except where metadata or a group end intervenes.
  let goal = a.goalForInode(12, false);
  let breaks = 0;
  let prev = -1;
  for (let i = 0; i < 300; i++) {
    const got = await r.allocBlocks(goal, 1);
    if (prev >= 0 && got.start !== prev + 1) breaks++;
    prev = got.start;
    goal = got.start + 1;
  }
  expect(breaks).toBeLessThanOrEqual(2);

  // A long run near a goal inside a middle group gets one extent in that group, at or after the goal.
  const g = Math.min(3, r.groups - 2);
  const goal2 = r.groupStart(g) + Math.floor(r.bpg / 4);
  const free = r.x.groupFreeBlocks(g) >>> 0;
  const long = await r.allocBlocks(goal2, 1000);
  if (free >= 1000 + r.bpg / 4) {
    expect(long.len).toBe(1000);
    expect(r.groupOf(long.start)).toBe(g);
    expect(long.start).toBeGreaterThanOrEqual(goal2);
  }

  // A goal 20 blocks before a group's end: the run stops at the boundary (the next group
  // may start with a superblock copy); asking again from its end continues after the
  // next group's superblock prefix if that block is free.
  const g3 = Math.min(1, r.groups - 1);
  const edge = r.groupStart(g3) - 20;
  const wasFree = (b: number) => inRanges(b, r.layout.free) && !r.blocks[b];
  const edgeFree = Array.from({ length: 20 }, (_, i) => edge + i).every(wasFree);
  const e1 = await r.allocBlocks(edge, 100);
  if (edgeFree) expect(e1).toEqual({ start: edge, len: 20 });
  const after = r.groupStart(g3) + (r.x.allocGroupBaseBlocks(g3) >>> 0);
  const afterFree = wasFree(after);
  const e2 = await r.allocBlocks(r.groupStart(g3), 100);
  if (afterFree) expect(e2.start).toBe(after);

  // Inodes: top-level directories, a nested one, files in it and in the root.
  const tops: number[] = [];
  for (let i = 0; i < 4; i++) tops.push(await r.allocInode(2, true));
  const nested = await r.allocInode(tops[0]!, true);
  const files: number[] = [];
  for (let i = 0; i < 10; i++) files.push(await r.allocInode(nested, false));
  for (let i = 0; i < 5; i++) files.push(await r.allocInode(2, false));

  // Frees: the middle of the long run, some single blocks, a file and a directory.
  const mid = long.start + Math.floor(long.len / 4);
  const midLen = Math.floor(long.len / 2);
  await r.freeBlocks(mid, midLen);
  for (let b = prev - 10; b < prev; b += 2) if (r.blocks[b]) await r.freeBlocks(b, 1);
  await r.freeInode(files[3]!);
  await r.freeInode(tops[3]!);

  // Refusals leave everything as it was (check() proves it).
  expect((await rejection(r.op((h) => a.freeBlocks(h, mid, midLen)))).code).toBe("EFSCORRUPTED");
  expect((await rejection(r.op((h) => a.freeBlocks(h, mid - 1, 2)))).code).toBe("EFSCORRUPTED"); // half free already
  const bitmapBlock = r.layout.groups[0]!.blockBitmap;
  expect((await rejection(r.op((h) => a.freeBlocks(h, bitmapBlock, 1)))).code).toBe("EFSCORRUPTED");
  const [itFirst] = r.layout.metadata.find(([s, e]) => r.layout.groups[0]!.inodeTable >= s && r.layout.groups[0]!.inodeTable <= e)!;
  expect((await rejection(r.op((h) => a.freeBlocks(h, itFirst, 1)))).code).toBe("EFSCORRUPTED");
  expect((await rejection(r.op((h) => a.freeBlocks(h, r.blocks.length - 1, 5)))).code).toBe("EFSCORRUPTED");
  expect((await rejection(r.op((h) => a.freeInode(h, 7, false)))).code).toBe("EINVAL");
  expect((await rejection(r.op((h) => a.freeInode(h, files[3]!, false)))).code).toBe("EFSCORRUPTED");
  const uninit = r.layout.groups.find((gi) => gi.flags.includes("BLOCK_UNINIT") && (r.x.ballocNeedsInit(gi.group) as number));
  if (uninit) {
    const b = r.groupStart(uninit.group) + (r.x.allocGroupBaseBlocks(uninit.group) >>> 0) + 5;
    expect((await rejection(r.op((h) => a.freeBlocks(h, b, 1)))).message).toMatch(/BLOCK_UNINIT/);
  }
  await r.check();
}

describe("allocators on mkfs volumes", () => {
  it("4 KiB blocks, flex_bg, metadata_csum (1 GiB, 8 groups)", async () => {
    await workload(await Rig.mkfs(tmp.dir, 1024 * MiB, { blockSize: 4096 }));
  });
  it("1 KiB blocks, flex_bg, metadata_csum", async () => {
    await workload(await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024 }));
  });
  it("1 KiB blocks, no flex_bg, uninit_bg without metadata_csum, 32-byte descriptors", async () => {
    await workload(await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024, flexBgSize: 1, metadataCsum: false, bit64: false }));
  });
  it("4 KiB blocks, flex_bg of 2, not lazy", async () => {
    await workload(await Rig.mkfs(tmp.dir, 1024 * MiB, { blockSize: 4096, flexBgSize: 2, lazyItableInit: false }));
  });
});

describe("allocators on mke2fs volumes", () => {
  it("mke2fs -t ext4 defaults (1 KiB blocks, resize_inode)", async () => {
    await workload(await Rig.mke2fs(tmp.dir, ["-b", "1024"], "64M"));
  });
  it("no group checksums at all (no UNINIT flags), 4 KiB blocks, no flex_bg", async () => {
    await workload(await Rig.mke2fs(tmp.dir, ["-b", "4096", "-g", "8192", "-O", "^metadata_csum,^uninit_bg,^flex_bg"], "128M"));
  });
  it("meta_bg with 64 small groups", async () => {
    await workload(await Rig.mke2fs(tmp.dir, ["-b", "1024", "-g", "1024", "-N", "2048", "-O", "meta_bg,^resize_inode,^64bit"], "64M"));
  });
});

describe("placement", () => {
  it("1000 blocks on an empty volume come as one run at the goal", async () => {
    for (const r of [
      await Rig.mkfs(tmp.dir, 1024 * MiB, { blockSize: 4096 }),
      await Rig.mke2fs(tmp.dir, ["-b", "4096", "-g", "4096"], "128M"),
    ]) {
      for (const [ino, isDir] of [[12, false], [12, true], [r.ipg * 5 + 1, false]] as const) {
        const goal = r.alloc.goalForInode(ino, isDir);
        const got = await r.allocBlocks(goal, 1000);
        expect(got.len).toBe(1000);
        // At the goal, or past blocks that were not free (metadata, earlier runs).
        expect(r.groupOf(got.start)).toBe(r.groupOf(goal));
        expect(got.start).toBeGreaterThanOrEqual(goal);
        for (let b = goal; b < got.start; b++) expect(inRanges(b, r.layout.free) && !r.blocks[b], `free block ${b} skipped`).toBe(false);
      }
      await r.check();
    }
  });

  it("spreads top-level directories and keeps nested ones and files near their parent", async () => {
    // No flex_bg: units are groups.
    const r = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024, flexBgSize: 1 });
    const group = (ino: number) => Math.floor((ino - 1) / r.ipg);
    const tops: number[] = [];
    for (let i = 0; i < 6; i++) tops.push(await r.allocInode(2, true));
    expect(new Set(tops.map(group)).size).toBe(6);
    for (const t of tops.slice(0, 3)) {
      const sub = await r.allocInode(t, true);
      expect(group(sub)).toBe(group(t));
      const f = await r.allocInode(sub, false);
      expect(group(f)).toBe(group(t));
    }
    await r.check();

    // flex_bg of 2 over 8 groups: four units, three top-level directories in three of them.
    const r2 = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024, flexBgSize: 2 });
    const units = new Set<number>();
    for (let i = 0; i < 3; i++) units.add(Math.floor(Math.floor(((await r2.allocInode(2, true)) - 1) / r2.ipg) / 2));
    expect(units.size).toBe(3);
    await r2.check();
  });

  it("initialises BLOCK_UNINIT and INODE_UNINIT groups on first use, as e2fsprogs would", async () => {
    const r = await Rig.mke2fs(tmp.dir, ["-b", "1024", "-g", "2048", "-N", "4096"], "64M");
    const uninitB = r.layout.groups.filter((g) => g.flags.includes("BLOCK_UNINIT")).map((g) => g.group);
    // (groups with free blocks: a file's inode follows its parent only where its data can too)
    const uninitI = r.layout.groups.filter((g) => g.flags.includes("INODE_UNINIT") && g.freeBlocks > 0).map((g) => g.group);
    expect(uninitB.length).toBeGreaterThan(8);
    expect(uninitI.length).toBeGreaterThan(8);
    // One block in every other BLOCK_UNINIT group, and one inode in every other INODE_UNINIT group
    // (files whose parent lives there land there first).
    for (const g of uninitB.filter((_, i) => i % 2 === 0)) {
      const got = await r.allocBlocks(r.groupStart(g) + 500, 1);
      expect(r.groupOf(got.start)).toBe(g);
    }
    for (const g of uninitI.filter((_, i) => i % 2 === 0)) {
      const ino = await r.allocInode(g * r.ipg + 1, false);
      expect(Math.floor((ino - 1) / r.ipg)).toBe(g);
      expect(ino).toBe(g * r.ipg + 1); // lowest free inode: the "in use" region grows by one
    }
    expect(r.alloc.stats().blockGroupsInitialised).toBeGreaterThanOrEqual(uninitB.length / 2);
    await r.check();
  });
});

describe("frees", () => {
  it("a free spanning two groups is all or nothing", async () => {
    const r = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024 });
    const edge = r.groupStart(4); // group 4: no superblock copy, tables in group 0
    expect(r.x.allocGroupBaseBlocks(4) >>> 0).toBe(0);
    expect(await r.allocBlocks(edge - 10, 10)).toEqual({ start: edge - 10, len: 10 });
    expect(await r.allocBlocks(edge, 10)).toEqual({ start: edge, len: 10 });
    await r.freeBlocks(edge + 5, 5);
    // [edge-10, edge+10) is half free in group 4: refused as a whole, group 3 untouched.
    const e = await rejection(r.op((h) => r.alloc.freeBlocks(h, edge - 10, 20)));
    expect(e.code).toBe("EFSCORRUPTED");
    expect(e.message).toMatch(/already free/);
    await r.check();
    await r.freeBlocks(edge - 10, 15);
    await r.check();
  });
});

describe("running out", () => {
  it("allocates every block, then ENOSPC, and the volume stays consistent", async () => {
    const r = await Rig.mkfs(tmp.dir, 16 * MiB, { blockSize: 1024, inodeRatio: 16384 });
    const total = r.alloc.totals().freeBlocks;
    let got = 0;
    for (;;) {
      const res = await r.op((h) => r.alloc.allocBlocks(h, 0, 700)).catch((e) => e);
      if (!("start" in res)) {
        expect(res.code).toBe("ENOSPC");
        break;
      }
      r.noteBlocks(res);
      got += res.len;
    }
    expect(got).toBe(total);
    expect(r.alloc.totals().freeBlocks).toBe(0);
    expect((await rejection(r.op((h) => r.alloc.allocBlocks(h, 5000, 1)))).code).toBe("ENOSPC");
    // Inodes too.
    const inodesFree = r.alloc.totals().freeInodes;
    let n = 0;
    for (;;) {
      const res = await r.op((h) => r.alloc.allocInode(h, 2, n % 7 === 0)).catch((e) => e);
      if (typeof res !== "number") {
        expect(res.code).toBe("ENOSPC");
        break;
      }
      r.noteInode(res, n % 7 === 0);
      n++;
    }
    expect(n).toBe(inodesFree);
    await r.check();
    // Freed space is usable again.
    await r.freeBlocks(r.groupStart(1) + 100, 50);
    const again = await r.allocBlocks(0, 50);
    expect(again).toEqual({ start: r.groupStart(1) + 100, len: 50 });
    await r.check();
  });

  it("reserveForRoot keeps the reserved blocks back", async () => {
    const r = await Rig.mkfs(tmp.dir, 16 * MiB, { blockSize: 1024, reservedPercent: 5 }, { reserveForRoot: true });
    const reserved = r.vol.sb.reservedBlocks;
    expect(reserved).toBeGreaterThan(0);
    for (;;) {
      const res = await r.op((h) => r.alloc.allocBlocks(h, 0, 500)).catch((e) => e);
      if (!("start" in res)) {
        expect(res.code).toBe("ENOSPC");
        break;
      }
      r.noteBlocks(res);
    }
    expect(r.alloc.totals().freeBlocks).toBe(reserved);
    // Without the option the same volume hands out the rest.
    const all = new Allocator(r.vol);
    const h = new CacheHandle(r.vol.cache);
    r.noteBlocks(await all.allocBlocks(h, 0, 1));
    await h.stop();
    await r.check();
  });
});

describe("concurrency", () => {
  it("concurrent requests in the same groups never share a block or an inode", async () => {
    const r = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024 });
    const goals = Array.from({ length: 48 }, (_, i) => r.groupStart(i % r.groups) + 300 + (i % 5));
    const blocks = goals.map((goal, i) => r.op((h) => r.alloc.allocBlocks(h, goal, 1 + (i % 4) * 37)));
    const inodes = Array.from({ length: 48 }, (_, i) => r.op((h) => r.alloc.allocInode(h, i % 3 === 0 ? 2 : 12 + i, i % 2 === 0)));
    const [bs, is] = await Promise.all([Promise.all(blocks), Promise.all(inodes)]);
    for (const b of bs) r.noteBlocks(b);
    is.forEach((ino, i) => r.noteInode(ino, i % 2 === 0));
    expect(r.alloc.stats().liveLocks).toBe(0);
    await r.check();
  });
});

describe("locks and scale", () => {
  it("an exclusive inode lock on a group (lazy init) holds back inode allocation there", async () => {
    const r = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024, flexBgSize: 1 });
    const release = await r.alloc.lockGroupInodes(3, "exclusive");
    let done = false;
    const p = r.allocInode(3 * r.ipg + 1, false).then((ino) => {
      done = true;
      return ino;
    });
    // Allocation elsewhere proceeds meanwhile.
    const other = await r.allocInode(5 * r.ipg + 1, false);
    expect(Math.floor((other - 1) / r.ipg)).toBe(5);
    await new Promise((res) => setTimeout(res, 20));
    expect(done).toBe(false);
    release();
    expect(Math.floor(((await p) - 1) / r.ipg)).toBe(3);
    expect(r.alloc.stats().liveLocks).toBe(0);
    await r.check();
  });

  it("on a 2 TiB volume, deciding where to allocate reads no bitmaps", async () => {
    const dev = new MemoryDevice(2 * 2 ** 40);
    await mkfs(dev, { blockSize: 4096, timestamp: 1_700_000_000 });
    const vol = await mount(dev, {});
    const t0 = performance.now();
    const a = new Allocator(vol);
    const initMs = performance.now() - t0;
    expect(initMs).toBeLessThan(2000);
    const reads = () => vol.cache.stats().readBlocks;
    const h = new CacheHandle(vol.cache);
    const top: number[] = [];
    const before = reads();
    for (let i = 0; i < 8; i++) top.push(await a.allocInode(h, 2, true));
    // Each inode: at most its group's inode bitmap and descriptor block were read.
    expect(reads() - before).toBeLessThanOrEqual(16);
    expect(new Set(top.map((ino) => Math.floor((ino - 1) / (vol.engine.x.geoInodesPerGroup() >>> 0) / 16))).size).toBe(8);
    const b0 = reads();
    const got = await a.allocBlocks(h, 300_000_000, 1000);
    expect(got).toEqual({ start: 300_000_000, len: 1000 });
    expect(reads() - b0).toBeLessThanOrEqual(2);
    await h.stop();
  });
});

describe("corruption", () => {
  it("skips a group whose block bitmap fails its checksum and says so", async () => {
    const r0 = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024 });
    const g1 = r0.layout.groups[1]!;
    expect(g1.flags).not.toContain("BLOCK_UNINIT");
    const bm = new Uint8Array(r0.bs);
    await r0.dev.read(g1.blockBitmap * r0.bs, bm);
    await r0.dev.write(g1.blockBitmap * r0.bs, bm.map((v) => v ^ 0x5a)); // garbage: checksum no longer matches
    const r = await Rig.open(r0.dev, tmp.dir, {}, true);
    const got = await r.allocBlocks(r.groupStart(1) + 3000, 10);
    expect(r.groupOf(got.start)).not.toBe(1);
    expect(r.alloc.problems.join("\n")).toMatch(/block group 1: block bitmap checksum mismatch/);
    expect(r.vol.warnings.join("\n")).toMatch(/group 1/);
    // Later requests do not retry it, and frees there are refused.
    expect(r.groupOf((await r.allocBlocks(r.groupStart(1) + 3000, 10)).start)).not.toBe(1);
    expect((await rejection(r.op((h) => r.alloc.freeBlocks(h, r.groupStart(1) + 3000, 1)))).code).toBe("EFSCORRUPTED");
  });

  it("skips a group whose descriptor fails its checksum", async () => {
    const r0 = await Rig.mkfs(tmp.dir, 64 * MiB, { blockSize: 1024 });
    const head = new Uint8Array(4096);
    await r0.dev.read(0, head);
    const descSize = csumContext(head).descSize;
    // bg_exclude_bitmap_lo (0x14): unused by us, covered by the checksum.
    await r0.dev.write((r0.first + 1) * r0.bs + 2 * descSize + 0x14, new Uint8Array([1, 2, 3, 4]));
    const r = await Rig.open(r0.dev, tmp.dir, {}, true);
    expect(r.vol.warnings.join("\n")).toMatch(/checksum/);
    const got = await r.allocBlocks(r.groupStart(2) + 100, 1);
    expect(r.groupOf(got.start)).not.toBe(2);
    expect(r.alloc.problems.join("\n")).toMatch(/block group 2: the group descriptor's checksum does not match/);
    const ino = await r.allocInode(2 * r.ipg + 1, false);
    expect(Math.floor((ino - 1) / r.ipg)).not.toBe(2);
    expect((await rejection(r.op((h) => r.alloc.freeBlocks(h, r.groupStart(2) + 100, 1)))).code).toBe("EFSCORRUPTED");
  });

  it("never hands out metadata a corrupt bitmap shows as free, and reports EFSCORRUPTED when nothing else is left", async () => {
    const r0 = await Rig.mke2fs(tmp.dir, ["-b", "1024", "-O", "^metadata_csum,^uninit_bg,^flex_bg,^resize_inode", "-N", "256"], "16M");
    const g1 = r0.layout.groups[1]!;
    // Clear group 1's bits for its own inode table (no checksums to notice).
    const it = g1.inodeTable - r0.groupStart(1);
    const bm = new Uint8Array(r0.bs);
    await r0.dev.read(g1.blockBitmap * r0.bs, bm);
    for (let b = it; b < it + 8; b++) bm[b >> 3]! &= ~(1 << (b & 7));
    await r0.dev.write(g1.blockBitmap * r0.bs, bm);
    const r = await Rig.open(r0.dev, tmp.dir);
    const got = await r.allocBlocks(g1.inodeTable, 4);
    expect(inRanges(got.start, r.layout.metadata)).toBe(false);
    expect(r.groupOf(got.start)).not.toBe(1);
    expect(r.alloc.problems.join("\n")).toMatch(/block group 1: the range covers filesystem metadata/);

    // Every bitmap full although the descriptors count free blocks: EFSCORRUPTED, not a loop.
    const r1 = await Rig.mke2fs(tmp.dir, ["-b", "1024", "-O", "^metadata_csum,^uninit_bg,^flex_bg", "-N", "256"], "16M");
    for (const g of r1.layout.groups) await r1.dev.write(g.blockBitmap * r1.bs, new Uint8Array(r1.bs).fill(0xff));
    for (const g of r1.layout.groups) await r1.dev.write(g.inodeBitmap * r1.bs, new Uint8Array(r1.bs).fill(0xff));
    const r2 = await Rig.open(r1.dev, tmp.dir);
    const e = await rejection(r2.op((h) => r2.alloc.allocBlocks(h, 0, 1)));
    expect(e.code).toBe("EFSCORRUPTED");
    expect(e.message).toMatch(/corrupt/);
    const ei = await rejection(r2.op((h) => r2.alloc.allocInode(h, 2, false)));
    expect(ei.code).toBe("EFSCORRUPTED");
  });

  it("refuses an uninitialised group whose free count disagrees with its layout", async () => {
    const r0 = await Rig.mke2fs(tmp.dir, ["-b", "1024"], "64M");
    const victim = r0.layout.groups.find((g) => g.flags.includes("BLOCK_UNINIT"))!.group;
    // Lower the victim's free-block count by one and re-checksum the descriptor, so only
    // the count betrays the damage.
    const head = new Uint8Array(4096);
    await r0.dev.read(0, head);
    const ctx = csumContext(head);
    const descAt = (r0.first + 1) * r0.bs + victim * ctx.descSize;
    const desc = new Uint8Array(ctx.descSize);
    await r0.dev.read(descAt, desc);
    const dv = new DataView(desc.buffer);
    dv.setUint16(0x0c, dv.getUint16(0x0c, true) - 1, true);
    fixGroupDescCsum(desc, ctx, 0, victim);
    await r0.dev.write(descAt, desc);
    const r = await Rig.open(r0.dev, tmp.dir);
    const got = await r.allocBlocks(r.groupStart(victim) + 10, 1);
    expect(r.groupOf(got.start)).not.toBe(victim);
    expect(r.alloc.problems.join("\n")).toMatch(new RegExp(`block group ${victim}: the uninitialised group's free count disagrees`));
  });
});

describe("arguments", () => {
  it("rejects bad arguments with EINVAL and leaves the volume alone", async () => {
    const r = await Rig.mkfs(tmp.dir, 16 * MiB, { blockSize: 1024 });
    const a = r.alloc;
    for (const [goal, want, min] of [[0, 0, 1], [0, 1.5, 1], [0, 5, 6], [0, -1, 1], [0, Number.NaN, 1], [0, 5, 0]]) {
      expect((await rejection(r.op((h) => a.allocBlocks(h, goal!, want!, min)))).code).toBe("EINVAL");
    }
    for (const ino of [0, -3, 1.5, r.vol.sb.inodesCount + 1]) {
      expect((await rejection(r.op((h) => a.allocInode(h, ino, false)))).code).toBe("EINVAL");
      expect((await rejection(r.op((h) => a.freeInode(h, ino, false)))).code).toBe("EINVAL");
    }
    expect((await rejection(r.op((h) => a.freeBlocks(h, 100, 0)))).code).toBe("EINVAL");
    // A goal outside the volume is only a hint.
    r.noteBlocks(await r.op((h) => a.allocBlocks(h, 1e15, 3)));
    r.noteBlocks(await r.op((h) => a.allocBlocks(h, -7, 3)));
    await r.check();
  });
});
