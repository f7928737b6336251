/**
 * The correctness checks of bench/read: every reader's output is compared, once and
 * untimed, with what the fixtures recorded, so that a broken reader is reported INVALID
 * instead of being timed (a reader that skips work looks fast).
 *
 * Why these shapes: content is compared by SHA-256 per file (recorded when the tree was
 * generated, so the check is independent of every reader, the host included); debugfs's
 * `-f` output is one stream in which it echoes each command before the file's bytes, so
 * it is parsed as (echo line, exactly `size` bytes) pairs in command order; listings are
 * compared as sets of names, with counts, so a missing or a doubled entry both show.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { TreeFile } from "./read-fixtures.ts";

/** Index of a file in the tree's list, and a chunk of its bytes, in read order. */
export type ChunkSink = (file: number, chunk: Uint8Array) => void;

/** debugfs prints only its banner on stderr when every command succeeded. */
export function debugfsErrors(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.trim() && !/^debugfs \d/.test(l));
}

/** Per-file SHA-256 of what a reader hands over, compared with the generated tree. */
export function treeChecker(files: TreeFile[]) {
  const hashes = files.map(() => createHash("sha256"));
  const sizes = files.map(() => 0);
  const sink: ChunkSink = (i, c) => {
    hashes[i]!.update(c);
    sizes[i]! += c.length;
  };
  const result = (): string | null => {
    const bad = files.filter((f, i) => sizes[i] !== f.size || hashes[i]!.digest("hex") !== f.sha256);
    return bad.length ? `${bad.length} of ${files.length} files read back wrong (first: /${bad[0]!.path})` : null;
  };
  return { sink, result };
}

/** Hash every file of a tree written out to `dir` (rdump, copyOut) against the source. */
export function checkWrittenTree(dir: string, files: TreeFile[]): string | null {
  const bad: string[] = [];
  for (const f of files) {
    const p = join(dir, f.path);
    if (!existsSync(p)) bad.push(`/${f.path} missing`);
    else if (createHash("sha256").update(readFileSync(p)).digest("hex") !== f.sha256) bad.push(`/${f.path} differs`);
  }
  return bad.length ? `${bad.length} of ${files.length} files wrong in the written tree (first: ${bad[0]})` : null;
}

/**
 * Run `debugfs -f cmds img` and parse its stdout: for each command debugfs echoes
 * "debugfs: cat /path\n" and then writes the file's bytes; every file must follow, in
 * order, with the recorded size and SHA-256.
 */
export function checkDebugfsCat(debugfs: string, img: string, cmds: string, files: { path: string; size: number; sha256: string }[]): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(debugfs, ["-f", cmds, img], { stdio: ["ignore", "pipe", "pipe"] });
    let idx = 0;
    let header = Buffer.alloc(0);
    let inBody = false;
    let left = 0;
    let hash = createHash("sha256");
    let problem: string | null = null;
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.stdout.on("data", (chunk: Buffer) => {
      let off = 0;
      while (off < chunk.length && !problem) {
        if (!inBody) {
          if (idx >= files.length) {
            problem = "debugfs wrote more than the files asked for";
            break;
          }
          const want = Buffer.from(`debugfs: cat /${files[idx]!.path}\n`);
          const take = chunk.subarray(off, off + want.length - header.length);
          header = Buffer.concat([header, take]);
          off += take.length;
          if (header.length < want.length) break;
          if (!header.equals(want)) {
            problem = `unexpected debugfs output before /${files[idx]!.path}: ${JSON.stringify(header.toString("latin1").slice(0, 60))}`;
            break;
          }
          header = Buffer.alloc(0);
          inBody = true;
          left = files[idx]!.size;
          hash = createHash("sha256");
        }
        const take = Math.min(left, chunk.length - off);
        hash.update(chunk.subarray(off, off + take));
        off += take;
        left -= take;
        if (left === 0) {
          if (hash.digest("hex") !== files[idx]!.sha256) problem = `debugfs cat /${files[idx]!.path}: content differs`;
          idx++;
          inBody = false;
        }
      }
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const errs = debugfsErrors(stderr);
      if (!problem && errs.length) problem = `debugfs: ${errs.slice(0, 3).join(" / ")}`;
      if (!problem && (idx !== files.length || inBody || header.length)) problem = `debugfs output ended after ${idx} of ${files.length} files`;
      if (!problem && code !== 0) problem = `debugfs exited ${code}`;
      resolve(problem);
    });
  });
}

export function sameNames(got: string[], want: string[]): string | null {
  const w = new Set(want);
  const g = new Set(got);
  const missing = want.filter((n) => !g.has(n));
  const extra = got.filter((n) => !w.has(n));
  if (!missing.length && !extra.length && got.length === want.length) return null;
  return `listing has ${got.length} names for ${want.length} entries (${missing.length} missing${missing[0] ? `, e.g. ${missing[0]}` : ""}; ${extra.length} unexpected${extra[0] ? `, e.g. ${extra[0]}` : ""})`;
}
