/**
 * openVolume() and BrowserVolume: the page's handle on a volume whose engine runs in a
 * dedicated Worker (or, inside a worker, in the same thread).
 *
 * Why a worker by default: OPFS sync access handles exist only in dedicated workers, and
 * building a 1 GiB image should not freeze the page either. So on the main thread
 * openVolume() starts one worker per volume (from the bundle's inlined worker source, no
 * extra file), posts it the compiled engine, and wraps the VolumeHost it returns. Inside
 * a worker the host is created locally and BrowserVolume calls it directly: the same
 * API, no message hop.
 *
 * Data crossing threads: results are transferred (readFile's buffer moves, not copied);
 * arguments are structured-cloned, so a Uint8Array given to writeFile stays usable by the
 * caller (one copy) — pass a Blob/File instead and nothing is copied on the page at all,
 * the worker reads it. Stats and Dirent come back with their prototypes restored, and
 * FsError keeps code/errno/syscall/path (rpc.ts).
 *
 * Lifetime: `unmount()` writes everything back, closes the device (releasing the OPFS
 * file's lock) and terminates the worker; later calls reject with EBADF.
 */
import { FsError } from "../fs/errors.ts";
import { engineModule } from "../wasm.ts";
import type { Stats, Dirent } from "../fs/stats.ts";
import type { StatFs } from "../fs/volume.ts";
import type { VolumeInfo } from "../fs/info.ts";
import { VolumeHost, type VolumeSpec, type VolumeMethod, type ImportEntry, type ImportProgress } from "./host.ts";
import { Comlink, installRpcHandlers, reviveDirent, reviveStats } from "./rpc.ts";
import { WORKER_SOURCE } from "./worker-inline.ts";
import { BrowserFileHandle } from "./file.ts";
import type { WorkerService } from "./worker.ts";

export interface OpenVolumeOptions extends VolumeSpec {
  /** Run the engine in a dedicated worker: default true on the main thread, false inside a worker. */
  worker?: boolean;
  /** Start the worker from this script (dist/browser-worker.js) instead of the inlined source (strict CSPs). */
  workerUrl?: string | URL;
}

type Host = VolumeHost | Comlink.Remote<VolumeHost>;

function inWorkerScope(): boolean {
  const WGS = (globalThis as { WorkerGlobalScope?: abstract new () => unknown }).WorkerGlobalScope;
  return WGS !== undefined && globalThis instanceof WGS;
}

function startWorker(url?: string | URL): { worker: Worker; cleanup: () => void } {
  if (url !== undefined) return { worker: new Worker(url, { type: "module", name: "ext4-wasm" }), cleanup: () => {} };
  if (WORKER_SOURCE !== undefined) {
    const blobUrl = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "text/javascript" }));
    return { worker: new Worker(blobUrl, { type: "module", name: "ext4-wasm" }), cleanup: () => URL.revokeObjectURL(blobUrl) };
  }
  return { worker: new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "ext4-wasm" }), cleanup: () => {} };
}

/**
 * Open a volume: an OPFS file (`opfs: "disk.img"`, persistent), an image (`image: file`),
 * or a new memory volume (`size`); format it when `mkfs` says so or there is nothing to
 * mount; mount with `mount` options. Callable from the page or from a worker.
 */
export async function openVolume(options: OpenVolumeOptions = {}): Promise<BrowserVolume> {
  const { worker: wantWorker, workerUrl, ...spec } = options;
  if (!(wantWorker ?? !inWorkerScope())) return new BrowserVolume(await VolumeHost.open(spec), null);
  if (typeof Worker === "undefined") throw new FsError("ENOSYS", "this runtime has no Worker", { syscall: "open" });
  installRpcHandlers();
  const module = await engineModule();
  const { worker, cleanup } = startWorker(workerUrl);
  try {
    const service = Comlink.wrap<WorkerService>(worker);
    await service.init(module);
    cleanup();
    const host = (await service.open(spec)) as unknown as Comlink.Remote<VolumeHost>;
    return new BrowserVolume(host, worker);
  } catch (e) {
    cleanup();
    worker.terminate();
    throw e;
  }
}

