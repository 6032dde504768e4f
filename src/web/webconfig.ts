// --web.config.file in the Prometheus exporter-toolkit format (as node_exporter reads it):
//   tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version}
//   basic_auth_users: {user: bcrypt hash}
// Relative file names are relative to the config file's directory. Any problem is one UsageError line.
// Under the systemd unit, files in /etc/sockmon/ are read from their credential copies (credentials.ts).
// Every file is read with a size limit and the YAML parsed with bounded memory: sockmon runs under a 64 MB heap
// cap, and a config it cannot hold must be refused with one line, not kill it.
import path from 'node:path';
import tls from 'node:tls';
import type { DocumentOptions, ParseOptions, SchemaOptions, ToJSOptions } from 'yaml';
import { readBounded, TooLargeError } from './bounded_read';
import { credentialPath } from './credentials';
import { UsageError } from '../common/errors';

export const CLIENT_AUTH_TYPES = [
  'NoClientCert',
  'RequestClientCert',
  'RequireAnyClientCert',
  'VerifyClientCertIfGiven',
  'RequireAndVerifyClientCert',
] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];
const TLS_VERSIONS: Record<string, tls.SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
/** $2a$, $2b$ and $2y$ (htpasswd -B) hashes: cost, then 22 characters of salt and 31 of hash. */
const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

/**
 * The web config's size limit. A config with TLS and a few users is under 2 KB; 64 KiB holds ~800 users. Parsing
 * YAML costs ~25 bytes of heap per byte on the main thread: 1 MiB took 25 MB of heap and 4 s under the unit's
 * 64 MB cap (measured), and 4 MB aborted node; 64 KiB costs ~2 MB and well under 0.5 s.
 */
export const MAX_CONFIG_BYTES = 64 << 10;
/** Certificate, key and CA files: a CA bundle of every public root (Debian's ca-certificates.crt) is ~220 KB. */
export const MAX_PEM_BYTES = 1 << 20;
/** basic_auth_users entries: more than any deployment has scrapers; each costs a bcrypt hash in memory. */
export const MAX_USERS = 1000;
/** YAML aliases: a web config needs none; the bound stops a "billion laughs" expansion. */
const MAX_ALIASES = 16;

/** A file's bytes, at most `limit` of them: else one line naming the file, its size and the limit. */
function readLimited(file: string, limit: number, what: string): Buffer {
  try {
    return readBounded(credentialPath(file), limit);
  } catch (error) {
    if (error instanceof TooLargeError) throw new Error(`${what} "${file}": ${error.message}`);
    throw new Error(`cannot read ${what} "${file}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

export interface TlsSettings {
  /** Options for tls.createSecureContext / https.createServer. */
  context: tls.SecureContextOptions;
  clientAuth: ClientAuthType;
}

export interface WebConfig {
  tls?: TlsSettings;
  /** user -> bcrypt hash; empty: no authentication. */
  users: Map<string, string>;
  /** The certificate, key and CA files it names (absolute): a change to any of them is a change of the config. */
  files: string[];
}

type Fields = Record<string, unknown>;

function fieldsOf(value: unknown, where: string): Fields {
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${where} must be a mapping`);
  return value as Fields;
}

function onlyKnown(fields: Fields, known: string[], where: string): void {
  const unknown = Object.keys(fields).find((key) => !known.includes(key));
  if (unknown) throw new Error(`unknown field "${unknown}" in ${where}`);
}

function stringField(fields: Fields, name: string, where: string): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`${where}.${name} must be a string`);
  return value;
}

