/**
 * Reading images Linux's tools make: every variant of `mke2fs -d` over one seeded source
 * tree (ext4 defaults, ext2, ext3, 1 KiB blocks, no metadata_csum/64bit, 128-byte inodes)
 * must read back through our API exactly as the source tree reads on the host.
 *
 * The references are independent of the engine: the host tree (lstat, readlink, bytes,
 * and a symlink resolver written here in a few obvious lines), and debugfs for what the
 * host cannot say (inode numbers, block counts, ctime/crtime, the raw time fields, the
 * block map). Mismatches are collected per test and reported together as
 * "path: field expected X, got Y", so one run shows every difference.
 *
 * Precision rules (see fixtures.ts for what mke2fs -d keeps): with 256-byte inodes the
 * image holds the host mtime to the nanosecond; with 128-byte inodes, the low 32 bits of
 * its seconds. atime, ctime and crtime are compared with debugfs' raw fields. The root
 * directory's attributes are not copied by mke2fs, so only debugfs judges them.
 *
 * The 50,000-entry directory (READ_BIG_ENTRIES overrides the count) exists only in the
 * default ext4 image; its test is the "readdir + stat every entry" workload and prints
 * how long it took.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readFileSync, readSync, readdirSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mount, FsError, ERRNO, type Volume } from "../../bindings/index.ts";
import { FileDevice } from "../../bindings/devices/node-file.ts";
import { tempDir } from "../helpers/e2fsprogs.ts";
import {
  makeTree, buildImage, walkHost, resolveInTree, Rng, IMAGE_VARIANTS,
  type TreeManifest, type BuiltImage, type HostEntry, type SparseFile,
} from "../helpers/fixtures.ts";
import {
  listImage, statInodes, decodeTime, extentDepth, htreeLevels, debugfsScript, splitScriptOutput, parseBlockMap,
  type ImageEntry, type InodeFacts,
} from "../helpers/image-oracle.ts";

process.env.TZ = "UTC"; // debugfs renders dates in local time; the cross-check parses them as UTC

const BIG_ENTRIES = Number(process.env.READ_BIG_ENTRIES ?? 50_000);
const tmp = tempDir("read-");
let tree: TreeManifest;
const built = new Map<string, BuiltImage>();

beforeAll(async () => {
  tree = makeTree(join(tmp.dir, "tree"), { bigDirEntries: BIG_ENTRIES });
  if (tree.notes.length) console.log(`fixture notes:\n  ${tree.notes.join("\n  ")}`);
  // One at a time: building renames parts of the shared source tree while mke2fs runs.
  for (const v of IMAGE_VARIANTS) built.set(v.name, await buildImage(tree, v, join(tmp.dir, `${v.name}.img`)));
  console.log(`images built: ${[...built.values()].map((b) => `${b.variant.name} ${(b.buildMs / 1000).toFixed(1)} s`).join(", ")}`);
}, 300_000);
afterAll(() => tmp.cleanup());

/** Collects "path: what" mismatches; the test asserts the list is empty. */
class Diffs {
  readonly list: string[] = [];
  eq(path: string, field: string, expected: unknown, got: unknown): void {
    if (expected !== got) this.list.push(`${JSON.stringify(path)}: ${field} expected ${fmt(expected)}, got ${fmt(got)}`);
  }
  add(path: string, what: string): void {
    this.list.push(`${JSON.stringify(path)}: ${what}`);
  }
  assertNone(): void {
    expect(this.list.slice(0, 60), `${this.list.length} mismatches`).toEqual([]);
  }
}
const fmt = (v: unknown) => (typeof v === "bigint" ? `${v}n` : typeof v === "number" && v > 7 ? `${v} (0o${v.toString(8)})` : JSON.stringify(v));

