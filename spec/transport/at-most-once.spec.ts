import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  MaybeRanError,
  ManualClock,
  outcomeOf,
  WireError,
  WtdError,
  WtdNode,
  WtdProxy,
  type GrantFile,
} from '../../lib/index.js';
import { ReplayWindow, type ReplayLog, type RequestOutcome } from '../../lib/security/replay-window.js';
import { Answers } from '../../lib/transport/answers.js';
import type { HttpResponse } from '../../lib/transport/http-client.js';
import { EXECUTIONS_PER_GRANT } from '../../lib/transport/executions.js';
import { newMessageId } from '../../lib/wire/claims.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { closeAll, RawClient } from '../fixtures/proxy.js';
import { Probe, probeRuns, put, signRaw, withTwoNodes } from '../fixtures/remote.js';

/** A call to `Probe/<fn>` signed with `grant`'s key for `aud`, on `clock`'s time, with claims overridden. */
async function rawCall(
  grant: GrantFile,
  aud: string,
  clock: { now(): number },
  fn = 'touch',
  over: Record<string, unknown> = {},
): Promise<{ path: string; jws: string }> {
  const nowS = Math.floor(clock.now() / 1000);
  const path = `/apply/Probe/${fn}`;
  const jws = await signRaw(
    grant.privateJwk,
    { typ: 'wtd-call+jws', kid: grant.kid },
    {
      id: newMessageId(),
      iat: nowS,
      exp: nowS + 30,
      aud,
      iss: 'bob',
      method: 'PUT',
      path,
      body: new WireCodec().encode(fn === 'touch' ? ['once'] : []),
      ...over,
    },
  );
  return { path, jws };
}

