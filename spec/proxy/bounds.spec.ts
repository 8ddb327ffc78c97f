import { expect } from 'chai';
import { ManualClock, WtdProxy, type ProxyOptions } from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient, manualProxy } from '../fixtures/proxy.js';

/** Two grant key ids Tess hands out (the proxy only ever sees them in JWS headers). */
const G1 = 'g1'.padEnd(43, 'a');
const G2 = 'g2'.padEnd(43, 'b');

describe('WtdProxy relay bounds: what a registration can make the proxy hold', () => {
  let proxy: WtdProxy;
  let clock: ManualClock;
  /** Two senders and a destination, Tess. */
  let ann: RawClient;
  let ben: RawClient;
  let tess: RawClient;

  async function start(options: Partial<ProxyOptions> = {}): Promise<void> {
    ({ proxy, clock } = await manualProxy({ pollHoldMs: 100, ...options }));
    ann = await RawClient.register(proxy, 'ann@example.org', clock);
    ben = await RawClient.register(proxy, 'ben@example.org', clock);
    tess = await RawClient.register(proxy, 'tess@example.org', clock);
  }
  afterEach(() => proxy?.close());

  /** What each message of one poll came to: 'ok' or its code. */
  async function send(from: RawClient, messages: unknown[]): Promise<string[]> {
    const res = await from.poll({ messages });
    expect(res.status, res.text).to.equal(200);
    return res.json.results.map((r) => r.error?.code ?? 'ok');
  }

  /** A request to Tess signed under `kid`, with a path of `pad` characters to make it weigh. */
  const toTess = (id: string, kid: string, pad = 0) =>
    RawClient.request(id, tess.id, kid, { path: `/pid/1${'x'.repeat(pad)}` });

  it('a destination queues only requests under a key id its own ping accepts: ERR_PROXY_NOT_ACCEPTED (403)', async () => {
    await start();
    await tess.accept(G1, ann.kid, ben.kid);
    expect(
      await send(ann, [
        toTess('1', G1),
        toTess('2', G2),
        { id: '3', kind: 'request', to: tess.id, path: '/pid/1', jws: 'a.b.c' },
        toTess('4', ann.kid),
        // Ben's key is accepted, but a node key signs only its own node's messages.
        toTess('5', ben.kid),
      ]),
    ).to.deep.equal(['ok', 'ERR_PROXY_NOT_ACCEPTED', 'ERR_PROXY_NOT_ACCEPTED', 'ok', 'ERR_PROXY_NOT_ACCEPTED']);
    const refused = (await ann.poll({ messages: [toTess('6', G2)] })).json.results[0];
    expect([refused.error.code, refused.error.status]).to.deep.equal(['ERR_PROXY_NOT_ACCEPTED', 403]);
    // A repeat of what was taken is still dropped quietly, once Tess stops accepting G1; anything new is refused.
    await tess.accept();
    expect(await send(ann, [toTess('1', G1), toTess('7', G1)])).to.deep.equal(['ok', 'ERR_PROXY_NOT_ACCEPTED']);
    expect(proxy.status().nodes.find((n) => n.id === tess.id)!.queued).to.equal(2);
    expect(proxy.status().refused).to.equal(5);
  });

  it('a response is taken only as the one answer to a request its destination sent: ERR_PROXY_NOT_ACCEPTED', async () => {
    await start();
    await tess.accept(G1);
    expect(await send(ann, [toTess('r1', G1)])).to.deep.equal(['ok']);
    const answer = (id: string, to: string, re: string) => ({
      id,
      kind: 'response',
      to,
      re,
      status: 200,
      contentType: 'application/json',
      text: '{}',
    });
    expect(
      await send(tess, [
        answer('a1', ann.id, 'r1'),
        answer('a1', ann.id, 'r1'), // a repeat of the same answer: dropped quietly
        answer('a2', ann.id, 'r1'), // a second answer to it
        answer('a3', ann.id, 'nothing'), // an answer to no request
        answer('a4', ben.id, 'r1'), // to a node that asked nothing
      ]),
    ).to.deep.equal(['ok', 'ok', 'ERR_PROXY_NOT_ACCEPTED', 'ERR_PROXY_NOT_ACCEPTED', 'ERR_PROXY_NOT_ACCEPTED']);
    expect(await send(ben, [answer('a5', ann.id, 'r1')])).to.deep.equal(['ERR_PROXY_NOT_ACCEPTED']);
    expect((await ann.poll()).json.messages.map((m) => [m.id, m.re, m.from])).to.deep.equal([['a1', 'r1', tess.id]]);
  });

  it('each key id has its share of a queue (senderShare): ERR_PROXY_SENDER_LIMIT (429), and the others still queue', async () => {
    await start({ maxQueue: 10, senderShare: 0.3 });
    await tess.accept(G1, G2);
    expect(await send(ann, [toTess('1', G1), toTess('2', G1), toTess('3', G1), toTess('4', G1)])).to.deep.equal([
      'ok',
      'ok',
      'ok',
      'ERR_PROXY_SENDER_LIMIT',
    ]);
    const refused = (await ann.poll({ messages: [toTess('5', G1)] })).json.results[0];
    expect([refused.error.code, refused.error.status]).to.deep.equal(['ERR_PROXY_SENDER_LIMIT', 429]);
    // The share is per key, not per registration: Ben sending under G1 gets no more room.
    expect(await send(ben, [toTess('b1', G1), toTess('b2', G2)])).to.deep.equal(['ERR_PROXY_SENDER_LIMIT', 'ok']);
    // Once Tess collects, G1 has its share again.
    await tess.poll({ ack: ['1', '2', '3'] });
    expect(await send(ann, [toTess('6', G1)])).to.deep.equal(['ok']);
  });

  it('the share bounds bytes too: a share of maxQueueBytes per key id', async () => {
    await start({ maxQueueBytes: 20_000, senderShare: 0.3 });
    await tess.accept(G1, G2);
    // About 2.6 KB each: two fit in 6,000 bytes, the third does not.
    expect(
      await send(ann, [toTess('1', G1, 2400), toTess('2', G1, 2400), toTess('3', G1, 2400), toTess('4', G2, 2400)]),
    ).to.deep.equal(['ok', 'ok', 'ERR_PROXY_SENDER_LIMIT', 'ok']);
  });

  it('a node’s bytes in flight are bounded (maxSenderBytes): ERR_PROXY_SENDER_LIMIT, until they are collected or expire', async () => {
    await start({ maxSenderBytes: 10_000, messageTtlMs: 2000 });
    await tess.accept(G1, G2);
    // About 2.6 KB each: three fit in 10,000 bytes, the fourth does not, under whatever key.
    expect(
      await send(ann, [toTess('1', G1, 2400), toTess('2', G2, 2400), toTess('3', G1, 2400), toTess('4', G2, 2400)]),
    ).to.deep.equal(['ok', 'ok', 'ok', 'ERR_PROXY_SENDER_LIMIT']);
    // Another sender is not held back by Ann.
    expect(await send(ben, [toTess('b1', G2, 2400)])).to.deep.equal(['ok']);
    // Collected: what Ann's messages still cost is their ids, kept until they expire.
    await tess.poll({ ack: ['1', '2', '3'] });
    expect(await send(ann, [toTess('5', G1, 2400), toTess('6', G2, 2400), toTess('7', G2, 2400)])).to.deep.equal([
      'ok',
      'ok',
      'ok',
    ]);
    expect(await send(ann, [toTess('8', G1, 2400)])).to.deep.equal(['ERR_PROXY_SENDER_LIMIT']);
    clock.advance(3000); // everything expires, at the sweep (what is left is the proxy's word to the senders)
    expect(proxy.status().queuedBytes).to.be.below(3000);
    expect(await send(ann, [toTess('9', G1, 2400)])).to.deep.equal(['ok']);
  });

  it('answers a stranger makes a node give, and never collects, are not charged to the node’s bytes in flight', async () => {
    await start({ maxSenderBytes: 10_000 });
    await tess.accept(G1);
    await ben.accept(tess.kid);
    // Ann asks Tess ten times and never polls again: Tess answers each, about 2.6 KB.
    expect(
      await send(
        ann,
        Array.from({ length: 10 }, (_, i) => toTess(`q${i}`, G1)),
      ),
    ).to.deep.equal(Array(10).fill('ok'));
    const answers = Array.from({ length: 10 }, (_, i) => ({
      id: `a${i}`,
      kind: 'response',
      to: ann.id,
      re: `q${i}`,
      status: 200,
      contentType: 'application/json',
      text: 'x'.repeat(2400),
    }));
    expect(await send(tess, answers)).to.deep.equal(Array(10).fill('ok'));
    // 26 KB of answers wait for Ann: Tess may still send her own requests.
    expect(
      await send(tess, [RawClient.request('t1', ben.id, tess.kid, { path: `/pid/1${'x'.repeat(2400)}` })]),
    ).to.deep.equal(['ok']);
  });

  it('a node’s queue has a ceiling of bytes (maxQueueBytes): ERR_PROXY_QUEUE_FULL (503)', async () => {
    await start({ maxQueueBytes: 10_000, senderShare: 1 });
    await tess.accept(G1, G2);
    expect(
      await send(ann, [toTess('1', G1, 2400), toTess('2', G2, 2400), toTess('3', G1, 2400), toTess('4', G2, 2400)]),
    ).to.deep.equal(['ok', 'ok', 'ok', 'ERR_PROXY_QUEUE_FULL']);
    const refused = (await ben.poll({ messages: [toTess('b1', G1, 2400)] })).json.results[0];
    expect([refused.error.code, refused.error.status]).to.deep.equal(['ERR_PROXY_QUEUE_FULL', 503]);
    expect(proxy.status().nodes.find((n) => n.id === tess.id)!.queuedBytes).to.be.within(7500, 10_000);
  });

  it('the proxy has a ceiling of queued bytes in all (maxQueuedBytes): ERR_PROXY_FULL (503)', async () => {
    await start({ maxQueuedBytes: 10_000 });
    await tess.accept(G1, G2);
    await ann.accept(G1);
    expect(await send(ben, [toTess('1', G1, 2400), toTess('2', G2, 2400)])).to.deep.equal(['ok', 'ok']);
    const toAnn = (id: string) => RawClient.request(id, ann.id, G1, { path: `/pid/1${'x'.repeat(2400)}` });
    expect(await send(tess, [toAnn('3'), toAnn('4')])).to.deep.equal(['ok', 'ERR_PROXY_FULL']);
    const refused = (await tess.poll({ messages: [toAnn('5')] })).json.results[0];
    expect([refused.error.code, refused.error.status]).to.deep.equal(['ERR_PROXY_FULL', 503]);
    expect(proxy.status().queuedBytes).to.be.within(7500, 10_000);
  });

  it('the proxy’s own word that a request expired stays within maxQueuedBytes too', async () => {
    await start({ maxQueuedBytes: 4000, messageTtlMs: 1000 });
    await tess.accept(G1);
    const codes = await send(
      ann,
      Array.from({ length: 20 }, (_, i) => toTess(`r${i}`, G1)),
    );
    const taken = codes.filter((c) => c === 'ok').length;
    expect(codes.slice(taken)).to.include('ERR_PROXY_FULL');
    clock.advance(1000); // all expire; each answer is longer than its request, so not all fit
    expect(proxy.status().queuedBytes).to.be.at.most(4000);
    const told = (await ann.poll()).json.messages;
    expect(told.length).to.be.within(1, taken - 1);
  });
});

