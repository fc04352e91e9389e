// Loading compose projects (interpolation, .env, profiles, extends, several files, the project name, the
// schema) and converting them to Kubernetes objects that the server's own validation accepts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateObject } from '../../api-types/index.js';
import type { KubeObject } from '../../api-types/index.js';
import { ComposeError, interpolateString, loadProject, parseEnvText, projectName } from '../../cli/compose/load.js';
import { commandOf, composeBytes, conversionObjects, convertProject } from '../../cli/compose/convert.js';

const dirs: string[] = [];
test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** A project folder named `name` holding `files` (path -> text). */
function project(files: Record<string, string>, name = 'shop'): string {
  const root = mkdtempSync(join(tmpdir(), 'flotilla-compose-'));
  dirs.push(root);
  const dir = join(root, name);
  mkdirSync(dir);
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return dir;
}

const find = (objects: KubeObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} among ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(' ')}`);
  return o as KubeObject & { spec: any; data?: Record<string, string> };
};

test('interpolation: ${VAR}, $VAR, defaults with and without colon, required variables, alternatives and $$', () => {
  const env = { A: 'a', EMPTY: '' };
  const unset = new Set<string>();
  assert.is(interpolateString('${A}-$A-${B:-d}-${EMPTY:-e}-${EMPTY-f}-${B-g}-$$A-${A:+alt}-${EMPTY+set}', env, unset, 'f'), 'a-a-d-e--g-$A-alt-set');
  assert.is(interpolateString('${B:-${A}x}', env, unset, 'f'), 'ax');
  assert.is(interpolateString('x${NOPE}y', env, unset, 'f'), 'xy');
  assert.equal([...unset], ['NOPE']);
  assert.throws(() => interpolateString('${EMPTY:?must be set}', env, unset, 'f'), /required variable EMPTY is missing a value: must be set/);
  assert.is(interpolateString('${EMPTY?x}', env, unset, 'f'), '');
  assert.throws(() => interpolateString('${A', env, unset, 'f'), /invalid interpolation format/);
});

test('.env: export, quotes, comments, bare names from the environment, interpolation of earlier values', () => {
  const vars = parseEnvText('# c\nexport A=1\nB="x\\ny" \nC=\'$A\'\nD=${A}2 # note\nHOME\n', '.env', { HOME: '/root' });
  assert.equal(vars, { A: '1', B: 'x\ny', C: '$A', D: '12', HOME: '/root' });
  assert.throws(() => parseEnvText('1BAD=x', '.env'), /line 1/);
});

test('the project name: -p as given (refused when invalid), else name:, else the folder, normalised', () => {
  assert.is(projectName('my_app-1', 'other', '/x/y'), 'my_app-1');
  assert.throws(() => projectName('My App', undefined, '/x'), /invalid project name "My App"/);
  assert.is(projectName(undefined, 'Fancy.Name', '/x'), 'fancyname');
  assert.is(projectName(undefined, undefined, '/home/u/_My_Stack.v2'), 'my_stackv2');
});

test('load: the environment over .env, unset variables warned, the schema refusing an unknown key by its path', () => {
  const dir = project({ '.env': 'TAG=1.0\nPORT=8080\n', 'compose.yaml': 'services:\n  web:\n    image: "app:${TAG}"\n    ports: ["${PORT}:80"]\n    environment: ["MISSING=${NOT_SET}"]\n' });
  const p = loadProject({ files: [], cwd: dir, env: { TAG: '2.0' } });
  assert.is(p.name, 'shop');
  const web = (p.model.services as any).web;
  assert.is(web.image, 'app:2.0');
  assert.equal(web.ports, ['8080:80']);
  assert.equal(p.warnings, ['the "NOT_SET" variable is not set. Defaulting to a blank string.']);
  const bad = project({ 'compose.yaml': 'services:\n  web:\n    image: a\n    restart_policy: always\n' });
  assert.throws(() => loadProject({ files: [], cwd: bad, env: {} }), (e: unknown) => e instanceof ComposeError && /services\.web: additional property restart_policy not allowed/.test(e.message));
  assert.throws(() => loadProject({ files: [], cwd: bad, env: {}, envFile: 'nope.env' }), /couldn't find env file/);
});

test('load: several files merged as compose merges them, extends of a file and of a service, profiles', () => {
  const dir = project({
    'base.yaml': 'services:\n  common:\n    image: base:1\n    environment: { LOG: info, KEEP: "1" }\n    ports: ["80"]\n',
    'compose.yaml': 'services:\n  web:\n    extends: { file: base.yaml, service: common }\n    environment: [LOG=debug]\n    command: ["a", "b"]\n'
      + '  worker:\n    extends: web\n    command: ["w"]\n  debug:\n    image: tools\n    profiles: [debug]\n',
    'compose.override.yaml': 'services:\n  web:\n    ports: ["81"]\n    command: ["c"]\n',
  });
  const p = loadProject({ files: [], cwd: dir, env: {} });
  const s = p.model.services as any;
  assert.equal(Object.keys(s).sort(), ['web', 'worker']);
  assert.equal(p.disabled, ['debug']);
  assert.is(s.web.image, 'base:1');
  assert.equal(s.web.environment, { LOG: 'debug', KEEP: '1' });
  assert.equal(s.web.ports, ['80', '81']);
  assert.equal(s.web.command, ['c']);
  assert.equal(s.worker.command, ['w']);
  assert.equal(s.worker.environment, { LOG: 'debug', KEEP: '1' });
  const withDebug = loadProject({ files: [], cwd: dir, env: {}, profiles: ['debug'] });
  assert.ok((withDebug.model.services as any).debug);
  assert.ok((loadProject({ files: [], cwd: dir, env: { COMPOSE_PROFILES: 'x,debug' } }).model.services as any).debug);
  const explicit = loadProject({ files: [join(dir, 'compose.yaml')], cwd: '/', env: {} });
  assert.equal((explicit.model.services as any).web.ports, ['80'], 'an explicit -f reads no override file');
});

test('load: a dependency on a service its profiles disable is refused, naming both', () => {
  const dir = project({ 'compose.yaml': 'services:\n  web:\n    image: a\n    depends_on: [db]\n  db:\n    image: b\n    profiles: [data]\n' });
  assert.throws(() => loadProject({ files: [], cwd: dir, env: {} }), /service "web" depends on service "db", which is disabled by its profiles \(data\)/);
});

const SHOP = `
name: Shop
services:
  web:
    image: flotilla/testbox:latest
    command: httpd -f -p 80 -h /www
    ports: ["8080:80", "30080:80", "127.0.0.1:9090:90/udp"]
    links: ["api:backend"]
    depends_on: { api: { condition: service_healthy } }
    logging: { driver: syslog }
    labels: { com.example.description: "The front end" }
  api:
    image: flotilla/testbox:latest
    entrypoint: ["sh", "-c"]
    command: 'exec httpd -f -p 8000 -h "/srv/my www"'
    user: "1000:1000"
    working_dir: /srv
    cap_add: [NET_ADMIN]
    cap_drop: [CAP_ALL]
    expose: ["8000"]
    env_file: api.env
    environment: { MODE: prod, FROM_SHELL: null }
    secrets: [token, { source: token, target: /etc/token, mode: 0400 }]
    configs: [settings]
    stop_grace_period: 1m30s
    healthcheck: { test: ["CMD", "wget", "-q", "-O-", "http://localhost:8000/"], interval: 5s, timeout: 2s, retries: 4, start_period: 10s }
    depends_on: { db: { condition: service_healthy }, migrate: { condition: service_completed_successfully } }
    deploy:
      replicas: 2
      resources:
        limits: { cpus: "0.5", memory: 512M }
        reservations:
          memory: 128m
          devices: [{ capabilities: [gpu], count: 1 }]
      placement: { constraints: ["node.labels.zone==shelf-1", "node.platform.arch==aarch64", "node.id==x"] }
  db:
    image: flotilla/testbox:latest
    volumes: ["data:/var/lib/db", "./seed:/seed:ro", { type: tmpfs, target: /tmp, tmpfs: { size: 64m } }]
    healthcheck: { test: "test -f /var/lib/db/ready" }
  migrate:
    image: flotilla/testbox:latest
    command: ["true"]
    restart: "no"
