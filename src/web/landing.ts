// The landing page at /: what this sockmon is and watches, and where its endpoints are.

export interface About {
  version: string;
  cidrs: string[];
  ports: number[];
  states: string[];
}

const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function landingPage(telemetryPath: string, about: About | undefined): string {
  const path = escapeHtml(telemetryPath);
  const watched = about
    ? `<h2>Watched</h2>
<table>
<tr><th align="left">peer networks</th><td>${about.cidrs.map(escapeHtml).join(', ')}</td></tr>
<tr><th align="left">local ports</th><td>${about.ports.join(', ')}</td></tr>
<tr><th align="left">states</th><td>${about.states.map(escapeHtml).join(', ')}</td></tr>
</table>
`
    : '';
  return `<!DOCTYPE html>
<html><head><title>sockmon</title></head>
<body><h1>sockmon${about ? ` ${escapeHtml(about.version)}` : ''}</h1>
<p>TCP connections of the load balancer's proxy peers, read from the kernel.</p>
${watched}<ul>
<li><a href="${path}">Metrics</a></li>
<li><a href="/-/healthy">Health</a> (200 while the process serves HTTP)</li>
<li><a href="/-/ready">Readiness</a> (200 once listening, 503 while stopping)</li>
</ul></body></html>
`;
}
