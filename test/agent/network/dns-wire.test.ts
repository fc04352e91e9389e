// The DNS message format of the server's hot path (node-agent/network/dns-wire.ts) against dns-packet, a
// general-purpose codec: queries decoded by hand, replies assembled from the query's bytes and bodies encoded
// once, name compression, EDNS0, truncation, and what malformed queries give.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import packet, { type Answer } from 'dns-packet';
import { assemble, badVersionReply, decodeQuery, encodeBody, errorReply, fitReply, udpLimit, FLAG, RCODE, TYPE } from '../../../node-agent/network/dns-wire.js';

const opt = (udpPayloadSize: number, ednsVersion = 0) => ({ type: 'OPT' as const, name: '.', udpPayloadSize, extendedRcode: 0, ednsVersion, flags: 0, flag_do: false, options: [] });
const query = (name: string, type: 'A' | 'SRV' | 'PTR' | 'AAAA' | 'TXT' | 'SOA' = 'A', edns?: number, id = 7): Buffer => packet.encode({
  id, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }], ...(edns ? { additionals: [opt(edns)] } : {}),
});
const rr = (name: string, type: 'A' | 'AAAA' | 'PTR' | 'CNAME' | 'TXT', data: string): Answer => ({ name, type, ttl: 5, class: 'IN', data } as Answer);

test('a query: the name lower case and dotted, its type, the question bytes, EDNS0 size and version', () => {
  const msg = query('Web.SHOP.svc.Cluster.Local', 'SRV', 1232, 4242);
  const q = decodeQuery(msg)!;
  assert.is(q.id, 4242);
  assert.is(q.name, 'web.shop.svc.cluster.local');
  assert.is(q.type, TYPE.SRV);
  assert.is(q.questionEnd, 12 + 'Web.SHOP.svc.Cluster.Local'.length + 2 + 4);
  assert.equal(q.edns, { udpSize: 1232, version: 0 });
  assert.is(q.error, undefined);
  assert.is(udpLimit(q), 1232);
  assert.is(udpLimit(decodeQuery(query('x.test'))!), 512, 'no EDNS0: 512');
  assert.is(udpLimit(decodeQuery(query('x.test', 'A', 100))!), 512, 'an EDNS0 size under 512 counts as 512');
  assert.is(udpLimit(decodeQuery(query('x.test', 'A', 65000))!), 4096, 'at most 4096');
  assert.is(decodeQuery(query('.'))!.name, '', 'the root');
  // Only A-Z fold: a byte such as 0xC9 (É in latin1) is kept as it is.
  const odd = Buffer.from(query('ab.test'));
  odd[13] = 0xc9;
  assert.is(decodeQuery(odd)!.name, '\u00c9b.test');
});

test('a label holding a dot byte is told apart (its dotted form names another name)', () => {
  const header = query('x.test').subarray(0, 12);
  const msg = Buffer.concat([header, Buffer.from([8]), Buffer.from('web.shop'), Buffer.from('\x03svc\x07cluster\x05local\x00\x00\x01\x00\x01', 'latin1')]);
  const q = decodeQuery(msg)!;
  assert.is(q.name, 'web.shop.svc.cluster.local');
  assert.ok(q.dotInLabel);
  assert.not.ok(decodeQuery(query('web.shop.svc.cluster.local'))!.dotInLabel);
});

