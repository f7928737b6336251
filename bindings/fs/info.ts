/**
 * A volume's vital statistics, for `ext4-wasm info` and tools: features, sizes, free
 * counts, and per-group flags and counts (what `dumpe2fs` shows, condensed).
 */
import type { Volume } from "./volume.ts";

export interface GroupSummary {
  group: number;
  flags: string[];
  freeBlocks: number;
  freeInodes: number;
  usedDirs: number;
  itableUnused: number;
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
}

export interface VolumeInfo {
  label: string;
  uuid: string;
  features: string[];
  state: string[];
  blockSize: number;
  blocksCount: number;
  freeBlocks: number;
  reservedBlocks: number;
  inodesCount: number;
  freeInodes: number;
  inodeSize: number;
  groups: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  flexBgSize: number;
  journalInode: number;
  created: Date | null;
  lastWritten: Date | null;
  lastMounted: Date | null;
  /** Groups whose inode table is not flagged zeroed (lazy init still to do). */
  unzeroedInodeTables: number;
  groupsSummary: GroupSummary[];
  warnings: string[];
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const uuidText = (b: Uint8Array) => {
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const date = (s: number) => (s > 0 ? new Date(s * 1000) : null);

export function volumeInfo(vol: Volume): VolumeInfo {
  const { sb, engine } = vol;
  const x = engine.x;
  const c = (n: string) => engine.constant(n);
  const flagNames: [number, string][] = [
    [c("BG_INODE_UNINIT"), "INODE_UNINIT"],
    [c("BG_BLOCK_UNINIT"), "BLOCK_UNINIT"],
    [c("BG_INODE_ZEROED"), "ITABLE_ZEROED"],
  ];
  const groupCsum = x.sbFeatureGroupCsum(sb.ptr) !== 0;
  const groups: GroupSummary[] = [];
  let unzeroed = 0;
  for (let g = 0; g < vol.groups; g++) {
    const f = x.groupFlags(g) as number;
    if (groupCsum && (f & c("BG_INODE_ZEROED")) === 0) unzeroed++;
    groups.push({
      group: g,
      flags: flagNames.filter(([bit]) => f & bit).map(([, n]) => n),
      freeBlocks: x.groupFreeBlocks(g) as number,
      freeInodes: x.groupFreeInodes(g) as number,
      usedDirs: x.groupUsedDirs(g) as number,
      itableUnused: x.groupItableUnused(g) as number,
      blockBitmap: x.groupBlockBitmapF(g) as number,
      inodeBitmap: x.groupInodeBitmapF(g) as number,
      inodeTable: x.groupInodeTableF(g) as number,
    });
  }
  const state: string[] = [];
  if (sb.state & 1) state.push("clean");
  else state.push("not clean");
  if (sb.state & 2) state.push("with errors");
  if (sb.state & 4) state.push("orphans being recovered");
  return {
    label: sb.label,
    uuid: uuidText(sb.uuid),
    features: sb.features(),
    state,
    blockSize: vol.blockSize,
    blocksCount: sb.blocksCount,
    freeBlocks: sb.freeBlocks,
    reservedBlocks: sb.reservedBlocks,
    inodesCount: sb.inodesCount,
    freeInodes: sb.freeInodes,
    inodeSize: sb.inodeSize,
    groups: vol.groups,
    blocksPerGroup: x.geoBlocksPerGroup() as number,
    inodesPerGroup: x.geoInodesPerGroup() as number,
    flexBgSize: sb.has("flex_bg") ? 2 ** sb.logGroupsPerFlex : 1,
    journalInode: sb.has("has_journal") ? sb.journalInum : 0,
    created: date(sb.mkfsTime),
    lastWritten: date(sb.writeTime),
    lastMounted: date(sb.mountTime),
    unzeroedInodeTables: groupCsum ? unzeroed : 0,
    groupsSummary: groups,
    warnings: [...vol.warnings],
  };
}
