/**
 * Redis Cluster hash slots, exactly as the server computes them (CRC16/XMODEM
 * of the hash tag or of the whole key, mod 16384), so that keys the library
 * creates together provably share a slot.
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[i] = crc;
  }
  return t;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** The part of a key Redis hashes: the first non-empty `{...}`, else the whole key (as bytes). */
export function hashedPart(key: string): Buffer {
  const bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // '{'
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) return bytes.subarray(open + 1, close);
  }
  return bytes;
}

/** The hash slot of a key. */
export function slotOf(key: string): number {
  return crc16(hashedPart(key)) & 16383;
}
