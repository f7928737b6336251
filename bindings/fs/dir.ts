/**
 * Directories, read side: looking a name up and listing entries.
 *
 * Blocks come from the block cache; the engine checks and walks each block in one call
 * (assembly/dir.ts), and for indexed directories hashes the name and picks the leaf
 * (assembly/htree_hash.ts, htree.ts), so a lookup in a 50,000-entry directory reads the
 * root, at most two index nodes and one or two leaves instead of every block.
 *
 * Corruption policy: a bad block makes the operation that needs it fail with
 * EFSCORRUPTED — but a lookup that finds its name in another, valid block still succeeds,
 * and a damaged index falls back to scanning the leaves (they are ordinary directory
 * blocks). "Not found" is only answered when every block was readable.
 *
 * Refused: lookups in encrypted directories (names on disk are ciphertext) and in
 * casefolded ones (matching needs Unicode folding), with EOPNOTSUPP; casefolded
 * directories can still be listed.
 *
 * Lookups are synchronous over resident blocks (`lookupResident`; see Missing in
 * cache.ts): a path walk through cached directories costs no promise. Whatever that
 * cannot answer without I/O — or answers with an error, whose handling (a linear scan
 * past a damaged index, the first error after every block was tried) belongs to the
 * full lookup — is left to `lookup`, which reads what is missing.
 */
import { FsError } from "./errors.ts";
import type { Inode } from "./inode.ts";
import type { Volume } from "./volume.ts";
import { htreeFind } from "./htree.ts";
import { dcacheOf, type MissProbe } from "./dcache.ts";
import { Missing, type CacheRef } from "../cache.ts";

/** Where a linear lookup resumes after reading a block it missed, and what it met so far. */
interface LinearScan {
  lblk: number;
  firstError?: FsError;
}

export interface DirEntry {
  name: string;
  ino: number;
  type: number;
}

const decoder = new TextDecoder();
const OUT_CAP = 16 << 10;
/** Directory blocks a listing reads per device request. */
const DIR_READAHEAD = 32;

export class Directories {
  private readonly vol: Volume;
  private readonly name: number;
  private readonly out: number;
  private readonly hasTail: boolean;
  private readonly hasFileType: boolean;
  private readonly c: (n: string) => number;

  constructor(vol: Volume) {
    this.vol = vol;
    this.name = vol.engine.alloc(256);
    this.out = vol.engine.alloc(OUT_CAP);
    this.hasTail = vol.sb.has("metadata_csum");
    this.hasFileType = vol.sb.has("filetype");
    const memo = new Map<string, number>();
    this.c = (n) => {
      let v = memo.get(n);
      if (v === undefined) memo.set(n, (v = vol.engine.constant(n)));
      return v;
    };
    vol.engine.x.dirSetInodeLimit(vol.sb.inodesCount);
  }

  private corrupt(dir: Inode, why: string, syscall = "lookup"): FsError {
    return new FsError("EFSCORRUPTED", `directory inode ${dir.ino}: ${why}`, { syscall });
  }

  private flag(inode: Inode, name: string): boolean {
    return (inode.flags & (this.c(name) >>> 0)) !== 0;
  }

  /** Blocks of a directory, checked for a sane size. */
  private blockCount(dir: Inode): number {
    const bs = this.vol.blockSize;
    const n = Math.ceil(dir.size / bs);
    if (n > 2 ** 32) throw this.corrupt(dir, `impossible size ${dir.size}`);
    return n;
  }

  /** Blocks from lblk that are holes (0 when lblk is mapped): a walk skips them at once. */
  private async holeRun(dir: Inode, lblk: number, blocks: number): Promise<number> {
    const m = await this.vol.mapper.map(dir, lblk, blocks - lblk);
    return m.phys < 0 || m.unwritten ? Math.max(1, m.len) : 0;
  }

  /**
   * A listing reads every block: fetch the physically contiguous run from lblk (up to
   * DIR_READAHEAD blocks) in one device request rather than one request per block.
   * Returns the logical blocks covered. Best effort: errors are left to loadBlock.
   */
  private async readAhead(dir: Inode, lblk: number, blocks: number): Promise<number> {
    const m = await this.vol.mapper.map(dir, lblk, Math.min(DIR_READAHEAD, blocks - lblk));
    const n = Math.min(DIR_READAHEAD, blocks - lblk, m.len);
    if (m.phys >= 0 && !m.unwritten && n > 1) await this.vol.cache.readRun(m.phys, n).catch(() => {});
    return Math.max(1, n);
  }

  /**
   * Load directory block lblk (pinned) and verify its checksum tail if it has one and it
   * was not verified since it was read. Returns undefined for a hole.
   */
  private loadBlock(dir: Inode, lblk: number, syscall: string): Promise<CacheRef | undefined> {
    return this.vol.cache.resident(() => this.loadResident(dir, lblk, syscall));
  }

