// `flotilla image`: what its command line means and how each mistake is named, and the table `image ls` prints.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, UsageError } from '../../cli/args.js';
import { humanSize, imageCommand, imageRows, parseImageCommand } from '../../cli/image.js';
import { main } from '../../cli/main.js';

const parse = (...argv: string[]) => parseImageCommand(parseArgs(argv, imageCommand.flags));

function refused(argv: string[], message: string | RegExp): void {
  try {
    parse(...argv);
  } catch (err) {
    assert.instance(err, UsageError);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`${argv.join(' ')} was accepted`);
}

test('load, ls and rm with their node choices', () => {
  assert.equal(parse('load', 'web:1', '--node', 'a', '--node', 'b', '--node', 'a'), { verb: 'load', source: 'web:1', nodes: ['a', 'b'] });
  assert.equal(parse('load', 'web.tar', '--all'), { verb: 'load', source: 'web.tar', nodes: undefined });
  assert.equal(parse('ls'), { verb: 'ls', nodes: undefined });
  assert.equal(parse('ls', '--node', 'pi-1'), { verb: 'ls', nodes: ['pi-1'] });
  assert.equal(parse('rm', 'web:1', '--all'), { verb: 'rm', image: 'web:1', nodes: undefined });
});

test('each mistake is a usage error naming it', () => {
  refused([], 'name a subcommand: load, ls or rm');
  refused(['push', 'x'], 'unknown image subcommand "push" (load, ls, rm)');
  refused(['load', '--all'], 'image load takes one argument: an image of the local Docker engine or an archive file (docker save)');
  refused(['load', 'a:1', 'b:1', '--all'], /takes one argument.*, got 2$/);
  refused(['rm', '--node', 'a'], 'image rm takes one argument: an image');
  refused(['load', 'web:1'], 'choose the nodes: --node NAME (repeatable) or --all');
  refused(['rm', 'web:1'], 'choose the nodes: --node NAME (repeatable) or --all');
  refused(['load', 'web:1', '--node', 'a', '--all'], 'give either --node NAME or --all, not both');
  refused(['load', 'web:1', '--node', 'Bad_Name'], '--node "Bad_Name" is not a node name');
  refused(['ls', 'extra'], 'image ls takes no arguments, got "extra"');
  assert.throws(() => parse('load', 'web:1', '--nodes', 'a'), /unknown flag --nodes/);
});

test('the CLI exits 2 with the usage on a mistake, before any server is asked', async () => {
  const err: string[] = [];
  const code = await main(['image', 'load', 'web:1'], { out: () => undefined, err: (t) => err.push(t), env: {}, readStdin: () => '', isTty: false });
  assert.is(code, 2);
  assert.match(err.join(''), /^flotilla image: choose the nodes: --node NAME \(repeatable\) or --all\nUsage: flotilla image load IMAGE\|FILE.tar/);
});

test('a missing archive file is named, and so is an image the local engine lacks', async () => {
  const err: string[] = [];
  const io = { out: () => undefined, err: (t: string) => err.push(t), env: { FLOTILLA_SERVER: 'http://127.0.0.1:1' }, readStdin: () => '', isTty: false };
  assert.is(await main(['image', 'load', '/nonexistent/web.tar', '--node', 'a'], io), 2);
  assert.match(err.join(''), 'flotilla image: /nonexistent/web.tar: no such file');
});

test('image ls rows: one per tag, docker\'s sizes and short ids, the platform with its variant', () => {
  const rows = imageRows('pi-1', [
    { id: `sha256:${'ab'.repeat(32)}`, names: ['web:1', 'web:latest', 'docker.io/library/web@sha256:00'], sizeBytes: 1_980_000, os: 'linux', architecture: 'arm', variant: 'v7' },
    { id: `sha256:${'cd'.repeat(32)}`, names: ['x@sha256:11'], sizeBytes: 999, os: 'linux', architecture: 'arm64', variant: '' },
  ]);
  assert.equal(rows, [
    ['pi-1', '<none>', 'cdcdcdcdcdcd', '999B', 'linux/arm64'],
    ['pi-1', 'web:1', 'abababababab', '1.98MB', 'linux/arm/v7'],
    ['pi-1', 'web:latest', 'abababababab', '1.98MB', 'linux/arm/v7'],
  ]);
  assert.equal([0, 1000, 105_300_000, 1_234_567_890].map(humanSize), ['0B', '1kB', '105MB', '1.23GB']);
});

test.run();
