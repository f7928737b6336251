/**
 * The page side of the browser conformance run (test/browser/conformance.html).
 *
 * `window.runConformance()` runs the shared cases on chromium/memory here on the main
 * thread, has conformance-worker.ts run them on chromium/opfs, then checks what only the
 * page can: openVolume()'s worker proxy over OPFS and over an imported image — FsError
 * fields and Stats/Dirent methods surviving the thread hop, persistence across a reopen,
 * export. Everything is reported to the Playwright side, which runs e2fsck/debugfs on the
 * returned images; the page itself judges only what the API answered.
 */
import * as api from "../../bindings/browser.ts";
import { cases } from "../conformance/suite.ts";
import { check, memoryTarget, runCases, type CaseResult } from "./targets.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

async function expectCode(p: Promise<unknown>, code: string, syscall: string | undefined, path: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    const err = e as api.FsError;
    assert(err instanceof api.FsError, `an FsError crossed the worker boundary (got ${String(e)})`);
    assert(err.code === code && err.errno === api.ERRNO[code as api.ErrorCode], `code ${code}, got ${err.code}/${err.errno}`);
    assert((syscall === undefined || err.syscall === syscall) && err.path === path, `syscall/path ${syscall} ${path}, got ${err.syscall} ${err.path}`);
    return;
  }
  throw new Error(`expected ${code}, the call resolved`);
}

function runWorker(): Promise<CaseResult[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL("./conformance-worker.js", import.meta.url), { type: "module" });
    w.onmessage = (e) => { w.terminate(); resolve(e.data as CaseResult[]); };
    w.onerror = (e) => { w.terminate(); reject(new Error(`conformance worker failed: ${e.message}`)); };
    w.postMessage("run");
  });
}

const enc = new TextEncoder();
const pattern = (n: number, seed: number) => new Uint8Array(n).map((_, i) => (i * 31 + seed + (i >> 9)) & 0xff);
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
let exported: Blob | undefined;

async function openVolumeOpfs(): Promise<Uint8Array> {
  const path = "page-tests/proxy.img";
  await api.removeOpfsVolume(path);
  const big = pattern(300_000, 7);
  let vol = await api.openVolume({ opfs: path, size: 32 << 20, mkfs: { label: "proxied" } });
  assert(vol.remote, "the page's volume runs in a worker");
  await vol.mkdir("/docs/deep", { recursive: true });
  await vol.writeFile("/docs/big.bin", big);
  assert(big.length === 300_000, "the caller's buffer is still usable after writeFile");
  await vol.writeFile("/docs/from-blob.txt", new Blob(["blob contents\n"]));
  await vol.writeFile("/persist.txt", "persisted across reopen\n");
  await vol.symlink("persist.txt", "/link");
  const ents = await vol.readdir("/docs", { withFileTypes: true });
  const deep = ents.find((d) => d.name === "deep");
  assert(deep?.isDirectory() && !deep.isFile(), "Dirent methods work on the page");
  const st = await vol.stat("/docs/big.bin");
  assert(st.isFile() && st.size === big.length && st.mtime instanceof Date, "Stats methods and fields work on the page");
  assert((await vol.lstat("/link")).isSymbolicLink(), "lstat sees the symlink");
  // The engine names the syscall of a failed stat's lookup "lstat"; only code and path are pinned here.
  await expectCode(vol.stat("/missing"), "ENOENT", undefined, "/missing");
  await expectCode(vol.mkdir("/docs"), "EEXIST", "mkdir", "/docs");
  // A FileHandle across the boundary: positional and sequential writes, read into a caller's buffer.
  const fh = await vol.open("/docs/fh.txt", "w+");
  await fh.write("abc");
  await fh.write(enc.encode("..XYZ.."), 2, 3, 8192);
  const into = new Uint8Array(8);
  const { bytesRead } = await fh.read(into, 1, 6, 8190);
  assert(bytesRead === 5 && same(into, new Uint8Array([0, 0, 0, 88, 89, 90, 0, 0])), `fh.read fills the caller's buffer (${bytesRead}: ${into})`);
  assert((await fh.stat()).size === 8195 && (await fh.stat()).isFile(), "fh.stat across the boundary");
  await fh.close();
  const stats = await vol.stats();
  assert(typeof stats.lazyInit === "object" && stats.kind === "opfs", "stats() reports lazy init and the device kind");
  await vol.unmount();
  const after = await vol.stat("/").then(() => "resolved", (e: api.FsError) => e.code);
  assert(after === "EBADF", `a call after unmount rejects EBADF (got ${after})`);

  // Read-only mounts share the file: two at once, and writes answer EROFS.
  const ro1 = await api.openVolume({ opfs: path, mount: { readOnly: true } });
  const ro2 = await api.openVolume({ opfs: path, mount: { readOnly: true } });
  assert((await ro2.readFile("/persist.txt", "utf8")) === "persisted across reopen\n", "a second read-only mount reads");
  await expectCode(ro1.writeFile("/nope", "x"), "EROFS", undefined, "/nope");
  await ro1.unmount();
  await ro2.unmount();

  vol = await api.openVolume({ opfs: path });
  assert(same((await vol.readFile("/docs/big.bin")) as Uint8Array, big), "the big file persisted in OPFS");
  assert((await vol.readFile("/persist.txt", "utf8")) === "persisted across reopen\n", "the text file persisted");
  assert((await vol.readlink("/link")) === "persist.txt", "the symlink persisted");
  exported = await vol.exportImage();
  await vol.unmount();
  await api.removeOpfsVolume(path);
  return new Uint8Array(await exported.arrayBuffer());
}

async function openVolumeImage(): Promise<Uint8Array> {
  assert(exported, "the OPFS check exported an image first");
  const vol = await api.openVolume({ image: exported });
  assert((await vol.readFile("/docs/from-blob.txt", "utf8")) === "blob contents\n", "an imported image reads back");
  await vol.rm("/docs", { recursive: true });
  await vol.writeFile("/added.txt", enc.encode("added after import\n"));
  const img = new Uint8Array(await (await vol.exportImage()).arrayBuffer());
  await vol.unmount();
  return img;
}

async function mainThreadOpfs(): Promise<void> {
  await expectCode(api.OpfsDevice.open("page-tests/nope.img", { create: true, size: 1 << 20 }), "ENOSYS", "open", "page-tests/nope.img");
}

(window as unknown as { runConformance: () => Promise<CaseResult[]> }).runConformance = async () => {
  const results = await runCases(memoryTarget(api), cases);
  try {
    results.push(...(await runWorker()));
  } catch (e) {
    results.push({ target: "chromium/opfs", name: "worker", ok: false, error: String(e), ms: 0 });
  }
  results.push(await check("chromium/openVolume", "opfs volume through the worker proxy, reopened", openVolumeOpfs,
    { "/persist.txt": "persisted across reopen\n", "/docs/from-blob.txt": "blob contents\n", "/docs/fh.txt": `abc${"\0".repeat(8189)}XYZ` }));
  results.push(await check("chromium/openVolume", "image imported from a Blob, modified, exported", openVolumeImage,
    { "/persist.txt": "persisted across reopen\n", "/added.txt": "added after import\n" }));
  results.push(await check("chromium/page", "OpfsDevice on the main thread says ENOSYS", mainThreadOpfs));
  return results;
};
