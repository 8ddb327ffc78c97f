import { expect } from 'chai';
import { GenServer, MaybeRanError, systemWallClock, WtdNode, type WtdProxy } from '../../lib/index.js';
import { newKeyPair } from '../../lib/security/keys.js';
import { RELAY_STREAM_PROTOCOL } from '../../lib/wire/relay-stream.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { closeAll, cluster, fakeJws, manualProxy, RawClient, type Cluster } from '../fixtures/proxy.js';
import { cutter, RawStream, type Refused } from '../fixtures/relay-stream.js';
import { Echo, Probe, probeRuns } from '../fixtures/remote.js';

function opened(s: RawStream | Refused): RawStream {
  if (!(s instanceof RawStream)) throw new Error(`the stream was refused: ${s.status} ${s.code}`);
  return s;
}

function refused(s: RawStream | Refused): Refused {
  if (s instanceof RawStream) {
    s.close();
    throw new Error('the stream was opened');
  }
  return s;
}

describe('Relay streams: a node’s one connection to its proxy', () => {
  let c: Cluster;
  beforeEach(async () => {
    c = await cluster();
    probeRuns.count = 0;
  });
  afterEach(() => closeAll(c.bob, c.carol, c.alice, c.proxy));

  it('every node that joins opens one; calls, casts and behaviours go through it, and no poll is held', async () => {
    await c.proxy.until((s) => s.streams === 3);
    const remote = await c.bob.connect(c.grant, { via: 'proxy' });
    expect(await remote.call('Probe', 'touch', [{ n: 7n }])).to.deep.equal({ n: 7n });
    await remote.cast('Probe', 'touch', ['cast']);
    expect(await remote.genServer('probe', 'echo').call('hi')).to.deep.equal({ echo: 'hi', n: 1 });
    await c.alice.onIdle();
    expect(probeRuns.count).to.equal(3);
    const status = c.proxy.status();
    expect(status.relayed).to.be.at.least(6);
    expect([status.streams, status.waitingPolls]).to.deep.equal([3, 0]);
  });

  it('a node that joins with stream: false polls, and is called as well', async () => {
    const dave = await WtdNode.start({ name: 'dave', dataDir: ':memory:', logger: new MemoryLogger() });
    try {
      dave.load(Probe);
      await dave.joinProxy({ url: c.proxy.url, email: 'dave@example.org', stream: false });
      const grant = await dave.grant({ missions: ['probe'], rate: '100/s' });
      await c.proxy.until((s) => s.streams === 3 && s.waitingPolls === 1);
      const remote = await c.bob.connect(grant, { via: 'proxy' });
      expect(await remote.call('Probe', 'touch', ['polled'])).to.equal('polled');
      expect(c.proxy.status().streams).to.equal(3);
    } finally {
      await dave.close();
    }
  });

  it('a call whose caller’s stream is cut while it runs is answered once: the answer waits for its next poll or stream', async () => {
    const link = await cutter(c.proxy.url);
    const dave = await WtdNode.start({ name: 'dave', dataDir: ':memory:', logger: new MemoryLogger() });
    let open!: () => void;
    Probe.gate = new Promise<void>((resolve) => (open = resolve));
    try {
      await dave.joinProxy({ url: link.url, email: 'dave@example.org' });
      await c.proxy.until((s) => s.streams === 4);
      await c.alice.grant({ missions: ['probe'], rate: '100/s', to: dave.publicJwk });
      const remote = await dave.connect({ nodeKey: c.alice.publicJwk }, { via: 'proxy' });
      expect(await remote.call('Probe', 'touch', ['warm'])).to.equal('warm');
      const call = remote.call('Probe', 'slow', [], { timeout: 8000 });
      await Probe.atGate(1);
      link.cut();
      await c.proxy.until((s) => s.streams === 3);
      open();
      expect(await call).to.equal('done');
      expect(probeRuns.count).to.equal(2);
      // And a stream is opened again.
      await c.proxy.until((s) => s.streams === 4);
      expect(await remote.call('Probe', 'touch', ['again'])).to.equal('again');
    } finally {
      open();
      Probe.gate = Promise.resolve();
      await dave.close();
      await link.close();
    }
  });
});

