/**
 * The read fuzzer's parts, shared by the vitest file, its worker threads and
 * scripts/fuzz.mjs: small mke2fs images, where their metadata lives, seeded corruption
 * plans, and a walker that reads everything a mounted volume offers.
 *
 * Why targeted corruption: random bytes anywhere in an image mostly land in file data or
 * free space and prove nothing. Each mutation here picks a metadata structure located
 * once with debugfs/dumpe2fs (superblock, group descriptors, inodes, extent and indirect
 * blocks, directory blocks, htree root and interior nodes, slow symlink blocks, the
 * journal superblock, bitmaps) and damages it with bit flips, byte and field overwrites
 * with boundary values, zeroed or 0xff ranges, or another structure's bytes.
 *
 * Why recompute checksums: with metadata_csum nearly every mutation is caught by a
 * checksum first, so half of the cases on csum images recompute the damaged structure's
 * checksum (csum-ref.ts) and the damage reaches the parsers behind the check.
 *
 * A case is a pure function of (seed, index): planCase() draws it, applyPlan() applies it
 * to a copy of the pristine bytes, so the main thread can describe a case that hung in a
 * worker, and `FUZZ_SEED=s FUZZ_ONLY=i` replays one case.
 *
 * The walker's contract (what the test asserts): every failure is an FsError with a code
 * a read may legitimately give; nothing else is thrown; an EIO that wraps an internal
 * error (a trap or a JS exception inside the engine) counts as a failure too, because a
 * corrupt image must give EFSCORRUPTED, never an engine crash.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { FsError, type Volume } from "../../bindings/index.ts";
import { dumpe2fsHeader, run, tool } from "../helpers/e2fsprogs.ts";
import { makeTree, buildImage, Rng, type BuiltImage, type ImageVariant, type TreeManifest } from "../helpers/fixtures.ts";
import { listImage, statInodes, inodeLocations } from "../helpers/image-oracle.ts";
import {
  csumContext, fixSuperblockCsum, fixGroupDescCsum, fixInodeCsum, fixExtentBlockCsum, fixDirLeafCsum, fixDxNodeCsum, inodeSeed,
} from "../helpers/csum-ref.ts";

/** Codes a read of a (possibly corrupt) image may give. */
export const ALLOWED_CODES = new Set([
  "ENOENT", "ENOTDIR", "EISDIR", "ELOOP", "EFSCORRUPTED", "EIO", "EINVAL", "EROFS", "ENAMETOOLONG", "EOPNOTSUPP",
  "EFBIG", "EOVERFLOW", "ENOMEM",
]);

export type RegionKind = "sb" | "gdt" | "inode" | "extent" | "indirect" | "dir" | "dxroot" | "dxnode" | "symlink" | "journal" | "bitmap";

export interface Region {
  kind: RegionKind;
  offset: number;
  length: number;
  /** Owner inode and its generation (checksum seeds), group number for descriptors. */
  ino?: number;
  /** For inodes: debugfs' type ("directory", "symlink", "regular" …). */
  ftype?: string;
  gen?: number;
  group?: number;
}

export interface FuzzImage {
  name: string;
  path: string;
  blockSize: number;
  inodeSize: number;
  metadataCsum: boolean;
  regions: Region[];
}

export const FUZZ_VARIANTS: readonly ImageVariant[] = [
  { name: "ext4", fsType: "ext4", blockSize: 4096, inodeSize: 256, sizeMiB: 16, include: ["/big"] },
  { name: "ext4-1k-nocsum", fsType: "ext4", blockSize: 1024, inodeSize: 256, features: "^metadata_csum", sizeMiB: 8, include: ["/big"] },
  { name: "ext2", fsType: "ext2", blockSize: 4096, inodeSize: 256, sizeMiB: 8, include: ["/big"] },
];

