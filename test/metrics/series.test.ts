import assert from 'node:assert/strict';
import { ConnectionSeries, MAX_FOLDED_TRACKED, OTHER_PEER, PeerLabels } from '../../src/metrics/series';
import type { Connection } from '../../src/kernel/snapshot';

const c = (peer: string, count: number, state: Connection['state'] = 'established', localPort = 80): Connection => ({ peer, localPort, state, count });
const show = (series: { peer: string; localPort: number; state: string; value: number }[]) =>
  series.map((s) => `${s.peer} ${s.localPort} ${s.state} ${s.value}`).sort();

/** One scrape's bookkeeping, as src/metrics/scrape.ts does it. */
function scraper(maxPeers: number, retentionMs: number) {
  const labels = new PeerLabels(maxPeers, retentionMs);
  const series = new ConnectionSeries(retentionMs);
  return {
    labels,
    update(connections: Connection[], now: number) {
      const weights = new Map<string, number>();
      for (const x of connections) weights.set(x.peer, (weights.get(x.peer) ?? 0) + x.count);
      return series.update(connections, labels.see(weights, now), now);
    },
  };
}

describe('series: cardinality cap and retention', () => {
  it('keeps every peer under the cap', () => {
    const update = scraper(2, 60_000).update([c('203.0.113.114', 1), c('203.0.113.115', 2, 'time_wait')], 0);
    assert.deepEqual(show(update.series), ['203.0.113.114 80 established 1', '203.0.113.115 80 time_wait 2']);
    assert.equal(update.foldedPeers, 0);
  });

  it('folds the peers with the fewest connections into peer="other" beyond the cap', () => {
    const update = scraper(2, 60_000).update(
      [c('203.0.113.97', 1), c('203.0.113.98', 5), c('203.0.113.99', 2), c('203.0.113.99', 2, 'time_wait'), c('203.0.113.100', 3, 'time_wait')],
      0,
    );
    assert.deepEqual(show(update.series), [
      '203.0.113.98 80 established 5',
      '203.0.113.99 80 established 2',
      '203.0.113.99 80 time_wait 2',
      'other 80 established 1',
      'other 80 time_wait 3',
    ]);
    assert.equal(update.foldedPeers, 2);
  });

  it('reports an emptied series as 0 for the retention period, then drops it', () => {
    const series = scraper(10, 60_000);
    series.update([c('203.0.113.114', 3), c('203.0.113.115', 1)], 0);
    assert.deepEqual(show(series.update([c('203.0.113.115', 1)], 30_000).series), ['203.0.113.114 80 established 0', '203.0.113.115 80 established 1']);
    assert.deepEqual(show(series.update([], 60_000).series), ['203.0.113.114 80 established 0', '203.0.113.115 80 established 0']);
    assert.deepEqual(show(series.update([], 60_001).series), ['203.0.113.115 80 established 0']);
    assert.deepEqual(show(series.update([], 90_001).series), []);
    // A series that comes back starts a new retention period.
    assert.deepEqual(show(series.update([c('203.0.113.114', 2)], 100_000).series), ['203.0.113.114 80 established 2']);
  });

  it('applies the cap to retained zeros too, and never shows a folded peer under its own label', () => {
    // --max-peers 10 and peers that rotate every scrape (the finding: 301 labels came out).
    const series = scraper(10, 600_000);
    const labelsSeen = new Set<string>();
    for (let round = 0; round < 30; round++) {
      const peers = Array.from({ length: 10 }, (_, i) => `10.0.${round}.${i}`);
      const update = series.update(
        peers.map((peer) => c(peer, 1)),
        round * 15_000,
      );
      const own = update.series.filter((s) => s.peer !== OTHER_PEER);
      for (const s of own) labelsSeen.add(s.peer);
      assert.ok(own.length <= 10, `round ${round}: ${own.length} peers with their own series`);
      // Every peer with connections is counted where it is reported, never as 0 under its own label.
      const total = update.series.reduce((sum, s) => sum + s.value, 0);
      assert.equal(total, 10, `round ${round}`);
      for (const s of own) if (peers.includes(s.peer)) assert.equal(s.value, 1);
    }
    assert.equal(labelsSeen.size, 10, 'the first ten keep their labels while remembered');
  });

  it('frees the labels of peers not seen for the retention period', () => {
    const series = scraper(2, 60_000);
    series.update([c('10.0.0.1', 1), c('10.0.0.2', 1)], 0);
    assert.deepEqual(show(series.update([c('10.0.0.3', 1)], 30_000).series), [
      '10.0.0.1 80 established 0',
      '10.0.0.2 80 established 0',
      'other 80 established 1',
    ]);
    // 10.0.0.3 stays folded while it is seen; new peers get the freed labels.
    assert.deepEqual(show(series.update([c('10.0.0.3', 1), c('10.0.0.4', 2)], 60_001).series), ['10.0.0.4 80 established 2', 'other 80 established 1']);
  });

  it('remembers a bounded number of folded peers, whatever number the network sends', () => {
    const labels = new PeerLabels(5, 600_000);
    for (let batch = 0; batch < 20; batch++) {
      const weights = new Map(Array.from({ length: 10_000 }, (_, i) => [`2001:db8::${batch}:${i}`, 1] as [string, number]));
      const label = labels.see(weights, batch);
      if (batch === 0) assert.equal([...weights.keys()].filter((p) => label(p) !== OTHER_PEER).length, 5);
    }
    assert.equal(labels.tracked, 5 + MAX_FOLDED_TRACKED);
  });
});
