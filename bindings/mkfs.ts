/**
 * mkfs: format a BlockDevice as ext4.
 *
 * Division of labour: this file validates the user's options (every bad value becomes an
 * FsError that says what was wrong), picks defaults the way `mke2fs -t ext4` of e2fsprogs
 * 1.47 does (block size, bytes per inode and journal size by volume size), and owns the
 * I/O. The engine (assembly/mkfs_plan.ts, mkfs_emit.ts) decides the layout and renders
 * the blocks.
 *
 * I/O shape: the engine hands back runs of consecutive blocks; each run is one device
 * request from one of a few staging buffers in Wasm memory, with several in flight. Zero
 * ranges (inode tables when not lazy, the journal body) use `device.zeroout` when the
 * device has it. The primary superblock is written last, after a flush, with the rest of
 * block 0 kept as it was: until then the device does not look like a finished ext4
 * volume, so a crash during mkfs cannot leave a half-written one that mounts.
 */
import type { BlockDevice } from "./devices/types.ts";
import { Engine } from "./wasm.ts";
import { FsError } from "./fs/errors.ts";

export interface MkfsOptions {
  blockSize?: 1024 | 2048 | 4096;
  inodeSize?: 128 | 256;
  /** Bytes of volume per inode (mke2fs -i). */
  inodeRatio?: number;
  label?: string;
  uuid?: string;
  lazyItableInit?: boolean;
  journal?: boolean;
  metadataCsum?: boolean;
  bit64?: boolean;
  reservedPercent?: number;
  flexBgSize?: number;
  /** Bytes of the device to use (default: all of it). */
  size?: number;
  /** Journal size in blocks (default: by volume size, as mke2fs). */
  journalBlocks?: number;
  /** Creation time (seconds since the epoch); default now. For reproducible images. */
  timestamp?: number;
}

