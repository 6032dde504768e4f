// Per-connection life from the close events, and the closing side from TIME-WAIT cookies: real HTTP
// conversations in a private namespace, each with a known number of requests and a known way of ending,
// scraped through `sockmon serve`.
import assert from 'node:assert/strict';
import { ChildProcess, execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { IDLE_BEFORE_CLOSE_BOUNDS_SECONDS, SEGMENT_BOUNDS } from '../../src/kernel/connection_life';
import { ClosingTotalsByLabel } from '../../src/metrics/closing_totals';
import { exited, startServe } from '../helpers/cli';
import { requireRoot, NetworkNamespace, waitForOutput } from '../helpers/netns';
import { CLI } from '../helpers/paths';
import { parseSamples, Sample, seriesOf } from '../helpers/promtext';

const CONVERSATIONS = path.resolve(__dirname, '..', 'fixtures', 'conversations.js');
const BACKEND = '203.0.113.10';

/** One histogram's buckets (cumulative, by `le`), count and sum for a peer. */
function histogramOf(samples: Sample[], name: string, peer: string) {
  const mine = samples.filter((s) => s.labels.peer === peer && s.labels.local_port === '80');
  const buckets = new Map<string, number>(); // in exposition order: ascending `le`
  for (const s of mine) if (s.name === `${name}_bucket`) buckets.set(s.labels.le, s.value);
  const one = (suffix: string) => mine.find((s) => s.name === `${name}_${suffix}`)?.value;
  return { buckets, count: one('count'), sum: one('sum') };
}

/** The bucket (its upper bound) holding every observation: where the cumulative count first reaches the total. */
function onlyBucket(h: ReturnType<typeof histogramOf>): string | undefined {
  const les = [...h.buckets.keys()];
  const first = les.findIndex((le) => h.buckets.get(le) === h.count);
  return first > 0 && h.buckets.get(les[first - 1]) !== 0 ? undefined : les[first];
}

describe('connection life and the closing side, from real conversations in a private namespace', function () {
  this.timeout(90_000);
  let ns: NetworkNamespace | undefined;
  const children: ChildProcess[] = [];
  let serveUrl: string;
  const scrape = async () => parseSamples(await ns!.fetch(`${serveUrl}/metrics`));
  const eventually = async (check: () => Promise<void>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await check();
      } catch (error) {
        if (attempt > 40) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  };
  const converse = async (plan: object, whileIdle?: () => Promise<void>) => {
    const child = ns!.spawn(process.execPath, [CONVERSATIONS, JSON.stringify(plan)]);
    const done = waitForOutput(child, 'done', 60_000);
    if (whileIdle) {
      await waitForOutput(child, 'conversed', 30_000);
      await whileIdle();
    }
    await done;
    await exited(child);
  };

  before(async function () {
    requireRoot(this);
    ns = await NetworkNamespace.create([`${BACKEND}/32`, '203.0.113.96/27']);
    const serve = await startServe(['--idle'], (args) => ns!.spawn(process.execPath, [CLI, ...args]));
    children.push(serve.child);
    serveUrl = serve.url;
  });

  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await ns?.delete();
  });

  // peer -> how its connections go: count, requests each, who ends them; and the bucket each lands in.
  const cases = [
    { from: '203.0.113.101', count: 3, requests: 1, close: 'server', segmentsLe: '1', timeWait: 3 },
    { from: '203.0.113.102', count: 2, requests: 7, close: 'client', segmentsLe: '10', timeWait: 0 },
    { from: '203.0.113.103', count: 4, requests: 25, close: 'reset', segmentsLe: '50', timeWait: 0 },
    { from: '203.0.113.104', count: 5, requests: 2, close: 'server', segmentsLe: '2', timeWait: 5 },
    { from: '203.0.113.105', count: 1, requests: 120, close: 'client', segmentsLe: '500', timeWait: 0 },
  ] as const;

  it('counts the requests of every closed connection, whoever ends it, and the server-side closes in time_wait_total', async () => {
    await converse({ host: BACKEND, port: 80, keepAliveTimeoutMs: 60_000, conversations: cases });
    await eventually(async () => {
      const samples = await scrape();
      const closed = seriesOf(samples, 'sockmon_tcp_connections_closed_total', ['peer']);
      const timeWait = seriesOf(samples, 'sockmon_tcp_connections_time_wait_total', ['peer']);
      for (const c of cases) {
        assert.equal(timeWait[c.from] ?? 0, c.timeWait, `time_wait ${c.from} (closed by the ${c.close})`);
        const segments = histogramOf(samples, 'sockmon_tcp_connection_data_segments_in', c.from);
        assert.equal(closed[c.from], c.count, `closed ${c.from}`);
        assert.equal(segments.count, c.count, `count ${c.from}`);
        assert.equal(segments.sum, c.count * c.requests, `sum ${c.from}`);
        assert.equal(onlyBucket(segments), c.segmentsLe, `bucket ${c.from}`);
        // Closed right after the last request: idle well under 100 ms.
        const idle = histogramOf(samples, 'sockmon_tcp_connection_idle_before_close_seconds', c.from);
        assert.equal(idle.count, c.count, `idle count ${c.from}`);
        assert.equal(idle.buckets.get('0.1'), c.count, `idle ${c.from} ${JSON.stringify([...idle.buckets])}`);
      }
    });
  });

  it("puts connections closed by the server's keep-alive timeout into the bucket of that timeout", async () => {
    const from = '203.0.113.106';
    // Node's server closes a connection idle for keepAliveTimeout (3 s; Node 20.19+ adds 1 s): in (2, 5].
    await converse({ host: BACKEND, port: 80, keepAliveTimeoutMs: 3000, conversations: [{ from, count: 3, requests: 4, close: 'timeout' }] });
    await eventually(async () => {
      const samples = await scrape();
      const idle = histogramOf(samples, 'sockmon_tcp_connection_idle_before_close_seconds', from);
      assert.equal(idle.count, 3);
      assert.equal(onlyBucket(idle), '5', JSON.stringify([...idle.buckets]));
      assert.ok(idle.sum! >= 3 * 3 && idle.sum! <= 3 * 5, `sum ${idle.sum}`);
      const segments = histogramOf(samples, 'sockmon_tcp_connection_data_segments_in', from);
      assert.equal(onlyBucket(segments), '5');
      assert.equal(segments.sum, 12);
      // The keep-alive timeout is the server closing first: every one ended in TIME-WAIT here.
      assert.equal(seriesOf(samples, 'sockmon_tcp_connections_time_wait_total', ['peer'])[from], 3);
    });
  });

  it('shows live connections by idle time with sub-second buckets, keeps zeros once they are gone, and passes promtool', async () => {
    const from = '203.0.113.107';
    let during: Sample[] = [];
    let scrapedAfterMs = 0;
    await converse(
      { host: BACKEND, port: 80, keepAliveTimeoutMs: 60_000, conversations: [{ from, count: 2, requests: 1, close: 'client', waitMs: 3000 }] },
      async () => {
        const started = Date.now();
        await new Promise((resolve) => setTimeout(resolve, 700)); // idle 0.7 s at the dump: in (0.5, 1] on an idle machine
        during = await scrape();
        scrapedAfterMs = Date.now() - started;
      },
    );
    const live = histogramOf(during, 'sockmon_tcp_connection_idle_seconds', from);
    assert.equal(live.count, 2);
    // Every idle time at the dump is at least 0.7 s and at most the time until the scrape came back (a loaded
    // machine makes that later: (1, 2] then), plus up to 0.1 s between the last byte and this callback (a loopback
    // round trip and a line on a pipe: milliseconds; 0.1 s covers any load seen). So nothing at or below 0.5,
    // and everything at or below the first bound past that window.
    const latest = scrapedAfterMs / 1000 + 0.1;
    const window = `a dump 0.7 to ${latest} s after the last byte: ${JSON.stringify([...live.buckets])}`;
    for (const [le, cumulative] of live.buckets) {
      if (Number(le) < 0.7) assert.equal(cumulative, 0, window);
    }
    const past = [...live.buckets.keys()].find((le) => le === '+Inf' || Number(le) >= latest) as string;
    assert.equal(live.buckets.get(past), 2, window);
    assert.equal(live.sum, undefined, 'no _sum: the kernel gives idle times, sockmon counts them per bucket only');
    await eventually(async () => {
      const samples = await scrape();
      const gone = histogramOf(samples, 'sockmon_tcp_connection_idle_seconds', from);
      assert.equal(gone.count, 0, 'the pool drained: 0, not a gap');
      assert.deepEqual(new Set(gone.buckets.values()), new Set([0]));
      assert.equal(onlyBucket(histogramOf(samples, 'sockmon_tcp_connection_idle_before_close_seconds', from)), '5');
    });
    if (spawnSync('promtool', ['--version']).error) {
      if (process.env.CI) throw new Error('promtool is missing (apt-get install prometheus)');
      return;
    }
    const text = await ns!.fetch(`${serveUrl}/metrics`);
    assert.match(text, /sockmon_tcp_connection_data_segments_in_bucket/);
    assert.equal(execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' }).trim(), '');
  });
});

