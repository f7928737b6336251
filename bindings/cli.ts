/**
 * The `ext4-wasm` command (Node). Each subcommand lives in bindings/cli/<name>.ts and
 * exports `run(argv)`; this file only dispatches and turns failures into exit codes:
 * 0 success, 1 the operation failed (an FsError, printed as one line), 2 bad usage.
 */
import "./node.ts";
import { FsError } from "./fs/errors.ts";
import { UsageError } from "./cli/args.ts";

const COMMANDS: Record<string, () => Promise<{ run(argv: string[]): Promise<void> }>> = {
  mkfs: () => import("./cli/mkfs.ts"),
  ls: () => import("./cli/ls.ts"),
  cat: () => import("./cli/cat.ts"),
  info: () => import("./cli/info.ts"),
  cp: () => import("./cli/cp.ts"),
  mkdir: () => import("./cli/mkdir.ts"),
  rm: () => import("./cli/rm.ts"),
  mv: () => import("./cli/mv.ts"),
  ln: () => import("./cli/ln.ts"),
  chmod: () => import("./cli/chmod.ts"),
};

const HELP = `usage: ext4-wasm <command> [options]

commands:
  mkfs IMAGE [SIZE] [--from DIR]  format IMAGE (created sparse); --from copies DIR in (like mke2fs -d)
                                  SIZE: bytes or with a K/M/G/T suffix (binary), e.g. 64G
  info IMAGE                      features, sizes, free counts, per-group flags
  ls [-l] IMAGE:PATH              list a directory in an image
  cat IMAGE:PATH                  write a file from an image to standard output
  cp [-r] IMAGE:PATH DEST         extract from an image, preserving modes and times
  cp [-r] SRC IMAGE:PATH          copy a host file or tree into an image
  mkdir [-p] [-m MODE] IMAGE:PATH make directories
  rm [-r] [-f] IMAGE:PATH         remove files (with -r, trees)
  mv IMAGE:SRC IMAGE:DEST         rename inside an image
  ln [-s] TARGET IMAGE:LINK       hard or symbolic link
  chmod [-R] MODE IMAGE:PATH      change permissions (octal, or u+x style)

run 'ext4-wasm <command> --help' for a command's options`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "--help" || cmd === "-h" || cmd === "help") {
    console.log(HELP);
    return cmd ? 0 : 2;
  }
  const load = COMMANDS[cmd];
  if (!load) {
    console.error(`ext4-wasm: unknown command '${cmd}'\n\n${HELP}`);
    return 2;
  }
  try {
    await (await load()).run(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`ext4-wasm ${cmd}: ${e.message}`);
      return 2;
    }
    if (e instanceof FsError) {
      console.error(`ext4-wasm ${cmd}: ${e.message}`);
      return 1;
    }
    console.error(`ext4-wasm ${cmd}: internal error:`, e);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
