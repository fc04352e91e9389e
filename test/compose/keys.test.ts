// The table of Compose Specification keys (cli/compose/keys.ts) against the schema load.ts validates with: every
// property path of the schema is honoured, ignored with a reason, or refused, and the table names no key the
// schema lacks; a project's ignored keys are named with their service and path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMPOSE_KEYS, ignoredKeys, ignoredKeyWarning, schemaKeyPaths } from '../../cli/compose/keys.js';
import { COMPOSE_SCHEMA } from '../../cli/compose/load.js';

const paths = schemaKeyPaths(COMPOSE_SCHEMA);

test('every property path of the Compose Specification schema is in the table', () => {
  assert.ok(paths.length > 150, `only ${paths.length} paths walked`);
  const missing = paths.filter((p) => COMPOSE_KEYS[p] === undefined);
  assert.equal(missing, []);
});

test('the table names no key the schema lacks, and gives a reason for every key it ignores', () => {
  const known = new Set(paths);
  assert.equal(Object.keys(COMPOSE_KEYS).filter((k) => !known.has(k)), []);
  for (const [k, v] of Object.entries(COMPOSE_KEYS)) if (v !== 'honoured' && v !== 'refused') assert.ok(v.length > 8, `${k}: "${v}" is no reason`);
});

test('the keys the brief names as honoured are honoured; build is refused', () => {
  for (const k of ['services.*.depends_on', 'services.*.healthcheck.test', 'services.*.deploy.resources.reservations.devices.count', 'services.*.deploy.placement.constraints',
    'services.*.restart', 'services.*.secrets', 'services.*.configs', 'services.*.ports', 'services.*.environment', 'services.*.env_file', 'services.*.cap_add', 'services.*.user',
    'services.*.working_dir', 'services.*.links', 'services.*.profiles', 'services.*.stop_grace_period', 'volumes.*.external']) {
    assert.is(COMPOSE_KEYS[k], 'honoured', k);
  }
  assert.is(COMPOSE_KEYS['services.*.build'], 'refused');
});

test('ignoredKeys names each ignored key of a project with its service and concrete path, skipping x- extensions', () => {
  const found = ignoredKeys({
    version: '3.9', 'x-common': { logging: {} },
    services: {
      web: { image: 'a', logging: { driver: 'syslog' }, environment: { A: '1' }, deploy: { resources: { reservations: { devices: [{ capabilities: ['gpu'], count: 1, options: { a: 1 } }] } } } },
      db: { image: 'b', depends_on: { web: { condition: 'service_started' } }, networks: { back: { aliases: ['x'], ipv4_address: '10.0.0.1' } } },
    },
    volumes: { data: { driver: 'local' } },
  });
  assert.equal(found.map((k) => [k.service, k.path]), [
    [undefined, 'version'], ['web', 'services.web.logging'], ['web', 'services.web.deploy.resources.reservations.devices.options'],
    ['db', 'services.db.networks.back.ipv4_address'], [undefined, 'volumes.data.driver'],
  ]);
  assert.is(ignoredKeyWarning(found[1]!), 'service "web": key "services.web.logging" is not supported and was ignored: the agent keeps Docker\'s default log driver, which `flotilla logs` reads');
});

test.run();
