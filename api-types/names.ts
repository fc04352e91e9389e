// Kubernetes naming rules for object names, label keys and label values. Each check returns the reason a
// string is not acceptable, or undefined when it is: callers put the reason into their own error.

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** RFC 1123 label: at most 63 lowercase alphanumerics or '-', starting and ending alphanumeric. */
export function dns1123LabelError(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 63) return `must be no more than 63 characters (got ${value.length})`;
  if (!DNS1123_LABEL.test(value)) {
    return `"${value}" must consist of lowercase alphanumeric characters or '-', and start and end with an alphanumeric character`;
  }
  return undefined;
}

/** RFC 1035 label (Service names): an RFC 1123 label that starts with a letter. */
export function dns1035LabelError(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 63) return `must be no more than 63 characters (got ${value.length})`;
  if (!DNS1035_LABEL.test(value)) {
    return `"${value}" must consist of lowercase alphanumeric characters or '-', start with a letter and end with an alphanumeric character`;
  }
  return undefined;
}

/** RFC 1123 subdomain: at most 253 characters, dot-separated RFC 1123 labels. */
export function dns1123SubdomainError(value: string): string | undefined {
  if (value.length === 0) return 'must not be empty';
  if (value.length > 253) return `must be no more than 253 characters (got ${value.length})`;
  if (!DNS1123_SUBDOMAIN.test(value)) {
    return `"${value}" must consist of lowercase alphanumeric characters, '-' or '.', and start and end with an alphanumeric character`;
  }
  return undefined;
}

/** Label (and annotation) key: [DNS-subdomain prefix "/"] name, the name at most 63 of [A-Za-z0-9-_.] . */
export function labelKeyError(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    const why = dns1123SubdomainError(prefix);
    if (why !== undefined) return `key "${key}": prefix ${why}`;
  }
  if (name.length === 0) return `key "${key}": name part must not be empty`;
  if (name.length > 63) return `key "${key}": name part must be no more than 63 characters`;
  if (!QUALIFIED_NAME.test(name)) {
    return `key "${key}": name part must consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character`;
  }
  return undefined;
}

/** Label value: empty, or at most 63 of [A-Za-z0-9-_.] starting and ending alphanumeric. */
export function labelValueError(value: string): string | undefined {
  if (value.length === 0) return undefined;
  if (value.length > 63) return `value "${value}" must be no more than 63 characters`;
  if (!QUALIFIED_NAME.test(value)) {
    return `value "${value}" must consist of alphanumeric characters, '-', '_' or '.', and start and end with an alphanumeric character`;
  }
  return undefined;
}
