/**
 * The superblock as the bindings see it: typed getters over the engine's copy, with
 * offsets taken from the engine's own exported constants (assembly/ondisk/superblock.ts),
 * so the layout is written down exactly once. Plus feature policy: which features this
 * engine can read, which it can write, and the names e2fsprogs uses for them.
 */
import type { Engine } from "../wasm.ts";

type Word = "compat" | "incompat" | "ro_compat";

/** e2fsprogs feature names and the engine constant holding each bit. */
const FEATURES: [Word, string, string][] = [
  ["compat", "dir_prealloc", "FEATURE_COMPAT_DIR_PREALLOC"],
  ["compat", "imagic_inodes", "FEATURE_COMPAT_IMAGIC_INODES"],
  ["compat", "has_journal", "FEATURE_COMPAT_HAS_JOURNAL"],
  ["compat", "ext_attr", "FEATURE_COMPAT_EXT_ATTR"],
  ["compat", "resize_inode", "FEATURE_COMPAT_RESIZE_INODE"],
  ["compat", "dir_index", "FEATURE_COMPAT_DIR_INDEX"],
  ["compat", "lazy_bg", "FEATURE_COMPAT_LAZY_BG"],
  ["compat", "snapshot_bitmap", "FEATURE_COMPAT_EXCLUDE_BITMAP"],
  ["compat", "sparse_super2", "FEATURE_COMPAT_SPARSE_SUPER2"],
  ["compat", "fast_commit", "FEATURE_COMPAT_FAST_COMMIT"],
  ["compat", "stable_inodes", "FEATURE_COMPAT_STABLE_INODES"],
  ["compat", "orphan_file", "FEATURE_COMPAT_ORPHAN_FILE"],
  ["ro_compat", "sparse_super", "FEATURE_RO_COMPAT_SPARSE_SUPER"],
  ["ro_compat", "large_file", "FEATURE_RO_COMPAT_LARGE_FILE"],
  ["ro_compat", "btree_dir", "FEATURE_RO_COMPAT_BTREE_DIR"],
  ["ro_compat", "huge_file", "FEATURE_RO_COMPAT_HUGE_FILE"],
  ["ro_compat", "uninit_bg", "FEATURE_RO_COMPAT_GDT_CSUM"],
  ["ro_compat", "dir_nlink", "FEATURE_RO_COMPAT_DIR_NLINK"],
  ["ro_compat", "extra_isize", "FEATURE_RO_COMPAT_EXTRA_ISIZE"],
  ["ro_compat", "snapshot", "FEATURE_RO_COMPAT_HAS_SNAPSHOT"],
  ["ro_compat", "quota", "FEATURE_RO_COMPAT_QUOTA"],
  ["ro_compat", "bigalloc", "FEATURE_RO_COMPAT_BIGALLOC"],
  ["ro_compat", "metadata_csum", "FEATURE_RO_COMPAT_METADATA_CSUM"],
  ["ro_compat", "replica", "FEATURE_RO_COMPAT_REPLICA"],
  ["ro_compat", "read-only", "FEATURE_RO_COMPAT_READONLY"],
  ["ro_compat", "project", "FEATURE_RO_COMPAT_PROJECT"],
  ["ro_compat", "shared_blocks", "FEATURE_RO_COMPAT_SHARED_BLOCKS"],
  ["ro_compat", "verity", "FEATURE_RO_COMPAT_VERITY"],
  ["ro_compat", "orphan_present", "FEATURE_RO_COMPAT_ORPHAN_PRESENT"],
  ["incompat", "compression", "FEATURE_INCOMPAT_COMPRESSION"],
  ["incompat", "filetype", "FEATURE_INCOMPAT_FILETYPE"],
  ["incompat", "needs_recovery", "FEATURE_INCOMPAT_RECOVER"],
  ["incompat", "journal_dev", "FEATURE_INCOMPAT_JOURNAL_DEV"],
  ["incompat", "meta_bg", "FEATURE_INCOMPAT_META_BG"],
  ["incompat", "extent", "FEATURE_INCOMPAT_EXTENTS"],
  ["incompat", "64bit", "FEATURE_INCOMPAT_64BIT"],
  ["incompat", "mmp", "FEATURE_INCOMPAT_MMP"],
  ["incompat", "flex_bg", "FEATURE_INCOMPAT_FLEX_BG"],
  ["incompat", "ea_inode", "FEATURE_INCOMPAT_EA_INODE"],
  ["incompat", "dirdata", "FEATURE_INCOMPAT_DIRDATA"],
  ["incompat", "metadata_csum_seed", "FEATURE_INCOMPAT_CSUM_SEED"],
  ["incompat", "large_dir", "FEATURE_INCOMPAT_LARGEDIR"],
  ["incompat", "inline_data", "FEATURE_INCOMPAT_INLINE_DATA"],
  ["incompat", "encrypt", "FEATURE_INCOMPAT_ENCRYPT"],
  ["incompat", "casefold", "FEATURE_INCOMPAT_CASEFOLD"],
];