/** The small tree the fuzz images are made from (an htree with an interior level at 1 KiB). */
export function makeFuzzTree(dir: string): TreeManifest {
  return makeTree(dir, {
    seed: 77, smallFiles: 24, bigFiles: 0, bigDirEntries: 800, bigDirNameLength: [150, 230], hugeSparse: false,
    longSymlinks: false, depth: 6, sparseScale: 16,
  });
}

/** Build the fuzz images and locate their metadata. */
export async function buildFuzzImages(dir: string, tree: TreeManifest): Promise<FuzzImage[]> {
  const out: FuzzImage[] = [];
  for (const v of FUZZ_VARIANTS) {
    const img = await buildImage(tree, v, join(dir, `fuzz-${v.name}.img`));
    out.push(await locateRegions(img));
  }
  return out;
}

/** Find every metadata structure of an image (debugfs and dumpe2fs, never our engine). */
export async function locateRegions(img: BuiltImage): Promise<FuzzImage> {
  const bytes = readFileSync(img.path);
  const h = await dumpe2fsHeader(img.path);
  const bs = Number(h.get("Block size"));
  const isz = Number(h.get("Inode size"));
  const first = Number(h.get("First block"));
  const bpg = Number(h.get("Blocks per group"));
  const groups = Math.ceil((Number(h.get("Block count")) - first) / bpg);
  const descSize = img.features.has("64bit") ? Number(h.get("Group descriptor size") ?? 64) : 32;
  const regions: Region[] = [{ kind: "sb", offset: 1024, length: 1024 }];
  const gdt = (first + 1) * bs;
  for (let g = 0; g < groups; g++) regions.push({ kind: "gdt", offset: gdt + g * descSize, length: descSize, group: g });

  const listing = await listImage(img.path);
  const inos = [...new Set([...[...listing.values()].map((e) => e.ino), ...(img.features.has("has_journal") ? [8] : [])])];
  const facts = await statInodes(img.path, inos);
  const locs = await inodeLocations(img.path, inos, bs);
  for (const ino of inos) {
    const f = facts.get(ino);
    const at = locs.get(ino);
    if (!f || at === undefined) continue;
    if (ino !== 8) regions.push({ kind: "inode", offset: at, length: isz, ino, gen: f.generation, ftype: f.type });
    for (const m of f.metaBlocks) {
      regions.push({ kind: m.kind.startsWith("ETB") ? "extent" : "indirect", offset: m.block * bs, length: bs, ino, gen: f.generation });
    }
    if (f.type === "directory") {
      const indexed = (f.flags & 0x1000) !== 0;
      for (const [l0, p0, n] of f.runs) {
        for (let k = 0; k < n; k++) {
          const off = (p0 + k) * bs;
          let kind: RegionKind = "dir";
          if (indexed && l0 + k === 0) kind = "dxroot";
          else if (indexed && bytes.readUInt32LE(off) === 0 && bytes.readUInt16LE(off + 4) === bs) kind = "dxnode";
          regions.push({ kind, offset: off, length: bs, ino, gen: f.generation });
        }
      }
    } else if (f.type === "symlink" && f.runs.length) {
      regions.push({ kind: "symlink", offset: f.runs[0]![1] * bs, length: bs, ino, gen: f.generation });
    } else if (ino === 8 && f.runs.length) {
      regions.push({ kind: "journal", offset: f.runs[0]![1] * bs, length: 1024, ino });
    }
  }
  const groupsText = (await run(tool("dumpe2fs"), [img.path])).stdout;
  for (const m of groupsText.matchAll(/(Block|Inode) bitmap at (\d+)/g)) {
    regions.push({ kind: "bitmap", offset: Number(m[2]) * bs, length: bs });
    if (regions.filter((r) => r.kind === "bitmap").length >= 8) break;
  }
  return { name: img.variant.name, path: img.path, blockSize: bs, inodeSize: isz, metadataCsum: img.features.has("metadata_csum"), regions };
}

// ---------------------------------------------------------------- plans

