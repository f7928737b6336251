/**
 * The conformance suite every runtime runs: the same cases on Node (vitest), Deno
 * (`deno test`) and Chromium (a page driven by Playwright), each on a memory device and on
 * that runtime's file device (FileDevice / OPFS).
 *
 * Why runtime-neutral and self-contained: this one file is bundled into a browser page,
 * imported by Deno straight from source and by vitest, so it imports no runtime module
 * (no node:*, no Deno.*, no test framework) — only types — and reaches the engine solely
 * through `Target.api`, the exports of the runtime's own entry. Failures are thrown
 * Errors that say which step and what differed; each runner turns a case into one test.
 *
 * What judges the engine: not the engine. Each case keeps its own model of what it
 * wrote — the bytes it generated, the names, modes and times it set — and compares the
 * volume against that after every stage (written, modified, remounted). Every case that
 * formats a volume resolves to the final image, and the host runs `e2fsck -fn` on it, so
 * the on-disk structures are judged by e2fsprogs on all three runtimes.
 *
 * Device life cycle, which Target implementations rely on: a case gets a fresh device
 * from `device()`, and after unmounting calls `reopen(dev)` (which closes it and returns
 * the same storage opened anew) to mount again; at the end it unmounts, takes
 * `image(dev)` while the device is still open, then closes the device.
 */
import type { BlockDevice } from "../../bindings/devices/types.ts";

export interface Target {
  /** "node/memory", "deno/file", "chromium/opfs" … */
  name: string;
  /** The runtime entry's exports: mkfs, mount, MemoryDevice, FsError … */
  api: typeof import("../../bindings/index.ts");
  /** A fresh, empty device of this target's kind, `size` bytes. */
  device(size: number): Promise<BlockDevice>;
  /** Close `dev` and open the same storage again (the remount step). */
  reopen(dev: BlockDevice): Promise<BlockDevice>;
  /** The whole image, so the host can run e2fsck -fn / debugfs on it; `dev` is open. */
  image(dev: BlockDevice): Promise<Uint8Array>;
}

export interface Case {
  name: string;
  /** Resolves to the final image when the host must fsck it. */
  run(t: Target): Promise<Uint8Array | void>;
}

type Api = Target["api"];
type Volume = Awaited<ReturnType<Api["mount"]>>;

const MiB = 1 << 20;
/** Big enough for a journal and a few MiB of files, small enough to hand to a page quickly. */
const VOLUME_BYTES = 48 * MiB;

// ---- assertions (no framework: this file runs everywhere) ----

function fail(message: string): never {
  throw new Error(message);
}

function ok(cond: unknown, message: string): asserts cond {
  if (!cond) fail(message);
}