describe('WtdProxy delivery is fair between senders', () => {
  it('a node’s poll takes one message of each key id in turn, each key’s in the order sent', async () => {
    const clock = new ManualClock(Date.now());
    const proxy = await WtdProxy.start({
      dataDir: ':memory:',
      port: 0,
      logger: new MemoryLogger(),
      wallClock: clock,
      pollHoldMs: 100,
    });
    try {
      const ann = await RawClient.register(proxy, 'ann@example.org', clock);
      const ben = await RawClient.register(proxy, 'ben@example.org', clock);
      const tess = await RawClient.register(proxy, 'tess@example.org', clock, 100);
      await tess.accept(G1, G2);
      const flood = Array.from({ length: 50 }, (_, i) => RawClient.request(`a${i}`, tess.id, G1, { path: '/pid/1' }));
      expect((await ann.poll({ messages: flood })).status).to.equal(200);
      const honest = [
        RawClient.request('b0', tess.id, G2, { path: '/pid/1' }),
        RawClient.request('b1', tess.id, G2, { path: '/pid/1' }),
      ];
      expect((await ben.poll({ messages: honest })).status).to.equal(200);
      const got = (await tess.poll()).json.messages.map((m: { id: string }) => m.id);
      // Ben's two come second and fourth, not behind Ann's fifty.
      expect(got.slice(0, 5)).to.deep.equal(['a0', 'b0', 'a1', 'b1', 'a2']);
      expect(got.filter((id: string) => id.startsWith('a'))).to.deep.equal(flood.map((m) => m.id));
    } finally {
      await proxy.close();
    }
  });
});
