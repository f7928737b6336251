// The engine's export surface: everything the bindings may call. Modules export their
// own functions and on-disk constants; this file only gathers them into one .wasm.
export * from "./mem";
export * from "./crc32c";
export * from "./crc16";
export * from "./bitmap";
