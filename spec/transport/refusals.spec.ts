import { expect } from 'chai';
import { WireCodec } from '../../lib/wire/codec.js';
import { newMessageId } from '../../lib/wire/claims.js';
import { put, signRaw, probeRuns, twoNodes } from '../fixtures/remote.js';

const codec = new WireCodec();

// The checks of the envelope (shape, alg, signature, audience, path, time,
// replay, size, type) are one pipeline shared with the proxy: their hostile
// requests are in spec/security/authenticate.spec.ts, run against both.
describe('WtdNode server: what only a node checks (grants, missions, rate, arguments) refuses before user code', () => {
  let nodes: Awaited<ReturnType<typeof twoNodes>>;
  let url: string;
  const path = '/apply/Probe/touch';
  const header = () => ({ typ: 'wtd-call+jws', kid: nodes.grant.kid });
  const claims = (over: Record<string, unknown> = {}) => {
    const nowS = Math.floor(nodes.clock.now() / 1000);
    return {
      id: newMessageId(),
      iat: nowS,
      exp: nowS + 30,
      aud: nodes.alice.id,
      iss: 'bob',
      method: 'PUT',
      path,
      body: codec.encode(['x']),
      ...over,
    };
  };
  const signed = (over: Record<string, unknown> = {}, hdr: Record<string, unknown> = {}) =>
    signRaw(nodes.grant.privateJwk, { ...header(), ...hdr }, claims(over));

  beforeEach(async () => {
    nodes = await twoNodes({ encryption: false });
    url = nodes.alice.address + path;
    probeRuns.count = 0;
  });
  afterEach(async () => {
    await nodes.alice.close();
    await nodes.bob.close();
  });

  /** Uses of every grant, to show a refusal changed nothing. */
  const uses = () => nodes.alice.grants().map((g) => g.uses);

  /** Sends a request and checks it was refused with `status` and `code`, running no user code and changing no grant. */
  async function refused(
    res:
      | Promise<{ status: number; code: string | undefined }>
      | (() => Promise<{ status: number; code: string | undefined }>),
    status: number,
    code: string,
  ) {
    const runs = probeRuns.count;
    const before = uses();
    const r = await (typeof res === 'function' ? res() : res);
    expect([r.status, r.code]).to.deep.equal([status, code]);
    expect(probeRuns.count, 'user code ran').to.equal(runs);
    expect(uses(), 'a grant was used').to.deep.equal(before);
  }

  it('a properly signed request is accepted (the control case)', async () => {
    const res = await put(url, await signed());
    expect(res.status).to.equal(200);
    expect(probeRuns.count).to.equal(1);
    expect(uses()).to.deep.equal([1]);
  });

  it('an unknown key, a revoked grant and an expired grant are refused', async () => {
    const stranger = await nodes.alice.grant({ missions: ['probe'], rate: '1/s' });
    nodes.alice.revoke(stranger.kid);
    await refused(
      put(url, await signRaw(stranger.privateJwk, { typ: 'wtd-call+jws', kid: 'no-such-key' }, claims())),
      401,
      'ERR_UNKNOWN_KEY',
    );
    await refused(
      async () => put(url, await signRaw(stranger.privateJwk, { typ: 'wtd-call+jws', kid: stranger.kid }, claims())),
      403,
      'ERR_GRANT_REVOKED',
    );
    const brief = await nodes.alice.grant({ missions: ['probe'], rate: '1/s', expires: 1000 });
    nodes.clock.advance(1000);
    await refused(
      async () => put(url, await signRaw(brief.privateJwk, { typ: 'wtd-call+jws', kid: brief.kid }, claims())),
      403,
      'ERR_GRANT_EXPIRED',
    );
  });

  it('a mission the grant does not cover is refused, including prototype names', async () => {
    await refused(
      async () => put(nodes.alice.address + '/apply/Probe/secret', await signed({ path: '/apply/Probe/secret' })),
      403,
      'ERR_MISSION_NOT_GRANTED',
    );
    await refused(async () => put(url, await signed({ mission: 'other' })), 403, 'ERR_MISSION_NOT_GRANTED');
    await refused(async () => put(url, await signed({ mission: '__proto__' })), 403, 'ERR_MISSION_NOT_GRANTED');
    await refused(async () => put(url, await signed({ mission: 'constructor' })), 403, 'ERR_MISSION_NOT_GRANTED');
    const proto = '/behaviour/__proto__/echo/call';
    await refused(
      async () => put(nodes.alice.address + proto, await signed({ path: proto })),
      403,
      'ERR_MISSION_NOT_GRANTED',
    );
    const ctor = '/apply/Probe/constructor';
    await refused(
      async () => put(nodes.alice.address + ctor, await signed({ path: ctor })),
      403,
      'ERR_MISSION_NOT_GRANTED',
    );
  });

  it('over the rate: 429 with Retry-After, and failed authentication spends no tokens', async () => {
    const tight = await nodes.alice.grant({ missions: ['probe'], rate: { count: 1, intervalMs: 60_000, burst: 2 } });
    const sign = (over: Record<string, unknown> = {}, kid = tight.kid) =>
      signRaw(tight.privateJwk, { typ: 'wtd-call+jws', kid }, claims(over));
    // Failures before the rate check do not spend the grant's tokens...
    for (let i = 0; i < 5; i++)
      await refused(async () => put(url, await sign({ aud: 'someone-else' })), 401, 'ERR_WRONG_AUDIENCE');
    // ...so its burst of two is still there.
    expect((await put(url, await sign())).status).to.equal(200);
    expect((await put(url, await sign())).status).to.equal(200);
    const over = await put(url, await sign());
    expect([over.status, over.code]).to.deep.equal([429, 'ERR_RATE_LIMITED']);
    expect(Number(over.headers.get('retry-after'))).to.be.greaterThan(0);
    expect(probeRuns.count).to.equal(2);
    // One token comes back per interval, on the node's clock.
    nodes.clock.advance(60_000);
    expect((await put(url, await sign())).status).to.equal(200);
    const again = await put(url, await sign());
    expect([again.status, again.code]).to.deep.equal([429, 'ERR_RATE_LIMITED']);
    expect(probeRuns.count).to.equal(3);
  });

  it('hostile superjson meta is refused with 400', async () => {
    const hostile = [
      { json: ['x'], meta: { values: { 0: [['class', 'Thing']] }, v: 1 } },
      { json: ['x'], meta: { values: { 0: ['regexp'] }, v: 1 } },
      { json: [{}], meta: { values: { '0.__proto__.polluted': ['undefined'] }, v: 1 } },
      { json: [{}, {}], meta: { referentialEqualities: { 0: ['1'] }, v: 1 } },
      { json: ['x'], meta: { values: { 0: [['custom', 'Buffer']] }, v: 1 } },
      { json: 'not an array' },
    ];
    for (const body of hostile) await refused(async () => put(url, await signed({ body })), 400, 'ERR_BAD_ARGUMENTS');
    expect(({} as Record<string, unknown>).polluted).to.equal(undefined);
  });

  it('anything that is not a PUT to a known route is a JSON 404/405 with a code', async () => {
    const res = await fetch(nodes.alice.address + '/nothing', { method: 'PUT' });
    expect(res.status).to.equal(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('ERR_NOT_FOUND');
    const get = await fetch(url);
    expect(get.status).to.equal(405);
    expect(((await get.json()) as { error: { code: string } }).error.code).to.equal('ERR_METHOD_NOT_ALLOWED');
  });
});
