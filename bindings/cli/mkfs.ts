/**
 * `ext4-wasm mkfs IMAGE [SIZE] [--from DIR]`: format a file (created sparse) as ext4,
 * like mke2fs; with --from, then fill it from a host directory (like `mke2fs -d`) through
 * copyIn, with a progress bar on a terminal and a summary (counts, bytes, MiB/s, time).
 */
import { stat } from "node:fs/promises";
import { FileDevice } from "../devices/node-file.ts";
import { mkfs, type MkfsOptions } from "../mkfs.ts";
import { mount } from "../fs/volume.ts";
import { copyIn, countTree, writable, type CopyInResult } from "../node-copyin.ts";
import { parse, parseSize, parseIntOpt, formatBytes, UsageError } from "./args.ts";
import { Progress, lazyInitOf } from "./progress.ts";

const HELP = `usage: ext4-wasm mkfs IMAGE [SIZE] [options]

Formats IMAGE as ext4. IMAGE is created (sparse) when missing; SIZE (e.g. 64G) is
required then, and otherwise defaults to the file's size.

options:
  --block-size 1024|2048|4096   block size (default: 1024 below 512 MiB, else 4096)
  --inode-size 128|256          inode size (default 256)
  --inode-ratio BYTES           bytes of volume per inode (default by size, as mke2fs)
  --label TEXT                  volume label (at most 16 bytes)
  --uuid UUID                   filesystem UUID (default: random)
  --reserved-percent N          blocks reserved for root (default 5)
  --flex-bg-size N              groups per flex group, a power of two (default 16; 1 = off)
  --no-lazy-itable-init         zero every inode table now instead of in the background
  --no-journal                  no jbd2 journal
  --no-metadata-csum            crc16 group checksums (uninit_bg) instead of metadata_csum
  --no-64bit                    32-bit block numbers (volumes below 16 TiB / 4 KiB blocks)
  -d, --from DIR                copy DIR's contents into the new filesystem (its root
                                takes DIR's mode, owner and times)
  --owner UID:GID               with --from: owner of every copied file (default: kept
                                when running as root, else 0:0)
  -q, --quiet                   print nothing on success`;

