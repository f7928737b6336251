/**
 * `ext4-wasm chmod [-R] MODE IMAGE:PATH…`: change permission bits in an image.
 * MODE is octal (755, 4755) or symbolic as in chmod(1): comma-separated clauses of
 * [ugoa]*[+-=][rwxXst]* or a copied class ([ugoa]*[+-=][ugo]), e.g. u+x,go-w or a=rX.
 * There is no umask inside an image, so a clause without a class means "a". Directories
 * keep setuid/setgid under a numeric mode of fewer than five digits, as with GNU chmod.
 */
import type { WritableVolume } from "../node-copyin.ts";
import { parse, UsageError } from "./args.ts";
import { byImage, parseOctalMode } from "./mkdir.ts";
import { withImage } from "./image.ts";

const HELP = `usage: ext4-wasm chmod [-R] MODE IMAGE:PATH…

MODE: octal (755) or symbolic (u+x, go-w, a=rX, +t, g+s, u=rw,go=r)
  -R, --recursive   change directory trees (symlinks are not followed)`;

const CLASS: Record<string, number> = { u: 0o4700, g: 0o2070, o: 0o1007, a: 0o7777 };

/** A mode change: old mode (with type bits) → new permission bits (0o7777). */
export type ModeChange = (mode: number) => number;

/** Parse an octal or symbolic MODE; UsageError when malformed. */
export function parseModeChange(text: string): ModeChange {
  if (/^0?[0-7]{1,4}$/.test(text)) {
    const m = parseInt(text, 8);
    // As GNU chmod: a numeric mode of fewer than five digits keeps a directory's
    // setuid/setgid bits (00755 clears them).
    const keep = text.length < 5;
    return (mode) => ((mode & 0o170000) === 0o040000 && keep ? m | (mode & 0o6000) : m);
  }
  if (/^[0-7]+$/.test(text)) parseOctalMode(text); // throws the usual message
  const clauses = text.split(",").map((c) => {
    const m = /^([ugoa]*)((?:[-+=](?:[ugo]|[rwxXst]*))+)$/.exec(c);
    if (!m) throw new UsageError(`bad mode '${text}': expected octal or symbolic (u+x, go-w, a=rX)`);
    const who = m[1] ? [...m[1]].reduce((acc, ch) => acc | CLASS[ch]!, 0) : CLASS.a!;
    const ops = [...m[2]!.matchAll(/([-+=])([ugo]|[rwxXst]*)/g)].map((o) => ({ op: o[1]!, perms: o[2]! }));
    return { who, ops };
  });
  return (mode: number) => {
    const isDir = (mode & 0o170000) === 0o040000;
    let bits = mode & 0o7777;
    for (const { who, ops } of clauses) {
      for (const { op, perms } of ops) {
        let add = 0;
        if (perms.length === 1 && "ugo".includes(perms)) {
          // Copy a class's rwx to every class named.
          const shift = perms === "u" ? 6 : perms === "g" ? 3 : 0;
          const rwx = (bits >> shift) & 7;
          add = (rwx << 6) | (rwx << 3) | rwx;
        } else {
          for (const ch of perms) {
            if (ch === "r") add |= 0o444;
            else if (ch === "w") add |= 0o222;
            else if (ch === "x") add |= 0o111;
            else if (ch === "X") add |= isDir || (bits & 0o111) !== 0 ? 0o111 : 0;
            else if (ch === "s") add |= 0o6000;
            else if (ch === "t") add |= 0o1000;
          }
        }
        add &= who;
        if (op === "+") bits |= add;
        else if (op === "-") bits &= ~add;
        else bits = (bits & ~(who & 0o0777 | (who & 0o7000 & ~(isDir ? 0o6000 : 0)))) | add;
      }
    }
    return bits & 0o7777;
  };
}

async function chmodTree(vol: WritableVolume, path: string, change: ModeChange, recursive: boolean): Promise<void> {
  const st = await vol.lstat(path);
  if (st.isSymbolicLink()) {
    // chmod(1) follows a symlink named on the command line, never one found by -R.
    if (recursive) return;
    const t = await vol.stat(path);
    return vol.chmod(path, change(t.mode));
  }
  await vol.chmod(path, change(st.mode));
  if (recursive && st.isDirectory()) {
    for (const name of (await vol.readdir(path)).sort()) {
      await chmodTree(vol, path.endsWith("/") ? path + name : `${path}/${name}`, change, true);
    }
  }
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { recursive: { type: "boolean", short: "R" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log(HELP);
  if (positionals.length < 2) throw new UsageError(`expected MODE IMAGE:PATH…\n\n${HELP}`);
  const [modeText, ...paths] = positionals as [string, ...string[]];
  const change = parseModeChange(modeText);
  for (const [image, list] of byImage(paths)) {
    await withImage(image, async (vol) => {
      for (const { path } of list) await chmodTree(vol, path, change, v.recursive === true);
    });
  }
}
