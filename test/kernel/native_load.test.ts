// A host where the addon cannot load (no file for its libc or architecture, a file the loader refuses): the real
// CLI exits 3 (the unit's RestartPreventExitStatus=) with one line saying what was looked for, what the host is and
// the command that builds the addon from source, at journal priority err when stderr is the journal.
// node-gyp-build's own variables point it elsewhere: SOCKMON_PREBUILD (the directory searched), LIBC, npm_config_arch.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI } from '../helpers/paths';

const GLIBC = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime;

/** Runs `sockmon snapshot` with `env`; stderr goes to a file whose device and inode JOURNAL_STREAM names when `journal`. */
function snapshot(env: NodeJS.ProcessEnv, journal = false) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-load-stderr-'));
  try {
    const file = path.join(dir, 'stderr');
    const fd = openSync(file, 'w');
    const stat = fstatSync(fd);
    const result = spawnSync(process.execPath, [CLI, 'snapshot', '--json'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', fd],
      env: { ...process.env, JOURNAL_STREAM: journal ? `${stat.dev}:${stat.ino}` : undefined, ...env },
      timeout: 30_000,
    });
    closeSync(fd);
    return { status: result.status, stdout: result.stdout, stderr: readFileSync(file, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('cli: a host the native addon cannot load on', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-load-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A package directory holding only prebuilds/<tuple>/<file> with `bytes`. */
  function prebuild(tuple: string, file: string, bytes: string | Buffer) {
    mkdirSync(path.join(dir, 'prebuilds', tuple), { recursive: true });
    writeFileSync(path.join(dir, 'prebuilds', tuple, file), bytes);
  }

  function assertOneLine(stderr: string, wanted: RegExp) {
    const lines = stderr.split('\n').filter(Boolean);
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0], /^sockmon: error: cannot load the native addon: looked for build\/Release\/sockmon\.node and /);
    assert.match(lines[0], wanted);
    assert.ok(lines[0].includes(`this host is linux ${os.arch()} with glibc ${GLIBC}`), lines[0]);
    assert.ok(lines[0].endsWith(`cd ${dir} && npx --yes node-gyp@12 rebuild`), lines[0]);
  }

  it('a missing file: exit 3, what was looked for, the host, the command', () => {
    const result = snapshot({ SOCKMON_PREBUILD: dir });
    assert.equal(result.status, 3, result.stderr);
    assert.equal(result.stdout, '');
    assertOneLine(result.stderr, new RegExp(`prebuilds/linux-${os.arch()}/sockmon\\.glibc\\.node in ${dir} \\(No native build was found for platform=linux`));
  });

  it('musl (LIBC=musl, as on Alpine): the glibc addon is not taken', () => {
    prebuild(`linux-${os.arch()}`, 'sockmon.glibc.node', 'not used');
    const result = snapshot({ SOCKMON_PREBUILD: dir, LIBC: 'musl' });
    assert.equal(result.status, 3, result.stderr);
    assertOneLine(result.stderr, new RegExp(`prebuilds/linux-${os.arch()}/sockmon\\.musl\\.node .*libc=musl`));
  });

  it('another architecture: no prebuild for it', () => {
    prebuild(`linux-${os.arch()}`, 'sockmon.glibc.node', 'not used');
    const result = snapshot({ SOCKMON_PREBUILD: dir, npm_config_arch: 'riscv64' });
    assert.equal(result.status, 3, result.stderr);
    assertOneLine(result.stderr, /prebuilds\/linux-riscv64\/sockmon\.glibc\.node .*arch=riscv64/);
  });

  it('a file the loader refuses (as an older glibc refuses a newer addon): its reason in the line', () => {
    prebuild(`linux-${os.arch()}`, 'sockmon.glibc.node', Buffer.alloc(64, 0x7f));
    const result = snapshot({ SOCKMON_PREBUILD: dir });
    assert.equal(result.status, 3, result.stderr);
    assertOneLine(result.stderr, /sockmon\.glibc\.node: invalid ELF header\)/);
  });

  it('writes the line at journal priority err when stderr is the journal', () => {
    const result = snapshot({ SOCKMON_PREBUILD: dir }, true);
    assert.equal(result.status, 3, result.stderr);
    assert.match(result.stderr, /^<3>sockmon: error: cannot load the native addon: /);
  });
});
