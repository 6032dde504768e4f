// The seed's lab for real (demo/lab.ts): Apache (KeepAlive On / Off) behind two HAProxy nodes (http-reuse safe /
// aggressive), one client mix of keep-alive sessions and one-shot clients, sockmon on the backend. Checks that
// sockmon's metrics tell the setups apart the way the reading guide says (docs/keepalive.md, whose ranges these
// assertions hold: measured over several lab runs, with margins for a loaded machine). Root only.
import assert from 'node:assert/strict';
import { LabRow, runLab } from '../../demo/lab';
import { requireTool } from '../helpers/certs';
import { requireRoot } from '../helpers/netns';

describe('lab: real Apache behind real HAProxy, read from sockmon alone', function () {
  this.timeout(120_000);
  let rows: LabRow[] = [];
  const row = (keepAlive: string, reuse: string) => rows.find((r) => r.setup === `KeepAlive ${keepAlive}, http-reuse ${reuse}`) as LabRow;

  before(async function () {
    requireRoot(this);
    requireTool(this, 'apache2', ['-v'], 'apache2');
    requireTool(this, 'haproxy', ['-v'], 'haproxy');
    rows = await runLab(10);
    for (const r of rows)
      console.log(
        `      ${r.setup}: ${r.requests} requests, ${r.closed} closed, mean ${r.segmentsMean.toFixed(1)} requests/connection (live ${r.liveMean.toFixed(1)}), time_wait ${r.timeWait}`,
      );
  });

  it('KeepAlive Off: one connection per request, with exactly one request each, most closed by the backend', () => {
    for (const reuse of ['safe', 'aggressive']) {
      const r = row('Off', reuse);
      assert.equal(r.closed, r.requests, reuse);
      assert.equal(r.segmentsMean, 1, reuse);
      // 59-98% in TIME-WAIT over the runs measured (HAProxy resets some connections whose FIN from the
      // backend crosses its own close): more than half.
      assert.ok(r.timeWait > r.closed / 2, `${reuse}: time_wait ${r.timeWait} of ${r.closed}`);
      // Live: none, or only connections with their one request in flight (NaN with none ESTABLISHED).
      assert.ok(!(r.liveMean > 1), `${reuse}: live ${r.liveMean}`);
    }
  });

  it('reads reuse from the live connections at once: aggressive above 10 at 5 s, above what its closed ones read then', () => {
    const aggressive = row('On', 'aggressive');
    const at5 = aggressive.at.find((a) => a.seconds === 5)!;
    // Measured 27.7-45.0 live at 5 s, 21.8-58.3 at the end of the load (the pool's connections are young).
    assert.ok(at5.live > 10, `aggressive, live at 5 s: ${at5.live}`);
    // Its closed connections at 5 s: 1.0-1.6 measured (burst connections; the pool's have not ended yet), or
    // none at all (NaN): never what the live ones read.
    assert.ok(!(at5.closed >= at5.live), `aggressive at 5 s: closed ${at5.closed}, live ${at5.live}`);
    assert.ok(aggressive.liveMean > 10, `aggressive, live at the end: ${aggressive.liveMean}`);
    // Safe mode with one-shot clients: the closed ones read 1.4-1.8; the live ones more (2.8-12.8: a snapshot
    // over-samples the sessions' longer connections), never the tens of a pool.
    const safe = row('On', 'safe');
    assert.ok(safe.liveMean < 20, `safe, live at the end: ${safe.liveMean}`);
  });

  it('KeepAlive On: aggressive reuse carries many requests per connection, safe mode with one-shot clients few, and resets them', () => {
    const aggressive = row('On', 'aggressive');
    const safe = row('On', 'safe');
    assert.ok(aggressive.segmentsMean > 10, `aggressive: ${aggressive.segmentsMean}`);
    assert.ok(aggressive.closed < aggressive.requests / 10, `aggressive: ${aggressive.closed} closed for ${aggressive.requests} requests`);
    assert.ok(safe.segmentsMean <= 2, `safe: ${safe.segmentsMean}`);
    // HAProxy resets its backend connections in safe mode: no TIME-WAIT on the backend.
    assert.ok(safe.timeWait < safe.closed / 10, `safe: time_wait ${safe.timeWait} of ${safe.closed}`);
  });
});
