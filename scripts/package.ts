// npm run package: the .deb and .rpm of sockmon, from packaging/sockmon.json and the release tarball, for every
// architecture the tarball has a prebuilt addon for (or those asked for), into packages/ (git-ignored).
//   npm run package -- [--tarball sockmon-VERSION.tgz] [--arch x64|arm64]... [--format deb|rpm]... [--out DIR] [--fast]
// Without --tarball it runs `npm pack` here first. --fast compresses with gzip -1 instead of xz -6 (several times
// quicker, about a third bigger): for trials and test fodder, not for release. Prints each package's path and size.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildDeb } from './packaging/deb';
import { Arch, ARCHES, Compression, Format, FORMATS, loadDescription } from './packaging/description';
import { formatTree, stageCommon } from './packaging/layout';
import { buildRpm } from './packaging/rpm';

const CHECKOUT = path.resolve(__dirname, '..', '..');

class UsageError extends Error {}

function parseCommandLine(argv: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        tarball: { type: 'string' },
        arch: { type: 'string', multiple: true },
        format: { type: 'string', multiple: true },
        out: { type: 'string' },
        fast: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const pick = <T extends string>(given: string[] | undefined, allowed: readonly T[], what: string): T[] | undefined => {
    const bad = given?.find((value) => !allowed.includes(value as T));
    if (bad !== undefined) throw new UsageError(`--${what}: "${bad}" is not one of ${allowed.join(', ')}`);
    return given as T[] | undefined;
  };
  return {
    tarball: values.tarball,
    arches: pick(values.arch, ARCHES, 'arch'),
    formats: pick(values.format, FORMATS, 'format') ?? [...FORMATS],
    out: path.resolve(values.out ?? path.join(CHECKOUT, 'packages')),
    compression: (values.fast ? 'fast' : 'best') as Compression,
  };
}

/** The architectures the tarball carries a prebuilt addon for (prebuilds/linux-ARCH/). */
function tarballArches(tarball: string): Arch[] {
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return ARCHES.filter((arch) => listing.includes(`package/prebuilds/linux-${arch}/`));
}

function packTarball(directory: string): string {
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', directory], {
    cwd: CHECKOUT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .at(-1)!;
  return path.join(directory, name);
}

function main(): void {
  process.umask(0o022); // the trees' modes are the packages' modes
  const options = parseCommandLine(process.argv.slice(2));
  const description = loadDescription();
  const work = mkdtempSync(path.join(os.tmpdir(), 'sockmon-package-'));
  try {
    if (options.tarball !== undefined && !existsSync(options.tarball)) throw new UsageError(`--tarball: no such file "${options.tarball}"`);
    const tarball = options.tarball ? path.resolve(options.tarball) : packTarball(work);
    const arches = options.arches ?? tarballArches(tarball);
    if (arches.length === 0) throw new Error(`${tarball} has no prebuilt addon (prebuilds/linux-x64 or linux-arm64)`);
    mkdirSync(options.out, { recursive: true });
    for (const arch of arches) {
      const staged = stageCommon(description, tarball, arch, path.join(work, `${arch}-common`));
      for (const format of options.formats as Format[]) {
        const tree = path.join(work, `${arch}-${format}`);
        formatTree(description, staged, description[format], tree);
        chmodSync(tree, 0o755);
        const build = format === 'deb' ? buildDeb : buildRpm;
        const built = build(description, staged.app, arch, tree, options.out, options.compression);
        console.log(`${built} ${(statSync(built).size / 1e6).toFixed(1)} MB`);
        rmSync(tree, { recursive: true });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`package: ${(error as Error).message}`);
  process.exit(error instanceof UsageError ? 2 : 1);
}
