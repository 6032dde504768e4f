// What to watch: parses CIDRs, ports and state names, and compiles them into the kernel's inet_diag
// filter program (INET_DIAG_REQ_BYTECODE). Pure functions of the configuration, tested byte for byte.
import ipaddr from 'ipaddr.js';
import { UsageError } from '../common/errors';

/** TCP state numbers (include/net/tcp_states.h) by node_exporter's `node_tcp_connection_states` names. */
export const TCP_STATES = {
  established: 1,
  syn_sent: 2,
  syn_recv: 3,
  fin_wait1: 4,
  fin_wait2: 5,
  time_wait: 6,
  close: 7,
  close_wait: 8,
  last_ack: 9,
  listen: 10,
  closing: 11,
} as const;
export type StateName = keyof typeof TCP_STATES;
export const STATE_NAMES = Object.keys(TCP_STATES) as StateName[];
const STATE_BY_NUMBER = new Map<number, StateName>(STATE_NAMES.map((name) => [TCP_STATES[name], name]));

export function stateName(state: number): StateName | undefined {
  return STATE_BY_NUMBER.get(state);
}

export interface Cidr {
  family: 4 | 6;
  prefix: number;
  /** Network address bytes: 4 for IPv4, 16 for IPv6. */
  address: Uint8Array;
}

export interface Watch {
  cidrs: Cidr[];
  ports: number[];
  states: StateName[];
}

/** Parses `a.b.c.d/n`, `x::y/n` or a bare address (/32, /128). `::ffff:a.b.c.d/n` (n >= 96) becomes IPv4. */
export function parseCidr(text: string): Cidr {
  const [addressText, prefixText, ...rest] = text.split('/');
  // Strictly dotted quads or IPv6 without a zone: no inet_aton shorthands such as `203.0.113`.
  const valid = ipaddr.IPv4.isValidFourPartDecimal(addressText) || (ipaddr.IPv6.isValid(addressText) && !addressText.includes('%'));
  if (rest.length > 0 || !valid) throw new UsageError(`invalid CIDR "${text}"`);
  let address = ipaddr.parse(addressText);
  const maxPrefix = address.kind() === 'ipv4' ? 32 : 128;
  let prefix = maxPrefix;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) {
      throw new UsageError(`invalid prefix length "${prefixText}" in CIDR "${text}" (0 to ${maxPrefix})`);
    }
    prefix = Number(prefixText);
  }
  if (address instanceof ipaddr.IPv6 && address.isIPv4MappedAddress() && prefix >= 96) {
    address = address.toIPv4Address();
    prefix -= 96;
  }
  // Keep only the network part so `203.0.113.100/27` means the same as `203.0.113.96/27`.
  const bytes = Uint8Array.from(address.toByteArray());
  for (let bit = prefix; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  return { family: bytes.length === 4 ? 4 : 6, prefix, address: bytes };
}

export function formatCidr(cidr: Cidr): string {
  return `${ipaddr.fromByteArray(Array.from(cidr.address)).toString()}/${cidr.prefix}`;
}

export function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new UsageError(`invalid port "${text}" (1 to 65535)`);
  return port;
}

/** Parses one state name, or `all` for every state. */
export function parseState(text: string): StateName[] {
  const name = text.toLowerCase().replace(/-/g, '_');
  if (name === 'all') return [...STATE_NAMES];
  if (name in TCP_STATES) return [name as StateName];
  throw new UsageError(`unknown TCP state "${text}" (one of ${STATE_NAMES.join(', ')}, all)`);
}

/** The `idiag_states` mask: bit (1 << state). SYN_RECV also brings request sockets (NEW_SYN_RECV). */
export function stateMask(states: readonly StateName[]): number {
  let mask = 0;
  for (const name of states) mask |= 1 << TCP_STATES[name];
  return mask >>> 0;
}

// inet_diag_bc_op codes (include/uapi/linux/inet_diag.h).
const BC_JMP = 1;
const BC_S_COND = 7;
const BC_D_COND = 8;
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
const OP_SIZE = 4;
/** The kernel rejects a longer program (INET_DIAG_REQ_BYTECODE is one netlink attribute). */
export const MAX_PROGRAM_SIZE = 65531;

/** One test: an inet_diag_bc_op whose yes/no are filled in by the block layout, then its operand. */
interface Test {
  code: number;
  operand: Buffer;
}

/** inet_diag_hostcond {u8 family; u8 prefix_len; u16 pad; s32 port (-1 any); be32 addr[]}. */
function hostcond(family: number, prefix: number, port: number, address: Uint8Array): Buffer {
  const operand = Buffer.alloc(8 + address.length);
  operand.writeUInt8(family, 0);
  operand.writeUInt8(prefix, 1);
  operand.writeInt32LE(port, 4);
  operand.set(address, 8);
  return operand;
}

// Like ss, a port test carries four unused address bytes.
const portTest = (port: number): Test => ({ code: BC_S_COND, operand: hostcond(AF_UNSPEC, 0, port, new Uint8Array(4)) });

// IPv4 CIDRs stay AF_INET: the kernel then also matches v4-mapped peers (::ffff:a.b.c.d) of AF_INET6 sockets.
const peerTest = (cidr: Cidr): Test => ({
  code: BC_D_COND,
  operand: hostcond(cidr.family === 4 ? AF_INET : AF_INET6, cidr.prefix, -1, cidr.address),
});

/**
 * Compiles `(local port in ports) and (peer in cidrs)` as ss does: each non-empty list is a block of tests
 * joined by OR, and blocks are concatenated (AND). Within a block, every test but the last is followed by a
 * JMP to the block's end and skips it on failure; the last test's failure jumps to the program's end + 4,
 * which rejects. A match lands exactly on the end, which accepts.
 */
export function compileFilter(watch: Pick<Watch, 'ports' | 'cidrs'>): Buffer {
  const blocks = [watch.ports.map(portTest), watch.cidrs.map(peerTest)].filter((block) => block.length > 0);
  const testSize = (test: Test) => OP_SIZE + test.operand.length;
  const blockSize = (block: Test[]) => block.reduce((sum, test) => sum + testSize(test), 0) + OP_SIZE * (block.length - 1);
  const total = blocks.reduce((sum, block) => sum + blockSize(block), 0);
  if (total > MAX_PROGRAM_SIZE) {
    throw new UsageError(`too many ports and CIDRs: the kernel filter would take ${total} bytes (at most ${MAX_PROGRAM_SIZE})`);
  }

  const program = Buffer.alloc(total);
  let offset = 0;
  const op = (code: number, yes: number, no: number) => {
    program.writeUInt8(code, offset);
    program.writeUInt8(yes, offset + 1);
    program.writeUInt16LE(no, offset + 2);
    offset += OP_SIZE;
  };
  for (const block of blocks) {
    const blockEnd = offset + blockSize(block);
    block.forEach((test, index) => {
      const size = testSize(test);
      const last = index === block.length - 1;
      op(test.code, size, last ? total + OP_SIZE - offset : size + OP_SIZE);
      test.operand.copy(program, offset);
      offset += test.operand.length;
      if (!last) op(BC_JMP, OP_SIZE, blockEnd - offset);
    });
  }
  return program;
}
