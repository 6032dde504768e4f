// The .deb: the format's tree plus DEBIAN/ (control, conffiles, md5sums, the maintainer scripts), built by
// dpkg-deb with root as owner of every file (--root-owner-group: no fakeroot, no root needed to build).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AppManifest, Arch, Compression, Description, PACKAGING_DIR, packageVersion } from './description';
import { libstdcxxRelease, neededVersions } from './elf';

function installedSizeKiB(tree: string): number {
  return Number(execFileSync('du', ['-sk', '--apparent-size', '--exclude=DEBIAN', tree], { encoding: 'utf8' }).split('\t')[0]);
}

function md5sums(tree: string, conffiles: string[]): string {
  return readdirSync(tree, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(tree, path.join(entry.parentPath, entry.name)))
    .filter((file) => !file.startsWith('DEBIAN/') && !conffiles.includes(`/${file}`))
    .sort()
    .map(
      (file) =>
        `${createHash('md5')
          .update(readFileSync(path.join(tree, file)))
          .digest('hex')}  ${file}\n`,
    )
    .join('');
}

/** The control file's Depends: the description's list with the glibc and libstdc++ floors the ELF files need. */
export function debDepends(description: Description, tree: string): string {
  const needed = neededVersions(tree);
  if (!needed.glibc) throw new Error(`no ELF file in ${tree} needs GLIBC: is the Node.js binary missing?`);
  return description.deb.depends.map((item) => item.replace('{glibc}', needed.glibc!).replace('{libstdcxx}', libstdcxxRelease(needed.glibcxx))).join(', ');
}

/** Builds the .deb from `tree` (the deb format's tree) into `outDirectory`; the package's path. */
export function buildDeb(description: Description, app: AppManifest, arch: Arch, tree: string, outDirectory: string, compression: Compression): string {
  const version = `${packageVersion(app.version)}-${description.release}`;
  const architecture = description.architectures[arch].deb;
  const conffiles = [description.deb.defaults];
  mkdirSync(path.join(tree, 'usr/share/doc/sockmon'), { recursive: true });
  copyFileSync(path.join(tree, description.files.runtime, 'app', 'LICENSE'), path.join(tree, 'usr/share/doc/sockmon/copyright'));
  const control = [
    `Package: ${app.name}`,
    `Version: ${version}`,
    `Architecture: ${architecture}`,
    `Maintainer: ${description.maintainer}`,
    `Installed-Size: ${installedSizeKiB(tree)}`,
    `Depends: ${debDepends(description, tree)}`,
    `Section: ${description.deb.section}`,
    `Priority: ${description.deb.priority}`,
    `Description: ${app.description}`,
    ` Counts, per load-balancer proxy peer, local port and TCP state, the connections of the host, read from the`,
    ` kernel over netlink inet_diag, and serves them to Prometheus. Carries its own Node.js runtime`,
    ` (${path.join(description.files.runtime, 'node')}): the host needs no Node.js.`,
  ];
  const debian = path.join(tree, 'DEBIAN');
  mkdirSync(debian);
  writeFileSync(path.join(debian, 'control'), `${control.join('\n')}\n`);
  writeFileSync(path.join(debian, 'conffiles'), conffiles.map((file) => `${file}\n`).join(''));
  writeFileSync(path.join(debian, 'md5sums'), md5sums(tree, conffiles));
  for (const [name, file] of Object.entries(description.deb.scripts)) {
    copyFileSync(path.join(PACKAGING_DIR, file), path.join(debian, name));
    chmodSync(path.join(debian, name), 0o755);
  }
  const output = path.join(outDirectory, `${app.name}_${version}_${architecture}.deb`);
  const compress = compression === 'best' ? ['-Zxz', '-z6'] : ['-Zgzip', '-z1'];
  execFileSync('dpkg-deb', ['--root-owner-group', ...compress, '--build', tree, output], { stdio: ['ignore', 'ignore', 'inherit'] });
  return output;
}
