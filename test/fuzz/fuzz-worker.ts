/**
 * A read-fuzzer worker thread: holds the pristine images, and for each case index it is
 * sent, applies that case's corruption to a fresh copy, mounts it read-only, walks it and
 * reports what happened. Runs in its own thread so the pool can terminate it when a case
 * hangs (a loop in Wasm or in the bindings cannot be interrupted from the same thread).
 */
import { parentPort, workerData } from "node:worker_threads";
import "../../bindings/node.ts";
import { mount, MemoryDevice, FsError, type Volume } from "../../bindings/index.ts";
import { planCase, applyPlan, walkVolume, classify, type CasePlan, type FuzzImage } from "./fuzz-lib.ts";

export interface CaseResult {
  index: number;
  mounted: boolean;
  mountCode?: string;
  ops: number;
  codes: Record<string, number>;
  failures: string[];
  ms: number;
}

/** The images are a few MiB: a small block cache keeps mount cheap (mount sizes the cache up front). */
const FUZZ_CACHE_BYTES = 4 << 20;

const data = workerData as { images: FuzzImage[]; bytes: Uint8Array[]; seed: number };
const port = parentPort!;

async function runCase(index: number, given?: CasePlan): Promise<CaseResult> {
  const t0 = performance.now();
  const plan = given ?? planCase(data.images, data.seed, index);
  const copy = data.bytes[plan.image]!.slice();
  applyPlan(copy, data.images[plan.image]!, plan);
  const res: CaseResult = { index, mounted: false, ops: 1, codes: {}, failures: [], ms: 0 };
  let vol: Volume | undefined;
  try {
    vol = await mount(MemoryDevice.from(copy), { readOnly: true, cacheBytes: FUZZ_CACHE_BYTES });
    res.mounted = true;
  } catch (e) {
    classify(res, e, "mount");
    if (e instanceof FsError) res.mountCode = e.code;
  }
  if (vol) {
    try {
      const w = await walkVolume(vol);
      res.ops += w.ops;
      for (const [k, v] of Object.entries(w.codes)) res.codes[k] = (res.codes[k] ?? 0) + v;
      res.failures.push(...w.failures);
    } catch (e) {
      res.failures.push(`walker itself threw: ${(e as Error)?.stack ?? String(e)}`);
    }
    try {
      await vol.unmount();
    } catch (e) {
      classify(res, e, "unmount");
    }
  }
  res.ms = performance.now() - t0;
  return res;
}

port.on("message", (msg: { index: number; spin?: boolean; plan?: CasePlan }) => {
  if (msg.spin) for (;;); // the pool's hang-detector self-test: only termination ends this
  runCase(msg.index, msg.plan).then(
    (r) => port.postMessage({ type: "result", result: r }),
    (e) => port.postMessage({ type: "result", result: { index: msg.index, mounted: false, ops: 0, codes: {}, failures: [`harness error: ${(e as Error)?.stack ?? e}`], ms: 0 } }),
  );
});
port.postMessage({ type: "ready" });