async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: T } | { err: unknown }> {
  try {
    return { ok: await fn() };
  } catch (err) {
    return { err };
  }
}
const errText = (e: unknown) => (e instanceof FsError ? `FsError ${e.code}` : `${(e as Error)?.name}: ${(e as Error)?.message}`);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const S_IFMT = 0o170000;
const typeName = (mode: number) => ({ 0o100000: "file", 0o040000: "dir", 0o120000: "symlink", 0o010000: "fifo", 0o020000: "chr", 0o060000: "blk", 0o140000: "sock" } as Record<number, string>)[mode & S_IFMT] ?? "?";
const direntType = (d: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }) =>
  d.isFile() ? "file" : d.isDirectory() ? "dir" : d.isSymbolicLink() ? "symlink" : d.isFIFO() ? "fifo" : d.isCharacterDevice() ? "chr" : d.isBlockDevice() ? "blk" : d.isSocket() ? "sock" : "?";

function hostPread(path: string, pos: number, len: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(len);
    const n = readSync(fd, b, 0, len, pos);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

for (const variant of IMAGE_VARIANTS) {
  describe(`read ${variant.name} (${variant.fsType}, ${variant.blockSize} B blocks, ${variant.inodeSize} B inodes${variant.features ? ", -O " + variant.features : ""})`, () => {
    let img: BuiltImage;
    let vol: Volume;
    let dev: FileDevice;
    let listing: Map<string, ImageEntry>;
    let facts: Map<number, InodeFacts>;
    let host: HostEntry[];
    const hostPath = (p: string) => join(tree.root, p);
    const bigPath = () => tree.bigDir?.path ?? "/big";

    beforeAll(async () => {
      img = built.get(variant.name)!;
      listing = await listImage(img.path, { skipChildrenOf: [bigPath()] });
      facts = await statInodes(img.path, [...new Set([...listing.values()].map((e) => e.ino))]);
      host = walkHost(tree.root, [...img.excluded, bigPath()]);
      if (variant.include.includes(bigPath()) && tree.bigDir) host.push(walkHost(tree.root).find((e) => e.path === bigPath())!);
      dev = await FileDevice.open(img.path, { readOnly: true });
      vol = await mount(dev, { readOnly: true });
    }, 120_000);
    afterAll(async () => {
      await vol?.unmount();
      await dev?.close();
    });

    it("the image is laid out as the test assumes (e2fsck clean, extent/htree depth)", async () => {
      if (variant.fsType === "ext4" && variant.blockSize === 4096) {
        expect(await extentDepth(img.path, "/huge/sparse-5g"), "5 GiB sparse file extent depth").toBeGreaterThanOrEqual(2);
      }
      if (variant.include.includes(bigPath())) {
        expect(await htreeLevels(img.path, bigPath()), "htree indirect levels of the big directory").toBeGreaterThanOrEqual(1);
      }
      expect(img.features.has("metadata_csum")).toBe(variant.fsType === "ext4" && !variant.features?.includes("^metadata_csum"));
    });

    it("readdir lists exactly the source tree's names, with the right types", async () => {
      const d = new Diffs();
      for (const e of host.filter((h) => h.st.isDirectory())) {
        if (e.path === bigPath()) continue; // its own test
        let want = readdirSync(hostPath(e.path)).filter((n) => !img.excluded.includes(`/${n}`) || e.path !== "/");
        if (e.path === "/") want = [...want, "lost+found"];
        const r = await attempt(() => vol.readdir(e.path));
        if ("err" in r) {
          d.add(e.path, `readdir threw ${errText(r.err)}`);
          continue;
        }
        const got = r.ok;
        const missing = want.filter((n) => !got.includes(n));
        const extra = got.filter((n) => !want.includes(n));
        if (missing.length || extra.length || got.length !== want.length) {
          d.add(e.path, `readdir missing ${JSON.stringify(missing)} extra ${JSON.stringify(extra)} (${got.length} names, want ${want.length})`);
        }
        const typed = await attempt(() => vol.readdir(e.path, { withFileTypes: true }));
        if ("err" in typed) {
          d.add(e.path, `readdir withFileTypes threw ${errText(typed.err)}`);
          continue;
        }
        for (const de of typed.ok) {
          const child = e.path === "/" ? `/${de.name}` : `${e.path}/${de.name}`;
          const wantType = child === "/lost+found" ? "dir" : typeName(Number(lstatSync(hostPath(child)).mode));
          d.eq(child, "dirent type", wantType, direntType(de));
        }
      }
      d.assertNone();
    });

    it("lstat matches the source tree and debugfs (mode, owner, links, size, blocks, ino, rdev, times)", async () => {
      const d = new Diffs();
      for (const e of host) {
        const L = listing.get(e.path);
        if (!L) {
          d.add(e.path, "not in debugfs' listing of the image (fixture problem)");
          continue;
        }
        const F = facts.get(L.ino)!;
        const r = await attempt(() => vol.lstat(e.path));
        if ("err" in r) {
          d.add(e.path, `lstat threw ${errText(r.err)}`);
          continue;
        }
        const s = r.ok;
        const isRoot = e.path === "/";
        d.eq(e.path, "ino (debugfs)", L.ino, s.ino);
        d.eq(e.path, "mode (debugfs)", L.mode, s.mode);
        d.eq(e.path, "uid (debugfs)", F.uid, s.uid);
        d.eq(e.path, "gid (debugfs)", F.gid, s.gid);
        d.eq(e.path, "nlink (debugfs)", F.links, s.nlink);
        d.eq(e.path, "blocks (debugfs Blockcount)", F.blockcount, s.blocks);
        d.eq(e.path, "blksize", img.blockSize, s.blksize);
        if (!isRoot) {
          d.eq(e.path, "mode (host)", Number(e.st.mode), s.mode);
          d.eq(e.path, "uid (host)", Number(e.st.uid), s.uid);
          d.eq(e.path, "gid (host)", Number(e.st.gid), s.gid);
          d.eq(e.path, "nlink (host)", Number(e.st.nlink), s.nlink);
        }
        d.eq(e.path, "size", e.st.isDirectory() ? F.size : Number(e.st.size), s.size);
        const dev = e.st.isCharacterDevice() || e.st.isBlockDevice();
        d.eq(e.path, "rdev (host)", dev ? Number(e.st.rdev) : 0, s.rdev);
        if (dev) d.eq(e.path, "rdev (debugfs major:minor)", F.device![0] * 256 + (F.device![1] & 0xff) + (F.device![1] & ~0xff) * 4096, s.rdev);
        d.eq(e.path, "type predicate", typeName(Number(e.st.mode)), direntType(s));
        // Times: the raw fields decoded by the format rule, cross-checked with debugfs' own rendering.
        for (const k of ["atime", "mtime", "ctime", "crtime"] as const) {
          const raw = F[k];
          if (img.nsTimes && (!raw || raw.extra === null)) d.add(e.path, `debugfs shows no ${k} with nanoseconds (fixture or parser problem)`);
          if (!raw) {
            if (k !== "crtime") d.add(e.path, `debugfs shows no ${k} (parser problem)`);
            continue;
          }
          const want = decodeTime(raw);
          const rendered = Date.parse(raw.printed + " UTC");
          if (Number.isFinite(rendered)) d.eq(e.path, `${k} seconds as debugfs renders them`, BigInt(rendered / 1000), want / 1_000_000_000n - (want < 0n && want % 1_000_000_000n !== 0n ? 1n : 0n));
          const got = k === "crtime" ? s.birthtimeNs : k === "atime" ? s.atimeNs : k === "mtime" ? s.mtimeNs : s.ctimeNs;
          d.eq(e.path, `${k}Ns (debugfs raw ${raw.lo.toString(16)}:${raw.extra?.toString(16) ?? "-"})`, want, got);
        }
        if (!isRoot) {
          const hostNs = e.st.mtimeNs;
          const sec = hostNs >= 0n ? hostNs / 1_000_000_000n : -((-hostNs + 999_999_999n) / 1_000_000_000n);
          const want = F.mtime?.extra !== null && F.mtime?.extra !== undefined ? hostNs : BigInt.asIntN(32, sec) * 1_000_000_000n;
          d.eq(e.path, "mtimeNs (host)", want, s.mtimeNs);
        }
        if (Math.abs(s.mtimeMs - Number(s.mtimeNs) / 1e6) > 0.002) d.add(e.path, `mtimeMs ${s.mtimeMs} disagrees with mtimeNs ${s.mtimeNs}`);
        if (s.mtime.getTime() !== Math.floor(s.mtimeMs) && s.mtime.getTime() !== Math.round(s.mtimeMs)) d.add(e.path, `mtime Date ${s.mtime.getTime()} disagrees with mtimeMs ${s.mtimeMs}`);
      }
      d.assertNone();
    });

    it("every regular file reads back byte for byte (readFile, and fh.read at random offsets)", async () => {
      const d = new Diffs();
      const rng = new Rng(0xf11e);
      for (const e of host.filter((h) => h.st.isFile())) {
        if (tree.huge && e.path === tree.huge.path) continue; // 5 GiB: its own test
        const r = await attempt(() => vol.readFile(e.path));
        if ("err" in r) {
          d.add(e.path, `readFile threw ${errText(r.err)}`);
          continue;
        }
        const want = readFileSync(hostPath(e.path));
        if (!(r.ok instanceof Uint8Array)) d.add(e.path, `readFile returned ${typeof r.ok}`);
        else if (r.ok.length !== want.length || sha(r.ok) !== sha(want)) d.add(e.path, `content differs (length ${r.ok.length}, want ${want.length})`);
      }
      // utf8 decoding and the handle API on files big enough to span many extents.
      d.eq("/deep/l1/at-1.txt", "readFile utf8", readFileSync(hostPath("/deep/l1/at-1.txt"), "utf8"), await vol.readFile("/deep/l1/at-1.txt", "utf8"));
      d.eq("/names/日本語のファイル", "readFile {encoding}", readFileSync(hostPath("/names/日本語のファイル"), "utf8"), await vol.readFile("/names/日本語のファイル", { encoding: "utf8" }));
      for (const p of [...tree.bigFiles, ...tree.sparse.map((s) => s.path)]) {
        const size = Number(lstatSync(hostPath(p)).size);
        const fh = await vol.open(p, "r");
        try {
          d.eq(p, "fh.stat().ino", (await vol.lstat(p)).ino, (await fh.stat()).ino);
          const offsets = [0, size - 1, size - 10, size, size + 5, ...Array.from({ length: 40 }, () => rng.int(size))];
          const sp = tree.sparse.find((s) => s.path === p);
          if (sp) for (const [o, l] of sp.regions) offsets.push(Math.max(0, o - 37), o + l - 5);
          for (const off of offsets) {
            const len = rng.pick([1, 100, 4096, 5000, 70_000]);
            const buf = new Uint8Array(len + 8).fill(0xee);
            const got = await fh.read(buf, 8, len, off);
            const want = hostPread(hostPath(p), off, len);
            if (got.bytesRead !== want.length || sha(buf.subarray(8, 8 + got.bytesRead)) !== sha(want)) {
              d.add(p, `fh.read(${len} @ ${off}) bytesRead ${got.bytesRead} (want ${want.length})${got.bytesRead === want.length ? ", bytes differ" : ""}`);
            }
            if (buf.subarray(0, 8).some((b) => b !== 0xee)) d.add(p, `fh.read wrote before its offset`);
          }
          // Sequential reads from the current position (position null), as streams do.
          const seq = new Uint8Array(size);
          const chunk = new Uint8Array(65536 + 3);
          let at = 0;
          const fh2 = await vol.open(p, "r");
          try {
            for (;;) {
              const { bytesRead } = await fh2.read(chunk, 0, chunk.length, null);
              if (bytesRead === 0 || at + bytesRead > size) break;
              seq.set(chunk.subarray(0, bytesRead), at);
              at += bytesRead;
            }
            const whole = await fh2.readFile();
            if (!(whole instanceof Uint8Array) || sha(whole) !== sha(readFileSync(hostPath(p)))) d.add(p, "FileHandle.readFile content differs");
          } finally {
            await fh2.close();
          }
          if (at !== size || sha(seq) !== sha(readFileSync(hostPath(p)))) d.add(p, `sequential fh.read(position null) gave ${at} bytes${at === size ? " that differ" : ""}, want ${size}`);
        } finally {
          await fh.close();
        }
      }
      d.assertNone();
    });

    it("sparse files: holes read as zeros, the block map equals debugfs', reads past 4 GiB", async () => {
      const d = new Diffs();
      const sparse: SparseFile[] = [...tree.sparse, ...(tree.huge && !img.excluded.includes("/huge") ? [tree.huge] : [])];
      for (const sp of sparse) {
        const s = await vol.stat(sp.path);
        d.eq(sp.path, "size", sp.size, s.size);
        // The mapping: FileHandle.extents() against debugfs' block map of the same inode.
        const statText = splitScriptOutput((await debugfsScript(img.path, [`stat <${s.ino}>`])).stdout)[0] ?? "";
        const want = parseBlockMap(statText).runs;
        const fh = await vol.open(sp.path, "r");
        try {
          const got = await fh.extents();
          const flat = (runs: Array<[number, number, number]>) => {
            const m = new Map<number, number>();
            for (const [l, p, n] of runs) for (let i = 0; i < n; i++) m.set(l + i, p + i);
            return m;
          };
          const wm = flat(want);
          const gm = flat(got.map((x) => [x.logical, x.physical, x.length]));
          if (wm.size !== gm.size) d.add(sp.path, `extents() maps ${gm.size} blocks, debugfs ${wm.size}`);
          let bad = 0;
          for (const [l, p] of wm) if (gm.get(l) !== p && bad++ < 3) d.add(sp.path, `block ${l}: extents() says ${gm.get(l)}, debugfs ${p}`);
          if (got.some((x) => x.unwritten)) d.add(sp.path, "extents() reports unwritten extents; mke2fs makes none");
          // Reads around every region (regions past 4 GiB included) and random hole reads.
          const rng = new Rng(sp.size);
          const probes: Array<[number, number]> = [];
          for (const [o, l] of sp.regions) probes.push([Math.max(0, o - 100), l + 200]);
          for (let i = 0; i < 100; i++) probes.push([rng.int(sp.size), rng.pick([1, 512, 4096, 65536, 1 << 20])]);
          probes.push([2 ** 32 - 4096, 8192], [sp.size - 1, 1], [sp.size - 100, 4096], [sp.size, 10], [sp.size + 1e6, 10]);
          const buf = new Uint8Array(1 << 20);
          for (const [off, len] of probes) {
            const n = Math.min(len, buf.length);
            const r = await fh.read(buf, 0, n, off);
            const w = hostPread(hostPath(sp.path), off, n);
            if (r.bytesRead !== w.length || sha(buf.subarray(0, r.bytesRead)) !== sha(w)) {
              d.add(sp.path, `fh.read(${n} @ ${off}) bytesRead ${r.bytesRead} (want ${w.length})${r.bytesRead === w.length ? ", bytes differ" : ""}`);
            }
          }
        } finally {
          await fh.close();
        }
      }
      d.assertNone();
    });

    it("symlinks: readlink, stat follows, lstat does not, loops are ELOOP", async () => {
      const d = new Diffs();
      for (const e of host.filter((h) => h.st.isSymbolicLink())) {
        const rl = await attempt(() => vol.readlink(e.path));
        if ("err" in rl) d.add(e.path, `readlink threw ${errText(rl.err)}`);
        else d.eq(e.path, "readlink", e.target, rl.ok);
        const ls = await attempt(() => vol.lstat(e.path));
        if ("ok" in ls) {
          d.eq(e.path, "lstat isSymbolicLink", true, ls.ok.isSymbolicLink());
          d.eq(e.path, "lstat size = target bytes", Buffer.byteLength(e.target!), ls.ok.size);
        }
        const want = resolveInTree(tree.root, e.path, true);
        const st = await attempt(() => vol.stat(e.path));
        if (want.startsWith("/")) {
          if ("err" in st) d.add(e.path, `stat threw ${errText(st.err)}, want the inode of ${want}`);
          else d.eq(e.path, `stat ino (→ ${want})`, listing.get(want)?.ino, st.ok.ino);
          const rp = await attempt(() => vol.realpath(e.path));
          d.eq(e.path, "realpath", want, "ok" in rp ? rp.ok : `threw ${errText(rp.err)}`);
        } else if ("ok" in st) {
          d.add(e.path, `stat succeeded (ino ${st.ok.ino}), want ${want}`);
        } else {
          d.eq(e.path, "stat error", want, st.err instanceof FsError ? st.err.code : errText(st.err));
        }
      }
      for (const p of tree.loops) {
        const r = await attempt(() => vol.stat(p));
        d.eq(p, "stat of a loop", "ELOOP", "err" in r && r.err instanceof FsError ? r.err.code : "ok" in r ? "success" : errText(r.err));
        const rf = await attempt(() => vol.readFile(p));
        d.eq(p, "readFile of a loop", "ELOOP", "err" in rf && rf.err instanceof FsError ? rf.err.code : "ok" in rf ? "success" : errText(rf.err));
      }
      // Paths through symlinks to directories, relative and absolute.
      for (const p of [
        "/links/to-dir/l2/at-2.txt", "/links/abs-to-dir/at-2.txt", "/links/chain-1", "/links/to-dir/..",
        "/links/abs-to-dir/../../../small/f001", "/links/abs-to-dir/../../small/f001", "/links/fast-to-file/x",
      ]) {
        const want = resolveInTree(tree.root, p, true);
        const r = await attempt(() => vol.stat(p));
        if (!want.startsWith("/")) d.eq(p, "stat error", want, "err" in r ? (r.err instanceof FsError ? r.err.code : errText(r.err)) : "success");
        else if ("err" in r) d.add(p, `stat threw ${errText(r.err)}, want ${want}`);
        else d.eq(p, `stat ino (→ ${want})`, listing.get(want)?.ino, r.ok.ino);
      }
      const viaLink = await attempt(() => vol.readdir("/links/to-dir"));
      if ("err" in viaLink) d.add("/links/to-dir", `readdir threw ${errText(viaLink.err)}`);
      else d.eq("/links/to-dir", "readdir through a symlink", JSON.stringify(readdirSync(hostPath("/deep/l1")).sort()), JSON.stringify([...viaLink.ok].sort()));
      d.assertNone();
    });

    it("bad paths fail with the right FsError codes", async () => {
      const d = new Diffs();
      const cases: Array<[string, () => Promise<unknown>, keyof typeof ERRNO]> = [
        ["stat /nope", () => vol.stat("/nope"), "ENOENT"],
        ["lstat /deep/nope/x", () => vol.lstat("/deep/nope/x"), "ENOENT"],
        ["stat /small/f000/x", () => vol.stat("/small/f000/x"), "ENOTDIR"],
        ["stat /small/f000/", () => vol.stat("/small/f000/"), "ENOTDIR"],
        ["readdir /small/f000", () => vol.readdir("/small/f000"), "ENOTDIR"],
        ["readdir /nope", () => vol.readdir("/nope"), "ENOENT"],
        ["readFile /deep", () => vol.readFile("/deep"), "EISDIR"],
        ["readFile /links/to-dir", () => vol.readFile("/links/to-dir"), "EISDIR"],
        ["readFile /nope", () => vol.readFile("/nope"), "ENOENT"],
        ["readlink /small/f000", () => vol.readlink("/small/f000"), "EINVAL"],
        ["readlink /deep", () => vol.readlink("/deep"), "EINVAL"],
        ["stat /links/dangling", () => vol.stat("/links/dangling"), "ENOENT"],
        ["open /nope", () => vol.open("/nope", "r"), "ENOENT"],
        ["stat 256-byte name", () => vol.stat("/names/" + "a".repeat(256)), "ENAMETOOLONG"],
        ["writeFile on a read-only mount", () => (vol.writeFile as (p: string, d: string) => Promise<void>)("/x", "y"), "EROFS"],
      ];
      for (const [what, fn, code] of cases) {
        const r = await attempt(fn);
        if ("ok" in r) d.add(what, `succeeded, want ${code}`);
        else if (!(r.err instanceof FsError)) d.add(what, `threw ${errText(r.err)}, want FsError ${code}`);
        else {
          d.eq(what, "code", code, r.err.code);
          d.eq(what, "errno", ERRNO[code], r.err.errno);
        }
      }
      // A 255-byte name is fine (the longest ext4 allows).
      const ok = await attempt(() => vol.stat("/names/" + "a".repeat(255)));
      if ("err" in ok) d.add("/names/a×255", `stat threw ${errText(ok.err)}`);
      d.assertNone();
    });

    it("'.', '..' and repeated slashes in paths", async () => {
      const d = new Diffs();
      const ino = (p: string) => listing.get(p)?.ino;
      const cases: Array<[string, string]> = [
        ["/deep/l1/../l1/./l2", "/deep/l1/l2"], ["/..", "/"], ["/../..", "/"], ["/deep/..", "/"], ["/.", "/"],
        ["//small///f001", "/small/f001"], ["/deep/l1/l2/l3/../../..", "/deep"], ["/small/./f002", "/small/f002"],
        ["/deep/l1/l2/", "/deep/l1/l2"], ["/names/ünïcödé dir/../ünïcödé dir/inside", "/names/ünïcödé dir/inside"],
      ];
      for (const [p, target] of cases) {
        const r = await attempt(() => vol.stat(p));
        if ("err" in r) d.add(p, `stat threw ${errText(r.err)}`);
        else d.eq(p, `ino (= ${target})`, ino(target), r.ok.ino);
      }
      const up = await attempt(() => vol.readdir("/deep/l1/.."));
      if ("err" in up) d.add("/deep/l1/..", `readdir threw ${errText(up.err)}`);
      else d.eq("/deep/l1/..", "readdir", JSON.stringify(readdirSync(hostPath("/deep")).sort()), JSON.stringify([...up.ok].sort()));
      d.assertNone();
    });

    if (variant.include.includes("/big")) {
      it(`the ${BIG_ENTRIES}-entry htree directory: readdir returns every name, stat of every entry`, async () => {
        const d = new Diffs();
        const p = bigPath();
        const wantNames = readdirSync(hostPath(p));
        expect(wantNames.length, "entries in the source directory").toBe(BIG_ENTRIES);
        const t0 = performance.now();
        const names = await vol.readdir(p);
        const tReaddir = performance.now() - t0;
        d.eq(p, "entry count", wantNames.length, names.length);
        const typed = await vol.readdir(p, { withFileTypes: true });
        d.eq(p, "withFileTypes entry count", wantNames.length, typed.length);
        const notFiles = typed.filter((de) => !de.isFile());
        if (notFiles.length) d.add(p, `${notFiles.length} entries not typed as files, e.g. ${JSON.stringify(notFiles[0]?.name)}`);
        const have = new Set(names);
        const missing = wantNames.filter((n) => !have.has(n));
        if (missing.length) d.add(p, `${missing.length} names missing, e.g. ${JSON.stringify(missing.slice(0, 3))}`);
        if (have.size !== names.length) d.add(p, `${names.length - have.size} duplicate names`);
        const bigListing = await listImage(img.path, { under: p, maxDepth: 1 });
        const t1 = performance.now();
        let statted = 0;
        for (const n of names) {
          const full = `${p}/${n}`;
          const r = await attempt(() => vol.lstat(full));
          statted++;
          if ("err" in r) {
            d.add(full, `lstat threw ${errText(r.err)}`);
            continue;
          }
          d.eq(full, "ino (debugfs)", bigListing.get(full)?.ino, r.ok.ino);
          d.eq(full, "mode (debugfs)", bigListing.get(full)?.mode, r.ok.mode);
          d.eq(full, "size", 0, r.ok.size);
        }
        const tStat = performance.now() - t1;
        // The host's view for a sample (lstat of 50,000 host files would double the cost for nothing).
        const rng = new Rng(7);
        for (let i = 0; i < 500; i++) {
          const n = wantNames[rng.int(wantNames.length)]!;
          const hs = lstatSync(hostPath(`${p}/${n}`), { bigint: true });
          const s = await vol.lstat(`${p}/${n}`);
          d.eq(`${p}/${n}`, "mtimeNs (host)", hs.mtimeNs, s.mtimeNs);
          d.eq(`${p}/${n}`, "uid/gid/mode (host)", `${hs.uid}/${hs.gid}/${hs.mode}`, `${s.uid}/${s.gid}/${s.mode}`);
        }
        console.log(`${p}: readdir of ${names.length} entries ${tReaddir.toFixed(0)} ms; lstat of each ${tStat.toFixed(0)} ms (${((tStat * 1000) / Math.max(1, statted)).toFixed(1)} µs/entry)`);
        d.assertNone();
      }, 120_000);
    }
  });
}
