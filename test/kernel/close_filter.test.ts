// The close-event filter without root: the exact program for a reference watch, its encoding, and its
// verdicts on destroy messages built byte by byte, run by a classic BPF interpreter written from
// linux/filter.h, against the rules of the user-space PeerMatcher.
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { BPF, compileCloseFilter, encodeCloseFilter, MAX_CLOSE_FILTER_INSTRUCTIONS, SockFilter } from '../../src/kernel/close_filter';
import { UsageError } from '../../src/common/errors';
import { Cidr, parseCidr } from '../../src/kernel/filter';

/** tcpdump -d style, enough to read a program. */
function disassemble(program: SockFilter[]): string[] {
  const hex = (k: number) => `0x${k.toString(16)}`;
  return program.map(({ code, jt, jf, k }, pc) => {
    const at = `${String(pc).padStart(2)}`;
    switch (code) {
      case BPF.LD_W_LEN:
        return `${at} ld #len`;
      case BPF.LD_W_ABS:
        return `${at} ld [${k}]`;
      case BPF.LD_H_ABS:
        return `${at} ldh [${k}]`;
      case BPF.LD_B_ABS:
        return `${at} ldb [${k}]`;
      case BPF.ALU_AND_K:
        return `${at} and #${hex(k)}`;
      case BPF.JMP_JA:
        return `${at} ja ${pc + 1 + k}`;
      case BPF.JMP_JEQ_K:
        return `${at} jeq #${hex(k)} jt ${pc + 1 + jt} jf ${pc + 1 + jf}`;
      case BPF.JMP_JGE_K:
        return `${at} jge #${k} jt ${pc + 1 + jt} jf ${pc + 1 + jf}`;
      case BPF.RET_K:
        return `${at} ret #${k === 0 ? 0 : hex(k)}`;
      case BPF.MISC_TAX:
        return `${at} tax`;
      case BPF.MISC_TXA:
        return `${at} txa`;
      default:
        return `${at} ??? ${hex(code)}`;
    }
  });
}

/** Runs a program on a message as the kernel's classic BPF does: returns the accepted length (0 = drop). */
function run(program: SockFilter[], message: Uint8Array): number {
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  let a = 0;
  let x = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc];
    const load = (size: number) => {
      if (k + size > message.length) return undefined; // out of bounds: the kernel drops the message
      return size === 4 ? view.getUint32(k) : size === 2 ? view.getUint16(k) : view.getUint8(k);
    };
    switch (code) {
      case BPF.LD_W_LEN:
        a = message.length;
        break;
      case BPF.LD_W_ABS:
      case BPF.LD_H_ABS:
      case BPF.LD_B_ABS: {
        const value = load(code === BPF.LD_W_ABS ? 4 : code === BPF.LD_H_ABS ? 2 : 1);
        if (value === undefined) return 0;
        a = value;
        break;
      }
      case BPF.ALU_AND_K:
        a = (a & k) >>> 0;
        break;
      case BPF.JMP_JA:
        pc += k;
        break;
      case BPF.JMP_JEQ_K:
        pc += a === k ? jt : jf;
        break;
      case BPF.JMP_JGE_K:
        pc += a >= k ? jt : jf;
        break;
      case BPF.RET_K:
        return k;
      case BPF.MISC_TAX:
        x = a;
        break;
      case BPF.MISC_TXA:
        a = x;
        break;
      default:
        throw new Error(`unknown opcode ${code}`);
    }
  }
  throw new Error('ran off the end of the program');
}

interface Event {
  family: 4 | 6;
  state?: number;
  sport: number;
  /** The peer's port: 0 for a listener or a socket that never connected. */
  dport?: number;
  peer: string;
  type?: number;
  seq?: number;
  length?: number;
}

