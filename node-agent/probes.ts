// Container probes (exec, httpGet, tcpSocket) with Kubernetes' timing and thresholds.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { ContainerPort, Probe } from '../api-types/index.js';
import type { ContainerRuntime } from './runtime/types.js';

export interface ProbeTarget {
  runtime: ContainerRuntime;
  containerId: string;
  /** Where httpGet and tcpSocket connect when the probe names no host. */
  podIP?: string;
  /** The container's ports: a probe port given by name is the containerPort of the port of that name. */
  ports?: readonly ContainerPort[];
}

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

/** One probe attempt, bounded by timeoutSeconds (default 1). Never throws: failures are outcomes. */
export async function probeOnce(probe: Probe, target: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    if (probe.exec) {
      const r = await target.runtime.exec(target.containerId, probe.exec.command ?? [], { signal });
      return { ok: r.exitCode === 0, message: `exec ${JSON.stringify(probe.exec.command)} exited ${r.exitCode}${r.stderr ? `: ${r.stderr.trim()}` : ''}` };
    }
    const host = probe.httpGet?.host ?? probe.tcpSocket?.host ?? target.podIP;
    if (!host) return { ok: false, message: 'the pod has no IP address to probe' };
    if (probe.httpGet) return await httpProbe(probe.httpGet, host, portNumber(probe.httpGet.port, target.ports), signal);
    if (probe.tcpSocket) return await tcpProbe(host, portNumber(probe.tcpSocket.port, target.ports), signal);
    return { ok: false, message: 'probe has no exec, httpGet or tcpSocket handler' };
  } catch (err) {
    return { ok: false, message: signal.aborted ? `probe timed out after ${timeoutMs} ms` : (err as Error).message };
  }
}

function httpProbe(get: NonNullable<Probe['httpGet']>, host: string, port: number, signal: AbortSignal): Promise<ProbeOutcome> {
  const client = get.scheme === 'HTTPS' ? https : http;
  const headers: Record<string, string> = { 'User-Agent': 'flotilla-probe/1' };
  for (const h of get.httpHeaders ?? []) headers[h.name] = h.value;
  return new Promise((resolve, reject) => {
    const req = client.get(
      // The kubelet's Go client takes headers ended by a bare LF (busybox httpd passes CGI headers on as written);
      // Node's strict parser would fail such a probe.
      { host, port, path: get.path ?? '/', headers, signal, rejectUnauthorized: false, agent: false, insecureHTTPParser: true },
      (res) => {
        res.resume();
        const code = res.statusCode ?? 0;
        resolve({ ok: code >= 200 && code < 400, message: `HTTP GET ${get.path ?? '/'} on port ${get.port}: ${code}` });
      },
    );
    req.on('error', reject);
  });
}

/**
 * A probe's port as a number: a number, a numeric string, or the name of one of the container's ports (Kubernetes'
 * ResolveContainerPort); an unknown name fails the probe with the kubelet's "port NAME not found".
 */
function portNumber(port: number | string, ports: readonly ContainerPort[] = []): number {
  if (typeof port === 'number') return port;
  const named = ports.find((p) => p.name === port);
  if (named) return named.containerPort;
  if (/^\d+$/.test(port)) return Number(port);
  throw new Error(`port ${port} not found`);
}

function tcpProbe(host: string, port: number, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, signal });
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true, message: `TCP ${host}:${port} open` });
    });
    socket.once('error', reject);
  });
}

/**
 * Runs a probe every periodSeconds after initialDelaySeconds and reports each change of its verdict:
 * success after successThreshold consecutive passes, failure after failureThreshold consecutive misses.
 * onChange is called once per flip, never twice in a row with the same verdict.
 */
export class ProbeLoop {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private verdict: boolean | undefined;
  private passes = 0;
  private misses = 0;

  constructor(
    private readonly probe: Probe,
    private readonly target: ProbeTarget,
    private readonly onChange: (ok: boolean, message: string) => void,
  ) {}

  start(): void {
    this.schedule((this.probe.initialDelaySeconds ?? 0) * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const outcome = await probeOnce(this.probe, this.target);
    if (this.stopped) return;
    if (outcome.ok) {
      this.passes++;
      this.misses = 0;
      if (this.verdict !== true && this.passes >= (this.probe.successThreshold ?? 1)) this.flip(true, outcome.message);
    } else {
      this.misses++;
      this.passes = 0;
      if (this.verdict !== false && this.misses >= (this.probe.failureThreshold ?? 3)) this.flip(false, outcome.message);
    }
    this.schedule((this.probe.periodSeconds ?? 10) * 1000);
  }

  private flip(ok: boolean, message: string): void {
    this.verdict = ok;
    this.onChange(ok, message);
  }
}
