/** `ext4-wasm ls [-l] [-a] IMAGE:PATH`: list a directory (or name a file) in an image. */
import { parse, UsageError } from "./args.ts";
import { openImage, requireImagePath } from "./image.ts";
import type { Stats } from "../fs/stats.ts";
import type { Volume } from "../fs/volume.ts";

const HELP = `usage: ext4-wasm ls [-l] [-a] IMAGE:PATH

  -l, --long   mode, links, owner, group, size, modification time, name (-> target)
  -a, --all    include . and ..`;

const TYPE_CHAR: Record<number, string> = {
  0o140000: "s", 0o120000: "l", 0o100000: "-", 0o060000: "b", 0o040000: "d", 0o020000: "c", 0o010000: "p",
};

export function modeString(mode: number): string {
  const t = TYPE_CHAR[mode & 0o170000] ?? "?";
  const rwx = (bits: number, special: boolean, ch: string) =>
    (bits & 4 ? "r" : "-") + (bits & 2 ? "w" : "-") + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? "x" : "-");
  return t + rwx(mode >> 6, (mode & 0o4000) !== 0, "s") + rwx(mode >> 3, (mode & 0o2000) !== 0, "s") + rwx(mode, (mode & 0o1000) !== 0, "t");
}

function timeString(d: Date): string {
  return d.toISOString().replace("T", " ").slice(0, 16);
}

async function longLine(vol: Volume, path: string, name: string, st: Stats): Promise<string> {
  let line = `${modeString(st.mode)} ${String(st.nlink).padStart(3)} ${String(st.uid).padStart(5)} ${String(st.gid).padStart(5)} `;
  line += st.isCharacterDevice() || st.isBlockDevice()
    ? `${String(Math.floor(st.rdev / 256) & 0xfff).padStart(5)},${String(st.rdev & 0xff).padStart(4)}`
    : String(st.size).padStart(10);
  line += ` ${timeString(st.mtime)} ${name}`;
  if (st.isSymbolicLink()) line += ` -> ${await vol.readlink(path)}`;
  return line;
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { long: { type: "boolean", short: "l" }, all: { type: "boolean", short: "a" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length !== 1) throw new UsageError(`expected one IMAGE:PATH\n\n${HELP}`);
  const { image, path } = requireImagePath(positionals[0]);
  const { vol, close } = await openImage(image);
  try {
    const st = await vol.lstat(path);
    const lines: string[] = [];
    if (!st.isDirectory()) {
      lines.push(v.long ? await longLine(vol, path, path, st) : path);
    } else {
      const names = (await vol.readdir(path)).sort();
      if (v.all) names.unshift(".", "..");
      for (const name of names) {
        const child = path.endsWith("/") ? path + name : `${path}/${name}`;
        lines.push(v.long ? await longLine(vol, child, name, await vol.lstat(child)) : name);
      }
    }
    if (lines.length) process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await close();
  }
}