export type MutOp =
  | { op: "flip"; at: number; bit: number }
  | { op: "byte"; at: number; value: number }
  | { op: "u16" | "u32"; at: number; value: number | "inc" | "dec" }
  | { op: "fill"; at: number; length: number; value: number }
  | { op: "copy"; at: number; from: number; length: number };

export interface Mutation {
  region: number;
  kind: RegionKind;
  ops: MutOp[];
}

export interface CasePlan {
  index: number;
  /** Directed cases (classic corruptions) have a name. */
  name?: string;
  image: number;
  imageName: string;
  fixCsum: boolean;
  mutations: Mutation[];
}

const KIND_WEIGHTS: Array<[RegionKind, number]> = [
  ["sb", 8], ["gdt", 10], ["inode", 30], ["extent", 10], ["indirect", 10], ["dir", 12], ["dxroot", 8], ["dxnode", 6],
  ["symlink", 3], ["journal", 3], ["bitmap", 2],
];

/** Field offsets worth hitting with boundary values, per structure. */
const FIELDS: Partial<Record<RegionKind, number[]>> = {
  sb: [0x0, 0x4, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x38, 0x3a, 0x4c, 0x54, 0x58, 0x5c, 0x60, 0x64, 0xe0, 0xfe, 0x104, 0x150, 0x15c, 0x174, 0x175, 0x270],
  gdt: [0x0, 0x4, 0x8, 0xc, 0xe, 0x10, 0x12, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x30],
  inode: [0x0, 0x4, 0x1a, 0x1c, 0x20, 0x28, 0x2a, 0x2c, 0x2e, 0x30, 0x34, 0x38, 0x3a, 0x3c, 0x40, 0x44, 0x48, 0x4c, 0x58, 0x64, 0x68, 0x6c, 0x80],
  extent: [0x0, 0x2, 0x4, 0x6, 0xc, 0x10, 0x12, 0x14, 0x18, 0x1c, 0x1e, 0x20],
  dxroot: [0x0, 0x4, 0xc, 0x10, 0x18, 0x1c, 0x1d, 0x1e, 0x20, 0x22, 0x24, 0x28, 0x2c, 0x30],
  dxnode: [0x0, 0x4, 0x8, 0xa, 0xc, 0x10, 0x14, 0x18],
  journal: [0x0, 0x4, 0xc, 0x10, 0x14, 0x18, 0x1c, 0x24, 0x28, 0x2c, 0x50],
};

const INTERESTING = [0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff, 12, 60, 4096];

