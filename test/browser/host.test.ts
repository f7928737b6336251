/**
 * The browser bindings' thread plumbing, run under Node (vitest): VolumeHost — what the
 * engine worker runs — and the Comlink wire with our FsError handler, over a real
 * MessageChannel. Chromium runs the same code for real in scripts/test-browser.mjs; this
 * catches wire regressions in the ordinary `npm test` pass, and judges the image a
 * folder import produces with e2fsck -fn and debugfs, never by reading it back ourselves.
 */
import { describe, it, expect, afterAll } from "vitest";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts"; // the engine loader for Node
import { FsError } from "../../bindings/fs/errors.ts";
import { VolumeHost } from "../../bindings/browser/host.ts";
import { Comlink, installRpcHandlers, reviveStats } from "../../bindings/browser/rpc.ts";
import { e2fsck, debugfs, tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("ext4-wasm-host-");
afterAll(() => tmp.cleanup());

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

describe("VolumeHost over a Comlink MessageChannel", () => {
  it("carries FsError's code, errno, syscall and path, and Stats come back usable", async () => {
    installRpcHandlers();
    const host = await VolumeHost.open({ size: 16 << 20 });
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(host, port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<VolumeHost>(port2 as unknown as Comlink.Endpoint);
    try {
      await remote.call("mkdir", ["/d"]);
      const err = await remote.call("mkdir", ["/d"]).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(FsError);
      expect(err).toMatchObject({ code: "EEXIST", errno: 17, syscall: "mkdir", path: "/d" });
      const raw = (await remote.call("stat", ["/d"])) as object;
      expect(Object.getPrototypeOf(raw)).toBe(Object.prototype); // structured clone dropped it
      const st = reviveStats(raw);
      expect(st.isDirectory()).toBe(true);
      expect(st.mtime).toBeInstanceOf(Date);
    } finally {
      remote[Comlink.releaseProxy]();
      port1.close();
      port2.close();
      await host.close();
    }
  });

  it("importFiles builds an image that e2fsck passes and debugfs reads back byte for byte", async () => {
    const host = await VolumeHost.open({ size: 32 << 20, mkfs: { label: "imported" } });
    const big = pattern((4 << 20) * 2 + 77, 3); // three 4 MiB import pieces
    const small = new TextEncoder().encode("small file\n");
    const mtime = Date.UTC(2020, 0, 2, 3, 4, 5);
    const seen: number[] = [];
    const done = await host.importFiles([
      { path: "dir", mtime },
      { path: "dir/small.txt", file: new Blob([small as BlobPart]), mtime },
      { path: "nested/a/b/big.bin", file: new Blob([big as BlobPart]) },
      { path: "empty", file: new Blob([]) },
    ], "/", (p) => { seen.push(p.files); });
    expect(done).toMatchObject({ files: 4, totalFiles: 4, bytes: big.length + small.length });
    expect(seen).toEqual([1, 2, 3, 4]);
    const bad = await host.importFiles([{ path: "../escape", file: new Blob(["x"]) }]).then(() => null, (e) => e);
    expect(bad).toMatchObject({ code: "EINVAL" });
    const image = new Uint8Array(await (await host.exportImage()).arrayBuffer());
    await host.close();

    const img = join(tmp.dir, "imported.img");
    writeFileSync(img, image);
    const fsck = await e2fsck(img);
    expect(fsck.code, fsck.stdout).toBe(0);
    const out = join(tmp.dir, "big.out");
    await debugfs(img, `dump /nested/a/b/big.bin ${out}`);
    expect(Buffer.compare(readFileSync(out), Buffer.from(big))).toBe(0);
    expect((await debugfs(img, "cat /dir/small.txt")).stdout).toBe("small file\n");
    const stat = (await debugfs(img, "stat /dir")).stdout;
    // The directory's time is the one given, set after its children were created.
    expect(stat).toContain(`mtime: 0x${(mtime / 1000).toString(16).padStart(8, "0")}:`);
  });
});
