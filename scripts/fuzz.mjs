#!/usr/bin/env node
// The long read-fuzz run: test/fuzz/read-fuzz.test.ts with many more cases (default
// 20,000), then its summary. Same code path as the 500-case test in `npm test`, so a
// failure found here replays there with FUZZ_SEED/FUZZ_ONLY.
//
//   node scripts/fuzz.mjs [cases] [--seed N] [--workers N] [--only 3,17] [--timeout ms]
//
// Exit status: 0 when every case kept the contract, 1 otherwise.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const positional = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--")));
const cases = positional[0] ?? "20000";
if (!/^\d+$/.test(cases)) {
  console.error(`usage: node scripts/fuzz.mjs [cases] [--seed N] [--workers N] [--only i,j] [--timeout ms]`);
  process.exit(2);
}
const report = join(root, ".tmp", `fuzz-report-${process.pid}.json`);
mkdirSync(dirname(report), { recursive: true });

const env = { ...process.env, FUZZ_CASES: cases, FUZZ_SEED: opt("seed", process.env.FUZZ_SEED ?? String(Date.now() % 1e6)), FUZZ_REPORT: report };
if (opt("workers")) env.FUZZ_WORKERS = opt("workers");
if (opt("only")) env.FUZZ_ONLY = opt("only");
if (opt("timeout")) env.FUZZ_CASE_TIMEOUT_MS = opt("timeout");

console.log(`read fuzz: ${env.FUZZ_ONLY ? `cases ${env.FUZZ_ONLY}` : `${cases} cases`}, seed ${env.FUZZ_SEED} (replay with --seed ${env.FUZZ_SEED})`);
const r = spawnSync(
  process.execPath,
  [join(root, "node_modules", "vitest", "vitest.mjs"), "run", "test/fuzz/read-fuzz.test.ts", "--reporter=dot"],
  { cwd: root, env, stdio: ["ignore", "inherit", "inherit"] },
);
if (existsSync(report)) {
  const s = JSON.parse(readFileSync(report, "utf8"));
  console.log(`\n${s.text}`);
  const bad = s.failures.length + s.hangs.length;
  console.log(bad ? `\n${bad} case(s) broke the contract; replay one with: node scripts/fuzz.mjs --seed ${s.seed} --only <case>` : "\nall cases kept the contract");
  rmSync(report, { force: true });
} else {
  console.log("no fuzz report was written (the fixtures or an earlier test failed; see above)");
}
process.exit(r.status === 0 ? 0 : 1);
