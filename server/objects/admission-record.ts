// What admission says about one API request beside its answer, as kube-apiserver's admission puts it in the
// request's context: warnings (sent as HTTP Warning headers, server/api/middleware/admission-warnings.ts) and audit
// annotations (for the request's audit event). The API opens a record per request; writes made outside a request
// (controllers, bootstrap) have none, and what admission would say about them is dropped.
import { AsyncLocalStorage } from 'node:async_hooks';

export class AdmissionRecord {
  readonly warnings: string[] = [];
  readonly auditAnnotations: Record<string, string> = {};

  warn(text: string): void {
    if (!this.warnings.includes(text)) this.warnings.push(text);
  }

  auditAnnotate(key: string, value: string): void {
    this.auditAnnotations[key] = value;
  }
}

const current = new AsyncLocalStorage<AdmissionRecord>();

/** Runs `fn` with `record` as the admission record of everything it calls, synchronously or not. */
export function withAdmissionRecord<T>(record: AdmissionRecord, fn: () => T): T {
  return current.run(record, fn);
}

/** The record of the request being served; undefined outside one. */
export function admissionRecord(): AdmissionRecord | undefined {
  return current.getStore();
}
