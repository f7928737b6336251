// Worker-thread entry for the read fuzzer: worker threads do not inherit vitest's
// TypeScript transform, so register tsx's loader in this thread, then load the worker.
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
await import(workerData.entry);
