// Reads the PromQL out of the Grafana dashboard, for the promtool and the real-Prometheus checks.
/** Every `expr` of the dashboard's panels and every label_values() selector of its variables. */
export function dashboardQueries(dashboard: { panels: unknown[]; templating: { list: { type: string; query?: unknown }[] } }): string[] {
  const queries: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') queries.push(value);
        else walk(value);
      }
    }
  };
  walk(dashboard.panels);
  for (const variable of dashboard.templating.list) {
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: string } | undefined)?.query;
    const selector = variable.type === 'query' && query ? /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1] : undefined;
    if (selector) queries.push(selector);
  }
  return queries;
}
