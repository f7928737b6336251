/** `ext4-wasm mv IMAGE:SRC… IMAGE:DEST`: rename within one image (into DEST if it is a directory). */
import { FsError } from "../fs/errors.ts";
import { parse, UsageError } from "./args.ts";
import { requireImagePath } from "./image.ts";
import { withImage } from "./image.ts";

const HELP = `usage: ext4-wasm mv [-T] IMAGE:SRC… IMAGE:DEST

Renames SRC to DEST inside one image. If DEST is an existing directory, SRC moves into
it (keeping its name) unless -T is given; several SRCs need a directory DEST.

  -T, --no-target-directory   treat DEST as the new name even if it is a directory`;

function baseName(p: string): string {
  const parts = p.split("/").filter((s) => s !== "");
  return parts[parts.length - 1] ?? "";
}

function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { "no-target-directory": { type: "boolean", short: "T" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length < 2) throw new UsageError(`expected IMAGE:SRC IMAGE:DEST\n\n${HELP}`);
  const all = positionals.map((a) => requireImagePath(a));
  const dest = all.pop()!;
  if (all.some((s) => s.image !== dest.image)) throw new UsageError("mv works within one image; use cp to copy between images and the host");
  if (v["no-target-directory"] && all.length > 1) throw new UsageError("-T takes exactly one SRC");
  await withImage(dest.image, async (vol) => {
    const st = v["no-target-directory"]
      ? undefined
      : await vol.stat(dest.path).catch((e) => {
          if (e instanceof FsError && (e.code === "ENOENT" || e.code === "ENOTDIR")) return undefined;
          throw e;
        });
    if (all.length > 1 && !st?.isDirectory()) throw new FsError("ENOTDIR", `target ${dest.path} is not a directory`, { syscall: "rename", path: dest.path });
    for (const src of all) {
      const name = baseName(src.path);
      if (!name) throw new UsageError("cannot move '/'");
      await vol.rename(src.path, st?.isDirectory() ? join(dest.path, name) : dest.path);
    }
  });
}