/** A destroy message as the kernel multicasts it: nlmsghdr, inet_diag_msg, an INET_DIAG_INFO-sized tail. */
function destroyMessage(event: Event): Uint8Array {
  const length = event.length ?? 16 + 72 + 256;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  const put = (at: number, write: () => void) => at < length && write();
  put(0, () => view.setUint32(0, length, true));
  put(4, () => view.setUint16(4, event.type ?? 20, true));
  put(8, () => view.setUint32(8, event.seq ?? 0, true));
  put(16, () => view.setUint8(16, event.family === 4 ? 2 : 10));
  put(17, () => view.setUint8(17, event.state ?? 7));
  put(20, () => view.setUint16(20, event.sport, false));
  put(22, () => view.setUint16(22, event.dport ?? 40000, false));
  const peer = ipaddr.parse(event.peer).toByteArray();
  peer.forEach((byte, i) => put(40 + i, () => view.setUint8(40 + i, byte)));
  return bytes;
}

/** What PeerMatcher (native/peer_matcher.cc) and the user-space parser count, for a well-formed message,
 *  less listeners and sockets that never connected (no peer port). */
function peerMatcherAccepts(watch: { ports: number[]; cidrs: Cidr[] }, event: Event): boolean {
  if (event.state === 10 || event.dport === 0) return false;
  if (watch.ports.length > 0 && !watch.ports.includes(event.sport)) return false;
  if (watch.cidrs.length === 0) return true;
  let peer = ipaddr.parse(event.peer);
  const mapped = event.family === 4 || (peer instanceof ipaddr.IPv6 && peer.isIPv4MappedAddress());
  return watch.cidrs.some((cidr) => {
    const range = ipaddr.fromByteArray(Array.from(cidr.address));
    if (cidr.family === 4) {
      if (!mapped) return false;
      if (peer instanceof ipaddr.IPv6) peer = peer.toIPv4Address();
      return (peer as ipaddr.IPv4).match(range as ipaddr.IPv4, cidr.prefix);
    }
    if (event.family !== 6) return false;
    return (ipaddr.parse(event.peer) as ipaddr.IPv6).match(range as ipaddr.IPv6, cidr.prefix);
  });
}

const ACCEPT = 0xffffffff;
const REFERENCE = { ports: [80], cidrs: [parseCidr('203.0.113.96/27'), parseCidr('2001:db8::/32')] };

