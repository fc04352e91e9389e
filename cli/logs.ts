// `flotilla logs POD [-c C] [-f] [--tail N] [-l SELECTOR]`: a container's output, read through the server (which
// asks the pod's agent), so that nodes behind NAT work. With -l, every matching pod's containers are streamed
// at once and merged line by line, each line prefixed by [pod/container].
import { apiPath, resourceByCliName } from '../api-types/index.js';
import type { Pod } from '../api-types/index.js';
import { pinnedFetch, type ApiClient } from '../client/client.js';
import { boolFlag, stringFlag, UsageError } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

const pods = resourceByCliName('pods')!;

export interface LogRequest {
  namespace: string;
  pod: string;
  container?: string;
  follow: boolean;
  tail?: number;
}

/** GET .../pods/NAME/log as a stream of lines; ends with the log (or the container, when following) or the signal. */
export async function* streamLog(client: ApiClient, r: LogRequest, signal: AbortSignal): AsyncIterable<string> {
  const q = new URLSearchParams();
  if (r.container) q.set('container', r.container);
  if (r.follow) q.set('follow', 'true');
  if (r.tail !== undefined) q.set('tailLines', String(r.tail));
  const url = new URL(`${apiPath(pods, r.namespace, r.pod)}/log${q.size ? `?${q}` : ''}`, client.server);
  const fetch = pinnedFetch(client.tls, 1);
  try {
    yield* streamLogResponse(fetch, url, client.token, r, signal);
  } finally {
    fetch.close();
  }
}

async function* streamLogResponse(fetch: typeof globalThis.fetch, url: URL, token: string | undefined, r: LogRequest, signal: AbortSignal): AsyncIterable<string> {
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal });
  } catch (err) {
    if (signal.aborted) return;
    throw new Error(`cannot reach the Flotilla server at ${url.origin}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let message = text;
    try { message = (JSON.parse(text) as { message?: string }).message ?? text; } catch { /* plain text answer */ }
    throw new Error(`logs of pod ${r.namespace}/${r.pod}: ${message}`);
  }
  if (!res.body) return;
  const decoder = new TextDecoder();
  let pending = '';
  try {
    const reader = res.body.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      pending += decoder.decode(chunk.value, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        yield pending.slice(0, nl);
        pending = pending.slice(nl + 1);
      }
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  }
  if (pending !== '') yield pending;
}

export const logsCommand: CliCommand = {
  summary: 'print the logs of a pod\'s container (-f follows; -l merges the pods a selector picks)',
  usage: 'flotilla logs POD [-c CONTAINER] [-f] [--tail N] [-n NS] | flotilla logs -l SELECTOR [-c CONTAINER] [-f] [--tail N] [-n NS]',
  flags: [
    ...connectionFlags,
    { name: 'namespace', short: 'n', kind: 'string' },
    { name: 'container', short: 'c', kind: 'string' },
    { name: 'follow', short: 'f', kind: 'boolean' },
    { name: 'tail', kind: 'string' },
    { name: 'selector', short: 'l', kind: 'string' },
  ],
  run: async (a, io, signal) => {
    const namespace = stringFlag(a, 'namespace') ?? 'default';
    const container = stringFlag(a, 'container');
    const selector = stringFlag(a, 'selector');
    const tailText = stringFlag(a, 'tail');
    if (tailText !== undefined && !/^\d+$/.test(tailText)) throw new UsageError(`--tail must be a non-negative integer, got "${tailText}"`);
    const [pod, ...extra] = a.positionals;
    if (extra.length > 0) throw new UsageError(`one pod at a time (got ${a.positionals.join(', ')}); use -l SELECTOR for several`);
    if (pod && selector) throw new UsageError('give either POD or -l SELECTOR, not both');
    if (!pod && !selector) throw new UsageError('name a pod, or select pods with -l');
    const base = { namespace, follow: boolFlag(a, 'follow'), ...(tailText !== undefined ? { tail: Number(tailText) } : {}) };
    const client = clientFor(a, io);
    try {
      if (pod) {
        for await (const line of streamLog(client, { ...base, pod, ...(container ? { container } : {}) }, signal)) io.out(`${line}\n`);
        return 0;
      }
      const list = await client.request<{ items: Pod[] }>('GET', `${apiPath(pods, namespace)}?${new URLSearchParams({ labelSelector: selector! })}`);
      const sources = list.items.filter((p) => p.spec?.nodeName).flatMap((p) =>
        (container ? [container] : p.spec.containers.map((c) => c.name)).map((c) => ({ pod: p.metadata.name ?? '', container: c })));
      if (sources.length === 0) {
        io.err(`No pods with containers running found in ${namespace} namespace for selector ${selector}.\n`);
        return 1;
      }
      let failed = 0;
      await Promise.all(sources.map(async (s) => {
        try {
          for await (const line of streamLog(client, { ...base, pod: s.pod, container: s.container }, signal)) io.out(`[${s.pod}/${s.container}] ${line}\n`);
        } catch (err) {
          failed++;
          io.err(`[${s.pod}/${s.container}] ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }));
      return failed > 0 ? 1 : 0;
    } finally {
      client.close();
    }
  },
};
