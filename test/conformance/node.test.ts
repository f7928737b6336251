/**
 * The conformance suite (suite.ts) on Node: every case on a MemoryDevice and on a
 * FileDevice over a temp file, through the Node entry exactly as a user imports it.
 * Each image a case returns is judged by `e2fsck -fn` (exit 0), not by the engine.
 */
import { describe, it, afterAll, expect } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as api from "../../bindings/node.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { e2fsck } from "../helpers/e2fsprogs.ts";
import { cases, type Target } from "./suite.ts";

const dir = mkdtempSync(join(tmpdir(), "ext4-conformance-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;

const memory: Target = {
  name: "node/memory",
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
  name: "node/file",
  api,
  async device(size) {
    const path = join(dir, `dev-${++serial}.img`);
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
    return new Uint8Array(readFileSync(paths.get(dev)!));
  },
};

for (const target of [memory, file]) {
  describe(`conformance on ${target.name}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        const image = await c.run(target);
        if (!image) return;
        const path = join(dir, `check-${++serial}.img`);
        writeFileSync(path, image);
        const r = await e2fsck(path);
        rmSync(path, { force: true });
        expect(r.code, `e2fsck -fn on the image of "${c.name}":\n${r.stdout}${r.stderr}`).toBe(0);
      });
    }
  });
}