describe('a remote call runs at most once, and its caller learns which of three things happened', () => {
  describe('straight to the node', () => {
    const t = withTwoNodes({ encryption: false });

    it('a resend of an answered request gets the first answer, and nothing runs again', async () => {
      const { path, jws } = await rawCall(t.grant, t.alice.id, t.clock);
      const first = await put(t.alice.address + path, jws);
      const again = await put(t.alice.address + path, jws);
      expect(first.status, first.text).to.equal(200);
      expect([again.status, again.text]).to.deep.equal([200, first.text]);
      expect(probeRuns.count).to.equal(1);
      expect(t.alice.grants().find((g) => g.kid === t.grant.kid)!.uses).to.equal(1);
    });

    it('a resend while the first copy runs waits for its answer; it runs once', async () => {
      let open!: () => void;
      Probe.gate = new Promise<void>((r) => (open = r));
      const { path, jws } = await rawCall(t.grant, t.alice.id, t.clock, 'slow');
      const first = put(t.alice.address + path, jws);
      await Probe.atGate(1);
      const second = put(t.alice.address + path, jws);
      open();
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status]).to.deep.equal([200, 200]);
      expect(b.text).to.equal(a.text);
      expect(probeRuns.count).to.equal(1);
    });

    it('the same id under another grant is a replay: it learns nothing of the answer', async () => {
      const other = await t.alice.grant({ missions: ['probe'], rate: '10/s' });
      const id = newMessageId();
      const first = await rawCall(t.grant, t.alice.id, t.clock, 'touch', { id });
      expect((await put(t.alice.address + first.path, first.jws)).status).to.equal(200);
      const second = await rawCall(other, t.alice.id, t.clock, 'touch', { id });
      const res = await put(t.alice.address + second.path, second.jws);
      expect([res.status, res.code]).to.deep.equal([409, 'ERR_REPLAY']);
      expect(probeRuns.count).to.equal(1);
    });

    it('a request whose deadline passed is refused before it runs: ERR_CALL_TIMEOUT, no use counted', async () => {
      const { path, jws } = await rawCall(t.grant, t.alice.id, t.clock, 'touch', { deadline: t.clock.now() - 1 });
      const res = await put(t.alice.address + path, jws);
      expect([res.status, res.code]).to.deep.equal([504, 'ERR_CALL_TIMEOUT']);
      expect(probeRuns.count).to.equal(0);
      expect(t.alice.grants().find((g) => g.kid === t.grant.kid)!.uses).to.equal(0);
    });

    it('a call whose deadline passes while it waits for a turn never starts (not_run)', async () => {
      let open!: () => void;
      Probe.gate = new Promise<void>((r) => (open = r));
      const remote = await t.bob.connect(t.grant);
      const running = Array.from({ length: EXECUTIONS_PER_GRANT }, () => remote.call('Probe', 'slow', []));
      await Probe.atGate(EXECUTIONS_PER_GRANT);
      const late = rejection(remote.call('Probe', 'touch', ['late'], { timeout: 3000 }));
      await t.alice.until((load) => load.waiting === 1);
      // Alice's time moves past the late call's deadline while it waits behind the others.
      t.clock.advance(4000);
      open();
      const err = await late;
      expect(err).to.be.instanceOf(WireError);
      expect([err.status, err.code]).to.deep.equal([504, 'ERR_CALL_TIMEOUT']);
      expect(outcomeOf(err)).to.equal('not_run');
      await Promise.all(running);
      expect(probeRuns.count).to.equal(EXECUTIONS_PER_GRANT);
    });

    it('a call given up before it is sent did not run (ERR_CALL_CANCELLED); once sent, it may have (ERR_MAYBE_RAN)', async () => {
      const remote = await t.bob.connect(t.grant);
      const before = new AbortController();
      before.abort();
      const cancelled = await rejection(remote.call('Probe', 'touch', [1], { signal: before.signal }));
      expect(cancelled).to.be.instanceOf(WtdError);
      expect(cancelled.code).to.equal('ERR_CALL_CANCELLED');
      expect(outcomeOf(cancelled)).to.equal('not_run');

      let open!: () => void;
      Probe.gate = new Promise<void>((r) => (open = r));
      const after = new AbortController();
      const sent = rejection(remote.call('Probe', 'slow', [], { signal: after.signal }));
      await Probe.atGate(1);
      after.abort();
      const maybe = await sent;
      open();
      expect(maybe).to.be.instanceOf(MaybeRanError);
      expect(maybe.code).to.equal('ERR_MAYBE_RAN');
      expect(outcomeOf(maybe)).to.equal('maybe_ran');
    });

    it('a function that threw ran (outcome "ran"); a refusal did not', async () => {
      const remote = await t.bob.connect(t.grant);
      expect(outcomeOf(await rejection(remote.call('Probe', 'fail', [])))).to.equal('ran');
      expect(outcomeOf(await rejection(remote.call('Probe', 'secret', [])))).to.equal('not_run');
    });
  });

  describe('through the proxy', () => {
    const logger = new MemoryLogger();
    let proxy: WtdProxy;
    let alice: WtdNode;
    let bob: WtdNode;
    let grant: GrantFile;
    beforeEach(async () => {
      probeRuns.count = 0;
      proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, pollHoldMs: 200 });
      alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger });
      alice.load(Probe);
      Probe.node = alice;
      bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      grant = await alice.grant({ missions: ['probe'], rate: '100/s' });
    });
    afterEach(() => closeAll(bob, alice, proxy));

    it('a call to a node that is offline fails at its deadline as not run, and never runs when the node is back', async () => {
      await alice.leaveProxy();
      const remote = await bob.connect(grant, { via: 'proxy' });
      const err = await rejection(remote.call('Probe', 'touch', ['lost'], { timeout: 300 }));
      expect(err.code).to.equal('ERR_CALL_TIMEOUT');
      expect(outcomeOf(err)).to.equal('not_run');
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      // Alice's queue is delivered in order: once a later call ran, the one given up would have too.
      expect(await remote.call('Probe', 'touch', ['later'])).to.equal('later');
      expect(probeRuns.count).to.equal(1);
    });

    it('a node restarted after a call to it failed at its deadline never runs that call', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'wtd-restart-'));
      let carol = await WtdNode.start({ name: 'carol', dataDir: dir, logger });
      try {
        carol.load(Probe);
        await carol.joinProxy({ url: proxy.url, email: 'carol@example.org' });
        const file = await carol.grant({ missions: ['probe'], rate: '100/s' });
        await carol.close();
        const remote = await bob.connect(file, { via: 'proxy' });
        const err = await rejection(remote.call('Probe', 'touch', ['lost'], { timeout: 300 }));
        expect([err.code, outcomeOf(err)]).to.deep.equal(['ERR_CALL_TIMEOUT', 'not_run']);
        carol = await WtdNode.start({ name: 'carol', dataDir: dir, logger });
        carol.load(Probe);
        await carol.joinProxy({ url: proxy.url, email: 'carol@example.org' });
        expect(await remote.call('Probe', 'touch', ['later'])).to.equal('later');
        expect(probeRuns.count).to.equal(1);
      } finally {
        await carol.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a call the node was handed already may have run: ERR_MAYBE_RAN at the deadline', async () => {
      let open!: () => void;
      Probe.gate = new Promise<void>((r) => (open = r));
      const remote = await bob.connect(grant, { via: 'proxy' });
      const sent = rejection(remote.call('Probe', 'slow', [], { timeout: 300 }));
      await Probe.atGate(1);
      const err = await sent;
      open();
      expect(err).to.be.instanceOf(MaybeRanError);
      expect(outcomeOf(err)).to.equal('maybe_ran');
    });

    it('the proxy drops a queued request at its deadline and tells the caller it did not run', async () => {
      const clock = new ManualClock(Date.now());
      const slow = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, wallClock: clock, pollHoldMs: 200 });
      const callee = await WtdNode.start({ name: 'carol', dataDir: ':memory:', logger });
      callee.load(Probe);
      Probe.node = callee;
      try {
        await callee.joinProxy({ url: slow.url, email: 'carol@example.org' });
        const file = await callee.grant({ missions: ['probe'], rate: '100/s' });
        await callee.leaveProxy();
        const raw = await RawClient.register(slow, 'raw@example.org', clock, 200);
        const { path, jws } = await rawCall(file, callee.id, clock, 'touch', {
          iss: raw.id,
          deadline: clock.now() + 3000,
        });
        const queued = await raw.poll({ messages: [{ id: 'q1', kind: 'request', to: callee.id, path, jws }] });
        expect(queued.json.results).to.deep.equal([{ id: 'q1' }]);
        // The caller is gone; the proxy's own sweep drops the request at its deadline and answers for it.
        clock.advance(5000);
        const answer = (await raw.poll()).json.messages.find((m) => m.re === 'q1');
        expect(answer.status).to.equal(504);
        expect(JSON.parse(answer.text).error.code).to.equal('ERR_PROXY_EXPIRED');
        await callee.joinProxy({ url: slow.url, email: 'carol@example.org' });
        await callee.onIdle();
        expect(probeRuns.count).to.equal(0);
      } finally {
        await closeAll(callee, slow);
      }
    });

    it('a cancel takes back a request still queued; one that cannot (taken back already, or handed over) is ERR_MAYBE_RAN', async () => {
      const raw = await RawClient.register(proxy);
      const remoteKid = grant.kid;
      await alice.leaveProxy();
      const { path, jws } = await rawCall(grant, alice.id, { now: Date.now }, 'touch', { iss: raw.id });
      const sent = await raw.poll({ messages: [{ id: 'c1', kind: 'request', to: alice.id, path, jws }] });
      expect(sent.json.results, remoteKid).to.deep.equal([{ id: 'c1' }]);
      const taken = await raw.poll({ messages: [{ id: 'c2', kind: 'cancel', to: alice.id, re: 'c1' }] });
      expect(taken.json.results).to.deep.equal([{ id: 'c2' }]);
      const again = await raw.poll({ messages: [{ id: 'c3', kind: 'cancel', to: alice.id, re: 'c1' }] });
      expect(again.json.results[0].error.code).to.equal('ERR_MAYBE_RAN');
      // A repeat of the request taken back is dropped, not queued anew.
      await raw.poll({ messages: [{ id: 'c1', kind: 'request', to: alice.id, path, jws }] });
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      const remote = await bob.connect(grant, { via: 'proxy' });
      expect(await remote.call('Probe', 'touch', ['after'])).to.equal('after');
      expect(probeRuns.count).to.equal(1);
    });
  });

  describe('Answers: what is kept for resends, within bounds', () => {
    class Log implements ReplayLog {
      readonly seen = new Map<string, RequestOutcome | null>();
      remember(id: string): boolean {
        if (this.seen.has(id)) return false;
        this.seen.set(id, null);
        return true;
      }
      prune(): void {}
      settle(id: string, outcome: RequestOutcome): void {
        this.seen.set(id, outcome);
      }
      outcome(id: string): RequestOutcome | null | undefined {
        return this.seen.get(id);
      }
    }
    const clock = new ManualClock(1_000_000);
    const claims = (id: string) => ({ id, iat: 1000, exp: 1030, aud: 'a', iss: 'b' });
    const ok = (text: string): HttpResponse => ({
      status: 200,
      contentType: 'application/jose',
      text,
      retryAfter: undefined,
    });

    it('an answer past the bytes a grant may keep is not kept: its resend is told it ran (ERR_ALREADY_RAN)', async () => {
      const log = new Log();
      const answers = new Answers(new ReplayWindow(log, clock), clock, { maxBytesPerGrant: 1000 });
      let runs = 0;
      const work = (text: string) => async () => {
        runs++;
        return ok(text);
      };
      await answers.once(claims('small'), 'k1', work('x'.repeat(100)));
      await answers.once(claims('big'), 'k1', work('y'.repeat(2000)));
      expect((await answers.once(claims('small'), 'k1', work('never'))).text).to.equal('x'.repeat(100));
      const err = await rejection(answers.once(claims('big'), 'k1', work('never')));
      expect([err.constructor, err.code]).to.deep.equal([WireError, 'ERR_ALREADY_RAN']);
      expect(runs).to.equal(2);
      // Another grant keeps its own share.
      await answers.once(claims('other'), 'k2', work('z'.repeat(900)));
      expect((await answers.once(claims('other'), 'k2', work('never'))).text).to.equal('z'.repeat(900));
    });

    it('after a restart: ran → ERR_ALREADY_RAN, admitted and never answered → ERR_MAYBE_RAN, refused → ERR_REPLAY', async () => {
      const log = new Log();
      log.seen.set('ran', 'ran');
      log.seen.set('lost', null);
      log.seen.set('refused', 'refused');
      const answers = new Answers(new ReplayWindow(log, clock), clock);
      const never = async () => {
        throw new Error('a resend ran');
      };
      const codes = [];
      for (const id of ['ran', 'lost', 'refused'])
        codes.push((await rejection(answers.once(claims(id), 'k', never))).code);
      expect(codes).to.deep.equal(['ERR_ALREADY_RAN', 'ERR_MAYBE_RAN', 'ERR_REPLAY']);
    });

    it('a refusal is kept as the answer too, and recorded as refused', async () => {
      const log = new Log();
      const answers = new Answers(new ReplayWindow(log, clock), clock);
      const refusal: HttpResponse = {
        status: 403,
        contentType: 'application/json',
        text: '{"error":{}}',
        retryAfter: undefined,
      };
      await answers.once(claims('r'), 'k', async () => refusal);
      expect(log.seen.get('r')).to.equal('refused');
      expect(await answers.once(claims('r'), 'k', async () => ok('no'))).to.equal(refusal);
    });

    it('forgets answers once no resend could pass the time check', async () => {
      const local = new ManualClock(1_000_000);
      const answers = new Answers(new ReplayWindow(new Log(), local), local);
      await answers.once(claims('old'), 'k', async () => ok('a'));
      expect(answers.stats.answers).to.equal(1);
      local.advance(200_000);
      await answers.once(claims('new'), 'k', async () => ok('b'));
      expect(answers.stats.answers).to.equal(1);
    });
  });
});
