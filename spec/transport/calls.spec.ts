import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  CallTimeoutError,
  MaybeRanError,
  ManualClock,
  RateLimitedError,
  RemoteError,
  WireError,
  WtdNode,
} from '../../lib/index.js';
import { BATCH_MAX_ITEMS } from '../../lib/transport/batch.js';
import { FRAMES_TYPE, type CallsFrame } from '../../lib/transport/calls.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims } from '../../lib/wire/claims.js';
import { readSessionHeader, SESSION_TYP } from '../../lib/wire/session.js';
import { rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns, put, signRaw, withTwoNodes } from '../fixtures/remote.js';
import { handMade, type HandMade } from '../fixtures/sessions.js';
import { tap } from '../fixtures/tap.js';

const codec = new WireCodec();

/** Holds every `Probe.slow()` until `open()`. */
function closeGate(): () => void {
  let open!: () => void;
  Probe.gate = new Promise<void>((resolve) => (open = resolve));
  return open;
}

/** The frames of a streamed answer to the hand-made request `seq`, opened. */
function framesOf(s: HandMade, seq: number, text: string): CallsFrame[] {
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, f) => s.session.openFrame(seq, f, readSessionHeader(line, SESSION_TYP.frame), line) as CallsFrame);
}

/** A call of a hand-made `PUT /calls`. */
function item(path: string, args: unknown[], extra: { deadline?: number; mission?: string } = {}) {
  return { path, body: codec.encode(args), timeout: 5000, deadline: Date.now() + 5000, ...extra };
}