describe('connection life: totals per peer label', () => {
  const segmentWidth = SEGMENT_BOUNDS.length + 1;
  const idleWidth = IDLE_BEFORE_CLOSE_BOUNDS_SECONDS.length + 1;
  /** A take with one group per entry: `segmentBucket` gets one close per connection. */
  const take = (groups: { peer: string; closes: number; segmentBucket: number; requests: number }[]) => {
    const segmentBuckets = new Uint32Array(groups.length * segmentWidth);
    const idleBuckets = new Uint32Array(groups.length * idleWidth);
    groups.forEach((g, i) => {
      segmentBuckets[i * segmentWidth + g.segmentBucket] = g.closes;
      idleBuckets[i * idleWidth] = g.closes;
    });
    return {
      peers: groups.map((g) => g.peer),
      ports: Uint16Array.from(groups, () => 80),
      segmentBuckets,
      segmentSums: Float64Array.from(groups, (g) => g.closes * g.requests),
      idleBuckets,
      idleSumsMs: Float64Array.from(groups, () => 0),
    };
  };

  it('sums the peers of a label, keeps growing, and forgets a label with the churn totals', () => {
    const totals = new ClosingTotalsByLabel(60_000);
    const fold = (peer: string) => (peer === 'a' ? 'a' : 'other');
    const kept = (...peers: string[]) => peers.map((peer) => ({ peer, localPort: 80 }));
    let result = totals.update(
      {
        life: [
          take([
            { peer: 'a', closes: 2, segmentBucket: 1, requests: 1 },
            { peer: 'b', closes: 3, segmentBucket: 7, requests: 80 },
            { peer: 'c', closes: 1, segmentBucket: 7, requests: 90 },
          ]),
        ],
        timeWait: [{ peer: 'c', localPort: 80, count: 1 }],
      },
      fold,
      kept('a', 'other'),
      0,
    );
    const other = () => result.find((r) => r.peer === 'other')!;
    assert.deepEqual(
      result.map((r) => r.peer),
      ['a', 'other'],
    );
    assert.equal(other().segments.buckets[7], 4);
    assert.equal(other().segments.sum, 330);
    assert.equal(other().timeWait, 1);
    result = totals.update({ life: [take([{ peer: 'b', closes: 1, segmentBucket: 7, requests: 60 }])], timeWait: [] }, fold, kept('a', 'other'), 50_000);
    assert.equal(other().segments.buckets[7], 5);
    // 'other' is still kept by churn at 111 s; 'a' was last kept at 50 s, 61 s ago: forgotten.
    result = totals.update({ life: [], timeWait: [] }, fold, kept('other'), 111_000);
    assert.deepEqual(
      result.map((r) => r.peer),
      ['other'],
    );
    // Back after being forgotten: from 0 (a counter reset).
    result = totals.update({ life: [take([{ peer: 'a', closes: 1, segmentBucket: 1, requests: 1 }])], timeWait: [] }, fold, kept('a', 'other'), 120_000);
    assert.equal(result.find((r) => r.peer === 'a')!.segments.sum, 1);
  });
});