/** Delete an OPFS image file (it must not be open); works on the page and in workers. */
export { removeOpfsFile as removeOpfsVolume } from "../devices/opfs.ts";

/** Offer a Blob to the user as a download named `name` (page only). */
export function downloadBlob(blob: Blob, name: string): void {
  if (typeof document === "undefined") throw new FsError("ENOSYS", "downloads need a page (no document here)", { syscall: "download" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

export class BrowserVolume {
  #host: Host | null;
  #worker: Worker | null;

  /** Use openVolume(); the host is local (in a worker) or a Comlink proxy to one. */
  constructor(host: Host, worker: Worker | null) {
    this.#host = host;
    this.#worker = worker;
  }

  /** True when the engine runs in a worker of its own. */
  get remote(): boolean {
    return this.#worker !== null;
  }

  /** The Volume itself when the engine runs in this thread (in a worker), else undefined. */
  get local(): import("../fs/volume.ts").Volume | undefined {
    return this.#host instanceof VolumeHost ? this.#host.volume : undefined;
  }

  #h(syscall: string): Host {
    if (!this.#host) throw new FsError("EBADF", "volume is unmounted", { syscall });
    return this.#host;
  }

  #call(method: VolumeMethod, ...args: unknown[]): Promise<unknown> {
    return Promise.resolve(this.#h(method).call(method, args));
  }

  readFile(path: string): Promise<Uint8Array>;
  readFile(path: string, options: string | { encoding: string }): Promise<string>;
  /** Like fs.promises.readFile. */
  readFile(path: string, options?: string | { encoding?: string | null } | null): Promise<Uint8Array | string> {
    return this.#call("readFile", path, options) as Promise<Uint8Array | string>;
  }
  /** Like fs.promises.writeFile; `data` may also be a Blob/File (read in the engine's thread). */
  async writeFile(path: string, data: Uint8Array | string | Blob, options?: { mode?: number } | string): Promise<void> {
    await this.#call("writeFile", path, data, options);
  }
  /** Like fs.promises.appendFile (Blob accepted). */
  async appendFile(path: string, data: Uint8Array | string | Blob, options?: { mode?: number } | string): Promise<void> {
    await this.#call("appendFile", path, data, options);
  }
  /** Like fs.promises.mkdir. */
  mkdir(path: string, options?: { recursive?: boolean; mode?: number | string } | number): Promise<string | undefined> {
    return this.#call("mkdir", path, options) as Promise<string | undefined>;
  }
  readdir(path: string): Promise<string[]>;
  readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  /** Like fs.promises.readdir (Dirents keep isFile()/isDirectory()). */
  async readdir(path: string, options?: { withFileTypes?: boolean }): Promise<string[] | Dirent[]> {
    const r = (await this.#call("readdir", path, options ?? {})) as (string | Dirent)[];
    return options?.withFileTypes ? (r as object[]).map(reviveDirent) : (r as string[]);
  }
  /** Like fs.promises.stat. */
  async stat(path: string): Promise<Stats> {
    return reviveStats((await this.#call("stat", path)) as object);
  }
  /** Like fs.promises.lstat. */
  async lstat(path: string): Promise<Stats> {
    return reviveStats((await this.#call("lstat", path)) as object);
  }
  /** Like fs.promises.rm. */
  async rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void> { await this.#call("rm", path, options); }
  /** Like fs.promises.rmdir. */
  async rmdir(path: string): Promise<void> { await this.#call("rmdir", path); }
  /** Like fs.promises.unlink. */
  async unlink(path: string): Promise<void> { await this.#call("unlink", path); }
  /** Like fs.promises.rename. */
  async rename(oldPath: string, newPath: string): Promise<void> { await this.#call("rename", oldPath, newPath); }
  /** Like fs.promises.link. */
  async link(existing: string, newPath: string): Promise<void> { await this.#call("link", existing, newPath); }
  /** Like fs.promises.symlink. */
  async symlink(target: string, path: string): Promise<void> { await this.#call("symlink", target, path); }
  /** Like fs.promises.readlink. */
  readlink(path: string): Promise<string> { return this.#call("readlink", path) as Promise<string>; }
  /** Like fs.promises.chmod. */
  async chmod(path: string, mode: number | string): Promise<void> { await this.#call("chmod", path, mode); }
  /** Like fs.promises.chown. */
  async chown(path: string, uid: number, gid: number): Promise<void> { await this.#call("chown", path, uid, gid); }
  /** Like fs.promises.lchown. */
  async lchown(path: string, uid: number, gid: number): Promise<void> { await this.#call("lchown", path, uid, gid); }
  /** Like fs.promises.utimes (seconds, Dates or bigint nanoseconds). */
  async utimes(path: string, atime: number | Date | bigint, mtime: number | Date | bigint): Promise<void> { await this.#call("utimes", path, atime, mtime); }
  /** Like fs.promises.lutimes. */
  async lutimes(path: string, atime: number | Date | bigint, mtime: number | Date | bigint): Promise<void> { await this.#call("lutimes", path, atime, mtime); }
  /** Like fs.promises.truncate. */
  async truncate(path: string, len?: number): Promise<void> { await this.#call("truncate", path, len); }
  /** Like fs.promises.statfs. */
  statfs(): Promise<StatFs> { return this.#call("statfs") as Promise<StatFs>; }
  /** Superblock facts (features, label, counts, groups). */
  info(): Promise<VolumeInfo> { return this.#call("info") as Promise<VolumeInfo>; }
  /** True when `path` exists (no throw for ENOENT). */
  exists(path: string): Promise<boolean> { return this.#call("exists", path) as Promise<boolean>; }
  /** The canonical path (symlinks resolved). */
  realpath(path: string): Promise<string> { return this.#call("realpath", path) as Promise<string>; }
  /** Write everything back and flush the device. */
  async sync(): Promise<void> { await this.#call("sync"); }

  /** Like fs.promises.open: a FileHandle whose read() fills your buffer as on Node. */
  async open(path: string, flags: string | number = "r", mode?: number, opts?: { direct?: boolean }): Promise<BrowserFileHandle> {
    const fh = await this.#h("open").open(path, flags, mode, opts);
    return new BrowserFileHandle(fh, path, this.#worker !== null);
  }

  /** vol.stats() (lazy init, cache, open files) plus the device's request counters. */
  stats(): Promise<Record<string, unknown>> {
    return Promise.resolve(this.#h("stats").stats());
  }

  /** Copy a dropped folder / picked files under `dest` (see VolumeHost.importFiles). */
  importFiles(entries: ImportEntry[], dest = "/", onProgress?: (p: ImportProgress) => unknown): Promise<ImportProgress> {
    const host = this.#h("import");
    const cb = onProgress && this.#worker ? Comlink.proxy(onProgress) : onProgress;
    return Promise.resolve(host.importFiles(entries, dest, cb));
  }

  /** The whole image as a Blob (written back first; the volume stays mounted). */
  exportImage(): Promise<Blob> {
    return Promise.resolve(this.#h("export").exportImage());
  }

  /** Export and offer the image as a download (page only). */
  async download(name = "ext4.img"): Promise<void> {
    downloadBlob(await this.exportImage(), name);
  }

  /** Write back, unmount, close the device, stop the worker; idempotent. */
  async unmount(): Promise<void> {
    const host = this.#host;
    if (!host) return;
    this.#host = null;
    try {
      await host.close();
    } finally {
      if (this.#worker) {
        (host as Comlink.Remote<VolumeHost>)[Comlink.releaseProxy]?.();
        this.#worker.terminate();
        this.#worker = null;
      }
    }
  }
}

export type { VolumeSpec, ImportEntry, ImportProgress };
export { BrowserFileHandle };
