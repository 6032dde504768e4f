// Histogram families filled from bucket counts: the text format, and OpenMetrics' gauge histogram.
import assert from 'node:assert/strict';
import { OpenMetricsContentType, Registry } from 'prom-client';
import { registerHistogramFamily } from '../../src/metrics/histogram_family';

const series = [{ labels: { peer: '203.0.113.114', local_port: '80' }, buckets: [1, 0, 2] }];

describe('histogram families', () => {
  it('writes cumulative buckets, no _sum without a sum, and _count, as a histogram in the text format', async () => {
    const registry = new Registry();
    registerHistogramFamily(registry, { name: 'x_seconds', help: 'h', bounds: [0.05, 1], gauge: true, collect: async () => series });
    const text = await registry.metrics();
    assert.match(text, /# TYPE x_seconds histogram/);
    assert.deepEqual(
      text.split('\n').filter((l) => l.startsWith('x_seconds')),
      [
        'x_seconds_bucket{le="0.05",peer="203.0.113.114",local_port="80"} 1',
        'x_seconds_bucket{le="1",peer="203.0.113.114",local_port="80"} 1',
        'x_seconds_bucket{le="+Inf",peer="203.0.113.114",local_port="80"} 3',
        'x_seconds_count{peer="203.0.113.114",local_port="80"} 3',
      ],
    );
  });

  it('is an OpenMetrics gaugehistogram (_gcount, _gsum) when the registry speaks OpenMetrics', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    registerHistogramFamily(registry, { name: 'x_seconds', help: 'h', bounds: [0.05, 1], gauge: true, collect: async () => [{ ...series[0], sum: 2.5 }] });
    const text = await registry.metrics();
    assert.match(text, /# TYPE x_seconds gaugehistogram/);
    assert.match(text, /^x_seconds_gcount\{peer="203.0.113.114",local_port="80"\} 3$/m);
    assert.match(text, /^x_seconds_gsum\{peer="203.0.113.114",local_port="80"\} 2.5$/m);
  });
});