describe('close filter: the program for the reference watch', () => {
  it('is this exact program for port 80, 203.0.113.96/27 and 2001:db8::/32', () => {
    assert.deepEqual(disassemble(compileCloseFilter(REFERENCE, { littleEndian: true })), [
      ' 0 ld #len',
      ' 1 jge #88 jt 3 jf 2', // shorter than nlmsghdr + inet_diag_msg: drop
      ' 2 ret #0',
      ' 3 ldh [4]',
      ' 4 jeq #0x1400 jt 6 jf 5', // SOCK_DIAG_BY_FAMILY (20, little-endian)
      ' 5 ret #0',
      ' 6 ld [8]',
      ' 7 jeq #0x0 jt 9 jf 8', // seq 0: multicast
      ' 8 ret #0',
      ' 9 ldb [17]',
      '10 jeq #0xa jt 11 jf 12', // LISTEN
      '11 ret #0',
      '12 ldh [22]',
      '13 jeq #0x0 jt 14 jf 15', // no peer port: a listener (reported in CLOSE) or never connected
      '14 ret #0',
      '15 ldh [20]',
      '16 jeq #0x50 jt 17 jf 18', // local port 80
      '17 ja 19',
      '18 ret #0',
      '19 ldb [16]',
      '20 jeq #0x2 jt 23 jf 21', // AF_INET
      '21 jeq #0xa jt 25 jf 22', // AF_INET6
      '22 ret #0',
      '23 ld [40]', // AF_INET: the IPv4 peer
      '24 ja 35',
      '25 ld [40]', // AF_INET6: ::ffff:a.b.c.d?
      '26 jeq #0x0 jt 28 jf 27',
      '27 ja 43',
      '28 ld [44]',
      '29 jeq #0x0 jt 31 jf 30',
      '30 ja 43',
      '31 ld [48]',
      '32 jeq #0xffff jt 34 jf 33',
      '33 ja 43',
      '34 ld [52]', // the mapped IPv4 peer
      '35 tax',
      '36 txa',
      '37 and #0xffffffe0', // /27
      '38 jeq #0xcb007160 jt 39 jf 40', // 203.0.113.96
      '39 ret #0xffffffff',
      '40 ldb [16]', // no IPv4 CIDR: an AF_INET6 socket may still match an IPv6 one
      '41 jeq #0xa jt 43 jf 42',
      '42 ret #0',
      '43 ld [40]', // 2001:db8::/32: one whole word
      '44 jeq #0x20010db8 jt 45 jf 46',
      '45 ret #0xffffffff',
      '46 ret #0',
    ]);
  });

  it('encodes struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} in host order', () => {
    const bytes = encodeCloseFilter(compileCloseFilter(REFERENCE, { littleEndian: true }), { littleEndian: true });
    assert.equal(bytes.length, 47 * 8);
    const at = (pc: number) => Buffer.from(bytes.subarray(pc * 8, pc * 8 + 8)).toString('hex');
    assert.equal(at(0), '8000000000000000'); // ld #len
    assert.equal(at(1), '3500010058000000'); // jge #88 jt 1 jf 0
    assert.equal(at(16), '1500000150000000'); // jeq #80 jt 0 jf 1
    assert.equal(at(24), '05000000' + '0a000000'); // ja +10
    assert.equal(at(38), '15000001607100cb'); // jeq #0xcb007160
    assert.equal(at(39), '06000000ffffffff'); // ret #-1
    const big = encodeCloseFilter([{ code: BPF.JMP_JEQ_K, jt: 1, jf: 2, k: 0x01020304 }], { littleEndian: false });
    assert.equal(Buffer.from(big).toString('hex'), '0015010201020304');
  });

  it('reads the message type in the byte order of the machine', () => {
    const [, , , , typeTest] = compileCloseFilter(REFERENCE, { littleEndian: false });
    assert.deepEqual(typeTest, { code: BPF.JMP_JEQ_K, jt: 1, jf: 0, k: 20 });
  });
});