function parseTls(fields: Fields, dir: string, files: string[]): TlsSettings | undefined {
  const where = 'tls_server_config';
  onlyKnown(fields, ['cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'min_version', 'max_version'], where);
  const certFile = stringField(fields, 'cert_file', where);
  const keyFile = stringField(fields, 'key_file', where);
  if (!certFile && !keyFile && Object.keys(fields).length === 0) return undefined;
  if (!certFile || !keyFile) throw new Error(`${where} needs both cert_file and key_file`);
  const read = (file: string, what: string) => {
    const resolved = path.resolve(dir, file);
    files.push(resolved);
    return readLimited(resolved, MAX_PEM_BYTES, what);
  };
  const clientAuth = (stringField(fields, 'client_auth_type', where) ?? 'NoClientCert') as ClientAuthType;
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) throw new Error(`invalid client_auth_type "${clientAuth}" (one of ${CLIENT_AUTH_TYPES.join(', ')})`);
  const caFile = stringField(fields, 'client_ca_file', where);
  if (caFile && clientAuth === 'NoClientCert') throw new Error('client_ca_file is set but client_auth_type is NoClientCert');
  if (!caFile && (clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert')) {
    throw new Error(`client_auth_type ${clientAuth} needs client_ca_file`);
  }
  const version = (name: string) => {
    const text = stringField(fields, name, where);
    if (text === undefined) return undefined;
    if (!(text in TLS_VERSIONS)) throw new Error(`invalid ${name} "${text}" (one of ${Object.keys(TLS_VERSIONS).join(', ')})`);
    return TLS_VERSIONS[text];
  };
  const context: tls.SecureContextOptions = {
    cert: read(certFile, 'cert_file'),
    key: read(keyFile, 'key_file'),
    ca: caFile ? read(caFile, 'client_ca_file') : undefined,
    minVersion: version('min_version') ?? 'TLSv1.2',
    maxVersion: version('max_version'),
  };
  try {
    tls.createSecureContext(context); // a certificate that does not parse, or a key that does not match it
  } catch (error) {
    throw new Error(`bad TLS certificate or key: ${(error as Error).message}`);
  }
  return { context, clientAuth };
}

function parseUsers(fields: Fields): Map<string, string> {
  const users = new Map<string, string>();
  const count = Object.keys(fields).length;
  if (count > MAX_USERS) throw new Error(`basic_auth_users has ${count} users, over the limit of ${MAX_USERS}`);
  for (const [user, hash] of Object.entries(fields)) {
    if (typeof hash !== 'string' || !BCRYPT.test(hash))
      throw new Error(`basic_auth_users: the password of "${user}" is not a bcrypt hash (htpasswd -nBC 10 "" makes one)`);
    const cost = Number(hash.slice(4, 6));
    if (cost < 4 || cost > 31) throw new Error(`basic_auth_users: the bcrypt cost of "${user}" is ${cost} (4 to 31)`);
    users.set(user, hash);
  }
  return users;
}

/** The YAML parser, loaded when a web config is read: a serve without one never loads it (~3 MB of RSS). */
function parseYaml(text: string, options?: ParseOptions & DocumentOptions & SchemaOptions & ToJSOptions): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('yaml') as typeof import('yaml')).parse(text, options);
}

/** Reads and checks a web config file. Throws a one-line UsageError naming the file and the problem. */
export function loadWebConfig(file: string): WebConfig {
  try {
    let text: string;
    try {
      text = readBounded(credentialPath(file), MAX_CONFIG_BYTES).toString('utf8');
    } catch (error) {
      if (error instanceof TooLargeError) throw error;
      throw new Error(`cannot read it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    let document: unknown;
    try {
      document = parseYaml(text, { maxAliasCount: MAX_ALIASES });
    } catch (error) {
      throw new Error(`invalid YAML: ${(error as Error).message.split('\n')[0]}`);
    }
    const top = fieldsOf(document, 'the file');
    onlyKnown(top, ['tls_server_config', 'basic_auth_users'], 'the file');
    const files: string[] = [];
    return {
      tls: parseTls(fieldsOf(top.tls_server_config, 'tls_server_config'), path.dirname(path.resolve(file)), files),
      users: parseUsers(fieldsOf(top.basic_auth_users, 'basic_auth_users')),
      files,
    };
  } catch (error) {
    throw new UsageError(`web config "${file}": ${(error as Error).message}`);
  }
}

/** https.createServer options for the TLS settings: which client certificates to ask for and require. */
export function tlsServerOptions(settings: TlsSettings): tls.TlsOptions {
  const requestCert = settings.clientAuth !== 'NoClientCert';
  return { ...settings.context, requestCert, rejectUnauthorized: settings.clientAuth === 'RequireAndVerifyClientCert' };
}

/**
 * Whether a TLS client passes the client_auth_type policy beyond what the handshake enforced:
 * RequireAnyClientCert needs some certificate, VerifyClientCertIfGiven a valid one if any is given.
 */
export function clientCertAllowed(socket: tls.TLSSocket, clientAuth: ClientAuthType): boolean {
  const certificate = socket.getPeerCertificate();
  const presented = certificate !== null && Object.keys(certificate).length > 0;
  if (clientAuth === 'RequireAnyClientCert') return presented;
  if (clientAuth === 'VerifyClientCertIfGiven') return !presented || socket.authorized;
  return true;
}
