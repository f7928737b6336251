// PLACEHOLDER (bit at a time) — to be replaced by 64-bit-word implementations.
// Bitmaps use ext4's bit order: bit i lives in byte i >> 3 at bit position i & 7.
// Ranges are half-open [start, end); "not found" is -1.
export function bitmapTest(ptr: usize, bit: u32): bool {
  return ((load<u8>(ptr + (bit >>> 3)) >>> (bit & 7)) & 1) != 0;
}
export function bitmapFindZero(ptr: usize, start: u32, end: u32): i32 {
  for (let b = start; b < end; b++) if (!bitmapTest(ptr, b)) return <i32>b;
  return -1;
}
export function bitmapFindSet(ptr: usize, start: u32, end: u32): i32 {
  for (let b = start; b < end; b++) if (bitmapTest(ptr, b)) return <i32>b;
  return -1;
}
export function bitmapSetRange(ptr: usize, start: u32, count: u32): void {
  for (let b = start; b < start + count; b++) store<u8>(ptr + (b >>> 3), <u8>(<u32>load<u8>(ptr + (b >>> 3)) | (1 << (b & 7))));
}
export function bitmapClearRange(ptr: usize, start: u32, count: u32): void {
  for (let b = start; b < start + count; b++) store<u8>(ptr + (b >>> 3), <u8>(<u32>load<u8>(ptr + (b >>> 3)) & ~(1 << (b & 7))));
}
export function bitmapCount(ptr: usize, start: u32, end: u32): u32 {
  let n: u32 = 0;
  for (let b = start; b < end; b++) if (bitmapTest(ptr, b)) n++;
  return n;
}
