// What the closed watched connections did, summed per (peer label, local port) into histograms that only grow,
// forgotten with the label; with them, the connections that ended in a TIME-WAIT on this host, counted by the
// dumps (socket_counts.cc).
import { ClosedLife, ConnectionLife, Histogram, IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, SEGMENT_BOUNDS } from '../kernel/connection_life';
import type { PeerPortCount } from '../kernel/snapshot';

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
