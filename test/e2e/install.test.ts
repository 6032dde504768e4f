// The systemd unit and the scripted install, into a temporary root (DESTDIR): nothing on the machine changes.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { environmentVariable, serveOptions, watchOptions } from '../../src/cli/cli';
import { exited, startServe } from '../helpers/cli';
import { requireTools } from '../helpers/prerequisites';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SCRIPT = path.join(ROOT, 'scripts', 'install-service.sh');

/** Every path below `dir`, relative to it, with file contents: what a test compares before and after. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const child = path.join(rel, name);
      if (statSync(path.join(dir, child)).isDirectory()) {
        out[child + '/'] = '';
        walk(child);
      } else out[child] = readFileSync(path.join(dir, child), 'utf8');
    }
  };
  walk('');
  return out;
}

describe('install: sockmon as a systemd service', () => {
  let destdir: string;
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync('bash', [SCRIPT, ...args], { env: { ...process.env, DESTDIR: destdir, ...env }, encoding: 'utf8' });
  const install = (...args: string[]) => {
    const result = run(args);
    assert.equal(result.status, 0, result.stderr);
    return result.stdout;
  };
  const at = (p: string) => path.join(destdir, p);
  const unitFile = () => at('etc/systemd/system/sockmon.service');
  // An operator's files under PREFIX (/usr/local) and beside the unit, which the installer must never touch.
  const unrelated = { 'usr/local/lib/other/keep.txt': 'other tool\n', 'usr/local/share/man/man1/other.1': '.TH OTHER 1\n', 'usr/local/README': 'mine\n' };

  before(() => {
    destdir = mkdtempSync(path.join(os.tmpdir(), 'sockmon-destdir-'));
    for (const [file, text] of Object.entries(unrelated)) {
      mkdirSync(path.dirname(at(file)), { recursive: true });
      writeFileSync(at(file), text);
    }
  });
  after(() => rmSync(destdir, { recursive: true, force: true }));

  it('refuses an unknown argument with exit 2 and its usage, writing nothing', () => {
    const before = tree(destdir);
    for (const args of [['--uninstal'], ['--help-me'], ['install'], ['--purge'], ['--uninstall', '--force']]) {
      const result = run(args);
      assert.equal(result.status, 2, `${args}: ${result.stderr}`);
      assert.match(result.stderr, /^install-service: (unknown argument "[^"]+"|--purge goes with --uninstall)\nUsage: install-service\.sh/, args.join(' '));
      assert.equal(result.stdout, '');
    }
    assert.deepEqual(tree(destdir), before);
  });

  it('prints its usage for --help, writing nothing', () => {
    const before = tree(destdir);
    const result = run(['--help']);
    assert.equal(result.status, 0);
    assert.match(result.stdout, /^Usage: install-service\.sh \[--uninstall \[--purge\]\] \| --help\n/);
    assert.match(result.stdout, /--purge +also remove the configuration/);
    assert.deepEqual(tree(destdir), before);
  });

  it('refuses a relative PREFIX with exit 2, writing nothing', () => {
    const before = tree(destdir);
    const result = run([], { PREFIX: 'usr/local' });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /PREFIX must be an absolute path, got "usr\/local"/);
    assert.deepEqual(tree(destdir), before);
  });

  it('installs a unit whose ExecStart points at files that exist, and the installed CLI runs', () => {
    install();
    const execStart = /^ExecStart=(\S+) (\S+) serve$/m.exec(readFileSync(unitFile(), 'utf8'));
    assert.ok(execStart, 'ExecStart line');
    assert.ok(existsSync(execStart[1]), `${execStart[1]} (node) exists`);
    assert.equal(execStart[2], '/usr/local/lib/sockmon/dist/src/cli/cli.js');
    const cli = at(execStart[2]);
    const out = execFileSync(process.execPath, [cli, 'snapshot', '--json', '--cidr', '127.0.0.1', '--port', '1'], { encoding: 'utf8' });
    assert.deepEqual(Object.keys(JSON.parse(out)), ['scanned', 'connections', 'listeners']);
    assert.match(readFileSync(at('usr/local/share/man/man1/sockmon.1'), 'utf8'), /^\.TH SOCKMON 1/);
    assert.equal(statSync(at('etc/sockmon')).mode & 0o777, 0o700, '/etc/sockmon is root-only');
    // No development dependency, test or checkout-only file went along.
    const installed = readdirSync(at('usr/local/lib/sockmon/node_modules'));
    for (const dev of ['mocha', 'typescript', 'node-gyp', 'prebuildify']) assert.ok(!installed.includes(dev), dev);
    assert.ok(!existsSync(at('usr/local/lib/sockmon/dist/test')));
    assert.ok(!existsSync(at('usr/local/lib/sockmon/native/fuzz')));
    for (const [file, text] of Object.entries(unrelated)) assert.equal(readFileSync(at(file), 'utf8'), text, file);
  });

  it("installs the defaults file once, keeping an operator's edits on reinstall", () => {
    const defaults = at('etc/default/sockmon');
    assert.match(readFileSync(defaults, 'utf8'), /^SOCKMON_CIDR=203\.0\.113\.96\/27$/m);
    writeFileSync(defaults, 'SOCKMON_PORT=8080\n');
    install();
    assert.equal(readFileSync(defaults, 'utf8'), 'SOCKMON_PORT=8080\n');
  });

  it('warns on reinstall when the defaults file still sets SOCKMON_ARGS (which sockmon refuses)', () => {
    const defaults = at('etc/default/sockmon');
    writeFileSync(defaults, 'SOCKMON_ARGS="--port 8080"\n');
    const result = run([]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /still sets SOCKMON_ARGS, which sockmon refuses now/);
    assert.equal(readFileSync(defaults, 'utf8'), 'SOCKMON_ARGS="--port 8080"\n');
  });

  it('refuses a package directory it did not install', () => {
    const other = mkdtempSync(path.join(os.tmpdir(), 'sockmon-destdir-'));
    try {
      mkdirSync(path.join(other, 'usr/local/lib/sockmon'), { recursive: true });
      writeFileSync(path.join(other, 'usr/local/lib/sockmon/data'), 'x');
      const result = spawnSync('bash', [SCRIPT], { env: { ...process.env, DESTDIR: other }, encoding: 'utf8' });
      assert.equal(result.status, 1);
      assert.match(result.stderr, /usr\/local\/lib\/sockmon exists and was not installed by this script/);
      assert.deepEqual(Object.keys(tree(other)), ['usr/', 'usr/local/', 'usr/local/lib/', 'usr/local/lib/sockmon/', 'usr/local/lib/sockmon/data']);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('passes systemd-analyze verify, with a security exposure of at most 2.0', function () {
    requireTools(this, [{ command: 'systemd-analyze', apt: 'systemd' }]);
    // verify resolves Documentation=man:sockmon(1) through man's search path: give it the installed page.
    const verify = spawnSync('systemd-analyze', ['verify', unitFile()], {
      encoding: 'utf8',
      env: { ...process.env, MANPATH: at('usr/local/share/man') },
    });
    assert.equal(verify.status, 0, verify.stderr);
    assert.equal(verify.stderr.trim(), '', 'no warnings');
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', unitFile()], { encoding: 'utf8' });
    const exposure = /Overall exposure level for sockmon\.service: ([\d.]+)/.exec(security.stdout);
    assert.ok(exposure, security.stdout + security.stderr);
    assert.ok(Number(exposure[1]) <= 2.0, `exposure ${exposure[1]}`);
    const unit = readFileSync(unitFile(), 'utf8');
    assert.match(unit, /^Type=notify$/m);
    assert.match(unit, /^DynamicUser=yes$/m);
    assert.match(unit, /^RestrictAddressFamilies=.*AF_NETLINK/m);
    assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    assert.match(unit, /^RestartPreventExitStatus=2 3$/m);
    assert.match(unit, /^SyslogIdentifier=sockmon$/m);
    assert.match(unit, /^Documentation=man:sockmon\(1\)$/m);
    assert.match(unit, /^LoadCredential=sockmon:\/etc\/sockmon$/m);
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m);
  });

  it('names only real flags in the defaults file, and sockmon serves with all of them set', async () => {
    const text = readFileSync(path.join(ROOT, 'systemd', 'sockmon.default'), 'utf8');
    const known = new Set(Object.keys({ ...watchOptions, ...serveOptions }).map(environmentVariable));
    const lines = [...text.matchAll(/^#?(SOCKMON_[A-Z_]+)=(.*)$/gm)];
    assert.ok(lines.length >= 10);
    const env: Record<string, string> = {};
    for (const [, name, value] of lines) {
      assert.ok(known.has(name), `${name} is the variable of a flag`);
      env[name] = value;
    }
    delete env.SOCKMON_WEB_CONFIG_FILE; // names a file that exists only on a configured host
    const withDefaults = await startServe([], (args) =>
      spawn(process.execPath, [at('usr/local/lib/sockmon/dist/src/cli/cli.js'), ...args], { env: { ...process.env, ...env } }),
    );
    try {
      assert.match(withDefaults.stderr(), /cidrs=203\.0\.113\.96\/27 ports=80 states=established,time_wait/);
    } finally {
      withDefaults.child.kill();
      await exited(withDefaults.child);
    }
  });

  it('uninstalls only what it installed, keeping the configuration and drop-ins unless purged', () => {
    mkdirSync(at('etc/systemd/system/sockmon.service.d'));
    writeFileSync(at('etc/systemd/system/sockmon.service.d/override.conf'), '[Service]\nEnvironment=X=1\n');
    writeFileSync(at('etc/sockmon/web.yml'), 'basic_auth_users: {}\n');
    install('--uninstall');
    assert.ok(!existsSync(unitFile()));
    assert.ok(!existsSync(at('usr/local/lib/sockmon')));
    assert.ok(!existsSync(at('usr/local/share/man/man1/sockmon.1')));
    assert.ok(existsSync(at('etc/default/sockmon')));
    assert.ok(existsSync(at('etc/sockmon/web.yml')));
    assert.ok(existsSync(at('etc/systemd/system/sockmon.service.d/override.conf')));
    install('--uninstall', '--purge');
    // What is left is exactly the operator's own files and the directories holding them.
    const left = Object.keys(tree(destdir)).sort();
    const expected = new Set<string>();
    for (const file of Object.keys(unrelated)) {
      expected.add(file);
      for (let dir = path.dirname(file); dir !== '.'; dir = path.dirname(dir)) expected.add(dir + '/');
    }
    assert.deepEqual(left, [...expected].sort());
    for (const [file, text] of Object.entries(unrelated)) assert.equal(readFileSync(at(file), 'utf8'), text, file);
  });
});