describe('Calls in one request: what is made while others are on their way leaves together', () => {
  const nodes = withTwoNodes();
  afterEach(() => {
    Probe.gate = Promise.resolve();
  });

  it('a lone call goes to /apply; calls made while it is on its way leave as one PUT /calls, each with its own result', async () => {
    const t = await tap(nodes.alice.address!);
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      expect(await remote.call('Probe', 'touch', [0])).to.equal(0);
      const values = Array.from({ length: 20 }, (_, i) => ({ i, text: `v${i}`, when: new Date(i) }));
      const got = await Promise.all(values.map((v) => remote.call('Probe', 'touch', [v])));
      expect(got).to.deep.equal(values);
      // The first of the twenty went alone (nothing was on its way); the other nineteen together.
      expect(t.paths).to.deep.equal(['/session', '/apply/Probe/touch', '/apply/Probe/touch', '/calls']);
      expect(probeRuns.count).to.equal(21);
    } finally {
      t.close();
    }
  });

  it('a slow call holds back none of the others in its request: their answers stream back as they finish', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    await remote.call('Probe', 'touch', [0]);
    const open = closeGate();
    const first = remote.call('Probe', 'slow'); // alone
    let slowDone = false;
    const slow = remote.call('Probe', 'slow').then((v) => ((slowDone = true), v));
    const fast = [1, 2, 3].map((i) => remote.call('Probe', 'touch', [i]));
    expect(await Promise.all(fast)).to.deep.equal([1, 2, 3]);
    expect(slowDone).to.equal(false);
    open();
    expect(await Promise.all([first, slow])).to.deep.equal(['done', 'done']);
  });

  it('each call is checked on its own (mission, arguments, rate) and answers for itself; behaviours too', async () => {
    const grant = await nodes.alice.grant({ missions: ['probe'], rate: { count: 1, intervalMs: 60_000, burst: 6 } });
    const remote = await nodes.bob.connect(grant);
    const open = closeGate();
    const first = remote.call('Probe', 'slow'); // alone; what follows goes in one PUT /calls
    const results = await Promise.allSettled([
      remote.call('Probe', 'touch', ['a']),
      remote.call('Probe', 'secret'),
      remote.call('Probe', 'fail'),
      remote.genServer('probe', 'echo').call('hi'),
      remote.call('Probe', 'touch', ['b', 'extra']),
      remote.call('Probe', 'touch', ['c']),
      remote.call('Probe', 'touch', ['d']),
    ]);
    open();
    expect(await first).to.equal('done');
    const [a, secret, fail, echo, arity, c, d] = results;
    expect(a).to.deep.include({ status: 'fulfilled', value: 'a' });
    const refused = (r: PromiseSettledResult<unknown>) => (r as PromiseRejectedResult).reason as WireError;
    expect(refused(secret)).to.be.instanceOf(WireError);
    expect(refused(secret).code).to.equal('ERR_MISSION_NOT_GRANTED');
    expect(refused(fail)).to.be.instanceOf(RemoteError);
    expect(refused(fail).code).to.equal('ERR_REMOTE_EXCEPTION');
    expect(echo).to.deep.include({ status: 'fulfilled' });
    expect((echo as PromiseFulfilledResult<{ echo: unknown }>).value.echo).to.equal('hi');
    expect(refused(arity)).to.be.instanceOf(WireError);
    expect(refused(arity).code).to.equal('ERR_BAD_ARITY');
    expect(c).to.deep.include({ status: 'fulfilled', value: 'c' });
    // Six tokens: slow, a, fail, echo, the wrong arity, c (a mission not granted spends none); d is over the rate.
    expect(refused(d)).to.be.instanceOf(RateLimitedError);
    expect(refused(d).code).to.equal('ERR_RATE_LIMITED');
  });

  it('more calls than a grant may run and queue at once wait their turn on the caller’s side: none is refused', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    await remote.call('Probe', 'touch', [0]);
    const open = closeGate();
    const calls = Array.from({ length: 200 }, () => remote.call('Probe', 'slow'));
    await Probe.atGate(8);
    open();
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((r) => r.status === 'rejected').map((r) => (r.reason as WireError).code)).to.deep.equal([]);
    expect(probeRuns.count).to.equal(201);
  });

  it('a frame changed, repeated or cut off on the way fails the calls it did not answer: ERR_BAD_REPLY', async () => {
    const remote0 = await nodes.bob.connect(nodes.grant);
    await remote0.call('Probe', 'touch', [0]);
    // The first frame passed on twice: the second copy does not open as frame 1.
    let first: Buffer | undefined;
    const twice = await tap(nodes.alice.address!, (chunk) => {
      if (first !== undefined) return chunk;
      first = chunk;
      return Buffer.concat([chunk, chunk]);
    });
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: twice.url } });
      const open = closeGate();
      const lone = remote.call('Probe', 'slow');
      const slow = remote.call('Probe', 'slow');
      const fast = remote.call('Probe', 'touch', [1]);
      expect(await fast).to.equal(1);
      const err = await rejection(slow);
      expect(err).to.be.instanceOf(WireError);
      expect(err.code).to.equal('ERR_BAD_REPLY');
      open();
      expect(await lone).to.equal('done');
    } finally {
      twice.close();
    }
    // One byte of the sealed text flipped.
    const flipped = await tap(nodes.alice.address!, (chunk) => {
      const copy = Buffer.from(chunk);
      const at = copy.indexOf('.') + 40;
      copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
      return copy;
    });
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: flipped.url } });
      const open = closeGate();
      const lone = remote.call('Probe', 'slow');
      const errs = await Promise.all([1, 2].map((i) => rejection(remote.call('Probe', 'touch', [i]))));
      expect(errs.map((e: WireError) => [e instanceof WireError, e.code])).to.deep.equal([
        [true, 'ERR_BAD_REPLY'],
        [true, 'ERR_BAD_REPLY'],
      ]);
      open();
      expect(await lone).to.equal('done');
    } finally {
      flipped.close();
    }
    // The answer ends in the middle of a frame.
    const cut = await tap(nodes.alice.address!, (chunk, res) => {
      res.end(chunk.subarray(0, chunk.length - 10));
      return undefined;
    });
    try {
      const remote = await nodes.bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: cut.url } });
      const open = closeGate();
      const lone = remote.call('Probe', 'slow');
      const err = await rejection(remote.call('Probe', 'touch', [1]));
      expect(err).to.be.instanceOf(WireError);
      expect(err.code).to.equal('ERR_BAD_REPLY');
      open();
      expect(await lone).to.equal('done');
    } finally {
      cut.close();
    }
  });

  it('after the callee restarts, a PUT /calls refused with its signed word is sent again in a new session', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wtd-calls-'));
    const clock = new ManualClock(Date.now());
    const start = async (port = 0) => {
      const node = await WtdNode.start({ name: 'alice', dataDir: dir, wallClock: clock });
      node.load(Probe);
      await node.listen({ port, host: '127.0.0.1' });
      return node;
    };
    let alice = await start();
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', wallClock: clock });
    const t = await tap(alice.address!);
    try {
      const grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
      const remote = await bob.connect({ ...grant, node: { ...grant.node, address: t.url } });
      expect(await remote.call('Probe', 'touch', [1])).to.equal(1);
      const port = Number(new URL(alice.address!).port);
      await alice.close();
      alice = await start(port);
      probeRuns.count = 0;
      t.paths.length = 0;
      expect(await Promise.all([2, 3, 4].map((i) => remote.call('Probe', 'touch', [i])))).to.deep.equal([2, 3, 4]);
      expect(probeRuns.count).to.equal(3);
      expect(t.paths.filter((p) => p === '/calls')).to.have.length(2);
    } finally {
      t.close();
      await bob.close();
      await alice.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Calls in one request: deadlines, giving up and closing, on the caller’s clock', () => {
  const nodes = withTwoNodes();
  let clock: ManualClock;
  let bob: WtdNode;
  beforeEach(async () => {
    clock = new ManualClock(Date.now());
    bob = await WtdNode.start({ name: 'bob2', dataDir: ':memory:', wallClock: clock });
  });
  afterEach(async () => {
    Probe.gate = Promise.resolve();
    await bob.close();
  });

  it('a call past its deadline is ERR_CALL_TIMEOUT while it waits to leave (not sent), ERR_MAYBE_RAN once sent', async () => {
    const t = await tap(nodes.alice.address!);
    try {
      const remote = await bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      await remote.call('Probe', 'touch', [0]);
      const open = closeGate();
      const lone = remote.call('Probe', 'slow', [], { timeout: 60_000 });
      const waiting = remote.call('Probe', 'touch', [1], { timeout: 10 });
      clock.advance(11);
      const err = await rejection(waiting);
      expect(err).to.be.instanceOf(CallTimeoutError);
      expect(err.code).to.equal('ERR_CALL_TIMEOUT');
      const sent = remote.call('Probe', 'slow', [], { timeout: 1000 });
      const fast = remote.call('Probe', 'touch', [2], { timeout: 60_000 });
      expect(await fast).to.equal(2);
      clock.advance(1001);
      const late = await rejection(sent);
      expect(late).to.be.instanceOf(MaybeRanError);
      expect(late.code).to.equal('ERR_MAYBE_RAN');
      open();
      expect(await lone).to.equal('done');
      // The call that timed out while it waited never left.
      expect(t.paths.filter((p) => p === '/calls')).to.have.length(1);
    } finally {
      t.close();
    }
  });

  it('given up with its signal: ERR_CALL_CANCELLED before it left, ERR_MAYBE_RAN after; closing fails what waits to leave', async () => {
    const remote = await bob.connect(nodes.grant);
    await remote.call('Probe', 'touch', [0]);
    const open = closeGate();
    const lone = remote.call('Probe', 'slow');
    const before = new AbortController();
    const cancelled = remote.call('Probe', 'touch', [1], { signal: before.signal });
    before.abort();
    const err = await rejection(cancelled);
    expect(err.code).to.equal('ERR_CALL_CANCELLED');
    const after = new AbortController();
    const given = remote.call('Probe', 'slow', [], { signal: after.signal });
    await Probe.atGate(2);
    after.abort();
    const late = await rejection(given);
    expect(late).to.be.instanceOf(MaybeRanError);
    expect(late.code).to.equal('ERR_MAYBE_RAN');
    const sent = remote.call('Probe', 'slow');
    await Probe.atGate(3);
    const queued = remote.call('Probe', 'touch', [2]);
    await bob.close();
    const q = await rejection(queued);
    expect(q).to.be.instanceOf(WireError);
    expect(q.code).to.equal('ERR_UNKNOWN_KEY');
    // What was on its way when the node closed is answered, as a call on its own is.
    open();
    expect(await Promise.all([lone, sent])).to.deep.equal(['done', 'done']);
    expect(probeRuns.count).to.equal(4);
  });
});

