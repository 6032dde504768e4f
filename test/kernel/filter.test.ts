import assert from 'node:assert/strict';
import { compileFilter, formatCidr, parseCidr, parsePort, parseState, stateMask } from '../../src/kernel/filter';
import { UsageError } from '../../src/common/errors';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('filter: the kernel filter program', () => {
  it('compiles `sport = :80 and dst 203.0.113.96/27` exactly as ss does (inet_diag.md worked example)', () => {
    const program = compileFilter({ ports: [80], cidrs: [parseCidr('203.0.113.96/27')] });
    assert.deepEqual(
      program,
      hex(`07102400 00000000 50000000 00000000
           08101400 021b0000 ffffffff cb007160`),
    );
  });

  it('compiles two ports and an IPv4 and an IPv6 CIDR byte for byte as ss 6.x sends them', () => {
    // Captured with: strace -e sendmsg -xx ss -tn state established state time-wait
    //   '( sport = :80 or sport = :8080 )' and '( dst 203.0.113.96/27 or dst 2001:db8::/32 )'
    const program = compileFilter({ ports: [80, 8080], cidrs: [parseCidr('203.0.113.96/27'), parseCidr('2001:db8::/32')] });
    assert.deepEqual(
      program,
      hex(`07101400 00000000 50000000 00000000  01041400
           07104400 00000000 901f0000 00000000
           08101400 021b0000 ffffffff cb007160  01042000
           081c2000 0a200000 ffffffff 20010db8 00000000 00000000 00000000`),
    );
  });

  it('lays out longer blocks with every failed test skipping to the next and the last one rejecting', () => {
    const program = compileFilter({ ports: [1, 2, 3], cidrs: [] });
    // test(16) jmp(4) test(16) jmp(4) test(16) = 56 bytes; reject is 60.
    assert.equal(program.length, 56);
    const ops = [0, 16, 20, 36, 40].map((at) => [at, program[at], program[at + 1], program.readUInt16LE(at + 2)]);
    assert.deepEqual(ops, [
      [0, 7, 16, 20], // S_COND port 1: no -> test at 20
      [16, 1, 4, 40], // JMP -> 56, the block's end
      [20, 7, 16, 20], // S_COND port 2: no -> test at 40
      [36, 1, 4, 20], // JMP -> 56
      [40, 7, 16, 20], // S_COND port 3: no -> 60 = end + 4, reject
    ]);
  });

  it('is empty when nothing is filtered, and refuses a program the kernel would reject as too long', () => {
    assert.equal(compileFilter({ ports: [], cidrs: [] }).length, 0);
    const cidrs = Array.from({ length: 5000 }, (_, i) => parseCidr(`10.${i >> 8}.${i & 255}.0/24`));
    assert.throws(() => compileFilter({ ports: [80], cidrs }), /too many ports and CIDRs: .* bytes \(at most 65531\)/);
  });
});

describe('filter: parsing flag values', () => {
  it('parses CIDRs, bare addresses and v4-mapped ranges, keeping only the network part', () => {
    assert.equal(formatCidr(parseCidr('203.0.113.96/27')), '203.0.113.96/27');
    assert.equal(formatCidr(parseCidr('203.0.113.100/27')), '203.0.113.96/27');
    assert.equal(formatCidr(parseCidr('203.0.113.7')), '203.0.113.7/32');
    assert.equal(formatCidr(parseCidr('2001:db8::1')), '2001:db8::1/128');
    assert.equal(formatCidr(parseCidr('2001:db8:ffff::/32')), '2001:db8::/32');
    assert.equal(formatCidr(parseCidr('::ffff:203.0.113.96/123')), '203.0.113.96/27');
    assert.equal(parseCidr('0.0.0.0/0').prefix, 0);
  });

  for (const [text, message] of [
    ['203.0.113.0/33', /invalid prefix length "33"/],
    ['2001:db8::/129', /invalid prefix length "129"/],
    ['203.0.113.0/', /invalid prefix length ""/],
    ['203.0.113.0/x', /invalid prefix length "x"/],
    ['203.0.113/24', /invalid CIDR "203.0.113\/24"/],
    ['example.com', /invalid CIDR "example.com"/],
    ['1.2.3.4/8/8', /invalid CIDR/],
    ['', /invalid CIDR ""/],
  ] as const) {
    it(`refuses CIDR "${text}"`, () =>
      assert.throws(
        () => parseCidr(text),
        (e: Error) => e instanceof UsageError && message.test(e.message),
      ));
  }

  it('parses ports 1-65535 only', () => {
    assert.equal(parsePort('80'), 80);
    assert.equal(parsePort('65535'), 65535);
    for (const bad of ['0', '65536', '-1', '8o', '', '1e3', '80.0']) assert.throws(() => parsePort(bad), UsageError, bad);
  });

  it('parses node_exporter state names, ss spellings and all, into the idiag_states mask', () => {
    assert.deepEqual(parseState('time_wait'), ['time_wait']);
    assert.deepEqual(parseState('TIME-WAIT'), ['time_wait']);
    assert.equal(parseState('all').length, 11);
    assert.equal(stateMask(['established', 'time_wait']), (1 << 1) | (1 << 6));
    assert.equal(stateMask(parseState('all')), 0xffe);
    assert.throws(() => parseState('estab'), /unknown TCP state "estab"/);
  });
});
