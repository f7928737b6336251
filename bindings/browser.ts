/**
 * Browser entry (`ext4-wasm/browser`): the runtime-neutral API, plus OpfsDevice, the
 * worker-backed openVolume(), and image import/export helpers.
 *
 * The engine is inlined in dist/browser.js (see browser/loader.ts for why and the size
 * cost), so importing this module needs no bundler configuration, no extra asset and no
 * network request. Everything here also works inside a Web Worker; only OpfsDevice
 * *requires* one, and openVolume() provides it when called from the page.
 */
import { setEngineSource } from "./wasm.ts";
import { browserEngineSource } from "./browser/loader.ts";

setEngineSource(browserEngineSource);

export * from "./index.ts";
export { OpfsDevice, removeOpfsFile } from "./devices/opfs.ts";
export type { OpfsDeviceOptions } from "./devices/opfs.ts";
export { openVolume, BrowserVolume, BrowserFileHandle, downloadBlob, removeOpfsVolume } from "./browser/volume.ts";
export type { OpenVolumeOptions, VolumeSpec, ImportEntry, ImportProgress } from "./browser/volume.ts";
export { VolumeHost } from "./browser/host.ts";