  /** loadBlock over resident blocks: the pinned block, undefined for a hole, or Missing. */
  private loadResident(dir: Inode, lblk: number, syscall: string): CacheRef | undefined | Missing {
    const phys = this.mapDirBlock(dir, lblk);
    if (phys instanceof Missing) return phys;
    return phys < 0 ? undefined : this.pinDirBlock(dir, lblk, phys, syscall);
  }

  /** Physical block of dir's block lblk, -1 for a hole or unwritten block, or Missing (htree.ts DirBlockSource). */
  mapDirBlock(dir: Inode, lblk: number): number | Missing {
    const m = this.vol.mapper.mapResident(dir, lblk, 1);
    if (m instanceof Missing) return m;
    return m.phys < 0 || m.unwritten ? -1 : m.phys;
  }

  /**
   * The resident directory block lblk at phys, pinned, its leaf checksum verified; or
   * Missing (htree.ts DirBlockSource). The caller releases it.
   */
  pinDirBlock(dir: Inode, lblk: number, phys: number, syscall: string): CacheRef | Missing {
    const cache = this.vol.cache;
    const ref = cache.peek(phys);
    if (!ref) return new Missing(phys);
    // Verified once per fill from the device (BlockCache.isVerified says why that is safe).
    if (!this.hasTail || cache.isVerified(ref, dir.ino, dir.generation)) return ref;
    const x = this.vol.engine.x;
    if (x.dirBlockHasTail(ref.ptr)) {
      if (!x.dirBlockCsumVerify(ref.ptr, dir.ino, dir.generation)) {
        cache.release(ref);
        throw this.corrupt(dir, `block ${lblk} checksum mismatch`, syscall);
      }
      cache.markVerified(ref, dir.ino, dir.generation);
    }
    // No leaf tail: an htree index block, whose dx tail htree.ts verifies (and records).
    return ref;
  }

  /** The inode number `name` (bytes) refers to in dir, or 0 when there is none. Any caller. */
  async lookup(dir: Inode, name: Uint8Array): Promise<number> {
    const fast = this.lookupResident(dir, name);
    if (fast !== undefined) return fast;
    if (this.vol.sb.has("dir_index") && this.flag(dir, "INODE_FL_INDEX")) {
      const hit = await this.htreeLookup(dir, name).catch((e) => {
        // A damaged index: the leaves may still be fine, scan them.
        if (e instanceof FsError && e.code === "EFSCORRUPTED") return undefined;
        throw e;
      });
      if (hit !== undefined) return hit;
    }
    return this.linearLookup(dir, name);
  }

  /**
   * lookup() without waiting, for the path walk: the answer when every block it needs is
   * resident and nothing is wrong with them, else undefined (then call lookup, which
   * reads, and reports or works around damage). Throws lookup's refusals. Any caller.
   */
  lookupResident(dir: Inode, name: Uint8Array): number | undefined {
    if (this.flag(dir, "INODE_FL_ENCRYPT")) throw new FsError("EOPNOTSUPP", "encrypted directories are not supported", { syscall: "lookup" });
    if (this.flag(dir, "INODE_FL_CASEFOLD")) throw new FsError("EOPNOTSUPP", "lookups in casefolded directories are not supported", { syscall: "lookup" });
    if (this.vol.inodeHasInlineData(dir)) throw new FsError("EOPNOTSUPP", "inline-data directories are not supported", { syscall: "lookup" });
    if (name.length === 0 || name.length > 255) return 0;
    try {
      if (this.flag(dir, "INODE_FL_INDEX") && this.vol.sb.has("dir_index")) {
        const hit = this.htreeStep(dir, name);
        if (hit instanceof Missing) return undefined;
        if (hit !== undefined) return hit;
      }
      const r = this.linearStep(dir, name, { lblk: 0 });
      return r instanceof Missing ? undefined : r;
    } catch (e) {
      if (e instanceof FsError && e.code === "EFSCORRUPTED") return undefined; // lookup() knows what to do
      throw e;
    }
  }

  /**
   * Scan the blocks from st.lblk for the name: its inode number, 0 when no block holds
   * it, or Missing (st.lblk is then the block to resume at). A corrupt block is
   * remembered and skipped; it is thrown only if no block had the name.
   */
  private linearStep(dir: Inode, name: Uint8Array, st: LinearScan): number | Missing {
    const x = this.vol.engine.x;
    const nameLen = name.length;
    // Into engine memory at every step: another lookup may have used the buffer while
    // this one waited for a block.
    this.vol.engine.u8.set(name, this.name);
    const bs = this.vol.blockSize;
    const cache = this.vol.cache;
    const blocks = this.blockCount(dir);
    for (; st.lblk < blocks; st.lblk++) {
      const lblk = st.lblk;
      const m = this.vol.mapper.mapResident(dir, lblk, blocks - lblk);
      if (m instanceof Missing) return m;
      if (m.phys < 0 || m.unwritten) {
        st.lblk += Math.max(1, m.len) - 1;
        continue;
      }
      let ref: CacheRef | Missing;
      try {
        ref = this.pinDirBlock(dir, lblk, m.phys, "lookup");
      } catch (e) {
        if (!(e instanceof FsError) || e.code !== "EFSCORRUPTED") throw e;
        st.firstError ??= e;
        continue;
      }
      if (ref instanceof Missing) return ref;
      try {
        const off = x.dirLookup(ref.ptr, bs, this.name, nameLen, this.hasTail ? 1 : 0, cache.isShaped(ref) ? 1 : 0, 0) as number;
        if (off >= -1) cache.markShaped(ref);
        if (off >= 0) return x.dirEntryInode(ref.ptr, bs, off) >>> 0;
        if (off < -1) st.firstError ??= this.corrupt(dir, `block ${lblk} is malformed (${off})`);
      } finally {
        cache.release(ref);
      }
    }
    if (st.firstError) throw st.firstError;
    return 0;
  }

