// What a shared object needs from the host's dynamic loader, read with readelf (binutils; it reads every
// architecture's ELF): its NEEDED libraries and the symbol versions it requires of them (.gnu.version_r).
import { execFileSync } from 'node:child_process';

export interface ElfNeeds {
  libraries: string[];
  /** Symbol versions required, e.g. GLIBC_2.14, GLIBCXX_3.4.29, per library file. */
  versions: { library: string; version: string }[];
}

/** Parses `readelf -d -V -W` output. */
export function parseReadelf(output: string): ElfNeeds {
  const libraries = [...output.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const versions: ElfNeeds['versions'] = [];
  let library = '';
  for (const line of output.split('\n')) {
    const file = /Version: \d+\s+File: (\S+)/.exec(line);
    if (file) library = file[1];
    const name = /^\s+0x[0-9a-f]+:\s+Name: (\S+)/.exec(line);
    if (name && library) versions.push({ library, version: name[1] });
  }
  return { libraries, versions };
}

export function elfNeeds(file: string): ElfNeeds {
  // A Node.js binary's symbol version table is megabytes of text.
  return parseReadelf(execFileSync('readelf', ['-d', '-V', '-W', file], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

/** The release's floor: what an addon may ask of a host where Node.js 20's official binaries run. */
export const FLOOR: Record<string, string> = { x64: '2.28', arm64: '2.17' };
/** Libraries every glibc host has (the loader, libc and the parts of it that were once separate). */
const ALLOWED_LIBRARY = /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux(-x86-64|-aarch64)\.so\.[12])$/;

const versionParts = (version: string) => version.split('.').map(Number);
export function compareVersions(a: string, b: string): number {
  const [x, y] = [versionParts(a), versionParts(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/** The highest version per prefix (GLIBC, GLIBCXX, CXXABI, GCC...), e.g. { GLIBC: '2.14' }. */
export function highestVersions(needs: ElfNeeds): Record<string, string> {
  const highest: Record<string, string> = {};
  for (const { version } of needs.versions) {
    const match = /^([A-Z]+)_([\d.]+)$/.exec(version);
    if (!match) continue;
    const [, prefix, number] = match;
    if (!highest[prefix] || compareVersions(number, highest[prefix]) > 0) highest[prefix] = number;
  }
  return highest;
}

/** Everything in `needs` above the floor of `arch`: one line each; empty when the addon is portable. */
export function floorViolations(needs: ElfNeeds, arch: string): string[] {
  const floor = FLOOR[arch];
  if (!floor) return [`no floor known for architecture ${arch}`];
  const violations = needs.libraries.filter((lib) => !ALLOWED_LIBRARY.test(lib)).map((lib) => `needs the library ${lib}`);
  for (const { library, version } of needs.versions) {
    const glibc = /^GLIBC_([\d.]+)$/.exec(version);
    if (glibc && compareVersions(glibc[1], floor) > 0) violations.push(`needs ${version} (of ${library}), above glibc ${floor}`);
    // GLIBCXX_/CXXABI_ (libstdc++), GCC_ (libgcc_s), GLIBC_PRIVATE (changes between glibc builds): none is allowed.
    else if (!glibc) violations.push(`needs ${version} (of ${library})`);
  }
  return violations;
}
