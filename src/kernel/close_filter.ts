// The close watcher's kernel-side filter: compiles the watch (ports, peer CIDRs) into a classic BPF program
// that the kernel runs on every TCP destroy event before it queues the event on the close watcher's socket
// (SO_ATTACH_FILTER), so unwatched closes never wake sockmon. Pure: tested instruction by instruction.
//
// What the program sees is one netlink message (design.md, "The close path"): nlmsghdr (len u32 @0,
// type u16 @4, flags @6, seq u32 @8, pid @12), then inet_diag_msg: family @16, state @17, sport @20
// (network order), dport @22, src @24..39, dst (the peer) @40..55; IPv4 peers in 40..43 for AF_INET
// sockets, ::ffff:a.b.c.d for the v4-mapped peers of AF_INET6 sockets. Classic BPF loads words and
// halfwords in network byte order: addresses and ports read as their numeric values, host-order fields
// (the message type) byte-swapped on a little-endian machine.
//
// It accepts what the user-space PeerMatcher counts (PeerMatcher stays as the check in user space), and
// drops everything else in the kernel:
// messages the user-space parser would skip (not SOCK_DIAG_BY_FAMILY, shorter than an inet_diag_msg, a
// non-zero sequence number, a family other than AF_INET/AF_INET6), the destroy events of listeners and
// of sockets that never connected (no peer port: a listener restart is not a connection), other local
// ports, and peers outside every CIDR. An IPv4 CIDR
// also matches the v4-mapped peers of AF_INET6 sockets; an IPv6 CIDR matches AF_INET6 sockets only.
import os from 'node:os';
import { UsageError } from '../common/errors';
import { Cidr } from './filter';

/** struct sock_filter (linux/filter.h). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

// Opcodes (linux/bpf_common.h, linux/filter.h), combined.
export const BPF = {
  LD_W_ABS: 0x20, // A = u32 at [k], network order
  LD_H_ABS: 0x28, // A = u16 at [k], network order
  LD_B_ABS: 0x30, // A = u8 at [k]
  LD_W_LEN: 0x80, // A = length of the message
  ALU_AND_K: 0x54, // A &= k
  JMP_JA: 0x05, // pc += k
  JMP_JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JMP_JGE_K: 0x35, // pc += (A >= k) ? jt : jf
  RET_K: 0x06, // accept k bytes (0 = drop)
  MISC_TAX: 0x07, // X = A
  MISC_TXA: 0x87, // A = X
} as const;

/** The kernel refuses longer programs (BPF_MAXINSNS). */
export const MAX_CLOSE_FILTER_INSTRUCTIONS = 4096;
/** nlmsghdr (16) + inet_diag_msg (72): what the user-space parser needs to read a record. */
export const MIN_MESSAGE_LENGTH = 88;
const SOCK_DIAG_BY_FAMILY = 20;
const TCP_LISTEN = 10;
const AF_INET = 2;
const AF_INET6 = 10;
const ACCEPT = 0xffffffff; // the whole message (tcp_info included)
const DROP = 0;
const OFFSET = { type: 4, seq: 8, family: 16, state: 17, sport: 20, dport: 22, peer: 40 } as const;

/** A jump target: a label, resolved once the program is laid out, or a literal offset. */
type Target = string | number;
interface Pending {
  code: number;
  k: number;
  jt: Target;
  jf: Target;
  /** For JA: the label whose distance goes into k. */
  to?: string;
}

/** A tiny assembler: instructions and labels; conditional jumps must stay within 255 (by construction). */
class Assembler {
  private readonly code: Pending[] = [];
  private readonly labels = new Map<string, number>();

  emit(code: number, k = 0, jt: Target = 0, jf: Target = 0): void {
    this.code.push({ code, k: k >>> 0, jt, jf });
  }
  jump(label: string): void {
    this.code.push({ code: BPF.JMP_JA, k: 0, jt: 0, jf: 0, to: label });
  }
  label(name: string): void {
    this.labels.set(name, this.code.length);
  }
  /** Accepts the message unless the condition holds for A. */
  dropUnless(code: number, k: number): void {
    this.emit(code, k, 1, 0);
    this.emit(BPF.RET_K, DROP);
  }