/** Mount the fresh filesystem, copy `from` into its root, unmount (flushes). */
async function populate(dev: FileDevice, from: string, owner: { uid: number; gid: number } | undefined, quiet: boolean): Promise<{ r: CopyInResult; secs: number; skipped: string[] }> {
  const progress = new Progress("populating");
  const totals = progress.enabled && !quiet ? await countTree(from).catch(() => undefined) : undefined;
  const skipped: string[] = [];
  const t0 = performance.now();
  const vol = writable(await mount(dev, {}));
  let r: CopyInResult;
  try {
    r = await copyIn(vol, from, "/", {
      owner,
      preserveOwner: owner ? false : undefined,
      onProgress: (p) => {
        if (quiet) return;
        progress.update({
          files: p.files,
          bytes: p.bytes,
          entries: p.files + p.dirs + p.symlinks + p.hardlinks + p.specials,
          totalEntries: totals?.entries,
          totalBytes: totals?.bytes,
          lazyInit: lazyInitOf(vol),
        });
      },
      onSkip: (p, why) => skipped.push(`${p}: ${why}`),
    });
  } catch (e) {
    progress.done();
    await vol.unmount().catch(() => {});
    throw e;
  }
  await vol.unmount();
  progress.done();
  return { r, secs: (performance.now() - t0) / 1000, skipped };
}

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: {
      "block-size": { type: "string" },
      "inode-size": { type: "string" },
      "inode-ratio": { type: "string" },
      label: { type: "string", short: "L" },
      uuid: { type: "string", short: "U" },
      "reserved-percent": { type: "string", short: "m" },
      "flex-bg-size": { type: "string", short: "G" },
      "no-lazy-itable-init": { type: "boolean" },
      "no-journal": { type: "boolean" },
      "no-metadata-csum": { type: "boolean" },
      "no-64bit": { type: "boolean" },
      from: { type: "string", short: "d" },
      owner: { type: "string" },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (v.help) {
    console.log(HELP);
    return;
  }
  if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`expected IMAGE [SIZE]\n\n${HELP}`);
  const [path, sizeText] = positionals as [string, string | undefined];
  const size = sizeText !== undefined ? parseSize(sizeText) : undefined;
  const opts: MkfsOptions = {
    blockSize: parseIntOpt(v["block-size"], "block size") as MkfsOptions["blockSize"],
    inodeSize: parseIntOpt(v["inode-size"], "inode size") as MkfsOptions["inodeSize"],
    inodeRatio: parseIntOpt(v["inode-ratio"], "inode ratio"),
    label: v.label,
    uuid: v.uuid,
    reservedPercent: v["reserved-percent"] !== undefined ? Number(v["reserved-percent"]) : undefined,
    flexBgSize: parseIntOpt(v["flex-bg-size"], "flex_bg size"),
    lazyItableInit: !v["no-lazy-itable-init"],
    journal: !v["no-journal"],
    metadataCsum: !v["no-metadata-csum"],
    bit64: !v["no-64bit"],
    size,
  };

  let owner: { uid: number; gid: number } | undefined;
  if (v.owner !== undefined) {
    const m = /^(\d+):(\d+)$/.exec(v.owner);
    if (!m) throw new UsageError(`bad --owner '${v.owner}': expected UID:GID`);
    owner = { uid: Number(m[1]), gid: Number(m[2]) };
  }
  if (v.from !== undefined) {
    const src = await stat(v.from).catch(() => undefined);
    if (!src?.isDirectory()) throw new UsageError(`--from ${v.from}: not a directory`);
  } else if (owner) {
    throw new UsageError("--owner needs --from");
  }

  const exists = await stat(path).then(
    (s) => s,
    () => undefined,
  );
  if (!exists && size === undefined) throw new UsageError(`${path} does not exist: give a SIZE to create it`);
  const grow = size !== undefined && (!exists || (exists.isFile() && exists.size < size));
  const t0 = performance.now();
  const dev = await FileDevice.open(path, grow ? { size, create: true } : {});
  try {
    const r = await mkfs(dev, opts);
    const ms = performance.now() - t0;
    const filled = v.from !== undefined ? await populate(dev, v.from, owner, v.quiet === true) : undefined;
    for (const s of filled?.skipped ?? []) console.error(`ext4-wasm mkfs: skipped ${s}`);
    if (v.quiet) return;
    const lines = [
      `Creating filesystem with ${r.blocksCount} ${r.blockSize / 1024}k blocks and ${r.inodesCount} inodes (${formatBytes(r.blocksCount * r.blockSize)})`,
      `Filesystem UUID: ${r.uuid}${r.label ? `   label: ${r.label}` : ""}`,
      `Features: ${r.features.join(" ")}`,
      `${r.groups} block groups of ${r.blocksPerGroup} blocks and ${r.inodesPerGroup} inodes, flex_bg ${r.flexBgSize}`,
    ];
    if (r.backupSuperblocks.length) {
      const shown = r.backupSuperblocks.slice(0, 12).join(", ");
      lines.push(`Superblock backups stored on blocks:\n\t${shown}${r.backupSuperblocks.length > 12 ? `, … (${r.backupSuperblocks.length} in all)` : ""}`);
    }
    lines.push(
      `Inode tables: ${r.lazyItableInit ? "left for lazy initialisation at mount" : "zeroed"}`,
      r.journalBlocks ? `Journal: ${r.journalBlocks} blocks (${formatBytes(r.journalBlocks * r.blockSize)})` : "Journal: none",
      `Free: ${r.freeBlocks} blocks, ${r.freeInodes} inodes; reserved for root: ${r.reservedBlocks} blocks`,
      `Done in ${ms.toFixed(0)} ms: ${r.requests} device requests, ${formatBytes(r.bytesWritten)} written, ${formatBytes(r.bytesZeroed)} zeroed`,
    );
    if (filled) {
      const { r: c, secs } = filled;
      lines.push(
        `Copied from ${v.from}: ${c.files} files, ${c.dirs} directories, ${c.symlinks} symlinks, ${c.hardlinks} hard links${c.specials ? `, ${c.specials} special files` : ""}${c.skipped ? `, ${c.skipped} skipped` : ""}`,
        `  ${formatBytes(c.bytes)} in ${secs.toFixed(2)} s (${formatBytes(Math.round(c.bytes / Math.max(secs, 1e-3)))}/s)`,
      );
    }
    console.log(lines.join("\n"));
  } finally {
    await dev.close();
  }
}
