// Kubernetes' remote command protocol over WebSocket (exec and attach, as kubectl and client-go speak it): every
// binary message is one channel byte then data. Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (one Status
// object, the command's outcome, written last), 4 resize (terminal size as JSON {"Width","Height"}).
// v5.channel.k8s.io adds channel 255, close: [255, N] from the client ends its stream N (stdin's EOF), which v4
// cannot say. The connection closes after the error channel's Status.
import type { WebSocket } from 'ws';
import { statusObject } from '../../api-types/index.js';
import type { ProcessStreams } from '../runtime/types.js';

/** The subprotocols served, preferred first. */
export const REMOTE_COMMAND_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

/** The first offered subprotocol this side speaks, in this side's preference; undefined when none. */
export function chooseProtocol(offered: Iterable<string>): string | undefined {
  const set = new Set(offered);
  return REMOTE_COMMAND_PROTOCOLS.find((p) => set.has(p));
}

export function frame(channel: number, data: Uint8Array | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  out.set(body, 1);
  return out;
}

/** A message's channel and data; undefined for an empty message (no channel byte). */
export function unframe(message: Buffer): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  return { channel: message[0]!, data: message.subarray(1) };
}

/**
 * The error channel's Status for an outcome, as the kubelet writes it: Success for exit code 0 (and an attach
 * that ended without one), NonZeroExitCode with an ExitCode cause otherwise (kubectl exits with that code).
 */
export function outcomeStatus(command: readonly string[] | undefined, exitCode: number | null): Record<string, unknown> {
  if (exitCode === null || exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {}, status: 'Failure', reason: 'NonZeroExitCode',
    message: `command terminated with non-zero exit code: error executing command [${(command ?? []).join(' ')}], exit code ${exitCode}`,
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** The error channel's Status for a failure to run at all (InternalError, as the kubelet's). */
export function failureStatus(message: string): Record<string, unknown> {
  return { ...statusObject({ code: 500, reason: 'InternalError', message }) };
}

/** A resize message's terminal size; undefined when it is not one. */
export function parseResize(data: Buffer): { width: number; height: number } | undefined {
  try {
    const size = JSON.parse(data.toString('utf8')) as { Width?: unknown; Height?: unknown };
    if (!Number.isInteger(size.Width) || !Number.isInteger(size.Height)) return undefined;
    return { width: size.Width as number, height: size.Height as number };
  } catch {
    return undefined;
  }
}

/**
 * Relays one process over an accepted WebSocket until its output ends, then writes the outcome on the error
 * channel and closes. `start` runs the process; what the client sends meanwhile waits for it. A client that
 * goes away cuts the process's streams; a process that cannot start is an InternalError on the error channel.
 */
export async function serveRemoteCommand(ws: WebSocket, start: () => Promise<ProcessStreams>, command?: readonly string[]): Promise<void> {
  const v5 = ws.protocol === REMOTE_COMMAND_PROTOCOLS[0];
  let attached: ProcessStreams | undefined;
  let gone = false;
  const early: Buffer[] = [];
  const receive = (m: { channel: number; data: Buffer }, to: ProcessStreams) => {
    if (m.channel === CHANNEL.stdin) to.stdin?.write(m.data);
    else if (m.channel === CHANNEL.resize) {
      const size = parseResize(m.data);
      if (size) to.resize(size.width, size.height).catch(() => { /* the next resize is tried again */ });
    } else if (v5 && m.channel === CHANNEL.close && m.data[0] === CHANNEL.stdin) to.stdin?.end();
  };
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    const m = isBinary ? unframe(raw) : undefined;
    if (!m) return;
    if (attached) receive(m, attached);
    else early.push(raw);
  });
  const cut = () => { gone = true; attached?.close(); };
  ws.on('close', cut);
  ws.on('error', cut);
  let status: Record<string, unknown>;
  try {
    attached = await start();
    if (gone) attached.close();
    for (const raw of early.splice(0)) receive(unframe(raw)!, attached);
    for await (const chunk of attached.output) {
      if (ws.readyState !== ws.OPEN) break;
      ws.send(frame(chunk.stream === 'stderr' ? CHANNEL.stderr : CHANNEL.stdout, chunk.data));
    }
    status = outcomeStatus(command, await attached.exitCode());
  } catch (err) {
    status = failureStatus(`error executing command in container: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (ws.readyState === ws.OPEN) {
    ws.send(frame(CHANNEL.error, JSON.stringify(status)));
    ws.close(1000);
  }
}
