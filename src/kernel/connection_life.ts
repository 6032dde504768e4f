// What each closed watched connection did over its life, from the tcp_info its close event carries: the data
// segments the peer sent (for small HTTP requests, requests per connection) and how long it sat idle before
// it ended (about the keep-alive timeout that closed it, about 0 when it was recycled after N requests).
// The close watcher counts them per (peer, local port) in C++ and hands out the buckets since its last take;
// here they are summed per (peer label, local port) into histograms that only grow, forgotten with the label.
// With them, the connections that ended in a TIME-WAIT on this host, counted by the dumps (socket_counts.cc).
import { formatPeer } from './address';
import type { ClosedSince } from './native';
import type { PeerPortCount } from './snapshot';

/** Data segments in: buckets that separate 0 (no data: a health check's connect), 1, 2, 5, ... 1000 requests. */
export const SEGMENT_BOUNDS = [0, 1, 2, 5, 10, 20, 50, 100, 500, 1000];
/** Idle before close, seconds: 10 ms to 5 min, bracketing common keep-alive timeouts (Apache 5 s, nginx 75 s, HAProxy 10 s...). */
export const IDLE_BEFORE_CLOSE_BOUNDS_SECONDS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300];

export interface Histogram {
  /** Per bucket, not cumulative: bucket i counts values in (bounds[i-1], bounds[i]], the last one those above every bound. */
  buckets: ArrayLike<number>;
  sum: number;
}

export interface ConnectionLife {
  peer: string;
  localPort: number;
  segments: Histogram;
  /** Seconds. */
  idleBeforeClose: Histogram;
}

/**
 * The life histograms of one close watcher take, per (peer, local port) group, kept in the take's arrays: a
 * take can hold thousands of groups, and an object per group would cost more than the counting.
 */
export interface ClosedLife extends Pick<ClosedSince, 'ports' | 'segmentBuckets' | 'segmentSums' | 'idleBuckets' | 'idleSumsMs'> {
  peers: string[];
}

export function lifeOf(taken: ClosedSince): ClosedLife {
  const { ports, segmentBuckets, segmentSums, idleBuckets, idleSumsMs } = taken;
  return { peers: Array.from(ports, (_, i) => formatPeer(taken.peers, i * 16)), ports, segmentBuckets, segmentSums, idleBuckets, idleSumsMs };
}

/** Adds group `group`'s buckets (of `width` per group) and its sum. */
const addInto = (into: { buckets: number[]; sum: number }, buckets: Uint32Array, width: number, group: number, sum: number) => {
  for (let b = 0; b < width; b++) into.buckets[b] += buckets[group * width + b];
  into.sum += sum;
};
const copy = (h: Histogram): Histogram => ({ buckets: Array.from(h.buckets), sum: h.sum });
const keyOf = (c: { peer: string; localPort: number }) => `${c.peer}|${c.localPort}`;

/** Totals per (peer label, local port) since sockmon started: the life of the connections that closed, and
 *  how many of them ended in a TIME-WAIT on this host (this host closed first). */
export interface ClosingTotals extends ConnectionLife {
  timeWait: number;
}

interface Entry {
  totals: ClosingTotals & { segments: { buckets: number[] }; idleBeforeClose: { buckets: number[] } };
  seen: number;
}

/**
 * Sums per (peer label, local port) since sockmon started (or since the label came back after being
 * forgotten: a counter reset Prometheus handles). Bounded like the churn counters: an entry lives while its
 * (label, port) is kept by the churn totals (`kept`) or has closes, and is forgotten `retentionMs` after that.
 */
export class ClosingTotalsByLabel {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly retentionMs: number) {}

  update(
    closed: { life: readonly ClosedLife[]; timeWait: readonly PeerPortCount[] },
    label: (peer: string) => string,
    kept: readonly { peer: string; localPort: number }[],
    now: number,
  ): ClosingTotals[] {
    const entryOf = (group: { peer: string; localPort: number }) => {
      const peer = label(group.peer);
      const key = keyOf({ peer, localPort: group.localPort });
      let entry = this.entries.get(key);
      if (!entry) {
        const empty = (bounds: readonly number[]) => ({ buckets: new Array<number>(bounds.length + 1).fill(0), sum: 0 });
        const totals = {
          peer,
          localPort: group.localPort,
          segments: empty(SEGMENT_BOUNDS),
          idleBeforeClose: empty(IDLE_BEFORE_CLOSE_BOUNDS_SECONDS),
          timeWait: 0,
        };
        entry = { totals, seen: now };
        this.entries.set(key, entry);
      }
      entry.seen = now;
      return entry.totals;
    };
    const segmentWidth = SEGMENT_BOUNDS.length + 1;
    const idleWidth = IDLE_BEFORE_CLOSE_BOUNDS_SECONDS.length + 1;
    for (const life of closed.life) {
      life.peers.forEach((peer, i) => {
        const totals = entryOf({ peer, localPort: life.ports[i] });
        addInto(totals.segments, life.segmentBuckets, segmentWidth, i, life.segmentSums[i]);
        addInto(totals.idleBeforeClose, life.idleBuckets, idleWidth, i, life.idleSumsMs[i] / 1000);
      });
    }
    for (const group of closed.timeWait) entryOf(group).timeWait += group.count;
    for (const k of kept) {
      const entry = this.entries.get(keyOf(k));
      if (entry) entry.seen = now;
    }
    const result: ClosingTotals[] = [];
    for (const [key, { totals, seen }] of this.entries) {
      if (now - seen > this.retentionMs) this.entries.delete(key);
      else result.push({ ...totals, segments: copy(totals.segments), idleBeforeClose: copy(totals.idleBeforeClose) });
    }
    return result;
  }
}
