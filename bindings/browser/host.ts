/**
 * VolumeHost: one mounted volume and its device, living wherever the engine runs — in the
 * worker that openVolume() starts, or in the caller's own thread when it already is a
 * worker (or asked for no worker).
 *
 * Why a host object rather than exposing Volume itself through Comlink: the page must
 * not receive objects it cannot use across threads (FileHandle.read fills a caller's
 * buffer; Stats lose their prototype), and the browser adds operations the Volume does
 * not have — open an OPFS file or an imported image, format it, copy a dropped folder in,
 * export the image as a Blob. The host owns exactly one device and one volume; `close()`
 * unmounts and closes the device, after which every call rejects with EBADF.
 *
 * Calls run in arrival order as the engine's own locks allow (Volume serialises what it
 * must). Results that own their buffer are transferred, not copied (rpc.transferOut).
 */
import { FsError } from "../fs/errors.ts";
import { mkfs, type MkfsOptions } from "../mkfs.ts";
import { mount, type Volume, type MountOptions } from "../fs/volume.ts";
import type { FileHandle } from "../fs/file.ts";
import { MemoryDevice } from "../devices/memory.ts";
import { OpfsDevice } from "../devices/opfs.ts";
import type { BlockDevice } from "../devices/types.ts";
import { Comlink, transferOut } from "./rpc.ts";
import { FileHost } from "./file.ts";

/** What to open: an OPFS file, an image, or a fresh memory volume (see openVolume). */
export interface VolumeSpec {
  /** OPFS path of the image file (persistent). Without it the volume lives in memory. */
  opfs?: string;
  /** Start from this image: wrapped in memory, or copied into the OPFS file. */
  image?: Blob | ArrayBuffer | Uint8Array;
  /** Size in bytes of a new volume (default 64 MiB). */
  size?: number;
  /** Format first: true or options. Default: only when there is nothing to mount (new or empty). */
  mkfs?: boolean | MkfsOptions;
  /** Mount options (readOnly, cacheBytes, …). */
  mount?: MountOptions;
}

/** One entry of a tree to copy in: a file (with its contents) or a directory. */
export interface ImportEntry {
  /** Path relative to the destination, '/'-separated (e.g. File.webkitRelativePath). */
  path: string;
  /** The contents; absent for a directory. */
  file?: Blob;
  /** Modification time in ms since the epoch (File.lastModified). */
  mtime?: number;
}

/** Progress of importFiles, reported after each file and at the end. */
export interface ImportProgress {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
  /** The file just written. */
  path: string;
  /** vol.stats() at this point (lazy init, cache, open files). */
  stats: Record<string, unknown>;
}

const DEFAULT_SIZE = 64 << 20;
/** Files larger than this are streamed in pieces of this size (bounded memory). */
const PIECE = 4 << 20;

function checkSpec(spec: VolumeSpec): void {
  if (spec === null || typeof spec !== "object") throw new FsError("EINVAL", "openVolume options must be an object", { syscall: "open" });
  if (spec.size !== undefined && !(Number.isSafeInteger(spec.size) && spec.size > 0)) {
    throw new FsError("EINVAL", `bad size ${String(spec.size)}`, { syscall: "open" });
  }
}

async function imageBytes(image: Blob | ArrayBuffer | Uint8Array): Promise<Uint8Array> {
  if (image instanceof Uint8Array) return image;
  if (image instanceof ArrayBuffer) return new Uint8Array(image);
  if (typeof Blob !== "undefined" && image instanceof Blob) return new Uint8Array(await image.arrayBuffer());
  throw new FsError("EINVAL", "image must be a Blob, File, ArrayBuffer or Uint8Array", { syscall: "open" });
}

