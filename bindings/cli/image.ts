/** IMAGE:PATH arguments and opening an image read-only for the read commands. */
import { FileDevice } from "../devices/node-file.ts";
import { mount, type Volume } from "../fs/volume.ts";
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
