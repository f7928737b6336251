/**
 * The runtime-neutral public API. Runtime entry files (node.ts, browser.ts, deno/mod.ts)
 * re-export all of this and add their device types and the engine loader.
 */
export { FsError, isFsError, ERRNO } from "./fs/errors.ts";
export type { ErrorCode } from "./fs/errors.ts";
export type { BlockDevice } from "./devices/types.ts";
export { setEngineSource } from "./wasm.ts";
export { MemoryDevice } from "./devices/memory.ts";
export { FaultyDevice } from "./devices/faulty.ts";
export { mkfs, defaultJournalBlocks } from "./mkfs.ts";
export type { MkfsOptions, MkfsResult } from "./mkfs.ts";
export { mount, Volume } from "./fs/volume.ts";
export type { MountOptions, StatFs } from "./fs/volume.ts";
export { Stats, Dirent } from "./fs/stats.ts";
export { FileHandle } from "./fs/file.ts";
export { FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE } from "./fs/fallocate.ts";
export type { VolumeInfo, GroupSummary } from "./fs/info.ts";
export { lazyInitScheduler } from "./sched/lazyinit.ts";
export type { SchedulerState } from "./sched/lazyinit.ts";
export type { LazyInitStats } from "./fs/itable_init.ts";
export type { LazyInitProgress, VolumeEventMap } from "./fs/events.ts";