  finish(): SockFilter[] {
    const distance = (from: number, target: Target) => {
      if (typeof target === 'number') return target;
      const to = this.labels.get(target);
      if (to === undefined || to <= from) throw new Error(`close filter: bad jump to ${target}`);
      return to - from - 1;
    };
    return this.code.map((insn, pc) => {
      const jt = distance(pc, insn.jt);
      const jf = distance(pc, insn.jf);
      if (jt > 255 || jf > 255) throw new Error(`close filter: conditional jump too far at ${pc}`);
      return { code: insn.code, jt, jf, k: insn.to === undefined ? insn.k : distance(pc, insn.to) };
    });
  }
}

/** The first `prefix` bits of a 32-bit word (prefix 0..32). */
const wordMask = (prefix: number) => (prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0);

/** Tests A (a word of the peer, network order as a number) against `value` under `prefix` bits. */
function matchWord(asm: Assembler, value: number, prefix: number, jf: number): void {
  if (prefix < 32) asm.emit(BPF.ALU_AND_K, wordMask(prefix));
  asm.emit(BPF.JMP_JEQ_K, (value & wordMask(prefix)) >>> 0, 0, jf);
}

const readWord = (bytes: Uint8Array, at: number) => ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;

/** Instructions of one IPv6 CIDR test: for each word the prefix touches, ld (+ and) + jeq; then ret. */
function ipv6TestLength(cidr: Cidr): number {
  let length = 1;
  for (let word = 0; word < 4 && cidr.prefix > word * 32; word++) length += cidr.prefix >= (word + 1) * 32 ? 2 : 3;
  return length;
}

export interface CloseFilterOptions {
  /** Byte order of this machine: the message type is a host-order field. */
  littleEndian?: boolean;
}

