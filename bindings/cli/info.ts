/** `ext4-wasm info IMAGE`: features, sizes, free counts and per-group flags. */
import { parse, UsageError, formatBytes } from "./args.ts";
import { openImage } from "./image.ts";

export async function run(argv: string[]): Promise<void> {
  const { values: v, positionals } = parse({
    args: argv,
    allowPositionals: true,
    options: { groups: { type: "boolean", short: "g" }, json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (v.help) return void console.log("usage: ext4-wasm info [--groups] [--json] IMAGE");
  if (positionals.length !== 1) throw new UsageError("usage: ext4-wasm info [--groups] [--json] IMAGE");
  const image = positionals[0]!.replace(/:$/, "");
  const { vol, close } = await openImage(image);
  try {
    const i = await vol.info();
    if (v.json) return void console.log(JSON.stringify(i, null, 2));
    const bytes = i.blocksCount * i.blockSize;
    const lines = [
      `Volume:        ${i.label || "<no label>"}  UUID ${i.uuid}  (${i.state.join(", ")})`,
      `Features:      ${i.features.join(" ")}`,
      `Size:          ${formatBytes(bytes)}: ${i.blocksCount} blocks of ${i.blockSize} bytes, ${i.groups} groups of ${i.blocksPerGroup} blocks${i.flexBgSize > 1 ? `, flex_bg ${i.flexBgSize}` : ""}`,
      `Free:          ${i.freeBlocks} blocks (${formatBytes(i.freeBlocks * i.blockSize)}, ${i.reservedBlocks} reserved), ${i.freeInodes} of ${i.inodesCount} inodes`,
      `Inodes:        ${i.inodeSize} bytes, ${i.inodesPerGroup} per group; journal inode ${i.journalInode || "none"}`,
      `Inode tables:  ${i.unzeroedInodeTables} of ${i.groups} not yet zeroed (lazy init)`,
      `Created:       ${i.created?.toISOString() ?? "?"}   last written ${i.lastWritten?.toISOString() ?? "?"}   last mounted ${i.lastMounted?.toISOString() ?? "never"}`,
    ];
    const byFlags = new Map<string, number>();
    for (const g of i.groupsSummary) {
      const k = g.flags.join(",") || "(none)";
      byFlags.set(k, (byFlags.get(k) ?? 0) + 1);
    }
    lines.push(`Group flags:   ${[...byFlags].map(([k, n]) => `${n} × ${k}`).join("; ")}`);
    if (v.groups) {
      for (const g of i.groupsSummary) {
        lines.push(`  group ${g.group}: ${g.freeBlocks} free blocks, ${g.freeInodes} free inodes, ${g.usedDirs} dirs, ${g.itableUnused} unused inodes, bitmaps ${g.blockBitmap}/${g.inodeBitmap}, table ${g.inodeTable}${g.flags.length ? ` [${g.flags.join(", ")}]` : ""}`);
      }
    }
    for (const w of i.warnings) lines.push(`Warning:       ${w}`);
    console.log(lines.join("\n"));
  } finally {
    await close();
  }
}
