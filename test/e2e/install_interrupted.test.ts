// The installer interrupted at every kind of step, and given paths with special characters: a failing tar,
// install, mv or sed (fakes first on PATH that fail at their Nth call), and a full disk (a small tmpfs as DESTDIR,
// root only). After each interruption the installed version still works; a rerun completes the install and
// --uninstall --purge leaves nothing behind. Everything goes into temporary roots (DESTDIR).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireRoot } from '../helpers/netns';
import { requireTools } from '../helpers/prerequisites';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install-service.sh');
const UNIT = 'etc/systemd/system/sockmon.service';

/** Every path below `dir` with the size of each file: what an install left. */
function tree(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const child = path.join(rel, name);
      const stat = lstatSync(path.join(dir, child));
      if (stat.isDirectory()) {
        out[child + '/'] = 0;
        walk(child);
      } else out[child] = stat.size;
    }
  };
  walk('');
  return out;
}

/** A directory of fakes for `tools`: each runs the real tool until its `failAt`th call, which fails (0: never). */
function fakes(tools: string[], failAt: number): { dir: string; calls: (tool: string) => number } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-fakes-'));
  for (const tool of tools) {
    const real = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    writeFileSync(
      path.join(dir, tool),
      // Calls of one tool may run at once (tar | tar): the count is taken under a lock.
      `#!/bin/bash\nexec 9>>"${dir}/${tool}.lock"\nflock 9\nn=$(( $(cat "${dir}/${tool}.calls" 2>/dev/null || echo 0) + 1 ))\necho $n >"${dir}/${tool}.calls"\nflock -u 9\n` +
        `if [ $n -eq ${failAt} ]; then echo "fake ${tool}: failing call $n" >&2; exit 1; fi\nexec ${real} "$@"\n`,
    );
    chmodSync(path.join(dir, tool), 0o755);
  }
  return { dir, calls: (tool) => Number(existsSync(path.join(dir, `${tool}.calls`)) ? readFileSync(path.join(dir, `${tool}.calls`), 'utf8') : 0) };
}

const run = (destdir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) =>
  spawnSync('bash', [SCRIPT, ...args], { env: { ...process.env, DESTDIR: destdir, ...env }, encoding: 'utf8' });
const ok = (result: ReturnType<typeof run>) => assert.equal(result.status, 0, result.stderr);

/** The installed CLI runs, from the path the unit's ExecStart names. */
function assertWorking(destdir: string, what: string): void {
  const execStart = /^ExecStart=(\S+) (\S+) serve$/m.exec(readFileSync(path.join(destdir, UNIT), 'utf8'));
  assert.ok(execStart, `${what}: the unit has its ExecStart`);
  const version = spawnSync(process.execPath, [path.join(destdir, execStart[2]), '--version'], { encoding: 'utf8' });
  assert.equal(version.status, 0, `${what}: the installed CLI runs: ${version.stderr}`);
}

describe('install: interrupted at any step, then rerun or uninstalled', function () {
  this.timeout(600_000);
  let reference: Record<string, number>;
  const roots: string[] = [];
  const newRoot = () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-destdir-'));
    roots.push(dir);
    return dir;
  };

  before(() => {
    const clean = newRoot();
    ok(run(clean));
    reference = tree(clean);
  });
  after(() => {
    for (const dir of roots) rmSync(dir, { recursive: true, force: true });
  });

  // Each tool fails at a few of its calls in an upgrade: the first, the last and some between (every call would
  // take minutes: one run is ~2 s, most of it npm listing the package).
  for (const tool of ['tar', 'install', 'mv', 'sed']) {
    it(`an upgrade whose ${tool} fails leaves the old version working; a rerun completes it, --uninstall removes it all`, () => {
      const counting = fakes([tool], 0);
      const probe = newRoot();
      ok(run(probe));
      ok(run(probe, [], { PATH: `${counting.dir}:${process.env.PATH}` }));
      const calls = counting.calls(tool);
      rmSync(counting.dir, { recursive: true, force: true });
      // A tool this installer does not call (sed: today's renders the unit in bash) has nothing to fail.
      const points = [...new Set([1, Math.ceil(calls / 4), Math.ceil(calls / 2), Math.ceil((3 * calls) / 4), calls])].filter((n) => n > 0 && n <= calls);
      for (const failAt of points) {
        const destdir = newRoot();
        ok(run(destdir));
        const failing = fakes([tool], failAt);
        const interrupted = run(destdir, [], { PATH: `${failing.dir}:${process.env.PATH}` });
        rmSync(failing.dir, { recursive: true, force: true });
        assert.notEqual(interrupted.status, 0, `${tool} failing at call ${failAt} of ${calls} went unnoticed`);
        assertWorking(destdir, `${tool} failed at call ${failAt} of ${calls}`);
        ok(run(destdir));
        assert.deepEqual(tree(destdir), reference, `rerun after ${tool} failed at call ${failAt}`);
        ok(run(destdir, ['--uninstall', '--purge']));
        assert.deepEqual(tree(destdir), {}, `uninstall after ${tool} failed at call ${failAt}`);
      }
      console.log(calls ? `      ${tool}: failed at calls ${points.join(', ')} of ${calls}` : `      ${tool}: not called by an upgrade`);
    });
  }

  it('a first install interrupted (tar fails) is removed whole by --uninstall, and completed by a rerun', () => {
    const destdir = newRoot();
    const failing = fakes(['tar'], 2);
    assert.notEqual(run(destdir, [], { PATH: `${failing.dir}:${process.env.PATH}` }).status, 0);
    rmSync(failing.dir, { recursive: true, force: true });
    ok(run(destdir, ['--uninstall', '--purge']));
    assert.deepEqual(tree(destdir), {});
    const failing2 = fakes(['mv'], 8);
    assert.notEqual(run(destdir, [], { PATH: `${failing2.dir}:${process.env.PATH}` }).status, 0);
    rmSync(failing2.dir, { recursive: true, force: true });
    ok(run(destdir));
    assert.deepEqual(tree(destdir), reference);
  });

  it('an upgrade onto a full disk leaves the old version working; with room again a rerun completes it (root: a tmpfs)', function () {
    requireRoot(this);
    const mount = newRoot();
    const used = () => Number(execFileSync('df', ['--output=used', '-B1', mount], { encoding: 'utf8' }).split('\n')[1]);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=512m', 'sockmon-full', mount]);
    try {
      ok(run(mount));
      const size = used();
      // Room for less than a second copy: staging the upgrade runs out of space.
      execFileSync('mount', ['-o', `remount,size=${Math.ceil(size * 1.5)}`, mount]);
      const full = run(mount);
      assert.notEqual(full.status, 0);
      assert.match(full.stderr, /No space left on device/);
      assertWorking(mount, 'after the full disk');
      execFileSync('mount', ['-o', `remount,size=${Math.ceil(size * 3)}`, mount]);
      ok(run(mount));
      assert.deepEqual(tree(mount), reference);
      ok(run(mount, ['--uninstall', '--purge']));
      assert.deepEqual(tree(mount), {});
    } finally {
      execFileSync('umount', [mount]);
    }
  });
});