/**
 * Incompatible features the read path understands. Inline data, encryption and casefold
 * are "understood" in the sense that affected inodes are refused one by one with a clear
 * error rather than misread; the rest of such a volume reads normally.
 */
const READABLE_INCOMPAT = [
  "filetype", "needs_recovery", "meta_bg", "extent", "64bit", "mmp", "flex_bg", "ea_inode",
  "metadata_csum_seed", "large_dir", "inline_data", "encrypt", "casefold",
];

const WORD_FIELD: Record<Word, string> = { compat: "SB_FEATURE_COMPAT", incompat: "SB_FEATURE_INCOMPAT", ro_compat: "SB_FEATURE_RO_COMPAT" };

export class Superblock {
  readonly ptr: number;
  private readonly engine: Engine;
  private readonly off = new Map<string, number>();
  /** Feature name → its word's field and bit (has() runs on hot paths). */
  private readonly bits = new Map<string, { field: string; bit: number }>();

  constructor(engine: Engine, ptr: number) {
    this.engine = engine;
    this.ptr = ptr;
  }

  /** Offset of a superblock field by its engine constant name (cached). */
  private o(name: string): number {
    let v = this.off.get(name);
    if (v === undefined) {
      v = this.engine.constant(name);
      this.off.set(name, v);
    }
    return v;
  }
  u8(name: string): number { return this.engine.dv.getUint8(this.ptr + this.o(name)); }
  u16(name: string): number { return this.engine.dv.getUint16(this.ptr + this.o(name), true); }
  u32(name: string): number { return this.engine.dv.getUint32(this.ptr + this.o(name), true); }
  set8(name: string, v: number): void { this.engine.dv.setUint8(this.ptr + this.o(name), v); }
  set16(name: string, v: number): void { this.engine.dv.setUint16(this.ptr + this.o(name), v, true); }
  set32(name: string, v: number): void { this.engine.dv.setUint32(this.ptr + this.o(name), v >>> 0, true); }
  bytes(name: string, len: number): Uint8Array {
    const p = this.ptr + this.o(name);
    return this.engine.u8.slice(p, p + len);
  }
  /** A NUL-padded string field. */
  text(name: string, len: number): string {
    const b = this.bytes(name, len);
    const end = b.indexOf(0);
    return new TextDecoder().decode(end >= 0 ? b.subarray(0, end) : b);
  }