function eq<T>(actual: T, expected: T, what: string): void {
  if (!Object.is(actual, expected)) fail(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function eqList(actual: readonly string[], expected: readonly string[], what: string): void {
  const a = [...actual].sort();
  const e = [...expected].sort();
  if (a.length !== e.length || a.some((x, i) => x !== e[i])) {
    const missing = e.filter((x) => !a.includes(x));
    const extra = a.filter((x) => !e.includes(x));
    fail(`${what}: missing [${missing.slice(0, 8).join(", ")}] extra [${extra.slice(0, 8).join(", ")}]`);
  }
}

function eqBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  if (actual.length !== expected.length) fail(`${what}: length ${actual.length}, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    if (actual[i] !== expected[i]) fail(`${what}: byte ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

function show(v: unknown): string {
  return typeof v === "number" && v > 7 ? `${v} (0o${v.toString(8)})` : JSON.stringify(v);
}

/** Await `p`, which must reject with an FsError of `code`; returns the error. */
async function rejects(api: Api, p: Promise<unknown>, code: string, what: string): Promise<InstanceType<Api["FsError"]>> {
  let result: unknown;
  try {
    result = await p;
  } catch (e) {
    if (!(e instanceof api.FsError)) fail(`${what}: expected FsError ${code}, got ${String(e)}`);
    if (e.code !== code) fail(`${what}: expected ${code}, got ${e.code} (${e.message})`);
    ok(typeof e.syscall === "string" && e.syscall.length > 0, `${what}: FsError without syscall`);
    ok(e.errno > 0, `${what}: FsError without errno`);
    return e;
  }
  return fail(`${what}: expected ${code}, but it succeeded (${show(result)})`);
}

// ---- deterministic data ----

/** `n` pseudo-random bytes from `seed` (xorshift32), so every runtime writes the same data. */
function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const utf8 = new TextEncoder();

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** `data` cut or zero-extended to `len`. */
function resized(data: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(data.subarray(0, Math.min(len, data.length)));
  return out;
}

// ---- the model: what a case believes the volume holds ----

/** File contents shared by every name hard-linked to it. */
interface FileBody {
  data: Uint8Array;
  mode: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
  atimeMs?: number;
  /** Upper bound for stat.blocks * 512 (sparse files). */
  maxAllocated?: number;
}
type Entry = { kind: "dir"; mode: number } | { kind: "file"; body: FileBody } | { kind: "symlink"; target: string };

class Model {
  readonly entries = new Map<string, Entry>();

  dir(path: string, mode = 0o755): void {
    this.entries.set(path, { kind: "dir", mode });
  }
  file(path: string, data: Uint8Array, mode = 0o644): FileBody {
    const body: FileBody = { data, mode };
    this.entries.set(path, { kind: "file", body });
    return body;
  }
  body(path: string): FileBody {
    const e = this.entries.get(path);
    ok(e?.kind === "file", `model: ${path} is not a file`);
    return e.body;
  }
  /** Remove `path` and everything under it. */
  remove(path: string): void {
    for (const p of [...this.entries.keys()]) if (p === path || p.startsWith(`${path}/`)) this.entries.delete(p);
  }
  rename(from: string, to: string): void {
    for (const [p, e] of [...this.entries]) {
      if (p === from || p.startsWith(`${from}/`)) {
        this.entries.delete(p);
        this.entries.set(to + p.slice(from.length), e);
      }
    }
  }
  links(body: FileBody): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.kind === "file" && e.body === body) n++;
    return n;
  }
}

const join = (dir: string, name: string): string => (dir === "/" ? `/${name}` : `${dir}/${name}`);

/** Every path under `dir` (lost+found's contents excluded, lost+found itself kept). */
async function walk(vol: Volume, dir = "/", out: string[] = []): Promise<string[]> {
  for (const d of await vol.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    out.push(p);
    if (d.isDirectory() && p !== "/lost+found") await walk(vol, p, out);
  }
  return out;
}

/** Compare the whole volume with the model: names, types, sizes, contents, modes, links, times. */
async function verify(vol: Volume, model: Model, stage: string): Promise<void> {
  const paths = await walk(vol);
  eqList(paths.filter((p) => p !== "/lost+found"), [...model.entries.keys()], `${stage}: the tree`);
  ok((await vol.lstat("/lost+found")).isDirectory(), `${stage}: /lost+found is a directory`);
  for (const [path, e] of model.entries) {
    const st = await vol.lstat(path);
    const where = `${stage}: ${path}`;
    if (e.kind === "dir") {
      ok(st.isDirectory(), `${where} is a directory`);
      eq(st.mode & 0o7777, e.mode, `${where} mode`);
    } else if (e.kind === "symlink") {
      ok(st.isSymbolicLink(), `${where} is a symlink`);
      eq(await vol.readlink(path), e.target, `${where} target`);
      eq(st.size, utf8.encode(e.target).length, `${where} size`);
    } else {
      const b = e.body;
      ok(st.isFile(), `${where} is a regular file`);
      eq(st.size, b.data.length, `${where} size`);
      eq(st.mode & 0o7777, b.mode, `${where} mode`);
      eq(st.nlink, model.links(b), `${where} nlink`);
      if (b.uid !== undefined) eq(st.uid, b.uid, `${where} uid`);
      if (b.gid !== undefined) eq(st.gid, b.gid, `${where} gid`);
      if (b.mtimeMs !== undefined) eq(st.mtimeMs, b.mtimeMs, `${where} mtime`);
      if (b.atimeMs !== undefined) eq(st.atimeMs, b.atimeMs, `${where} atime`);
      if (b.maxAllocated !== undefined) ok(st.blocks * 512 <= b.maxAllocated, `${where}: ${st.blocks * 512} bytes allocated, at most ${b.maxAllocated} expected (sparse)`);
      const data = await vol.readFile(path);
      ok(data instanceof Uint8Array, `${where}: readFile without encoding gives bytes`);
      eqBytes(data, b.data, `${where} contents`);
    }
  }
}

/** Unmount, reopen the device, mount again: the remount step of every case. */
async function remount(t: Target, vol: Volume, dev: BlockDevice, options: { readOnly?: boolean } = {}): Promise<[Volume, BlockDevice]> {
  await vol.unmount();
  const again = await t.reopen(dev);
  return [await t.api.mount(again, { initItable: false, ...options }), again];
}

/** Unmount, take the image for the host's e2fsck, close the device. */
async function finish(t: Target, vol: Volume, dev: BlockDevice): Promise<Uint8Array> {
  await vol.unmount();
  const image = await t.image(dev);
  await dev.close();
  eq(image.length, dev.size, "image length");
  return image;
}

/** A fresh device formatted with `opts` and mounted. */
async function fresh(t: Target, opts: Parameters<Api["mkfs"]>[1] = {}, size = VOLUME_BYTES): Promise<[Volume, BlockDevice]> {
  const dev = await t.device(size);
  eq(dev.size, size, "device size");
  await t.api.mkfs(dev, opts);
  return [await t.api.mount(dev, { initItable: false }), dev];
}

// ---- the cases ----

const deviceContract: Case = {
  name: "device: read, write, zeroout, flush and reopen honour the BlockDevice contract",
  async run(t) {
    const size = 8 * MiB;
    let dev = await t.device(size);
    eq(dev.size, size, "size");
    const probe = new Uint8Array(64 << 10);
    await dev.read(size - probe.length, probe);
    ok(probe.every((b) => b === 0), "a fresh device reads as zeros");
    // Unaligned and block-crossing, then the very last bytes.
    const a = bytes(10_000, 1);
    await dev.write(4_097, a);
    const tail = bytes(512, 2);
    await dev.write(size - 512, tail);
    const back = new Uint8Array(a.length + 2);
    await dev.read(4_096, back);
    eq(back[0], 0, "byte before the write");
    eq(back[back.length - 1], 0, "byte after the write");
    eqBytes(back.subarray(1, 1 + a.length), a, "unaligned write read back");
    // A large request in one call (1 MiB + 1 KiB crossing any internal piece size).
    const big = bytes(MiB + 1024, 3);
    await dev.write(2 * MiB, big);
    // zeroout inside the big write: zeros there, the rest untouched.
    ok(typeof dev.zeroout === "function", "device has zeroout");
    await dev.zeroout!(2 * MiB + 4096, 128 << 10);
    const expectBig = big.slice();
    expectBig.fill(0, 4096, 4096 + (128 << 10));
    const gotBig = new Uint8Array(big.length);
    await dev.read(2 * MiB, gotBig);
    eqBytes(gotBig, expectBig, "large write after zeroout");
    // Out of range: EINVAL, never a silent short request.
    await rejects(t.api, dev.read(size - 100, new Uint8Array(200)), "EINVAL", "read past the end");
    await rejects(t.api, dev.write(size, new Uint8Array(1)), "EINVAL", "write past the end");
    await rejects(t.api, dev.read(-1, new Uint8Array(1)), "EINVAL", "negative offset");
    await dev.flush();
    // Everything survives close and reopen.
    dev = await t.reopen(dev);
    eq(dev.size, size, "size after reopen");
    const again = new Uint8Array(big.length);
    await dev.read(2 * MiB, again);
    eqBytes(again, expectBig, "large write after reopen");
    const tailBack = new Uint8Array(512);
    await dev.read(size - 512, tailBack);
    eqBytes(tailBack, tail, "last bytes after reopen");
    await dev.close();
    let closedError: unknown;
    await dev.read(0, new Uint8Array(512)).catch((e) => (closedError = e));
    ok(closedError instanceof t.api.FsError, `a request after close rejects with an FsError, got ${String(closedError)}`);
  },
};

const emptyVolume: Case = {
  name: "mkfs: a fresh volume mounts, is empty and reports its geometry",
  async run(t) {
    const dev = await t.device(VOLUME_BYTES);
    const r = await t.api.mkfs(dev, { label: "conformance", blockSize: 4096 });
    eq(r.blockSize, 4096, "mkfs block size");
    eq(r.blocksCount, VOLUME_BYTES / 4096, "mkfs block count");
    eq(r.label, "conformance", "mkfs label");
    const vol = await t.api.mount(dev, { initItable: false });
    eqList(await vol.readdir("/") as string[], ["lost+found"], "root directory");
    const root = await vol.stat("/");
    ok(root.isDirectory(), "/ is a directory");
    eq(root.ino, 2, "root inode number");
    const fs = await vol.statfs();
    eq(fs.bsize, 4096, "statfs bsize");
    eq(fs.blocks, r.blocksCount, "statfs blocks");
    eq(fs.files, r.inodesCount, "statfs files");
    ok(fs.bfree > 0 && fs.bfree < fs.blocks, `statfs bfree ${fs.bfree} within (0, ${fs.blocks})`);
    ok(fs.bavail <= fs.bfree, "statfs bavail ≤ bfree");
    return finish(t, vol, dev);
  },
};

const lifecycle: Case = {
  name: "populate → read back → modify → remount → verify (4 KiB blocks)",
  async run(t) {
    let [vol, dev] = await fresh(t, { label: "lifecycle" });
    const m = new Model();

    // Populate: directories, files of several sizes, a sparse file, names beyond ASCII,
    // a directory big enough to need an htree index, symlinks, a hard link.
    await vol.mkdir("/etc");
    m.dir("/etc");
    eq(await vol.mkdir("/home/user/docs", { recursive: true }), "/home", "mkdir -p returns the first directory made");
    for (const d of ["/home", "/home/user", "/home/user/docs"]) m.dir(d);
    await vol.mkdir("/var/log", { recursive: true });
    m.dir("/var");
    m.dir("/var/log");
    await vol.mkdir("/empty", { mode: 0o700 });
    m.dir("/empty", 0o700);

    await vol.writeFile("/etc/hostname", "box\n");
    const hostname = m.file("/etc/hostname", utf8.encode("box\n"));
    await vol.writeFile("/etc/empty", new Uint8Array(0));
    m.file("/etc/empty", new Uint8Array(0));
    const sizes: Array<[string, number]> = [["one-block", 4096], ["block-plus-one", 4097], ["odd", 12_345], ["big.bin", MiB + 54_321]];
    for (const [i, [name, n]] of sizes.entries()) {
      const data = bytes(n, 100 + i);
      await vol.writeFile(`/home/user/docs/${name}`, data, { mode: 0o640 });
      m.file(`/home/user/docs/${name}`, data, 0o640);
    }
    const unicode = "/home/user/docs/Grüße ✓ 日本.txt";
    await vol.writeFile(unicode, "ünïcödé\n");
    m.file(unicode, utf8.encode("ünïcödé\n"));

    // Sparse: 5000 bytes at 2 MiB + 100, then the size set to 3 MiB.
    const fh = await vol.open("/var/log/sparse", "w+");
    const islet = bytes(5000, 7);
    const wrote = await fh.write(islet, 0, islet.length, 2 * MiB + 100);
    eq(wrote.bytesWritten, islet.length, "sparse write count");
    await fh.truncate(3 * MiB);
    eq((await fh.stat()).size, 3 * MiB, "sparse size through the handle");
    const peek = new Uint8Array(200);
    const got = await fh.read(peek, 0, 200, 2 * MiB);
    eq(got.bytesRead, 200, "read inside the sparse file");
    eqBytes(peek, concat(new Uint8Array(100), islet.subarray(0, 100)), "hole then data");
    await fh.close();
    const sparse = resized(new Uint8Array(0), 3 * MiB);
    sparse.set(islet, 2 * MiB + 100);
    m.file("/var/log/sparse", sparse).maxAllocated = 64 << 10;

    await vol.mkdir("/many");
    m.dir("/many");
    for (let i = 0; i < 300; i++) {
      const name = `/many/entry-with-a-longish-name-${String(i).padStart(4, "0")}`;
      await vol.writeFile(name, `#${i}`);
      m.file(name, utf8.encode(`#${i}`));
    }
    ok((await vol.stat("/many")).size > 4096, "300 entries take more than one directory block");

    await vol.symlink("hostname", "/etc/link");
    m.entries.set("/etc/link", { kind: "symlink", target: "hostname" });
    const longTarget = `/${"deep/".repeat(20)}target`; // > 60 bytes: stored in a block, not the inode
    await vol.symlink(longTarget, "/var/dangling");
    m.entries.set("/var/dangling", { kind: "symlink", target: longTarget });
    eq((await vol.stat("/etc/link")).size, 4, "stat follows the symlink");
    await vol.link("/etc/hostname", "/home/user/hostname-link");
    m.entries.set("/home/user/hostname-link", { kind: "file", body: hostname });

    // Attributes.
    await vol.chmod("/etc/hostname", 0o600);
    hostname.mode = 0o600;
    await vol.chown("/etc/hostname", 1000, 1001);
    hostname.uid = 1000;
    hostname.gid = 1001;
    await vol.utimes("/home/user/docs/odd", 1_600_000_000, new Date(1_700_000_000_123));
    Object.assign(m.body("/home/user/docs/odd"), { atimeMs: 1_600_000_000_000, mtimeMs: 1_700_000_000_123 });
    await vol.chmod("/var", 0o750);
    m.dir("/var", 0o750);

    // Renames: a file across directories, a directory with everything in it.
    await vol.rename("/home/user/docs/big.bin", "/var/big.bin");
    m.rename("/home/user/docs/big.bin", "/var/big.bin");
    await vol.rename("/home/user/docs", "/home/user/documents");
    m.rename("/home/user/docs", "/home/user/documents");

    await verify(vol, m, "after populate");

    // Modify: append (seen through the hard link), shrink, grow, overwrite, unlink, rm -r.
    await vol.appendFile("/home/user/hostname-link", "more\n");
    hostname.data = concat(hostname.data, utf8.encode("more\n"));
    await vol.truncate("/var/big.bin", 70_001);
    m.body("/var/big.bin").data = m.body("/var/big.bin").data.slice(0, 70_001);
    await vol.truncate("/etc/empty", 10_000);
    m.body("/etc/empty").data = new Uint8Array(10_000);
    const shorter = bytes(3000, 9);
    await vol.writeFile("/home/user/documents/one-block", shorter);
    m.body("/home/user/documents/one-block").data = shorter;
    for (let i = 0; i < 300; i += 2) {
      const name = `/many/entry-with-a-longish-name-${String(i).padStart(4, "0")}`;
      await vol.unlink(name);
      m.remove(name);
    }
    await vol.rm("/var/log", { recursive: true });
    m.remove("/var/log");
    await vol.rmdir("/empty");
    m.remove("/empty");

    await verify(vol, m, "after modify");
    [vol, dev] = await remount(t, vol, dev);
    await verify(vol, m, "after remount");

    // One more round on the remounted volume, then check it all again from a fresh mount.
    await vol.writeFile("/after-remount", bytes(20_000, 11));
    m.file("/after-remount", bytes(20_000, 11));
    await vol.unlink("/home/user/hostname-link");
    m.remove("/home/user/hostname-link");
    [vol, dev] = await remount(t, vol, dev);
    await verify(vol, m, "after second remount");
    return finish(t, vol, dev);
  },
};

const smallBlocks: Case = {
  name: "1 KiB blocks: files across block and extent boundaries survive a remount",
  async run(t) {
    let [vol, dev] = await fresh(t, { blockSize: 1024 }, 16 * MiB);
    const m = new Model();
    await vol.mkdir("/d");
    m.dir("/d");
    for (const [i, n] of [1, 1023, 1024, 1025, 70_000, 300_000].entries()) {
      const data = bytes(n, 200 + i);
      await vol.writeFile(`/d/f${n}`, data);
      m.file(`/d/f${n}`, data);
    }
    // Interleaved appends to two files fragment them: many extents, maybe an index block.
    let a: Uint8Array = new Uint8Array(0);
    let b: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 40; i++) {
      const pa = bytes(1500, 300 + i);
      const pb = bytes(700, 400 + i);
      await vol.appendFile("/d/a", pa);
      await vol.appendFile("/d/b", pb);
      a = concat(a, pa);
      b = concat(b, pb);
      if (i % 8 === 7) await vol.sync();
    }
    m.file("/d/a", a);
    m.file("/d/b", b);
    for (let i = 0; i < 120; i++) {
      await vol.writeFile(`/d/n${i}`, "");
      m.file(`/d/n${i}`, new Uint8Array(0));
    }
    await verify(vol, m, "1k: written");
    [vol, dev] = await remount(t, vol, dev);
    await verify(vol, m, "1k: remounted");
    return finish(t, vol, dev);
  },
};

