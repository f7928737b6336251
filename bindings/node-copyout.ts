/**
 * copyOut: extract a file or tree from a volume to the host (Node).
 *
 * Safety is the point of this file: the image is untrusted, so nothing it says may make
 * us write outside `hostPath`. Every host path is built by joining names read from
 * directories, and a name that is empty, '.', '..', or contains '/' or NUL is skipped
 * (a real ext4 directory never holds one; a crafted one might). Symlinks in the image are
 * re-created as symlinks, never followed — so later entries can never be written through
 * them — and files are created with O_EXCL|O_NOFOLLOW, so a symlink already sitting in the
 * destination is not followed either. Directories are created fresh, or must already be
 * real directories (lstat, not stat).
 *
 * Preserved: contents, modes (including setuid/setgid/sticky), modification and access
 * times (to the microsecond Node can set), hard links within the tree, and ownership when
 * running as root. Device nodes, FIFOs and sockets cannot be made from Node; they are
 * reported through onSkip and left out.
 */
import { constants } from "node:fs";
import { lstat, mkdir, open, symlink, link, chmod, utimes, lutimes, lchown } from "node:fs/promises";
import { join, basename } from "node:path";
import type { Volume } from "./fs/volume.ts";
import type { Stats } from "./fs/stats.ts";
import { FsError } from "./fs/errors.ts";
import { runningAsRoot } from "./host-root.ts";

export interface CopyOutOptions {
  /** Called for entries that cannot be extracted (special files, hostile names). */
  onSkip?: (volPath: string, reason: string) => void;
  /** Called after each file with the running byte count. */
  onProgress?: (p: { files: number; bytes: number; path: string }) => void;
}

const CHUNK = 1 << 20;

function safeName(name: string): boolean {
  return name !== "" && name !== "." && name !== ".." && !name.includes("/") && !name.includes("\0");
}

/** Copy volPath (file, symlink or directory tree) to hostPath on the host. */
export async function copyOut(vol: Volume, volPath: string, hostPath: string, opts: CopyOutOptions = {}): Promise<{ files: number; bytes: number }> {
  const state = { files: 0, bytes: 0, links: new Map<number, string>() };
  const buf = new Uint8Array(CHUNK); // one buffer for every file: no per-file allocation
  const asRoot = runningAsRoot();
  const dirTimes: [string, Stats][] = [];

  const copyEntry = async (src: string, dest: string, st: Stats): Promise<void> => {
    if (st.isDirectory()) {
      await mkdir(dest, { mode: 0o700 }).catch(async (e) => {
        if (e.code !== "EEXIST") throw e;
        const h = await lstat(dest);
        if (!h.isDirectory()) throw new FsError("EEXIST", `${dest} exists and is not a directory`, { syscall: "mkdir", path: dest });
      });
      for (const name of await vol.readdir(src)) {
        const child = src.endsWith("/") ? src + name : `${src}/${name}`;
        if (!safeName(name)) {
          opts.onSkip?.(child, "unsafe name");
          continue;
        }
        await copyEntry(child, join(dest, name), await vol.lstat(child));
      }
      dirTimes.push([dest, st]);
    } else if (st.isSymbolicLink()) {
      await symlink(await vol.readlink(src), dest);
      await lutimes(dest, st.atimeMs / 1000, st.mtimeMs / 1000).catch(() => {});
      if (asRoot) await lchown(dest, st.uid, st.gid).catch(() => {});
      return;
    } else if (st.isFile()) {
      const first = st.nlink > 1 ? state.links.get(st.ino) : undefined;
      if (first) {
        await link(first, dest);
        return;
      }
      const fh = await open(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        const src_ = await vol.open(src, "r");
        try {
          let pos = 0;
          for (;;) {
            const { bytesRead } = await src_.read(buf, 0, CHUNK, pos);
            if (bytesRead === 0) break;
            await fh.write(buf, 0, bytesRead, pos);
            pos += bytesRead;
          }
          state.bytes += pos;
        } finally {
          await src_.close();
        }
      } finally {
        await fh.close();
      }
      if (st.nlink > 1) state.links.set(st.ino, dest);
      state.files++;
      opts.onProgress?.({ files: state.files, bytes: state.bytes, path: src });
    } else {
      opts.onSkip?.(src, st.isFIFO() ? "FIFO" : st.isSocket() ? "socket" : "device node");
      return;
    }
    if (asRoot) await lchown(dest, st.uid, st.gid).catch(() => {});
    if (!st.isDirectory()) {
      await chmod(dest, st.mode & 0o7777);
      await utimes(dest, st.atimeMs / 1000, st.mtimeMs / 1000);
    }
  };

  const top = await vol.lstat(volPath);
  await copyEntry(volPath, hostPath, top);
  // Directory modes and times last: writing children would change them, and a read-only
  // mode would stop us writing the children at all.
  for (const [dest, st] of dirTimes.reverse()) {
    await chmod(dest, st.mode & 0o7777);
    await utimes(dest, st.atimeMs / 1000, st.mtimeMs / 1000);
  }
  return { files: state.files, bytes: state.bytes };
}

export { basename };