volumes:
  data: {}
secrets:
  token: { file: ./token.txt }
configs:
  settings: { file: ./settings.ini }
`;

function shop() {
  const dir = project({ 'compose.yaml': SHOP, 'api.env': 'FROM_FILE=1\nMODE=dev\n', 'token.txt': 's3cret', 'settings.ini': 'a=1\n' });
  return convertProject(loadProject({ files: [], cwd: dir, env: { FROM_SHELL: 'yes' } }));
}

test('convert: every object passes the server\'s validation, in its namespace, labelled with the project', () => {
  const c = shop();
  assert.is(c.namespace, 'shop');
  assert.equal(c.services.map((s) => s.name), ['db', 'migrate', 'api', 'web']);
  for (const o of conversionObjects(c)) {
    const v = validateObject(o);
    assert.ok(v.ok, `${o.kind}/${o.metadata.name}: ${JSON.stringify(!v.ok && v.issues)}`);
    assert.is(o.metadata.labels?.['flotilla.io/compose-project'], 'shop');
    if (o.kind !== 'Namespace') assert.is(o.metadata.namespace, 'shop');
  }
});

test('convert: kinds: a StatefulSet for one replica with a named volume, a Job for restart "no" and for what others wait to complete', () => {
  const c = shop();
  assert.equal(Object.fromEntries(c.services.map((s) => [s.name, s.kind])), { db: 'StatefulSet', migrate: 'Job', api: 'Deployment', web: 'Deployment' });
  const objects = conversionObjects(c);
  const db = find(objects, 'StatefulSet', 'db');
  assert.is(db.spec.serviceName, 'db');
  assert.equal(db.spec.template.spec.volumes[0], { name: 'vol-data', persistentVolumeClaim: { claimName: 'data' } });
  const pvc = find(objects, 'PersistentVolumeClaim', 'data');
  assert.equal(pvc.spec, { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: '1Gi' } } });
  const job = find(objects, 'Job', 'migrate');
  assert.is(job.spec.template.spec.restartPolicy, 'Never');
  assert.is(job.spec.backoffLimit, 0);
  assert.equal(c.services.find((s) => s.name === 'api')!.dependsOn, { db: 'service_healthy', migrate: 'service_completed_successfully' });
});

test('convert: command, entrypoint, env, user, capabilities, resources, GPUs, placement, probes, grace period of a service', () => {
  const objects = conversionObjects(shop());
  const api = find(objects, 'Deployment', 'api');
  assert.is(api.spec.replicas, 2);
  const pod = api.spec.template.spec;
  const ctr = pod.containers[0];
  assert.equal(ctr.command, ['sh', '-c']);
  assert.equal(ctr.args, ['exec', 'httpd', '-f', '-p', '8000', '-h', '/srv/my www']);
  assert.equal(ctr.env, [{ name: 'FROM_FILE', value: '1' }, { name: 'MODE', value: 'prod' }, { name: 'FROM_SHELL', value: 'yes' }]);
  assert.is(ctr.workingDir, '/srv');
  assert.equal(ctr.securityContext, { runAsUser: 1000, runAsGroup: 1000, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } });
  assert.equal(ctr.resources, { limits: { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': '1' }, requests: { memory: '128Mi', 'nvidia.com/gpu': '1' } });
  assert.equal(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [{ matchExpressions: [
    { key: 'zone', operator: 'In', values: ['shelf-1'] }, { key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] },
  ] }]);
  const probe = { exec: { command: ['wget', '-q', '-O-', 'http://localhost:8000/'] }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 4, initialDelaySeconds: 10 };
  assert.equal(ctr.readinessProbe, probe);
  assert.equal(ctr.livenessProbe, probe);
  assert.is(pod.terminationGracePeriodSeconds, 90);
  const db = find(objects, 'StatefulSet', 'db').spec.template.spec.containers[0];
  assert.equal(db.readinessProbe, { exec: { command: ['/bin/sh', '-c', 'test -f /var/lib/db/ready'] }, periodSeconds: 30, timeoutSeconds: 30, failureThreshold: 3 });
});

test('convert: secrets at /run/secrets/NAME or their target, configs at /NAME, a Secret and a ConfigMap with the files\' contents', () => {
  const objects = conversionObjects(shop());
  const ctr = find(objects, 'Deployment', 'api').spec.template.spec.containers[0];
  assert.equal(ctr.volumeMounts, [
    { name: 'secret-token', mountPath: '/run/secrets/token', subPath: 'token', readOnly: true },
    { name: 'secret-token-400', mountPath: '/etc/token', subPath: 'token', readOnly: true },
    { name: 'config-settings', mountPath: '/settings', subPath: 'settings', readOnly: true },
  ]);
  assert.is(Buffer.from(find(objects, 'Secret', 'token').data!.token!, 'base64').toString(), 's3cret');
  assert.equal(find(objects, 'ConfigMap', 'settings').data, { settings: 'a=1\n' });
});

test('convert: a headless Service per service name and link alias, published ports as a NodePort in range and hostPorts outside it', () => {
  const objects = conversionObjects(shop());
  const api = find(objects, 'Service', 'api');
  assert.equal(api.spec, { clusterIP: 'None', selector: { 'flotilla.io/compose-project': 'shop', 'flotilla.io/compose-service': 'api' }, ports: [{ port: 8000, targetPort: 8000, protocol: 'TCP' }] });
  assert.equal(find(objects, 'Service', 'backend').spec.selector, api.spec.selector);
  assert.equal(find(objects, 'Service', 'db').spec.clusterIP, 'None');
  const web = find(objects, 'Deployment', 'web').spec.template.spec.containers[0];
  assert.equal(web.ports, [{ containerPort: 80, protocol: 'TCP', hostPort: 8080 }, { containerPort: 90, protocol: 'UDP', hostPort: 9090, hostIP: '127.0.0.1' }]);
  assert.equal(find(objects, 'Service', 'web-published').spec.ports, [{ port: 30080, targetPort: 80, protocol: 'TCP', nodePort: 30080 }]);
  assert.equal(find(objects, 'Deployment', 'web').spec.template.metadata.annotations, { 'com.example.description': 'The front end' });
});

test('convert: a project beyond the Pod Security baseline level gets a namespace labelled privileged, and says why', () => {
  const dir = project({ 'compose.yaml': 'services:\n  web:\n    image: nginx\n  agent:\n    image: tools\n    privileged: true\n    volumes: ["/var/run/docker.sock:/var/run/docker.sock"]\n' });
  const c = convertProject(loadProject({ files: [], cwd: dir, env: {} }));
  assert.is(c.shared[0]!.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'privileged');
  const w = c.warnings.find((x) => x.startsWith('namespace "shop" is labelled pod-security.kubernetes.io/enforce=privileged'));
  assert.ok(w, c.warnings.join('\n'));
  assert.match(w!, /service "agent": hostPath volumes \(volume "[^"]+"\), privileged \(container "agent" must not set securityContext.privileged=true\)/);
  assert.not.match(w!, /service "web"/);
  const plain = convertProject(loadProject({ files: [], cwd: project({ 'compose.yaml': 'services:\n  web:\n    image: nginx\n' }, 'plain'), env: {} }));
  assert.is(plain.shared[0]!.metadata.labels?.['pod-security.kubernetes.io/enforce'], undefined, 'a project within baseline keeps the cluster default');
});

test('convert: every key not honoured is warned about with its service and path; bind mounts are warned as hostPath', () => {
  const w = shop().warnings;
  assert.ok(w.includes('service "web": key "services.web.logging" is not supported and was ignored: the agent keeps Docker\'s default log driver, which `flotilla logs` reads'), w.join('\n'));
  assert.ok(w.some((x) => x.startsWith('service "api": key "services.api.deploy.placement.constraints[2]" is not supported and was ignored: "node.id==x"')), w.join('\n'));
  assert.ok(w.some((x) => x.startsWith('service "db": key "services.db.volumes[1]" is not supported and was ignored: the bind mount of ') && x.includes('/shop/seed is a hostPath volume')), w.join('\n'));
});

test('convert: build is refused with the advice to build and load the image; service_healthy needs a healthcheck', () => {
  const built = project({ 'compose.yaml': 'services:\n  web:\n    build: ./web\n' });
  assert.throws(() => convertProject(loadProject({ files: [], cwd: built, env: {} })), /service "web" has a build section: .*docker build -t IMAGE \.\/web.*flotilla image load IMAGE --all/);
  const unhealthy = project({ 'compose.yaml': 'services:\n  web:\n    image: a\n    depends_on: { db: { condition: service_healthy } }\n  db:\n    image: b\n' });
  assert.throws(() => convertProject(loadProject({ files: [], cwd: unhealthy, env: {} })), /service "db" has no healthcheck configured/);
  const cyclic = project({ 'compose.yaml': 'services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n' });
  assert.throws(() => convertProject(loadProject({ files: [], cwd: cyclic, env: {} })), /dependency cycle detected: a -> b -> a/);
  const named = project({ 'compose.yaml': 'services:\n  my_db:\n    image: a\n' });
  assert.throws(() => convertProject(loadProject({ files: [], cwd: named, env: {} })), /service "my_db": its name must resolve in the cluster DNS/);
  const gpuAll = project({ 'compose.yaml': 'services:\n  ml:\n    image: a\n    deploy: { resources: { reservations: { devices: [{ capabilities: [gpu], count: all }] } } }\n' });
  assert.throws(() => convertProject(loadProject({ files: [], cwd: gpuAll, env: {} })), /count "all" is not supported: give count: N/);
});

test('convert: device_ids pins exactly those GPUs (flotilla.io/gpu-ids) and asks as many; mixing with a count, a repeat or a malformed id is refused', () => {
  const ml = (devices: string) => loadProject({ files: [], cwd: project({ 'compose.yaml': `services:\n  ml:\n    image: a\n    deploy: { resources: { reservations: { devices: ${devices} } } }\n` }), env: {} });
  const out = convertProject(ml('[{ capabilities: [gpu], device_ids: ["GPU-aaaa", "GPU-bbbb"] }]'));
  const template = find(conversionObjects(out), 'Deployment', 'ml').spec.template;
  assert.equal(template.metadata.annotations, { 'flotilla.io/gpu-ids': 'GPU-aaaa,GPU-bbbb' });
  assert.equal(template.spec.containers[0].resources, { limits: { 'nvidia.com/gpu': '2' }, requests: { 'nvidia.com/gpu': '2' } });
  assert.not.ok(out.warnings.some((w) => w.includes('device_ids')), out.warnings.join('\n'));
  assert.throws(() => convertProject(ml('[{ capabilities: [gpu], device_ids: ["GPU-aaaa"] }, { capabilities: [gpu], count: 1 }]')),
    /device_ids pins every GPU of the service; it cannot be combined with a count/);
  assert.throws(() => convertProject(ml('[{ capabilities: [gpu], device_ids: ["GPU-aaaa", "GPU-aaaa"] }]')), /device_ids: must NOT have duplicate items/);
  assert.throws(() => convertProject(ml('[{ capabilities: [gpu], device_ids: ["GPU-aaaa", "GPU b"] }]')), /device_ids: entry 2 \("GPU b"\) is not a GPU UUID/);
});

test('command strings split as a shell splits words; compose sizes as quantities', () => {
  assert.equal(commandOf('sh -c "echo \\"hi\\" $X" \'a b\' c\\ d', 'x'), ['sh', '-c', 'echo "hi" $X', 'a b', 'c d']);
  assert.throws(() => commandOf('echo "x', 'cmd'), /cmd: unterminated double quote/);
  assert.is(composeBytes('512M', 'm'), '512Mi');
  assert.is(composeBytes('1gb', 'm'), '1Gi');
  assert.is(composeBytes(1024, 'm'), '1024');
  assert.is(composeBytes('1.5k', 'm'), '1536');
  assert.throws(() => composeBytes('lots', 'deploy.resources.limits.memory'), /deploy.resources.limits.memory: "lots" is not a size/);
});

test.run();
