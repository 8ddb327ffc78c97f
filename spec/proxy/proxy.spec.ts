import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ManualClock, ProxyRefusal, WtdNode, WtdProxy, systemWallClock } from '../../lib/index.js';
import { newKeyPair } from '../../lib/security/keys.js';
import { newClaims } from '../../lib/wire/claims.js';
import { sign } from '../../lib/wire/envelope.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { closeAll, RawClient } from '../fixtures/proxy.js';
import { Probe, probeRuns, put } from '../fixtures/remote.js';

describe('WtdProxy: durable queues, delivery at most once', () => {
  let dir: string;
  const logger = new MemoryLogger();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    probeRuns.count = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function node(name: string, dataDir = ':memory:', options: { encryption?: boolean } = {}): Promise<WtdNode> {
    const n = await WtdNode.start({ name, dataDir, logger, ...options });
    if (name === 'alice') {
      n.load(Probe);
      Probe.node = n;
    }
    return n;
  }

  it('a proxy restart with a call queued loses nothing and runs nothing twice', async () => {
    let proxy = await WtdProxy.start({ dataDir: join(dir, 'proxy'), port: 0, logger });
    const port = proxy.port;
    const alice = await node('alice');
    const bob = await node('bob');
    try {
      expect(statSync(join(dir, 'proxy', 'proxy.db')).mode & 0o777).to.equal(0o600);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      await alice.leaveProxy();
      const remote = await bob.connect(grant);
      const call = remote.call('Probe', 'touch', ['queued'], { timeout: 15_000 });
      await proxy.until((s) => s.nodes.find((n) => n.id === alice.id)!.queued === 1);
      await proxy.close();
      proxy = await WtdProxy.start({ dataDir: join(dir, 'proxy'), port, logger });
      expect(proxy.status().nodes.find((n) => n.id === alice.id)!.queued).to.equal(1);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      expect(await call).to.equal('queued');
      expect(probeRuns.count).to.equal(1);
      // Bob's node kept polling through the outage and is still served.
      expect(await remote.call('Probe', 'touch', ['after'])).to.equal('after');
      expect(probeRuns.count).to.equal(2);
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('a node restart: calls queued while it was down run once it is back', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    let alice = await node('alice', join(dir, 'alice'));
    const bob = await node('bob');
    try {
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      const remote = await bob.connect(grant);
      expect(await remote.call('Probe', 'touch', [1])).to.equal(1);
      await alice.close();
      const call = remote.call('Probe', 'touch', [2], { timeout: 10_000 });
      alice = await node('alice', join(dir, 'alice'));
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      expect(await call).to.equal(2);
      expect(probeRuns.count).to.equal(2);
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('a proxy that lost everything (a new one at the same address): nodes register again by themselves', async () => {
    let proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    const port = proxy.port;
    const alice = await node('alice');
    const bob = await node('bob');
    try {
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org', pingIntervalMs: 100 });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 100 });
      const remote = await bob.connect(await alice.grant({ missions: ['probe'], rate: '100/s' }));
      expect(await remote.call('Probe', 'touch', ['before'])).to.equal('before');
      const oldId = proxy.id;
      await proxy.close();
      proxy = await WtdProxy.start({ dataDir: ':memory:', port, logger });
      expect(proxy.id).to.not.equal(oldId);
      await proxy.until((s) => s.nodes.filter((n) => n.online).length === 2);
      expect(await remote.call('Probe', 'touch', ['after'])).to.equal('after');
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('redelivers what was not acknowledged, drops repeats by id, and forgets what was', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, pollHoldMs: 100 });
    try {
      const a = await RawClient.register(proxy, 'a@example.org');
      const b = await RawClient.register(proxy, 'b@example.org');
      await b.accept(a.kid);
      const message = RawClient.request('m1', b.id, a.kid);
      const sent = await a.poll({ messages: [message, message] });
      expect(sent.json.results).to.deep.equal([{ id: 'm1' }, { id: 'm1' }]);
      const first = await b.poll();
      expect(first.json.messages.map((m) => [m.id, m.from, m.jws])).to.deep.equal([['m1', a.id, message.jws]]);
      // The answer to that poll was "lost": the next poll, acknowledging nothing, brings it again.
      const again = await b.poll();
      expect(again.json.messages.map((m) => m.id)).to.deep.equal(['m1']);
      const acked = await b.poll({ ack: ['m1'] });
      expect(acked.json.messages).to.deep.equal([]);
      // A late repeat of the same message is not queued again.
      await a.poll({ messages: [message] });
      expect((await b.poll()).json.messages).to.deep.equal([]);
    } finally {
      await proxy.close();
    }
  });

  it('a node runs a relayed call at most once, even when the same request comes twice (both get its answer)', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, pollHoldMs: 200 });
    const alice = await node('alice', ':memory:', { encryption: false }); // a hand-made signed call
    try {
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      const raw = await RawClient.register(proxy);
      // A call signed with the grant's key, relayed twice under two relay ids (as a confused sender might).
      const path = '/apply/Probe/touch';
      const { importPrivate } = await import('../../lib/security/keys.js');
      const grantKeys = await importPrivate(grant.privateJwk);
      const claims = newClaims<'call'>(systemWallClock, {
        aud: alice.id,
        iss: raw.id,
        method: 'PUT',
        path,
        body: { json: [['once']] },
      });
      const jws = await sign('call', claims, grantKeys.privateKey, grant.kid);
      await raw.poll({
        messages: [
          { id: 'r1', kind: 'request', to: alice.id, path, jws },
          { id: 'r2', kind: 'request', to: alice.id, path, jws },
        ],
      });
      // The first answer: the poll is held until it comes (both copies reached Alice in one batch).
      const answers: any[] = (await raw.poll()).json.messages;
      // Alice has handled both copies, and the proxy has taken every answer she gave.
      await alice.onIdle();
      answers.push(...(await raw.poll({ ack: answers.map((m) => m.id) })).json.messages);
      expect(probeRuns.count).to.equal(1);
      // The second copy is answered with the first one's answer, not run again.
      expect(answers.map((m) => [m.re, m.status]).sort()).to.deep.equal([
        ['r1', 200],
        ['r2', 200],
      ]);
      expect(answers[0].text).to.equal(answers[1].text);
    } finally {
      await closeAll(alice, proxy);
    }
  });
});

describe('WtdProxy: refusals', () => {
  let proxy: WtdProxy;
  let raw: RawClient;
  let clock: ManualClock;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    proxy = await WtdProxy.start({
      wallClock: clock,
      dataDir: ':memory:',
      port: 0,
      logger: new MemoryLogger(),
      pollHoldMs: 100,
      maxQueue: 2,
      senderShare: 1,
      maxMessageBytes: 2048,
      messageTtlMs: 300,
      maxPolls: 1,
    });
    raw = await RawClient.register(proxy, 'raw@example.org', clock);
  });
  afterEach(() => proxy.close());

  // The envelope's hostile requests (forged, flipped, replayed, stale, misaddressed, mistyped) are
  // refused by the pipeline the node shares: spec/security/authenticate.spec.ts runs them against both.

  it('another node cannot poll Alice’s queue, nor ping or send as her', async () => {
    const alice = await RawClient.register(proxy, 'alice@example.org', clock);
    await alice.accept(raw.kid);
    await raw.poll({ messages: [RawClient.request('for-alice', alice.id, raw.kid)] });
    for (const op of ['poll', 'ping']) {
      const res = await raw.put(`/nodes/${alice.id}/${op}`, {});
      expect([res.status, res.code]).to.deep.equal([403, 'ERR_PROXY_DENIED']);
    }
    expect((await alice.poll()).json.messages.map((m) => m.id)).to.deep.equal(['for-alice']);
  });

  it('registration proves the key and needs an e-mail', async () => {
    const keys = await newKeyPair();
    const other = await newKeyPair();
    const claims = (body: unknown) =>
      newClaims<'proxy'>(clock, { aud: proxy.id, iss: 'x', method: 'PUT', path: '/register', body });
    const noEmail = await sign('proxy', claims({ publicJwk: keys.publicJwk }), keys.privateKey, keys.thumbprint);
    const r1 = await put(`${proxy.url}/register`, noEmail);
    expect([r1.status, r1.code]).to.deep.equal([400, 'ERR_PROXY_BAD_REQUEST']);
    // Registering someone else's public key: the signature does not match it.
    const theirs = await sign(
      'proxy',
      claims({ email: 'x@example.org', publicJwk: keys.publicJwk }),
      other.privateKey,
      keys.thumbprint,
    );
    const r2 = await put(`${proxy.url}/register`, theirs);
    expect([r2.status, r2.code]).to.deep.equal([401, 'ERR_BAD_SIGNATURE']);
    const mismatch = await sign(
      'proxy',
      claims({ email: 'x@example.org', publicJwk: keys.publicJwk }),
      other.privateKey,
      other.thumbprint,
    );
    expect((await put(`${proxy.url}/register`, mismatch)).code).to.equal('ERR_PROXY_DENIED');
    expect(proxy.status().nodes.map((n) => n.id)).to.deep.equal([raw.id]);
  });

  it('bounds: a full queue, an oversized message, an unknown node, too many waiting polls', async () => {
    const target = await RawClient.register(proxy, 't@example.org', clock);
    await target.accept(raw.kid);
    const msg = (id: string, extra: Record<string, unknown> = {}) => RawClient.request(id, target.id, raw.kid, extra);
    const res = await raw.poll({
      messages: [msg('1'), msg('2'), msg('3'), msg('4', { path: 'x'.repeat(4096) }), msg('5', { to: 'nobody' })],
    });
    expect(res.json.results.map((r) => r.error?.code ?? 'ok')).to.deep.equal([
      'ok',
      'ok',
      'ERR_PROXY_QUEUE_FULL',
      'ERR_PROXY_TOO_LARGE',
      'ERR_PROXY_NOT_REGISTERED',
    ]);
    expect(res.json.results[2].error.status).to.equal(503);
    // maxPolls is 1: while one poll is held, another with nothing to carry is refused.
    const held = target.put(`/nodes/${target.id}/poll`, { ack: ['1', '2'] });
    await proxy.until((s) => s.waitingPolls === 1);
    const busy = await raw.put(`/nodes/${raw.id}/poll`, {});
    expect([busy.status, busy.code]).to.deep.equal([503, 'ERR_PROXY_BUSY']);
    clock.advance(100); // the held poll's time is up
    await held;
  });

  it('a message not collected within its TTL is dropped and its sender told: ERR_PROXY_EXPIRED', async () => {
    const target = await RawClient.register(proxy, 't@example.org', clock);
    await target.accept(raw.kid);
    await raw.poll({ messages: [RawClient.request('late', target.id, raw.kid)] });
    clock.advance(299);
    expect(proxy.status().nodes.find((n) => n.id === target.id)!.queued).to.equal(1);
    clock.advance(701); // past its TTL (300 ms), at the sweep (every second)
    expect(proxy.status().nodes.find((n) => n.id === target.id)!.queued).to.equal(0);
    const answers = (await raw.poll()).json.messages;
    expect(answers.map((m) => [m.re, m.status, JSON.parse(m.text).error.code])).to.deep.equal([
      ['late', 504, 'ERR_PROXY_EXPIRED'],
    ]);
    expect((await target.poll()).json.messages).to.deep.equal([]);
  });

  it('a caller whose call expired in an offline node’s queue gets expired, and the call never runs', async () => {
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger: new MemoryLogger() });
    probeRuns.count = 0;
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      await alice.leaveProxy();
      const call = rejection((await bob.connect(grant)).call('Probe', 'touch', [1]));
      await proxy.until((s) => s.nodes.find((n) => n.id === alice.id)!.queued === 1);
      clock.advance(1000); // past the TTL, at the sweep
      const err = await call;
      expect(err).to.be.instanceOf(ProxyRefusal);
      expect([err.code, err.status]).to.deep.equal(['ERR_PROXY_EXPIRED', 504]);
      // Dropped from her queue: it can never be delivered, whenever she comes back.
      expect(proxy.status().nodes.find((n) => n.id === alice.id)!.queued).to.equal(0);
      expect(probeRuns.count).to.equal(0);
    } finally {
      await closeAll(bob, alice);
    }
  });
});
