/**
 * Orphans left behind by a crash, finished by the next read-write mount.
 *
 * The oracle is e2fsck itself: e2fsck -fy on a copy of the crashed image processes the
 * orphan list the way Linux does (frees unlinked inodes, truncates linked ones to i_size).
 * Our mount must reach an image that e2fsck -fn passes with exactly the free block and
 * inode counts e2fsck's own recovery reached. Orphan lists come from three sources: our
 * engine crashing at many points (FaultyDevice), debugfs edits of a mke2fs image (classic
 * chain, including a truncate orphan), and an orphan_file entry on a mke2fs -O orphan_file
 * image, whose block checksum is recomputed here with an independent CRC32C.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice } from "../../bindings/index.ts";
import { FaultyDevice } from "../../bindings/devices/faulty.ts";
import type { Volume } from "../../bindings/fs/volume.ts";
import type { InodeGc } from "../../bindings/sched/inodegc.ts";
import { e2fsck, dumpe2fsHeader, debugfs, run, saveSparse, tempDir, tool } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("inodegc-rec-");
afterAll(() => tmp.cleanup());
let n = 0;
const path = (name: string) => join(tmp.dir, `${n++}-${name}`);

async function counts(img: string): Promise<{ blocks: string; inodes: string; orphan: string | undefined }> {
  const h = await dumpe2fsHeader(img);
  return { blocks: h.get("Free blocks")!, inodes: h.get("Free inodes")!, orphan: h.get("First orphan inode") };
}

/** What e2fsck's own orphan processing makes of img (on a copy). */
async function e2fsckRecovery(img: string): Promise<{ blocks: string; inodes: string }> {
  const copy = path("ref.img");
  copyFileSync(img, copy);
  const r = await run(tool("e2fsck"), ["-fy", copy]);
  expect(r.code, r.stdout + r.stderr).toBeLessThanOrEqual(1);
  const c = await counts(copy);
  return { blocks: c.blocks, inodes: c.inodes };
}

/** Mount img read-write with our engine, unmount, and judge the result against e2fsck's recovery. */
async function recoverAndJudge(img: string): Promise<Volume> {
  const ref = await e2fsckRecovery(img);
  const dev = MemoryDevice.from(new Uint8Array(readFileSync(img)));
  const vol = await mount(dev);
  await vol.unmount();
  const out = path("ours.img");
  await saveSparse(dev, out);
  const fsck = await e2fsck(out);
  expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  const c = await counts(out);
  expect(c.orphan).toBeUndefined();
  expect({ blocks: c.blocks, inodes: c.inodes }).toEqual(ref);
  expect((await dumpe2fsHeader(out)).get("Filesystem features")).not.toMatch(/orphan_present/);
  return vol;
}

describe("crash during a burst of unlinks", () => {
  let withOrphans = 0;
  // Crash points: the k-th device flush (every sync ends in one) and the k-th write.
  const points: [("flush" | "write"), number][] = [
    ["flush", 3], ["flush", 4], ["flush", 5], ["flush", 6], ["flush", 8],
    ["write", 40], ["write", 90], ["write", 150], ["write", 230],
  ];
  for (const [kind, k] of points) {
    it(`crash at ${kind} #${k}: remount finishes the orphans, nothing leaks`, async () => {
      const mem = new MemoryDevice(32 << 20);
      await mkfs(mem, { blockSize: 1024 });
      const dev = new FaultyDevice(mem, { crashWhen: FaultyDevice.nth(kind, k), seed: k });
      let vol: Volume | undefined;
      try {
        vol = await mount(dev, { inodegc: { lanes: 2 } });
        const blk = new Uint8Array(1024).fill(7);
        for (let i = 0; i < 24; i++) {
          const fh = await vol.open(`/f${i}`, "w");
          for (let e = 0; e < 12; e++) await fh.write(blk, 0, 1024, e * 2048);
          await fh.close();
        }
        await vol.sync();
        const held = [];
        for (let i = 0; i < 24; i += 3) held.push(await vol.open(`/f${i}`, "r"));
        for (let i = 0; i < 24; i++) {
          await vol.unlink(`/f${i}`);
          if (i % 4 === 3) await vol.sync();
          if (i % 6 === 5) await held.shift()?.close();
        }
        await vol.sync();
      } catch {
        // The crash surfaces as EIO somewhere in the burst.
      }
      if (vol) await vol.background.get<InodeGc>("inodegc")?.stop();
      await dev.crash();
      expect(dev.crashed).toBe(true);
      const img = path(`crash-${kind}-${k}.img`);
      await saveSparse(mem, img);
      if ((await counts(img)).orphan !== undefined) withOrphans++;
      await recoverAndJudge(img);
    });
  }
  it("some crash points left a non-empty orphan list behind (the recovery above was exercised)", () => {
    expect(withOrphans).toBeGreaterThanOrEqual(3);
  });
});

