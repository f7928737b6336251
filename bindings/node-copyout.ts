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
 * times (to the microsecond Node can set, before 1970 too), hard links within the tree,
 * and ownership when running as root. Device nodes, FIFOs and sockets cannot be made
 * from Node; they are reported through onSkip and left out. A directory gets its mode and
 * times once all its children are written — writing them would change the times, and a
 * read-only mode would stop the writing — so memory holds only the directories on the
 * current path.
 *
 * Host calls are synchronous, engine reads are not (host-io.ts says why): extracting the
 * bench's 430 MiB / 2,000-file tree through promise calls took ~3× `debugfs rdump`.
 */
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, chmodSync, openSync, symlinkSync, utimesSync, writeSync } from "node:fs";
import { join, basename } from "node:path";
import type { Volume } from "./fs/volume.ts";
import type { Stats } from "./fs/stats.ts";
import { FsError } from "./fs/errors.ts";
import { runningAsRoot } from "./host-root.ts";
import { hostError, hostSync, turnTaker } from "./host-io.ts";

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

/**
 * A time for utimes, as a numeric string of seconds: Node replaces a negative *number*
 * with "now" but passes a numeric string through (times before 1970 exist in images).
 * libuv then cuts the double to whole microseconds toward zero, off by a float error of
 * ~0.1 µs; so the value aims at the middle of the microsecond wanted, on the side away
 * from zero, and lands in it.
 */
function seconds(ns: bigint): string {
  const us = ns / 1000n - (ns < 0n && ns % 1000n !== 0n ? 1n : 0n);
  return String((Number(us) + (us < 0n ? -0.5 : 0.5)) / 1e6);
}

/** Copy volPath (file, symlink or directory tree) to hostPath on the host. */
export async function copyOut(vol: Volume, volPath: string, hostPath: string, opts: CopyOutOptions = {}): Promise<{ files: number; bytes: number }> {
  const state = { files: 0, bytes: 0, links: new Map<number, string>() };
  const buf = new Uint8Array(CHUNK); // one buffer for every file: no per-file allocation
  const asRoot = runningAsRoot();
  const breathe = turnTaker();

  /** Owner, mode and times of a finished directory: after its children (see the header). */
  const finishDir = (dest: string, st: Stats) => {
    if (asRoot) hostSync(dest, "lchown", () => lchownSync(dest, st.uid, st.gid));
    hostSync(dest, "chmod", () => chmodSync(dest, st.mode & 0o7777));
    hostSync(dest, "utime", () => utimesSync(dest, seconds(st.atimeNs), seconds(st.mtimeNs)));
  };

  const copyFile = async (src: string, dest: string, st: Stats): Promise<void> => {
    const fd = hostSync(dest, "open", () => openSync(dest, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
    try {
      const from = await vol.open(src, "r");
      try {
        let pos = 0;
        for (;;) {
          await breathe();
          const { bytesRead } = await from.read(buf, 0, CHUNK, pos);
          if (bytesRead === 0) break;
          for (let done = 0; done < bytesRead; ) done += hostSync(dest, "write", () => writeSync(fd, buf, done, bytesRead - done, pos + done));
          pos += bytesRead;
        }
        state.bytes += pos;
      } finally {
        await from.close();
      }
      // Through the descriptor: no second path lookup, nothing to race with. Owner
      // first, since a chown clears setuid/setgid.
      if (asRoot) hostSync(dest, "fchown", () => fchownSync(fd, st.uid, st.gid));
      hostSync(dest, "fchmod", () => fchmodSync(fd, st.mode & 0o7777));
      hostSync(dest, "futime", () => futimesSync(fd, seconds(st.atimeNs), seconds(st.mtimeNs)));
    } finally {
      // close reports write-back errors on some hosts (NFS): they are this copy's errors.
      hostSync(dest, "close", () => closeSync(fd));
    }
  };

  const copyEntry = async (src: string, dest: string, st: Stats): Promise<void> => {
    await breathe();
    if (st.isDirectory()) {
      try {
        mkdirSync(dest, { mode: 0o700 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw hostError(e, dest, "mkdir");
        if (!hostSync(dest, "lstat", () => lstatSync(dest)).isDirectory()) {
          throw new FsError("EEXIST", `${dest} exists and is not a directory`, { syscall: "mkdir", path: dest });
        }
      }
      for (const name of await vol.readdir(src)) {
        const child = src.endsWith("/") ? src + name : `${src}/${name}`;
        if (!safeName(name)) {
          opts.onSkip?.(child, "unsafe name");
          continue;
        }
        await copyEntry(child, join(dest, name), await vol.lstat(child));
      }
      finishDir(dest, st);
    } else if (st.isSymbolicLink()) {
      const target = await vol.readlink(src);
      hostSync(dest, "symlink", () => symlinkSync(target, dest));
      // Best effort, as cp -a: not every host lets a symlink's owner or times be set.
      try {
        lutimesSync(dest, seconds(st.atimeNs), seconds(st.mtimeNs));
        if (asRoot) lchownSync(dest, st.uid, st.gid);
      } catch {}
    } else if (st.isFile()) {
      const first = st.nlink > 1 ? state.links.get(st.ino) : undefined;
      if (first) {
        hostSync(dest, "link", () => linkSync(first, dest));
        return;
      }
      await copyFile(src, dest, st);
      if (st.nlink > 1) state.links.set(st.ino, dest);
      state.files++;
      opts.onProgress?.({ files: state.files, bytes: state.bytes, path: src });
    } else {
      opts.onSkip?.(src, st.isFIFO() ? "FIFO" : st.isSocket() ? "socket" : "device node");
    }
  };

  await copyEntry(volPath, hostPath, await vol.lstat(volPath));
  return { files: state.files, bytes: state.bytes };
}

export { basename };
