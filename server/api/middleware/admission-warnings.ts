import type { Context, MiddlewareHandler } from 'hono';
import { AdmissionRecord, withAdmissionRecord } from '../../objects/admission-record.js';

const records = new WeakMap<Request, AdmissionRecord>();

/** The admission record of a request served behind admissionWarnings(): its audit annotations for the audit event. */
export function admissionRecordOf(c: Context): AdmissionRecord | undefined {
  return records.get(c.req.raw);
}

/**
 * A Warning header value as kube-apiserver writes it (RFC 7234 warn-code 299, agent "-"): the text quoted, with
 * '"' and '\' escaped and control characters replaced by spaces, which is what kubectl prints after "Warning: ".
 */
export function warningHeader(text: string): string {
  return `299 - "${text.replace(/[\u0000-\u001f\u007f]/g, ' ').replace(/["\\]/g, (ch) => `\\${ch}`)}"`;
}

/** Opens an admission record for each request and sends its warnings as Warning headers. */
export function admissionWarnings(): MiddlewareHandler {
  return async function admissionWarningHeaders(c, next) {
    const record = new AdmissionRecord();
    records.set(c.req.raw, record);
    await withAdmissionRecord(record, next);
    for (const w of record.warnings) {
      try { c.res.headers.append('Warning', warningHeader(w)); } catch { /* a relayed answer with fixed headers: left as it is */ }
    }
  };
}
