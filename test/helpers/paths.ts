import { readFileSync } from 'node:fs';
import path from 'node:path';

// Tests run from dist/test/.
export const CLI = path.resolve(__dirname, '..', '..', 'src', 'cli', 'cli.js');
export const POPULATION = path.resolve(__dirname, '..', 'fixtures', 'population.js');

/** NODE_OPTIONS as systemd/sockmon.service sets them (the heap cap): tests of limits run sockmon as deployed. */
export const UNIT_NODE_OPTIONS = (() => {
  const unit = readFileSync(path.resolve(__dirname, '..', '..', '..', 'systemd', 'sockmon.service'), 'utf8');
  const match = /^Environment="NODE_OPTIONS=([^"]+)"$/m.exec(unit);
  if (!match) throw new Error('systemd/sockmon.service sets no NODE_OPTIONS');
  return match[1];
})();