test('malformed queries: FORMERR with no question echoed; another opcode NOTIMP; responses and short messages get nothing', () => {
  const good = query('web.shop.svc.cluster.local');
  const formerr = (msg: Buffer, why: string): void => {
    const q = decodeQuery(msg);
    assert.is(q?.error, 'FORMERR', why);
    assert.is(q?.questionEnd, 12, why);
    const reply = packet.decode(errorReply(msg, q!, 'FORMERR'));
    assert.is(reply.id, msg.readUInt16BE(0), why);
    assert.is(reply.flags! & 0xf, RCODE.FORMERR, why);
    assert.equal(reply.questions, [], why);
  };
  formerr(good.subarray(0, 20), 'name cut short');
  formerr(good.subarray(0, good.length - 2), 'class cut short');
  const two = Buffer.from(good);
  two.writeUInt16BE(2, 4);
  formerr(two, 'two questions');
  const none = Buffer.from(good.subarray(0, 12));
  none.writeUInt16BE(0, 4);
  formerr(none, 'no question');
  const pointer = Buffer.concat([good.subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])]);
  formerr(pointer, 'a compression pointer in the question');
  const longLabel = Buffer.concat([good.subarray(0, 12), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0, 0, 1, 0, 1])]);
  formerr(longLabel, 'a label of 64 bytes');
  const longName = Buffer.concat([good.subarray(0, 12), ...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 0x61)])), Buffer.from([0, 0, 1, 0, 1])]);
  formerr(longName, 'a name of more than 255 bytes');
  const twoOpts = packet.encode({ id: 3, type: 'query', questions: [{ name: 'x.test', type: 'A', class: 'IN' }], additionals: [opt(1232), opt(1232)] });
  formerr(twoOpts, 'two OPT records');
  const cutOpt = query('x.test', 'A', 1232);
  formerr(cutOpt.subarray(0, cutOpt.length - 3), 'an OPT record cut short');

  const status = Buffer.from(good);
  status.writeUInt16BE((2 << 11) | FLAG.RD, 2);
  const q = decodeQuery(status)!;
  assert.is(q.error, 'NOTIMP');
  const notimp = packet.decode(errorReply(status, q, 'NOTIMP'));
  assert.is(notimp.flags! & 0xf, RCODE.NOTIMP);
  assert.is(notimp.questions![0]!.name, 'web.shop.svc.cluster.local', 'the question is echoed');
  assert.is((notimp as { opcode?: string }).opcode, 'STATUS');

  const response = Buffer.from(good);
  response.writeUInt16BE(FLAG.QR, 2);
  assert.is(decodeQuery(response), undefined);
  assert.is(decodeQuery(good.subarray(0, 11)), undefined);
});

test('random bytes never throw: each message is dropped or decodes to a question of dns-packet, or FORMERR', () => {
  let seed = 1;
  const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const base = query('a.b.svc.cluster.local', 'A', 1232);
  for (let i = 0; i < 5000; i++) {
    const msg = Buffer.from(base.subarray(0, rand(base.length + 1)));
    for (let k = rand(4); k > 0; k--) if (msg.length) msg[rand(msg.length)] = rand(256);
    const q = decodeQuery(msg);
    if (!q || q.error) continue;
    assert.is(packet.decode(msg).questions![0]!.name.toLowerCase(), q.name, `message ${msg.toString('hex')}`);
  }
});

test('a reply: the question as asked, owners compressed to it, and one body good for every letter case of the name', () => {
  const name = '_http._tcp.web.shop.svc.cluster.local';
  const first = decodeQuery(query(name, 'SRV'))!;
  const body = encodeBody({
    answers: [{ name, type: 'SRV', ttl: 5, class: 'IN', data: { priority: 0, weight: 100, port: 80, target: 'web.shop.svc.cluster.local' } }],
    authorities: [],
    additionals: [rr('web.shop.svc.cluster.local', 'A', '10.43.0.10'), { name: 'web.shop.svc.cluster.local', type: 'AAAA', ttl: 5, class: 'IN', data: 'fd00:43::10' }],
  }, FLAG.AA, first.questionEnd, [[first.name, 12]]);
  const askedMsg = query('_HTTP._tcp.Web.Shop.svc.cluster.local', 'SRV', undefined, 99);
  const reply = assemble(askedMsg, decodeQuery(askedMsg)!, body, 512);
  // The SRV owner is a pointer to the question (offset 12); the A owner points into the question where
  // "web.shop..." starts (12 + "_http" and "_tcp" labels: 6 + 5 bytes).
  assert.is(reply.readUInt16BE(first.questionEnd), 0xc00c);
  const decoded = packet.decode(reply);
  assert.is(decoded.id, 99);
  assert.ok(decoded.flag_qr && decoded.flag_aa && decoded.flag_rd && decoded.flag_ra);
  assert.is(decoded.questions![0]!.name, '_HTTP._tcp.Web.Shop.svc.cluster.local');
  assert.equal(decoded.answers!.map((a) => [a.name, a.type, 'data' in a ? a.data : '']), [
    ['_HTTP._tcp.Web.Shop.svc.cluster.local', 'SRV', { priority: 0, weight: 100, port: 80, target: 'web.shop.svc.cluster.local' }],
  ]);
  assert.equal(decoded.additionals!.map((a) => [a.name, a.type, 'data' in a ? a.data : '']), [
    ['Web.Shop.svc.cluster.local', 'A', '10.43.0.10'],
    ['Web.Shop.svc.cluster.local', 'AAAA', 'fd00:43::10'],
  ]);
  // The SRV target is written out (RFC 2782: no compression there).
  assert.ok(reply.includes(Buffer.from('\x03web\x04shop\x03svc\x07cluster\x05local\x00', 'latin1')));
});

