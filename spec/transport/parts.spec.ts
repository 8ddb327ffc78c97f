import { expect } from 'chai';
import {
  BEHAVIOUR_OP_TABLE,
  CallTimeoutError,
  ManualClock,
  RateLimitedError,
  WireError,
  type Pid,
} from '../../lib/index.js';
import type { HttpResponse } from '../../lib/transport/http-client.js';
import type { Link } from '../../lib/transport/link.js';
import { Outbound, REQUESTS_PER_LINK } from '../../lib/transport/outbound.js';
import { newClaims } from '../../lib/wire/claims.js';
import { WireCodec } from '../../lib/wire/codec.js';
import { flush, rejection } from '../fixtures/helpers.js';
import { probeRuns, put, signRaw, withTwoNodes } from '../fixtures/remote.js';

/** A link whose requests are answered only when the spec says so. */
function heldLink(): { link: Link; sent: string[]; answerAll(): void } {
  const sent: string[] = [];
  const waiting: ((res: HttpResponse) => void)[] = [];
  const link: Link = {
    key: 'held',
    request: (path) => {
      sent.push(path);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
  const ok: HttpResponse = { status: 204, contentType: '', retryAfter: undefined, text: '' };
  return { link, sent, answerAll: () => waiting.splice(0).forEach((r) => r(ok)) };
}

describe('Outbound.request(link, path, jws, { startedAt, timeout })', () => {
  it("counts the caller's timeout from the call: a request that waited its turn past it fails and is never sent", async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const outbound = new Outbound(clock);
    const { link, sent, answerAll } = heldLink();
    const call = () =>
      outbound.request(link, `/apply/M/f${sent.length}`, 'jws', { startedAt: clock.now(), timeout: 1000 });
    const busy = Array.from({ length: REQUESTS_PER_LINK }, call);
    const late = rejection(call());
    expect(sent).to.have.length(REQUESTS_PER_LINK);
    clock.advance(1000);
    const err = await late;
    expect(err).to.be.instanceOf(CallTimeoutError);
    expect([err.code, err.timeout]).to.deep.equal(['ERR_CALL_TIMEOUT', 1000]);
    answerAll();
    await Promise.all(busy);
    await outbound.onIdle();
    // Its turn came after its deadline: it was dropped, not sent.
    expect(sent).to.have.length(REQUESTS_PER_LINK);
    expect(outbound.size).to.equal(0);
  });
});

describe('WtdNode: what is kept per grant goes with the grant', () => {
  const nodes = withTwoNodes({ encryption: false });

  it("after a revocation the grantee's key is forgotten: its pid messages are refused as from an unknown key", async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    let got: unknown;
    nodes.alice.spawn(
      async (self) => {
        got = await self.receive();
      },
      { name: 'inbox' },
    );
    const pid = await remote.call<Pid>('Probe', 'mailbox');
    nodes.alice.revoke(nodes.grant.kid);
    // Bob's node sends with the grant's key; a hand-made copy shows the refusal's code.
    const path = `/pid/${pid.id}`;
    const codec = new WireCodec();
    const claims = newClaims<'pid'>(nodes.clock, {
      aud: nodes.alice.id,
      iss: nodes.bob.id,
      method: 'PUT',
      path,
      body: { token: 'whatever', msg: codec.encode('late') },
    });
    const jws = await signRaw(nodes.grant.privateJwk, { typ: 'wtd-pid+jws', kid: nodes.grant.kid }, claims as never);
    const res = await put(nodes.alice.address + path, jws);
    expect([res.status, res.code]).to.deep.equal([401, 'ERR_UNKNOWN_KEY']);
    nodes.bob.send(pid, 'also late');
    await nodes.bob.onIdle();
    await flush();
    expect(got).to.equal(undefined);
  });

  it('a call over the rate fails in the caller with RateLimitedError and its retryAfterS', async () => {
    const tight = await nodes.alice.grant({ missions: ['probe'], rate: { count: 1, intervalMs: 5000, burst: 1 } });
    const remote = await nodes.bob.connect(tight);
    expect(await remote.call('Probe', 'touch', [1])).to.equal(1);
    const err = await rejection(remote.call('Probe', 'touch', [2]));
    expect(err).to.be.instanceOf(RateLimitedError);
    expect(err).to.be.instanceOf(WireError);
    expect([err.code, err.status, err.retryAfterS]).to.deep.equal(['ERR_RATE_LIMITED', 429, 5]);
    nodes.clock.advance(5000);
    expect(await remote.call('Probe', 'touch', [3])).to.equal(3);
  });
});

