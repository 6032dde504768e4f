// Certificates and password hashes made by the real tools (openssl, htpasswd), for the web config tests.
import { requireTools } from './prerequisites';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export function requireTool(context: Mocha.Context, tool: string, args: string[], apt: string): void {
  requireTools(context, [{ command: tool, args, apt }]);
}

export const openssl = (dir: string, ...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A new key and certificate `name`.pem for `name`, signed by the CA in `dir`, with the extensions of `name`.ext. */
export function issueCertificate(dir: string, name: string): void {
  openssl(dir, 'req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
  openssl(
    dir,
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-extfile',
    `${name}.ext`,
  );
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA. */
export function makeCertificates(dir: string): void {
  openssl(dir, 'req', '-x509', ...EC_KEY, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=sockmon test CA');
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ]) {
    writeFileSync(path.join(dir, `${name}.ext`), `${ext}\n`);
    issueCertificate(dir, name);
  }
  openssl(dir, 'req', '-x509', ...EC_KEY, '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=other');
}

/** `htpasswd -nBC 10 user` as the exporter-toolkit docs say: a $2y$ hash. */
export const htpasswdHash = (password: string, cost = 10, user = 'prometheus') =>
  execFileSync('htpasswd', ['-nbBC', String(cost), user, password], { encoding: 'utf8' })
    .trim()
    .split(':')[1];
