import { expect } from 'chai';
import { WtdNode, WtdProxy } from '../../lib/index.js';
import { members, load, next, Worker, type Member } from '../fixtures/group.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { listed } from '../fixtures/proxy.js';

describe('WtdNode.group(mission, options) under load: spread, revoked and slow members', function () {
  this.timeout(20_000);
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });
  async function cluster(n: number, options: Parameters<typeof members>[1] = {}) {
    const c = await members(n, options);
    open.push(c.caller, ...c.members.map((m) => m.node));
    return c;
  }
  const ids = (ms: { nodeId: string }[]) => ms.map((m) => m.nodeId).sort();
  const share = (m: Member, total: number) => m.worker.runs / total;

  it('3 granting members share 3,000 calls at concurrency 32 (each 20–47 %, no error); an advertiser that granted nothing serves none', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger: new MemoryLogger() });
    open.push(proxy);
    const c = await cluster(3, { proxy });
    // A stranger on the same proxy offers `work` too, but granted this node nothing.
    const stranger = await WtdNode.start({ name: 'stranger', dataDir: ':memory:', logger: c.logger });
    open.push(stranger);
    const strangerWorker = new Worker('stranger');
    stranger.load(strangerWorker);
    await stranger.joinProxy({ url: proxy.url, email: 'stranger@example.org' });
    await c.caller.joinProxy({ url: proxy.url, email: 'caller@example.org' });
    const entry = await listed(c.caller, stranger.id);
    expect(entry.missions).to.include('work');

    const group = c.caller.group('work', { members: c.members.map((m) => m.grant) });
    expect(c.caller.group('work', { members: c.members.map((m) => m.grant) })).to.equal(group);
    await group.ready();
    expect(ids(group.members())).to.deep.equal(ids(c.members.map((m) => m.node.id).map((nodeId) => ({ nodeId }))));

    const errors = await load(3000, 32, () => group.call('Worker', 'whoami'));
    expect(errors).to.deep.equal([]);
    for (const m of c.members) expect(share(m, 3000)).to.be.within(0.2, 0.47);
    expect(c.members.reduce((n, m) => n + m.worker.runs, 0)).to.equal(3000);
    expect(strangerWorker.runs).to.equal(0);
  });

  it('a member revoked mid-load leaves at once (member_down, left): no call fails, and it runs none after', async () => {
    const c = await cluster(3);
    const group = c.caller.group('work', { members: c.members.map((m) => m.grant) });
    await group.ready();
    const [revoked] = c.members as [Member];
    const down = next(group, 'member_down', revoked.node.id);
    let runsWhenRevoked: number | undefined;
    const errors = await load(
      900,
      32,
      () => group.call('Worker', 'whoami'),
      (done) => {
        if (done !== 300) return;
        revoked.node.revoke(revoked.grant.kid);
        runsWhenRevoked = revoked.worker.runs;
      },
    );
    expect(errors).to.deep.equal([]);
    expect((await down).state).to.equal('left');
    expect(revoked.worker.runs).to.equal(runsWhenRevoked);
    expect(ids(group.members())).to.deep.equal(ids(c.members.slice(1).map((m) => ({ nodeId: m.node.id }))));
  });

  it('a member slowed by 50 ms gets fewer than 15 % of the calls (least busy: calls in flight weighed by round trip)', async () => {
    const c = await cluster(3);
    const slow = c.members[2]!;
    slow.worker.delayMs = 50;
    const group = c.caller.group('work', { members: c.members.map((m) => m.grant) });
    await group.ready();
    // 8 at a time: the others answer in a few ms, so the 50 ms set this member apart (at 32, every
    // answer in this one process queues for tens of ms behind the CPU the others' calls take).
    const errors = await load(600, 8, () => group.call('Worker', 'whoami'));
    expect(errors).to.deep.equal([]);
    expect(share(slow, 600)).to.be.below(0.15);
  });
});
