// The seed's lab for real (demo/lab.ts): Apache (KeepAlive On / Off) behind two HAProxy nodes (http-reuse safe /
// aggressive), one client mix of keep-alive sessions and one-shot clients, sockmon on the backend. Checks that
// sockmon's metrics tell the setups apart the way the reading guide says (monitoring/README.md). Root only.
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
        `      ${r.setup}: ${r.requests} requests, ${r.closed} closed, mean ${r.segmentsMean.toFixed(1)} requests/connection, time_wait ${r.timeWait}`,
      );
  });

  it('KeepAlive Off: one connection per request, with exactly one request each, most closed by the backend', () => {
    for (const reuse of ['safe', 'aggressive']) {
      const r = row('Off', reuse);
      assert.equal(r.closed, r.requests, reuse);
      assert.equal(r.segmentsMean, 1, reuse);
      assert.ok(r.timeWait > r.closed / 2, `${reuse}: time_wait ${r.timeWait} of ${r.closed}`);
    }
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