  /** linearStep until done, reading each block it misses (held pinned for the one step after). */
  private async linearLookup(dir: Inode, name: Uint8Array): Promise<number> {
    const st: LinearScan = { lblk: 0 };
    let held: CacheRef | undefined;
    try {
      for (;;) {
        const r = this.linearStep(dir, name, st);
        if (held) this.vol.cache.release(held);
        held = undefined;
        if (!(r instanceof Missing)) return r;
        held = await this.vol.cache.get(r.blk);
      }
    } finally {
      if (held) this.vol.cache.release(held);
    }
  }

  /** Indexed lookup; undefined when the index cannot be used, so the caller scans linearly. */
  private htreeLookup(dir: Inode, name: Uint8Array): Promise<number | undefined> {
    return this.vol.cache.resident(() => this.htreeStep(dir, name));
  }

  /**
   * One synchronous htree walk for the name (see htreeFind). A miss also records where
   * the name would go, for the insert that usually follows.
   */
  private htreeStep(dir: Inode, name: Uint8Array): number | undefined | Missing {
    // Into engine memory at every walk: another lookup may have used the buffer while
    // this one waited for a block.
    this.vol.engine.u8.set(name, this.name);
    const names = dcacheOf(this.vol.cache);
    const epoch = names.epoch;
    const probe: MissProbe = { dir: dir.ino, gen: dir.generation, name, epoch, hash: 0, version: 0, levels: 0, path: [], leaf: 0, leafPhys: 0, fit: -1 };
    const ino = htreeFind(this.vol, dir, name.length, this.name, this, this.hasTail, probe);
    if (ino === 0 && probe.path.length) names.lastMiss = probe;
    return ino;
  }

  /** Every live entry except '.' and '..', in on-disk order. */
  async list(dir: Inode): Promise<DirEntry[]> {
    if (this.flag(dir, "INODE_FL_ENCRYPT")) throw new FsError("EOPNOTSUPP", "encrypted directories are not supported", { syscall: "scandir" });
    if (this.vol.inodeHasInlineData(dir)) throw new FsError("EOPNOTSUPP", "inline-data directories are not supported", { syscall: "scandir" });
    const x = this.vol.engine.x;
    const bs = this.vol.blockSize;
    const blocks = this.blockCount(dir);
    const out: DirEntry[] = [];
    const u8 = () => this.vol.engine.u8;
    // Blocks up to here were read ahead with the run that started before them.
    let aheadEnd = 0;
    for (let lblk = 0; lblk < blocks; lblk++) {
      const hole = await this.holeRun(dir, lblk, blocks);
      if (hole) {
        lblk += hole - 1;
        continue;
      }
      if (lblk >= aheadEnd) aheadEnd = lblk + (await this.readAhead(dir, lblk, blocks));
      const ref = await this.loadBlock(dir, lblk, "scandir");
      if (!ref) continue;
      try {
        let off = 0;
        const cache = this.vol.cache;
        while (off < bs) {
          const shaped = cache.isShaped(ref) ? 1 : 0;
          const n = x.dirIterate(ref.ptr, bs, off, this.out, OUT_CAP, this.hasTail ? 1 : 0, this.hasFileType ? 1 : 0, shaped) as number;
          if (n < 0) throw this.corrupt(dir, `block ${lblk} is malformed (${n})`, "scandir");
          if (!shaped) cache.markShaped(ref);
          const mem = u8();
          let p = this.out;
          for (let i = 0; i < n; i++) {
            const ino = (mem[p]! | (mem[p + 1]! << 8) | (mem[p + 2]! << 16) | (mem[p + 3]! << 24)) >>> 0;
            const type = mem[p + 4]!;
            const len = mem[p + 5]!;
            const nameBytes = mem.subarray(p + 6, p + 6 + len);
            p += 6 + len;
            if ((len === 1 && nameBytes[0] === 0x2e) || (len === 2 && nameBytes[0] === 0x2e && nameBytes[1] === 0x2e)) continue;
            out.push({ name: decoder.decode(nameBytes), ino, type });
          }
          const next = x.dirIterateNextOffset() >>> 0;
          if (next <= off) throw this.corrupt(dir, `block ${lblk} iteration did not advance`, "scandir");
          off = next;
        }
      } finally {
        this.vol.cache.release(ref);
      }
    }
    return out;
  }
}
