// Node keys: the agent's key file, the annotation it registers with, the server's admission check, and the
// files `flotilla agent install` renders.
import { ANNOTATION_NODE_KEY } from '../../api-types/index.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey } from 'node:crypto';
import { NODE_KEY_FILE, NODE_PKI_DIR, checkRegisteredNode, loadNodeIdentity, withNodeKey } from '../../node-agent/identity.js';
import { certificateInfo, createCsr } from '../../client/pki.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { admitNodeKey } from '../../server/tokens/node-identity.js';
import { StoreError } from '../../server/store/types.js';
import { parseArgs } from '../../cli/args.js';
import type { Io } from '../../cli/command.js';
import { agentInstallCommand, ENV_PATH, UNIT_PATH } from '../../cli/agent-install.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-identity-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('the node key is made once, an ECDSA P-256 key of mode 0600 in pki/, and stays the same across restarts', async () => {
  const data = join(dir, 'agent');
  const first = await loadNodeIdentity(data);
  const file = join(data, NODE_PKI_DIR, NODE_KEY_FILE);
  assert.is(statSync(file).mode & 0o777, 0o600);
  const key = createPrivateKey(readFileSync(file, 'utf8'));
  assert.is(key.asymmetricKeyType, 'ec');
  assert.is(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const again = await loadNodeIdentity(data);
  assert.is(again.fingerprint, first.fingerprint);
  assert.match(first.fingerprint, /^sha256:[0-9a-f]{64}$/);
  const other = await loadNodeIdentity(join(dir, 'reimaged'));
  assert.is.not(other.fingerprint, first.fingerprint, 'a new data dir is a new machine');
  // The key of its certificates: what the servers bind the node name to.
  const csr = await createCsr(first.keys, { commonName: 'x' });
  const ca = await ClusterCa.create('identity-test');
  const cert = await ca.signCsr(csr, { commonName: 'x' }, { usage: 'client' });
  assert.is(certificateInfo(cert).publicKeySha256, first.publicKeySha256);
});