describe('BEHAVIOUR_OP_TABLE: the one table of behaviour operations', () => {
  const nodes = withTwoNodes({ encryption: false });

  it('every operation has its client method, in camelCase, on RemoteNode.behaviour(kind, mission, name)', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    for (const [kind, ops] of Object.entries(BEHAVIOUR_OP_TABLE)) {
      const client = remote.behaviour(kind as keyof typeof BEHAVIOUR_OP_TABLE, 'probe', 'x');
      const expected = Object.keys(ops).map((op) => op.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
      expect(Object.keys(client), kind).to.deep.equal(expected);
    }
  });

  it('a GenStatem exposed with @WtdBehaviour: call and cast (RemoteNode.genStatem)', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const door = remote.genStatem('probe', 'door');
    expect(await door.call('open')).to.equal('open');
    await door.cast('knock');
    await door.cast('knock');
    expect(await door.call('knocks')).to.equal(2);
    expect(await door.call('close')).to.equal('closed');
    const err = await rejection(remote.genStatem('probe', 'pool').call('x'));
    expect([err.status, err.code]).to.deep.equal([403, 'ERR_MISSION_NOT_GRANTED']);
  });

  it('an operation whose callback the class does not define is refused before dispatch: ERR_NOT_SUPPORTED', async () => {
    const remote = await nodes.bob.connect(nodes.grant);
    const echo = remote.genServer('probe', 'echo'); // Echo defines handleCall, not handleCast
    const before = nodes.alice.rateState(nodes.grant.kid)!.tokens;
    const err = await rejection(echo.cast('boom'));
    expect(err).to.be.instanceOf(WireError);
    expect([err.status, err.code]).to.deep.equal([404, 'ERR_NOT_SUPPORTED']);
    expect(nodes.alice.rateState(nodes.grant.kid)!.tokens).to.equal(before);
    // The server is still there, and what it does define still works.
    expect(await echo.call('hi')).to.deep.equal({ echo: 'hi', n: 1 });
    const toggle = remote.genFsm('probe', 'toggle'); // Toggle defines its states, not handleEvent
    expect((await rejection(toggle.sendAllStateEvent('x'))).code).to.equal('ERR_NOT_SUPPORTED');
    expect(await toggle.syncSendEvent('flip')).to.equal('on');
  });

  it('a request with another number of arguments than the operation takes is refused before it runs: ERR_BAD_ARITY', async () => {
    const path = '/behaviour/probe/echo/call';
    const sign = (args: unknown[]) =>
      signRaw(
        nodes.grant.privateJwk,
        { typ: 'wtd-call+jws', kid: nodes.grant.kid },
        newClaims<'call'>(nodes.clock, {
          aud: nodes.alice.id,
          iss: nodes.bob.id,
          method: 'PUT',
          path,
          body: new WireCodec().encode(args),
        }) as never,
      );
    for (const args of [[], ['a', 'b']]) {
      const res = await put(nodes.alice.address + path, await sign(args));
      expect([res.status, res.code], JSON.stringify(args)).to.deep.equal([400, 'ERR_BAD_ARITY']);
    }
    expect(probeRuns.count).to.equal(0);
    expect((await put(nodes.alice.address + path, await sign(['hi']))).status).to.equal(200);
    expect(probeRuns.count).to.equal(1);
  });
});
