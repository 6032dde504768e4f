// The release tarball (`npm pack` of this checkout), made once per test run and shared by every test that installs
// it (the systemd end to end, the old host, the OS packages, the image): packing builds the prebuilt addons.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHECKOUT = path.resolve(__dirname, '..', '..', '..');
export const VERSION = JSON.parse(readFileSync(path.join(CHECKOUT, 'package.json'), 'utf8')).version as string;

let packed: string | undefined;

/** The absolute path of sockmon-VERSION.tgz, packed on first use into a directory removed when the run exits. */
export function releaseTarball(): string {
  if (packed) return packed;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-pack-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const pack = spawnSync('npm', ['pack', '--pack-destination', dir], { cwd: CHECKOUT, encoding: 'utf8' });
  if (pack.status !== 0) throw new Error(`npm pack failed:\n${pack.stdout}${pack.stderr}`);
  packed = path.join(dir, `sockmon-${VERSION}.tgz`);
  return packed;
}
