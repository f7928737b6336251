/** `ext4-wasm mkfs IMAGE [SIZE]`: format a file (created sparse) as ext4, like mke2fs. */
import { stat } from "node:fs/promises";
import { FileDevice } from "../devices/node-file.ts";
import { mkfs, type MkfsOptions } from "../mkfs.ts";
import { parse, parseSize, parseIntOpt, formatBytes, UsageError } from "./args.ts";

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
  -q, --quiet                   print nothing on success`;

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
    console.log(lines.join("\n"));
  } finally {
    await dev.close();
  }
}
