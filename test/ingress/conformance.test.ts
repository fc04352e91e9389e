// The Ingress v1 conformance table: the path and host examples of the Kubernetes Ingress documentation (the
// "Examples" table of path types, the wildcard host table), plus precedence and merging, each as a request and
// the backend that must answer it (or 404). Run twice: on the routing table directly, and through the router
// over HTTP to fake backends on 127.0.0.x that answer their own name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import pino from 'pino';
import type { Ingress } from '../../api-types/index.js';
import { IngressRouter } from '../../node-agent/ingress/router.js';
import { RouteTable } from '../../node-agent/ingress/routes.js';
import { get, ingressOf, pathTo, serviceFor, startBackends, stopBackends, type Backend } from './backends.js';

const rule = (host: string | undefined, ...paths: ReturnType<typeof pathTo>[]) => ({ ...(host !== undefined ? { host } : {}), http: { paths } });
const P = (svc: string, path: string | undefined) => pathTo(svc, path, 'Prefix');
const E = (svc: string, path: string) => pathTo(svc, path, 'Exact');
const I = (svc: string, path: string | undefined) => pathTo(svc, path, 'ImplementationSpecific');

/** Without a defaultBackend: what no rule matches is 404. */
const fixture: Ingress[] = [
  ingressOf('older', {
    rules: [
      rule('prefix-root.test', P('root', '/')),
      rule('exact.test', E('foo', '/foo')),
      rule('exact-slash.test', E('foo-slash', '/foo/')),
      rule('prefix-foo.test', P('foo', '/foo')),
      rule('prefix-foo-slash.test', P('foo', '/foo/')),
      rule('aaa.test', P('bb', '/aaa/bb'), P('bbb', '/aaa/bbb')),
      rule('aaa-slash.test', P('bbb', '/aaa/bbb/')),
      rule('multi.test', P('root', '/'), P('aaa', '/aaa'), P('aaabbb', '/aaa/bbb')),
      rule('only-aaa.test', P('aaa', '/aaa')),
      rule('mixed.test', P('prefix', '/foo'), E('exact', '/foo')),
      rule('longest.test', E('exact-a', '/a'), P('prefix-ab', '/a/b')),
      rule('impl.test', I('impl', '/impl'), I('impl-all', undefined)),
      rule('foo.bar.com', P('foo-bar', '/')),
      rule('*.foo.com', P('wild', '/')),
      rule('exact.foo.com', P('exact-host', '/')),
      rule('api.test', P('api', '/api')),
      rule(undefined, P('static', '/static')),
      rule('merge.test', P('older', '/m'), P('older-o', '/o')),
    ],
  }, '2024-01-01T00:00:00Z'),
  ingressOf('newer', { rules: [rule('merge.test', P('newer', '/m'), P('newer-n', '/n')), rule('prefix-root.test', P('newer', '/'))] }, '2024-06-01T00:00:00Z'),
];

/** The same, with defaultBackends: the oldest Ingress's answers what nothing matches. */
const withDefault: Ingress[] = [
  ingressOf('default-older', { defaultBackend: { service: { name: 'default-old', port: { number: 80 } } }, rules: [rule('only-aaa.test', P('aaa', '/aaa'))] }, '2024-01-01T00:00:00Z'),
  ingressOf('default-newer', { defaultBackend: { service: { name: 'default-new', port: { number: 80 } } } }, '2024-02-01T00:00:00Z'),
];

