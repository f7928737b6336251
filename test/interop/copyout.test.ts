/**
 * copyOut (and `ext4-wasm cp IMAGE:PATH DEST`): extracting a tree from an image that
 * mke2fs built — not our writer — back to the host, judged against the host tree the
 * image was made from: every file's bytes, modes (setuid/setgid/sticky included), mtimes
 * to the microsecond Node can set, owners when root, symlink targets, hard links sharing
 * one host inode, sparse files, special files reported and left out.
 *
 * And its safety on hostile images: names that would climb out of the destination
 * ("..", "../x") are skipped — nothing appears outside it — and a symlink already in the
 * destination is never written through.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import "../../bindings/node.ts";
import { mount, FsError, type Volume } from "../../bindings/index.ts";
import { FileDevice } from "../../bindings/devices/node-file.ts";
import { copyOut } from "../../bindings/node-copyout.ts";
import { buildImage, makeTree, walkHost, type BuiltImage, type TreeManifest } from "../helpers/fixtures.ts";
import { run, tempDir, tool } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("copyout-");
afterAll(() => tmp.cleanup());
const asRoot = process.getuid?.() === 0;
/** Whole microseconds, rounded down (times before 1970 are negative). */
const micros = (ns: bigint) => (ns - (((ns % 1000n) + 1000n) % 1000n)) / 1000n;

async function withVolume<T>(image: string, fn: (vol: Volume) => Promise<T>): Promise<T> {
  const dev = await FileDevice.open(image, { readOnly: true });
  try {
    const vol = await mount(dev, { readOnly: true });
    try {
      return await fn(vol);
    } finally {
      await vol.unmount();
    }
  } finally {
    await dev.close();
  }
}

