/**
 * Deno entry: the runtime-neutral API, a FileDevice over Deno.FsFile, copyIn/copyOut, and
 * the engine loader.
 *
 * How the engine is found: `build/engine.wasm` relative to this module's own URL. This
 * file sits one directory below the package root, and so does its bundled form
 * (`dist/deno.js`, what `npm:ext4-wasm/deno` resolves to), so one relative URL serves a
 * checkout (`deno run ./deno/mod.ts`), a node_modules install and Deno's npm cache alike.
 * A file: URL is read with Deno.readFile (needs --allow-read for the package directory);
 * any other URL (the module imported over https) is fetched and compiled as it streams.
 * Nothing is read until the first mkfs or mount, so importing costs no permission.
 *
 * Why copyIn/copyOut are the Node ones: they walk the host tree with `node:fs/promises`,
 * which Deno implements natively, and they run as fast under Deno as under Node (see
 * README "Deno"); a second implementation over Deno.* would be the same code twice.
 * They need --allow-read (copyIn) or --allow-write (copyOut) for the host paths. Whether
 * to keep host owners depends on running as root, which Deno reveals only with
 * --allow-sys=uid; without it the process counts as non-root (owner 0:0 by default).
 */
import { setEngineSource } from "../bindings/wasm.ts";

const engineUrl = new URL("../build/engine.wasm", import.meta.url);
setEngineSource(() => (engineUrl.protocol === "file:" ? Deno.readFile(engineUrl) : fetch(engineUrl)));

export * from "../bindings/index.ts";
export { FileDevice } from "./file_device.ts";
export type { FileDeviceOptions } from "./file_device.ts";
export { copyIn } from "../bindings/node-copyin.ts";
export type { CopyInOptions, CopyInProgress, CopyInResult } from "../bindings/node-copyin.ts";
export { copyOut } from "../bindings/node-copyout.ts";
export type { CopyOutOptions } from "../bindings/node-copyout.ts";
