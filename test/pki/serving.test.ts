// A server's own certificate (server/pki/serving.ts): kept while it names exactly the wanted SANs, comes from the
// current CA and has more than a third of its life left; issued again otherwise. Its subject is what the auth
// middleware maps to a peer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certificateInfo, issuedBy } from '../../client/pki.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { ensureServingCertificate, servingAltNames } from '../../server/pki/serving.js';
import { serverCertificateIdentity } from '../../server/api/middleware/auth.js';

const DAY = 86_400_000;

test('the SANs: the listen host and the advertised hosts, the host name and the loopback names', () => {
  assert.equal(servingAltNames('10.0.0.5', ['https://10.0.0.5:7400', 'https://pi.lan:7400', 'https://[fd00::5]:7400'], 'pi'),
    ['10.0.0.5', '127.0.0.1', '::1', 'fd00::5', 'localhost', 'pi', 'pi.lan']);
  assert.ok(servingAltNames('0.0.0.0', [], 'pi').includes('127.0.0.1'), 'every address of the machine when listening on all');
});

test('kept while good; issued again for other SANs, another CA, or less than a third of its life left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-serving-'));
  try {
    const ca = await ClusterCa.create('serving');
    const names = ['127.0.0.1', '::1', 'localhost'];
    const first = await ensureServingCertificate(dir, ca, 42, names);
    assert.is(statSync(join(dir, 'pki', 'server.key')).mode & 0o777, 0o600);
    const info = certificateInfo(first.certPem);
    assert.equal([info.commonName, info.organizations], ['flotilla:server:42', ['flotilla:servers']]);
    assert.ok(issuedBy(first.certPem, ca.certPem));
    assert.equal(serverCertificateIdentity(new X509Certificate(first.certPem)), { name: 'flotilla:server:42', groups: ['flotilla:servers', 'system:authenticated'] });

    assert.is((await ensureServingCertificate(dir, ca, 42, [...names].reverse())).certPem, first.certPem, 'same names, same certificate');
    assert.is((await ensureServingCertificate(dir, ca, 42, names, Date.now() + 200 * DAY)).certPem, first.certPem, 'more than a third of a year left');
    const late = await ensureServingCertificate(dir, ca, 42, names, Date.now() + 250 * DAY);
    assert.is.not(late.certPem, first.certPem, 'less than a third left: renewed');
    const moved = await ensureServingCertificate(dir, ca, 42, [...names, '192.168.1.7']);
    assert.is.not(moved.certPem, late.certPem, 'a new address: issued again');
    assert.match(new X509Certificate(moved.certPem).subjectAltName ?? '', /IP Address:192\.168\.1\.7/);
    const other = await ClusterCa.create('another');
    assert.ok(issuedBy((await ensureServingCertificate(dir, other, 42, [...names, '192.168.1.7'])).certPem, other.certPem), 'another CA: issued again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
