/**
 * The conformance suite (suite.ts) on Node: every case on a MemoryDevice and on a
 * FileDevice over a temp file, through the Node entry exactly as a user imports it.
 * Each image a case returns is judged by `e2fsck -fn` (exit 0), not by the engine; and
 * since the case compared the volume with its own model before it ended, the image is
 * also extracted with `debugfs rdump` and compared with what the engine reads from it —
 * so the model, the engine and debugfs all agree on every name, type, mode and byte.
 */
import { describe, it, afterAll, expect } from "vitest";
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as api from "../../bindings/node.ts";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import { e2fsck, run, tool } from "../helpers/e2fsprogs.ts";
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

/** debugfs's extraction of the image (rdump) must equal what a read-only mount shows. */
async function crossCheck(image: Uint8Array, imagePath: string): Promise<void> {
  const out = mkdtempSync(join(dir, "rdump-"));
  try {
    const r = await run(tool("debugfs"), ["-R", `rdump / ${out}`, imagePath]);
    expect(r.code, r.stderr).toBe(0);
    const vol = await api.mount(api.MemoryDevice.from(image), { readOnly: true });
    const visit = async (path: string): Promise<void> => {
      const names = (await vol.readdir(path || "/")) as string[];
      expect(readdirSync(join(out, path)).sort(), `entries of ${path || "/"}`).toEqual([...names].sort());
      for (const name of names) {
        const p = `${path}/${name}`;
        const st = await vol.lstat(p);
        const host = lstatSync(join(out, p));
        if (st.isDirectory()) {
          expect(host.isDirectory(), p).toBe(true);
          await visit(p);
        } else if (st.isSymbolicLink()) {
          expect(host.isSymbolicLink(), p).toBe(true);
          expect(readlinkSync(join(out, p)), p).toBe(await vol.readlink(p));
        } else {
          expect(host.isFile(), p).toBe(true);
          expect(host.mode & 0o7777, `${p} mode`).toBe(st.mode & 0o7777);
          const mine = (await vol.readFile(p)) as Uint8Array;
          expect(Buffer.compare(readFileSync(join(out, p)), mine), `${p} contents`).toBe(0);
        }
      }
    };
    await visit("");
    await vol.unmount();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

for (const target of [memory, file]) {
  describe(`conformance on ${target.name}`, () => {
    for (const c of cases) {
      it(c.name, async () => {
        const image = await c.run(target);
        if (!image) return;
        const path = join(dir, `check-${++serial}.img`);
        writeFileSync(path, image);
        const r = await e2fsck(path);
        expect(r.code, `e2fsck -fn on the image of "${c.name}":\n${r.stdout}${r.stderr}`).toBe(0);
        await crossCheck(image, path);
        rmSync(path, { force: true });
      });
    }
  });
}