describe('install: PREFIX, DESTDIR and NODE with spaces and special characters', function () {
  this.timeout(300_000);
  let scratch: string;
  before(() => (scratch = mkdtempSync(path.join(os.tmpdir(), 'sockmon-prefix-'))));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  const prefixes = ['/opt/my apps', '/opt/a&b', '/opt/x#y', '/opt/100%', '/opt/quo"te', "/opt/it's", '/opt/$HOME', '/opt/st*r', '/opt/semi;colon'];
  it(`installs under ${prefixes.map((p) => JSON.stringify(p)).join(', ')}: the unit passes systemd-analyze verify and names the installed files`, function () {
    requireTools(this, [{ command: 'systemd-analyze', apt: 'systemd' }]);
    for (const [i, prefix] of prefixes.entries()) {
      // A DESTDIR with special characters too, and a node whose own path has them (systemd checks that the
      // executable exists: a wrongly quoted path fails verify). systemd refuses quotes and backslashes in an
      // executable's name, so the node's directory leaves those out.
      const destdir = path.join(scratch, `root ${i} &#%$`);
      const nodeDir = path.join(scratch, `node ${i}`, prefix.replace(/["'\\]/g, '_'));
      mkdirSync(nodeDir, { recursive: true });
      symlinkSync(process.execPath, path.join(nodeDir, 'node'));
      mkdirSync(destdir);
      const result = run(destdir, [], { PREFIX: prefix, NODE: path.join(nodeDir, 'node') });
      assert.equal(result.status, 0, `${prefix}: ${result.stderr}`);
      const unit = path.join(destdir, UNIT);
      const verify = spawnSync('systemd-analyze', ['verify', unit], {
        encoding: 'utf8',
        env: { ...process.env, MANPATH: path.join(destdir, prefix, 'share/man') },
      });
      assert.equal(verify.status, 0, `${prefix}: ${verify.stderr}`);
      assert.equal(verify.stderr.trim(), '', `${prefix}: no warnings`);
      const cli = path.join(destdir, prefix, 'lib/sockmon/dist/src/cli/cli.js');
      assert.equal(spawnSync(process.execPath, [cli, '--version']).status, 0, `${prefix}: the installed CLI runs`);
      const execStart = /^ExecStart=(.*)$/m.exec(readFileSync(unit, 'utf8'))?.[1] ?? '';
      // The argument, as systemd.syntax(7) unquotes it: \\ and \" in double quotes, %% and $$ doubled.
      const quoted = /^"(?:[^"\\]|\\.)*"(?: |$)|^\S+ /.exec(execStart)![0];
      const arg = execStart.slice(quoted.length).replace(/ serve$/, '');
      const unquoted = arg.startsWith('"') ? arg.slice(1, -1).replace(/\\(.)/g, '$1').replace(/%%/g, '%').replace(/\$\$/g, '$') : arg;
      assert.equal(unquoted, path.join(prefix, 'lib/sockmon/dist/src/cli/cli.js'), `${prefix}: ${execStart}`);
      ok(run(destdir, ['--uninstall', '--purge'], { PREFIX: prefix }));
      assert.deepEqual(tree(destdir), {}, prefix);
    }
  });

  for (const [i, [name, value]] of [
    ['PREFIX', '/opt/new\nline'],
    ['PREFIX', '/opt/back\\slash'],
    ['DESTDIR', path.join(os.tmpdir(), 'tab\there')],
    ['NODE', `${process.execPath}"`],
  ].entries()) {
    it(`refuses a ${name} systemd or the manifest cannot hold (${JSON.stringify(value)}) with one line and exit 2, before any change`, () => {
      const destdir = path.join(scratch, `refused ${i}`);
      mkdirSync(destdir);
      const result = run(destdir, [], { [name]: value });
      assert.equal(result.status, 2, result.stderr);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, new RegExp(`^install-service: ${name} must not hold`));
      assert.deepEqual(tree(destdir), {});
    });
  }
});
