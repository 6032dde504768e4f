import assert from 'node:assert/strict';
import { ConnectionSeries } from '../src/series';
import type { Connection } from '../src/snapshot';

const c = (peer: string, count: number, state: Connection['state'] = 'established', localPort = 80): Connection => ({ peer, localPort, state, count });
const show = (series: { peer: string; localPort: number; state: string; value: number }[]) =>
  series.map((s) => `${s.peer} ${s.localPort} ${s.state} ${s.value}`).sort();

describe('series: cardinality cap and retention', () => {
  it('keeps every peer under the cap', () => {
    const update = new ConnectionSeries(2, 60_000).update([c('203.0.113.114', 1), c('203.0.113.115', 2, 'time_wait')], 0);
    assert.deepEqual(show(update.series), ['203.0.113.114 80 established 1', '203.0.113.115 80 time_wait 2']);
    assert.equal(update.foldedPeers, 0);
  });

  it('folds the peers with the fewest connections into peer="other" beyond the cap', () => {
    const update = new ConnectionSeries(2, 60_000).update(
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
    const series = new ConnectionSeries(10, 60_000);
    series.update([c('203.0.113.114', 3), c('203.0.113.115', 1)], 0);
    assert.deepEqual(show(series.update([c('203.0.113.115', 1)], 30_000).series), ['203.0.113.114 80 established 0', '203.0.113.115 80 established 1']);
    assert.deepEqual(show(series.update([], 60_000).series), ['203.0.113.114 80 established 0', '203.0.113.115 80 established 0']);
    assert.deepEqual(show(series.update([], 60_001).series), ['203.0.113.115 80 established 0']);
    assert.deepEqual(show(series.update([], 90_001).series), []);
    // A series that comes back starts a new retention period.
    assert.deepEqual(show(series.update([c('203.0.113.114', 2)], 100_000).series), ['203.0.113.114 80 established 2']);
  });
});
