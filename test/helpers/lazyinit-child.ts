/**
 * Run as a child process by test/unit/lazyinit-sched.test.ts: mounts a lazily formatted
 * volume whose next zeroing turn is paced far into the future (initItable huge), waits for
 * the first group, unmounts, and then simply returns. If the scheduler's timer survived the
 * unmount, this process would not exit by itself; the parent detects that.
 */
import "../../bindings/node.ts";
import { mkfs, mount, MemoryDevice, lazyInitScheduler } from "../../bindings/index.ts";

const dev = new MemoryDevice(256 << 20);
await mkfs(dev, { blockSize: 1024 });
const vol = await mount(dev, { initItable: 1e9, initItableDelay: 0 });
await new Promise<void>((resolve) => {
  const off = vol.on("lazyinit", (p) => {
    if (p.groupsZeroed >= 1) {
      off();
      resolve();
    }
  });
});
const during = lazyInitScheduler();
await vol.unmount();
const after = lazyInitScheduler();
console.log(JSON.stringify({ during, after: after ?? null, zeroed: (vol.stats().lazyInit as { groupsZeroed: number }).groupsZeroed }));
