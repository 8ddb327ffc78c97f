import { expect } from 'chai';
import { ManualClock, WtdProxy } from '../../lib/index.js';
import { newEphemeral } from '../../lib/wire/session.js';
import { HOSTILE, signedFor, type HostileTarget } from '../fixtures/hostile.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';
import { probeRuns, put, twoNodes } from '../fixtures/remote.js';

/** Alice's apply tree, under the grant she made to Bob. */
async function nodeTarget(): Promise<{ target: HostileTarget; close(): Promise<void> }> {
  const nodes = await twoNodes();
  const target: HostileTarget = {
    server: 'node',
    url: nodes.alice.address!,
    // The signed request a node with encryption on takes: the first of a session.
    path: '/session',
    typ: 'wtd-call+jws',
    aud: nodes.alice.id,
    iss: nodes.bob.id,
    kid: nodes.grant.kid,
    privateJwk: nodes.grant.privateJwk,
    body: () => ({ epk: newEphemeral().publicKey }),
    clock: nodes.clock,
    maxBodyBytes: 64 * 1024,
    state: () => ({
      runs: probeRuns.count,
      uses: nodes.alice.grants().map((g) => g.uses),
      sessions: nodes.alice.sessionStats().server,
    }),
  };
  return {
    target,
    close: async () => {
      await nodes.alice.close();
      await nodes.bob.close();
    },
  };
}

/** A registered node's ping at the proxy. */
async function proxyTarget(): Promise<{ target: HostileTarget; close(): Promise<void> }> {
  const clock = new ManualClock(Date.now());
  const proxy = await WtdProxy.start({
    dataDir: ':memory:',
    port: 0,
    logger: new MemoryLogger(),
    wallClock: clock,
    maxBodyBytes: 64 * 1024,
  });
  const raw = await RawClient.register(proxy, 'raw@example.org', clock);
  let pings = 0;
  const target: HostileTarget = {
    server: 'proxy',
    url: proxy.url,
    path: `/nodes/${raw.id}/ping`,
    typ: 'wtd-proxy+jws',
    aud: proxy.id,
    iss: raw.id,
    kid: raw.keys.thumbprint,
    privateJwk: raw.keys.privateKey.export({ format: 'jwk' }) as HostileTarget['privateJwk'],
    // Each accepted ping publishes a new mission list, so it shows in the state.
    body: () => ({ missions: [`m${++pings}`], grants: [], address: null }),
    clock,
    maxBodyBytes: 64 * 1024,
    state: () => proxy.status().nodes.map((n) => [n.id, n.online, n.missions]),
  };
  return { target, close: () => proxy.close() };
}

for (const [server, make] of [
  ['node', nodeTarget],
  ['proxy', proxyTarget],
] as const) {
  describe(`authenticate(jws, expected) on the ${server}: one list of hostile requests, refused before anything changes`, () => {
    let t: HostileTarget;
    let close: () => Promise<void>;
    before(async () => {
      ({ target: t, close } = await make());
      probeRuns.count = 0;
    });
    after(() => close());

    it('a properly signed request is accepted (the control case)', async () => {
      const before = JSON.stringify(t.state());
      const res = await put(t.url + t.path, signedFor(t));
      expect(res.status, res.text).to.equal(200);
      expect(JSON.stringify(t.state())).to.not.equal(before);
    });

    for (const c of HOSTILE.filter((h) => h.only === undefined || h.only === server)) {
      const code = typeof c.code === 'string' ? c.code : c.code(server);
      it(`${c.name}: ${c.status} ${code}`, async () => {
        const req = await c.make(t);
        const before = JSON.stringify(t.state());
        const res = await put(t.url + t.path, req.body, req.headers);
        expect([res.status, res.code]).to.deep.equal([c.status, code]);
        expect(JSON.stringify(t.state()), 'a refused request changed something').to.equal(before);
      });
    }
  });
}
