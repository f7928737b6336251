/**
 * `ext4-wasm ln [-s] [-f] TARGET IMAGE:LINK`: hard or symbolic links inside an image.
 * A symlink's TARGET is stored verbatim (it is text, resolved when the link is used); a
 * hard link's TARGET is IMAGE:PATH in the same image.
 */
import { FsError } from "../fs/errors.ts";
import type { WritableVolume } from "../node-copyin.ts";
import { parse, UsageError } from "./args.ts";
import { requireImagePath, parseImagePath } from "./image.ts";
import { withImage } from "./image.ts";

const HELP = `usage: ext4-wasm ln -s TARGET IMAGE:LINK
       ext4-wasm ln IMAGE:EXISTING IMAGE:LINK

  -s, --symbolic   make a symbolic link holding TARGET verbatim
  -f, --force      replace an existing LINK (never a directory)
If LINK is an existing directory, the link is made inside it.`;

function baseName(p: string): string {
  const parts = p.split("/").filter((s) => s !== "");
  return parts[parts.length - 1] ?? "";
}

async function existing(vol: WritableVolume, path: string) {
  return vol.lstat(path).catch((e) => {
    if (e instanceof FsError && e.code === "ENOENT") return undefined;
    throw e;
  });
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { symbolic: { type: "boolean", short: "s" }, force: { type: "boolean", short: "f" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length !== 2) throw new UsageError(`expected TARGET IMAGE:LINK\n\n${HELP}`);
  const [targetArg, linkArg] = positionals as [string, string];
  const link = requireImagePath(linkArg, "IMAGE:LINK");
  let target: string;
  if (v.symbolic) {
    if (targetArg === "") throw new UsageError("a symlink target cannot be empty");
    target = targetArg;
  } else {
    const t = parseImagePath(targetArg);
    if (!t) throw new UsageError(`a hard link needs IMAGE:EXISTING, got '${targetArg}' (use -s for a symlink)`);
    if (t.image !== link.image) throw new UsageError("hard links must stay within one image");
    target = t.path;
  }
  await withImage(link.image, async (vol) => {
    let path = link.path;
    const st = await vol.stat(path).catch(() => undefined);
    if (st?.isDirectory()) {
      const name = baseName(target);
      if (!name) throw new UsageError(`cannot name a link to '${target}' inside ${path}`);
      path = path.endsWith("/") ? path + name : `${path}/${name}`;
    }
    if (v.force) {
      const old = await existing(vol, path);
      if (old?.isDirectory()) throw new FsError("EISDIR", `${path} is a directory`, { syscall: "unlink", path });
      if (old) await vol.unlink(path);
    }
    if (v.symbolic) await vol.symlink(target, path);
    else await vol.link(target, path);
  });
}
