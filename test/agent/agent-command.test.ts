// `flotilla agent` flag parsing: flags over FLOTILLA_* environment over defaults, and clear errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { agentCommand, agentConfigFrom } from '../../cli/agent-command.js';
import { parseArgs, UsageError } from '../../cli/args.js';
import { nodeNameFromHostname } from '../../node-agent/node-object.js';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}, host = 'Box-1') => agentConfigFrom(parseArgs(argv, agentCommand.flags), env, host);

function usageError(argv: string[], pattern: RegExp, env: NodeJS.ProcessEnv = {}): void {
  try {
    parse(argv, env);
  } catch (err) {
    assert.instance(err, UsageError);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a UsageError for ${argv.join(' ')}`);
}

test('flags give the typed config; the node name defaults to the hostname as a DNS name', () => {
  const c = parse(['--server', 'http://10.0.0.2:7400', '--token', 't', '--listen', '127.0.0.1:0', '--reserved-cpu', '500m', '--reserved-memory', '256Mi', '--advertise-address', '10.0.0.9']);
  assert.equal({ ...c, dataDir: undefined }, {
    servers: ['http://10.0.0.2:7400'], token: 't', nodeName: 'box-1', dataDir: undefined, listenHost: '127.0.0.1', listenPort: 0,
    advertiseAddress: '10.0.0.9', reserved: { cpu: '500m', memory: '256Mi' }, podNetwork: true, serviceProxy: 'auto',
    ingress: { httpPort: 80, httpsPort: 443 },
  });
  assert.is(parse(['--server', 'http://s', '--token', 't']).listenPort, 10250);
  assert.is(parse(['--server', 'http://s', '--token', 't', '--no-pod-network']).podNetwork, false);
  assert.is(nodeNameFromHostname('My_Laptop.Local'), 'my-laptop.local');
});

test('the Ingress router: on at 80 and 443 unless --ingress off (or FLOTILLA_INGRESS=off); ports by flag; bad values refused', () => {
  const base = ['--server', 'http://s', '--token', 't'];
  assert.equal(parse([...base, '--ingress-http-port', '8080', '--ingress-https-port', '8443']).ingress, { httpPort: 8080, httpsPort: 8443 });
  assert.is(parse([...base, '--ingress', 'off']).ingress, undefined);
  assert.is(parse(base, { FLOTILLA_INGRESS: 'off' }).ingress, undefined);
  assert.equal(parse([...base, '--ingress', 'on'], { FLOTILLA_INGRESS: 'off' }).ingress, { httpPort: 80, httpsPort: 443 });
  usageError([...base, '--ingress', 'maybe'], /--ingress: "maybe" is not one of on, off/);
  usageError([...base, '--ingress-http-port', '70000'], /--ingress-http-port: "70000" is not a port/);
  usageError([...base, '--ingress-http-port', '443'], /--ingress-http-port and --ingress-https-port are both 443/);
});

test('environment fills what flags leave out; flags win', () => {
  const env = { FLOTILLA_SERVER: 'http://a:1,http://b:1', FLOTILLA_TOKEN: 'env-token', FLOTILLA_NODE_NAME: 'pi-7', FLOTILLA_DATA: '/var/lib/x' };
  const c = parse([], env);
  assert.equal([c.servers, c.token, c.nodeName, c.dataDir], [['http://a:1', 'http://b:1'], 'env-token', 'pi-7', '/var/lib/x']);
  assert.is(parse(['--token', 'flag-token', '--name', 'n2'], env).token, 'flag-token');
  assert.is(parse(['--name', 'n2'], env).nodeName, 'n2');
  assert.is(parse([], { ...env, FLOTILLA_SERVICE_PROXY: 'off' }).serviceProxy, 'off');
  assert.is(parse(['--service-proxy', 'iptables'], { ...env, FLOTILLA_SERVICE_PROXY: 'off' }).serviceProxy, 'iptables');
});

test('bad input names the flag', () => {
  usageError(['--token', 't'], /needs a full join token/);
  assert.equal(parse(['--server', 'http://a:1,http://b:2', '--token', 't']).servers, ['http://a:1', 'http://b:2']);
  usageError(['--server', 'http://s'], /--token is required/);
  usageError(['--server', 'ftp://s', '--token', 't'], /must use http or https/);
  usageError(['--server', 'http://s', '--token', 't', '--name', 'Bad_Name'], /--name: "Bad_Name"/);
  usageError(['--server', 'http://s', '--token', 't', '--listen', '10250'], /--listen must be ADDRESS:PORT/);
  usageError(['--server', 'http://s', '--token', 't', '--service-proxy', 'ipvs'], /--service-proxy: "ipvs" is not one of auto, nftables, iptables, off/);
  usageError(['--server', 'http://s', '--token', 't', '--reserved-memory', 'lots'], /--reserved-memory: "lots" is not a quantity/);
  usageError(['--server', 'http://s', '--token', 't', '--simulate', '0'], /--simulate: "0"/);
  usageError(['--server', 'http://s', '--token', 't', '--simulate-gpus', '2'], /--simulate-gpus needs --simulate/);
  assert.is(parse(['--server', 'http://s', '--token', 't', '--simulate', '100', '--simulate-gpus', '2']).simulateGpus, 2);
});

test.run();