/** Compiles `(local port in ports) and (peer in cidrs)`, an empty list meaning any, as described above. */
export function compileCloseFilter(watch: { ports: readonly number[]; cidrs: readonly Cidr[] }, options: CloseFilterOptions = {}): SockFilter[] {
  const littleEndian = options.littleEndian ?? os.endianness() === 'LE';
  const ports = [...new Set(watch.ports)];
  const v4 = watch.cidrs.filter((c) => c.family === 4);
  const v6 = watch.cidrs.filter((c) => c.family === 6);
  const asm = new Assembler();

  // One well-formed destroy message from the kernel (multicast messages carry seq 0), of a connection: a
  // listener is destroyed in state CLOSE (tcp_close sets it before stopping the listener) with no peer, like
  // a socket that never connected, so "no peer port" is what tells them apart; LISTEN is dropped as well.
  asm.emit(BPF.LD_W_LEN);
  asm.dropUnless(BPF.JMP_JGE_K, MIN_MESSAGE_LENGTH);
  asm.emit(BPF.LD_H_ABS, OFFSET.type);
  asm.dropUnless(BPF.JMP_JEQ_K, littleEndian ? SOCK_DIAG_BY_FAMILY << 8 : SOCK_DIAG_BY_FAMILY);
  asm.emit(BPF.LD_W_ABS, OFFSET.seq);
  asm.dropUnless(BPF.JMP_JEQ_K, 0);
  asm.emit(BPF.LD_B_ABS, OFFSET.state);
  asm.emit(BPF.JMP_JEQ_K, TCP_LISTEN, 0, 1);
  asm.emit(BPF.RET_K, DROP);
  asm.emit(BPF.LD_H_ABS, OFFSET.dport);
  asm.emit(BPF.JMP_JEQ_K, 0, 0, 1);
  asm.emit(BPF.RET_K, DROP);

  // Local port: each match jumps past the list (JA reaches any distance); no match drops.
  if (ports.length > 0) {
    asm.emit(BPF.LD_H_ABS, OFFSET.sport);
    for (const port of ports) {
      asm.emit(BPF.JMP_JEQ_K, port, 0, 1);
      asm.jump('port_ok');
    }
    asm.emit(BPF.RET_K, DROP);
    asm.label('port_ok');
  }

  // Family: AF_INET or AF_INET6, anything else is dropped.
  asm.emit(BPF.LD_B_ABS, OFFSET.family);
  if (watch.cidrs.length === 0) {
    asm.emit(BPF.JMP_JEQ_K, AF_INET, 1, 0);
    asm.emit(BPF.JMP_JEQ_K, AF_INET6, 0, 1);
    asm.emit(BPF.RET_K, ACCEPT);
    asm.emit(BPF.RET_K, DROP);
    return check(asm.finish());
  }
  asm.emit(BPF.JMP_JEQ_K, AF_INET, 'inet', 0);
  asm.emit(BPF.JMP_JEQ_K, AF_INET6, 'inet6', 0);
  asm.emit(BPF.RET_K, DROP);

  // AF_INET socket: only IPv4 CIDRs can match.
  asm.label('inet');
  if (v4.length > 0) {
    asm.emit(BPF.LD_W_ABS, OFFSET.peer);
    asm.jump('ipv4');
  } else {
    asm.emit(BPF.RET_K, DROP);
  }

  // AF_INET6 socket: a v4-mapped peer (::ffff:a.b.c.d) goes through the IPv4 CIDRs first.
  asm.label('inet6');
  if (v4.length > 0) {
    for (const [at, value] of [
      [0, 0],
      [4, 0],
      [8, 0xffff],
    ]) {
      asm.emit(BPF.LD_W_ABS, OFFSET.peer + at);
      asm.emit(BPF.JMP_JEQ_K, value, 1, 0);
      asm.jump('ipv6');
    }
    asm.emit(BPF.LD_W_ABS, OFFSET.peer + 12);
    // A = the IPv4 peer. X keeps it while each CIDR masks A.
    asm.label('ipv4');
    asm.emit(BPF.MISC_TAX);
    for (const cidr of v4) {
      asm.emit(BPF.MISC_TXA);
      matchWord(asm, readWord(cidr.address, 0), cidr.prefix, 1);
      asm.emit(BPF.RET_K, ACCEPT);
    }
    // No IPv4 CIDR matched: a mapped peer of an AF_INET6 socket may still be in an IPv6 CIDR (::/0, say).
    if (v6.length > 0) {
      asm.emit(BPF.LD_B_ABS, OFFSET.family);
      asm.dropUnless(BPF.JMP_JEQ_K, AF_INET6);
    }
  }
  asm.label('ipv6');
  for (const cidr of v6) {
    // A failed word skips the rest of this CIDR's test (at most 12 instructions: always a short jump).
    let left = ipv6TestLength(cidr);
    for (let word = 0; word < 4 && cidr.prefix > word * 32; word++) {
      const bits = Math.min(32, cidr.prefix - word * 32);
      asm.emit(BPF.LD_W_ABS, OFFSET.peer + word * 4);
      left -= bits < 32 ? 3 : 2;
      matchWord(asm, readWord(cidr.address, word * 4), bits, left);
    }
    asm.emit(BPF.RET_K, ACCEPT);
  }
  asm.emit(BPF.RET_K, DROP);
  return check(asm.finish());
}

function check(program: SockFilter[]): SockFilter[] {
  if (program.length > MAX_CLOSE_FILTER_INSTRUCTIONS) {
    throw new UsageError(
      `too many ports and CIDRs: the close-event filter would take ${program.length} instructions (at most ${MAX_CLOSE_FILTER_INSTRUCTIONS}; --no-churn goes without it)`,
    );
  }
  return program;
}

/** The program as the kernel takes it: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}, host order. */
export function encodeCloseFilter(program: readonly SockFilter[], options: CloseFilterOptions = {}): Uint8Array {
  const littleEndian = options.littleEndian ?? os.endianness() === 'LE';
  const bytes = new Uint8Array(program.length * 8);
  const view = new DataView(bytes.buffer);
  program.forEach((insn, i) => {
    view.setUint16(i * 8, insn.code, littleEndian);
    view.setUint8(i * 8 + 2, insn.jt);
    view.setUint8(i * 8 + 3, insn.jf);
    view.setUint32(i * 8 + 4, insn.k, littleEndian);
  });
  return bytes;
}