describe('Calls in one request: what a hostile caller can send', () => {
  const nodes = withTwoNodes();

  it('each call is checked and run as on its own, in order; its answer streams back sealed, and a resend runs nothing again', async () => {
    const s = await handMade(nodes.alice.address!, nodes.alice.id, nodes.grant, nodes.bob.id, nodes.clock);
    const sealed = s.seal('/calls', {
      items: [
        item('/apply/Probe/touch', ['a']),
        item('/pid/1', ['x']),
        item('/batch', []),
        item('/nowhere', []),
        item('/apply/Probe/touch', ['late'], { deadline: nodes.clock.now() - 1 }),
        item('/apply/Probe/secret', []),
        item('/behaviour/probe/echo/call', ['hi']),
        item('/apply/Probe/touch', ['b'], { mission: 'probe' }),
      ],
    });
    const res = await s.send('/calls', sealed.text);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal(FRAMES_TYPE);
    const answers = new Map(framesOf(s, sealed.seq, res.text).flatMap((f) => f.results));
    expect([...answers.keys()].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7]);
    const codes = [...answers.entries()]
      .sort(([x], [y]) => x - y)
      .map(([, a]) => (a.status === 200 ? codec.decode((a.body as { ok: never }).ok) : a.code));
    expect(codes).to.deep.equal([
      'a',
      'ERR_BAD_REQUEST',
      'ERR_BAD_REQUEST',
      'ERR_NOT_FOUND',
      'ERR_CALL_TIMEOUT',
      'ERR_MISSION_NOT_GRANTED',
      { echo: 'hi', n: 1 },
      'b',
    ]);
    expect(probeRuns.count).to.equal(3);
    // The same bytes again: the same answer, all at once, and nothing runs again.
    const again = await s.send('/calls', sealed.text);
    expect([again.status, again.text]).to.deep.equal([200, res.text]);
    expect(probeRuns.count).to.equal(3);
  });

  it(`a PUT /calls outside a session, with more than ${BATCH_MAX_ITEMS} calls or an ill-formed one is refused whole: nothing runs`, async () => {
    const s = await handMade(nodes.alice.address!, nodes.alice.id, nodes.grant, nodes.bob.id, nodes.clock);
    const many = Array.from({ length: BATCH_MAX_ITEMS + 1 }, () => item('/apply/Probe/touch', [1]));
    const tooMany = await s.send('/calls', s.seal('/calls', { items: many }).text);
    expect([tooMany.status, tooMany.code]).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    for (const bad of [
      { items: [] },
      { items: [{ path: '/apply/Probe/touch', body: codec.encode([1]), deadline: Date.now() + 1000 }] },
      { items: [{ ...item('/apply/Probe/touch', [1]), timeout: -1 }] },
      { items: [{ ...item('/apply/Probe/touch', [1]), mission: 7 }] },
      { items: [item('/apply/Probe/touch', [1]), null] },
      [item('/apply/Probe/touch', [1])],
    ]) {
      const res = await s.send('/calls', s.seal('/calls', bad).text);
      expect([res.status, res.code], JSON.stringify(bad)).to.deep.equal([400, 'ERR_BAD_ARGUMENTS']);
    }
    const claims = newClaims<'call'>(nodes.clock, {
      aud: nodes.alice.id,
      iss: nodes.bob.id,
      method: 'PUT',
      path: '/calls',
      body: { items: [item('/apply/Probe/touch', [1])] } as never,
    });
    const signed = await signRaw(
      nodes.grant.privateJwk,
      { typ: 'wtd-call+jws', kid: nodes.grant.kid },
      claims as never,
    );
    const plain = await put(`${nodes.alice.address!}/calls`, signed);
    expect([plain.status, plain.code]).to.deep.equal([426, 'ERR_SESSION_REQUIRED']);
    expect(probeRuns.count).to.equal(0);
  });
});