  get compat(): number { return this.u32("SB_FEATURE_COMPAT"); }
  get incompat(): number { return this.u32("SB_FEATURE_INCOMPAT"); }
  get roCompat(): number { return this.u32("SB_FEATURE_RO_COMPAT"); }
  get blockSize(): number { return 1024 << this.u32("SB_LOG_BLOCK_SIZE"); }
  get is64bit(): boolean { return this.has("64bit"); }
  get blocksCount(): number {
    return this.u32("SB_BLOCKS_COUNT_LO") + (this.is64bit ? this.u32("SB_BLOCKS_COUNT_HI") * 2 ** 32 : 0);
  }
  get reservedBlocks(): number {
    return this.u32("SB_R_BLOCKS_COUNT_LO") + (this.is64bit ? this.u32("SB_R_BLOCKS_COUNT_HI") * 2 ** 32 : 0);
  }
  get freeBlocks(): number {
    return this.u32("SB_FREE_BLOCKS_COUNT_LO") + (this.is64bit ? this.u32("SB_FREE_BLOCKS_COUNT_HI") * 2 ** 32 : 0);
  }
  get inodesCount(): number { return this.u32("SB_INODES_COUNT"); }
  get freeInodes(): number { return this.u32("SB_FREE_INODES_COUNT"); }
  get inodeSize(): number { return this.u32("SB_REV_LEVEL") >= 1 ? this.u16("SB_INODE_SIZE") : 128; }
  get firstIno(): number { return this.u32("SB_REV_LEVEL") >= 1 ? this.u32("SB_FIRST_INO") : 11; }
  get uuid(): Uint8Array { return this.bytes("SB_UUID", 16); }
  get label(): string { return this.text("SB_VOLUME_NAME", 16); }
  get lastMounted(): string { return this.text("SB_LAST_MOUNTED", 64); }
  get hashSeed(): Uint8Array { return this.bytes("SB_HASH_SEED", 16); }
  get defHashVersion(): number { return this.u8("SB_DEF_HASH_VERSION"); }
  get flags(): number { return this.u32("SB_FLAGS"); }
  get state(): number { return this.u16("SB_STATE"); }
  get journalInum(): number { return this.u32("SB_JOURNAL_INUM"); }
  get lastOrphan(): number { return this.u32("SB_LAST_ORPHAN"); }
  get orphanFileInum(): number { return this.u32("SB_ORPHAN_FILE_INUM"); }
  get mkfsTime(): number { return this.u32("SB_MKFS_TIME") + this.u8("SB_MKFS_TIME_HI") * 2 ** 32; }
  get writeTime(): number { return this.u32("SB_WTIME") + this.u8("SB_WTIME_HI") * 2 ** 32; }
  get mountTime(): number { return this.u32("SB_MTIME") + this.u8("SB_MTIME_HI") * 2 ** 32; }
  get logGroupsPerFlex(): number { return this.u8("SB_LOG_GROUPS_PER_FLEX"); }

  /** Whether the named feature (e2fsprogs spelling) is set. */
  /** Is the named feature set? Reads the live feature word; the name's bit is looked up once. */
  has(feature: string): boolean {
    let f = this.bits.get(feature);
    if (f === undefined) {
      const e = FEATURES.find(([, n]) => n === feature);
      f = e ? { field: WORD_FIELD[e[0]], bit: this.engine.constant(e[2]) >>> 0 } : { field: "", bit: 0 };
      this.bits.set(feature, f);
    }
    return f.bit !== 0 && (this.u32(f.field) & f.bit) !== 0;
  }

  /** Clear the named feature bit in memory (written with the next superblock write). Caller holds metaLock. */
  clearFeature(feature: string): void {
    const f = FEATURES.find(([, n]) => n === feature);
    if (!f) return;
    const bit = this.engine.constant(f[2]) >>> 0;
    const field = WORD_FIELD[f[0]];
    this.set32(field, (this.u32(field) & ~bit) >>> 0);
  }

  /** Every feature set, by name; unknown bits as "FEATURE_<word>_0x…". */
  features(): string[] {
    const out: string[] = [];
    for (const word of ["compat", "incompat", "ro_compat"] as Word[]) {
      let bits = word === "compat" ? this.compat : word === "incompat" ? this.incompat : this.roCompat;
      for (const [w, name, c] of FEATURES) {
        if (w !== word) continue;
        const bit = this.engine.constant(c) >>> 0;
        if ((bits & bit) !== 0) {
          out.push(name);
          bits = (bits & ~bit) >>> 0;
        }
      }
      for (let b = 0; b < 32; b++) if (bits & (1 << b)) out.push(`FEATURE_${word.toUpperCase()}_0x${(1 << b >>> 0).toString(16)}`);
    }
    return out;
  }

  /** Incompatible features this engine cannot read (names), if any. */
  unreadableFeatures(): string[] {
    return this.features().filter((f) => {
      const entry = FEATURES.find(([, n]) => n === f);
      if (!entry) return f.startsWith("FEATURE_INCOMPAT_");
      return entry[0] === "incompat" && !READABLE_INCOMPAT.includes(f);
    });
  }
}
