// PLACEHOLDER (bitwise, slow) — to be replaced by a table-driven implementation.
// Contract: CRC-16 (ANSI/IBM, reflected polynomial 0xA001) update with Linux crc16()
// semantics: no pre/post inversion. ext4 gdt_csum seeds it with 0xFFFF.
export function crc16Update(crc: u32, ptr: usize, len: usize): u32 {
  crc &= 0xFFFF;
  for (let i: usize = 0; i < len; i++) {
    crc ^= <u32>load<u8>(ptr + i);
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xA001 & (0 - (crc & 1)));
  }
  return crc & 0xFFFF;
}
