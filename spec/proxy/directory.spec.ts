import { expect } from 'chai';
import { ManualClock, WtdProxy, type DirectoryEntry, type ProxyOptions } from '../../lib/index.js';
import { closeAll, cluster, listed, RawClient, unlisted, type Cluster, manualProxy } from '../fixtures/proxy.js';

interface Answer {
  cursor: string;
  reset: boolean;
  more: boolean;
  changes: DirectoryEntry[];
}

describe('WtdProxy ping: bounded, and a directory of changes', () => {
  let proxy: WtdProxy;
  let clock: ManualClock;
  async function start(options: Partial<ProxyOptions> = {}): Promise<void> {
    ({ proxy, clock } = await manualProxy({ ...options }));
  }
  afterEach(() => proxy?.close());

  async function ping(raw: RawClient, body: Record<string, unknown> = {}): Promise<Answer> {
    const res = await raw.put(`/nodes/${raw.id}/ping`, body);
    expect(res.status, res.text).to.equal(200);
    return JSON.parse(res.text) as Answer;
  }

  it('a ping carries at most maxMissions missions, maxAccepts key ids and maxPingBytes: ERR_PROXY_TOO_LARGE (413)', async () => {
    await start({ maxMissions: 2, maxAccepts: 3, maxPingBytes: 600 });
    const raw = await RawClient.register(proxy, 'raw@example.org', clock);
    // The registration's answer names the bounds, so an honest node keeps to them.
    const again = await raw.put('/register', { email: 'raw@example.org', publicJwk: raw.keys.publicJwk });
    expect(JSON.parse(again.text).limits).to.deep.equal({ missions: 2, accepts: 3, bytes: 600 });
    const kid = (i: number) => `k${i}`.padEnd(43, 'x');
    for (const body of [
      { missions: ['a', 'b', 'c'] },
      { accepts: [kid(1), kid(2), kid(3), kid(4)] },
      { missions: ['a', 'b'], accepts: [kid(1), kid(2), kid(3)], name: 'n'.repeat(500) },
    ]) {
      const res = await raw.put(`/nodes/${raw.id}/ping`, body);
      expect([res.status, res.code], JSON.stringify(body).slice(0, 60)).to.deep.equal([413, 'ERR_PROXY_TOO_LARGE']);
    }
    await ping(raw, { missions: ['a', 'b'], accepts: [kid(1), kid(2), kid(3)] });
    expect(proxy.status().nodes[0]).to.deep.include({ missions: ['a', 'b'], accepts: 3 });
  });

  it('an answer carries the changes since the ping’s cursor: nothing when nothing changed', async () => {
    await start({ offlineAfterMs: 1500 });
    const ann = await RawClient.register(proxy, 'ann@example.org', clock);
    const ben = await RawClient.register(proxy, 'ben@example.org', clock);
    const first = await ping(ann);
    expect([first.reset, first.more, first.changes.map((e) => e.id)]).to.deep.equal([true, false, [ann.id]]);
    const quiet = await ping(ann, { since: first.cursor });
    expect([quiet.reset, quiet.changes]).to.deep.equal([false, []]);
    await ping(ben, { missions: ['greetings'] });
    const up = await ping(ann, { since: quiet.cursor });
    expect(up.changes.map((e) => [e.id, e.online, e.missions])).to.deep.equal([[ben.id, true, ['greetings']]]);
    // Ben pings again with the same offer: nothing new for Ann; then he changes it.
    await ping(ben, { missions: ['greetings'] });
    const same = await ping(ann, { since: up.cursor });
    expect(same.changes).to.deep.equal([]);
    expect(JSON.stringify(same).length).to.be.below(120);
    await ping(ben, { missions: ['greetings', 'maths'] });
    const changed = await ping(ann, { since: same.cursor });
    expect(changed.changes.map((e) => [e.id, e.missions])).to.deep.equal([[ben.id, ['greetings', 'maths']]]);
    // Ben goes silent: offline at the sweep, and Ann hears it once.
    clock.advance(1000);
    await ping(ann, { since: changed.cursor });
    clock.advance(1000);
    const down = await ping(ann, { since: changed.cursor });
    expect(down.changes.map((e) => [e.id, e.online])).to.deep.equal([[ben.id, false]]);
    // A cursor the proxy does not know gets the whole directory (those online) again.
    const lost = await ping(ann, { since: 'not.7' });
    expect([lost.reset, lost.changes.map((e) => e.id)]).to.deep.equal([true, [ann.id]]);
  });

  it('an answer lists at most directoryPage entries; the next ones follow from its cursor', async () => {
    await start({ directoryPage: 2 });
    const raws: RawClient[] = [];
    for (let i = 0; i < 5; i++) raws.push(await RawClient.register(proxy, `n${i}@example.org`, clock));
    for (const r of raws) await ping(r);
    const reader = raws[0]!;
    const seen: string[] = [];
    let answer = await ping(reader);
    expect([answer.reset, answer.more, answer.changes.length]).to.deep.equal([true, true, 2]);
    seen.push(...answer.changes.map((e) => e.id));
    for (let pages = 1; answer.more && pages < 10; pages++) {
      answer = await ping(reader, { since: answer.cursor });
      expect(answer.changes.length).to.be.at.most(2);
      seen.push(...answer.changes.map((e) => e.id));
    }
    expect(seen.sort()).to.deep.equal(raws.map((r) => r.id).sort());
  });
});

describe('node.directory() over a directory of changes', () => {
  let c: Cluster;
  afterEach(() => closeAll(c.bob, c.carol, c.alice, c.proxy));

  it('reads every page at each ping: all nodes listed, nodeup for each, nodedown once when one leaves', async () => {
    c = await cluster({ directoryPage: 1, offlineAfterMs: 2000 });
    await listed(c.bob, c.alice.id);
    await listed(c.bob, c.carol.id);
    expect(
      c.bob
        .directory()
        .map((e) => e.name)
        .sort(),
    ).to.deep.equal(['alice', 'bob', 'carol']);
    const downs: string[] = [];
    c.bob.on('nodedown', (e) => downs.push(e.id));
    const gone = unlisted(c.bob, c.carol.id);
    await c.carol.leaveProxy();
    expect((await gone).online).to.equal(false);
    expect(
      c.bob
        .directory()
        .map((e) => e.name)
        .sort(),
    ).to.deep.equal(['alice', 'bob']);
    expect(downs).to.deep.equal([c.carol.id]);
  });
});
