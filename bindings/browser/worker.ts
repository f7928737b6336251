/**
 * The engine worker that openVolume() starts: the whole engine, its device (OPFS sync
 * access handles exist only here) and one VolumeHost run in this dedicated Worker; the
 * page talks to it through Comlink.
 *
 * Protocol (Comlink-exposed `WorkerService`): `init(module)` first — the page hands over
 * its compiled engine module, so the worker bundle carries no wasm of its own — then
 * `open(spec)`, which returns the VolumeHost by reference (a Comlink proxy). The page
 * terminates the worker after closing the host; one worker serves one volume, so a
 * crashed or stuck volume cannot take others with it.
 */
import { setEngineSource } from "../wasm.ts";
import { FsError } from "../fs/errors.ts";
import { removeOpfsFile } from "../devices/opfs.ts";
import { VolumeHost, proxyHost, type VolumeSpec } from "./host.ts";
import { Comlink, installRpcHandlers } from "./rpc.ts";

let ready = false;

const service = {
  /** Use the page's compiled engine; must be the first call. */
  init(module: WebAssembly.Module): void {
    if (!(module instanceof WebAssembly.Module)) throw new FsError("EINVAL", "init needs a WebAssembly.Module", { syscall: "init" });
    setEngineSource(async () => module);
    ready = true;
  },
  /** Open, maybe format, and mount; the host comes back by reference. */
  async open(spec: VolumeSpec): Promise<VolumeHost> {
    if (!ready) throw new FsError("EINVAL", "worker not initialised", { syscall: "open" });
    return proxyHost(await VolumeHost.open(spec));
  },
  /** Delete an OPFS image (must not be open). */
  removeOpfs(path: string): Promise<void> {
    return removeOpfsFile(path);
  },
};

export type WorkerService = typeof service;

installRpcHandlers();
Comlink.expose(service);