test('names inside CNAME, PTR and SOA data are compressed; TXT and AAAA data are as dns-packet reads them', () => {
  const name = 'alias.shop.svc.cluster.local';
  const q = decodeQuery(query(name))!;
  const body = encodeBody({
    answers: [rr(name, 'CNAME', 'web.shop.svc.cluster.local'), rr('web.shop.svc.cluster.local', 'A', '10.43.0.10'), { name, type: 'TXT', ttl: 5, class: 'IN', data: ['1.0.1'] }],
    authorities: [{ type: 'SOA', name: 'cluster.local', ttl: 5, class: 'IN', data: { mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } }],
    additionals: [],
  }, FLAG.AA, q.questionEnd, [[q.name, 12]]);
  const reply = assemble(query(name), q, body, Infinity);
  const plain = packet.encode({ id: 7, type: 'response', questions: [{ name, type: 'A', class: 'IN' }], answers: [], authorities: [] });
  // CNAME 18 bytes ("web" + a pointer to "shop..." in the question), A 16 (owner: a pointer into the CNAME's
  // data), TXT 18, SOA 54 (mname "ns.dns" and rname "hostmaster" + pointers); written out (dns-packet) they are 249.
  assert.is(reply.length - plain.length, 18 + 16 + 18 + 54);
  const d = packet.decode(reply);
  assert.equal(d.answers!.map((a) => 'data' in a ? a.data : ''), ['web.shop.svc.cluster.local', '10.43.0.10', [Buffer.from('1.0.1')]]);
  assert.equal(d.answers!.map((a) => a.name), [name, 'web.shop.svc.cluster.local', name]);
  assert.equal(d.authorities![0], { name: 'cluster.local', type: 'SOA', ttl: 5, class: 'IN', flush: false, data: { mname: 'ns.dns.cluster.local', rname: 'hostmaster.cluster.local', serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 } });
});

test('EDNS0: the OPT record echoed (payload 4096, version 0); an unknown version is BADVERS; too big a reply is cut to the question with TC', () => {
  const msg = query('big.test', 'A', 1232);
  const q = decodeQuery(msg)!;
  const answers = Array.from({ length: 100 }, (_, i) => rr('big.test', 'A', `192.0.2.${i + 1}`));
  const body = encodeBody({ answers, authorities: [], additionals: [] }, 0, q.questionEnd, [[q.name, 12]]);
  const whole = packet.decode(assemble(msg, q, body, 4096));
  assert.is(whole.answers!.length, 100);
  assert.equal(whole.additionals!.map((a) => a.type === 'OPT' ? [a.udpPayloadSize, a.ednsVersion] : []), [[4096, 0]]);
  const cut = assemble(msg, q, body, udpLimit(q));
  assert.ok(cut.length <= 1232);
  const d = packet.decode(cut);
  assert.ok(d.flag_tc);
  assert.equal(d.answers, []);
  assert.is(d.questions![0]!.name, 'big.test');
  assert.is(d.additionals!.length, 1, 'the OPT record stays');

  const v1 = packet.encode({ id: 5, type: 'query', questions: [{ name: 'x.test', type: 'A', class: 'IN' }], additionals: [opt(1232, 1)] });
  const bad = packet.decode(badVersionReply(v1, decodeQuery(v1)!));
  const o = bad.additionals![0]!;
  assert.is(o.type, 'OPT');
  assert.ok(o.type === 'OPT' && o.extendedRcode === 1 && o.ednsVersion === 0, 'BADVERS (16): 1 in the OPT upper bits');
  assert.equal(bad.answers, []);
});

test('an upstream reply too big for the client is cut to its header (TC set) and the question as asked', () => {
  const msg = query('Big.Test');
  const q = decodeQuery(msg)!;
  const upstream = packet.encode({ id: 7, type: 'response', flags: packet.RECURSION_AVAILABLE | packet.RECURSION_DESIRED, questions: [{ name: 'Big.Test', type: 'A', class: 'IN' }], answers: Array.from({ length: 50 }, (_, i) => rr('big.test', 'A', `192.0.2.${i + 1}`)) });
  assert.is(fitReply(upstream, msg, q, 4096), upstream);
  const d = packet.decode(fitReply(upstream, msg, q, 512));
  assert.ok(d.flag_tc && d.flag_ra && d.flag_rd);
  assert.is(d.questions![0]!.name, 'Big.Test');
  assert.equal(d.answers, []);
});

test.run();
