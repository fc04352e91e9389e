import { stringify as toYaml } from 'yaml';
import { tableColumns } from '../api-types/index.js';
import type { Column, KubeObject, ResourceInfo } from '../api-types/index.js';

export type OutputFormat = 'table' | 'wide' | 'yaml' | 'json' | 'name';

export function parseOutputFormat(text: string | undefined): OutputFormat {
  if (text === undefined) return 'table';
  if (['wide', 'yaml', 'json', 'name'].includes(text)) return text as OutputFormat;
  throw new Error(`unknown output format "${text}" (expected one of: wide, yaml, json, name)`);
}

/** Renders objects as kubectl does for -o FORMAT (table and wide pad columns; yaml/json print the objects); `qualifiedNames`: NAME as TYPE/NAME. */
export function formatObjects(resource: ResourceInfo, items: readonly KubeObject[], format: OutputFormat, opts: { withNamespace: boolean; single?: boolean; now?: number; noHeaders?: boolean; qualifiedNames?: boolean; showLabels?: boolean }): string {
  if (format === 'json' || format === 'yaml') {
    const doc = opts.single && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', items, metadata: { resourceVersion: '' } };
    return format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : toYaml(doc);
  }
  const qualified = resource.group ? `${resource.singular}.${resource.group}` : resource.singular;
  if (format === 'name') return items.map((o) => `${qualified}/${o.metadata.name}\n`).join('');
  const columns: Column[] = [...(opts.withNamespace ? [['NAMESPACE', (o: KubeObject) => o.metadata.namespace ?? ''] as Column] : []), ...tableColumns(resource, format === 'wide'),
    // kubectl's --show-labels: every label as k=v in key order, comma-separated, <none> without any.
    ...(opts.showLabels ? [['LABELS', (o: KubeObject) => Object.entries(o.metadata.labels ?? {}).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(',') || '<none>'] as Column] : [])];
  const now = opts.now ?? Date.now();
  // Several types in one `get` (pv,pvc): kubectl names each object TYPE/NAME.
  const nameAt = opts.qualifiedNames ? columns.findIndex(([h]) => h === 'NAME') : -1;
  const rows = items.map((o) => columns.map(([, f], i) => (i === nameAt ? `${qualified}/${f(o, now)}` : f(o, now))));
  return renderTable(columns.map(([h]) => h), rows, opts.noHeaders ?? false);
}

export function renderTable(headers: string[], rows: string[][], noHeaders = false): string {
  const all = noHeaders ? rows : [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd()).join('\n') + (all.length ? '\n' : '');
}