const handles: Case = {
  name: "file handles: positioned writes, reads, truncate, and unlink while open",
  async run(t) {
    let [vol, dev] = await fresh(t);
    const api = t.api;
    const fh = await vol.open("/h", "w+", 0o600);
    await fh.write(bytes(4096, 1), 0, 4096, 8192);
    await fh.write(bytes(100, 2), 0, 100, 0);
    const expect = new Uint8Array(12_288);
    expect.set(bytes(100, 2), 0);
    expect.set(bytes(4096, 1), 8192);
    eq((await fh.stat()).size, 12_288, "size after writes past a hole");
    const all = new Uint8Array(12_288);
    eq((await fh.read(all, 0, all.length, 0)).bytesRead, all.length, "read the whole file");
    eqBytes(all, expect, "handle read back");
    eq((await fh.read(new Uint8Array(10), 0, 10, 20_000)).bytesRead, 0, "read past EOF");
    await fh.truncate(9000);
    await fh.sync();
    await fh.close();
    await rejects(api, fh.read(new Uint8Array(1), 0, 1, 0), "EBADF", "read on a closed handle");
    eqBytes(await vol.readFile("/h") as Uint8Array, expect.subarray(0, 9000), "after truncate");
    eq((await vol.stat("/h")).mode & 0o7777, 0o600, "mode given to open");

    // Unlinked while open: the data stays readable until the last close, then goes.
    const before = (await vol.statfs()).bfree;
    await vol.writeFile("/doomed", bytes(200_000, 3));
    const open = await vol.open("/doomed", "r");
    await vol.unlink("/doomed");
    await rejects(api, vol.stat("/doomed"), "ENOENT", "stat of an unlinked name");
    const part = new Uint8Array(1000);
    await open.read(part, 0, 1000, 150_000);
    eqBytes(part, bytes(200_000, 3).subarray(150_000, 151_000), "read from an unlinked open file");
    await open.close();
    [vol, dev] = await remount(t, vol, dev);
    eq((await vol.statfs()).bfree, before, "blocks of the unlinked file are free again");
    eqList(await vol.readdir("/") as string[], ["lost+found", "h"], "root after unlink");
    return finish(t, vol, dev);
  },
};

