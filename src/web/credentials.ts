// Files in /etc/sockmon/ (the web config, its certificates, a root-only key) reach the unit's DynamicUser as
// systemd credentials: `LoadCredential=sockmon:/etc/sockmon` copies each file F there, at service start, to
// $CREDENTIALS_DIRECTORY/sockmon_F, readable by the service alone. sockmon reads a file named /etc/sockmon/F from
// that copy when there is one, so the web config and the relative paths in it keep their usual names.
import { existsSync } from 'node:fs';
import path from 'node:path';

export const CONFIG_DIR = '/etc/sockmon';
/** The credential ID in the unit's LoadCredential= line. */
export const CREDENTIAL_ID = 'sockmon';

/** Where to read `file` from: its credential copy under systemd, else the file itself. */
export function credentialPath(file: string, env: NodeJS.ProcessEnv = process.env): string {
  const absolute = path.resolve(file);
  const credentials = env.CREDENTIALS_DIRECTORY;
  if (!credentials || path.dirname(absolute) !== CONFIG_DIR) return file;
  const copy = path.join(credentials, `${CREDENTIAL_ID}_${path.basename(absolute)}`);
  return existsSync(copy) ? copy : file;
}