/**
 * Dave joins `c`'s proxy through a link the spec can deafen, with a grant of
 * Alice's; returns once his stream is open on both sides (a call made after
 * the proxy took it is answered after its 101 reached him).
 */
async function daveBehindLink(c: Cluster) {
  const link = await cutter(c.proxy.url);
  const dave = await WtdNode.start({ name: 'dave', dataDir: ':memory:', logger: new MemoryLogger() });
  await dave.joinProxy({ url: link.url, email: 'dave@example.org' });
  await c.alice.grant({ missions: ['probe'], rate: '100/s', to: dave.publicJwk });
  const remote = await dave.connect({ nodeKey: c.alice.publicJwk }, { via: 'proxy' });
  await c.proxy.until((s) => s.streams === 4);
  expect(await remote.call('Probe', 'touch', ['before'])).to.equal('before');
  expect(dave.sessionStats().proxyStream).to.equal(true);
  return { link, dave, remote };
}

describe('Relay streams: a proxy that goes silent', () => {
  it('a node that hears nothing on its stream for three times the proxy’s idle time ends it, and polls', async () => {
    const c = await cluster({ pollHoldMs: 60 });
    const { link, dave, remote } = await daveBehindLink(c);
    try {
      // What the proxy writes no longer reaches Dave; what Dave writes still reaches it (it keeps the stream).
      link.deafen();
      await c.proxy.until((s) => s.streams === 3);
      expect(dave.sessionStats().proxyStream).to.equal(false);
      expect(await remote.call('Probe', 'touch', ['after'])).to.equal('after');
    } finally {
      await dave.close();
      await link.close();
      await closeAll(c.bob, c.carol, c.alice, c.proxy);
    }
  });
});

describe('Relay streams: a stream that breaks after a call went on it', () => {
  it('a call whose stream goes deaf past its deadline is ERR_MAYBE_RAN (it ran), in the time a line waits for its results', async function () {
    // An idle time (3 s: the node would give up a silent proxy after 9 s) long enough that only the wait
    // for results (2 s) ends the stream within this spec's time.
    this.timeout(6000);
    const c = await cluster({ pollHoldMs: 3000 });
    const { link, dave, remote } = await daveBehindLink(c);
    try {
      probeRuns.count = 0;
      link.deafen();
      const err = await rejection(remote.call('Probe', 'touch', ['lost'], { timeout: 500 }));
      expect([err.constructor, err.code]).to.deep.equal([MaybeRanError, 'ERR_MAYBE_RAN']);
      await c.alice.onIdle();
      expect(probeRuns.count).to.equal(1);
      expect(dave.sessionStats().proxyStream).to.equal(false);
    } finally {
      await dave.close();
      await link.close();
      await closeAll(c.bob, c.carol, c.alice, c.proxy);
    }
  });
});

