/**
 * The Node and Deno side of bench/cross-runtime: run the shared workloads
 * (./workload.ts) on a MemoryDevice and on the runtime's FileDevice, leave the last
 * repetition's images in the orchestrator's temp directory for `e2fsck -fn`, and print one
 * `XRT-RESULT <json>` line. The two runtimes differ only in the API module their entry
 * file passes in (runner-node.ts, runner-deno.ts), so the code timed is the same.
 *
 * The image files are written with node:fs/promises, which Deno implements natively; that
 * happens after the timers stopped. A file device's image is removed before each
 * repetition so every repetition starts on a fresh sparse file, like a MemoryDevice.
 */
import { rm, writeFile } from "node:fs/promises";
import type { BlockDevice } from "../../bindings/devices/types.ts";
import type { MemoryDevice } from "../../bindings/devices/memory.ts";
import { runDevice, type Api, type DeviceRun, type Sizes } from "./workload.ts";

/** What the orchestrator (run.ts) passes as the single JSON argument. */
export interface HostJob {
  sizes: Sizes;
  reps: number;
  warmup: boolean;
  /** Directory for the images (the orchestrator's temp directory). */
  dir: string;
  devices: ("memory" | "file")[];
}

/** What a host runtime's entry file provides. */
export interface HostApi extends Api {
  MemoryDevice: new (size: number) => MemoryDevice;
  FileDevice: { open(path: string, o: { size?: number; create?: boolean }): Promise<BlockDevice> };
}

/** Run `job` with `api` under the name `runtime`; prints the result line. Called once per process by an entry file. */
export async function runHost(runtime: "node" | "deno", api: HostApi, job: HostJob, fileDeviceName: string): Promise<void> {
  const runs: DeviceRun[] = [];
  const images: Record<string, string> = {};
  for (const device of job.devices) {
    const image = `${job.dir}/${runtime}-${device}.img`;
    const run: DeviceRun = { runtime, device, deviceName: device === "memory" ? "MemoryDevice" : fileDeviceName, reps: [] };
    try {
      run.reps = await runDevice(
        api,
        async (size, label) => {
          if (device === "memory") return new api.MemoryDevice(size);
          const path = label === "warmup" ? `${job.dir}/${runtime}-warmup.img` : image;
          await rm(path, { force: true });
          return api.FileDevice.open(path, { size, create: true });
        },
        job.sizes,
        job.reps,
        job.warmup,
        async (dev) => {
          if (device === "memory") await writeFile(image, (dev as MemoryDevice).bytes());
          images[device] = image;
        },
      );
    } catch (e) {
      run.error = e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
    }
    await rm(`${job.dir}/${runtime}-warmup.img`, { force: true });
    runs.push(run);
  }
  console.log(`XRT-RESULT ${JSON.stringify({ runs, images })}`);
}
