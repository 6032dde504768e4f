// Log lines on stderr: logfmt with timestamps on a terminal or file; sd-daemon priority prefixes when stderr is the
// journal (JOURNAL_STREAM names stderr's device and inode), so `journalctl -p err` finds the errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { CLI } from '../helpers/paths';

const LOG = path.resolve(__dirname, '..', '..', 'src', 'common', 'log.js');

/** Runs `script` in a child whose JOURNAL_STREAM names its own stderr (as systemd sets it), or a different file. */
function runWithStream(script: string, matching: boolean) {
  const prelude = `const st = require('node:fs').fstatSync(2); process.env.JOURNAL_STREAM = ${matching ? '`${st.dev}:${st.ino}`' : '`${st.dev}:${st.ino + 1}`'};`;
  return spawnSync(process.execPath, ['-e', prelude + script], { encoding: 'utf8', env: { ...process.env, JOURNAL_STREAM: undefined } });
}

const everyLevel = `const { Logger } = require(${JSON.stringify(LOG)}); const log = new Logger('debug');
log.error('e', { a: 1 }); log.warn('w'); log.info('i'); log.debug('d');`;

describe('log: journal priorities', () => {
  it('prefixes each line with its sd-daemon priority and leaves the time to journald when stderr is the journal', () => {
    const { stderr } = runWithStream(everyLevel, true);
    assert.deepEqual(stderr.trimEnd().split('\n'), ['<3>level=error msg=e a=1', '<4>level=warn msg=w', '<6>level=info msg=i', '<7>level=debug msg=d']);
  });

  it('writes plain timestamped lines when JOURNAL_STREAM names another stream (stderr redirected)', () => {
    const { stderr } = runWithStream(everyLevel, false);
    const lines = stderr.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    for (const line of lines) assert.match(line, /^ts=\d{4}-\d\d-\d\dT[\d:.]+Z level=(error|warn|info|debug) msg=/);
  });

  it("gives a bad flag's one line priority err under the journal", () => {
    const { stderr, status } = runWithStream(`require(${JSON.stringify(CLI)}).main(['serve', '--port', '99999']);`, true);
    assert.equal(status, 2);
    assert.match(stderr, /^<3>sockmon: --port: invalid port "99999"[^\n]*\n$/);
  });
});
