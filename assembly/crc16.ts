// CRC-16 for ext4's legacy group-descriptor checksum (`gdt_csum`, the `uninit_bg`
// feature without `metadata_csum`): crc16(~0, uuid) then the group number, then the
// descriptor with its checksum field skipped. Images made by older mke2fs, or with
// metadata_csum turned off, still use it, so we must compute it to mount them and to
// write descriptors they accept.
//
// Semantics are Linux `crc16(crc, buf, len)`: the reflected CRC-16/ARC polynomial
// 0xA001, a raw register update with no inversion. With seed 0 the standard CRC-16/ARC
// check value ("123456789" → 0xBB3D) comes out directly. The register is 16 bits; the
// upper half of the `crc` argument is ignored and the result's upper half is zero.
//
// Inputs are short (a 32- or 64-byte descriptor per call), so the win over a bit loop is
// the table itself; slicing-by-8 on top costs 3.5 KiB more of tables and keeps the
// occasional full descriptor-table pass cheap. Same construction as crc32c.ts:
//
//   TABLES + 0     T0[0..255]  u16   T0[b] = CRC of the single byte b (register 0)
//   TABLES + 512   T1[0..255]  u16   T1[b] = CRC of b followed by 1 zero byte
//   ...
//   TABLES + 3584  T7[0..255]  u16   T7[b] = CRC of b followed by 7 zero bytes
//
// The register is XORed into the first two of eight input bytes; then the 8 bytes
// advance it to T7[b0] ^ T6[b1] ^ ... ^ T0[b7]. Tables are built once by the module's
// start function into a static segment (so, as for crc32c, `_start` must have run).

const POLY: u32 = 0xa001;
const TABLES: usize = memory.data(8 * 256 * 2, 64);

// Build the 8 tables; runs once from the start function.
function buildTables(): void {
  for (let b: u32 = 0; b < 256; b++) {
    let c = b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (POLY & (0 - (c & 1)));
    store<u16>(TABLES + (<usize>b << 1), <u16>c);
  }
  for (let t: usize = 1; t < 8; t++) {
    for (let b: usize = 0; b < 256; b++) {
      const prev = <u32>load<u16>(TABLES + ((t - 1) << 9) + (b << 1));
      store<u16>(TABLES + (t << 9) + (b << 1), <u16>((prev >>> 8) ^ <u32>load<u16>(TABLES + (<usize>(prev & 0xff) << 1))));
    }
  }
}
buildTables();

// Table bases as constants, so each lookup's base is the load's immediate offset.
const T0: usize = TABLES;
const T1: usize = TABLES + 1 * 512;
const T2: usize = TABLES + 2 * 512;
const T3: usize = TABLES + 3 * 512;
const T4: usize = TABLES + 4 * 512;
const T5: usize = TABLES + 5 * 512;
const T6: usize = TABLES + 6 * 512;
const T7: usize = TABLES + 7 * 512;

// Byte k of a word scaled by 2 (a u16 entry's byte offset, 0..510): the mask keeps every
// index inside its 512-byte table.
// @ts-ignore: decorator
@inline function x0(w: u32): usize { return <usize>((w << 1) & 0x1fe); }
// @ts-ignore: decorator
@inline function x1(w: u32): usize { return <usize>((w >>> 7) & 0x1fe); }
// @ts-ignore: decorator
@inline function x2(w: u32): usize { return <usize>((w >>> 15) & 0x1fe); }
// @ts-ignore: decorator
@inline function x3(w: u32): usize { return <usize>((w >>> 23) & 0x1fe); }

/** Raw CRC-16/ARC update (Linux crc16() semantics: no inversion) of `len` bytes at `ptr`. */
export function crc16Update(crc: u32, ptr: usize, len: usize): u32 {
  crc &= 0xffff;
  let p = ptr;
  let n = len;
  while (n >= 8) {
    const a = load<u32>(p) ^ crc;
    const b = load<u32>(p, 4);
    crc =
      <u32>load<u16>(x0(a), T7) ^ <u32>load<u16>(x1(a), T6) ^ <u32>load<u16>(x2(a), T5) ^ <u32>load<u16>(x3(a), T4) ^
      <u32>load<u16>(x0(b), T3) ^ <u32>load<u16>(x1(b), T2) ^ <u32>load<u16>(x2(b), T1) ^ <u32>load<u16>(x3(b), T0);
    p += 8;
    n -= 8;
  }
  while (n != 0) {
    crc = (crc >>> 8) ^ <u32>load<u16>(x0(crc ^ <u32>load<u8>(p)), T0);
    p++;
    n--;
  }
  return crc;
}