describe('Relay streams: what the proxy takes, and what it refuses', () => {
  let proxy: WtdProxy;
  let raw: RawClient;
  let dest: RawClient;
  const streams: RawStream[] = [];
  async function start(options = {}) {
    ({ proxy } = await manualProxy({ pollHoldMs: 100, ...options }));
    raw = await RawClient.register(proxy, 'raw@example.org');
    dest = await RawClient.register(proxy, 'dest@example.org');
    await dest.accept(raw.kid);
  }
  async function stream(client = raw, o = {}): Promise<RawStream> {
    const s = opened(await RawStream.open(client, o));
    streams.push(s);
    return s;
  }
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await proxy?.close();
  });

  it('a line is a poll’s body: each message gets its result, in a line of results; what waits comes down', async () => {
    await start();
    const mine = await stream();
    const theirs = await stream(dest);
    await proxy.until((s) => s.streams === 2);
    mine.send({
      ack: [],
      messages: [RawClient.request('m1', dest.id, raw.kid), RawClient.request('m2', dest.id, 'another-kid')],
    });
    const results = await mine.line(0);
    expect(results.results).to.have.length(1);
    const [ok, no] = results.results[0];
    expect(ok).to.deep.equal({ id: 'm1' });
    expect([no.id, no.error.code, no.error.status]).to.deep.equal(['m2', 'ERR_PROXY_NOT_ACCEPTED', 403]);
    const delivered = await theirs.line(0);
    expect(delivered.messages.map((m: { id: string; from: string }) => [m.id, m.from])).to.deep.equal([['m1', raw.id]]);
    // A line with no message (acknowledgements, or keeping the stream) is not answered.
    theirs.send({ ack: ['m1'], messages: [] });
    mine.send({ ack: [], messages: [RawClient.request('m3', dest.id, raw.kid)] });
    expect((await mine.line(1)).results).to.deep.equal([[{ id: 'm3' }]]);
    expect((await theirs.line(1)).messages.map((m: { id: string }) => m.id)).to.deep.equal(['m3']);
    expect(theirs.lines).to.have.length(2);
  });

  /** The messages `s` was handed, in order, once there are `n` of them. */
  async function handed(s: RawStream, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; ids.length < n; i++) {
      const line = await s.line(i);
      if (line === undefined) throw new Error(`the stream closed after ${ids.length} messages`);
      for (const m of (line.messages ?? []) as { id: string }[]) ids.push(m.id);
    }
    return ids;
  }

  it('what waited for a node before its stream opened comes down first, and a repeat is not handed over again', async () => {
    await start();
    const mine = await stream();
    mine.send({ ack: [], messages: [RawClient.request('w1', dest.id, raw.kid)] });
    expect((await mine.line(0)).results).to.deep.equal([[{ id: 'w1' }]]);
    const theirs = await stream(dest);
    expect(await handed(theirs, 1)).to.deep.equal(['w1']);
    // Sent again (its sender did not hear back), twice in one line, then a new one: only the new one comes.
    const again = RawClient.request('w1', dest.id, raw.kid);
    mine.send({ ack: [], messages: [again, again, RawClient.request('w2', dest.id, raw.kid)] });
    expect((await mine.line(1)).results).to.deep.equal([[{ id: 'w1' }, { id: 'w1' }, { id: 'w2' }]]);
    expect(await handed(theirs, 2)).to.deep.equal(['w1', 'w2']);
    expect(proxy.status().relayed).to.equal(2);
    expect(proxy.status().nodes.find((n) => n.id === dest.id)!.queued).to.equal(2);
  });

  it('a request sent again with its cancel in one line is taken back, never handed over', async () => {
    await start();
    const mine = await stream();
    mine.send({ ack: [], messages: [RawClient.request('r1', dest.id, raw.kid)] });
    await mine.line(0);
    const cancel = { id: 'c1', kind: 'cancel', to: dest.id, re: 'r1' };
    mine.send({ ack: [], messages: [RawClient.request('r1', dest.id, raw.kid), cancel] });
    expect((await mine.line(1)).results).to.deep.equal([[{ id: 'r1' }, { id: 'c1' }]]);
    mine.send({ ack: [], messages: [RawClient.request('r2', dest.id, raw.kid)] });
    await mine.line(2);
    const theirs = await stream(dest);
    expect(await handed(theirs, 1)).to.deep.equal(['r2']);
  });

  it('a backlog larger than one delivery comes down whole and in order, before what is sent after', async () => {
    await start();
    const mine = await stream();
    const ids = Array.from({ length: 25 }, (_, i) => `b${i}`);
    for (let i = 0; i < 25; i += 5) {
      const five = ids.slice(i, i + 5).map((id) => ({
        ...RawClient.request(id, dest.id, raw.kid),
        jws: fakeJws(raw.kid, { pad: 'p'.repeat(48_000) }),
      }));
      mine.send({ ack: [], messages: five });
      expect((await mine.line(i / 5)).results[0].filter((r: { error?: unknown }) => r.error)).to.deep.equal([]);
    }
    const theirs = await stream(dest);
    expect(theirs.lines.length).to.be.at.most(1);
    const first = await handed(theirs, 25);
    expect(first).to.deep.equal(ids);
    expect(theirs.lines.length).to.be.above(1); // more than one delivery's bytes
    mine.send({ ack: [], messages: [RawClient.request('new1', dest.id, raw.kid)] });
    expect((await handed(theirs, 26)).slice(25)).to.deep.equal(['new1']);
  });

  it('a new stream hands over again all that its node did not acknowledge, however much; acknowledgements clear it', async () => {
    await start({ senderShare: 1 });
    const mine = await stream();
    const first = await stream(dest);
    const ids = Array.from({ length: 300 }, (_, i) => `u${i}`);
    for (let i = 0; i < 300; i += 100) {
      mine.send({ ack: [], messages: ids.slice(i, i + 100).map((id) => RawClient.request(id, dest.id, raw.kid)) });
      await mine.line(i / 100);
    }
    expect(await handed(first, 300)).to.deep.equal(ids);
    first.close();
    await proxy.until((s) => s.streams === 1);
    const second = await stream(dest);
    expect(await handed(second, 300)).to.deep.equal(ids);
    second.send({ ack: ids, messages: [] });
    await proxy.until((s) => s.nodes.find((n) => n.id === dest.id)!.queued === 0);
  });

  it('refuses an opening that is not a registered node’s, signed for its own stream, once', async () => {
    await start();
    const path = `/nodes/${raw.id}/stream`;
    const cases: [string, Promise<RawStream | Refused>, number, string][] = [
      ['no signed request', RawStream.open(raw, { auth: null }), 400, 'ERR_PROXY_BAD_REQUEST'],
      ['another protocol', RawStream.open(raw, { protocol: 'websocket' }), 400, 'ERR_PROXY_BAD_REQUEST'],
      ['another path', RawStream.open(raw, { path: `/nodes/${raw.id}/streams` }), 404, 'ERR_NOT_FOUND'],
      ['signed for another path', RawStream.open(raw, { signedPath: `${path}x` }), 401, 'ERR_WRONG_PATH'],
      ['another node’s stream', RawStream.open(raw, { path: `/nodes/${dest.id}/stream` }), 403, 'ERR_PROXY_DENIED'],
      ['no key', RawStream.open(raw, { body: { key: 'short' } }), 400, 'ERR_PROXY_BAD_REQUEST'],
      ['not a JWS', RawStream.open(raw, { auth: 'x.y.z' }), 400, 'ERR_BAD_JWS'],
    ];
    for (const [what, attempt, status, code] of cases) {
      const r = refused(await attempt);
      expect([what, r.status, r.code]).to.deep.equal([what, status, code]);
    }
    // A key the proxy does not know, from another address.
    const stranger = new RawClient(proxy, await newKeyPair(), systemWallClock, 100, '127.0.0.2');
    const unknown = refused(await RawStream.open(stranger, { from: '127.0.0.2' }));
    expect([unknown.status, unknown.code]).to.deep.equal([401, 'ERR_PROXY_NOT_REGISTERED']);
    // The same opening played back (from another address) is a replay.
    const first = await stream();
    const again = refused(await RawStream.open(raw, { auth: first.auth, from: '127.0.0.2' }));
    expect([again.status, again.code]).to.deep.equal([409, 'ERR_REPLAY']);
    expect(proxy.status().streams).to.equal(1);
  });

  for (const [what, spoil] of [
    ['a line whose MAC is wrong', (s: RawStream) => void s.send({ ack: [], messages: [] }, true)],
    ['a line played again', (s: RawStream) => s.raw(s.send({ ack: [], messages: [] }))],
    ['a line that is not JSON', (s: RawStream) => s.raw(`${s.send({ ack: [], messages: [] }).slice(0, 23)}{\n`)],
    ['a line that is not a poll’s body', (s: RawStream) => void s.send({ ack: 'all', messages: 3 })],
    ['a line longer than the body limit', (s: RawStream) => s.raw(`${'x'.repeat(70 * 1024)}\n`)],
  ] as const) {
    it(`${what} ends the stream, and what follows it is not relayed`, async () => {
      await start({ maxBodyBytes: 64 * 1024 });
      const mine = await stream();
      await proxy.until((s) => s.streams === 1);
      spoil(mine);
      // Sent after the bad line: never read.
      mine.raw(`${'A'.repeat(22)} {}\n`);
      await mine.closed;
      await proxy.until((s) => s.streams === 0);
      expect(proxy.status().relayed).to.equal(0);
      expect(proxy.status().nodes.find((n) => n.id === dest.id)!.queued).to.equal(0);
    });
  }

  it('a line that fails its MAC relays nothing it carried', async () => {
    await start();
    const mine = await stream();
    mine.send({ ack: [], messages: [RawClient.request('t1', dest.id, raw.kid)] }, true);
    await mine.closed;
    expect(proxy.status().relayed).to.equal(0);
    expect(mine.lines).to.deep.equal([]);
  });

  it('a stream silent for twice the poll hold time is ended; one that keeps writing is kept', async () => {
    const m = await manualProxy({ pollHoldMs: 100 });
    proxy = m.proxy;
    raw = await RawClient.register(proxy, 'raw@example.org');
    dest = await RawClient.register(proxy, 'dest@example.org');
    const quiet = await stream(raw);
    const talker = await stream(dest);
    for (let i = 0; i < 4; i++) {
      // A line the proxy answers (its message is refused): once the answer is in, the line was read.
      talker.send({ ack: [], messages: [RawClient.request(`k${i}`, raw.id, 'nobody')] });
      await talker.line(i);
      m.clock.advance(100);
    }
    await quiet.closed;
    expect(talker.socket.destroyed).to.equal(false);
    expect(proxy.status().streams).to.equal(1);
  });

  it('streams count against maxPolls with held polls; a node’s newer stream takes the place of its older', async () => {
    await start({ maxPolls: 2 });
    const first = await stream(raw);
    await stream(dest);
    const third = await RawClient.register(proxy, 'third@example.org');
    const busy = refused(await RawStream.open(third));
    expect([busy.status, busy.code]).to.deep.equal([503, 'ERR_PROXY_BUSY']);
    const newer = await stream(raw);
    await first.closed;
    expect(proxy.status().streams).to.equal(2);
    newer.send({ ack: [], messages: [RawClient.request('n1', dest.id, raw.kid)] });
    expect((await newer.line(0)).results).to.deep.equal([[{ id: 'n1' }]]);
  });

  it('a node that does not read its stream gets no more than its queue holds; its senders are told', async () => {
    await start({ maxQueue: 20, senderShare: 1 });
    const deaf = await stream(dest);
    deaf.socket.pause();
    const mine = await stream();
    const codes: string[] = [];
    for (let i = 0; i < 40; i++) {
      const big = RawClient.request(`d${i}`, dest.id, raw.kid, { jws: fakeJws(raw.kid, { pad: 'p'.repeat(8000) }) });
      mine.send({ ack: [], messages: [big] });
      const r = (await mine.line(i)).results[0][0];
      codes.push(r.error?.code ?? 'ok');
    }
    expect(codes.filter((x) => x === 'ok')).to.have.length(20);
    expect(codes.slice(20)).to.deep.equal(Array(20).fill('ERR_PROXY_QUEUE_FULL'));
    expect(proxy.status().nodes.find((n) => n.id === dest.id)!.queued).to.equal(20);
  });
});

