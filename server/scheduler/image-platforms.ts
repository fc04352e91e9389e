// What the scheduler knows of the platforms each image exists for, and what that asks of a pod's node.
//
// Two sources, both lower bounds ("the image exists at least for these platforms"), joined:
// - nodes: each Node's status.imagePlatforms (node-agent/images/inventory.ts) says which platform of an image
//   that node holds. A node holds one platform of a multi-platform image, so on its own this knowledge can be
//   short of the truth; that is what the registry corrects.
// - the registry (./registry-platforms.ts): the image's manifest list, learnt before the pod is placed.
// An image neither source knows is of unknown platforms and limits nothing: unknown never blocks placement.
import { LABEL_ARCH, canonicalImageName, platformName } from '../../api-types/index.js';
import type { Node, NodeImagePlatform, Pod } from '../../api-types/index.js';

export type Platform = Omit<NodeImagePlatform, 'names'>;

/** A node's architecture as placement sees it: its kubernetes.io/arch label, else status.nodeInfo.architecture. */
export function nodeArchitecture(node: Node): string {
  return node.metadata.labels?.[LABEL_ARCH] ?? node.status?.nodeInfo?.architecture ?? '';
}

/** The architectures a pod's images leave it, and which images say so; null when no image of it is known. */
export interface ImageArchConstraint {
  /** Architectures every known image of the pod exists for (may be empty: no node can run them all). */
  arches: string[];
  /** The pod's images of known platforms, with those platforms, in the pod's container order. */
  images: { image: string; platforms: Platform[] }[];
}

/** Platforms of images by canonical name, from the nodes that hold them and from the registry. */
export class ImagePlatforms {
  /** Per node, the platforms of its images by canonical name. */
  readonly #nodes = new Map<string, Map<string, Platform[]>>();
  /** Per canonical name, how many nodes report each platform (by platformName). */
  readonly #held = new Map<string, Map<string, { platform: Platform; nodes: number }>>();
  readonly #registry = new Map<string, Platform[]>();

  /** Takes the node's status.imagePlatforms in place of what it reported before. */
  upsertNode(node: Node): void {
    const name = node.metadata.name ?? '';
    this.removeNode(name);
    const images = new Map<string, Platform[]>();
    for (const entry of node.status?.imagePlatforms ?? []) {
      const platform: Platform = { os: entry.os, architecture: entry.architecture, ...(entry.variant ? { variant: entry.variant } : {}) };
      for (const n of entry.names) {
        const key = canonicalImageName(n);
        const list = images.get(key) ?? [];
        if (!list.some((p) => platformName(p) === platformName(platform))) list.push(platform);
        images.set(key, list);
      }
    }
    if (images.size === 0) return;
    this.#nodes.set(name, images);
    for (const [key, platforms] of images) {
      const held = this.#held.get(key) ?? new Map<string, { platform: Platform; nodes: number }>();
      for (const p of platforms) {
        const entry = held.get(platformName(p));
        if (entry) entry.nodes++; else held.set(platformName(p), { platform: p, nodes: 1 });
      }
      this.#held.set(key, held);
    }
  }

  removeNode(name: string): void {
    const images = this.#nodes.get(name);
    if (!images) return;
    this.#nodes.delete(name);
    for (const [key, platforms] of images) {
      const held = this.#held.get(key)!;
      for (const p of platforms) {
        const entry = held.get(platformName(p))!;
        if (--entry.nodes === 0) held.delete(platformName(p));
      }
      if (held.size === 0) this.#held.delete(key);
    }
  }

  /** What the registry answered for an image (undefined: it could not say, and what it said before is forgotten). */
  learn(image: string, platforms: readonly Platform[] | undefined): void {
    const key = canonicalImageName(image);
    if (platforms && platforms.length > 0) this.#registry.set(key, [...platforms]); else this.#registry.delete(key);
  }

  /** The platforms the image is known to exist for, by name; undefined when nothing is known. */
  platformsOf(image: string): Platform[] | undefined {
    const key = canonicalImageName(image);
    const byName = new Map<string, Platform>();
    for (const p of this.#registry.get(key) ?? []) byName.set(platformName(p), p);
    for (const [name, entry] of this.#held.get(key) ?? []) if (!byName.has(name)) byName.set(name, entry.platform);
    return byName.size ? [...byName.values()].sort((a, b) => (platformName(a) < platformName(b) ? -1 : 1)) : undefined;
  }

  /** What the pod's images (init containers included) ask of its node's architecture. */
  constraintOf(pod: Pod): ImageArchConstraint | null {
    const images: ImageArchConstraint['images'] = [];
    const archSets: Set<string>[] = [];
    // Only platforms of the pod's OS count (an image index may hold windows/amd64 beside linux/arm64).
    const os = pod.spec.os?.name ?? 'linux';
    for (const c of [...pod.spec.initContainers ?? [], ...pod.spec.containers]) {
      if (images.some((i) => i.image === c.image)) continue;
      const platforms = this.platformsOf(c.image);
      if (!platforms) continue;
      images.push({ image: c.image, platforms });
      archSets.push(new Set(platforms.filter((p) => !p.os || p.os === os).map((p) => p.architecture)));
    }
    if (archSets.length === 0) return null;
    return { arches: [...archSets[0]!].filter((a) => archSets.every((set) => set.has(a))).sort(), images };
  }
}
