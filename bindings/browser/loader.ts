/**
 * Where the browser gets the engine from, chosen so that no bundler configuration is ever
 * needed by the user of dist/browser.js.
 *
 * The bundle carries the wasm inlined as base64 (about +33% over the raw module, most of
 * which gzip takes back; the build prints both). It is decoded and compiled once per
 * thread. Inlining beats `compileStreaming(fetch(new URL("engine.wasm", import.meta.url)))`
 * for a library: a user's bundler would have to copy engine.wasm next to *its* output
 * and keep the URL right, which is exactly the configuration the issue forbids. When the
 * sources run unbundled (ENGINE_WASM_BASE64 undefined), the loader does stream-compile
 * build/engine.wasm from beside the sources; `setEngineSource` overrides either.
 *
 * Workers started by openVolume() do not decode the wasm again: the page posts them its
 * compiled WebAssembly.Module (modules are cloneable to workers of the same origin).
 */
import { ENGINE_WASM_BASE64 } from "./engine-inline.ts";

/** Decode base64 to bytes (atob exists in every browser and worker, and in Deno/Node). */
export function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The engine source for setEngineSource: the inlined bytes, else a streamed fetch. */
export async function browserEngineSource(): Promise<BufferSource | Response> {
  if (ENGINE_WASM_BASE64 !== undefined) return fromBase64(ENGINE_WASM_BASE64) as Uint8Array<ArrayBuffer>;
  return fetch(new URL("../../build/engine.wasm", import.meta.url));
}