/** Draw case `index` of run `seed` (pure: the same plan everywhere). */
export function planCase(images: readonly FuzzImage[], seed: number, index: number): CasePlan {
  const rng = new Rng((seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
  const image = index % images.length;
  const img = images[image]!;
  const total = KIND_WEIGHTS.reduce((a, [k, w]) => a + (img.regions.some((r) => r.kind === k) ? w : 0), 0);
  const n = rng.float() < 0.6 ? 1 : rng.float() < 0.75 ? 2 : 3;
  const mutations: Mutation[] = [];
  for (let i = 0; i < n; i++) {
    let pick = rng.int(total);
    let kind: RegionKind = "inode";
    for (const [k, w] of KIND_WEIGHTS) {
      if (!img.regions.some((r) => r.kind === k)) continue;
      if (pick < w) {
        kind = k;
        break;
      }
      pick -= w;
    }
    let candidates = img.regions.map((r, idx) => [r, idx] as const).filter(([r]) => r.kind === kind);
    if (kind === "inode") {
      // Most inodes are the big directory's empty files; aim at directories and symlinks too.
      const t = rng.float();
      const want = t < 0.35 ? "directory" : t < 0.5 ? "symlink" : null;
      const some = want ? candidates.filter(([r]) => r.ftype === want) : [];
      if (some.length) candidates = some;
    }
    const [region, ri] = candidates[rng.int(candidates.length)]!;
    const ops: MutOp[] = [];
    const nops = rng.float() < 0.7 ? 1 : rng.range(2, 4);
    for (let k = 0; k < nops; k++) ops.push(drawOp(rng, region, img));
    mutations.push({ region: ri, kind, ops });
  }
  return { index, image, imageName: img.name, fixCsum: img.metadataCsum && rng.float() < 0.5, mutations };
}

function drawOp(rng: Rng, r: Region, img: FuzzImage): MutOp {
  const fields = FIELDS[r.kind];
  const fieldAt = (width: number) => {
    if (fields && rng.float() < 0.7) {
      // Extent blocks and htree nodes repeat their entries: hit one of the first few.
      const base = fields[rng.int(fields.length)]!;
      const stride = r.kind === "extent" ? 12 : r.kind === "dxnode" ? 8 : 0;
      return Math.min(r.length - width, base + stride * rng.int(4));
    }
    return rng.int(Math.floor((r.length - width) / width) + 1) * width;
  };
  const roll = rng.float();
  if (roll < 0.3) return { op: "flip", at: rng.int(r.length), bit: rng.int(8) };
  if (roll < 0.42) return { op: "byte", at: rng.int(r.length), value: rng.int(256) };
  if (roll < 0.78) {
    const wide = rng.float() < 0.5;
    const v = rng.float();
    const value = v < 0.15 ? "inc" : v < 0.25 ? "dec" : v < 0.35 ? rng.u32() : INTERESTING[rng.int(INTERESTING.length)]!;
    return { op: wide ? "u32" : "u16", at: fieldAt(wide ? 4 : 2), value };
  }
  if (roll < 0.88) {
    const length = Math.min(r.length, rng.range(4, 256));
    return { op: "fill", at: rng.int(r.length - length + 1), length, value: rng.float() < 0.7 ? 0 : 0xff };
  }
  // Another structure's bytes over this one (a directory block where extents are expected …).
  const other = img.regions[rng.int(img.regions.length)]!;
  const length = Math.min(r.length, other.length);
  return { op: "copy", at: 0, from: other.offset, length };
}

/**
 * Classic corruptions, aimed by path: each must end in an FsError quickly. `inoOf` maps
 * (image index, path) to the inode number (from debugfs). On metadata_csum images the
 * checksums are recomputed so the damage reaches the parser.
 */
export function directedPlans(images: readonly FuzzImage[], inoOf: (image: number, path: string) => number): CasePlan[] {
  const plans: CasePlan[] = [];
  const add = (name: string, image: number, pick: (r: Region) => boolean, ops: MutOp[]) => {
    const ri = images[image]!.regions.findIndex(pick);
    if (ri < 0) throw new Error(`directed case "${name}": no such region in ${images[image]!.name}`);
    const r = images[image]!.regions[ri]!;
    plans.push({ index: 1_000_000 + plans.length, name, image, imageName: images[image]!.name, fixCsum: images[image]!.metadataCsum, mutations: [{ region: ri, kind: r.kind, ops }] });
  };
  const inode = (image: number, path: string) => (r: Region) => r.kind === "inode" && r.ino === inoOf(image, path);
  const block = (image: number, path: string, kind: RegionKind) => (r: Region) => r.kind === kind && r.ino === inoOf(image, path);
  images.forEach((img, i) => {
    const ext4 = img.regions.some((r) => r.kind === "extent");
    add(`${img.name}: directory i_size_high set (no largedir)`, i, inode(i, "/modes/sticky"), [{ op: "u32", at: 0x6c, value: 0x3c }]);
    add(`${img.name}: directory i_size_lo huge, blocks unchanged`, i, inode(i, "/deep"), [{ op: "u32", at: 0x4, value: 0x7ffff000 }]);
    add(`${img.name}: first directory entry rec_len 0`, i, block(i, "/deep", "dir"), [{ op: "u16", at: 4, value: 0 }]);
    add(`${img.name}: directory entry rec_len past the block`, i, block(i, "/deep", "dir"), [{ op: "u16", at: 16, value: 0xfffc }]);
    add(`${img.name}: name_len longer than rec_len`, i, block(i, "/deep", "dir"), [{ op: "byte", at: 18, value: 0xff }]);
    add(`${img.name}: htree indirect levels 7`, i, block(i, "/big", "dxroot"), [{ op: "byte", at: 0x1e, value: 7 }]);
    add(`${img.name}: htree count 0`, i, block(i, "/big", "dxroot"), [{ op: "u16", at: 0x22, value: 0 }]);
    add(`${img.name}: htree count > limit`, i, block(i, "/big", "dxroot"), [{ op: "u16", at: 0x22, value: 0xffff }]);
    add(`${img.name}: htree leaf pointer past the directory`, i, block(i, "/big", "dxroot"), [{ op: "u32", at: 0x24, value: 0x00ffffff }]);
    add(`${img.name}: symlink size 0`, i, inode(i, "/links/chain-1"), [{ op: "u32", at: 0x4, value: 0 }]);
    add(`${img.name}: slow symlink size 70000`, i, inode(i, "/links/slow-200"), [{ op: "u32", at: 0x4, value: 70000 }]);
    add(`${img.name}: file size 2^60`, i, inode(i, "/small/f012"), [{ op: "u32", at: 0x6c, value: 0x10000000 }]);
    add(`${img.name}: inode mode 0 (no type)`, i, inode(i, "/small/f013"), [{ op: "u16", at: 0x0, value: 0 }]);
    add(`${img.name}: root inode not a directory`, i, (r) => r.kind === "inode" && r.ino === 2, [{ op: "u16", at: 0x0, value: 0o100644 }]);
    add(`${img.name}: superblock inodes per group 0`, i, (r) => r.kind === "sb", [{ op: "u32", at: 0x28, value: 0 }]);
    add(`${img.name}: superblock log block size 9`, i, (r) => r.kind === "sb", [{ op: "u32", at: 0x18, value: 9 }]);
    add(`${img.name}: group 0 inode table past the device`, i, (r) => r.kind === "gdt" && r.group === 0, [{ op: "u32", at: 0x8, value: 0x7fffffff }]);
    if (ext4) {
      add(`${img.name}: extent header depth 0x7fff`, i, inode(i, "/sparse/holes"), [{ op: "u16", at: 0x2e, value: 0x7fff }]);
      add(`${img.name}: extent header entries > max`, i, inode(i, "/sparse/holes"), [{ op: "u16", at: 0x2a, value: 0xffff }]);
      add(`${img.name}: extent index points at the inode table`, i, inode(i, "/sparse/holes"), [{ op: "u32", at: 0x38, value: 1 }]);
      add(`${img.name}: extent leaf start past the device`, i, block(i, "/sparse/holes", "extent"), [{ op: "u32", at: 0x14, value: 0xfffffff0 }]);
      add(`${img.name}: extent leaf length 0xffff`, i, block(i, "/sparse/holes", "extent"), [{ op: "u16", at: 0x10, value: 0xffff }]);
      add(`${img.name}: extent leaf copied over by a directory block`, i, block(i, "/sparse/holes", "extent"), [{ op: "copy", at: 0, from: img.regions.find((r) => r.kind === "dir")!.offset, length: img.blockSize }]);
    } else {
      add(`${img.name}: indirect block full of 0xff`, i, (r) => r.kind === "indirect", [{ op: "fill", at: 0, length: img.blockSize, value: 0xff }]);
      add(`${img.name}: direct block pointer past the device`, i, inode(i, "/small/f016"), [{ op: "u32", at: 0x28, value: 0xfffffff0 }]);
    }
  });
  return plans;
}

/** Apply a plan to `bytes` (a copy of the pristine image). */
export function applyPlan(bytes: Uint8Array, img: FuzzImage, plan: CasePlan): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const m of plan.mutations) {
    const r = img.regions[m.region]!;
    for (const o of m.ops) {
      const at = r.offset + o.at;
      switch (o.op) {
        case "flip": bytes[at] ^= 1 << o.bit; break;
        case "byte": bytes[at] = o.value; break;
        case "u16": {
          const old = dv.getUint16(at, true);
          dv.setUint16(at, (o.value === "inc" ? old + 1 : o.value === "dec" ? old - 1 : o.value) & 0xffff, true);
          break;
        }
        case "u32": {
          const old = dv.getUint32(at, true);
          dv.setUint32(at, (o.value === "inc" ? old + 1 : o.value === "dec" ? old - 1 : o.value) >>> 0, true);
          break;
        }
        case "fill": bytes.fill(o.value, at, at + o.length); break;
        case "copy": bytes.copyWithin(at, o.from, o.from + o.length); break;
      }
    }
  }
  if (plan.fixCsum) for (const m of plan.mutations) fixRegionCsum(bytes, img, img.regions[m.region]!);
}

