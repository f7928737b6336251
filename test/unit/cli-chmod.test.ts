/**
 * `ext4-wasm chmod` symbolic modes, judged by GNU chmod on the host (run with umask 0,
 * since there is no umask inside an image): for every start mode × expression, on a file
 * and on a directory, parseModeChange must give the bits chmod(1) gives.
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseModeChange } from "../../bindings/cli/chmod.ts";
import { UsageError } from "../../bindings/cli/args.ts";
import { tempDir } from "../helpers/e2fsprogs.ts";

const tmp = tempDir("chmod-");
afterAll(() => tmp.cleanup());

const STARTS = [0o000, 0o644, 0o755, 0o4750, 0o2711, 0o1777, 0o600, 0o070];
const EXPRS = [
  "u+x", "go-w", "a=rX", "+t", "g+s", "u+s", "u=rw,go=r", "o-rwx", "a+X", "ug=rwx,o=", "=", "+x", "-r",
  "u=g", "g=u", "o=u", "go+u", "u-s", "g-s,o+t", "a-st", "u+rwxs,g=rx", "755", "4711", "0", "00755", "02755",
];

describe("chmod MODE parsing against GNU chmod", () => {
  for (const kind of ["file", "dir"] as const) {
    it(`symbolic and octal modes on a ${kind}`, () => {
      const p = join(tmp.dir, kind);
      if (kind === "dir") mkdirSync(p);
      else writeFileSync(p, "");
      for (const start of STARTS) {
        for (const expr of EXPRS) {
          chmodSync(p, start);
          const before = statSync(p).mode;
          execFileSync("sh", ["-c", `umask 000; chmod -- "$0" "$1"`, expr, p]);
          const want = statSync(p).mode & 0o7777;
          const got = parseModeChange(expr)(before);
          expect({ start: start.toString(8), expr, kind, mode: got.toString(8) }).toEqual({ start: start.toString(8), expr, kind, mode: want.toString(8) });
        }
      }
    });
  }

  it("rejects malformed modes as usage errors", () => {
    for (const bad of ["", "999", "u+q", "x+u", "8", "a=rw,", "ug"]) {
      expect(() => parseModeChange(bad)(0o644), bad).toThrow(UsageError);
    }
  });
});
