// What each closed watched connection did over its life, from the tcp_info its close event carries: the data
// segments the peer sent (for small HTTP requests, requests per connection) and how long it sat idle before
// it ended (about the keep-alive timeout that closed it, about 0 when it was recycled after N requests).
// The close watcher counts them per (peer, local port) in C++ and hands out the buckets since its last take;
// src/metrics/closing_totals.ts sums them per peer label.
import { formatPeer } from './address';
import type { ClosedSince } from './native';

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
