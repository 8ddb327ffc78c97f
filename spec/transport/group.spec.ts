import { expect } from 'chai';
import {
  ManualClock,
  RemoteError,
  WireError,
  WtdError,
  WtdNode,
  WtdProxy,
  type MissionGroup,
} from '../../lib/index.js';
import { members, load, next, Cuttable, RATE, Worker, type Member } from '../fixtures/group.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { listed } from '../fixtures/proxy.js';

describe('WtdNode.group(mission, options): the nodes that granted a mission, as one', function () {
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
      1500,
      32,
      () => group.call('Worker', 'whoami'),
      (done) => {
        if (done !== 500) return;
        revoked.node.revoke(revoked.grant.kid);
        runsWhenRevoked = revoked.worker.runs;
      },
    );
    expect(errors).to.deep.equal([]);
    expect((await down).state).to.equal('left');
    expect(revoked.worker.runs).to.equal(runsWhenRevoked);
    expect(ids(group.members())).to.deep.equal(ids(c.members.slice(1).map((m) => ({ nodeId: m.node.id }))));
  });

  it('a member slowed by 50 ms gets fewer than 15 % of the calls (least busy: fewer calls in flight)', async () => {
    const c = await cluster(3);
    const slow = c.members[2]!;
    slow.worker.delayMs = 50;
    const group = c.caller.group('work', { members: c.members.map((m) => m.grant) });
    await group.ready();
    const errors = await load(900, 32, () => group.call('Worker', 'whoami'));
    expect(errors).to.deep.equal([]);
    expect(share(slow, 900)).to.be.below(0.15);
  });

  it('a member that cannot be reached is sidelined at once and its calls fail over; a probe brings it back', async () => {
    const clock = new ManualClock(Date.now());
    const c = await cluster(2, { wallClock: clock });
    const [first, second] = c.members as [Member, Member];
    // The second granted the caller's own key; the caller reaches it through a relay the spec can cut.
    await second.node.grant({ missions: ['work'], rate: RATE, to: c.caller.card() });
    const relay = new Cuttable(Number(new URL(second.node.address!).port));
    await relay.open();
    open.push({ close: () => relay.cut() });
    const group = c.caller.group('work', {
      pick: 'round-robin',
      members: [first.grant, { nodeKey: second.node.publicJwk, address: relay.address }],
    });
    await group.ready();
    expect(group.members()).to.have.length(2);

    await relay.cut();
    const down = next(group, 'member_down', second.node.id);
    expect(await load(20, 1, () => group.call('Worker', 'whoami'))).to.deep.equal([]);
    expect((await down).state).to.equal('sidelined');
    expect([first.worker.runs, second.worker.runs]).to.deep.equal([20, 0]);

    await relay.open();
    const up = next(group, 'member_up', second.node.id);
    clock.advance(1000);
    expect((await up).state).to.equal('up');
    expect(await load(10, 1, () => group.call('Worker', 'whoami'))).to.deep.equal([]);
    expect(second.worker.runs).to.equal(5);
  });

  it('with no member: ERR_NO_MEMBERS (WtdError); a grant of another mission, or a revoked one, makes no member', async () => {
    const c = await cluster(2);
    const [first, second] = c.members as [Member, Member];
    second.node.revoke(second.grant.kid);
    const none = c.caller.group('work', { members: [second.grant] });
    await none.ready();
    expect(none.members()).to.deep.equal([]);
    const err = await rejection(none.call('Worker', 'whoami'));
    expect([err instanceof WtdError, err.code]).to.deep.equal([true, 'ERR_NO_MEMBERS']);
    const other = c.caller.group('reports', { members: [first.grant] });
    await other.ready();
    const again = await rejection(other.call('Worker', 'whoami'));
    expect([again instanceof WtdError, again.code]).to.deep.equal([true, 'ERR_NO_MEMBERS']);
    expect(first.worker.runs + second.worker.runs).to.equal(0);
  });

  it('multicall: each member’s result or error (good and bad); a call that ran and failed is not retried', async () => {
    const c = await cluster(3);
    const group = c.caller.group('work', { members: c.members.map((m) => m.grant) });
    await group.ready();
    const [revoked] = c.members as [Member];
    revoked.node.revoke(revoked.grant.kid);
    const { good, bad } = await group.multicall<string>('Worker', 'whoami');
    expect(good.map((g) => g.value).sort()).to.deep.equal(['m1', 'm2']);
    expect(bad.map((b) => [b.nodeId, b.error instanceof WireError, (b.error as WireError).code])).to.deep.equal([
      [revoked.node.id, true, 'ERR_GRANT_REVOKED'],
    ]);
    expect(group.members()).to.have.length(2);

    const err = await rejection(group.call('Worker', 'boom'));
    expect([err instanceof RemoteError, err.code]).to.deep.equal([true, 'ERR_REMOTE_EXCEPTION']);
    expect(c.members.reduce((n, m) => n + m.worker.runs, 0)).to.equal(3);
  });

  it('genServer(name).call: a behaviour on the members, picked like a call', async () => {
    const c = await cluster(2);
    const group: MissionGroup = c.caller.group('work', {
      pick: 'round-robin',
      members: c.members.map((m) => m.grant),
    });
    await group.ready();
    const names = await Promise.all(Array.from({ length: 6 }, () => group.genServer('desk').call('who')));
    expect([...new Set(names)].sort()).to.deep.equal(['m0', 'm1']);
  });

  it('a node of the proxy directory that granted the mission to this node’s key joins through the proxy, and leaves when it goes offline', async () => {
    const proxy = await WtdProxy.start({
      dataDir: ':memory:',
      port: 0,
      logger: new MemoryLogger(),
      offlineAfterMs: 1500,
    });
    open.push(proxy);
    const c = await cluster(0);
    await c.caller.joinProxy({ url: proxy.url, email: 'caller@example.org' });
    const group = c.caller.group('work');
    await group.ready();
    expect(group.members()).to.deep.equal([]);

    const carol = await WtdNode.start({ name: 'carol', dataDir: ':memory:', logger: c.logger });
    open.push(carol);
    const worker = new Worker('carol');
    carol.load(worker);
    await carol.grant({ missions: ['work'], rate: RATE, to: c.caller.card() });
    const up = next(group, 'member_up', carol.id);
    await carol.joinProxy({ url: proxy.url, email: 'carol@example.org' });
    expect((await up).via).to.equal('proxy');
    expect(await group.call('Worker', 'whoami')).to.equal('carol');

    const down = next(group, 'member_down', carol.id, 'left');
    await carol.leaveProxy();
    expect((await down).state).to.equal('left');
    expect(group.members()).to.deep.equal([]);
  });
});