type Case = [fixture: 'plain' | 'default', host: string, path: string, backend: string | 404, why: string];
const cases: Case[] = [
  // The documentation's table of path types.
  ['plain', 'prefix-root.test', '/', 'root', 'Prefix / matches /'],
  ['plain', 'prefix-root.test', '/any/thing/at/all', 'root', 'Prefix / matches all paths'],
  ['plain', 'exact.test', '/foo', 'foo', 'Exact /foo matches /foo'],
  ['plain', 'exact.test', '/bar', 404, 'Exact /foo does not match /bar'],
  ['plain', 'exact.test', '/foo/', 404, 'Exact /foo does not match /foo/'],
  ['plain', 'exact-slash.test', '/foo', 404, 'Exact /foo/ does not match /foo'],
  ['plain', 'exact-slash.test', '/foo/', 'foo-slash', 'Exact /foo/ matches /foo/'],
  ['plain', 'prefix-foo.test', '/foo', 'foo', 'Prefix /foo matches /foo'],
  ['plain', 'prefix-foo.test', '/foo/', 'foo', 'Prefix /foo matches /foo/'],
  ['plain', 'prefix-foo-slash.test', '/foo', 'foo', 'Prefix /foo/ matches /foo (trailing slash ignored)'],
  ['plain', 'prefix-foo-slash.test', '/foo/', 'foo', 'Prefix /foo/ matches /foo/'],
  ['plain', 'aaa.test', '/aaa/bbb', 'bbb', 'Prefix /aaa/bbb matches /aaa/bbb (not the shorter /aaa/bb)'],
  ['plain', 'aaa.test', '/aaa/bbb/', 'bbb', 'Prefix /aaa/bbb matches /aaa/bbb/ (trailing slash)'],
  ['plain', 'aaa.test', '/aaa/bbb/ccc', 'bbb', 'Prefix /aaa/bbb matches the subpath /aaa/bbb/ccc'],
  ['plain', 'aaa.test', '/aaa/bbbxyz', 404, 'Prefix /aaa/bbb does not match the string prefix /aaa/bbbxyz (nor does /aaa/bb)'],
  ['plain', 'aaa.test', '/aaa/bb', 'bb', 'Prefix /aaa/bb matches /aaa/bb'],
  ['plain', 'aaa-slash.test', '/aaa/bbb', 'bbb', 'Prefix /aaa/bbb/ matches /aaa/bbb, ignoring the trailing slash'],
  ['plain', 'multi.test', '/aaa/ccc', 'aaa', 'of /, /aaa: /aaa/ccc matches the /aaa prefix'],
  ['plain', 'multi.test', '/aaa/bbb', 'aaabbb', 'of /, /aaa, /aaa/bbb: /aaa/bbb matches the longest'],
  ['plain', 'multi.test', '/ccc', 'root', 'of /, /aaa, /aaa/bbb: /ccc matches /'],
  ['plain', 'only-aaa.test', '/ccc', 404, 'Prefix /aaa does not match /ccc: default backend (none: 404)'],
  ['default', 'only-aaa.test', '/ccc', 'default-old', 'Prefix /aaa does not match /ccc: the default backend'],
  ['plain', 'mixed.test', '/foo', 'exact', 'Prefix /foo and Exact /foo: /foo prefers Exact'],
  ['plain', 'mixed.test', '/foo/', 'prefix', 'Prefix /foo and Exact /foo: /foo/ is Prefix'],
  ['plain', 'mixed.test', '/foo/x', 'prefix', 'Prefix /foo and Exact /foo: /foo/x is Prefix'],
  ['plain', 'longest.test', '/a/b', 'prefix-ab', 'the longest matching path wins over a shorter Exact'],
  ['plain', 'longest.test', '/a', 'exact-a', 'Exact /a matches /a'],
  ['plain', 'exact.test', '/FOO', 404, 'paths are case-sensitive'],
  ['plain', 'exact.test', '/foo?x=1&y=2', 'foo', 'the query string is not part of the path'],
  ['plain', 'impl.test', '/impl/x', 'impl', 'ImplementationSpecific is Prefix here'],
  ['plain', 'impl.test', '/implx', 'impl-all', 'ImplementationSpecific is element-wise too; an empty path is /'],
  // The documentation's table of hostname wildcards.
  ['plain', 'bar.foo.com', '/', 'wild', '*.foo.com matches bar.foo.com (shared suffix)'],
  ['plain', 'baz.bar.foo.com', '/', 404, '*.foo.com does not match baz.bar.foo.com: one label only'],
  ['plain', 'foo.com', '/', 404, '*.foo.com does not match foo.com: one label only'],
  ['plain', 'exact.foo.com', '/', 'exact-host', 'an exact host wins over the wildcard'],
  ['plain', 'foo.bar.com', '/x', 'foo-bar', 'an exact host'],
  ['plain', 'FOO.Bar.com', '/x', 'foo-bar', 'hosts compare case-insensitively'],
  ['plain', 'foo.bar.com:8080', '/x', 'foo-bar', 'the Host header\'s port is not part of the host'],
  ['plain', 'unknown.test', '/x', 404, 'a host no rule names, a path no host-less rule has'],
  // Rules without a host apply to every host.
  ['plain', 'api.test', '/api/v1', 'api', 'the host\'s own rule'],
  ['plain', 'api.test', '/static/a.css', 'static', 'no path of the host matches: the rules without a host'],
  ['plain', 'unknown.test', '/static/a.css', 'static', 'a rule without a host matches every host'],
  // Several Ingresses merge; on a conflict the oldest wins.
  ['plain', 'merge.test', '/m', 'older', 'the same host, path and type in two Ingresses: the oldest wins'],
  ['plain', 'merge.test', '/n', 'newer-n', 'the newer Ingress adds its other paths to the host'],
  ['plain', 'merge.test', '/o', 'older-o', 'the older Ingress keeps its other paths'],
  ['plain', 'prefix-root.test', '/', 'root', 'Prefix / given again by a newer Ingress: the oldest wins'],
  ['default', 'anything.test', '/', 'default-old', 'of two defaultBackends the oldest Ingress\'s'],
];

