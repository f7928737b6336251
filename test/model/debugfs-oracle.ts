/**
 * The model test's final oracle: after the run, debugfs must see exactly what the model
 * holds — names, inode sharing of hard links, modes, owners, link counts, sizes, known
 * mtimes, and through `rdump` every file's bytes and every symlink's target. Kept apart
 * from fsmodel.test.ts (the run itself) so each file stays one concern.
 */
import { expect } from "vitest";
import { join } from "node:path";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { run, tool } from "../helpers/e2fsprogs.ts";
import { listImage, statInodes, decodeTime } from "../helpers/image-oracle.ts";
import type { FsModel, MNode } from "./model.ts";

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/** "expected N bytes, got M; first difference at byte i …" for failure messages. */
export function describeDiff(want: Uint8Array, got: Uint8Array): string {
  let i = 0;
  while (i < want.length && i < got.length && want[i] === got[i]) i++;
  return `expected ${want.length} bytes, got ${got.length}; first difference at byte ${i} (expected ${want[i]}, got ${got[i]})`;
}

/** debugfs must see the model: names, modes, owners, links, sizes, known mtimes, bytes. */
export async function compareWithDebugfs(img: string, model: FsModel, where: string): Promise<void> {
  const listing = await listImage(img);
  // `ls -p` also prints the empty (inode 0) slots of lost+found's preallocated blocks.
  for (const [k, v] of [...listing]) if (v.ino === 0) listing.delete(k);
  const paths = [...model.paths()];
  const want = paths.map(([p]) => p).sort();
  const got = [...listing.keys()].sort();
  const extra = got.filter((p) => !listing.has(p) || !want.includes(p));
  const missing = want.filter((p) => !listing.has(p));
  if (extra.length || missing.length) expect.fail(`${where}: debugfs names: extra ${JSON.stringify(extra.slice(0, 10))}, missing ${JSON.stringify(missing.slice(0, 10))}`);
  const inoOf = new Map<MNode, number>();
  for (const [p, m] of paths) {
    const e = listing.get(p)!;
    expect({ p, mode: e.mode.toString(8), uid: e.uid, gid: e.gid }, where).toEqual({ p, mode: model.mode(m).toString(8), uid: m.uid, gid: m.gid });
    const ino = inoOf.get(m);
    if (ino !== undefined) expect(e.ino, `${where}: ${p} is a hard link of inode ${ino}`).toBe(ino);
    inoOf.set(m, e.ino);
  }
  expect(new Set(inoOf.values()).size, `${where}: distinct objects have distinct inodes`).toBe(inoOf.size);
  const facts = await statInodes(img, [...inoOf.values()]);
  for (const [m, ino] of inoOf) {
    const f = facts.get(ino)!;
    const p = model.pathOf(m);
    expect(f, `${where}: debugfs stat <${ino}>`).toBeDefined();
    expect({ p, links: f.links }, where).toEqual({ p, links: model.nlink(m) });
    if (m.kind !== "dir") expect({ p, size: f.size }, where).toEqual({ p, size: m.size });
    if (m.mtimeNs !== undefined && f.mtime) {
      const d = decodeTime(f.mtime) - m.mtimeNs;
      expect(d <= 1000n && d >= -1000n, `${where}: mtime of ${p}: debugfs ${decodeTime(f.mtime)} vs ${m.mtimeNs}`).toBe(true);
    }
  }
  // Bytes and symlink targets through rdump (which keeps rwx bits, not setuid/setgid/sticky).
  const out = join(img + ".rdump");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out);
  const r = await run(tool("debugfs"), ["-R", `rdump / ${out}`, img]);
  expect(r.code, `rdump: ${r.stderr}`).toBe(0);
  for (const [p, m] of paths) {
    if (p === "/") continue;
    const h = join(out, p);
    const st = lstatSync(h);
    if (m.kind === "symlink") {
      expect(st.isSymbolicLink(), `${where}: ${p} is a symlink in rdump`).toBe(true);
      expect(readlinkSync(h, "utf8"), `${where}: target of ${p}`).toBe(m.target);
    } else if (m.kind === "dir") {
      expect(st.isDirectory(), `${where}: ${p} is a directory in rdump`).toBe(true);
    } else {
      expect(st.isFile(), `${where}: ${p} is a file in rdump`).toBe(true);
      expect((st.mode & 0o777).toString(8), `${where}: rdump mode of ${p}`).toBe((m.perm & 0o777).toString(8));
      const bytes = readFileSync(h);
      if (!bytesEqual(bytes, model.contents(m))) expect.fail(`${where}: rdump contents of ${p}: ${describeDiff(model.contents(m), bytes)}`);
    }
  }
}
