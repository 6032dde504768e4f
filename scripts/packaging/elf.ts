// What the ELF files of a package tree need from the C and C++ runtime: the highest GLIBC_ and GLIBCXX_ symbol
// versions they reference (readelf reads every architecture's ELF, so an arm64 tree is read on an x64 host).
// The deb declares them as versioned dependencies, the way dpkg-shlibdeps would.
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import path from 'node:path';
import { compareVersions, elfNeeds, highestVersions } from '../elf_needs';

function isElf(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    closeSync(fd);
  }
}

export function elfFiles(tree: string): string[] {
  return readdirSync(tree, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .filter(isElf);
}

/** The highest version of each symbol-version prefix (GLIBC, GLIBCXX) the ELF files of `tree` need. */
export function neededVersions(tree: string): { glibc?: string; glibcxx?: string } {
  const highest: Record<string, string> = {};
  for (const file of elfFiles(tree)) {
    for (const [prefix, version] of Object.entries(highestVersions(elfNeeds(file)))) {
      if (!highest[prefix] || compareVersions(version, highest[prefix]) > 0) highest[prefix] = version;
    }
  }
  return { glibc: highest.GLIBC, glibcxx: highest.GLIBCXX };
}

/** The GCC release whose libstdc++ first has GLIBCXX_3.4.N (the GCC manual's ABI table): the package version floor. */
const GCC_OF_GLIBCXX: Record<number, string> = {
  20: '4.9',
  21: '5',
  22: '6',
  23: '7',
  24: '7.2',
  25: '8',
  26: '9',
  27: '9.2',
  28: '9.3',
  29: '11',
  30: '12',
  31: '13',
  32: '13.2',
  33: '14',
};

export function libstdcxxRelease(glibcxx: string | undefined): string {
  if (!glibcxx) throw new Error('no ELF file needs GLIBCXX: the Node.js binary should (is it missing from the tree?)');
  const minor = Number(/^3\.4\.([0-9]+)$/.exec(glibcxx)?.[1]);
  const release = GCC_OF_GLIBCXX[minor];
  if (!release) throw new Error(`GLIBCXX_${glibcxx}: no known libstdc++ release has it (see scripts/packaging/elf.ts)`);
  return release;
}
