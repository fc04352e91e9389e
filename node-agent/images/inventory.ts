// The node's image inventory: Node.status.images exactly as the kubelet reports it (its nodestatus.Images
// setter: the nodeStatusMaxImages largest images, largest first, each with at most MaxNamesPerImageInNodeStatus
// names, digests first) and, beside it, Node.status.imagePlatforms: the platform of each of those images, which
// the scheduler reads to keep an image off nodes it cannot run on.
import type { NodeImage, NodeImagePlatform } from '../../api-types/index.js';
import type { ContainerRuntime, ImageSummary } from '../runtime/types.js';

/** The kubelet's default nodeStatusMaxImages. */
export const NODE_STATUS_MAX_IMAGES = 50;
/** The kubelet's MaxNamesPerImageInNodeStatus. */
export const MAX_NAMES_PER_IMAGE = 5;

export interface NodeImageStatus {
  images: NodeImage[];
  /** One entry per entry of `images` that has names, with the same names. */
  imagePlatforms: NodeImagePlatform[];
}

/** The status fields of an image list. Pure. Equal sizes keep a fixed order (by id), so an unchanged store
 * gives an equal status. */
export function nodeImageStatus(list: readonly ImageSummary[], max = NODE_STATUS_MAX_IMAGES): NodeImageStatus {
  const largest = [...list].sort((a, b) => b.sizeBytes - a.sizeBytes || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, max);
  const images: NodeImage[] = []; const imagePlatforms: NodeImagePlatform[] = [];
  for (const image of largest) {
    const names = image.names.slice(0, MAX_NAMES_PER_IMAGE);
    // The kubelet omits empty names (omitempty): a dangling image is listed by its size alone.
    images.push(names.length ? { names, sizeBytes: image.sizeBytes } : { sizeBytes: image.sizeBytes });
    if (names.length && image.architecture) {
      imagePlatforms.push({ names, os: image.os, architecture: image.architecture, ...(image.variant ? { variant: image.variant } : {}) });
    }
  }
  return { images, imagePlatforms };
}

/** The last listing of the runtime's images, as status fields; refreshed by the agent on its heartbeat. */
export class ImageInventory {
  #status: NodeImageStatus = { images: [], imagePlatforms: [] };
  #text = JSON.stringify(this.#status);

  constructor(private readonly runtime: Pick<ContainerRuntime, 'listImages'>, private readonly max = NODE_STATUS_MAX_IMAGES) {}

  get status(): NodeImageStatus { return this.#status; }

  /** Lists the images again; true when the status fields changed (an image appeared, went or was renamed). */
  async refresh(): Promise<boolean> {
    const next = nodeImageStatus(await this.runtime.listImages(), this.max);
    const text = JSON.stringify(next);
    if (text === this.#text) return false;
    this.#status = next; this.#text = text;
    return true;
  }
}
