/**
 * mkdir -p error order, judged by the host: Node's recursive mkdir on the host's Linux
 * creates the missing components one after the other and stops at the first failure, so
 * a too-long name after missing parents fails only once those parents exist. The engine
 * must leave the same directories behind and give the same code. On a full volume the
 * first missing parent is where it fails: ENOSPC, not the later ENAMETOOLONG.
 */
import { afterAll, describe, expect, it } from "vitest";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, FsError, type Volume } from "../../bindings/index.ts";
import { tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("mkdirp-");
afterAll(() => tmp.cleanup());

const LONG = "M".repeat(256);

function hostOutcome(root: string, rel: string, probe: string[]): { code: string; exists: boolean[] } {
  let code = "ok";
  try {
    mkdirSync(join(root, rel), { recursive: true });
  } catch (e) {
    code = (e as NodeJS.ErrnoException).code ?? "?";
  }
  return { code, exists: probe.map((p) => existsSync(join(root, p))) };
}

async function engineOutcome(vol: Volume, rel: string, probe: string[]): Promise<{ code: string; exists: boolean[] }> {
  let code = "ok";
  try {
    await vol.mkdir("/" + rel, { recursive: true });
  } catch (e) {
    if (!(e instanceof FsError)) throw e;
    code = e.code;
  }
  const exists: boolean[] = [];
  for (const p of probe) exists.push(await vol.exists("/" + p));
  return { code, exists };
}

describe("mkdir recursive: which error, after creating what", () => {
  const cases: { rel: string; probe: string[] }[] = [
    { rel: `p1/q/${LONG}`, probe: ["p1", "p1/q"] },
    { rel: `p2/${LONG}/r`, probe: ["p2"] },
    { rel: `${LONG}/s`, probe: [] },
  ];
  for (const c of cases) {
    it(`${c.rel.replace(LONG, "<256 bytes>")}: same code and directories as the host`, async () => {
      const root = join(tmp.dir, c.rel.split("/")[0]!.slice(0, 8) + Math.random().toString(36).slice(2));
      mkdirSync(root);
      const want = hostOutcome(root, c.rel, c.probe);
      const dev = new MemoryDevice(8 << 20);
      await mkfs(dev, { blockSize: 1024 });
      const vol = await mount(dev);
      expect(await engineOutcome(vol, c.rel, c.probe)).toEqual(want);
      await vol.unmount();
    });
  }

  it("on a full volume the first missing parent fails with ENOSPC and nothing is left behind", async () => {
    const dev = new MemoryDevice(4 << 20);
    await mkfs(dev, { blockSize: 1024 });
    const vol = await mount(dev);
    // Fill every block (a new directory needs one).
    const free = (await vol.statfs()).bfree;
    await vol.writeFile("/fill", new Uint8Array(free * 1024)).catch(() => {});
    for (let i = 0; (await vol.statfs()).bfree > 0 && i < 1000; i++) {
      if (!(await vol.writeFile(`/f${i}`, new Uint8Array(1024)).then(() => true, () => false))) break;
    }
    expect((await vol.statfs()).bfree).toBe(0);
    const out = await engineOutcome(vol, `p/${LONG}`, ["p"]);
    expect(out).toEqual({ code: "ENOSPC", exists: [false] });
    await vol.unmount();
  });
});