describe("copyOut", () => {
  let tree: TreeManifest;
  let img: BuiltImage;
  beforeAll(async () => {
    tree = makeTree(join(tmp.dir, "src"), { seed: 21, smallFiles: 120, bigFiles: 2, bigDirEntries: 0, hugeSparse: false });
    img = await buildImage(tree, { name: "copyout", fsType: "ext4", blockSize: 4096, inodeSize: 256, sizeMiB: 256, include: [] }, join(tmp.dir, "tree.img"));
  }, 300_000);

  it("gives back the host tree the image was built from", { timeout: 300_000 }, async () => {
    const out = join(tmp.dir, "out");
    const skipped: string[] = [];
    const r = await withVolume(img.path, (vol) => copyOut(vol, "/", out, { onSkip: (p) => skipped.push(p) }));
    const want = walkHost(tree.root, img.excluded);
    const specials = want.filter((e) => !e.st.isFile() && !e.st.isDirectory() && !e.st.isSymbolicLink()).map((e) => e.path);
    expect(skipped.sort()).toEqual(specials.sort());
    const got = new Map(walkHost(out, ["/lost+found"]).map((e) => [e.path, e]));
    expect([...got.keys()].sort()).toEqual(want.filter((e) => !specials.includes(e.path)).map((e) => e.path).sort());
    // Hard links: the host inodes of the source and of the copy group the names alike.
    const groups = (entries: Iterable<{ path: string; st: { ino: bigint; isFile(): boolean } }>) => {
      const m = new Map<bigint, string[]>();
      for (const e of entries) if (e.st.isFile()) m.set(e.st.ino, [...(m.get(e.st.ino) ?? []), e.path]);
      return [...m.values()].map((v) => v.sort().join(" ")).sort();
    };
    expect(groups(got.values())).toEqual(groups(want.filter((e) => e.st.isFile())));
    let bytes = 0;
    for (const w of want) {
      if (specials.includes(w.path)) continue;
      const g = got.get(w.path)!;
      const what = `${w.path}`;
      expect(g.st.mode & 0o170000n, what).toBe(w.st.mode & 0o170000n);
      if (w.st.isSymbolicLink()) {
        expect(g.target, what).toBe(w.target);
        continue;
      }
      expect(g.st.mode & 0o7777n, what).toBe(w.st.mode & 0o7777n);
      // (The root's times are mke2fs's own, whole seconds, not the source's.)
      if (w.path !== "/") expect(micros(g.st.mtimeNs), what).toBe(micros(w.st.mtimeNs));
      if (asRoot) expect([g.st.uid, g.st.gid], what).toEqual([w.st.uid, w.st.gid]);
      if (w.st.isFile()) {
        expect(g.st.size, what).toBe(w.st.size);
        const a = readFileSync(join(tree.root, w.path));
        expect(Buffer.compare(readFileSync(join(out, w.path)), a), what).toBe(0);
        bytes += a.length;
      }
    }
    expect(r.bytes).toBeGreaterThanOrEqual(bytes / 2); // hard links are copied once
    // Sparse files stay sparse on the host? Not promised (write of zeros); their bytes are.
  });

  it("never writes through a symlink already in the destination", { timeout: 300_000 }, async () => {
    const out = join(tmp.dir, "trap");
    mkdirSync(out);
    const victim = join(tmp.dir, "victim.txt");
    writeFileSync(victim, "untouched");
    // A name the image has at its root, already present in the destination as a symlink.
    const name = readdirSync(tree.root).find((n) => lstatSync(join(tree.root, n)).isFile())
      ?? (await withVolume(img.path, async (vol) => (await vol.readdir("/") as string[]).find((n) => n !== "lost+found")))!;
    const path = `/${name}`;
    const isDir = lstatSync(join(tree.root, name)).isDirectory();
    if (isDir) symlinkSync(tmp.dir, join(out, name));
    else symlinkSync(victim, join(out, name));
    const err = await withVolume(img.path, (vol) => copyOut(vol, "/", out)).then(() => null, (e) => e);
    expect(err, path).toBeInstanceOf(FsError);
    expect((err as FsError).code).toBe("EEXIST");
    expect(readFileSync(victim, "utf8")).toBe("untouched");
  });

  it("skips names that would leave the destination, on a crafted image", { timeout: 300_000 }, async () => {
    // mke2fs builds a small tree without metadata_csum (so patched names need no new
    // checksums); then two entries of its linear root directory are renamed in place:
    // "zzzzzzzz" → "../pwned" and "qq" → "..".
    const src = join(tmp.dir, "evil-src");
    mkdirSync(src);
    writeFileSync(join(src, "zzzzzzzz"), "escape attempt 1");
    writeFileSync(join(src, "qq"), "escape attempt 2");
    writeFileSync(join(src, "fine.txt"), "kept");
    const image = join(tmp.dir, "evil.img");
    const mk = await run(tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-O", "^metadata_csum,^dir_index", "-d", src, image, "8M"]);
    expect(mk.code, mk.stderr).toBe(0);
    const bytes = readFileSync(image);
    const patch = (from: string, to: string) => {
      // A directory entry: name_len, file_type 1 (regular), then the name.
      const needle = Buffer.concat([Buffer.from([from.length, 1]), Buffer.from(from)]);
      const at = bytes.indexOf(needle);
      expect(at, from).toBeGreaterThan(0);
      expect(bytes.indexOf(needle, at + 1), `${from} is unique`).toBe(-1);
      bytes.write(to, at + 2, "latin1");
    };
    patch("zzzzzzzz", "../pwned");
    patch("qq", "..");
    writeFileSync(image, bytes);
    const box = join(tmp.dir, "box");
    mkdirSync(box);
    const out = join(box, "out");
    const skipped: string[] = [];
    let err: unknown = null;
    await withVolume(image, (vol) => copyOut(vol, "/", out, { onSkip: (p, why) => skipped.push(`${p}: ${why}`) })).catch((e) => (err = e));
    // Either the engine refuses the directory (a clear FsError) or copyOut skips the two
    // names; in no case does anything appear beside `out`.
    console.log(`crafted image: ${err ? `refused (${(err as FsError).code})` : `skipped ${skipped.length}`}`);
    if (err) expect(err).toBeInstanceOf(FsError);
    else {
      expect(skipped.sort()).toEqual(["/..: unsafe name", "/../pwned: unsafe name"]);
      expect(readFileSync(join(out, "fine.txt"), "utf8")).toBe("kept");
    }
    expect(readdirSync(box)).toEqual(existsSync(out) ? ["out"] : []);
    expect(existsSync(join(tmp.dir, "pwned"))).toBe(false);
  });
});
