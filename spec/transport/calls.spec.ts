import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  WtdExport,
  CallTimeoutError,
  MaybeRanError,
  ManualClock,
  RateLimitedError,
  RemoteError,
  WireError,
  WtdNode,
  type Pid,
} from '../../lib/index.js';
import { BATCH_MAX_ITEMS } from '../../lib/transport/batch.js';
import { FRAMES_TYPE, FrameReader, type CallsFrame } from '../../lib/transport/calls.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { newClaims } from '../../lib/wire/claims.js';
import { readSessionHeader, SESSION_TYP } from '../../lib/wire/session.js';
import { rejection } from '../fixtures/helpers.js';
import { Probe, probeRuns, put, signRaw, withTwoNodes } from '../fixtures/remote.js';
import { handMade, type HandMade } from '../fixtures/sessions.js';
import { tap } from '../fixtures/tap.js';

const codec = new WireCodec();

/** Answers as large as asked. */
class Blob {
  @WtdExport('probe')
  static of(n: number): string {
    return 'x'.repeat(n);
  }

  @WtdExport('probe', { idempotent: true })
  static same(x: unknown): unknown {
    return x;
  }

  /** Waits for the gate of `Probe.slow()`. */
  @WtdExport('probe')
  static async held(x: string): Promise<number> {
    await Probe.gate;
    return x.length;
  }
}

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
      // A call too large to share a request goes alone even while others are on their way.
      t.paths.length = 0;
      const big = 'x'.repeat(40_000);
      expect(
        await Promise.all([remote.call('Probe', 'touch', ['a']), remote.call('Probe', 'touch', [big])]),
      ).to.deep.equal(['a', big]);
      expect(t.paths).to.deep.equal(['/apply/Probe/touch', '/apply/Probe/touch']);
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

  it('answers as large as calls alone may have (16 MiB each) come back whole, however many share a request', async () => {
    nodes.alice.load(Blob);
    const remote = await nodes.bob.connect(nodes.grant);
    const sizes = [1, 2, 3, 4, 5, 6].map((i) => 3 * 1024 * 1024 + i);
    const got = await Promise.all(sizes.map((n) => remote.call<string>('Blob', 'of', [n], { timeout: 30_000 })));
    expect(got.map((s) => s.length)).to.deep.equal(sizes);
  });

  it('pids travel in the calls of a PUT /calls both ways, and a reply that says it is idempotent is remembered', async () => {
    nodes.alice.load(Blob);
    const remote = await nodes.bob.connect(nodes.grant);
    await remote.call('Probe', 'touch', [0]);
    const got: unknown[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const inbox = nodes.bob.spawn(async (self) => {
      while (got.length < 2) got.push(await self.receive());
      done();
    });
    let heard!: (m: unknown) => void;
    const alice = new Promise<unknown>((resolve) => (heard = resolve));
    nodes.alice.spawn(async (self) => heard(await self.receive()), { name: 'inbox' });
    const open = closeGate();
    const lone = remote.call('Probe', 'slow');
    await Probe.atGate(1);
    expect(remote.knownIdempotent('Blob', 'same')).to.equal(undefined);
    const [sent, alicePid, same] = await Promise.all([
      remote.call('Probe', 'pingBack', [inbox, 2]),
      remote.call<Pid>('Probe', 'mailbox'),
      remote.call('Blob', 'same', [7]),
    ]);
    expect([sent, same]).to.deep.equal(['sent', 7]);
    await finished;
    expect(got).to.deep.equal([{ ping: 0 }, { ping: 1 }]);
    nodes.bob.send(alicePid, 'hello alice');
    expect(await alice).to.equal('hello alice');
    expect(remote.knownIdempotent('Blob', 'same')).to.equal(true);
    open();
    expect(await lone).to.equal('done');
  });

  it('each call is checked on its own (mission, arguments, rate) and answers for itself; behaviours too', async () => {
    const grant = await nodes.alice.grant({ missions: ['probe'], rate: { count: 1, intervalMs: 60_000, burst: 6 } });
    const remote = await nodes.bob.connect(grant);
    const open = closeGate();
    const first = remote.call('Probe', 'slow'); // alone; what follows goes in one PUT /calls
    await Probe.atGate(1); // it took its token first
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
    const calls = Array.from({ length: 200 }, () => remote.call('Probe', 'slow', [], { timeout: 30_000 }));
    await Probe.atGate(8);
    open();
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((r) => r.status === 'rejected').map((r) => (r.reason as WireError).code)).to.deep.equal([]);
    expect(probeRuns.count).to.equal(201);
  });

  it('calls that went alone count in the 64 on their way: a call waiting for room leaves as they end', async () => {
    nodes.alice.load(Blob);
    const remote = await nodes.bob.connect(nodes.grant);
    await remote.call('Probe', 'touch', [0]);
    const open = closeGate();
    const big = 'x'.repeat(40_000); // too large to share a request: each goes alone
    const bigs = Array.from({ length: 64 }, () => remote.call('Blob', 'held', [big], { timeout: 30_000 }));
    const small = remote.call('Probe', 'touch', ['small'], { timeout: 30_000 });
    open();
    expect(await small).to.equal('small');
    expect(await Promise.all(bigs)).to.deep.equal(bigs.map(() => big.length));
  });

  it('a frame changed, repeated or cut off on the way fails the calls it did not answer: ERR_BAD_REPLY', async () => {
    const remote0 = await nodes.bob.connect(nodes.grant);
    await remote0.call('Probe', 'touch', [0]);
    // The first frame passed on twice: the second copy does not open as frame 1.
    let before: Buffer | undefined = Buffer.alloc(0);
    const twice = await tap(nodes.alice.address!, {
      edit: (chunk) => {
        if (before === undefined) return chunk;
        const got = Buffer.concat([before, chunk]);
        const end = got.indexOf(0x0a);
        if (end === -1) {
          before = got;
          return undefined;
        }
        before = undefined;
        const line = got.subarray(0, end + 1);
        return Buffer.concat([line, line, got.subarray(end + 1)]);
      },
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
    const flipped = await tap(nodes.alice.address!, {
      edit: (chunk) => {
        const copy = Buffer.from(chunk);
        const at = Math.min(copy.length - 1, copy.indexOf('.') + 40);
        copy[at] = copy[at] === 0x41 ? 0x42 : 0x41;
        return copy;
      },
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
    let ended = false;
    const cut = await tap(nodes.alice.address!, {
      edit: (chunk, res) => {
        if (!ended) res.end(chunk.subarray(0, Math.max(1, chunk.length - 10)));
        ended = true;
        return undefined;
      },
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

  it('a call whose request waits for the session’s first exchange is ERR_CALL_TIMEOUT at its deadline, and is never sent', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const t = await tap(nodes.alice.address!, { hold: (path) => (path === '/session' ? held : undefined) });
    try {
      const remote = await bob.connect({ ...nodes.grant, node: { ...nodes.grant.node, address: t.url } });
      const first = remote.call('Probe', 'touch', [1], { timeout: 60_000 }); // alone, and makes the session
      const second = remote.call('Probe', 'touch', [2], { timeout: 100 });
      // Its request is made at the end of the turn, and waits for the session.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(101);
      const err = await rejection(second);
      expect(err).to.be.instanceOf(CallTimeoutError);
      expect(err.code).to.equal('ERR_CALL_TIMEOUT');
      release();
      expect(await first).to.equal(1);
      expect(t.paths).to.deep.equal(['/session', '/apply/Probe/touch']);
      expect(probeRuns.count).to.equal(1);
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

describe('FrameReader: the frames of a streamed answer, however its bytes are cut', () => {
  it('reads each line once, across chunks of any size, and says when the bytes ended inside one', () => {
    const seen: [number, string][] = [];
    const reader = new FrameReader((f, text) => seen.push([f, text]), 1000);
    for (const byte of Buffer.from('ab\ncd\n\nef')) reader.push(Buffer.from([byte]));
    expect(seen).to.deep.equal([
      [0, 'ab'],
      [1, 'cd'],
      [2, ''],
    ]);
    expect(reader.cutOff).to.equal(true);
    reader.push(Buffer.from('\ngh\n'));
    expect(seen.slice(3)).to.deep.equal([
      [3, 'ef'],
      [4, 'gh'],
    ]);
    expect(reader.cutOff).to.equal(false);
  });

  it('stops at the first frame it cannot take, and past its bound: ERR_BAD_REPLY', () => {
    const seen: string[] = [];
    const reader = new FrameReader((_, text) => {
      if (text === 'bad') throw new WireError('ERR_BAD_REPLY', 502, 'a frame that does not open');
      seen.push(text);
    }, 1000);
    reader.push(Buffer.from('ok\nbad\nafter\n'));
    expect(seen).to.deep.equal(['ok']);
    expect(reader.failed).to.be.instanceOf(WireError);
    const small = new FrameReader(() => undefined, 10);
    small.push(Buffer.from('0123456789'));
    expect(small.failed).to.equal(undefined);
    small.push(Buffer.from('x'));
    expect(small.failed).to.be.instanceOf(WireError);
    expect((small.failed as WireError).code).to.equal('ERR_BAD_REPLY');
  });
});
