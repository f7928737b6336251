/// <reference lib="deno.ns" />
/**
 * The conformance suite (suite.ts) under `deno test`: every case on a MemoryDevice and on
 * the Deno FileDevice over a temp file, through deno/mod.ts exactly as a Deno user imports
 * it. Each image a case returns is checked with `e2fsck -fn` (exit 0) via Deno.Command.
 *
 * Permissions (scripts/test-deno.mjs passes exactly these): read the repository (sources,
 * build/engine.wasm) and the OS temp directory, write the temp directory, run e2fsck.
 * Type checking is tsc's job (`npm run typecheck`); the runner passes --no-check so that
 * differences between Deno's bundled TypeScript/lib and ours never block a run.
 * This file is excluded from tsconfig.json because it uses the Deno namespace.
 */
import * as api from "../../deno/mod.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { cases, type Target } from "./suite.ts";

const dir = await Deno.makeTempDir({ prefix: "ext4-conformance-deno-" });
let serial = 0;
const E2FSCK = ["/usr/sbin/e2fsck", "/sbin/e2fsck"];

/** Run e2fsck -fn on `image`; throws with its report unless it exits 0. */
async function e2fsck(image: Uint8Array, what: string): Promise<void> {
  const path = `${dir}/check-${++serial}.img`;
  await Deno.writeFile(path, image);
  try {
    for (const cmd of E2FSCK) {
      let out: Deno.CommandOutput;
      try {
        out = await new Deno.Command(cmd, { args: ["-fn", path], stdout: "piped", stderr: "piped" }).output();
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      if (out.code !== 0) {
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        throw new Error(`e2fsck -fn on the image of "${what}" exited ${out.code}:\n${text}`);
      }
      return;
    }
    throw new Error(`e2fsck not found in ${E2FSCK.join(", ")}: install e2fsprogs`);
  } finally {
    await Deno.remove(path).catch(() => {});
  }
}

const memory: Target = {
  name: "deno/memory",
  api,
  async device(size) {
    return new api.MemoryDevice(size);
  },
  async reopen(dev) {
    await dev.close();
    return (dev as api.MemoryDevice).reopen();
  },
  async image(dev) {
    return (dev as api.MemoryDevice).bytes();
  },
};

const paths = new WeakMap<BlockDevice, string>();
const file: Target = {
  name: "deno/file",
  api,
  async device(size) {
    const path = `${dir}/dev-${++serial}.img`;
    const dev = await api.FileDevice.open(path, { size, create: true });
    paths.set(dev, path);
    return dev;
  },
  async reopen(dev) {
    const path = paths.get(dev)!;
    await dev.close();
    const again = await api.FileDevice.open(path);
    paths.set(again, path);
    return again;
  },
  async image(dev) {
    return Deno.readFile(paths.get(dev)!);
  },
};

for (const target of [memory, file]) {
  for (const c of cases) {
    Deno.test(`${target.name}: ${c.name}`, async () => {
      const image = await c.run(target);
      if (image) await e2fsck(image, c.name);
    });
  }
}

Deno.test("cleanup: remove the temp directory", async () => {
  await Deno.remove(dir, { recursive: true });
});