/** Recompute the checksum of one structure (after corrupting it, or on a pristine image to prove the helper). */
export function fixRegionCsum(bytes: Uint8Array, img: FuzzImage, r: Region): void {
  const ctx = csumContext(bytes);
  if (!ctx.metadataCsum) return;
  const block = () => bytes.subarray(r.offset, r.offset + r.length);
  const seed = () => inodeSeed(ctx, r.ino!, r.gen!);
  switch (r.kind) {
    case "sb": fixSuperblockCsum(bytes); break;
    case "gdt": fixGroupDescCsum(bytes, ctx, r.offset, r.group!); break;
    case "inode": fixInodeCsum(bytes, ctx, r.offset, img.inodeSize, r.ino!); break;
    case "extent": fixExtentBlockCsum(block(), seed()); break;
    case "dir": fixDirLeafCsum(block(), seed()); break;
    case "dxroot": fixDxNodeCsum(block(), seed(), 0x20); break;
    case "dxnode": fixDxNodeCsum(block(), seed(), 8); break;
    default: break;
  }
}

/** One line per mutation, for reports. */
export function describePlan(plan: CasePlan, images: readonly FuzzImage[]): string {
  const img = images[plan.image]!;
  const parts = plan.mutations.map((m) => {
    const r = img.regions[m.region]!;
    const where = `${m.kind}@${r.offset}${r.ino ? ` (ino ${r.ino})` : ""}${r.group !== undefined ? ` (group ${r.group})` : ""}`;
    const ops = m.ops.map((o) => {
      switch (o.op) {
        case "flip": return `flip +${o.at} bit ${o.bit}`;
        case "byte": return `+${o.at}=0x${o.value.toString(16)}`;
        case "u16": case "u32": return `${o.op} +0x${o.at.toString(16)}=${typeof o.value === "number" ? "0x" + o.value.toString(16) : o.value}`;
        case "fill": return `fill +${o.at} len ${o.length} 0x${o.value.toString(16)}`;
        case "copy": return `copy ${o.length} bytes from ${o.from}`;
      }
    });
    return `${where}: ${ops.join(", ")}`;
  });
  return `case ${plan.name ? `"${plan.name}"` : plan.index} [${plan.imageName}${plan.fixCsum ? ", checksums recomputed" : ""}] ${parts.join("; ")}`;
}