test('a key file readable by others, or not a key, is refused naming the file', async () => {
  const data = join(dir, 'loose');
  await loadNodeIdentity(data);
  const file = join(data, NODE_PKI_DIR, NODE_KEY_FILE);
  chmodSync(file, 0o644);
  await loadNodeIdentity(data).then(() => assert.unreachable('loaded'), (err: Error) => assert.match(err.message, /readable by its owner only \(chmod 600/));
  chmodSync(file, 0o600);
  writeFileSync(file, 'not a key');
  await loadNodeIdentity(data).then(() => assert.unreachable('loaded'), (err: Error) => assert.ok(err.message.startsWith(`${file}: not a PEM ECDSA P-256 private key`), err.message));
});

test('the Node registers with its key; a Node held by another key is reported with the replace command', async () => {
  const me = await loadNodeIdentity(join(dir, 'agent'));
  const node = withNodeKey({ metadata: { name: 'pi-4', annotations: { keep: 'me' } } }, me);
  assert.equal(node.metadata.annotations, { keep: 'me', [ANNOTATION_NODE_KEY]: me.fingerprint });
  checkRegisteredNode(node, me);
  checkRegisteredNode({ metadata: { name: 'pi-4' } }, me);
  const other = await loadNodeIdentity(join(dir, 'reimaged'));
  assert.throws(() => checkRegisteredNode(node, other), /flotilla node replace pi-4/);
});

test('admission: the stored key wins; another key or none is a 409 that says what to run', () => {
  const stored = { metadata: { name: 'pi-4', annotations: { [ANNOTATION_NODE_KEY]: 'ed25519:old' } } };
  admitNodeKey(undefined, stored);
  admitNodeKey({ metadata: { name: 'pi-4' } }, stored);
  admitNodeKey(stored, { metadata: { name: 'pi-4', annotations: { [ANNOTATION_NODE_KEY]: 'ed25519:old', x: 'y' } } });
  const refused = (incoming: unknown): StoreError => {
    try {
      admitNodeKey(stored, incoming);
    } catch (err) {
      assert.instance(err, StoreError);
      return err as StoreError;
    }
    throw new Error('admitted');
  };
  const replaced = refused({ metadata: { name: 'pi-4', annotations: { [ANNOTATION_NODE_KEY]: 'ed25519:new' } } });
  assert.is(replaced.failure.code, 409);
  assert.match(replaced.failure.message, /run "flotilla node replace pi-4"/);
  assert.match(refused({ metadata: { name: 'pi-4' } }).failure.message, /cannot be removed/);
});

function io(): Io & { text: () => string } {
  let out = '';
  return { out: (t) => { out += t; }, err: (t) => { out += t; }, env: {}, readStdin: () => '', isTty: false, text: () => out };
}

test('agent install --root renders the unit and a 0600 configuration, and refuses to overwrite without --force', async () => {
  const root = join(dir, 'root');
  const argv = ['install', '--root', root, '--token', 'flt1.abcdefghij.0123456789abcdef0123456789abcdef', '--server', 'http://10.0.0.2:7400', '--server', 'http://10.0.0.3:7400', '--name', 'pi-4'];
  const out = io();
  assert.is(await agentInstallCommand.run(parseArgs(argv, agentInstallCommand.flags), out, new AbortController().signal), 0);
  const unit = readFileSync(join(root, UNIT_PATH), 'utf8');
  for (const line of ['After=network-online.target docker.service', 'Wants=network-online.target', 'Restart=on-failure', 'RestartSec=5', `EnvironmentFile=${ENV_PATH}`, 'ExecStart=/usr/local/bin/flotilla agent', 'WantedBy=multi-user.target']) {
    assert.ok(unit.split('\n').includes(line), `unit lacks ${line}:\n${unit}`);
  }
  const envFile = join(root, ENV_PATH);
  assert.is(statSync(envFile).mode & 0o777, 0o600);
  const env = readFileSync(envFile, 'utf8');
  assert.match(env, /^FLOTILLA_TOKEN="flt1\.abcdefghij\.0123456789abcdef0123456789abcdef"$/m);
  assert.match(env, /^FLOTILLA_SERVER="http:\/\/10\.0\.0\.2:7400,http:\/\/10\.0\.0\.3:7400"$/m);
  assert.match(env, /^FLOTILLA_NODE_NAME="pi-4"$/m);
  assert.not.match(out.text(), /systemctl/, 'rendering into a folder does not tell the user to start anything');
  try {
    await agentInstallCommand.run(parseArgs(argv, agentInstallCommand.flags), io(), new AbortController().signal);
    assert.unreachable('overwrote without --force');
  } catch (err) {
    assert.match((err as Error).message, /exists; pass --force/);
  }
  assert.is(await agentInstallCommand.run(parseArgs([...argv, '--force'], agentInstallCommand.flags), io(), new AbortController().signal), 0);
});

test('agent install refuses bad input naming the flag', async () => {
  const run = (argv: string[]) => agentInstallCommand.run(parseArgs(['install', '--root', join(dir, 'bad'), ...argv], agentInstallCommand.flags), io(), new AbortController().signal);
  for (const [argv, message] of [
    [[], /--token is required/],
    [['--token', 't', '--server', 'ftp://x'], /--server: "ftp:\/\/x" must use http or https/],
    [['--token', 't', '--data', 'relative'], /--data: "relative" must be an absolute path/],
    [['--token', 't', '--restart-sec', '0'], /--restart-sec/],
    [['--token', 'a"b'], /must not contain quotes/],
  ] as const) {
    try {
      await run([...argv]);
      assert.unreachable(`accepted ${argv.join(' ')}`);
    } catch (err) {
      assert.match((err as Error).message, message);
    }
  }
  assert.not.ok(existsSync(join(dir, 'bad', ENV_PATH)), 'nothing written for refused input');
});

test.run();
