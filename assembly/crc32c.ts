// PLACEHOLDER (bitwise, slow) — to be replaced by a slicing-by-8 implementation.
// Contract: raw CRC-32C update with Linux crc32c() semantics: no pre/post inversion.
// The standard check value is ~crc32cUpdate(~0, "123456789") == 0xE3069283.
export function crc32cUpdate(crc: u32, ptr: usize, len: usize): u32 {
  for (let i: usize = 0; i < len; i++) {
    crc ^= <u32>load<u8>(ptr + i);
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82F63B78 & (0 - (crc & 1)));
  }
  return crc;
}