describe('close filter: verdicts on destroy messages', () => {
  const watches = {
    reference: REFERENCE,
    'IPv4 only, two ports': { ports: [80, 443], cidrs: [parseCidr('203.0.113.96/27'), parseCidr('198.51.100.7')] },
    'IPv6 only, odd prefixes': { ports: [80], cidrs: [parseCidr('2001:db8:0:8000::/49'), parseCidr('2001:db8::1:0/112'), parseCidr('fd00::1')] },
    'any peer on port 80': { ports: [80], cidrs: [] },
    'port 80 from anywhere, both families': { ports: [80], cidrs: [parseCidr('0.0.0.0/0'), parseCidr('::/0')] },
    everything: { ports: [], cidrs: [] },
  };
  const events: Event[] = [
    { family: 4, sport: 80, peer: '203.0.113.96' },
    { family: 4, sport: 80, peer: '203.0.113.127' },
    { family: 4, sport: 80, peer: '203.0.113.128' }, // just outside /27
    { family: 4, sport: 80, peer: '203.0.113.95' }, // just below
    { family: 4, sport: 8080, peer: '203.0.113.100' }, // unwatched port
    { family: 4, sport: 443, peer: '198.51.100.7' },
    { family: 4, sport: 443, peer: '198.51.100.8' },
    { family: 6, sport: 80, peer: '::ffff:203.0.113.115' }, // v4-mapped
    { family: 6, sport: 80, peer: '::ffff:203.0.113.200' },
    { family: 6, sport: 80, peer: '::fffe:cb00:7173' }, // not mapped, same low bits
    { family: 6, sport: 80, peer: '2001:db8::5' },
    { family: 6, sport: 80, peer: '2001:db9::5' },
    { family: 6, sport: 80, peer: '2001:db8:0:8000::1' },
    { family: 6, sport: 80, peer: '2001:db8:0:7fff::1' },
    { family: 6, sport: 80, peer: '2001:db8::1:ffff' },
    { family: 6, sport: 80, peer: '2001:db8::2:0' },
    { family: 6, sport: 80, peer: 'fd00::1' },
    { family: 6, sport: 80, peer: 'fd00::2' },
    { family: 4, sport: 80, peer: '203.0.113.100', state: 10 }, // LISTEN
    { family: 6, sport: 80, peer: '2001:db8::5', state: 10 },
    { family: 4, sport: 80, peer: '0.0.0.0', dport: 0 }, // a listener as the kernel reports it: CLOSE, no peer
    { family: 6, sport: 80, peer: '::', dport: 0 },
    { family: 6, sport: 80, peer: '::ffff:203.0.113.100', dport: 0 },
  ];

  for (const [name, watch] of Object.entries(watches)) {
    it(`agrees with PeerMatcher on every event: ${name}`, () => {
      const program = compileCloseFilter(watch, { littleEndian: true });
      let accepted = 0;
      for (const event of events) {
        const verdict = run(program, destroyMessage(event));
        assert.equal(verdict, peerMatcherAccepts(watch, event) ? ACCEPT : 0, JSON.stringify(event));
        if (verdict) accepted++;
      }
      assert.ok(accepted > 0 && accepted < events.length, 'the events exercise both verdicts');
    });
  }

  it('drops what the user-space parser would skip: short, another type, a non-zero seq, another family', () => {
    const program = compileCloseFilter({ ports: [], cidrs: [] }, { littleEndian: true });
    const good: Event = { family: 4, sport: 80, peer: '203.0.113.100' };
    assert.equal(run(program, destroyMessage(good)), ACCEPT);
    assert.equal(run(program, destroyMessage({ ...good, length: 88 })), ACCEPT); // nlmsghdr + inet_diag_msg, no attributes
    assert.equal(run(program, destroyMessage({ ...good, length: 87 })), 0);
    assert.equal(run(program, destroyMessage({ ...good, length: 12 })), 0);
    assert.equal(run(program, destroyMessage({ ...good, type: 3 })), 0); // NLMSG_DONE
    assert.equal(run(program, destroyMessage({ ...good, seq: 7 })), 0);
    const other = destroyMessage(good);
    other[16] = 1; // AF_UNIX
    assert.equal(run(program, other), 0);
  });

  it('keeps conditional jumps short for long lists, and refuses a program over 4096 instructions', () => {
    const ports = Array.from({ length: 300 }, (_, i) => 1000 + i);
    const cidrs = Array.from({ length: 300 }, (_, i) => parseCidr(`10.${i >> 8}.${i & 255}.0/24`));
    const program = compileCloseFilter({ ports, cidrs: [...cidrs, parseCidr('2001:db8::/32')] }, { littleEndian: true });
    assert.ok(program.length < MAX_CLOSE_FILTER_INSTRUCTIONS);
    assert.equal(run(program, destroyMessage({ family: 4, sport: 1299, peer: '10.1.43.9' })), ACCEPT);
    assert.equal(run(program, destroyMessage({ family: 6, sport: 1000, peer: '::ffff:10.0.0.1' })), ACCEPT);
    assert.equal(run(program, destroyMessage({ family: 6, sport: 1000, peer: '2001:db8::1' })), ACCEPT);
    assert.equal(run(program, destroyMessage({ family: 4, sport: 1300, peer: '10.1.43.9' })), 0);
    assert.equal(run(program, destroyMessage({ family: 4, sport: 1000, peer: '10.1.44.9' })), 0);
    const many = Array.from({ length: 1100 }, (_, i) => parseCidr(`10.${i >> 8}.${i & 255}.0/24`));
    assert.throws(
      () => compileCloseFilter({ ports: [80], cidrs: many }),
      (e: Error) => e instanceof UsageError && /close-event filter would take \d+ instructions \(at most 4096; --no-churn goes without it\)/.test(e.message),
    );
  });
});
