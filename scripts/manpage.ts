// Writes sockmon(1) in roff from the yargs option tables in src/cli/cli.ts, so the man page lists exactly the flags
// the program takes. Run at build time (`npm run prepare`): node dist/scripts/manpage.js man/sockmon.1
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { environmentVariable, serveOptions, snapshotOptions, watchOptions } from '../src/cli/cli';
import { VERSION } from '../src/common/version';

interface OptionSpec {
  type: string;
  describe: string;
  default?: unknown;
  defaultDescription?: string;
}

/** Escapes text for roff: backslashes, hyphens (so they stay ASCII in copy-paste), and a leading dot or quote. */
const roff = (text: string) =>
  text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/, '\\&$1');

/** The placeholder of a flag's value: the last word of its name (--web.config.file FILE, --max-peers PEERS). */
const placeholder = (flag: string) => flag.split(/[.-]/).at(-1)!.toUpperCase();

function optionEntry(flag: string, spec: OptionSpec): string {
  const boolean = spec.type === 'boolean';
  const head = boolean ? `\\fB\\-\\-${roff(flag)}\\fR, \\fB\\-\\-no\\-${roff(flag)}\\fR` : `\\fB\\-\\-${roff(flag)}\\fR \\fI${placeholder(flag)}\\fR`;
  const fallback = spec.defaultDescription ?? (spec.default === undefined ? undefined : String(spec.default));
  const repeatable = spec.type === 'array' ? ' Give it several times, or a comma-separated list.' : '';
  const lines = [`.TP`, head, `${roff(spec.describe)}.${repeatable}`];
  if (fallback !== undefined) lines.push(`Default: ${roff(fallback)}.`);
  lines.push(`Environment: \\fB${environmentVariable(flag)}\\fR.`);
  return lines.join('\n');
}

const options = (table: Record<string, OptionSpec>) => Object.entries(table).map(([flag, spec]) => optionEntry(flag, spec));

export function manPage(): string {
  return [
    `.TH SOCKMON 1 "" "sockmon ${VERSION}" "User Commands"`,
    '.SH NAME',
    'sockmon \\- Prometheus exporter for the TCP connections of a load\\-balanced web backend',
    '.SH SYNOPSIS',
    '.B sockmon',
    '[\\fBserve\\fR] [\\fIOPTION\\fR]...',
    '.br',
    '.B sockmon snapshot',
    '[\\fB\\-\\-json\\fR | \\fB\\-\\-watch\\fR \\fISECONDS\\fR] [\\fIOPTION\\fR]...',
    '.SH DESCRIPTION',
    roff(
      "sockmon reads the host's TCP sockets straight from the kernel over netlink inet_diag (what ss(8) uses) and " +
        'counts, per load-balancer proxy peer, local port and TCP state, the connections whose peer is in the watched ' +
        'networks. It needs no root and no capability.',
    ),
    '.TP',
    '\\fBserve\\fR (the default)',
    roff(
      'Runs the exporter: / is a landing page, the telemetry path (/metrics) the metrics. It tells systemd when it is ready (sd_notify) and pings its watchdog.',
    ),
    '.TP',
    '\\fBsnapshot\\fR',
    roff('Dumps the watched connections once and prints them as a table, or with --json as JSON; with --watch, redraws the table in place until Ctrl-C.'),
    '.SH OPTIONS',
    ...options(watchOptions as unknown as Record<string, OptionSpec>),
    '.PP',
    'For \\fBserve\\fR only:',
    ...options(serveOptions as unknown as Record<string, OptionSpec>),
    '.PP',
    'For \\fBsnapshot\\fR only:',
    ...options(snapshotOptions as unknown as Record<string, OptionSpec>),
    '.TP',
    '\\fB\\-\\-help\\fR, \\fB\\-\\-version\\fR',
    'Print the usage or the version and exit.',
    '.SH ENVIRONMENT',
    roff(
      'Every flag can be set as a variable named SOCKMON_ and the flag in upper case with dots and hyphens as ' +
        'underscores (listed with each option above). A flag on the command line wins over its variable. ' +
        'Under systemd the variables come from /etc/default/sockmon, one per line.',
    ),
    '.TP',
    '\\fBJOURNAL_STREAM\\fR',
    roff(
      'Set by systemd when stderr is the journal: log lines then carry sd-daemon priority prefixes (<3> error, <4> warn, <6> info, <7> debug) and no timestamps.',
    ),
    '.TP',
    '\\fBNOTIFY_SOCKET\\fR, \\fBWATCHDOG_USEC\\fR',
    roff('Set by systemd for Type=notify units: READY=1 once listening, WATCHDOG=1 every half WATCHDOG_USEC, STOPPING=1 on SIGTERM.'),
    '.TP',
    '\\fBCREDENTIALS_DIRECTORY\\fR',
    roff(
      'Set by systemd for units with LoadCredential=. The unit loads /etc/sockmon/ as credentials, so a web config ' +
        'file named /etc/sockmon/NAME is read from the credential copy, which the service user can read even when ' +
        'the original is root-only.',
    ),
    '.SH SIGNALS',
    '.TP',
    '\\fBSIGTERM\\fR, \\fBSIGINT\\fR',
    roff('Stop: scrapes in flight get 5 seconds to finish, then exit status 0.'),
    '.TP',
    '\\fBSIGHUP\\fR',
    roff(
      'Re-read the web config and the certificate, key and CA files it names (systemctl reload sockmon; sockmon also ' +
        're-reads them when they change). A broken version, or one that would lower security, is logged at error ' +
        'level and the one in force stays. Under the unit, files in /etc/sockmon/ are the credential copies systemd ' +
        'made at service start: after changing them, restart the service.',
    ),
    '.TP',
    '\\fBSIGUSR1\\fR',
    roff('Ignored: it does not open the Node.js inspector.'),
    '.SH FILES',
    '.TP',
    '\\fI/etc/default/sockmon\\fR',
    roff("The service's settings: one SOCKMON_<FLAG>=value per line."),
    '.TP',
    '\\fI/etc/sockmon/\\fR',
    roff('The web config (web.yml), certificates and keys; may be root-only (loaded as systemd credentials).'),
    '.TP',
    '\\fI/etc/systemd/system/sockmon.service\\fR',
    roff('The unit installed by install-service.sh; drop-ins go in sockmon.service.d/.'),
    '.SH EXIT STATUS',
    roff(
      '0 after a clean stop; 1 on a runtime error; 2 on a usage or configuration error (one line on stderr naming the bad value); 3 when the native addon cannot load on this host (another libc or architecture: one line saying what was looked for and how to build from source). The unit does not restart after exit status 2 or 3.',
    ),
    '.SH SEE ALSO',
    '\\fBss\\fR(8), \\fBsystemd.exec\\fR(5), \\fBsystemd.service\\fR(5)',
    '',
  ].join('\n');
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    process.stderr.write('usage: manpage.js OUTPUT\n');
    process.exit(2);
  }
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, manPage());
}
