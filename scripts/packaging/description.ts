// The one description of the OS packages (packaging/sockmon.json), read and checked, plus what both formats take
// from the release tarball's package.json: name, version, summary, licence and the CLI entry.
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const PACKAGING_DIR = path.resolve(__dirname, '..', '..', '..', 'packaging');

export type Arch = 'x64' | 'arm64';
export type Format = 'deb' | 'rpm';
/** best: xz -6, what a release ships; fast: gzip -1, for trials and test fodder. */
export type Compression = 'best' | 'fast';
export const ARCHES: readonly Arch[] = ['x64', 'arm64'];
export const FORMATS: readonly Format[] = ['deb', 'rpm'];

/** What differs between the formats: where the unit and the settings go, the scriptlets, the dependencies. */
export interface FormatDescription {
  unitDirectory: string;
  defaults: string;
  /** Maintainer script name (deb: postinst, rpm: post ...) -> file under packaging/. */
  scripts: Record<string, string>;
}

export interface Description {
  maintainer: string;
  release: string;
  architectures: Record<Arch, Record<Format, string>>;
  files: { runtime: string; command: string; manPage: string; monitoring: string; tlsDirectory: string };
  deb: FormatDescription & { section: string; priority: string; depends: string[] };
  rpm: FormatDescription & { group: string; requires: string[] };
}

export function loadDescription(file = path.join(PACKAGING_DIR, 'sockmon.json')): Description {
  const description = JSON.parse(readFileSync(file, 'utf8')) as Description;
  if (!/^[1-9][0-9]*$/.test(description.release)) throw new Error(`${file}: release must be a positive integer, got "${description.release}"`);
  for (const arch of ARCHES) {
    if (!description.architectures[arch]?.deb || !description.architectures[arch]?.rpm) throw new Error(`${file}: no deb and rpm name for ${arch}`);
  }
  return description;
}

/** The fields of the app's package.json the packages use. */
export interface AppManifest {
  name: string;
  version: string;
  description: string;
  license: string;
  /** The CLI entry, relative to the app directory, from package.json's "bin". */
  cli: string;
}

export function readAppManifest(appDirectory: string): AppManifest {
  const manifest = JSON.parse(readFileSync(path.join(appDirectory, 'package.json'), 'utf8'));
  const bin: unknown = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[manifest.name];
  if (typeof bin !== 'string') throw new Error(`${appDirectory}/package.json has no "bin" entry for ${manifest.name}`);
  return { name: manifest.name, version: manifest.version, description: manifest.description, license: manifest.license, cli: path.posix.normalize(bin) };
}

/**
 * npm's semver as each format orders it: a pre-release (1.2.0-rc.1) sorts before its release in npm, and a tilde
 * gives it that place in dpkg and rpm (1.2.0~rc.1 < 1.2.0); dpkg and rpm refuse a hyphen in the upstream version.
 */
export function packageVersion(npmVersion: string): string {
  if (!/^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(npmVersion)) throw new Error(`not a semver version: "${npmVersion}"`);
  return npmVersion.replace(/\+.*$/, '').replace('-', '~').replace(/-/g, '.');
}
