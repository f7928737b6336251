// Volume geometry: where every group starts, which groups carry superblock backups, how
// big the descriptor table and the inode tables are.
//
// Why a module of its own: mkfs decides the geometry, mount reads it back from a
// superblock, and every allocator, the lazy-init zeroer and the checker-facing code ask
// the same questions ("is block b in group g's superblock backup?"). Answering them in one
// place keeps mkfs and mount from disagreeing about the layout they share.
//
// State: one engine instance serves one volume, so the geometry is a set of module
// globals, written once by `geoSet` (mkfs planning or mount) and read-only afterwards.
//
//   block 0 ........ first_data_block (1 for 1 KiB blocks: block 0 holds the boot sector
//                    and the superblock lives in block 1; 0 otherwise)
//   group g ........ blocks [first_data_block + g*bpg, … + bpg), the last group may be short
//   group g, if it carries a superblock copy (every group without sparse_super; with it
//   group 0, 1 and the powers of 3, 5 and 7):
//                    [superblock][descriptor table: gdt_blocks][reserved GDT: reserved_gdt]

let blockSize: u32 = 4096;
let firstDataBlock: u32 = 0;
let blocksCount: u64 = 0;
let blocksPerGroup: u32 = 32768;
let inodesPerGroup: u32 = 0;
let inodeSize: u32 = 256;
let groupCount: u32 = 0;
let descSize: u32 = 32;
let gdtBlocks: u32 = 0;
let reservedGdtBlocks: u32 = 0;
let itableBlocks: u32 = 0;
let sparseSuper: bool = true;

/** Set the geometry (mkfs planning, mount). Derived values are computed here, once. */
export function geoSet(
  bs: u32,
  firstData: u32,
  blocks: f64,
  bpg: u32,
  ipg: u32,
  isz: u32,
  dsz: u32,
  reservedGdt: u32,
  sparse: bool,
): void {
  blockSize = bs;
  firstDataBlock = firstData;
  blocksCount = <u64>blocks;
  blocksPerGroup = bpg;
  inodesPerGroup = ipg;
  inodeSize = isz;
  descSize = dsz;
  reservedGdtBlocks = reservedGdt;
  sparseSuper = sparse;
  groupCount = <u32>((blocksCount - <u64>firstData + <u64>bpg - 1) / <u64>bpg);
  const perBlock = bs / dsz;
  gdtBlocks = (groupCount + perBlock - 1) / perBlock;
  itableBlocks = <u32>((<u64>ipg * <u64>isz + <u64>bs - 1) / <u64>bs);
}

export function geoBlockSize(): u32 { return blockSize; }
export function geoFirstDataBlock(): u32 { return firstDataBlock; }
export function geoBlocksCount(): f64 { return <f64>blocksCount; }
export function geoBlocksPerGroup(): u32 { return blocksPerGroup; }
export function geoInodesPerGroup(): u32 { return inodesPerGroup; }
export function geoInodeSize(): u32 { return inodeSize; }
export function geoGroupCount(): u32 { return groupCount; }
export function geoDescSize(): u32 { return descSize; }
export function geoGdtBlocks(): u32 { return gdtBlocks; }
export function geoReservedGdtBlocks(): u32 { return reservedGdtBlocks; }
export function geoItableBlocks(): u32 { return itableBlocks; }

/** u64 form for engine-internal callers. */
export function blocksCountU64(): u64 { return blocksCount; }

// True when n is a power of b (n ≥ 1). Loops at most log_b(2^32) times.
function isPowerOf(n: u32, b: u32): bool {
  if (n < 1) return false;
  while (n % b == 0) n /= b;
  return n == 1;
}

/** Whether group g carries a superblock and descriptor-table copy. */
export function groupHasSuper(g: u32): bool {
  if (g <= 1 || !sparseSuper) return true;
  if ((g & 1) == 0) return false;
  return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

/** First block of group g. */
export function groupFirstBlock(g: u32): u64 {
  return <u64>firstDataBlock + <u64>g * <u64>blocksPerGroup;
}

/** Number of blocks in group g (the last group may be shorter). */
export function groupBlockCount(g: u32): u32 {
  const first = groupFirstBlock(g);
  const end = first + <u64>blocksPerGroup;
  return <u32>((end > blocksCount ? blocksCount : end) - first);
}

/** Blocks at the start of group g taken by its superblock copy and descriptor tables. */
export function groupSuperBlocks(g: u32): u32 {
  return groupHasSuper(g) ? 1 + gdtBlocks + reservedGdtBlocks : 0;
}

/** Group that block b belongs to (b ≥ first_data_block). */
export function blockGroup(b: u64): u32 {
  return <u32>((b - <u64>firstDataBlock) / <u64>blocksPerGroup);
}

export function groupFirstBlockF(g: u32): f64 { return <f64>groupFirstBlock(g); }
