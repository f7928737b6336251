/**
 * Runs read-fuzz cases on a pool of worker threads and sums up what happened.
 *
 * Why threads: a case that loops forever inside the engine blocks its thread's event loop,
 * so no timer on that thread can stop it. Each case runs in a worker; the pool arms a
 * timer per case and, when it fires, terminates the worker (V8 interrupts Wasm too),
 * records a hang with the case's plan, and starts a fresh worker for the rest. A worker
 * that dies (uncaught error, out of its memory limit) is reported and replaced the same way.
 */
import { Worker } from "node:worker_threads";
import { describePlan, planCase, type CasePlan, type FuzzImage } from "./fuzz-lib.ts";
import type { CaseResult } from "./fuzz-worker.ts";

export interface FuzzOptions {
  images: FuzzImage[];
  bytes: Uint8Array[];
  seed: number;
  /** Number of cases (0..n-1), or the exact case indexes to run. */
  cases: number | number[];
  workers: number;
  caseTimeoutMs: number;
  /** Worker heap limit; a case that needs more is a failure ("out of memory"). */
  workerHeapMb?: number;
  onProgress?: (done: number, total: number) => void;
  /** Self-test of the hang detector: the worker busy-loops forever on these case indexes. */
  spinCases?: number[];
  /** Run these plans (directed cases) instead of drawing cases from the seed. */
  plans?: CasePlan[];
}

export interface CaseFailure {
  index: number;
  plan: string;
  messages: string[];
}

export interface FuzzSummary {
  seed: number;
  cases: number;
  workers: number;
  ms: number;
  mounted: number;
  ops: number;
  /** Mount failures by code. */
  mountCodes: Record<string, number>;
  /** Cases in which each code appeared at least once (mount included). */
  casesWithCode: Record<string, number>;
  /** Cases that broke the contract, with their plans. */
  failures: CaseFailure[];
  hangs: CaseFailure[];
  slowest: Array<{ index: number; ms: number; plan: string }>;
}

const BOOT = new URL("./fuzz-boot.mjs", import.meta.url);
const ENTRY = new URL("./fuzz-worker.ts", import.meta.url).href;

/** Run the cases; resolves with the summary (never rejects for a bad case). */
export function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const given = new Map((o.plans ?? []).map((p) => [p.index, p]));
  const indexes = o.plans ? [...given.keys()] : typeof o.cases === "number" ? Array.from({ length: o.cases }, (_, i) => i) : [...o.cases];
  const sum: FuzzSummary = {
    seed: o.seed, cases: indexes.length, workers: o.workers, ms: 0, mounted: 0, ops: 0, mountCodes: {}, casesWithCode: {},
    failures: [], hangs: [], slowest: [],
  };
  const t0 = performance.now();
  const describe = (index: number) => describePlan(given.get(index) ?? planCase(o.images, o.seed, index), o.images);
  let next = 0;
  let done = 0;
  let live = 0;

  return new Promise((resolve) => {
    const finishIfDone = () => {
      if (done === indexes.length && live === 0) {
        sum.ms = performance.now() - t0;
        sum.slowest.sort((a, b) => b.ms - a.ms);
        sum.slowest.length = Math.min(sum.slowest.length, 5);
        resolve(sum);
      }
    };
    const record = (r: CaseResult) => {
      done++;
      sum.ops += r.ops;
      if (r.mounted) sum.mounted++;
      else if (r.mountCode) sum.mountCodes[r.mountCode] = (sum.mountCodes[r.mountCode] ?? 0) + 1;
      for (const code of new Set([...Object.keys(r.codes), ...(r.mountCode ? [r.mountCode] : [])])) {
        sum.casesWithCode[code] = (sum.casesWithCode[code] ?? 0) + 1;
      }
      if (r.failures.length) sum.failures.push({ index: r.index, plan: describe(r.index), messages: r.failures.slice(0, 5) });
      sum.slowest.push({ index: r.index, ms: Math.round(r.ms), plan: "" });
      if (sum.slowest.length > 50) {
        sum.slowest.sort((a, b) => b.ms - a.ms);
        sum.slowest.length = 5;
      }
      o.onProgress?.(done, indexes.length);
    };

    const start = () => {
      live++;
      const w = new Worker(BOOT, {
        workerData: { entry: ENTRY, images: o.images, bytes: o.bytes, seed: o.seed },
        resourceLimits: { maxOldGenerationSizeMb: o.workerHeapMb ?? 1024 },
      });
      let current: number | null = null;
      let timer: NodeJS.Timeout | null = null;
      let dead = false;
      const retire = (why: "hang" | "crash", message: string) => {
        if (dead) return;
        dead = true;
        if (timer) clearTimeout(timer);
        if (current !== null) {
          const f = { index: current, plan: describe(current), messages: [message] };
          (why === "hang" ? sum.hangs : sum.failures).push(f);
          done++;
          o.onProgress?.(done, indexes.length);
        }
        void w.terminate().finally(() => {
          live--;
          if (next < indexes.length) start();
          else finishIfDone();
        });
      };
      const dispatch = () => {
        if (next >= indexes.length) {
          current = null;
          dead = true;
          void w.terminate().finally(() => {
            live--;
            finishIfDone();
          });
          return;
        }
        current = indexes[next++]!;
        timer = setTimeout(() => retire("hang", `no answer within ${o.caseTimeoutMs} ms (worker terminated)`), o.caseTimeoutMs);
        w.postMessage({ index: current, spin: o.spinCases?.includes(current) === true, plan: given.get(current) });
      };
      w.on("message", (m: { type: string; result?: CaseResult }) => {
        if (dead) return;
        if (m.type === "ready") return dispatch();
        if (m.type === "result" && m.result) {
          if (timer) clearTimeout(timer);
          record(m.result);
          dispatch();
        }
      });
      w.on("error", (e) => retire("crash", `worker died: ${(e as Error)?.stack ?? String(e)}`));
      w.on("exit", (code) => {
        if (!dead) retire("crash", `worker exited with code ${code}`);
      });
    };

    if (indexes.length === 0) return finishIfDone();
    for (let i = 0; i < Math.min(o.workers, indexes.length); i++) start();
  });
}

/** A human-readable summary (printed by the test and by scripts/fuzz.mjs). */
export function formatSummary(s: FuzzSummary): string {
  const codes = Object.entries(s.casesWithCode).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(", ");
  const mounts = Object.entries(s.mountCodes).map(([c, n]) => `${c} ${n}`).join(", ");
  const lines = [
    `read fuzz: ${s.cases} cases, seed ${s.seed}, ${s.workers} workers, ${(s.ms / 1000).toFixed(1)} s (${(s.ms / Math.max(1, s.cases)).toFixed(1)} ms/case wall)`,
    `  mounted ${s.mounted}/${s.cases}; mount refused: ${mounts || "none"}; ${s.ops} operations`,
    `  cases seeing each code: ${codes || "none"}`,
    `  contract failures: ${s.failures.length}, hangs: ${s.hangs.length}`,
    `  slowest cases: ${s.slowest.map((x) => `#${x.index} ${x.ms} ms`).join(", ")}`,
  ];
  for (const f of [...s.hangs, ...s.failures].slice(0, 20)) lines.push(`  ✗ ${f.plan}\n      ${f.messages.join("\n      ")}`);
  return lines.join("\n");
}
