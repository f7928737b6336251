#!/usr/bin/env node
// `npm run test:deno`: the conformance suite and the Deno FileDevice's own tests under
// `deno test`, with the deno binary from the npm devDependency and only the permissions
// they need — read the repository and the temp directory, write the temp directory, run
// e2fsck. --no-check: types are tsc's job (`npm run typecheck`); Deno's newer bundled
// TypeScript must not block a test run. Extra args go to `deno test` (e.g. --filter file).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const deno = join(root, "node_modules", ".bin", process.platform === "win32" ? "deno.cmd" : "deno");
if (!existsSync(deno)) {
  console.error(`test-deno: ${deno} is missing — run npm install (deno is a devDependency)`);
  process.exit(1);
}
const tmp = tmpdir();
const args = [
  "test",
  "--no-check",
  "--no-lock",
  `--allow-read=${root},${tmp}`,
  `--allow-write=${tmp}`,
  "--allow-run=/usr/sbin/e2fsck,/sbin/e2fsck",
  ...process.argv.slice(2),
  "test/conformance/deno_test.ts",
  "deno/file_device_test.ts",
];
const r = spawnSync(deno, args, { cwd: root, stdio: "inherit", env: { ...process.env, NO_COLOR: "1" } });
process.exit(r.status ?? 1);
