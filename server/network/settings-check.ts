// The published network settings are fixed for the life of a cluster: every allocation the state machine made
// was taken from them, and a changed range would strand what was handed out (and hand it out again).
import { NETWORK_SETTINGS_CONFIGMAP, canonicalJson } from '../../api-types/index.js';
import { invalid } from '../objects/service.js';
import type { UpdateCheck } from '../objects/service.js';

export const networkSettingsUnchanged: UpdateCheck = (r, stored, incoming) => {
  if (!(r.group === '' && r.plural === 'configmaps')) return;
  const { namespace, name } = NETWORK_SETTINGS_CONFIGMAP;
  if (stored.metadata.namespace !== namespace || stored.metadata.name !== name) return;
  const data = (o: object) => canonicalJson((o as { data?: unknown }).data ?? {});
  if (data(stored) !== data(incoming)) {
    throw invalid('ConfigMap', name, [{ field: 'data', message: 'Forbidden: the network settings of a cluster are fixed when it is made (flotilla server --cluster-cidr, --service-cidr, --service-node-port-range)' }]);
  }
};
