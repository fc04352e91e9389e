import type { MiddlewareHandler } from 'hono';
import { AdmissionRecord, withAdmissionRecord } from '../../objects/admission-record.js';

/**
 * A Warning header value as kube-apiserver writes it (RFC 7234 warn-code 299, agent "-"): the text quoted, with
 * '"' and '\' escaped and control characters replaced by spaces, which is what kubectl prints after "Warning: ".
 */
export function warningHeader(text: string): string {
  return `299 - "${text.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/["\\]/g, (ch) => `\\${ch}`)}"`;
}

/**
 * Opens an admission record for each request, sends its warnings as Warning headers, and leaves its audit
 * annotations in the context as `auditAnnotations`, where the audit middleware (./audit.ts) reads them.
 */
export function admissionWarnings(): MiddlewareHandler {
  return async function admissionWarningHeaders(c, next) {
    const record = new AdmissionRecord();
    c.set('auditAnnotations' as never, record.auditAnnotations as never);
    await withAdmissionRecord(record, next);
    for (const w of record.warnings) {
      try { c.res.headers.append('Warning', warningHeader(w)); } catch { /* a relayed answer with fixed headers: left as it is */ }
    }
  };
}
