import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ManualClock, WtdProxy, type ProxyOptions } from '../../lib/index.js';
import { sourceOf } from '../../lib/proxy/registry.js';
import { newKeyPair } from '../../lib/security/keys.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { RawClient } from '../fixtures/proxy.js';

/** The source address of an attacker's sockets; the honest ones come from 127.0.0.1. */
const ATTACKER = '127.0.0.2';

describe('WtdProxy registrations: bounded, one key per e-mail, forgotten when unseen', () => {
  let proxy: WtdProxy | undefined;
  let clock: ManualClock;
  let dir: string;
  beforeEach(() => {
    clock = new ManualClock(Date.now());
    dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
  });
  afterEach(async () => {
    await proxy?.close();
    proxy = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(options: Partial<ProxyOptions> = {}): Promise<WtdProxy> {
    proxy = await WtdProxy.start({
      dataDir: ':memory:',
      port: 0,
      logger: new MemoryLogger(),
      wallClock: clock,
      pollHoldMs: 100,
      ...options,
    });
    return proxy;
  }

  /** Registers a fresh key with `email` from `from`; the answer's status and code. */
  async function register(p: WtdProxy, email: string, from?: string) {
    const raw = new RawClient(p, await newKeyPair(), clock, 100, from);
    const res = await raw.put('/register', { email, name: 'x', publicJwk: raw.keys.publicJwk });
    return { raw, status: res.status, code: res.code };
  }

  it('registrations are bounded in total (maxNodes): ERR_PROXY_FULL (503); a registered key may register again', async () => {
    const p = await start({ maxNodes: 3 });
    const first = await register(p, 'a@example.org');
    await register(p, 'b@example.org');
    await register(p, 'c@example.org');
    expect(await register(p, 'd@example.org')).to.deep.include({ status: 503, code: 'ERR_PROXY_FULL' });
    const again = await first.raw.put('/register', { email: 'a@example.org', publicJwk: first.raw.keys.publicJwk });
    expect(again.status).to.equal(200);
    expect(p.status().total).to.equal(3);
  });

  it('registrations are bounded per source network (maxNodesPerSource): an attacker’s address is full, others still register', async () => {
    const p = await start({ maxNodesPerSource: 2, dataDir: dir });
    expect((await register(p, 'x1@example.org', ATTACKER)).status).to.equal(200);
    expect((await register(p, 'x2@example.org', ATTACKER)).status).to.equal(200);
    expect(await register(p, 'x3@example.org', ATTACKER)).to.deep.include({ status: 503, code: 'ERR_PROXY_FULL' });
    expect((await register(p, 'alice@example.org')).status).to.equal(200);
    // Where each came from is kept: after a restart the attacker's address is still full.
    await p.close();
    const again = await start({ maxNodesPerSource: 2, dataDir: dir });
    expect(await register(again, 'x4@example.org', ATTACKER)).to.deep.include({ status: 503, code: 'ERR_PROXY_FULL' });
    expect((await register(again, 'bob@example.org')).status).to.equal(200);
  });

  it('sourceOf counts an IPv4 address, or an IPv6 /64', () => {
    expect(
      [
        '127.0.0.2',
        '::ffff:127.0.0.2',
        '2001:db8:0:1:2:3:4:5',
        '2001:db8:0:1::9',
        '2001:0db8:0000:0001:ffff::1',
        '::1',
        undefined,
      ].map(sourceOf),
    ).to.deep.equal([
      '127.0.0.2',
      '127.0.0.2',
      '2001:db8:0:1::/64',
      '2001:db8:0:1::/64',
      '2001:db8:0:1::/64',
      '0:0:0:0::/64',
      'unknown',
    ]);
  });

  it('one key per e-mail, whatever its case: a second key is refused with ERR_PROXY_EMAIL_TAKEN (409)', async () => {
    const p = await start();
    const alice = await register(p, 'alice@example.org');
    expect(alice.status).to.equal(200);
    expect(await register(p, 'alice@example.org')).to.deep.include({ status: 409, code: 'ERR_PROXY_EMAIL_TAKEN' });
    expect(await register(p, 'Alice@Example.ORG', ATTACKER)).to.deep.include({
      status: 409,
      code: 'ERR_PROXY_EMAIL_TAKEN',
    });
    // Her key may register again, and move to an e-mail nobody has; the old one is free then.
    const moved = await alice.raw.put('/register', {
      email: 'alice@example.net',
      name: 'alice',
      publicJwk: alice.raw.keys.publicJwk,
    });
    expect(moved.status).to.equal(200);
    expect((await register(p, 'alice@example.org')).status).to.equal(200);
    expect(
      p
        .status()
        .nodes.map((n) => n.name)
        .sort(),
    ).to.deep.equal(['alice', 'x']);
  });

  it('a registration unseen for forgetAfterMs goes, with its queue; its key must register again', async () => {
    const p = await start({ forgetAfterMs: 10_000 });
    const ann = await RawClient.register(p, 'ann@example.org', clock);
    const tess = await RawClient.register(p, 'tess@example.org', clock);
    await tess.accept(ann.kid);
    await ann.poll({ messages: [RawClient.request('m1', tess.id, ann.kid)] });
    expect(p.status().nodes.find((n) => n.id === tess.id)!.queued).to.equal(1);
    clock.advance(6000);
    await ann.accept(); // Ann is seen; Tess is not
    clock.advance(5000);
    expect(p.status().nodes.map((n) => n.id)).to.deep.equal([ann.id]);
    expect(p.status().queuedBytes).to.be.below(400); // Ann's message went with Tess's queue, but its kept id
    const ping = await tess.put(`/nodes/${tess.id}/ping`, {});
    expect([ping.status, ping.code]).to.deep.equal([401, 'ERR_PROXY_NOT_REGISTERED']);
    const gone = (await ann.poll({ messages: [RawClient.request('m2', tess.id, ann.kid)] })).json.results[0];
    expect(gone.error.code).to.equal('ERR_PROXY_NOT_REGISTERED');
    // Forgotten is not banned: it registers again, with nothing.
    const back = await tess.put('/register', { email: 'tess@example.org', publicJwk: tess.keys.publicJwk });
    expect(back.status).to.equal(200);
    expect(p.status().nodes.find((n) => n.id === tess.id)!.queued).to.equal(0);
  });
});
