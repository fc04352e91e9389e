// Content negotiation on the Accept header's "as" media types (application/json;as=KIND;g=GROUP;v=VERSION), as
// kube-apiserver negotiates Tables and aggregated discovery.

/**
 * The version of `as` in `group` that the Accept header asks for: its media types are read in order and the
 * first one that is plain JSON (undefined: the ordinary answer) or `as` in one of `versions` decides; media types
 * naming other kinds or versions are passed over.
 */
export function acceptedAs<V extends string>(accept: string | undefined, as: string, group: string, versions: readonly V[]): V | undefined {
  for (const mediaType of (accept ?? '').split(',')) {
    const [type, ...params] = mediaType.split(';').map((s) => s.trim());
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*') continue;
    const p = Object.fromEntries(params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]));
    if (p.as === undefined) return undefined;
    if (p.as !== as || p.g !== group) continue;
    const v = versions.find((x) => x === p.v);
    if (v !== undefined) return v;
  }
  return undefined;
}
