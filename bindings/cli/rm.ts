/** `ext4-wasm rm [-r] [-f] IMAGE:PATH…`: remove files (and with -r directory trees). */
import { FsError } from "../fs/errors.ts";
import { parse, UsageError } from "./args.ts";
import { byImage } from "./mkdir.ts";
import { withImage } from "./image.ts";

const HELP = `usage: ext4-wasm rm [-r] [-f] [-d] IMAGE:PATH…

  -r, --recursive  remove directories and their contents
  -d, --dir        remove empty directories
  -f, --force      ignore missing paths`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: {
      recursive: { type: "boolean", short: "r" },
      R: { type: "boolean", short: "R" },
      dir: { type: "boolean", short: "d" },
      force: { type: "boolean", short: "f" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length === 0) throw new UsageError(`expected IMAGE:PATH\n\n${HELP}`);
  const recursive = v.recursive === true || v.R === true;
  const groups = byImage(positionals);
  for (const paths of groups.values()) {
    for (const { path } of paths) {
      // Like GNU rm's --preserve-root: never empty a whole volume by accident.
      if (path.split("/").every((s) => s === "" || s === ".")) throw new UsageError("refusing to remove '/'");
    }
  }
  for (const [image, paths] of groups) {
    await withImage(image, async (vol) => {
      for (const { path } of paths) {
        if (v.dir && !recursive) {
          const st = await vol.lstat(path).catch((e) => {
            if (v.force && e instanceof FsError && e.code === "ENOENT") return undefined;
            throw e;
          });
          if (!st) continue;
          if (st.isDirectory()) {
            await vol.rmdir(path);
            continue;
          }
        }
        await vol.rm(path, { recursive, force: v.force === true });
      }
    });
  }
}
