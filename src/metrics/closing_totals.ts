// What the closed watched connections did, summed per (peer label, local port) into histograms that only grow,
// forgotten with the label; with them, the connections that ended in a TIME-WAIT on this host, counted by the
// dumps (socket_counts.cc).
//
// Who closed never runs ahead of closed: a TIME-WAIT socket shows in the dump the moment its connection
// ends, but the close event of that connection is counted only once the close watcher has drained it (after
// its pause) and the next take: for a scrape or two the dump has seen closes the watcher has not counted
// yet. New TIME-WAITs are therefore carried as pending and credited to time_wait only up to the closes
// counted for the label (closed_total of the churn totals): time_wait <= closed at every scrape, and once
// the closes are counted (at rest) every TIME-WAIT is credited, so the total stays exact over time.
import { ClosedLife, ConnectionLife, Histogram, IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, SEGMENT_BOUNDS } from '../kernel/connection_life';
import type { PeerPortCount } from '../kernel/snapshot';
import type { ChurnTotals } from './churn';

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
  /** New TIME-WAITs seen in the dumps whose close is not counted yet (not credited to `timeWait`). */
  pending: number;
  /** closed_total of the churn totals at the previous update: less now means those were reset. */
  closedBefore: number;
}

const empty = (bounds: readonly number[]) => ({ buckets: new Array<number>(bounds.length + 1).fill(0), sum: 0 });

/**
 * Sums per (peer label, local port) since sockmon started (or since the label came back after being
 * forgotten: a counter reset Prometheus handles). Bounded like the churn counters: an entry lives while its
 * (label, port) is kept by the churn totals (`churn`) or has closes, and is forgotten `retentionMs` after that.
 * When the churn totals of a (label, port) start again from 0, so do these (the same counter reset).
 */
export class ClosingTotalsByLabel {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly retentionMs: number) {}

  update(
    closed: { life: readonly ClosedLife[]; timeWait: readonly PeerPortCount[] },
    label: (peer: string) => string,
    churn: readonly Pick<ChurnTotals, 'peer' | 'localPort' | 'closed'>[],
    now: number,
  ): ClosingTotals[] {
    const closedNow = new Map(churn.map((c) => [keyOf(c), c.closed]));
    // Churn totals that started again from 0 (forgotten, then back): these start again too, keeping only
    // what is pending (its closes are still to be counted, in the new totals).
    for (const [key, entry] of this.entries) {
      if ((closedNow.get(key) ?? 0) < entry.closedBefore) {
        entry.totals = { ...entry.totals, segments: empty(SEGMENT_BOUNDS), idleBeforeClose: empty(IDLE_BEFORE_CLOSE_BOUNDS_SECONDS), timeWait: 0 };
      }
    }
    /** The entry of (labelled peer, port), created at 0. */
    const entryAt = (peer: string, localPort: number) => {
      const key = keyOf({ peer, localPort });
      let entry = this.entries.get(key);
      if (!entry) {
        const totals = { peer, localPort, segments: empty(SEGMENT_BOUNDS), idleBeforeClose: empty(IDLE_BEFORE_CLOSE_BOUNDS_SECONDS), timeWait: 0 };
        entry = { totals, seen: now, pending: 0, closedBefore: 0 };
        this.entries.set(key, entry);
      }
      entry.seen = now;
      return entry;
    };
    // Every (label, port) the churn totals keep has its series from 0, as closed_total has, before its first
    // close: a series that appeared with its first closes already in it would hide them from increase().
    for (const k of churn) entryAt(k.peer, k.localPort);
    const entryFor = (group: { peer: string; localPort: number }) => entryAt(label(group.peer), group.localPort);
    const entryOf = (group: { peer: string; localPort: number }) => entryFor(group).totals;
    const segmentWidth = SEGMENT_BOUNDS.length + 1;
    const idleWidth = IDLE_BEFORE_CLOSE_BOUNDS_SECONDS.length + 1;
    for (const life of closed.life) {
      life.peers.forEach((peer, i) => {
        const totals = entryOf({ peer, localPort: life.ports[i] });
        addInto(totals.segments, life.segmentBuckets, segmentWidth, i, life.segmentSums[i]);
        addInto(totals.idleBeforeClose, life.idleBuckets, idleWidth, i, life.idleSumsMs[i] / 1000);
      });
    }
    for (const group of closed.timeWait) entryFor(group).pending += group.count;
    for (const [key, entry] of this.entries) {
      const closes = closedNow.get(key) ?? 0;
      const credit = Math.min(entry.pending, closes - entry.totals.timeWait);
      if (credit > 0) {
        entry.totals.timeWait += credit;
        entry.pending -= credit;
      }
      entry.closedBefore = closes;
    }
    const result: ClosingTotals[] = [];
    for (const [key, { totals, seen }] of this.entries) {
      if (now - seen > this.retentionMs) this.entries.delete(key);
      else result.push({ ...totals, segments: copy(totals.segments), idleBeforeClose: copy(totals.idleBeforeClose) });
    }
    return result;
  }
}
