import { expect } from 'chai';
import { WtdExport, WtdNode, WtdProxy, type Pid } from '../../lib/index.js';
import { BATCH_MAX_ITEMS } from '../../lib/transport/batch.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims } from '../../lib/wire/claims.js';
import { readSessionHeader, SESSION_TYP } from '../../lib/wire/session.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { put, signRaw, withTwoNodes } from '../fixtures/remote.js';
import { handMade } from '../fixtures/sessions.js';
import { tap } from '../fixtures/tap.js';

const codec = new WireCodec();

/** Keeps what it was cast, in the order it ran. */
class Recorder {
  static got: unknown[] = [];
  static node: WtdNode | undefined;

  /** A process of this node that takes `n` messages and then resolves `Recorder.done`. */
  @WtdExport('probe')
  static box(n: number): Pid {
    const got: unknown[] = [];
    Recorder.boxed = got;
    let pid!: Pid;
    Recorder.done = new Promise((resolve) => {
      pid = Recorder.node!.spawn(async (self) => {
        for (let i = 0; i < n; i++) got.push(await self.receive());
        resolve();
      });
    });
    return pid;
  }

  /** Sends `n` messages to `pid` (one of the caller's) in one turn. */
  @WtdExport('probe')
  static many(pid: Pid, n: number): void {
    for (let i = 0; i < n; i++) Recorder.node!.send(pid, i);
  }
  static done: Promise<void> = Promise.resolve();
  static boxed: unknown[] = [];

  @WtdExport('probe')
  static note(x: unknown): void {
    Recorder.got.push(x);
  }

  @WtdExport('other')
  static hidden(): void {
    Recorder.got.push('hidden');
  }
}

