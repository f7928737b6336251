/**
 * The package as a user gets it: `npm pack` the repository, install the tarball into an
 * empty project (offline — the package has no dependencies), and use it from outside —
 * `import "ext4-wasm"` and `"ext4-wasm/node"` from Node, `"ext4-wasm"` and
 * `"npm:ext4-wasm/deno"` from Deno, and the published types from a consumer's tsc.
 * The images those scripts write are judged by e2fsck -fn and read back with debugfs.
 *
 * Packs what is built: dist/ and build/ must be current (`npm run build`; `npm ci` runs
 * it through `prepare`). --ignore-scripts keeps the pack from rebuilding in the middle
 * of a test run.
 */
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { e2fsck, run, tool } from "../helpers/e2fsprogs.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const deno = join(root, "node_modules", ".bin", "deno");
const work = mkdtempSync(join(tmpdir(), "ext4-package-"));
const app = join(work, "app");

beforeAll(() => {
  for (const built of ["dist/node.js", "dist/index.js", "dist/deno.js", "dist/types/bindings/index.d.ts", "build/engine.wasm"]) {
    if (!existsSync(join(root, built))) throw new Error(`${built} is missing: run npm run build first`);
  }
  const packed = JSON.parse(execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  const tgz = join(work, packed[0].filename);
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", dependencies: { "ext4-wasm": `file:${tgz}` } }));
  execFileSync("npm", ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: app, stdio: "ignore" });
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** e2fsck -fn must pass and debugfs must read `text` back from /hello. */
async function judge(image: string, text: string): Promise<void> {
  const fsck = await e2fsck(image);
  expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  const cat = await run(tool("debugfs"), ["-R", "cat /hello", image]);
  expect(cat.stdout).toBe(text);
}

describe("the packed package", () => {
  it("ships the entries, the engine and the types, and nothing of the tests", () => {
    const pkg = join(app, "node_modules", "ext4-wasm");
    for (const f of ["dist/node.js", "dist/deno.js", "build/engine.wasm", "deno/mod.ts", "dist/types/bindings/node.d.ts"]) {
      expect(existsSync(join(pkg, f)), f).toBe(true);
    }
    expect(readdirSync(pkg).sort()).toEqual(["README.md", "bindings", "build", "deno", "dist", "package.json"]);
    expect(readdirSync(join(pkg, "build"))).toEqual(["engine.wasm"]);
  });

  it("works from Node: ext4-wasm and ext4-wasm/node", async () => {
    writeFileSync(join(app, "node-check.mjs"), `
      import { mkfs, mount, MemoryDevice, FsError } from "ext4-wasm";
      import { FileDevice, copyIn } from "ext4-wasm/node";
      if (typeof MemoryDevice !== "function" || typeof copyIn !== "function") throw new Error("missing exports");
      const dev = await FileDevice.open(process.argv[2], { size: 16 << 20, create: true });
      await mkfs(dev);
      const vol = await mount(dev);
      await vol.writeFile("/hello", "from node\\n");
      const e = await vol.stat("/nope").catch((e) => e);
      if (!(e instanceof FsError) || e.code !== "ENOENT") throw new Error("FsError identity across entries");
      await vol.unmount();
      await dev.close();
    `);
    const image = join(work, "node.img");
    execFileSync(process.execPath, ["node-check.mjs", image], { cwd: app, stdio: "pipe" });
    await judge(image, "from node\n");
  });

  it.skipIf(!existsSync(deno))("works from Deno: ext4-wasm (deno condition) and npm:ext4-wasm/deno", async () => {
    writeFileSync(join(app, "deno-check.ts"), `
      import { mkfs, mount, FileDevice as RootFileDevice } from "ext4-wasm";
      import { FileDevice } from "npm:ext4-wasm/deno";
      if (RootFileDevice !== FileDevice) throw new Error("the deno condition and ./deno differ");
      const dev = await FileDevice.open(Deno.args[0], { size: 16 << 20, create: true });
      await mkfs(dev);
      const vol = await mount(dev);
      await vol.writeFile("/hello", "from deno\\n");
      await vol.unmount();
      await dev.close();
    `);
    const image = join(work, "deno.img");
    execFileSync(deno, ["run", "--no-lock", `--allow-read=${work}`, `--allow-write=${work}`, "deno-check.ts", image], {
      cwd: app,
      stdio: "pipe",
      env: { ...process.env, NO_COLOR: "1" },
    });
    await judge(image, "from deno\n");
  });

  it("type-checks in a consumer project (NodeNext resolution, published .d.ts)", () => {
    writeFileSync(join(app, "use.ts"), `
      import { mkfs, mount, MemoryDevice, type MkfsOptions } from "ext4-wasm";
      import { FileDevice } from "ext4-wasm/node";
      const opts: MkfsOptions = { blockSize: 4096 };
      export const uses = [mkfs, mount, FileDevice, new MemoryDevice(1 << 20).size, opts];
      // @ts-expect-error: size is a number, so this must not type-check
      export const wrong: string = new MemoryDevice(1 << 20).size;
    `);
    writeFileSync(join(app, "tsconfig.json"), JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
      files: ["use.ts"],
    }));
    // The consumer brings its own @types/node (ours, linked).
    mkdirSync(join(app, "node_modules", "@types"), { recursive: true });
    symlinkSync(join(root, "node_modules", "@types", "node"), join(app, "node_modules", "@types", "node"));
    execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", app], { cwd: app, stdio: "pipe" });
  });
});
