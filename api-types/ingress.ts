// The Ingress annotations Flotilla's router honours, read in one place by the router (node-agent/ingress) and by
// the Ingress controller (server/controllers/ingress.ts), which reports every unknown or bad one as a Warning
// Event: an annotation is never silently ignored. docs/ingress.md documents each.
import { bytes } from './quantity.js';

export const ANNOTATION_INGRESS_SSL_REDIRECT = 'flotilla.io/ssl-redirect';
export const ANNOTATION_INGRESS_PROXY_BODY_SIZE = 'flotilla.io/proxy-body-size';
export const ANNOTATION_INGRESS_PROXY_READ_TIMEOUT = 'flotilla.io/proxy-read-timeout';
export const ANNOTATION_INGRESS_PROXY_CONNECT_TIMEOUT = 'flotilla.io/proxy-connect-timeout';

/** Prefixes whose annotations are meant for an ingress router: one of them that is not in KNOWN is reported. */
const ROUTER_PREFIXES = ['flotilla.io/', 'nginx.ingress.kubernetes.io/'];
const KNOWN = new Set([ANNOTATION_INGRESS_SSL_REDIRECT, ANNOTATION_INGRESS_PROXY_BODY_SIZE, ANNOTATION_INGRESS_PROXY_READ_TIMEOUT, ANNOTATION_INGRESS_PROXY_CONNECT_TIMEOUT]);

/** How the router serves the paths of one Ingress. */
export interface IngressSettings {
  /**
   * Plain-HTTP requests for a host the Ingress has a TLS certificate for get a 308 to https. Undefined: the
   * default, which is to redirect exactly when the host has a certificate (as ingress-nginx does).
   */
  sslRedirect: boolean | undefined;
  /** Largest request body in bytes (413 beyond it); 0: no limit. */
  maxBodyBytes: number;
  /** How long the router waits for the upstream's response to start (and between its data), in ms. */
  readTimeoutMs: number;
  /** How long the router waits for a connection to an endpoint before trying another, in ms. */
  connectTimeoutMs: number;
}

export const DEFAULT_INGRESS_SETTINGS: Readonly<IngressSettings> = Object.freeze({
  sslRedirect: undefined, maxBodyBytes: 0, readTimeoutMs: 60_000, connectTimeoutMs: 5_000,
});

/** The settings of an Ingress's annotations, and one line per annotation that is unknown or has a bad value (then the default applies). */
export function ingressSettings(annotations: Record<string, string> | undefined): { settings: IngressSettings; problems: string[] } {
  const settings: IngressSettings = { ...DEFAULT_INGRESS_SETTINGS };
  const problems: string[] = [];
  const seconds = (key: string, value: string): number | undefined => {
    if (/^[0-9]+$/.test(value) && Number(value) > 0) return Number(value) * 1000;
    problems.push(`annotation ${key}: "${value}" is not a whole number of seconds greater than 0`);
    return undefined;
  };
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (key === ANNOTATION_INGRESS_SSL_REDIRECT) {
      if (value === 'true' || value === 'false') settings.sslRedirect = value === 'true';
      else problems.push(`annotation ${key}: "${value}" is neither "true" nor "false"`);
    } else if (key === ANNOTATION_INGRESS_PROXY_BODY_SIZE) {
      try {
        const n = bytes(value);
        if (n < 0) throw new Error('negative');
        settings.maxBodyBytes = n;
      } catch {
        problems.push(`annotation ${key}: "${value}" is not a size such as 8Mi or 1M (0: no limit)`);
      }
    } else if (key === ANNOTATION_INGRESS_PROXY_READ_TIMEOUT) {
      settings.readTimeoutMs = seconds(key, value) ?? settings.readTimeoutMs;
    } else if (key === ANNOTATION_INGRESS_PROXY_CONNECT_TIMEOUT) {
      settings.connectTimeoutMs = seconds(key, value) ?? settings.connectTimeoutMs;
    } else if (!KNOWN.has(key) && ROUTER_PREFIXES.some((p) => key.startsWith(p))) {
      problems.push(`annotation ${key} is not supported by the flotilla ingress router; it has no effect`);
    }
  }
  return { settings, problems };
}
