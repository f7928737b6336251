/**
 * Image scaffolding for dir-write.test.ts: an e2fsprogs-made image with a directory and
 * a handful of target inodes, mounted with our engine; a model of the directory's
 * entries; and the e2fsprogs checks (e2fsck -fn, debugfs ls -p / htree) it is judged by.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { MemoryDevice, mount } from "../../bindings/index.ts";
import type { Volume } from "../../bindings/fs/volume.ts";
import { DirWriter } from "../../bindings/fs/dir_write.ts";
import { CacheHandle } from "../../bindings/journal/handle.ts";
import { tool, toolStatus } from "./e2fs-oracle.ts";
import { listDir } from "./dir-helpers.ts";
import { TestAllocator, TestDir, finishImage } from "./dir-write-fixture.ts";

export interface ImageSpec {
  blockSize: 1024 | 4096;
  csum: boolean;
  dirIndex: boolean;
  largeDir?: boolean;
  /** Extra mke2fs -O features, e.g. "^filetype". */
  features?: string[];
  /** Image size for mke2fs in MiB (default 64). */
  mib?: number;
  /** Grow /d to this many blocks with debugfs expand_dir (a linear multi-block directory). */
  expandTo?: number;
}

/** A target inode entries may point at: its number and the FT_* its mode implies. */
export interface Target {
  name: string;
  ino: number;
  type: number;
}

export interface Setup {
  img: string;
  vol: Volume;
  dev: MemoryDevice;
  writer: DirWriter;
  alloc: TestAllocator;
  targets: Target[];
  /** Inode numbers of paths created by `extraDirs`. */
  inos: Map<string, number>;
}

/** mke2fs + debugfs: directory /d (and extra directories), targets t0..t5 (files), l0 (symlink), p0 (fifo). */
export async function makeSetup(dir: string, label: string, spec: ImageSpec, extraDirs: string[] = []): Promise<Setup> {
  const img = join(dir, `${label}.img`);
  const feats = [
    spec.csum ? "metadata_csum" : "^metadata_csum",
    spec.dirIndex ? "dir_index" : "^dir_index",
    ...(spec.largeDir ? ["large_dir"] : []),
    ...(spec.features ?? []),
  ];
  const mib = spec.mib ?? 64;
  // Fixed UUID and hash seed (derived from the label) make every run see the same hashes.
  const hex = createHash("sha256").update(label).digest("hex");
  const uuid = (o: number) => `${hex.slice(o, o + 8)}-${hex.slice(o + 8, o + 12)}-4${hex.slice(o + 13, o + 16)}-8${hex.slice(o + 17, o + 20)}-${hex.slice(o + 20, o + 32)}`;
  tool("mke2fs", [
    "-q", "-F", "-t", "ext4", "-b", String(spec.blockSize), "-O", feats.join(","), "-U", uuid(0), "-E", `hash_seed=${uuid(32)}`,
    img, `${mib}M`,
  ]);
  const empty = join(dir, "empty");
  writeFileSync(empty, "");
  // Allocating most of the volume once and freeing it clears every group's BLOCK_UNINIT,
  // so the test allocator (which only reads initialised bitmaps) can use every group.
  const most = Math.floor(((mib << 20) / spec.blockSize) * 0.8);
  const lines = [`write ${empty} big`, `fallocate big 0 ${most}`, "rm big", "mkdir d", ...extraDirs.map((d) => `mkdir ${d}`)];
  for (let i = 1; i < (spec.expandTo ?? 0); i++) lines.push("expand_dir d");
  for (let i = 0; i < 6; i++) lines.push(`write ${empty} t${i}`);
  lines.push("symlink l0 somewhere", "mknod p0 p");
  tool("debugfs", ["-w", "-f", "-", img], lines.join("\n") + "\n");
  const root = listDir(img, "/");
  const find = (n: string) => root.find((e) => e.name.toString() === n)!.ino;
  const targets: Target[] = [
    ...Array.from({ length: 6 }, (_, i) => ({ name: `t${i}`, ino: find(`t${i}`), type: 1 })),
    { name: "l0", ino: find("l0"), type: 7 },
    { name: "p0", ino: find("p0"), type: 5 },
  ];
  const inos = new Map<string, number>();
  for (const p of ["/d", ...extraDirs.map((d) => `/${d}`)]) inos.set(p, inoOf(img, p));
  const dev = MemoryDevice.from(new Uint8Array(readFileSync(img)));
  const vol = await mount(dev, {});
  return { img, vol, dev, writer: new DirWriter(vol), alloc: new TestAllocator(vol), targets, inos };
}

export function inoOf(img: string, path: string): number {
  const m = /Inode: (\d+)/.exec(tool("debugfs", ["-R", `stat ${path}`, img]));
  if (!m) throw new Error(`no inode for ${path}`);
  return Number(m[1]);
}

/** Run fn in one handle over a fresh TestDir for directory inode ino. */
export async function withDir<T>(s: Setup, ino: number, fn: (h: CacheHandle, d: TestDir) => Promise<T>): Promise<T> {
  const h = new CacheHandle(s.vol.cache);
  try {
    const d = await TestDir.open(s.vol, s.alloc, ino);
    return await fn(h, d);
  } finally {
    await h.stop();
  }
}

/**
 * Write the image out, then set every target's link count to 1 (its name in /) plus the
 * number of model entries naming it (debugfs sif), so e2fsck can judge the directory.
 */
export async function writeOut(s: Setup, links: Map<number, number>): Promise<void> {
  await finishImage(s.vol, s.dev, s.img);
  const lines = s.targets.map((t) => `sif <${t.ino}> links_count ${1 + (links.get(t.ino) ?? 0)}`);
  tool("debugfs", ["-w", "-f", "-", s.img], lines.join("\n") + "\n");
}

/** e2fsck -fn: exit status and output. */
export function fsckImage(img: string): { status: number; out: string } {
  return toolStatus("e2fsck", ["-fn", img]);
}

/** `debugfs ls -p dir` without "." and "..": name (hex) → [inode, FT from the mode]. */
export function listing(img: string, path: string): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  for (const e of listDir(img, path)) {
    const n = e.name.toString("latin1");
    if (n === "." || n === "..") continue;
    const key = e.name.toString("hex");
    if (m.has(key)) throw new Error(`duplicate name ${n} in ${path}`);
    m.set(key, [e.ino, e.type]);
  }
  return m;
}

/** Indirect levels of the htree root as `debugfs htree` prints it (-1: not indexed). */
export function htreeLevels(img: string, path: string): number {
  const r = toolStatus("debugfs", ["-R", `htree ${path}`, img]);
  const m = /Indirect levels: (\d+)/.exec(r.out);
  return m ? Number(m[1]) : -1;
}

/** i_flags of an inode as debugfs stat prints it. */
export function inodeFlags(img: string, path: string): number {
  const m = /Flags: 0x([0-9a-f]+)/.exec(tool("debugfs", ["-R", `stat ${path}`, img]));
  return m ? parseInt(m[1], 16) : -1;
}

/** Links and types of a (name hex → [ino, type]) model, counted per inode. */
export function linkCounts(model: Map<string, [number, number]>): Map<number, number> {
  const c = new Map<number, number>();
  for (const [ino] of model.values()) c.set(ino, (c.get(ino) ?? 0) + 1);
  return c;
}
