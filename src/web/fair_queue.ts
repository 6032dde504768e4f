// Work waiting per source, served round-robin: one item of each source in turn, so a source that sends
// more waits longer itself instead of pushing others out. Bounded twice: items per source and sources.
import net from 'node:net';

export class FairQueue<T> {
  /** Map order is the round-robin order: a source served goes to the back. */
  private readonly queues = new Map<string, T[]>();
  private count = 0;

  constructor(
    private readonly maxSources: number,
    private readonly perSource: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Queues `item` for `source`; false when that source, or the number of sources, is at its bound. */
  push(source: string, item: T): boolean {
    const queue = this.queues.get(source);
    if (queue ? queue.length >= this.perSource : this.queues.size >= this.maxSources) return false;
    if (queue) queue.push(item);
    else this.queues.set(source, [item]);
    this.count++;
    return true;
  }

  /** The next item in round-robin order over the sources. */
  shift(): T | undefined {
    const next = this.queues.entries().next();
    if (next.done) return undefined;
    const [source, queue] = next.value;
    const item = queue.shift() as T;
    this.queues.delete(source);
    if (queue.length > 0) this.queues.set(source, queue);
    this.count--;
    return item;
  }

  /** Every waiting item, emptying the queue. */
  drain(): T[] {
    const items = [...this.queues.values()].flat();
    this.queues.clear();
    this.count = 0;
    return items;
  }
}

/**
 * The source a request counts against: its IPv4 address (also when it arrives v4-mapped on an IPv6 socket),
 * or the /64 of an IPv6 address, since one host is usually given a whole /64 and could rotate within it.
 */
export function sourceOf(address: string | undefined): string {
  if (!address) return '';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1];
  if (!net.isIPv6(address)) return address;
  const [head, tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
