// Scratch allocation for the bindings. The module runs on the `stub` runtime: a bump
// allocator with no collector, so every long-lived buffer (the block cache arena, the
// staging area, scratch) is allocated once, at init, through here. The bindings must
// re-create their typed views after any call into this file, since allocation may grow
// memory (bindings/wasm.ts does that in one place).
export function memAlloc(size: usize): usize {
  return heap.alloc(size);
}
export function memFree(ptr: usize): void {
  heap.free(ptr);
}
