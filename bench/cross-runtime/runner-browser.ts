/**
 * Chromium side of the cross-runtime bench: a dedicated worker (OPFS sync access handles
 * exist only in one, and a worker keeps the MemoryDevice run off the page's thread too)
 * running the shared workloads (./workload.ts) on a MemoryDevice and an OpfsDevice,
 * through dist/browser.js — the bundle users load (run.ts rewrites the import).
 *
 * Protocol: the page posts { sizes, reps, warmup }; the worker answers
 * { runs, images: { memory?: Blob, file?: Blob } }. The images are the last repetition's,
 * handed to the page as Blobs (no copy through JSON); the page offers them as downloads,
 * which Playwright saves for `e2fsck -fn`. The OPFS file stays until the next run removes
 * it, so the Blob taken from it remains readable until it has been downloaded.
 */
import * as api from "../../bindings/browser.ts";
import { runDevice, type DeviceRun, type Sizes } from "./workload.ts";

const OPFS_DIR = "xrt-bench";

self.onmessage = async (e: MessageEvent<{ sizes: Sizes; reps: number; warmup: boolean }>) => {
  const { sizes, reps, warmup } = e.data;
  const runs: DeviceRun[] = [];
  const images: Record<string, Blob> = {};
  for (const device of ["memory", "file"] as const) {
    const run: DeviceRun = { runtime: "chromium", device, deviceName: device === "memory" ? "MemoryDevice (worker)" : "OpfsDevice (worker)", reps: [] };
    try {
      run.reps = await runDevice(
        api,
        async (size, label) => {
          if (device === "memory") return new api.MemoryDevice(size);
          const path = `${OPFS_DIR}/${label === "warmup" ? "warmup" : "bench"}.img`;
          await api.removeOpfsFile(path);
          return api.OpfsDevice.open(path, { create: true, size });
        },
        sizes,
        reps,
        warmup,
        async (dev) => {
          images[device] = device === "memory"
            ? new Blob([(dev as api.MemoryDevice).bytes() as BlobPart])
            : await (dev as api.OpfsDevice).toBlob();
        },
      );
    } catch (err) {
      run.error = err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ""}` : String(err);
    }
    runs.push(run);
  }
  await api.removeOpfsFile(`${OPFS_DIR}/warmup.img`);
  (self as unknown as Worker).postMessage({ runs, images });
};
