/**
 * Node entry: the runtime-neutral API plus FileDevice, with the engine loaded from the
 * .wasm file next to the package (no fetch, no bundler configuration).
 */
import { readFile } from "node:fs/promises";
import { setEngineSource } from "./wasm.ts";

setEngineSource(() => readFile(new URL("../build/engine.wasm", import.meta.url)));

export * from "./index.ts";
export { FileDevice } from "./devices/node-file.ts";
export { copyOut } from "./node-copyout.ts";
export type { CopyOutOptions } from "./node-copyout.ts";
export { copyIn } from "./node-copyin.ts";
export type { CopyInOptions, CopyInProgress, CopyInResult } from "./node-copyin.ts";
