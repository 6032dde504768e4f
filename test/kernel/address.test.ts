import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { formatPeer } from '../../src/kernel/address';

const bytes = (text: string) => {
  const address = ipaddr.parse(text);
  return Uint8Array.from((address instanceof ipaddr.IPv4 ? address.toIPv4MappedAddress() : address).toByteArray());
};

describe('address: peer labels', () => {
  it('folds IPv4 and v4-mapped peers to a dotted quad', () => {
    assert.equal(formatPeer(bytes('203.0.113.115')), '203.0.113.115');
    assert.equal(formatPeer(bytes('::ffff:203.0.113.115')), '203.0.113.115');
  });

  it('prints IPv6 peers in RFC 5952 form', () => {
    assert.equal(formatPeer(bytes('2001:0db8:0000:0000:0000:0000:0a00:0001')), '2001:db8::a00:1');
    assert.equal(formatPeer(bytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
    assert.equal(formatPeer(bytes('::1')), '::1');
    assert.equal(formatPeer(bytes('64:ff9b::203.0.113.7')), '64:ff9b::cb00:7107');
  });

  it('reads the address at an offset', () => {
    const two = new Uint8Array(32);
    two.set(bytes('198.51.100.7'), 16);
    assert.equal(formatPeer(two, 16), '198.51.100.7');
  });
});
