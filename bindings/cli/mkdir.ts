/**
 * `ext4-wasm mkdir [-p] [-m MODE] IMAGE:PATH…`: make directories in an image.
 *
 * Also home of openImageForWrite, the read-write counterpart of image.ts' openImage that
 * every write command (mkdir, rm, mv, ln, chmod, cp into an image) shares: it mounts the
 * image read-write and guarantees `unmount()` — which writes every dirty block back —
 * runs even when the operation fails, so a failed command never leaves half a change
 * sitting only in memory.
 */
import { FileDevice } from "../devices/node-file.ts";
import { mount } from "../fs/volume.ts";
import { writable, type WritableVolume } from "../node-copyin.ts";
import { parse, UsageError } from "./args.ts";
import { requireImagePath, type ImagePath } from "./image.ts";

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

/** IMAGE:PATH arguments grouped by image (first-seen order), so each image mounts once. */
export function byImage(args: readonly string[]): Map<string, ImagePath[]> {
  const m = new Map<string, ImagePath[]>();
  for (const a of args) {
    const ip = requireImagePath(a);
    const list = m.get(ip.image) ?? [];
    list.push(ip);
    m.set(ip.image, list);
  }
  return m;
}

/** "755" / "0755" → 0o755; UsageError otherwise. */
export function parseOctalMode(text: string): number {
  if (!/^[0-7]{1,4}$/.test(text)) throw new UsageError(`bad mode '${text}': expected octal digits such as 755`);
  return parseInt(text, 8);
}

const HELP = `usage: ext4-wasm mkdir [-p] [-m MODE] IMAGE:PATH…

  -p, --parents   make parent directories as needed; no error if it exists
  -m, --mode M    permission bits in octal (default 755)`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { parents: { type: "boolean", short: "p" }, mode: { type: "string", short: "m" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length === 0) throw new UsageError(`expected IMAGE:PATH\n\n${HELP}`);
  const mode = v.mode !== undefined ? parseOctalMode(v.mode) : 0o755;
  for (const [image, paths] of byImage(positionals)) {
    await withImage(image, async (vol) => {
      for (const { path } of paths) {
        await vol.mkdir(path, { recursive: v.parents === true, mode });
        // mkdir drops setuid/setgid (as Linux does); an explicit -m asks for them.
        if (v.mode !== undefined && (mode & 0o7000) !== 0) await vol.chmod(path, mode);
      }
    });
  }
}

