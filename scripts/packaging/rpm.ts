// The .rpm: a spec written from the description whose %install copies the format's tree, built by rpmbuild for the
// target architecture. rpmbuild adds the ELF files' needs itself (libc.so.6(GLIBC_2.28)(64bit), libstdc++.so.6(...)
// ...): the automatic requires RHEL's own packages carry. The host's tools never touch the files (no strip, no
// debuginfo, no build-id links: the binaries are the official ones, already stripped where they should be).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AppManifest, Arch, Compression, Description, PACKAGING_DIR, packageVersion } from './description';

/** The spec for `tree`, whose files it lists. */
export function rpmSpec(description: Description, app: AppManifest, tree: string, compression: Compression): string {
  const { files, rpm } = description;
  const scriptlet = (name: string) => `%${name}\n${readFileSync(path.join(PACKAGING_DIR, rpm.scripts[name]), 'utf8')}`;
  return [
    '%global debug_package %{nil}',
    '%global __os_install_post %{nil}',
    '%global _build_id_links none',
    // xz payload, compressed on every core: RHEL 8's rpm reads it (zstd payloads came later).
    `%global _binary_payload ${compression === 'best' ? 'w6T0.xzdio' : 'w1.gzdio'}`,
    `Name: ${app.name}`,
    `Version: ${packageVersion(app.version)}`,
    `Release: ${description.release}`,
    `Summary: ${app.description}`,
    `License: ${app.license}`,
    `Group: ${rpm.group}`,
    `Packager: ${description.maintainer}`,
    // What the package has inside (its own addon, Node.js's libraries) is no one else's to depend on.
    'AutoProv: no',
    ...rpm.requires.map((item) => `Requires: ${item}`),
    '',
    '%description',
    `Counts, per load-balancer proxy peer, local port and TCP state, the connections of the host, read from the kernel`,
    `over netlink inet_diag, and serves them to Prometheus. Carries its own Node.js runtime`,
    `(${path.join(files.runtime, 'node')}): the host needs no Node.js.`,
    '',
    '%install',
    `cp -a ${tree}/. %{buildroot}/`,
    '',
    '%files',
    '%defattr(-,root,root,-)',
    files.runtime,
    files.command,
    files.manPage,
    files.monitoring,
    path.join(rpm.unitDirectory, 'sockmon.service'),
    `%config(noreplace) ${rpm.defaults}`,
    `%dir %attr(0700,root,root) ${files.tlsDirectory}`,
    '',
    scriptlet('post'),
    scriptlet('preun'),
    scriptlet('postun'),
  ].join('\n');
}

/** Builds the .rpm from `tree` (the rpm format's tree) into `outDirectory`; the package's path. */
export function buildRpm(description: Description, app: AppManifest, arch: Arch, tree: string, outDirectory: string, compression: Compression): string {
  const target = description.architectures[arch].rpm;
  const top = mkdtempSync(path.join(os.tmpdir(), 'sockmon-rpmbuild-'));
  try {
    const spec = path.join(top, 'sockmon.spec');
    writeFileSync(spec, rpmSpec(description, app, tree, compression));
    const name = `${app.name}-${packageVersion(app.version)}-${description.release}.${target}.rpm`;
    execFileSync(
      'rpmbuild',
      [
        '-bb',
        '--quiet',
        '--target',
        `${target}-linux`,
        '--define',
        `_topdir ${top}`,
        '--define',
        `_rpmdir ${outDirectory}`,
        '--define',
        `_rpmfilename ${name}`,
        spec,
      ],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    return path.join(outDirectory, name);
  } finally {
    rmSync(top, { recursive: true, force: true });
  }
}
