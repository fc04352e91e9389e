// `flotilla compose up` and `down` end to end, on the multi-host lab (one host with its own dockerd and a real
// `flotilla agent`: pod network and cluster DNS on), plus a hollow node with a GPU: three services web -> api -> db,
// each waiting for the next to be healthy, db on a named volume (a local-path claim), api serving a secret, a GPU
// service placed on the hollow GPU node, and a key Flotilla ignores. Up creates them in dependency order, web
// reaches api by its service name, the warning names the key, and `down -v` removes everything it made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodNetworkLab } from '../lab/pod-network-lab.js';
import { eventually } from '../support/eventually.js';

const NODE = 'box';
const PROJECT = 'shop';
/** Every service but the GPU one stays off the hollow node, where containers only pretend to run. */
const REAL = '      placement: { constraints: ["node.labels.flotilla.io/hollow!=true"] }';
const COMPOSE = `
services:
  web:
    image: flotilla/testbox:latest
    command: ["sleep", "3600"]
    stop_grace_period: 0s
    depends_on: { api: { condition: service_healthy } }
    logging: { driver: syslog }
    deploy:
${REAL}
  api:
    image: flotilla/testbox:latest
    command: ["sh", "-c", "mkdir -p /www && cp /run/secrets/token /www/index.html && exec httpd -f -p 8000 -h /www"]
    stop_grace_period: 0s
    expose: ["8000"]
    secrets: [token]
    depends_on: { db: { condition: service_healthy } }
    healthcheck: { test: ["CMD", "test", "-f", "/www/index.html"], interval: 1s, retries: 30 }
    deploy:
${REAL}
  db:
    image: flotilla/testbox:latest
    command: ["sh", "-c", "date > /data/started && exec sleep 3600"]
    stop_grace_period: 0s
    volumes: ["data:/data"]
    healthcheck: { test: ["CMD-SHELL", "test -s /data/started"], interval: 1s, retries: 30 }
    deploy:
${REAL}
  trainer:
    image: flotilla/testbox:latest
    command: ["sleep", "3600"]
    deploy:
      resources:
        reservations:
          devices: [{ capabilities: [gpu], count: 1 }]
volumes:
  data: {}
secrets:
  token: { file: ./token.txt }
`;

let cluster: PodNetworkLab | undefined;
let dir = '';
test.after(async () => {
  await cluster?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Obj { metadata: { name: string; creationTimestamp: string; annotations?: Record<string, string> }; spec: { nodeName?: string }; status?: { conditions?: { type: string; status: string; lastTransitionTime?: string }[] } }

async function items(path: string): Promise<Obj[]> {
  const r = await cluster!.api('GET', path);
  assert.is(r.code, 200, JSON.stringify(r.json));
  return r.json.items as Obj[];
}

const readySince = (p: Obj) => p.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True')?.lastTransitionTime;

test('compose up brings web, api and db up in dependency order, the GPU service on the hollow GPU node, warning of the ignored key', async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-compose-lab-'));
  writeFileSync(join(dir, 'compose.yaml'), COMPOSE);
  writeFileSync(join(dir, 'token.txt'), 'the-api-token');
  cluster = await PodNetworkLab.start({ hosts: 1, prefix: `fl-cmp${process.pid % 100000}`, subnet: '10.87.0' });
  await cluster.startAgent(1, NODE);
  await cluster.startHollowAgents(1, 'gpu', 1, 1);
  const up = await cluster.cli(1, ['compose', '-f', join(dir, 'compose.yaml'), '-p', PROJECT, 'up', '--wait', '--timeout', '4m'], 300_000);
  assert.is(up.code, 0, `${up.stdout}\n${up.stderr}`);
  assert.match(up.stderr, 'service "web": key "services.web.logging" is not supported and was ignored');
  for (const line of ['namespace/shop created', 'persistentvolumeclaim/data created', 'secret/token created', 'statefulset.apps/db created', 'deployment.apps/api created', 'deployment.apps/web created', 'service/api created']) {
    assert.match(up.stdout, line);
  }
  // up waited for db before writing api, and for api before writing web.
  const waits = up.stderr.split('\n').filter((l) => /^service "\w+" is healthy$/.test(l));
  assert.equal(waits, ['service "db" is healthy', 'service "api" is healthy']);
  const pods = await items(`/api/v1/namespaces/${PROJECT}/pods`);
  const podOf = (svc: string) => pods.find((p) => p.metadata.name.startsWith(`${svc}-`))!;
  const deployments = await items(`/apis/apps/v1/namespaces/${PROJECT}/deployments`);
  const created = (name: string) => Date.parse(deployments.find((d) => d.metadata.name === name)!.metadata.creationTimestamp);
  assert.ok(created('api') >= Date.parse(readySince(podOf('db'))!), 'api was created once db was ready');
  assert.ok(created('web') >= Date.parse(readySince(podOf('api'))!), 'web was created once api was ready');
  for (const svc of ['web', 'api', 'db']) assert.is(podOf(svc).spec.nodeName, NODE, svc);
  const trainer = podOf('trainer');
  assert.is(trainer.spec.nodeName, 'gpu-0');
  assert.match(trainer.metadata.annotations?.['flotilla.io/assigned-gpus'] ?? '', /^GPU-hollow-gpu-0-0$/);
});

test('web reaches api by its service name, and gets the secret api serves from /run/secrets', async () => {
  const web = (await cluster!.podsOf('flotilla.io/compose-service=web', PROJECT))[0]!;
  let last = '';
  await eventually('GET http://api:8000/ from web', async () => {
    const r = await cluster!.cli(1, ['exec', '-n', PROJECT, web.metadata.name, '--', 'sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 3 api 8000']);
    last = r.stdout + r.stderr;
    return r.stdout.includes('the-api-token') ? true : undefined;
  }, { limitMs: 60_000, everyMs: 500, detail: () => last });
  const ps = await cluster!.cli(1, ['compose', '-p', PROJECT, 'ps']);
  assert.is(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /api-\S+\s+flotilla\/testbox:latest\s+api\s+Running \(healthy\)/);
});

test('compose down -v removes every object up made, the namespace last, and the containers', async () => {
  const down = await cluster!.cli(1, ['compose', '-p', PROJECT, 'down', '-v'], 300_000);
  assert.is(down.code, 0, `${down.stdout}\n${down.stderr}`);
  assert.match(down.stdout, 'namespace/shop deleted');
  assert.is((await cluster!.api('GET', `/api/v1/namespaces/${PROJECT}`)).code, 404);
  for (const path of ['/api/v1/pods', '/api/v1/services', '/api/v1/persistentvolumeclaims', '/api/v1/secrets', '/apis/apps/v1/deployments', '/apis/apps/v1/statefulsets']) {
    assert.equal((await items(`${path}?labelSelector=flotilla.io/compose-project=${PROJECT}`)).map((o) => o.metadata.name), [], path);
  }
  await eventually('no container of the project left in Docker', async () => {
    const ps = await cluster!.lab.docker(1, ['ps', '-aq', '--filter', `label=io.flotilla.namespace=${PROJECT}`]);
    return ps.stdout.trim() === '' ? true : undefined;
  }, { limitMs: 60_000, everyMs: 500 });
});

test.run();
