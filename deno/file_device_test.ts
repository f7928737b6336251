/// <reference lib="deno.ns" />
/**
 * The Deno FileDevice's own rules, beyond the shared suite's device case: errors with
 * their codes and paths, read-only opens, sizes, and zeroout's bookkeeping (holes it made
 * or was told about are skipped; data is overwritten only where it is). Judged by reading
 * the file back with Deno.readFile, not through the device.
 */
import { FileDevice } from "./file_device.ts";
import { FsError } from "../bindings/fs/errors.ts";

const dir = await Deno.makeTempDir({ prefix: "ext4-deno-device-" });
let serial = 0;
const fresh = () => `${dir}/d${++serial}.img`;
const MiB = 1 << 20;

function ok(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}
async function code(p: Promise<unknown>, expected: string): Promise<FsError> {
  try {
    await p;
  } catch (e) {
    ok(e instanceof FsError, `expected FsError ${expected}, got ${String(e)}`);
    ok(e.code === expected, `expected ${expected}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new Error(`expected ${expected}, but it succeeded`);
}

Deno.test("open: ENOENT with the path, EINVAL for create+readOnly, EISDIR for a directory", async () => {
  const e = await code(FileDevice.open(`${dir}/missing.img`), "ENOENT");
  ok(e.path === `${dir}/missing.img` && e.syscall === "open", `path/syscall: ${e.path} ${e.syscall}`);
  await code(FileDevice.open(fresh(), { create: true, readOnly: true }), "EINVAL");
  await code(FileDevice.open(dir), "EISDIR");
  await code(FileDevice.open(fresh(), { create: true, size: -1 }), "EINVAL");
});

Deno.test("size: create extends sparsely; without size the file's size; read-only past EOF reads zeros", async () => {
  const path = fresh();
  const dev = await FileDevice.open(path, { size: 3 * MiB, create: true });
  ok(dev.size === 3 * MiB, "size");
  ok((await Deno.stat(path)).size === 3 * MiB, "file extended");
  await dev.write(MiB - 2, new Uint8Array([1, 2, 3, 4]));
  await dev.close();
  await code(dev.read(0, new Uint8Array(1)), "EBADF");
  const again = await FileDevice.open(path);
  ok(again.size === 3 * MiB, "size from the file");
  await again.close();
  const ro = await FileDevice.open(path, { readOnly: true, size: 4 * MiB });
  ok((await Deno.stat(path)).size === 3 * MiB, "read-only open leaves the file alone");
  const past = new Uint8Array(2 * MiB).fill(9);
  await ro.read(2 * MiB, past);
  ok(past.every((b) => b === 0), "beyond EOF reads zeros");
  const mid = new Uint8Array(4);
  await ro.read(MiB - 2, mid);
  ok(mid.join() === "1,2,3,4", `data: ${mid.join()}`);
  await code(ro.write(0, new Uint8Array(1)), "EROFS");
  await code(ro.zeroout(0, 512), "EROFS");
  await ro.flush(); // a no-op, not an error
  await ro.close();
});

Deno.test("zeroout: holes this device appended are skipped; data is rewritten only where it is", async () => {
  const path = fresh();
  const dev = await FileDevice.open(path, { size: 32 * MiB, create: true });
  await dev.zeroout(0, 32 * MiB);
  ok(dev.zerooutWork.bytesChecked === 0, `fresh hole read-checked: ${JSON.stringify(dev.zerooutWork)}`);
  await dev.write(5 * MiB + 100, new Uint8Array(10).fill(0xaa));
  await dev.zeroout(4 * MiB, 4 * MiB);
  const w = dev.zerooutWork;
  // Only the 10 written bytes are unknown; the rest of the 4 MiB is still a known hole.
  ok(w.bytesChecked === 10 && w.bytesRewritten === 10, `only the written bytes are checked and rewritten: ${JSON.stringify(w)}`);
  ok(w.bytesSkipped === 32 * MiB + 4 * MiB - 10, `the rest skipped: ${JSON.stringify(w)}`);
  await dev.zeroout(4 * MiB, 4 * MiB);
  ok(dev.zerooutWork.bytesChecked === 10, "a zeroed range is known zero afterwards");
  await dev.close();
  const bytes = await Deno.readFile(path);
  ok(bytes.length === 32 * MiB && bytes.every((b) => b === 0), "the file holds zeros");
});

Deno.test("zeroout on a file with old data (reopened: nothing known) zeroes it all", async () => {
  const path = fresh();
  await Deno.writeFile(path, new Uint8Array(3 * MiB).fill(0x55));
  const dev = await FileDevice.open(path);
  await dev.zeroout(MiB / 2, MiB);
  ok(dev.zerooutWork.bytesRewritten === MiB, JSON.stringify(dev.zerooutWork));
  await dev.write(MiB, new Uint8Array([7]));
  await dev.flush();
  await dev.close();
  const b = await Deno.readFile(path);
  ok(b[MiB / 2 - 1] === 0x55 && b[MiB / 2] === 0 && b[MiB] === 7 && b[MiB + 1] === 0 && b[MiB / 2 + MiB] === 0x55, "exact range zeroed");
});

Deno.test("cleanup", async () => {
  await Deno.remove(dir, { recursive: true });
});
