/**
 * `ext4-wasm cp [-r] IMAGE:PATH DEST`: extract from an image to the host, preserving
 * modes and times, never writing outside DEST (see bindings/node-copyout.ts).
 * `ext4-wasm cp [-r] SRC IMAGE:PATH`: copy a host file or tree into an image
 * (bindings/node-copyin.ts), with a progress bar on a terminal.
 */
import { stat, lstat } from "node:fs/promises";
import { join, basename, resolve } from "node:path";
import { parse, UsageError, formatBytes } from "./args.ts";
import { openImage, parseImagePath, withImage, type ImagePath } from "./image.ts";
import { copyOut } from "../node-copyout.ts";
import { copyIn } from "../node-copyin.ts";
import { FsError } from "../fs/errors.ts";
import { Progress, lazyInitOf } from "./progress.ts";

const HELP = `usage: ext4-wasm cp [-r] IMAGE:PATH DEST
       ext4-wasm cp [-r] SRC IMAGE:PATH

Copies a file (or with -r a directory tree) out of an image, or from the host into an
image. If the destination is an existing directory the copy goes inside it. Modes,
times, symlinks and hard links are kept; owners too when running as root (otherwise
files copied in belong to 0:0, or to --owner UID:GID).

  -r, --recursive     copy directories
  --owner UID:GID     owner of everything copied into an image
  -q, --quiet         no summary`;

function parseOwner(text: string | undefined): { uid: number; gid: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new UsageError(`bad --owner '${text}': expected UID:GID`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/** Host → image. */
async function copyInto(src: string, dest: ImagePath, recursive: boolean, quiet: boolean, ownerText: string | undefined): Promise<void> {
  const owner = parseOwner(ownerText);
  const hst = await lstat(src).catch((e) => {
    throw new FsError("ENOENT", `cannot stat ${src}: ${(e as Error).message}`, { syscall: "lstat", path: src });
  });
  if (hst.isDirectory() && !recursive) throw new UsageError(`${src} is a directory (use -r)`);
  const progress = new Progress("copying");
  const t0 = performance.now();
  let skipped = 0;
  const r = await withImage(dest.image, async (vol) => {
    let path = dest.path;
    const st = await vol.stat(path).catch(() => undefined);
    if (st?.isDirectory()) {
      const name = basename(resolve(src));
      if (name) path = path.endsWith("/") ? path + name : `${path}/${name}`;
    }
    return copyIn(vol, src, path, {
      owner,
      preserveOwner: owner ? false : undefined,
      onProgress: (p) => progress.update({ ...p, lazyInit: lazyInitOf(vol) }),
      onSkip: (p, why) => {
        skipped++;
        progress.done();
        console.error(`ext4-wasm cp: skipped ${p}: ${why}`);
      },
    });
  });
  progress.done();
  const secs = (performance.now() - t0) / 1000;
  if (!quiet) {
    console.error(`copied ${r.files} files, ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links, ${formatBytes(r.bytes)} in ${secs.toFixed(1)} s (${formatBytes(Math.round(r.bytes / Math.max(secs, 1e-3)))}/s)${skipped ? `, skipped ${skipped}` : ""} to ${dest.image}:${dest.path}`);
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: {
      recursive: { type: "boolean", short: "r" },
      R: { type: "boolean", short: "R" },
      owner: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length !== 2) throw new UsageError(`expected IMAGE:PATH DEST or SRC IMAGE:PATH\n\n${HELP}`);
  const recursive = v.recursive === true || v.R === true;
  const src = parseImagePath(positionals[0]!);
  const into = parseImagePath(positionals[1]!);
  if (src && into) throw new UsageError("copying from one image to another is not supported; copy out, then in");
  if (!src) {
    if (into) return copyInto(positionals[0]!, into, recursive, v.quiet === true, v.owner);
    throw new UsageError(`expected IMAGE:PATH as the source or the destination, got '${positionals[0]}' and '${positionals[1]}'`);
  }
  const { vol, close } = await openImage(src.image);
  try {
    const st = await vol.lstat(src.path);
    if (st.isDirectory() && !recursive) throw new UsageError(`${src.path} is a directory (use -r)`);
    let dest = positionals[1]!;
    const existing = await stat(dest).catch(() => undefined);
    if (existing?.isDirectory()) dest = join(dest, basename(src.path) || "root");
    let skipped = 0;
    const r = await copyOut(vol, src.path, dest, {
      onSkip: (p, why) => {
        skipped++;
        console.error(`ext4-wasm cp: skipped ${p}: ${why}`);
      },
    });
    if (!v.quiet) console.error(`copied ${r.files} files, ${formatBytes(r.bytes)}${skipped ? `, skipped ${skipped}` : ""} to ${dest}`);
  } finally {
    await close();
  }
}
