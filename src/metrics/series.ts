// Turns a snapshot's connections into the exported series, with every per-peer structure bounded by the
// configuration, never by what the network sends:
// - PeerLabels gives each peer its label, itself or "other", and keeps it while the peer is seen: a count
//   never moves between series (a counter must never go down), and a folded peer never shows a stale value
//   under its own label. Peers not seen for the retention period are forgotten, and their label freed.
// - ConnectionSeries keeps emptied series at 0 for the retention period, so `for:` alerts and graphs see a
//   fall to zero, not a gap; the peer cap applies to those zeros too.
import type { StateName } from '../kernel/filter';
import type { Connection } from '../kernel/snapshot';

export const OTHER_PEER = 'other';

/** Peers tracked beyond the labeled ones (folded peers, so they stay folded): a bound on memory, ~150 B each. */
export const MAX_FOLDED_TRACKED = 16_384;

export class PeerLabels {
  /** Tracked peers, least recently seen first: peer -> its label and when it was last seen. */
  private readonly peers = new Map<string, { label: string; seen: number }>();
  private labeled = 0;

  constructor(
    private readonly maxPeers: number,
    private readonly retentionMs: number,
  ) {}

  get tracked(): number {
    return this.peers.size;
  }

  /**
   * Labels the peers seen now. Known peers keep their label; new ones get their own while fewer than
   * `maxPeers` peers hold one, the busiest first (`weight`), and "other" after that. Peers not seen for the
   * retention period are forgotten first.
   */
  see(weights: ReadonlyMap<string, number>, now: number): (peer: string) => string {
    this.expire(now);
    const fresh: string[] = [];
    for (const peer of weights.keys()) {
      const known = this.peers.get(peer);
      if (!known) fresh.push(peer);
      else {
        known.seen = now;
        this.peers.delete(peer); // re-insert: the map stays in order of last sighting
        this.peers.set(peer, known);
      }
    }
    // Stable sort: ties keep the caller's (address) order.
    fresh.sort((a, b) => (weights.get(b) ?? 0) - (weights.get(a) ?? 0));
    for (const peer of fresh) {
      const label = this.labeled < this.maxPeers ? peer : OTHER_PEER;
      // Past the bound, a new folded peer is counted as "other" without being remembered.
      if (label === OTHER_PEER && this.peers.size - this.labeled >= MAX_FOLDED_TRACKED) continue;
      if (label !== OTHER_PEER) this.labeled++;
      this.peers.set(peer, { label, seen: now });
    }
    return (peer) => this.peers.get(peer)?.label ?? OTHER_PEER;
  }

  private expire(now: number): void {
    for (const [peer, { label, seen }] of this.peers) {
      if (now - seen <= this.retentionMs) break; // the rest were seen later
      this.peers.delete(peer);
      if (label !== OTHER_PEER) this.labeled--;
    }
  }
}

export interface Series {
  peer: string;
  localPort: number;
  state: StateName;
  value: number;
}

export interface SeriesUpdate {
  series: Series[];
  /** Distinct peers of this snapshot counted under peer="other". */
  foldedPeers: number;
}

const keyOf = (s: { peer: string; localPort: number; state: string }) => `${s.peer}|${s.localPort}|${s.state}`;

export class ConnectionSeries {
  /** Every series reported non-zero within the retention period, with when it last was: per label, so bounded by the cap. */
  private readonly lastNonZero = new Map<string, { series: Series; at: number }>();

  constructor(private readonly retentionMs: number) {}

  update(connections: readonly Connection[], label: (peer: string) => string, now: number): SeriesUpdate {
    const current = new Map<string, Series>();
    const folded = new Set<string>();
    for (const c of connections) {
      const peer = label(c.peer);
      if (peer === OTHER_PEER) folded.add(c.peer);
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
    return { series: result, foldedPeers: folded.size };
  }
}