const errors: Case = {
  name: "errors: ENOENT, EEXIST, ENOTDIR, EISDIR, ENOTEMPTY, ENAMETOOLONG, ELOOP, EROFS",
  async run(t) {
    const api = t.api;
    let [vol, dev] = await fresh(t);
    await vol.mkdir("/dir/sub", { recursive: true });
    await vol.writeFile("/dir/file", "x");
    await vol.symlink("loop2", "/loop1");
    await vol.symlink("loop1", "/loop2");

    const e = await rejects(api, vol.stat("/nope"), "ENOENT", "stat missing");
    eq(e.path, "/nope", "FsError.path");
    eq(e.errno, 2, "ENOENT errno");
    await rejects(api, vol.readFile("/dir/nope"), "ENOENT", "readFile missing");
    await rejects(api, vol.unlink("/nope"), "ENOENT", "unlink missing");
    await rejects(api, vol.open("/nope", "r"), "ENOENT", "open missing");
    await rejects(api, vol.readdir("/nope"), "ENOENT", "readdir missing");
    await rejects(api, vol.rename("/nope", "/other"), "ENOENT", "rename missing");
    await rejects(api, vol.writeFile("/no/such/dir/file", "x"), "ENOENT", "writeFile in a missing directory");
    await rejects(api, vol.rm("/nope"), "ENOENT", "rm missing");
    await vol.rm("/nope", { force: true });

    await rejects(api, vol.mkdir("/dir"), "EEXIST", "mkdir existing");
    await rejects(api, vol.open("/dir/file", "wx"), "EEXIST", "open wx existing");
    await rejects(api, vol.symlink("x", "/dir/file"), "EEXIST", "symlink over a file");
    await rejects(api, vol.link("/dir/file", "/dir/sub"), "EEXIST", "link over a directory");

    await rejects(api, vol.stat("/dir/file/x"), "ENOTDIR", "file as a directory");
    await rejects(api, vol.readdir("/dir/file"), "ENOTDIR", "readdir of a file");
    await rejects(api, vol.mkdir("/dir/file/x"), "ENOTDIR", "mkdir under a file");

    await rejects(api, vol.readFile("/dir"), "EISDIR", "readFile of a directory");
    await rejects(api, vol.writeFile("/dir", "x"), "EISDIR", "writeFile on a directory");
    await rejects(api, vol.open("/dir", "w"), "EISDIR", "open a directory for writing");

    await rejects(api, vol.rmdir("/dir"), "ENOTEMPTY", "rmdir non-empty");
    await rejects(api, vol.writeFile(`/${"n".repeat(256)}`, "x"), "ENAMETOOLONG", "256-byte name");
    await vol.writeFile(`/${"n".repeat(255)}`, "x"); // 255 is the limit, and allowed
    await rejects(api, vol.stat("/loop1"), "ELOOP", "symlink loop");
    ok(await vol.exists("/dir/file"), "exists: present");
    ok(!(await vol.exists("/dir/none")), "exists: absent");

    // Read-only: everything readable, nothing writable.
    [vol, dev] = await remount(t, vol, dev, { readOnly: true });
    eq(await vol.readFile("/dir/file", "utf8"), "x", "read on a read-only mount");
    await rejects(api, vol.writeFile("/new", "x"), "EROFS", "writeFile read-only");
    await rejects(api, vol.mkdir("/newdir"), "EROFS", "mkdir read-only");
    await rejects(api, vol.unlink("/dir/file"), "EROFS", "unlink read-only");
    await rejects(api, vol.open("/dir/file", "r+"), "EROFS", "open r+ read-only");
    await rejects(api, vol.chmod("/dir/file", 0o600), "EROFS", "chmod read-only");
    await rejects(api, vol.rename("/dir/file", "/moved"), "EROFS", "rename read-only");
    await vol.unmount();
    await rejects(api, vol.stat("/dir"), "EIO", "stat after unmount");
    [vol, dev] = await remount(t, vol, dev);
    eqList(await vol.readdir("/dir") as string[], ["sub", "file"], "nothing changed by the read-only mount");
    return finish(t, vol, dev);
  },
};