describe('Relay streams: a proxy that does not stream', () => {
  it('is polled: a node falls back when the upgrade is refused', async () => {
    const { tap } = await import('../fixtures/tap.js');
    const c = await cluster();
    const t = await tap(c.proxy.url);
    const dave = await WtdNode.start({ name: 'dave', dataDir: ':memory:', logger: new MemoryLogger() });
    try {
      dave.load(Echo);
      await GenServer.start(dave, new Echo(), 0, { name: 'echo' });
      await dave.joinProxy({ url: t.url, email: 'dave@example.org' });
      await c.alice.grant({ missions: ['probe'], rate: '100/s', to: dave.publicJwk });
      const remote = await dave.connect({ nodeKey: c.alice.publicJwk }, { via: 'proxy' });
      expect(await remote.call('Probe', 'touch', ['tapped'])).to.equal('tapped');
      expect(t.paths.some((p) => p.endsWith('/poll'))).to.equal(true);
      expect(t.upgrades).to.deep.equal([`/nodes/${dave.id}/stream ${RELAY_STREAM_PROTOCOL}`]);
      expect(c.proxy.status().streams).to.equal(3);
      expect(dave.sessionStats().proxyStream).to.equal(false);
    } finally {
      await dave.close();
      t.close();
      await closeAll(c.bob, c.carol, c.alice, c.proxy);
    }
  });
});
