/**
 * IMAGE:PATH arguments, and mounting an image for a command: read-only for the read
 * commands (openImage), read-write for the write commands (withImage: mkdir, rm, mv, ln,
 * chmod, cp into an image). withImage guarantees `unmount()` — which writes every dirty
 * block back — runs even when the operation fails, so a failed command never leaves
 * half a change sitting only in memory.
 */
import { FileDevice } from "../devices/node-file.ts";
import { mount, type Volume } from "../fs/volume.ts";
import { writable, type WritableVolume } from "../node-copyin.ts";
import { UsageError } from "./args.ts";

export interface ImagePath {
  image: string;
  path: string;
}

/** "disk.img:/etc" → { image: "disk.img", path: "/etc" }; "disk.img:" → path "/". */
export function parseImagePath(arg: string): ImagePath | undefined {
  const i = arg.indexOf(":/");
  if (i > 0) return { image: arg.slice(0, i), path: arg.slice(i + 1) };
  if (arg.endsWith(":") && arg.length > 1) return { image: arg.slice(0, -1), path: "/" };
  return undefined;
}

export function requireImagePath(arg: string | undefined, what = "IMAGE:PATH"): ImagePath {
  const ip = arg ? parseImagePath(arg) : undefined;
  if (!ip) throw new UsageError(`expected ${what} (for example disk.img:/etc), got '${arg ?? ""}'`);
  return ip;
}

/** Mount an image file read-only; the caller must call the returned close(). */
export async function openImage(image: string): Promise<{ vol: Volume; close(): Promise<void> }> {
  const dev = await FileDevice.open(image, { readOnly: true });
  try {
    const vol = await mount(dev, { readOnly: true });
    for (const w of vol.warnings) if (!w.startsWith("mounted read-only")) console.error(`ext4-wasm: warning: ${w}`);
    return {
      vol,
      close: async () => {
        await vol.unmount();
        await dev.close();
      },
    };
  } catch (e) {
    await dev.close();
    throw e;
  }
}

/** Mount `image` read-write, run fn, then unmount (flushing) and close — also on error. */
export async function withImage<T>(image: string, fn: (vol: WritableVolume) => Promise<T>): Promise<T> {
  const dev = await FileDevice.open(image);
  let result: T;
  try {
    const vol = await mount(dev, {});
    for (const w of vol.warnings) console.error(`ext4-wasm: warning: ${w}`);
    try {
      result = await fn(writable(vol));
    } catch (e) {
      // The operation's error is the one to report; a failing unmount after it is noise.
      await vol.unmount().catch(() => {});
      throw e;
    }
    await vol.unmount();
  } finally {
    await dev.close();
  }
  return result;
}
