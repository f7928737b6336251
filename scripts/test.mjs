#!/usr/bin/env node
// `npm test`: every test on every runtime, then one plain summary line "N passed, N failed"
// so CI logs end with a count whatever each runner prints:
//   1. vitest (unit, interop, fuzz, model, and the conformance suite on Node);
//   2. the conformance suite under Deno (scripts/test-deno.mjs);
//   3. the browser tests (scripts/test-browser.mjs), when that script exists.
// Extra args go to vitest and then only vitest runs (they select vitest tests).
// Exits non-zero if any part fails or cannot report its counts.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const extra = process.argv.slice(2);
const parts = [];

// 1. vitest, counted from its JSON report.
{
  const out = join(root, ".tmp", "vitest-report.json");
  mkdirSync(dirname(out), { recursive: true });
  rmSync(out, { force: true });
  const vitest = join(root, "node_modules", "vitest", "vitest.mjs");
  const r = spawnSync(
    process.execPath,
    [vitest, "run", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`, ...extra],
    { cwd: root, stdio: "inherit" },
  );
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  try {
    const report = JSON.parse(readFileSync(out, "utf8"));
    passed = report.numPassedTests ?? 0;
    failed = report.numFailedTests ?? 0;
    skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    if (!report.success && failed === 0) failed = report.numFailedTestSuites || 1;
  } catch {
    failed = Math.max(failed, 1);
  }
  parts.push({ name: "vitest", passed, failed, skipped, ok: r.status === 0 && failed === 0 });
}

if (extra.length === 0) {
  // 2. Deno: "ok | 14 passed | 0 failed (9s)" / "FAILED | 13 passed | 1 failed (9s)".
  parts.push(await runCounted("deno", [join(root, "scripts", "test-deno.mjs")], (text) => {
    const m = [...text.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed/gm)].pop();
    return m ? { passed: Number(m[1]), failed: Number(m[3]) } : null;
  }));

  // 3. Browser (written by the browser half of issue #8): its last "N passed, N failed"
  // line, or Playwright's own "N passed" / "N failed" lines.
  const browser = join(root, "scripts", "test-browser.mjs");
  if (existsSync(browser)) {
    parts.push(await runCounted("browser", [browser], (text) => {
      const plain = [...text.matchAll(/^(?:browser: )?(\d+) passed, (\d+) failed/gm)].pop();
      if (plain) return { passed: Number(plain[1]), failed: Number(plain[2]) };
      const p = [...text.matchAll(/^\s*(\d+) passed\b/gm)].pop();
      const f = [...text.matchAll(/^\s*(\d+) failed\b/gm)].pop();
      return p || f ? { passed: Number(p?.[1] ?? 0), failed: Number(f?.[1] ?? 0) } : null;
    }));
  } else {
    console.log("\ntest: scripts/test-browser.mjs not present — no browser run");
  }
}

const sum = (k) => parts.reduce((n, p) => n + p[k], 0);
if (parts.length > 1) {
  console.log(`\n${parts.map((p) => `${p.name}: ${p.passed} passed, ${p.failed} failed${p.ok ? "" : " (FAILED)"}`).join("; ")}`);
}
const skipped = sum("skipped");
console.log(`\n${sum("passed")} passed, ${sum("failed")} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(parts.every((p) => p.ok) ? 0 : 1);

/** Run `node script`, echoing its output live, and count with `parse` (null = no summary found). */
function runCounted(name, args, parse) {
  return new Promise((resolve) => {
    console.log(`\n=== ${name} ===`);
    const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let text = "";
    child.stdout.on("data", (d) => {
      text += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d) => {
      text += d;
      process.stderr.write(d);
    });
    child.on("close", (code) => {
      const counts = parse(text);
      if (!counts) console.error(`test: ${name} printed no summary (exit ${code}); counted as 1 failure`);
      const passed = counts?.passed ?? 0;
      const failed = counts ? counts.failed : 1;
      resolve({ name, passed, failed, skipped: 0, ok: code === 0 && failed === 0 && counts !== null });
    });
    child.on("error", (e) => {
      console.error(`test: cannot run ${name}: ${e.message}`);
      resolve({ name, passed: 0, failed: 1, skipped: 0, ok: false });
    });
  });
}