const churn: Case = {
  name: "churn: a thousand files made and removed leave the counts where they started",
  async run(t) {
    let [vol, dev] = await fresh(t);
    const start = await vol.statfs();
    for (let d = 0; d < 10; d++) {
      await vol.mkdir(`/d${d}`);
      for (let f = 0; f < 100; f++) await vol.writeFile(`/d${d}/f${f}`, bytes((f * 37) % 9000, d * 100 + f));
    }
    const full = await vol.statfs();
    eq(full.ffree, start.ffree - 1010, "1010 inodes in use");
    ok(full.bfree < start.bfree, "blocks in use");
    [vol, dev] = await remount(t, vol, dev);
    eq((await vol.readdir("/d7")).length, 100, "entries after remount");
    eqBytes(await vol.readFile("/d7/f42") as Uint8Array, bytes((42 * 37) % 9000, 742), "a file after remount");
    for (let d = 0; d < 10; d++) await vol.rm(`/d${d}`, { recursive: true });
    eqList(await vol.readdir("/") as string[], ["lost+found"], "root after rm -r");
    [vol, dev] = await remount(t, vol, dev);
    const end = await vol.statfs();
    eq(end.ffree, start.ffree, "free inodes back to the start");
    eq(end.bfree, start.bfree, "free blocks back to the start");
    return finish(t, vol, dev);
  },
};

export const cases: Case[] = [deviceContract, emptyVolume, lifecycle, smallBlocks, handles, errors, churn];