// ---------------------------------------------------------------- the walker

export interface WalkResult {
  /** Operations attempted. */
  ops: number;
  /** FsError codes seen, with counts. */
  codes: Record<string, number>;
  /** Contract violations: non-FsError throws, disallowed codes, internal errors. */
  failures: string[];
  /** Regular files fully read, and their bytes (for the pristine-image comparison). */
  files: Map<string, Uint8Array>;
  dirs: Map<string, string[]>;
  links: Map<string, string>;
}

const LIMITS = { ops: 6000, depth: 40, readFileMax: 4 << 20 };

/**
 * Read everything reachable: readdir (with types) of every directory, lstat of every
 * entry, readFile of files (or three handle reads when the size is large), readlink and
 * stat of symlinks. Directories are entered once per inode (a corrupt tree may have
 * cycles). `keep` stores file bytes and listings for comparison with the source.
 */
export async function walkVolume(vol: Volume, keep = false): Promise<WalkResult> {
  const res: WalkResult = { ops: 0, codes: {}, failures: [], files: new Map(), dirs: new Map(), links: new Map() };
  const seenDirs = new Set<number>();
  const attempt = async <T>(what: string, path: string, fn: () => Promise<T>): Promise<T | undefined> => {
    res.ops++;
    try {
      return await fn();
    } catch (e) {
      classify(res, e, `${what} ${JSON.stringify(path)}`);
      return undefined;
    }
  };
  const queue: Array<[string, number]> = [["/", 0]];
  const root = await attempt("lstat", "/", () => vol.lstat("/"));
  if (root) seenDirs.add(root.ino);
  while (queue.length && res.ops < LIMITS.ops) {
    const [dir, depth] = queue.shift()!;
    const ents = await attempt("readdir", dir, () => vol.readdir(dir, { withFileTypes: true }));
    if (!ents) continue;
    if (keep) res.dirs.set(dir, ents.map((e) => e.name));
    for (const de of ents) {
      if (res.ops >= LIMITS.ops) break;
      const p = dir === "/" ? `/${de.name}` : `${dir}/${de.name}`;
      const st = await attempt("lstat", p, () => vol.lstat(p));
      if (!st) continue;
      if (st.isDirectory()) {
        if (!seenDirs.has(st.ino) && depth < LIMITS.depth) {
          seenDirs.add(st.ino);
          queue.push([p, depth + 1]);
        }
      } else if (st.isFile()) {
        if (st.size <= LIMITS.readFileMax) {
          const data = await attempt("readFile", p, () => vol.readFile(p));
          if (data && keep) res.files.set(p, data as Uint8Array);
        } else {
          await attempt("read", p, async () => {
            const fh = await vol.open(p, "r");
            try {
              const buf = new Uint8Array(65536);
              const last = Math.max(0, Math.min(st.size, Number.MAX_SAFE_INTEGER - 65536) - 65536);
              for (const pos of [0, Math.floor(last / 2), last]) await fh.read(buf, 0, buf.length, pos);
            } finally {
              await fh.close();
            }
          });
        }
      } else if (st.isSymbolicLink()) {
        const t = await attempt("readlink", p, () => vol.readlink(p));
        if (t !== undefined && keep) res.links.set(p, t);
        await attempt("stat", p, () => vol.stat(p));
      }
    }
  }
  return res;
}

/** Record an error: allowed FsError codes are counted, anything else is a failure. */
export function classify(res: Pick<WalkResult, "codes" | "failures">, e: unknown, where: string): void {
  if (!(e instanceof FsError)) {
    const err = e as Error;
    res.failures.push(`${where}: threw ${err?.constructor?.name ?? typeof e} (not FsError): ${err?.message ?? String(e)}`);
    return;
  }
  res.codes[e.code] = (res.codes[e.code] ?? 0) + 1;
  if (!ALLOWED_CODES.has(e.code)) res.failures.push(`${where}: FsError ${e.code} is not a code a read may give: ${e.message}`);
  else if (e.code === "EIO" && /internal error/.test(e.message)) {
    const cause = e.cause instanceof Error ? ` | cause: ${e.cause.stack?.split("\n").slice(0, 3).join(" / ")}` : "";
    res.failures.push(`${where}: engine internal error surfaced as EIO: ${e.message}${cause}`);
  }
}
