// Container image references as Docker and the kubelet read them (github.com/distribution/reference:
// ParseNormalizedNamed): `[domain/]path[:tag][@digest]`, where a first component without a dot, a colon or
// "localhost" is a Docker Hub path ("nginx" is docker.io/library/nginx). The default pull policy, the kubelet's
// image messages and the registry a pull secret's credentials apply to all read image names through this.

export interface ImageReference {
  /** Registry host[:port]; "docker.io" for Docker Hub (index.docker.io is folded into it). */
  domain: string;
  /** Repository path inside the registry: "library/nginx", "team/app". */
  path: string;
  tag?: string;
  /** algorithm:hex, e.g. sha256:0123...; a reference may carry a tag and a digest. */
  digest?: string;
}

/** What Docker's reference parser says of an image name it refuses ("invalid reference format"). */
export class ImageReferenceError extends Error {
  constructor(readonly image: string, reason: string) {
    super(reason);
    this.name = 'ImageReferenceError';
  }
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const NAME_TOTAL_LENGTH_MAX = 255;

const ALPHA_NUMERIC = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]*)';
const NAME_COMPONENT = `${ALPHA_NUMERIC}(?:${SEPARATOR}${ALPHA_NUMERIC})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
/** Docker's ReferenceRegexp: name (with its domain), tag, digest. */
const REFERENCE = new RegExp(`^((?:${DOMAIN}/)?${NAME_COMPONENT}(?:/${NAME_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);
const IDENTIFIER = /^[a-f0-9]{64}$/;

/** Splits a normalized name's first component off as its registry when it looks like one (Docker's splitDockerDomain). */
function splitDomain(name: string): { domain: string; remainder: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  let domain = DEFAULT_DOMAIN;
  let remainder = name;
  if (slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first)) {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `library/${remainder}`;
  return { domain, remainder };
}

/** Parses an image name as Docker does; throws ImageReferenceError with Docker's reason when it is not one. */
export function parseImageReference(image: string): ImageReference {
  if (IDENTIFIER.test(image)) throw new ImageReferenceError(image, `invalid repository name (${image}), cannot specify 64-byte hexadecimal strings`);
  const { domain, remainder } = splitDomain(image);
  const colon = remainder.indexOf(':');
  const remoteName = colon < 0 ? remainder : remainder.slice(0, colon);
  if (remoteName.toLowerCase() !== remoteName) throw new ImageReferenceError(image, 'invalid reference format: repository name must be lowercase');
  const full = `${domain}/${remainder}`;
  const m = REFERENCE.exec(full);
  if (!m) {
    if (image === '') throw new ImageReferenceError(image, 'repository name must have at least one component');
    throw new ImageReferenceError(image, 'invalid reference format');
  }
  const name = m[1]!;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw new ImageReferenceError(image, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  const ref: ImageReference = { domain, path: name.slice(domain.length + 1) };
  if (m[2] !== undefined) ref.tag = m[2];
  if (m[3] !== undefined) ref.digest = m[3];
  return ref;
}

/**
 * An image name in Docker's full form, so that the names pods use and the names nodes report (RepoTags,
 * RepoDigests) compare equal: "busybox" and "docker.io/library/busybox:latest" are one image (the default
 * registry, its `library/` namespace and the `latest` tag filled in as Docker does). Never throws: a name Docker
 * would refuse is completed the same way, and matches nothing a node reports.
 */
export function canonicalImageName(image: string): string {
  const { domain, remainder } = splitDomain(image);
  const last = remainder.slice(remainder.lastIndexOf('/') + 1);
  return `${domain}/${remainder}${remainder.includes('@') || last.includes(':') ? '' : ':latest'}`;
}

/** The repository a reference names, with its registry: "docker.io/library/nginx" (Docker's Named.Name()). */
export function repositoryOf(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * The image name with ":latest" added when it names neither a tag nor a digest, keeping its short form
 * ("busybox" becomes "busybox:latest", not docker.io/library/busybox:latest): the kubelet's applyDefaultImageTag,
 * the name its image events and messages use. Throws ImageReferenceError.
 */
export function withDefaultTag(image: string): string {
  const ref = parseImageReference(image);
  return ref.tag === undefined && ref.digest === undefined ? `${image}:latest` : image;
}

/** os/architecture[/variant] ("linux/arm/v7"), as Docker and the OCI image index name a platform. */
export function platformName(p: { os?: string; architecture?: string; variant?: string }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}
