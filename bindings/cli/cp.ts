/**
 * `ext4-wasm cp [-r] IMAGE:PATH DEST`: extract from an image to the host, preserving
 * modes and times, never writing outside DEST (see bindings/node-copyout.ts).
 */
import { stat } from "node:fs/promises";
import { join, basename } from "node:path";
import { parse, UsageError, formatBytes } from "./args.ts";
import { openImage, parseImagePath } from "./image.ts";
import { copyOut } from "../node-copyout.ts";

const HELP = `usage: ext4-wasm cp [-r] IMAGE:PATH DEST

Copies a file (or with -r a directory tree) out of an image. If DEST is an existing
directory the copy goes inside it.`;

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { recursive: { type: "boolean", short: "r" }, quiet: { type: "boolean", short: "q" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length !== 2) throw new UsageError(`expected IMAGE:PATH DEST\n\n${HELP}`);
  const src = parseImagePath(positionals[0]!);
  if (!src) {
    if (parseImagePath(positionals[1]!)) throw new UsageError("copying into an image needs the write path, which is not available yet");
    throw new UsageError(`expected IMAGE:PATH as the source, got '${positionals[0]}'`);
  }
  const { vol, close } = await openImage(src.image);
  try {
    const st = await vol.lstat(src.path);
    if (st.isDirectory() && !v.recursive) throw new UsageError(`${src.path} is a directory (use -r)`);
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
