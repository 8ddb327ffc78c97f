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
    // A kept-alive socket the relay just reset may take the first request before its caller sees the
    // reset (ERR_MAYBE_RAN rather than ERR_NODE_DOWN): whoami may run twice, so it is said to be idempotent.
    const whoami = () => group.call('Worker', 'whoami', [], { idempotent: true });
    expect(await load(20, 1, whoami)).to.deep.equal([]);
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

  it('closing the node closes its groups: ERR_NO_MEMBERS; misuse is a TypeError or RangeError', async () => {
    const c = await cluster(1);
    const group = c.caller.group('work', { members: [c.members[0]!.grant] });
    await group.ready();
    expect(() => c.caller.group('')).to.throw(TypeError);
    expect(() => c.caller.group('work', { probeEveryMs: 0 })).to.throw(RangeError);
    const zero = await rejection(group.call('Worker', 'whoami', [], { timeout: 0 }));
    expect(zero).to.be.instanceOf(RangeError);
    await c.caller.close();
    const err = await rejection(group.call('Worker', 'whoami'));
    expect([err instanceof WtdError, err.code]).to.deep.equal([true, 'ERR_NO_MEMBERS']);
    expect(() => c.caller.group('work'))
      .to.throw(WtdError)
      .with.property('code', 'ERR_NO_MEMBERS');
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

  it('the nodes this node connected to are members; genServer(name).call: a behaviour on them, picked like a call', async () => {
    const c = await cluster(2);
    for (const m of c.members) await c.caller.connect(m.grant);
    const group: MissionGroup = c.caller.group('work', { pick: 'round-robin' });
    await group.ready();
    expect(group.members()).to.have.length(2);
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
