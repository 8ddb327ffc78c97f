import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import {
  ManualClock,
  NodeDownError,
  ProxyRefusal,
  WireError,
  WtdError,
  WtdNode,
  WtdProxy,
  type DirectoryEntry,
  type Pid,
} from '../../lib/index.js';
import { flush, rejection } from '../fixtures/helpers.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { closeAll, cluster, listed, unlisted, type Cluster } from '../fixtures/proxy.js';
import { Probe, probeRuns } from '../fixtures/remote.js';

describe('WtdProxy: three nodes calling each other only through the proxy', () => {
  let c: Cluster;
  beforeEach(async () => {
    c = await cluster();
    probeRuns.count = 0;
  });
  afterEach(() => closeAll(c.bob, c.carol, c.alice, c.proxy));

  it('lists the online nodes with what they offer, to every node', async () => {
    await listed(c.bob, c.alice.id);
    await listed(c.bob, c.carol.id);
    const alice = c.bob.directory().find((e) => e.name === 'alice')!;
    expect(alice.id).to.equal(c.alice.id);
    expect(alice.missions).to.deep.equal(['other', 'probe']);
    // The key ids she accepts are for the proxy alone: the directory does not publish them.
    expect(alice).to.not.have.property('grants');
    expect(c.proxy.status().nodes.find((n) => n.id === c.alice.id)!.accepts).to.equal(1);
    expect(alice.address).to.equal(c.alice.address);
    const carol = c.bob.directory().find((e) => e.name === 'carol')!;
    expect([carol.address, carol.online, carol.missions]).to.deep.equal([null, true, []]);
  });

  it('Bob calls, casts and uses a behaviour on Alice through the proxy', async () => {
    const remote = await c.bob.connect(c.grant, { via: 'proxy' });
    expect(remote.via).to.equal('proxy');
    expect(await remote.call('Probe', 'touch', [{ at: new Date(0), n: 7n }])).to.deep.equal({ at: new Date(0), n: 7n });
    await remote.cast('Probe', 'touch', ['cast']);
    expect(await remote.genServer('probe', 'echo').call('hi')).to.deep.equal({ echo: 'hi', n: 1 });
    await c.alice.onIdle();
    expect(probeRuns.count).to.equal(3);
    const err = await rejection(remote.call('Probe', 'fail'));
    expect(err.code).to.equal('ERR_REMOTE_EXCEPTION');
    expect(c.proxy.status().relayed).to.be.at.least(8);
  });

  it('Carol and Bob, both without an open port, call each other with grants to their own keys', async () => {
    c.bob.load(Probe);
    c.carol.load(Probe);
    await c.bob.grant({ missions: ['probe'], rate: '100/s', to: c.carol.publicJwk });
    await c.carol.grant({ missions: ['probe'], rate: '100/s', to: c.bob.publicJwk });
    const toBob = await c.carol.connect({ nodeKey: c.bob.publicJwk });
    const toCarol = await c.bob.connect({ nodeKey: c.carol.publicJwk });
    expect([toBob.via, toCarol.via]).to.deep.equal(['proxy', 'proxy']);
    expect(await toBob.call('Probe', 'touch', ['to bob'])).to.equal('to bob');
    expect(await toCarol.call('Probe', 'touch', ['to carol'])).to.equal('to carol');
    // Trust is one-way: Alice granted nothing to Carol, so the proxy queues nothing of Carol's for her.
    const err = await rejection(
      (await c.carol.connect({ nodeKey: c.alice.publicJwk }, { via: 'proxy' })).call('Probe', 'touch', [1]),
    );
    expect([err.constructor, err.code, err.status]).to.deep.equal([ProxyRefusal, 'ERR_PROXY_NOT_ACCEPTED', 403]);
  });

  it('a pid Bob passes comes back through the proxy: Alice sends, Bob receives', async () => {
    const remote = await c.bob.connect(c.grant, { via: 'proxy' });
    const got: unknown[] = [];
    const inbox: Pid = c.bob.spawn(async (self) => {
      for (let i = 0; i < 3; i++) got.push(await self.receive());
    });
    expect(await remote.call('Probe', 'pingBack', [inbox, 3])).to.equal('sent');
    await c.alice.onIdle(); // Bob's node took every message (each is acknowledged)
    await flush();
    expect(got).to.deep.equal([{ ping: 0 }, { ping: 1 }, { ping: 2 }]);
    // Bob's ping named Alice's node key before his call left: none of her messages had to wait for it.
    expect(c.proxy.status().refused).to.equal(0);
  });

  it('many calls at once all come back to the right caller', async () => {
    const remote = await c.bob.connect(c.grant, { via: 'proxy' });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => remote.call('Probe', 'touch', [i])));
    expect(results).to.deep.equal(Array.from({ length: 200 }, (_, i) => i));
  });

  it('keeps the caller’s signature end to end: a relayed body altered on the way is refused with 401', async () => {
    // A proxy with its queues on disk, so the spec can play a dishonest proxy and edit one.
    const dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    const proxy = await WtdProxy.start({ dataDir: dir, port: 0, logger: new MemoryLogger() });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger: new MemoryLogger() });
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      await alice.leaveProxy(); // so the call waits in her queue
      const remote = await bob.connect(grant);
      const call = remote.call('Probe', 'touch', ['honest'], { timeout: 8000 });
      await proxy.until((s) => s.nodes.find((n) => n.id === alice.id)!.queued === 1);
      const db = new Database(join(dir, 'proxy.db'));
      const row = db.prepare('SELECT seq, body FROM messages WHERE acked = 0').get() as { seq: number; body: string };
      const msg = JSON.parse(row.body) as { jws: string };
      const [h, p, s] = msg.jws.split('.');
      const claims = JSON.parse(Buffer.from(p!, 'base64url').toString('utf8')) as { body: { json: unknown[] } };
      claims.body.json = ['forged'];
      msg.jws = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      db.prepare('UPDATE messages SET body = ? WHERE seq = ?').run(JSON.stringify(msg), row.seq);
      db.close();
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      const err = await rejection(call);
      expect(err).to.be.instanceOf(WireError);
      expect([err.code, err.status]).to.deep.equal(['ERR_BAD_SIGNATURE', 401]);
      expect(probeRuns.count).to.equal(0);
    } finally {
      await closeAll(bob, alice, proxy);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tells when nodes come and go; a node that stops pinging goes offline', async () => {
    const clock = new ManualClock(Date.now());
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, offlineAfterMs: 300, wallClock: clock });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
    const carol = await WtdNode.start({ name: 'carol', dataDir: ':memory:' });
    try {
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 100 });
      const ups: DirectoryEntry[] = [];
      bob.on('nodeup', (e) => ups.push(e));
      await carol.joinProxy({ url: proxy.url, email: 'carol@example.org', pingIntervalMs: 100 });
      await listed(bob, carol.id);
      expect(ups.map((e) => e.id)).to.include(carol.id);
      let gone: DirectoryEntry | undefined;
      const down = unlisted(bob, carol.id).then((e) => (gone = e));
      await carol.leaveProxy(); // stops pinging
      // Silent for longer than offlineAfterMs, at the sweep; Bob hears of it at his next ping. (A ping
      // of Carol's still on its way when she left may land after one sweep: the next one catches it.)
      for (let sweeps = 0; sweeps < 5 && gone === undefined; sweeps++) {
        clock.advance(1000);
        const at = clock.now();
        await Promise.race([down, proxy.until((s) => s.nodes.find((n) => n.id === bob.id)!.lastSeen >= at)]);
      }
      expect(proxy.status().nodes.find((n) => n.id === carol.id)!.online).to.equal(false);
      expect(gone?.online).to.equal(false);
      expect(bob.directory().map((e) => e.name)).to.deep.equal(['bob']);
    } finally {
      await closeAll(carol, bob, proxy);
    }
  });

  it('misuse gets clear errors', async () => {
    const lone = await WtdNode.start({ name: 'lone', dataDir: ':memory:' });
    try {
      // A grant file with a proxy but no address, used by a node that joined no proxy.
      const fromBob = await c.bob.grant({ missions: ['probe'], rate: '1/s' });
      const err = await rejection(lone.connect(fromBob));
      expect([err.constructor, err.code]).to.deep.equal([WtdError, 'ERR_NO_PROXY']);
      expect(() => lone.on('nodeup', () => undefined))
        .to.throw(WtdError)
        .with.property('code', 'ERR_NO_PROXY');
      const twice = await rejection(c.bob.joinProxy({ url: c.proxy.url, email: 'bob@example.org' }));
      expect(twice.code).to.equal('ERR_ALREADY_JOINED');
      expect(await rejection(lone.joinProxy({ url: 'proxy', email: 'a@b' }))).to.be.instanceOf(TypeError);
      expect(await rejection(lone.joinProxy({ url: c.proxy.url, email: 'nobody' }))).to.be.instanceOf(TypeError);
      const down = await rejection(lone.joinProxy({ url: 'http://127.0.0.1:1', email: 'a@example.org' }));
      expect([down.constructor, down.code]).to.deep.equal([NodeDownError, 'ERR_NODE_DOWN']);
      const direct = await rejection(c.bob.connect({ nodeKey: c.alice.publicJwk }, { via: 'direct' }));
      expect(direct.code).to.equal('ERR_NO_ADDRESS');
    } finally {
      await lone.close();
    }
  });
});
