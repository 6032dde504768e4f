// What `npm pack` puts in the release tarball beyond the file list: run as prepack and postpack.
//   prepack:  package.json keeps only the scripts an operator runs (start, install-service, uninstall-service). The
//             build-only ones stay out of the published manifest: npm 11 counts `prepare` of a tarball install as an
//             install script and warns (`npm warn install-scripts ... (prepare: node-gyp rebuild ...)`), although it
//             never runs there. And the bundled dependencies lose what never runs: test data (bintrees ships a 2 MB
//             test/perf/100k) and source maps. The checkout's package.json is kept aside, restored by postpack.
//   postpack: puts the checkout's package.json back.
// A pack that died between the two leaves the copy aside (git shows package.json changed, without its build
// scripts, so the next pack would not even run prepack): `node dist/scripts/pack.js postpack` puts it back.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const MANIFEST = path.join(ROOT, 'package.json');
const ASIDE = path.join(ROOT, '.package.json.prepack');
/** Scripts an operator runs from the installed package (README: Deploy). */
const PUBLISHED_SCRIPTS = ['start', 'install-service', 'uninstall-service'];
/** Directories of a bundled dependency that no code of it loads. */
const NEVER_RUN_DIRS = new Set(['test', 'tests', '__tests__', 'example', 'examples', 'benchmark', 'bench', 'perf', 'spec', 'specs', '.github']);

function restore(): void {
  if (existsSync(ASIDE)) renameSync(ASIDE, MANIFEST);
}

/** The installed packages of the production closure (package-lock entries not marked dev): what is bundled. */
function bundledPackageDirs(): string[] {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([key, entry]) => key.startsWith('node_modules/') && !entry.dev)
    .map(([key]) => path.join(ROOT, key))
    .filter((dir) => existsSync(dir));
}

/** Removes never-run directories and source maps under `dir`, not descending into nested packages. Returns bytes. */
function prune(dir: string, top = true): number {
  let removed = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'node_modules') continue; // its packages are pruned as entries of their own
      if (top && NEVER_RUN_DIRS.has(entry.name)) {
        removed += size(file);
        rmSync(file, { recursive: true, force: true });
      } else {
        removed += prune(file, false);
      }
    } else if (entry.isFile() && entry.name.endsWith('.map')) {
      removed += statSync(file).size;
      rmSync(file);
    }
  }
  return removed;
}

function size(file: string): number {
  const stat = statSync(file);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(file).reduce((sum, name) => sum + size(path.join(file, name)), 0);
}

function prepack(): void {
  restore();
  const text = readFileSync(MANIFEST, 'utf8');
  const manifest = JSON.parse(text) as { scripts: Record<string, string> };
  writeFileSync(ASIDE, text);
  manifest.scripts = Object.fromEntries(Object.entries(manifest.scripts).filter(([name]) => PUBLISHED_SCRIPTS.includes(name)));
  writeFileSync(MANIFEST, JSON.stringify(manifest, null, 2) + '\n');
  const removed = bundledPackageDirs().reduce((sum, dir) => sum + prune(dir), 0);
  console.error(
    `pack: published scripts ${PUBLISHED_SCRIPTS.join(', ')}; ${(removed / 1024).toFixed(0)} KiB of tests and source maps pruned from the bundled dependencies`,
  );
}

const command = process.argv[2];
if (command === 'prepack') prepack();
else if (command === 'postpack') restore();
else {
  console.error('usage: node dist/scripts/pack.js prepack|postpack');
  process.exit(2);
}
