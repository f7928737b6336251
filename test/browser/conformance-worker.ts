/**
 * Dedicated worker of the browser conformance run: OPFS sync access handles exist only
 * here, so the chromium/opfs target runs the shared cases in this worker, with the bundle
 * imported directly (the "usable inside a worker" path, no proxy). Posts its CaseResults.
 */
import * as api from "../../bindings/browser.ts";
import { cases } from "../conformance/suite.ts";
import { opfsTarget, runCases, check, type CaseResult } from "./targets.ts";

self.onmessage = async () => {
  const target = opfsTarget(api);
  const results: CaseResult[] = await runCases(target, cases);
  await target.cleanup();
  // openVolume inside a worker runs the engine in this thread (no second worker).
  results.push(await check("chromium/worker", "openVolume in a worker runs in-thread on OPFS", async () => {
    const path = "conformance-worker/in-thread.img";
    await api.removeOpfsVolume(path);
    const vol = await api.openVolume({ opfs: path, size: 16 << 20, mkfs: { label: "inworker" } });
    if (vol.remote || !vol.local) throw new Error("expected an in-thread volume inside a worker");
    await vol.writeFile("/w.txt", "from a worker\n");
    const img = new Uint8Array(await (await vol.exportImage()).arrayBuffer());
    await vol.unmount();
    await api.removeOpfsVolume(path);
    return img;
  }));
  (self as unknown as Worker).postMessage(results);
};