/** Join a volume directory and a relative '/'-path, refusing '.', '..' and empty names. */
function joinPath(dest: string, rel: string): string {
  const parts = rel.split("/").filter((p) => p !== "");
  if (parts.length === 0 || parts.some((p) => p === "." || p === ".." || p.includes("\0"))) {
    throw new FsError("EINVAL", `bad import path '${rel}'`, { syscall: "open", path: rel });
  }
  return (dest.endsWith("/") ? dest : dest + "/") + parts.join("/");
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

export class VolumeHost {
  #vol: Volume | null;
  readonly #dev: BlockDevice;
  readonly kind: "memory" | "opfs";

  private constructor(vol: Volume, dev: BlockDevice, kind: "memory" | "opfs") {
    this.#vol = vol;
    this.#dev = dev;
    this.kind = kind;
  }

  /** Open, maybe format, and mount as `spec` says. Must run where the engine is loaded. */
  static async open(spec: VolumeSpec = {}): Promise<VolumeHost> {
    checkSpec(spec);
    let dev: BlockDevice;
    let fresh = false;
    if (spec.opfs !== undefined) {
      if (spec.image !== undefined) {
        const bytes = await imageBytes(spec.image);
        const opfs = await OpfsDevice.open(spec.opfs, { create: true, size: bytes.length });
        await opfs.write(0, bytes);
        await opfs.flush();
        dev = opfs;
      } else if (spec.mount?.readOnly && !spec.mkfs) {
        // A read-only mount takes the shared read-only handle: other readers may coexist.
        dev = await OpfsDevice.open(spec.opfs, { readOnly: true });
      } else {
        let opfs = await OpfsDevice.open(spec.opfs, { create: true, readOnly: false });
        if (opfs.size === 0 || (spec.mkfs && spec.size !== undefined && spec.size !== opfs.size)) {
          await opfs.close();
          opfs = await OpfsDevice.open(spec.opfs, { create: true, size: spec.size ?? DEFAULT_SIZE });
          fresh = true;
        }
        dev = opfs;
      }
    } else if (spec.image !== undefined) {
      dev = MemoryDevice.from(await imageBytes(spec.image));
    } else {
      dev = new MemoryDevice(spec.size ?? DEFAULT_SIZE);
      fresh = true;
    }
    try {
      if (spec.mkfs || (fresh && spec.mkfs !== false)) {
        await mkfs(dev, typeof spec.mkfs === "object" ? spec.mkfs : {});
      }
      const vol = await mount(dev, spec.mount ?? {});
      return new VolumeHost(vol, dev, spec.opfs !== undefined ? "opfs" : "memory");
    } catch (e) {
      await dev.close().catch(() => {});
      throw e;
    }
  }

  /** The mounted volume (in the engine's thread only); EBADF after close(). */
  get volume(): Volume {
    if (!this.#vol) throw new FsError("EBADF", "volume is closed", { syscall: "access" });
    return this.#vol;
  }

  /** The device under the volume (in the engine's thread only). */
  get device(): BlockDevice {
    return this.#dev;
  }

  /** Run one whitelisted Volume method (the page side's typed wrappers call this). */
  async call(method: VolumeMethod, args: unknown[]): Promise<unknown> {
    if (!VOLUME_METHODS.has(method)) throw new FsError("EINVAL", `no volume method ${String(method)}`, { syscall: "call" });
    const vol = this.volume;
    if (method === "writeFile" || method === "appendFile") {
      // A Blob (a dropped File) is read here, in the engine's thread: the page never copies it.
      if (typeof Blob !== "undefined" && args[1] instanceof Blob) args = [args[0], new Uint8Array(await args[1].arrayBuffer()), ...args.slice(2)];
    }
    const result = await (vol[method] as (...a: unknown[]) => Promise<unknown>).apply(vol, args);
    return transferOut(result);
  }

  /** Open a file (Volume.open's arguments); the FileHost comes back by reference. */
  async open(path: string, flags: string | number = "r", mode?: number, opts?: { direct?: boolean }): Promise<FileHost> {
    return Comlink.proxy(new FileHost(await this.volume.open(path, flags, mode, opts)));
  }

  /** vol.stats() plus the device's request counters and statfs-style free counts. */
  async stats(): Promise<Record<string, unknown>> {
    const vol = this.volume;
    const dev = this.#dev as { stats?: unknown };
    return { ...vol.stats(), device: dev.stats ?? null, kind: this.kind, size: this.#dev.size };
  }

  /**
   * Copy a tree (a dropped folder, `<input webkitdirectory>` files) under `dest`, creating
   * parent directories; big files stream in 4 MiB pieces. `onProgress` gets a report after
   * every file (it may be a Comlink proxy: it is awaited, so progress cannot pile up).
   */
  async importFiles(entries: ImportEntry[], dest = "/", onProgress?: (p: ImportProgress) => unknown): Promise<ImportProgress> {
    try {
      return await this.#importFiles(entries, dest, onProgress);
    } finally {
      // A callback from another thread is a Comlink proxy holding a port open: let it go.
      (onProgress as { [Comlink.releaseProxy]?: () => void } | undefined)?.[Comlink.releaseProxy]?.();
    }
  }

  async #importFiles(entries: ImportEntry[], dest: string, onProgress?: (p: ImportProgress) => unknown): Promise<ImportProgress> {
    const vol = this.volume;
    const made = new Set<string>(["/"]);
    const ensureDir = async (dir: string) => {
      if (made.has(dir)) return;
      await vol.mkdir(dir, { recursive: true });
      made.add(dir);
    };
    const totalBytes = entries.reduce((n, e) => n + (e.file?.size ?? 0), 0);
    const p: ImportProgress = { files: 0, totalFiles: entries.length, bytes: 0, totalBytes, path: "", stats: {} };
    const dirTimes: [string, number][] = [];
    await ensureDir(dest);
    for (const entry of entries) {
      const path = joinPath(dest, entry.path);
      if (!entry.file) {
        await ensureDir(path);
        if (entry.mtime !== undefined) dirTimes.push([path, entry.mtime]);
      } else {
        await ensureDir(parentOf(path));
        const blob = entry.file;
        if (blob.size <= PIECE) {
          await vol.writeFile(path, new Uint8Array(await blob.arrayBuffer()));
        } else {
          const fh: FileHandle = await vol.open(path, "w");
          try {
            for (let off = 0; off < blob.size; off += PIECE) {
              const piece = new Uint8Array(await blob.slice(off, off + PIECE).arrayBuffer());
              await fh.write(piece, 0, piece.length, off);
            }
          } finally {
            await fh.close();
          }
        }
        if (entry.mtime !== undefined) await vol.utimes(path, new Date(entry.mtime), new Date(entry.mtime));
        p.bytes += blob.size;
      }
      p.files++;
      p.path = path;
      if (onProgress) {
        p.stats = vol.stats();
        await onProgress({ ...p });
      }
    }
    // Directory times last: creating children changed them.
    for (const [dir, t] of dirTimes.reverse()) await vol.utimes(dir, new Date(t), new Date(t));
    p.stats = vol.stats();
    return p;
  }

  /** The whole image as a Blob, after writing everything back (the volume stays mounted). */
  async exportImage(): Promise<Blob> {
    const vol = this.volume;
    if (!vol.readOnly) await vol.sync();
    if (this.#dev instanceof MemoryDevice) return new Blob([this.#dev.bytes() as BlobPart], { type: "application/octet-stream" });
    if (this.#dev instanceof OpfsDevice) return this.#dev.toBlob();
    throw new FsError("EINVAL", "this device cannot be exported", { syscall: "export" });
  }

  /** Unmount and close the device; idempotent. */
  async close(): Promise<void> {
    const vol = this.#vol;
    if (!vol) return;
    this.#vol = null;
    try {
      await vol.unmount();
    } finally {
      await this.#dev.close();
    }
  }
}

/** The Volume methods the page may call through `call` (all async, all data in/out). */
export const VOLUME_METHODS = new Set([
  "readFile", "writeFile", "appendFile", "mkdir", "readdir", "rm", "rmdir", "unlink", "rename",
  "link", "symlink", "readlink", "stat", "lstat", "chmod", "chown", "lchown", "utimes", "lutimes",
  "truncate", "statfs", "info", "exists", "realpath", "sync",
] as const);
export type VolumeMethod = typeof VOLUME_METHODS extends Set<infer M> ? M : never;

/** Wrap a host for Comlink (the worker returns hosts by reference). */
export function proxyHost(h: VolumeHost): VolumeHost {
  return Comlink.proxy(h);
}
