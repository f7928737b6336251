/**
 * The path walk's name cache (bindings/fs/dcache.ts): every namespace change must be seen
 * by the very next lookup, whichever name of the directory it touched — renames, unlinks,
 * re-creations under an old name, hard-linked names in other directories, directories
 * moved or removed and re-made, "..", and lookups racing a writer. Each step compares
 * what the volume answers with what must be true (inode numbers are checked against
 * the ones the operations produced); at the end the image must pass `e2fsck -fn` and
 * debugfs must list what the model says.
 */
import { afterAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError } from "../../bindings/index.ts";
import { DentryCache } from "../../bindings/fs/dcache.ts";
import { debugfs, run, saveSparse, tempDir, tool } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("dcache-");
afterAll(() => tmp.cleanup());

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(FsError);
    return (e as FsError).code;
  }
}

describe("the name cache never answers for a name that changed", () => {
  it("sees rename, unlink, re-creation, hard links, moved and re-made directories at once", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, {});
    const vol = await mount(dev);
    await vol.mkdir("/d");
    await vol.mkdir("/e");
    await vol.writeFile("/d/a", "one");
    const a = (await vol.stat("/d/a")).ino;
    expect((await vol.stat("/d/a")).ino).toBe(a); // now cached

    await vol.rename("/d/a", "/d/b");
    expect(await codeOf(vol.stat("/d/a"))).toBe("ENOENT");
    expect((await vol.stat("/d/b")).ino).toBe(a);

    await vol.writeFile("/d/a", "two");
    const a2 = (await vol.stat("/d/a")).ino;
    expect(a2).not.toBe(a);
    expect(new TextDecoder().decode(await vol.readFile("/d/a") as Uint8Array)).toBe("two");

    // rename over an existing name: the target name now means the source's inode.
    await vol.rename("/d/b", "/d/a");
    expect((await vol.stat("/d/a")).ino).toBe(a);
    expect(await codeOf(vol.stat("/d/b"))).toBe("ENOENT");

    // A hard link in another directory outlives an unlink of the first name.
    await vol.link("/d/a", "/e/h");
    expect((await vol.stat("/e/h")).ino).toBe(a);
    expect((await vol.stat("/d/a")).nlink).toBe(2);
    await vol.unlink("/d/a");
    expect(await codeOf(vol.stat("/d/a"))).toBe("ENOENT");
    expect((await vol.stat("/e/h")).ino).toBe(a);
    expect((await vol.stat("/e/h")).nlink).toBe(1);

    // Moving a directory: paths through its old name fail, "..": the new parent.
    await vol.mkdir("/p/q", { recursive: true });
    await vol.writeFile("/p/q/f", "f");
    const f = (await vol.stat("/p/q/f")).ino;
    await vol.rename("/p", "/e/r");
    expect(await codeOf(vol.stat("/p/q/f"))).toBe("ENOENT");
    expect((await vol.stat("/e/r/q/f")).ino).toBe(f);
    expect((await vol.stat("/e/r/q/../../h")).ino).toBe(a);
    await vol.rename("/e/r/q", "/d/q");
    expect((await vol.stat("/d/q/../../e/h")).ino).toBe(a);

    // A directory removed and made again under the same name is empty.
    await vol.unlink("/d/q/f");
    await vol.rmdir("/d/q");
    expect(await codeOf(vol.stat("/d/q/f"))).toBe("ENOENT");
    await vol.mkdir("/d/q");
    expect(await codeOf(vol.stat("/d/q/f"))).toBe("ENOENT");
    expect(await vol.readdir("/d/q")).toEqual([]);

    await vol.unmount();
    const img = join(tmp.dir, "a.img");
    await saveSparse(dev, img);
    const fsck = await run(tool("e2fsck"), ["-fn", img]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    const d = (await debugfs(img, "ls -p /d")).stdout;
    expect(d).toContain("/q/");
    expect(d).not.toMatch(/\/a\/|\/b\//);
    const e = (await debugfs(img, "ls -p /e")).stdout;
    expect(e).toContain(`/${a}/`);
    expect(e).toMatch(new RegExp(`/${a}/\\d+/\\d+/\\d+/h/`));
  });

  it("a lookup racing an unlink does not leave the removed name behind", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, {});
    const vol = await mount(dev);
    await vol.mkdir("/d");
    for (let round = 0; round < 200; round++) {
      const name = `/d/n${round}`;
      await vol.writeFile(name, "");
      // Lookups start before the unlink and finish around it.
      const stats = Array.from({ length: 4 }, () => vol.stat(name).catch(() => undefined));
      await Promise.all([vol.unlink(name), ...stats]);
      expect(await codeOf(vol.stat(name))).toBe("ENOENT");
    }
    await vol.unmount();
  });
});

describe("an insert reuses its own lookup's index walk, never another's", () => {
  it("creates racing lookups of other missing names in the same htree directory stay e2fsck-clean", async () => {
    const dev = new MemoryDevice(64 << 20);
    await mkfs(dev, {});
    const vol = await mount(dev);
    await vol.mkdir("/d");
    const N = 3000;
    // Each create's lookup miss is followed, before its insert, by lookups of names that
    // hash elsewhere: an insert that took the last miss's path would land in a wrong leaf.
    let done = false;
    const prober = async (seed: number) => {
      for (let k = seed; !done; k += 3) await vol.stat(`/d/absent-${k % 997}`).catch(() => undefined);
    };
    const probers = [0, 1, 2].map(prober);
    try {
      for (let i = 0; i < N; i++) await vol.writeFile(`/d/file-${i}`, "");
    } finally {
      done = true;
      await Promise.all(probers);
    }
    await vol.unmount();
    const img = join(tmp.dir, "race.img");
    await saveSparse(dev, img);
    const fsck = await run(tool("e2fsck"), ["-fn", img]);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
    expect((await debugfs(img, "htree /d")).stdout).toMatch(/Root node dump/);
    const listed = new Set((await debugfs(img, "ls -p /d")).stdout.split("\n").map((l) => l.split("/")[5]).filter(Boolean));
    for (let i = 0; i < N; i++) expect(listed.has(`file-${i}`)).toBe(true);
  }, 120_000);
});

describe("DentryCache bounds", () => {
  it("stays within its budget and answers only for the generation it stored", () => {
    const c = new DentryCache();
    for (let i = 0; i < 20_000; i++) c.set(5, 1, `n${i}`, 100 + i, c.epoch);
    expect(c.size).toBeLessThanOrEqual(8192);
    expect(c.get(5, 1, "n19999")).toBe(20_099);
    expect(c.get(5, 2, "n19999")).toBe(0);
    const e = c.epoch;
    c.dropDir(5);
    expect(c.get(5, 1, "n19999")).toBe(0);
    // A lookup begun before the drop stores nothing.
    c.set(5, 1, "late", 7, e);
    expect(c.get(5, 1, "late")).toBe(0);
  });
});