export interface MkfsResult {
  blockSize: number;
  blocksCount: number;
  inodesCount: number;
  inodeSize: number;
  groups: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeTableBlocks: number;
  firstDataBlock: number;
  reservedBlocks: number;
  freeBlocks: number;
  freeInodes: number;
  journalBlocks: number;
  flexBgSize: number;
  uuid: string;
  label: string;
  features: string[];
  backupSuperblocks: number[];
  lazyItableInit: boolean;
  /** Device requests issued (writes + zeroouts + flushes) and bytes written. */
  requests: number;
  bytesWritten: number;
  bytesZeroed: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
export const MKFS_MIN_BYTES = 4 * MiB;
export const MKFS_MAX_BYTES = 16 * TiB;

const MKFS_METADATA_CSUM = 1;
const MKFS_64BIT = 2;
const MKFS_JOURNAL = 4;
const MKFS_LAZY_ITABLE = 8;

function bad(message: string, code: "EINVAL" | "ENOSPC" = "EINVAL"): FsError {
  return new FsError(code, message, { syscall: "mkfs" });
}

/** mke2fs's journal size (blocks) for a volume of `blocks` blocks; 0 = too small for one. */
export function defaultJournalBlocks(blocks: number): number {
  const K = 1024;
  if (blocks < 2048) return 0;
  if (blocks < 32 * K) return 1024;
  if (blocks < 256 * K) return 4096;
  if (blocks < 512 * K) return 8192;
  if (blocks < 4096 * K) return 16384;
  if (blocks < 8192 * K) return 32768;
  if (blocks < 16384 * K) return 65536;
  if (blocks < 32768 * K) return 131072;
  return 262144;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function parseUuid(s: string): Uint8Array {
  if (!UUID_RE.test(s)) throw bad(`bad UUID '${s}': expected the form 01234567-89ab-cdef-0123-456789abcdef`);
  const hex = s.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function formatUuid(b: Uint8Array): string {
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A random RFC 4122 version-4 UUID. */
function randomUuid(): Uint8Array {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  return b;
}

function checkBool(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "boolean") throw bad(`${name} must be a boolean, got ${typeof v}`);
}

interface Resolved {
  size: number;
  blockSize: number;
  inodeSize: number;
  inodeRatio: number;
  label: Uint8Array;
  labelText: string;
  uuid: Uint8Array;
  lazy: boolean;
  journal: boolean;
  csum: boolean;
  bit64: boolean;
  reservedPercent: number;
  flex: number;
  journalBlocks: number | undefined;
  timestamp: number;
}

/** Validate options against the device and fill in defaults. */
function resolve(device: BlockDevice, o: MkfsOptions): Resolved {
  if (o === null || typeof o !== "object") throw bad("options must be an object");
  const devSize = device.size;
  const size = o.size ?? devSize;
  if (!Number.isSafeInteger(size) || size <= 0) throw bad(`bad size ${String(o.size)}: expected a positive whole number of bytes`);
  if (size > devSize) {
    throw bad(`asked for ${size} bytes but the device holds only ${devSize}`, "ENOSPC");
  }
  if (size < MKFS_MIN_BYTES) throw bad(`a ${size}-byte volume is too small: ext4-wasm formats at least 4 MiB`, "ENOSPC");
  if (size > MKFS_MAX_BYTES) throw bad(`a ${size}-byte volume is too large: ext4-wasm formats at most 16 TiB`);

  const small = size < 512 * MiB;
  const blockSize = o.blockSize ?? (small ? 1024 : 4096);
  if (![1024, 2048, 4096].includes(blockSize)) throw bad(`bad block size ${String(o.blockSize)}: expected 1024, 2048 or 4096`);
  const inodeSize = o.inodeSize ?? 256;
  if (![128, 256].includes(inodeSize)) throw bad(`bad inode size ${String(o.inodeSize)}: expected 128 or 256`);
  const inodeRatio = o.inodeRatio ?? (small ? 4096 : size >= 16 * TiB ? 65536 : size >= 4 * TiB ? 32768 : 16384);
  if (!Number.isSafeInteger(inodeRatio) || inodeRatio < 1024 || inodeRatio > 64 * MiB) {
    throw bad(`bad inode ratio ${String(o.inodeRatio)}: expected bytes per inode between 1024 and 67108864`);
  }
  for (const k of ["lazyItableInit", "journal", "metadataCsum", "bit64"] as const) checkBool(k, o[k]);

  const labelText = o.label ?? "";
  if (typeof labelText !== "string") throw bad("label must be a string");
  const label = new TextEncoder().encode(labelText);
  if (label.length > 16) throw bad(`label '${labelText}' is ${label.length} bytes; the limit is 16`);
  if (label.includes(0)) throw bad("label must not contain NUL characters");

  let uuid: Uint8Array;
  if (o.uuid === undefined || o.uuid === "random") uuid = randomUuid();
  else if (typeof o.uuid !== "string") throw bad("uuid must be a string");
  else uuid = parseUuid(o.uuid);

  const reservedPercent = o.reservedPercent ?? 5;
  if (typeof reservedPercent !== "number" || !(reservedPercent >= 0 && reservedPercent <= 50)) {
    throw bad(`bad reserved percentage ${String(o.reservedPercent)}: expected 0 to 50`);
  }
  const flex = o.flexBgSize ?? 16;
  if (!Number.isSafeInteger(flex) || flex < 1 || flex > 65536 || (flex & (flex - 1)) !== 0) {
    throw bad(`bad flex_bg size ${String(o.flexBgSize)}: expected a power of two from 1 (no flex_bg) to 65536`);
  }
  const blocks = Math.floor(size / blockSize);
  const bit64 = o.bit64 ?? true;
  if (!bit64 && blocks > 0xffffffff) {
    throw bad(`${blocks} blocks need the 64bit feature (bit64: true) or a larger block size`);
  }
  if (o.journalBlocks !== undefined) {
    const j = o.journalBlocks;
    if (!Number.isSafeInteger(j) || j < 1024 || j > 10_240_000 || j > blocks / 2) {
      throw bad(`bad journal size ${String(j)} blocks: expected 1024 to 10,240,000 and at most half the volume`);
    }
  }
  const timestamp = o.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp >= 2 ** 34) throw bad(`bad timestamp ${String(o.timestamp)}`);
  return {
    size,
    blockSize,
    inodeSize,
    inodeRatio,
    label,
    labelText,
    uuid,
    lazy: o.lazyItableInit ?? true,
    journal: o.journal ?? true,
    csum: o.metadataCsum ?? true,
    bit64,
    reservedPercent,
    flex,
    journalBlocks: o.journalBlocks,
    timestamp,
  };
}

const PLAN_ERRORS: Record<number, [string, "EINVAL" | "ENOSPC"]> = {
  1: ["the device is too small to hold the filesystem's metadata", "ENOSPC"],
  2: ["the volume has more than 2^32-1 blocks: it needs the 64bit feature", "EINVAL"],
  3: ["the group descriptor table does not fit in one block group: use a larger block size", "EINVAL"],
  4: ["the volume would need 2^32 inodes or more: raise the inode ratio", "EINVAL"],
  5: ["the volume would have too few inodes for the reserved ones: lower the inode ratio", "EINVAL"],
};

const STAGING_BUFFERS = 4;
const STAGING_BYTES = 4 * MiB;
const ZERO_CHUNK = 4 * MiB;

/** Format `device` as ext4. Resolves when everything is written and flushed. */
export async function mkfs(device: BlockDevice, options: MkfsOptions = {}): Promise<MkfsResult> {
  if (!device || typeof device.write !== "function" || typeof device.read !== "function") {
    throw bad("mkfs needs a BlockDevice");
  }
  const o = resolve(device, options);
  const engine = await Engine.create();
  const x = engine.x;
  const bs = o.blockSize;
  const blocks = Math.floor(o.size / bs);
  const jblocks = o.journal ? (o.journalBlocks ?? defaultJournalBlocks(blocks)) : 0;

  const params = engine.call(() => x.mkfsParams()) as number;
  engine.u8.set(o.uuid, params + engine.constant("PARAM_UUID"));
  engine.u8.set(randomUuid(), params + engine.constant("PARAM_HASH_SEED"));
  engine.u8.set(o.label, params + engine.constant("PARAM_LABEL"));
  if (bs > 1024) {
    // Keep whatever the first 1024 bytes hold (boot code, partition table).
    const boot = new Uint8Array(1024);
    await device.read(0, boot);
    engine.u8.set(boot, params + engine.constant("PARAM_BOOT"));
  }

  let flags = 0;
  if (o.csum) flags |= MKFS_METADATA_CSUM;
  if (o.bit64) flags |= MKFS_64BIT;
  if (jblocks > 0) flags |= MKFS_JOURNAL;
  if (o.lazy) flags |= MKFS_LAZY_ITABLE;
  const rc = engine.call(() =>
    x.mkfsPlan(blocks, bs, o.inodeSize, o.inodeRatio, o.flex, o.reservedPercent, jblocks, flags, o.timestamp),
  ) as number;
  if (rc < 0) {
    const [msg, code] = PLAN_ERRORS[-rc] ?? [`layout failed (reason ${-rc})`, "EINVAL" as const];
    throw bad(msg, code);
  }
  engine.call(() => x.mkfsRunInit());
  engine.call(() => x.mkfsHoldPrimary(1));

  const stagingBlocks = Math.max(1, Math.floor(STAGING_BYTES / bs));
  const staging: number[] = [];
  for (let i = 0; i < STAGING_BUFFERS; i++) staging.push(engine.alloc(stagingBlocks * bs));

  let requests = 0;
  let bytesWritten = 0;
  let bytesZeroed = 0;
  const inflight = new Set<Promise<void>>();
  const free = [...staging];
  let failure: unknown;
  const track = (p: Promise<void>, buf?: number) => {
    const t = p.then(
      () => {
        inflight.delete(t);
        if (buf !== undefined) free.push(buf);
      },
      (e) => {
        inflight.delete(t);
        failure ??= e;
      },
    );
    inflight.add(t);
  };

  let zeroBuf: Uint8Array | undefined;
  const zeroRange = async (offset: number, length: number): Promise<void> => {
    if (device.zeroout) return device.zeroout(offset, length);
    zeroBuf ??= new Uint8Array(ZERO_CHUNK);
    for (let done = 0; done < length; done += ZERO_CHUNK) {
      const n = Math.min(ZERO_CHUNK, length - done);
      await device.write(offset + done, zeroBuf.subarray(0, n));
    }
  };

  while (failure === undefined) {
    while (free.length === 0 || inflight.size >= STAGING_BUFFERS) await Promise.race(inflight);
    if (failure !== undefined) break;
    const buf = free.pop()!;
    const kind = engine.call(() => x.mkfsRunNext(buf, stagingBlocks)) as number;
    if (kind === 0) {
      free.push(buf);
      break;
    }
    const start = (x.mkfsRunStartBlock() as number) * bs;
    const len = (x.mkfsRunBlockCount() as number) * bs;
    requests++;
    if (kind === 1) {
      bytesWritten += len;
      track(device.write(start, engine.bytes(buf, len)), buf);
    } else {
      free.push(buf);
      bytesZeroed += len;
      track(zeroRange(start, len));
    }
  }
  await Promise.all(inflight);
  if (failure !== undefined) throw wrapDeviceError(failure);

  // Everything else is on the device: now the primary superblock, then a barrier.
  await device.flush();
  const buf = staging[0]!;
  const primary = engine.call(() => x.mkfsPrimaryBlock(buf)) as number;
  const primaryOffset = primary * bs;
  await device.write(primaryOffset, engine.bytes(buf, bs));
  await device.flush();
  requests += 3;
  bytesWritten += bs;

  const groups = x.geoGroupCount() as number;
  const backups: number[] = [];
  for (let g = 1; g < groups; g++) if (x.groupHasSuper(g)) backups.push(x.groupFirstBlockF(g) as number);
  const features = ["ext_attr", "dir_index", "filetype", "extent"];
  if (jblocks > 0) features.unshift("has_journal");
  if (o.bit64) features.push("64bit");
  if (o.flex > 1) features.push("flex_bg");
  features.push("sparse_super", "large_file", "huge_file", "dir_nlink");
  if (o.inodeSize > 128) features.push("extra_isize");
  features.push(o.csum ? "metadata_csum" : "uninit_bg");
  const ipg = x.geoInodesPerGroup() as number;
  return {
    blockSize: bs,
    blocksCount: x.geoBlocksCount() as number,
    inodesCount: ipg * groups,
    inodeSize: o.inodeSize,
    groups,
    blocksPerGroup: x.geoBlocksPerGroup() as number,
    inodesPerGroup: ipg,
    inodeTableBlocks: x.geoItableBlocks() as number,
    firstDataBlock: x.geoFirstDataBlock() as number,
    reservedBlocks: x.mkfsReservedBlocks() as number,
    freeBlocks: x.mkfsFreeBlocks() as number,
    freeInodes: x.mkfsFreeInodes() as number,
    journalBlocks: jblocks,
    flexBgSize: o.flex,
    uuid: formatUuid(o.uuid),
    label: o.labelText,
    features,
    backupSuperblocks: backups,
    lazyItableInit: o.lazy,
    requests,
    bytesWritten,
    bytesZeroed,
  };
}

function wrapDeviceError(e: unknown): FsError {
  if (e instanceof FsError) return e;
  return new FsError("EIO", `device request failed: ${e instanceof Error ? e.message : String(e)}`, {
    syscall: "mkfs",
    cause: e,
  });
}
