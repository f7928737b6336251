/**
 * PLACEHOLDER for the shared conformance suite (owned by the Deno half of issue #8).
 *
 * It exists only so the browser runner can be built and run before the real suite is
 * merged; it has exactly the real suite's interface and two small cases. The lead drops
 * this commit at merge. Runtime-neutral: no runtime module, its own tiny assert helpers.
 */
import type { BlockDevice } from "../../bindings/devices/types.ts";

export interface Target {
  name: string;
  api: typeof import("../../bindings/index.ts");
  device(size: number): Promise<BlockDevice>;
  reopen(dev: BlockDevice): Promise<BlockDevice>;
  image(dev: BlockDevice): Promise<Uint8Array>;
}
export interface Case {
  name: string;
  run(t: Target): Promise<Uint8Array | void>;
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

async function rejects(p: Promise<unknown>, code: string, msg: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert((e as { code?: string }).code === code, `${msg}: expected ${code}, got ${(e as { code?: string }).code}`);
    return;
  }
  throw new Error(`assertion failed: ${msg}: expected ${code}, it resolved`);
}

const text = (s: string) => new TextEncoder().encode(s);
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

export const cases: Case[] = [
  {
    name: "populate, remount, verify",
    async run(t) {
      let dev = await t.device(32 << 20);
      await t.api.mkfs(dev, { label: "conf" });
      let vol = await t.api.mount(dev);
      const big = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
      await vol.mkdir("/a/b", { recursive: true });
      await vol.writeFile("/a/b/big", big);
      await vol.writeFile("/a/hello", "hello\n");
      await vol.symlink("hello", "/a/link");
      await vol.unmount();
      dev = await t.reopen(dev);
      vol = await t.api.mount(dev);
      assert(same((await vol.readFile("/a/b/big")) as Uint8Array, big), "big file reads back");
      assert(same((await vol.readFile("/a/hello")) as Uint8Array, text("hello\n")), "small file reads back");
      assert((await vol.readlink("/a/link")) === "hello", "symlink target");
      await vol.unmount();
      return t.image(dev);
    },
  },
  {
    name: "error codes",
    async run(t) {
      let dev = await t.device(16 << 20);
      await t.api.mkfs(dev);
      let vol = await t.api.mount(dev);
      await rejects(vol.stat("/nope"), "ENOENT", "stat of a missing file");
      await vol.mkdir("/d");
      await rejects(vol.mkdir("/d"), "EEXIST", "mkdir of an existing directory");
      await vol.unmount();
      dev = await t.reopen(dev);
      vol = await t.api.mount(dev, { readOnly: true });
      await rejects(vol.writeFile("/f", "x"), "EROFS", "write on a read-only mount");
      await vol.unmount();
      return t.image(dev);
    },
  },
];
