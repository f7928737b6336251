// The engine's export surface: everything the bindings may call. Modules export their
// own functions and on-disk constants; this file only gathers them into one .wasm.
export * from "./mem";
export * from "./crc32c";
export * from "./crc16";
export * from "./bitmap";
export * from "./cache";
export * from "./ondisk/index";
export * from "./csum";
export * from "./geometry";
export * from "./groups";
export * from "./mkfs_plan";
export * from "./mkfs_emit";
export * from "./super";
export * from "./inode";
export * from "./extents";
export * from "./indirect";
export * from "./htree_hash";
export * from "./dir";
export * from "./htree";
export * from "./inode_write";
export * from "./dir_mod";
export * from "./extents_mod";
export * from "./balloc";
export * from "./ialloc";
