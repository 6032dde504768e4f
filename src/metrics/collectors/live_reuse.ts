// Reuse read from the live connections: ESTABLISHED watched connections by the data segments the peer has
// sent so far (tcpi_data_segs_in), per (peer label, local port), as a gauge histogram (live_histogram.ts)
// with the buckets of sockmon_tcp_connection_data_segments_in, the same count for the connections that
// closed. A pool that keeps its connections for hours shows its requests per connection here at the first
// scrape, where the closed-connection histogram describes only the few that did close.
import { SEGMENT_BOUNDS } from '../../kernel/connection_life';
import type { Collector } from './collector';
import { registerLiveHistogram } from './live_histogram';

export const liveReuseCollector: Collector = (context) =>
  registerLiveHistogram(context, {
    name: 'sockmon_tcp_connection_live_data_segments_in',
    help: 'ESTABLISHED watched connections now, by the data segments the peer has sent so far (tcpi_data_segs_in): for small HTTP requests, requests served on the connection up to now. A gauge histogram: read it as it is (without rate()); _sum / _count is the mean so far, a lower bound of what the pool will carry.',
    bounds: SEGMENT_BOUNDS,
    withSum: true,
    groups: ({ liveSegments }) => liveSegments,
  });
