// Turns a snapshot's connections into the exported series: caps the peer label's cardinality and keeps
// emptied series at 0 for a retention period, so `for:` alerts and graphs see a fall to zero, not a gap.
import type { StateName } from './filter';
import type { Connection } from './snapshot';

export const OTHER_PEER = 'other';

export interface Series {
  peer: string;
  localPort: number;
  state: StateName;
  value: number;
}

export interface SeriesUpdate {
  series: Series[];
  /** Distinct peers folded into peer="other" by the cap. */
  foldedPeers: number;
  /** The label a peer gets in this update: itself, or "other". */
  peerLabel: (peer: string) => string;
}

const keyOf = (s: { peer: string; localPort: number; state: string }) => `${s.peer}|${s.localPort}|${s.state}`;

export class ConnectionSeries {
  /** Every series reported non-zero within the retention period, with when it last was. */
  private readonly lastNonZero = new Map<string, { series: Series; at: number }>();

  constructor(
    private readonly maxPeers: number,
    private readonly retentionMs: number,
  ) {}

  update(connections: readonly Connection[], now: number): SeriesUpdate {
    const { kept, foldedPeers } = this.peersToKeep(connections);
    const current = new Map<string, Series>();
    for (const c of connections) {
      const peer = kept.has(c.peer) ? c.peer : OTHER_PEER;
      const key = keyOf({ ...c, peer });
      const series = current.get(key);
      if (series) series.value += c.count;
      else current.set(key, { peer, localPort: c.localPort, state: c.state, value: c.count });
    }
    for (const [key, series] of current) this.lastNonZero.set(key, { series, at: now });

    const result = [...current.values()];
    for (const [key, { series, at }] of this.lastNonZero) {
      if (current.has(key)) continue;
      if (now - at > this.retentionMs) this.lastNonZero.delete(key);
      else result.push({ ...series, value: 0 });
    }
    return { series: result, foldedPeers, peerLabel: (peer) => (kept.has(peer) ? peer : OTHER_PEER) };
  }

  /** The peers with the most connections keep their own label, up to the cap; ties go to the lower address. */
  private peersToKeep(connections: readonly Connection[]): { kept: Set<string>; foldedPeers: number } {
    const totals = new Map<string, number>();
    for (const c of connections) totals.set(c.peer, (totals.get(c.peer) ?? 0) + c.count);
    if (totals.size <= this.maxPeers) return { kept: new Set(totals.keys()), foldedPeers: 0 };
    // Map order is the snapshot's address order, and the sort is stable.
    const ranked = [...totals].sort((a, b) => b[1] - a[1]).map(([peer]) => peer);
    return { kept: new Set(ranked.slice(0, this.maxPeers)), foldedPeers: ranked.length - this.maxPeers };
  }
}

/**
 * Peer labels for counters: the first `max` peers seen keep their own label for good and later ones count
 * as "other", so no count ever moves from one series to another (a counter must never go down).
 */
export class StickyPeerLabels {
  private readonly labeled = new Set<string>();

  constructor(private readonly max: number) {}

  label(peer: string): string {
    if (this.labeled.has(peer)) return peer;
    if (this.labeled.size >= this.max) return OTHER_PEER;
    this.labeled.add(peer);
    return peer;
  }
}