describe("orphan lists written by other tools", () => {
  /** mke2fs -d of six files of 40+ KiB, 1 KiB blocks. */
  async function build(extra: string[]): Promise<string> {
    const src = path("src");
    mkdirSync(src);
    for (let i = 0; i < 6; i++) writeFileSync(join(src, `f${i}`), Buffer.alloc(40 * 1024 + i * 4096, i + 1));
    const img = path("mke2fs.img");
    const r = await run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "1024", ...extra, "-d", src, img, "16M"]);
    expect(r.code, r.stderr).toBe(0);
    return img;
  }

  async function ino(img: string, name: string): Promise<number> {
    const r = await debugfs(img, `stat /${name}`);
    return Number(/Inode: (\d+)/.exec(r.stdout)![1]);
  }

  async function dbw(img: string, cmds: string[]): Promise<void> {
    const script = path("cmds.txt");
    writeFileSync(script, cmds.join("\n") + "\n");
    const r = await run(tool("debugfs"), ["-w", "-f", script, img]);
    expect(r.code, r.stderr).toBe(0);
  }

  it("classic chain: two unlinked inodes and one truncate orphan (links kept, blocks past i_size)", async () => {
    const img = await build([]);
    const [a, b, c] = [await ino(img, "f1"), await ino(img, "f2"), await ino(img, "f3")];
    await dbw(img, [
      "unlink /f1", `sif <${a}> links_count 0`, `sif <${a}> dtime ${b}`,
      "unlink /f2", `sif <${b}> links_count 0`, `sif <${b}> dtime ${c}`,
      `sif <${c}> size 5000`, `sif <${c}> dtime 0`,
      `ssv last_orphan ${a}`,
    ]);
    expect((await counts(img)).orphan).toBe(String(a));
    await recoverAndJudge(img);
    const dev = MemoryDevice.from(new Uint8Array(readFileSync(img)));
    const vol = await mount(dev);
    expect((await vol.stat("/f3")).size).toBe(5000);
    expect((await vol.stat("/f3")).blocks).toBeLessThan(40 * 2);
    await expect(vol.stat("/f1")).rejects.toMatchObject({ code: "ENOENT" });
    await vol.unmount();
  });

  it("orphan_file: an entry in the orphan file is freed and its slot cleared", async () => {
    const img = await build(["-O", "orphan_file"]);
    const victim = await ino(img, "f4");
    const fileIno = Number((await dumpe2fsHeader(img)).get("Orphan file inode"));
    const ex = await debugfs(img, `ex <${fileIno}>`);
    const phys = Number(/\d+ -\s+\d+\s+(\d+) -/.exec(ex.stdout.split("\n")[1]!)![1]);
    const bytes = readFileSync(img);
    const bs = 1024;
    const block = bytes.subarray(phys * bs, phys * bs + bs);
    const genLine = /Generation: (\d+)/.exec((await debugfs(img, `stat <${fileIno}>`)).stdout)!;
    const gen = Number(genLine[1]);
    // Our independent checksum must reproduce mke2fs's on the untouched block first.
    expect(orphanBlockCsum(bytes, fileIno, gen, phys, block)).toBe(block.readUInt32LE(bs - 4));
    block.writeUInt32LE(victim, 0);
    block.writeUInt32LE(orphanBlockCsum(bytes, fileIno, gen, phys, block), bs - 4);
    writeFileSync(img, bytes);
    await dbw(img, ["unlink /f4", `sif <${victim}> links_count 0`, "feature orphan_present"]);
    expect((await dumpe2fsHeader(img)).get("Filesystem features")).toMatch(/orphan_present/);
    await recoverAndJudge(img);
  });

  it("orphan_file: our unlinks use the orphan file; e2fsck's recovery and ours agree; a clean unmount empties it", async () => {
    const img = await build(["-O", "orphan_file"]);
    const fileIno = Number((await dumpe2fsHeader(img)).get("Orphan file inode"));
    const victims = [await ino(img, "f1"), await ino(img, "f2"), await ino(img, "f3")];
    const dev = MemoryDevice.from(new Uint8Array(readFileSync(img)));
    const vol = await mount(dev, { inodegc: { lanes: 1 } });
    const gcs = vol.background.get<InodeGc>("inodegc")!;
    await gcs.stop();
    const open = await vol.open("/f3", "r");
    await vol.unlink("/f1");
    await vol.unlink("/f2");
    await vol.unlink("/f3"); // open: an orphan until the last close
    // The image as a crash would leave it: queued orphans on disk, nothing freed.
    await vol.metaLock.run(() => vol.cache.flush());
    await (vol as unknown as { writeSuper(clean: boolean): Promise<void> }).writeSuper(false);
    const crashed = path("crashed.img");
    await saveSparse(dev, crashed);
    const h = await dumpe2fsHeader(crashed);
    expect(h.get("Filesystem features")).toMatch(/orphan_present/);
    expect(h.get("First orphan inode")).toBeUndefined(); // not the classic chain
    const dumpPath = path("orphan-file");
    expect((await run(tool("debugfs"), ["-R", `dump <${fileIno}> ${dumpPath}`, crashed])).code).toBe(0);
    const dumped = readFileSync(dumpPath);
    const entries: number[] = [];
    for (let i = 0; i + 4 <= dumped.length; i += 4) if (dumped.readUInt32LE(i) !== 0) entries.push(dumped.readUInt32LE(i));
    for (const v of victims) expect(entries).toContain(v);
    await recoverAndJudge(crashed);
    // The live volume: close, drain, unmount — the orphan file ends empty and the flag clear.
    await open.close();
    gcs.start();
    await vol.unmount();
    const done = path("done.img");
    await saveSparse(dev, done);
    const fsck = await e2fsck(done);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    expect((await dumpe2fsHeader(done)).get("Filesystem features")).not.toMatch(/orphan_present/);
    const after = path("orphan-file-after");
    await run(tool("debugfs"), ["-R", `dump <${fileIno}> ${after}`, done]);
    const rest = readFileSync(after);
    const bs = 1024;
    for (let b = 0; b < rest.length; b += bs) expect(rest.subarray(b, b + bs - 8).every((x) => x === 0)).toBe(true);
  });
});

/** crc32c (Castagnoli), no final inversion, as ext4 chains it. */
function crc32c(seed: number, data: Uint8Array): number {
  let c = seed >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return c >>> 0;
}

/** ext4 orphan-file block checksum: fs seed → le32 inode, le32 generation, le64 block, entries. */
function orphanBlockCsum(image: Buffer, fileIno: number, gen: number, phys: number, block: Buffer): number {
  const uuid = image.subarray(1024 + 0x68, 1024 + 0x78);
  const le = (v: number, w: number) => {
    const b = Buffer.alloc(w);
    if (w === 8) b.writeBigUInt64LE(BigInt(v));
    else b.writeUInt32LE(v);
    return b;
  };
  let c = crc32c(0xffffffff, uuid);
  c = crc32c(c, le(fileIno, 4));
  c = crc32c(c, le(gen, 4));
  c = crc32c(c, le(phys, 8));
  return crc32c(c, block.subarray(0, block.length - 8));
}
