/**
 * The read fuzzer: corrupted images must fail politely. Small images made by mke2fs -d
 * (ext4 with metadata_csum, ext4 with 1 KiB blocks and no checksums, ext2) get seeded,
 * targeted corruption (see fuzz-lib.ts); each corrupted copy is mounted and every path
 * walked and read. Every failure must be an FsError with a read-side code, nothing else
 * may be thrown, no case may hang (per-case timeout, enforced by terminating the worker
 * thread), and the engine must not hide crashes behind EIO.
 *
 * Besides the seeded cases, a fixed list of classic corruptions aimed by path (rec_len 0,
 * htree depth/count/limit, extent header depth and counts, block pointers past the device,
 * a directory with i_size_high set, symlink sizes, a root that is not a directory …) runs
 * every time (directedPlans in fuzz-lib.ts).
 *
 * So the fuzzer is not vacuous, the test also asserts that a good share of cases mount
 * (the damage reaches past mount) and that EFSCORRUPTED actually occurs; and, before any
 * of that, that the pristine images read back exactly like their source tree and that the
 * reference checksum code used to disguise corruption agrees with mke2fs.
 *
 * Knobs (environment): FUZZ_CASES (default 500), FUZZ_SEED (1), FUZZ_ONLY=3,17 (replay
 * those cases), FUZZ_WORKERS, FUZZ_CASE_TIMEOUT_MS (20000), FUZZ_REPORT=path (write the
 * summary as JSON). `node scripts/fuzz.mjs` runs 20,000 cases.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, readdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import "../../bindings/node.ts";
import { mount, MemoryDevice, type Volume } from "../../bindings/index.ts";
import { tempDir } from "../helpers/e2fsprogs.ts";
import { walkHost, type TreeManifest } from "../helpers/fixtures.ts";
import { htreeLevels, listImage } from "../helpers/image-oracle.ts";
import { makeFuzzTree, buildFuzzImages, fixRegionCsum, walkVolume, directedPlans, type FuzzImage } from "./fuzz-lib.ts";
import { runFuzz, formatSummary } from "./fuzz-pool.ts";

const CASES = Number(process.env.FUZZ_CASES ?? 500);
const SEED = Number(process.env.FUZZ_SEED ?? 1);
const ONLY = process.env.FUZZ_ONLY ? process.env.FUZZ_ONLY.split(",").map(Number) : null;
const WORKERS = Number(process.env.FUZZ_WORKERS ?? Math.max(1, Math.min(availableParallelism(), 4)));
const CASE_TIMEOUT_MS = Number(process.env.FUZZ_CASE_TIMEOUT_MS ?? 20_000);

const tmp = tempDir("fuzz-");
let tree: TreeManifest;
let images: FuzzImage[];
let bytes: Uint8Array[];

beforeAll(async () => {
  tree = makeFuzzTree(join(tmp.dir, "tree"));
  if (tree.notes.length) console.log(`fixture notes:\n  ${tree.notes.join("\n  ")}`);
  images = await buildFuzzImages(tmp.dir, tree);
  bytes = images.map((i) => new Uint8Array(readFileSync(i.path)));
}, 120_000);
afterAll(() => tmp.cleanup());

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("read fuzz", () => {
  it("the fuzz images hold every kind of structure the mutations aim at", async () => {
    for (const img of images) {
      const kinds = new Set(img.regions.map((r) => r.kind));
      for (const k of ["sb", "gdt", "inode", "dir", "dxroot", "symlink", "bitmap"] as const) expect(kinds.has(k), `${img.name}: ${k}`).toBe(true);
      if (img.name.startsWith("ext4")) expect(kinds.has("extent"), `${img.name}: extent blocks`).toBe(true);
      if (img.name === "ext2") expect(kinds.has("indirect"), "ext2: indirect blocks").toBe(true);
    }
    const k1 = images.find((i) => i.blockSize === 1024)!;
    expect(await htreeLevels(k1.path, "/big"), "1 KiB image: htree with an interior level").toBeGreaterThanOrEqual(1);
    expect(k1.regions.some((r) => r.kind === "dxnode")).toBe(true);
  });

  it("the reference checksums agree with mke2fs: recomputing every one on a pristine image changes nothing", () => {
    let checked = 0;
    for (const [i, img] of images.entries()) {
      if (!img.metadataCsum) continue;
      const copy = bytes[i]!.slice();
      for (const r of img.regions) fixRegionCsum(copy, img, r);
      const changed = img.regions.filter((r) => Buffer.compare(bytes[i]!.subarray(r.offset, r.offset + r.length), copy.subarray(r.offset, r.offset + r.length)) !== 0);
      expect(changed.map((r) => `${img.name}: ${r.kind} at ${r.offset}${r.ino ? ` (ino ${r.ino})` : ""}`)).toEqual([]);
      checked += img.regions.length;
    }
    expect(checked).toBeGreaterThan(50);
  });

  it("uncorrupted images read back exactly like the source tree", async () => {
    const host = walkHost(tree.root);
    for (const [i, img] of images.entries()) {
      const vol = await mount(MemoryDevice.from(bytes[i]!.slice()), { readOnly: true, cacheBytes: 4 << 20 });
      const w = await walkVolume(vol, true);
      await vol.unmount();
      expect(w.failures, img.name).toEqual([]);
      for (const code of Object.keys(w.codes)) expect(["ELOOP", "ENOENT", "ENOTDIR", "ENAMETOOLONG"], `${img.name}: pristine walk gave ${code}`).toContain(code);
      const diffs: string[] = [];
      for (const e of host) {
        if (e.st.isDirectory()) {
          const want = readdirSync(join(tree.root, e.path)).concat(e.path === "/" ? ["lost+found"] : []).sort();
          const got = [...(w.dirs.get(e.path) ?? [])].sort();
          if (JSON.stringify(want) !== JSON.stringify(got)) diffs.push(`${e.path}: names differ (${got.length} vs ${want.length})`);
        } else if (e.st.isFile()) {
          const got = w.files.get(e.path);
          const want = readFileSync(join(tree.root, e.path));
          if (!got || sha(got) !== sha(want)) diffs.push(`${e.path}: content ${got ? "differs" : "not read"}`);
        } else if (e.st.isSymbolicLink()) {
          if (w.links.get(e.path) !== e.target) diffs.push(`${e.path}: link target ${JSON.stringify(w.links.get(e.path))}`);
        }
      }
      expect(diffs.slice(0, 20), `${img.name}: ${diffs.length} differences`).toEqual([]);
    }
  });

  it("the harness itself catches what it must: non-FsErrors, internal EIO, hangs", async () => {
    const { FsError } = await import("../../bindings/index.ts");
    const thrower = (e: unknown) => async () => {
      throw e;
    };
    // A stand-in volume whose root lists one file that fails in each bad way in turn.
    for (const [bad, expectFailure] of [
      [new TypeError("x is undefined"), true],
      [new FsError("EIO", "internal error: unreachable"), true],
      [new FsError("EEXIST", "nonsense for a read"), true],
      [new FsError("EFSCORRUPTED", "bad extent header"), false],
    ] as const) {
      const stub = {
        lstat: async (p: string) => (p === "/" ? { ino: 2, isDirectory: () => true } : { ino: 12, size: 1, isDirectory: () => false, isFile: () => true, isSymbolicLink: () => false }),
        readdir: async () => [{ name: "f" }],
        readFile: thrower(bad),
      } as unknown as Volume;
      const w = await walkVolume(stub);
      expect(w.failures.length > 0, `${String(bad)} counted as a failure`).toBe(expectFailure);
    }
    // Case 0 spins forever in its worker; the pool must report it and still run case 1 on a
    // fresh worker (on a loaded machine case 1 may be slow enough to count as a hang too).
    const s = await runFuzz({ images, bytes, seed: SEED, cases: [0, 1], workers: 1, caseTimeoutMs: 5000, spinCases: [0] });
    expect(s.hangs[0]?.index, "the spinning case is reported as a hang").toBe(0);
    expect(s.hangs[0]?.plan).toMatch(/^case 0 \[/);
    expect(s.hangs.length + s.failures.length + (s.mounted > 0 || Object.keys(s.mountCodes).length > 0 ? 1 : 0), "both cases accounted for").toBe(2);
  }, 60_000);

  it("directed corruptions (classic ones, aimed by path) end in FsErrors, quickly", async () => {
    const listings = await Promise.all(images.map((img) => listImage(img.path)));
    const inoOf = (i: number, p: string) => listings[i]!.get(p)?.ino ?? -1;
    const plans = directedPlans(images, inoOf);
    const summary = await runFuzz({ images, bytes, seed: SEED, cases: 0, plans, workers: WORKERS, caseTimeoutMs: Math.min(CASE_TIMEOUT_MS, 10_000) });
    console.log(formatSummary(summary).replace("read fuzz:", "directed cases:"));
    const bad = [...summary.hangs.map((h) => `HANG ${h.plan}: ${h.messages[0]}`), ...summary.failures.map((f) => `${f.plan}: ${f.messages.join(" | ")}`)];
    expect(bad, `${bad.length} of ${plans.length} directed cases broke the contract`).toEqual([]);
    expect(summary.casesWithCode.EFSCORRUPTED ?? 0).toBeGreaterThan(plans.length / 3);
  }, 300_000);

  const n = ONLY ? ONLY.length : CASES;
  it(`${n} corrupted images: only FsErrors, no hangs, and EFSCORRUPTED is reached`, async () => {
    let lastPct = -1;
    const summary = await runFuzz({
      images, bytes, seed: SEED, cases: ONLY ?? CASES, workers: WORKERS, caseTimeoutMs: CASE_TIMEOUT_MS,
      onProgress: (d, t) => {
        const pct = Math.floor((d / t) * 10);
        if (t >= 5000 && pct !== lastPct) {
          lastPct = pct;
          console.log(`fuzz: ${d}/${t}`);
        }
      },
    });
    const text = formatSummary(summary);
    console.log(text);
    if (process.env.FUZZ_REPORT) writeFileSync(process.env.FUZZ_REPORT, JSON.stringify({ ...summary, text }, null, 2));
    const bad = [...summary.hangs.map((h) => `HANG ${h.plan}: ${h.messages[0]}`), ...summary.failures.map((f) => `${f.plan}: ${f.messages.join(" | ")}`)];
    expect(bad.slice(0, 10), `${bad.length} of ${summary.cases} cases broke the contract`).toEqual([]);
    if (!ONLY) {
      expect(summary.casesWithCode.EFSCORRUPTED ?? 0, "cases that produced EFSCORRUPTED").toBeGreaterThanOrEqual(Math.max(1, Math.floor(summary.cases / 50)));
      expect(summary.mounted, "cases whose corruption got past mount").toBeGreaterThanOrEqual(Math.floor(summary.cases * 0.3));
    }
  }, 120_000 + Math.ceil((n * 600) / Math.max(1, WORKERS)));
});
