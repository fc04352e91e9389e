// The behaviour every Discovery implementation promises (see discovery/advertisement.ts), as one uvu suite
// run against each implementation by its own *.test.ts file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Advertisement, Discovery, Peer, PeerFilter } from '../../discovery/advertisement.js';
import { eventually } from '../support/eventually.js';

export interface DiscoveryFixture {
  /** The discovery that browses. */
  browser: Discovery;
  /** What a process does to be found (advertise, plus whatever serves the advertisement); resolves on abort. */
  advertise(ad: Advertisement, signal: AbortSignal): Promise<void>;
  /** Upper bound for a change (a new or a withdrawn peer) to reach the browser. */
  waitMs: number;
  close(): Promise<void>;
}

export function ad(clusterId: string, role: 'server' | 'agent', id: string, port = 6443): Advertisement {
  return { clusterId, role, id, apiUrl: `https://${id}.example:${port}`, fingerprint: `sha256:${clusterId.padEnd(16, '0')}` };
}

/** Records every list a browse reports, and waits for one that satisfies a predicate. */
export function watchPeers(browser: Discovery, filter: PeerFilter) {
  const controller = new AbortController();
  const history: Peer[][] = [];
  const done = browser.browse(filter, (peers) => { history.push(peers); }, controller.signal);
  const latest = () => history[history.length - 1] ?? [];
  return {
    history,
    latest,
    done,
    until(predicate: (peers: Peer[]) => boolean, timeoutMs: number, what: string): Promise<Peer[]> {
      return eventually(`a peer list where ${what}`, () => (predicate(latest()) ? latest() : undefined), { limitMs: timeoutMs, everyMs: 20, detail: () => `last: ${JSON.stringify(latest())}` });
    },
    async stop() { controller.abort(); await done; },
  };
}

export const ids = (peers: Peer[]) => peers.map((p) => `${p.clusterId}/${p.role}/${p.id}`);

export function discoveryContract(name: string, setUp: () => Promise<DiscoveryFixture>) {
  const test = suite<{ fixture?: DiscoveryFixture; stops: AbortController[] }>(`discovery contract: ${name}`, { stops: [] });
  test.before.each(async (ctx) => { ctx.fixture = await setUp(); ctx.stops = []; });
  test.after.each(async (ctx) => { for (const s of ctx.stops) s.abort(); await ctx.fixture?.close(); });

  const start = (ctx: { fixture?: DiscoveryFixture; stops: AbortController[] }, advertisement: Advertisement) => {
    const controller = new AbortController();
    ctx.stops.push(controller);
    const done = ctx.fixture!.advertise(advertisement, controller.signal);
    return { stop: async () => { controller.abort(); await done; }, done };
  };

  test('browse reports exactly the peers of the filtered cluster, with every advertised field', async (ctx) => {
    const f = ctx.fixture!;
    const server = ad('alpha', 'server', 's1');
    start(ctx, server);
    start(ctx, ad('alpha', 'agent', 'n1', 10250));
    start(ctx, ad('beta', 'server', 's9'));
    const w = watchPeers(f.browser, { clusterId: 'alpha' });
    const peers = await w.until((p) => p.length === 2, f.waitMs, 'both alpha peers are seen');
    assert.equal(ids(peers), ['alpha/agent/n1', 'alpha/server/s1']);
    const seen = peers.find((p) => p.role === 'server')!;
    assert.equal({ ...seen, addresses: [] }, { ...server, addresses: [] });
    assert.ok(seen.addresses.length >= 1, 'a peer carries the address it was seen at');
    // The hold is what is tested: every advertiser is heard a few more times, beta must never show up, and no
    // list may repeat.
    await new Promise((r) => setTimeout(r, Math.min(f.waitMs, 2500)));
    await w.stop();
    assert.ok(w.history.every((list) => list.every((p) => p.clusterId === 'alpha')), `beta leaked: ${JSON.stringify(w.history)}`);
    for (let i = 1; i < w.history.length; i++) assert.not.equal(w.history[i], w.history[i - 1], 'an unchanged list was reported twice');
  });

  test('a role filter narrows the list, no filter shows every cluster', async (ctx) => {
    const f = ctx.fixture!;
    start(ctx, ad('alpha', 'server', 's1'));
    start(ctx, ad('alpha', 'agent', 'n1'));
    start(ctx, ad('beta', 'server', 's9'));
    const servers = watchPeers(f.browser, { clusterId: 'alpha', role: 'server' });
    const everyone = watchPeers(f.browser, {});
    assert.equal(ids(await servers.until((p) => p.length >= 1, f.waitMs, 'the alpha server is seen')), ['alpha/server/s1']);
    await everyone.until((p) => p.length === 3, f.waitMs, 'all three peers are seen');
    assert.equal(ids(everyone.latest()), ['alpha/agent/n1', 'alpha/server/s1', 'beta/server/s9']);
    await servers.stop();
    await everyone.stop();
    assert.ok(servers.history.every((list) => list.every((p) => p.role === 'server')));
  });

  test('a withdrawn advertisement is dropped, and reappears when advertised again', async (ctx) => {
    const f = ctx.fixture!;
    start(ctx, ad('alpha', 'server', 's1'));
    const agent = start(ctx, ad('alpha', 'agent', 'n1'));
    const w = watchPeers(f.browser, { clusterId: 'alpha' });
    await w.until((p) => p.length === 2, f.waitMs, 'both peers are seen');
    await agent.stop();
    assert.equal(ids(await w.until((p) => p.length === 1, f.waitMs, 'the agent is gone')), ['alpha/server/s1']);
    start(ctx, ad('alpha', 'agent', 'n1'));
    await w.until((p) => p.length === 2, f.waitMs, 'the agent is back');
    await w.stop();
  });

  test('advertise and browse resolve when aborted', async (ctx) => {
    const f = ctx.fixture!;
    const a = start(ctx, ad('alpha', 'server', 's1'));
    const w = watchPeers(f.browser, { clusterId: 'alpha' });
    await w.until((p) => p.length === 1, f.waitMs, 'the server is seen');
    await a.stop();
    await w.stop();
    const already = new AbortController();
    already.abort();
    await f.browser.advertise(ad('alpha', 'agent', 'n2'), already.signal);
    await f.browser.browse({}, () => assert.unreachable('no report after abort'), already.signal);
  });

  test('bad input is refused with the field named', async (ctx) => {
    const f = ctx.fixture!;
    const signal = new AbortController().signal;
    const refused = async (p: Promise<void>, pattern: RegExp) => {
      try {
        await p;
      } catch (e) {
        assert.match((e as Error).message, pattern);
        return;
      }
      assert.unreachable(`expected a rejection matching ${pattern}`);
    };
    await refused(f.browser.advertise({ ...ad('alpha', 'server', 's1'), clusterId: 'Not Valid' }, signal), /clusterId/);
    await refused(f.browser.advertise({ ...ad('alpha', 'server', 's1'), role: 'boss' as 'server' }, signal), /role/);
    await refused(f.browser.advertise({ ...ad('alpha', 'server', 's1'), apiUrl: 'ftp://x' }, signal), /apiUrl/);
    await refused(f.browser.advertise({ ...ad('alpha', 'server', 's1'), fingerprint: 'secret' }, signal), /fingerprint/);
    await refused(f.browser.browse({ clusterId: 'UPPER' }, () => {}, signal), /filter\.clusterId/);
  });

  return test;
}
