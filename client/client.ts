import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';

/** A failed API call: the server's Status (code, reason, message), or a transport failure with code 0. */
export class ApiClientError extends Error {
  constructor(message: string, readonly code: number, readonly reason: string, readonly status?: Record<string, unknown>) {
    super(message);
  }
}

export interface WatchEvent<T = Record<string, unknown>> { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR' | 'BOOKMARK'; object: T }

/**
 * The HTTP client of the Kubernetes-shaped API, shared by the CLI and the agent. Keeps connections alive;
 * every call is bounded by a timeout except watches, which end on their signal.
 */
export class ApiClient {
  readonly #base: URL;
  readonly #agent: http.Agent;

  constructor(readonly server: string, readonly token: string | undefined, readonly timeoutMs = 30_000) {
    try {
      this.#base = new URL(server);
    } catch {
      throw new ApiClientError(`invalid server URL "${server}"`, 0, 'BadConfig');
    }
    this.#agent = this.#base.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, opts: { contentType?: string; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.#send(method, path, body, opts.contentType, opts.signal, this.timeoutMs);
    const text = await readAll(res);
    const parsed = parseJson(text);
    if ((res.statusCode ?? 0) >= 400) throw statusError(res.statusCode ?? 0, parsed, text, method, path);
    return parsed as T;
  }

  /** Streams newline-delimited watch events to `onEvent` until the server ends the stream or `signal` aborts. */
  async watch<T = Record<string, unknown>>(path: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.#send('GET', path, undefined, undefined, signal, 0);
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readAll(res);
      throw statusError(res.statusCode ?? 0, parseJson(text), text, 'GET', path);
    }
    let buffered = '';
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (err) {
            res.destroy();
            reject(err);
            return;
          }
        }
      });
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
    });
  }

  /** Streams a GET response body into `dest` (for backups); resolves with the response headers. */
  async download(path: string, dest: NodeJS.WritableStream): Promise<http.IncomingHttpHeaders> {
    const res = await this.#send('GET', path, undefined, undefined, undefined, this.timeoutMs);
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readAll(res);
      throw statusError(res.statusCode ?? 0, parseJson(text), text, 'GET', path);
    }
    await pipeline(res, dest);
    return res.headers;
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(method: string, path: string, body: unknown, contentType: string | undefined, signal: AbortSignal | undefined, timeoutMs: number): Promise<http.IncomingMessage> {
    const url = new URL(path, this.#base);
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (payload) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const lib = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method, headers, agent: this.#agent, ...(signal ? { signal } : {}) }, resolve);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new ApiClientError(`${method} ${url.pathname}: no answer from ${this.#base.origin} within ${timeoutMs} ms`, 0, 'Timeout')));
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof ApiClientError) reject(err);
        else if (err.name === 'AbortError') reject(err);
        else reject(new ApiClientError(`cannot reach the Flotilla server at ${this.#base.origin}: ${err.code ?? err.message}`, 0, 'Unreachable'));
      });
      req.end(payload);
    });
  }
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function statusError(code: number, parsed: unknown, text: string, method: string, path: string): ApiClientError {
  const s = parsed as { kind?: string; message?: string; reason?: string } | undefined;
  if (s?.kind === 'Status') return new ApiClientError(s.message ?? `${method} ${path} failed with ${code}`, code, s.reason ?? 'Unknown', s as Record<string, unknown>);
  return new ApiClientError(`${method} ${path} failed with ${code}: ${text.slice(0, 200)}`, code, 'Unknown');
}