describe('Batches: casts and pid messages that leave in one turn travel in one request', () => {
  const nodes = withTwoNodes();
  beforeEach(() => {
    nodes.alice.load(Recorder);
    Recorder.node = nodes.alice;
    Recorder.got = [];
  });

  it('casts of one turn are one PUT /batch, run in the order they were cast', async () => {
    const t = await tap(nodes.alice.address!);
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      await remote.call('Probe', 'touch', [0]); // the session first
      await Promise.all(Array.from({ length: 10 }, (_, i) => remote.cast('Recorder', 'note', [i])));
      await nodes.alice.onIdle();
      expect(Recorder.got).to.deep.equal(Array.from({ length: 10 }, (_, i) => i));
      expect(t.paths).to.deep.equal(['/session', '/apply/Probe/touch', '/batch']);
    } finally {
      t.close();
    }
  });

  it(`a batch holds at most ${BATCH_MAX_ITEMS} items: more go in the next ones, in order`, async () => {
    const t = await tap(nodes.alice.address!);
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      const n = 2 * BATCH_MAX_ITEMS + 50;
      await Promise.all(Array.from({ length: n }, (_, i) => remote.cast('Recorder', 'note', [i])));
      await nodes.alice.onIdle();
      expect(Recorder.got).to.deep.equal(Array.from({ length: n }, (_, i) => i));
      expect(t.paths.filter((p) => p === '/batch')).to.have.length(3);
    } finally {
      t.close();
    }
  });

  it('each item is checked on its own: one refused (mission, rate) does not stop the others', async () => {
    const grant = await nodes.alice.grant({ missions: ['probe'], rate: { count: 1, intervalMs: 60_000, burst: 4 } });
    const remote = await nodes.bob.connect(grant);
    const results = await Promise.allSettled([
      remote.cast('Recorder', 'note', ['a']),
      remote.cast('Recorder', 'hidden'),
      remote.cast('Recorder', 'note', ['b']),
      remote.cast('Recorder', 'note', ['c']),
      remote.cast('Recorder', 'note', ['d']),
      remote.cast('Recorder', 'note', ['e']),
    ]);
    await nodes.alice.onIdle();
    const codes = results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code));
    expect(codes).to.deep.equal(['ok', 'ERR_MISSION_NOT_GRANTED', 'ok', 'ok', 'ok', 'ERR_RATE_LIMITED']);
    expect(Recorder.got).to.deep.equal(['a', 'b', 'c', 'd']);
  });

  it('messages to a pid sent in one turn are one request, and arrive in order', async () => {
    const t = await tap(nodes.alice.address!);
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      const pid = await remote.call<Pid>('Recorder', 'box', [30]);
      for (let i = 0; i < 30; i++) nodes.bob.send(pid, i);
      await Recorder.done;
      expect(Recorder.boxed).to.deep.equal(Array.from({ length: 30 }, (_, i) => i));
      expect(t.paths.filter((p) => p.startsWith('/pid'))).to.deep.equal([]);
      expect(t.paths.filter((p) => p === '/batch')).to.have.length(1);
    } finally {
      t.close();
    }
  });

  it('hostile batches: a call in one, too many items, or one outside a session are refused', async () => {
    const s = await handMade(nodes.alice.address!, nodes.alice.id, nodes.grant, nodes.bob.id, nodes.clock);
    const sealed = s.seal('/batch', { items: [{ path: '/apply/Recorder/note', body: codec.encode([1]) }] });
    const call = await s.send('/batch', sealed.text);
    expect(call.status).to.equal(200);
    // The answer is sealed in the session, as a reply.
    const opened = s.session.openReply(sealed.seq, readSessionHeader(call.text, SESSION_TYP.reply), call.text);
    const results = (opened.body as { results: { status: number; code: string }[] }).results;
    expect(results.map((r) => [r.status, r.code])).to.deep.equal([[400, 'ERR_BAD_REQUEST']]);
    const items = Array.from({ length: BATCH_MAX_ITEMS + 1 }, () => ({
      path: '/apply/Recorder/note',
      body: codec.encode([1]),
      cast: true,
    }));
    const many = await s.send('/batch', s.seal('/batch', { items }).text);
    expect([many.status, many.code]).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    const claims = newClaims<'call'>(nodes.clock, {
      aud: nodes.alice.id,
      iss: nodes.bob.id,
      method: 'PUT',
      path: '/batch',
      body: { items: items.slice(0, 1) } as never,
    });
    const signed = await signRaw(
      nodes.grant.privateJwk,
      { typ: 'wtd-call+jws', kid: nodes.grant.kid },
      claims as never,
    );
    const plain = await put(`${nodes.alice.address!}/batch`, signed);
    expect([plain.status, plain.code]).to.deep.equal([426, 'ERR_SESSION_REQUIRED']);
    await nodes.alice.onIdle();
    expect(Recorder.got).to.deep.equal([]);
  });
});

describe('Batches through the proxy', () => {
  it('casts of one turn, and a grantee’s messages pumped back, each travel as one relayed request', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: new MemoryLogger() });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger: new MemoryLogger() });
    try {
      alice.load(Recorder);
      Recorder.node = alice;
      Recorder.got = [];
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '1000/s' });
      const remote = await bob.connect(grant);
      await remote.call('Recorder', 'note', ['first']);
      const before = proxy.status().relayed;
      await Promise.all(Array.from({ length: 20 }, (_, i) => remote.cast('Recorder', 'note', [i])));
      await alice.onIdle();
      expect(Recorder.got).to.deep.equal(['first', ...Array.from({ length: 20 }, (_, i) => i)]);
      expect(proxy.status().relayed - before).to.equal(2); // one request, one answer
      // Alice's messages to a pid of Bob's, sent in one turn: pumped back through the proxy as one batch.
      const got: unknown[] = [];
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      const inbox = bob.spawn(async (self) => {
        for (let i = 0; i < 40; i++) got.push(await self.receive());
        done();
      });
      const mark = proxy.status().relayed;
      await remote.call('Recorder', 'many', [inbox, 40]);
      await all;
      expect(got).to.deep.equal(Array.from({ length: 40 }, (_, i) => i));
      // The call and its answer, and the messages: far fewer relayed than 40 (one each, before batches).
      expect(proxy.status().relayed - mark).to.be.at.most(6);
    } finally {
      await bob.close();
      await alice.close();
      await proxy.close();
    }
  });
});
