// The API client talks only to Flotilla servers: a certificate of the cluster CA that is not a server's (a node
// certificate, which serves its agent endpoint and names the node's addresses) does not pass for a server at
// those addresses, so a node cannot play the API server to the CLI or to other agents (and collect their tokens).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ClusterCa } from '../../server/pki/ca.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import { NODE_GROUP, SERVER_GROUP, nodeCommonName } from '../../client/pki.js';

async function serveWith(cert: { certPem: string; keyPem: string }, seen: string[]): Promise<https.Server> {
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    seen.push(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"kind":"Status"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

test('a node certificate of the cluster CA naming the address is not a server; a server certificate is', async () => {
  const ca = await ClusterCa.create('identity-test');
  const node = await ca.issue({ commonName: nodeCommonName('rogue'), organizations: [NODE_GROUP], altNames: ['127.0.0.1', 'rogue'] }, { usage: 'server+client' });
  const member = await ca.issue({ commonName: 'flotilla:server:1', organizations: [SERVER_GROUP], altNames: ['127.0.0.1'] }, { usage: 'server+client' });
  const seen: string[] = [];
  const servers: https.Server[] = [];
  try {
    const rogue = await serveWith(node, seen);
    servers.push(rogue);
    const client = new ApiClient(`https://127.0.0.1:${(rogue.address() as AddressInfo).port}`, 'admin-secret', { tls: { ca: ca.certPem } });
    const refused = await client.request('GET', '/api/v1/nodes').then(() => undefined, (err: unknown) => err);
    client.close();
    assert.instance(refused, ApiClientError);
    assert.match((refused as Error).message, /presents a certificate for "system:node:rogue", which is not a Flotilla server's/);
    assert.equal(seen, [], 'the token reached a node posing as the server');

    const real = await serveWith(member, seen);
    servers.push(real);
    const ok = new ApiClient(`https://127.0.0.1:${(real.address() as AddressInfo).port}`, 'admin-secret', { tls: { ca: ca.certPem } });
    await ok.request('GET', '/api/v1/nodes');
    ok.close();
    assert.equal(seen, ['Bearer admin-secret']);
  } finally {
    for (const s of servers) { s.closeAllConnections(); s.close(); }
  }
});

test.run();
