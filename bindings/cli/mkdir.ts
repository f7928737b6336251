/**
 * `ext4-wasm mkdir [-p] [-m MODE] IMAGE:PATH…`: make directories in an image.
 *
 * Also home of the argument helpers the other write commands share (byImage,
 * parseOctalMode); mounting for writing is image.ts' withImage.
 */
import { parse, UsageError } from "./args.ts";
import { requireImagePath, withImage, type ImagePath } from "./image.ts";

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

