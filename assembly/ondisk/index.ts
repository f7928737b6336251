// The on-disk format, one file per structure. Everything here is a constant: offsets
// within a structure, sizes, flag bits and magic numbers. Importing this module costs
// nothing at run time (the compiler inlines the constants); re-exporting it from
// assembly/index.ts also exports each constant as a Wasm global, which is how the
// bindings and the tests read the same numbers (`engine.constant("SB_MAGIC")`).
export * from "./superblock";
export * from "./group_desc";
export * from "./inode";
export * from "./extent";
export * from "./dirent";
export * from "./dx";
export * from "./jbd2";
export * from "./features";
