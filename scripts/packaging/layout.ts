// The file tree a package installs, laid out under a directory as it lands on the host:
//   /usr/lib/sockmon/node/bin/node, /usr/lib/sockmon/app/   Node.js and the app (scripts/stage-release.sh)
//   /usr/bin/sockmon                                        the CLI on that Node.js
//   UNIT_DIRECTORY/sockmon.service                          systemd/sockmon.service with the packaged paths
//   /etc/default/sockmon or /etc/sysconfig/sockmon          systemd/sockmon.default (the conffile)
//   /etc/sockmon/ (0700)                                    TLS material, loaded by the unit as credentials
//   /usr/share/man/man1/sockmon.1.gz, /usr/share/sockmon/   the man page, the monitoring bundle
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { AppManifest, Arch, Description, FormatDescription, readAppManifest } from './description';

const STAGE_RELEASE = path.resolve(__dirname, '..', '..', '..', 'scripts', 'stage-release.sh');
const UNIT = 'sockmon.service';
/** Where the common tree keeps the files each format writes its own way; not part of any package. */
const SOURCES = '.per-format';

const at = (tree: string, file: string) => path.join(tree, file);

function writeFile(file: string, content: string | Buffer, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
  chmodSync(file, mode);
}

/**
 * systemd/sockmon.service as the package installs it: ExecStart on the bundled Node.js and the app's CLI, and the
 * format's settings file. Throws when the source unit no longer has the lines this rewrites.
 */
export function packagedUnit(source: string, node: string, cli: string, defaults: string): string {
  const execStart = /^ExecStart=\S+ \S+ serve$/m;
  const environmentFile = /^EnvironmentFile=-\/etc\/default\/sockmon$/m;
  if (!execStart.test(source) || !environmentFile.test(source))
    throw new Error(`systemd/${UNIT}: no "ExecStart=NODE CLI serve" or "EnvironmentFile=-/etc/default/sockmon" line to rewrite`);
  return source
    .replace(execStart, `ExecStart=${node} ${cli} serve`)
    .replace(environmentFile, `EnvironmentFile=-${defaults}`)
    .replaceAll('/etc/default/sockmon', defaults);
}

/** The wrapper installed as /usr/bin/sockmon. */
export function commandWrapper(node: string, cli: string): string {
  return `#!/bin/sh\n# sockmon's command: its CLI on the Node.js runtime the package carries (the host needs no Node.js).\nexec ${node} ${cli} "$@"\n`;
}

export interface StagedApp {
  tree: string;
  app: AppManifest;
}

/** Stages the files both formats share (all but the unit, the settings file and the man page) for `arch` under `tree`. */
export function stageCommon(description: Description, tarball: string, arch: Arch, tree: string): StagedApp {
  execFileSync('bash', [STAGE_RELEASE, tarball, arch, tree], { stdio: ['ignore', 'inherit', 'inherit'] });
  const { files } = description;
  const appDirectory = at(tree, path.join(files.runtime, 'app'));
  const app = readAppManifest(appDirectory);
  const node = path.join(files.runtime, 'node', 'bin', 'node');
  writeFile(at(tree, files.command), commandWrapper(node, path.join(files.runtime, 'app', app.cli)), 0o755);
  mkdirSync(path.dirname(at(tree, files.monitoring)), { recursive: true });
  renameSync(path.join(appDirectory, 'monitoring'), at(tree, files.monitoring));
  // The unit, the settings and the man page (which names the settings file) come per format; the shell installer
  // is for hosts with their own Node.js.
  renameSync(path.join(appDirectory, 'systemd'), path.join(tree, SOURCES));
  renameSync(path.join(appDirectory, 'man', 'sockmon.1'), path.join(tree, SOURCES, 'sockmon.1'));
  rmSync(path.join(appDirectory, 'scripts', 'install-service.sh'));
  rmdirSync(path.join(appDirectory, 'scripts')); // fails if the tarball gained other scripts: decide where they go
  rmSync(path.join(appDirectory, 'man'), { recursive: true });
  mkdirSync(path.dirname(at(tree, files.tlsDirectory)), { recursive: true });
  mkdirSync(at(tree, files.tlsDirectory), { mode: 0o700 });
  chmodSync(at(tree, files.tlsDirectory), 0o700); // whatever the umask
  return { tree, app };
}

/** A copy of the common tree with the unit, the settings file and the man page, each naming `format`'s settings file. */
export function formatTree(description: Description, staged: StagedApp, format: FormatDescription, tree: string): void {
  execFileSync('cp', ['-a', '--reflink=auto', staged.tree, tree]);
  rmSync(path.join(tree, SOURCES), { recursive: true });
  const { files } = description;
  const node = path.join(files.runtime, 'node', 'bin', 'node');
  const cli = path.join(files.runtime, 'app', staged.app.cli);
  const sources = path.join(staged.tree, SOURCES);
  const source = (name: string) => readFileSync(path.join(sources, name), 'utf8').replaceAll('/etc/default/sockmon', format.defaults);
  writeFile(at(tree, path.join(format.unitDirectory, UNIT)), packagedUnit(readFileSync(path.join(sources, UNIT), 'utf8'), node, cli, format.defaults), 0o644);
  writeFile(at(tree, format.defaults), source('sockmon.default'), 0o644);
  writeFile(at(tree, files.manPage), gzipSync(source('sockmon.1'), { level: 9 }), 0o644);
}
