import ipaddr from 'ipaddr.js';

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/** Whether the 16-byte address at `offset` is IPv4, kept as v4-mapped IPv6 (`::ffff:a.b.c.d`). */
export const isMapped = (bytes: Uint8Array, offset: number) => MAPPED_PREFIX.every((byte, i) => bytes[offset + i] === byte);

/**
 * Formats the 16-byte peer address at `offset`: IPv4 and v4-mapped IPv6 (`::ffff:a.b.c.d`, a dual-stack
 * listener's IPv4 peers) as a dotted quad, other IPv6 in RFC 5952 form.
 */
export function formatPeer(bytes: Uint8Array, offset = 0): string {
  if (isMapped(bytes, offset)) {
    return `${bytes[offset + 12]}.${bytes[offset + 13]}.${bytes[offset + 14]}.${bytes[offset + 15]}`;
  }
  return (ipaddr.fromByteArray(Array.from(bytes.subarray(offset, offset + 16))) as ipaddr.IPv6).toRFC5952String();
}

/** Orders two 16-byte addresses: IPv4 (and v4-mapped) first, then IPv6, each numerically. */
export function comparePeers(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset: number): number {
  const family = Number(isMapped(b, bOffset)) - Number(isMapped(a, aOffset));
  if (family !== 0) return family;
  for (let i = 0; i < 16; i++) {
    const d = a[aOffset + i] - b[bOffset + i];
    if (d !== 0) return d;
  }
  return 0;
}