const names = [...new Set([...fixture, ...withDefault].flatMap((i) => [
  ...(i.spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend.service!.name)),
  ...(i.spec.defaultBackend ? [i.spec.defaultBackend.service!.name] : []),
]))];

function tableOf(ingresses: Ingress[], backends: readonly Backend[]): RouteTable {
  const svcs = backends.map((b) => serviceFor(b.name, [b]));
  return RouteTable.build({
    ingresses, classes: [{ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'flotilla' }, spec: { controller: 'flotilla.io/ingress' } }],
    services: svcs.map((s) => s.service), slicesOf: (_ns, name) => svcs.filter((s) => s.service.metadata.name === name).map((s) => s.slice), controller: 'flotilla.io/ingress',
  }, new Map());
}

test('the table has at least 30 cases', () => {
  assert.ok(cases.length >= 30, `${cases.length} cases`);
});

test('every case, on the routing table', () => {
  // Addresses only: no server listens for this run.
  const fake = names.map((name, i) => ({ name, address: `127.0.0.${10 + i}`, port: 8080 }) as Backend);
  const tables = { plain: tableOf(fixture, fake), default: tableOf(withDefault, fake) };
  const wrong: string[] = [];
  for (const [fx, host, path, want, why] of cases) {
    const q = path.indexOf('?');
    const route = tables[fx].match(host, q < 0 ? path : path.slice(0, q));
    const got = route ? route.upstream.name.replace(/^default\/(.*):80$/, '$1') : 404;
    if (got !== want) wrong.push(`${host}${path}: want ${want}, got ${got} (${why})`);
  }
  assert.equal(wrong, []);
});

test('every case, through the router over HTTP to backends that answer their name', async () => {
  const backends = await startBackends(names);
  const router = new IngressRouter(pino({ level: 'silent' }));
  try {
    const { httpPort } = await router.listen({ host: '127.0.0.1', httpPort: 0 });
    const tables = { plain: tableOf(fixture, backends), default: tableOf(withDefault, backends) };
    const wrong: string[] = [];
    for (const fx of ['plain', 'default'] as const) {
      router.setTable(tables[fx]);
      for (const [cfx, host, path, want, why] of cases) {
        if (cfx !== fx) continue;
        const a = await get(httpPort!, host, path);
        const got = a.status === 200 ? a.body : a.status;
        if (got !== want) wrong.push(`${host}${path}: want ${want}, got ${got} (${why})`);
      }
    }
    assert.equal(wrong, []);
  } finally {
    await router.close();
    await stopBackends(backends);
  }
});

test.run();
