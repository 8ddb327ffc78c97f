import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ManualClock, WtdNode, WtdProxy } from '../../lib/index.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { closeAll } from '../fixtures/proxy.js';
import { Probe, probeRuns } from '../fixtures/remote.js';

describe('WtdNode on a proxy: what its ping says it accepts', () => {
  const logger = new MemoryLogger();
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wtd-proxy-'));
    probeRuns.count = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a grant made by another program on Alice’s machine is accepted at her next ping; the call is sent again meanwhile', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    // Alice's pings come when her clock says so.
    const clock = new ManualClock(Date.now());
    const alice = await WtdNode.start({ name: 'alice', dataDir: join(dir, 'alice'), logger, wallClock: clock });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      // `wtd grant` beside her running node: same data directory, another program; her node hears nothing of it.
      const cli = await WtdNode.start({ name: 'alice', dataDir: join(dir, 'alice'), logger, shared: true });
      const grant = await cli.grant({ missions: ['probe'], rate: '10/s' });
      await cli.close();
      const remote = await bob.connect(grant, { via: 'proxy' });
      const call = remote.call('Probe', 'touch', ['late grant'], { timeout: 8000 });
      await proxy.until((s) => s.refused >= 1); // not (yet) accepted
      clock.advance(1000); // her next ping names the grant
      expect(await call).to.equal('late grant');
      expect(probeRuns.count).to.equal(1);
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('a revoked grant is still named for a day, so its holder hears ERR_GRANT_REVOKED from the node, not the proxy', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger });
    const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    try {
      alice.load(Probe);
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org' });
      const grant = await alice.grant({ missions: ['probe'], rate: '10/s' });
      const remote = await bob.connect(grant);
      expect(await remote.call('Probe', 'touch', [1])).to.equal(1);
      alice.revoke(grant.kid);
      await alice.grant({ missions: ['probe'], rate: '1/s' }); // a grant pings at once: the revocation is known
      expect(proxy.status().nodes.find((n) => n.id === alice.id)!.accepts).to.equal(2);
      const err = await rejection(remote.call('Probe', 'touch', [2]));
      expect([err.code, err.status]).to.deep.equal(['ERR_GRANT_REVOKED', 403]);
      expect(probeRuns.count).to.equal(1);
    } finally {
      await closeAll(bob, alice, proxy);
    }
  });

  it('names at most what the proxy takes in a ping (usable grants first), says so once, and stays online', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger, maxAccepts: 2 });
    const own = new MemoryLogger();
    const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:', logger: own });
    try {
      await alice.joinProxy({ url: proxy.url, email: 'alice@example.org' });
      for (let i = 0; i < 3; i++) await alice.grant({ missions: ['probe'], rate: '1/s' });
      const before = Date.now();
      await alice.grant({ missions: ['probe'], rate: '1/s' }); // its ping went through, with two of the four
      const status = proxy.status().nodes.find((n) => n.id === alice.id)!;
      expect([status.online, status.accepts]).to.deep.equal([true, 2]);
      expect(status.lastSeen).to.be.at.least(before);
      expect(own.lines.filter((l) => l.includes('keys were left out'))).to.have.length(1);
    } finally {
      await closeAll(alice, proxy);
    }
  });
});
