import { expect } from 'chai';
import {
  ManualClock,
  MaybeRanError,
  MissionTable,
  NodeDownError,
  RateLimitedError,
  RemoteError,
  WireError,
  WtdExport,
  WtdError,
  type GroupOptions,
  type RemoteNode,
} from '../../lib/index.js';
import { MissionGroup, type GroupHost } from '../../lib/transport/group.js';
import { rendezvous } from '../../lib/transport/group-pick.js';
import { MemoryLogger, rejection } from '../fixtures/helpers.js';
import { next } from '../fixtures/group.js';

type Answer = (options: { timeout?: number }) => unknown;

/** A member as a group sees it: it answers probes, and each call with what the spec says. */
class FakeRemote {
  readonly via = 'direct' as const;
  readonly missions = ['work'];
  calls = 0;
  timeouts: number[] = [];
  probeError: unknown;
  constructor(
    readonly nodeId: string,
    public answer: Answer = () => nodeId,
  ) {}
  async probe(): Promise<{ missions: string[]; busy: number }> {
    if (this.probeError !== undefined) throw this.probeError;
    return { missions: ['work'], busy: 0 };
  }
  async call(_m: string, _f: string, _a: unknown[], options: { timeout?: number }): Promise<unknown> {
    this.calls++;
    this.timeouts.push(options.timeout ?? -1);
    return this.answer(options);
  }
  async cast(m: string, f: string, a: unknown[], options: { timeout?: number }): Promise<void> {
    await this.call(m, f, a, options);
  }
  /** What a reply of this member said of a function (set by the spec). */
  idempotentByReply: boolean | undefined;
  knownIdempotent(): boolean | undefined {
    return this.idempotentByReply;
  }
  behaviour() {
    return { call: (_req: unknown, options: { timeout?: number }) => this.call('', '', [], options) };
  }
}

class Maths {
  @WtdExport('work', { idempotent: true })
  static add(a: number, b: number): number {
    return a + b;
  }
}

describe('MissionGroup: failing over, within one deadline and a retry budget', () => {
  let clock: ManualClock;
  let group: MissionGroup;
  let a: FakeRemote;
  let b: FakeRemote;
  /** A key that rendezvous hashing sends to member a (then b once a is out). */
  let toA: string;

  async function start(options: GroupOptions = {}): Promise<void> {
    clock = new ManualClock(Date.now());
    a = new FakeRemote('node-a');
    b = new FakeRemote('node-b');
    const missions = new MissionTable();
    missions.load(Maths);
    const host: GroupHost = {
      id: 'me',
      wallClock: clock,
      missions,
      logger: new MemoryLogger(),
      remotes: () => [a, b] as unknown as RemoteNode[],
      connect: () => Promise.reject(new Error('no connect in this spec')),
      directory: () => undefined,
      onDirectory: () => undefined,
      offDirectory: () => undefined,
    };
    group = new MissionGroup(host, 'work', options);
    await group.ready();
    toA = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'].find((k) => rendezvous([a, b], k) === a)!;
  }
  afterEach(() => group?.close());

  it('refused before running (ERR_RATE_LIMITED): the call moves to another member; the first stays', async () => {
    await start();
    a.answer = () => {
      throw new RateLimitedError(1);
    };
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
    expect([a.calls, b.calls]).to.deep.equal([1, 1]);
    expect(group.members().map((m) => m.state)).to.deep.equal(['up', 'up']);
  });

  it('a refused grant (ERR_GRANT_REVOKED): the member leaves at once (member_down, left) and the call moves', async () => {
    await start();
    a.answer = () => {
      throw new WireError('ERR_GRANT_REVOKED', 401, 'revoked');
    };
    const down = next(group, 'member_down', 'node-a');
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
    expect((await down).state).to.equal('left');
    expect(group.members().map((m) => m.nodeId)).to.deep.equal(['node-b']);
  });

  const maybeRan = () => {
    throw new MaybeRanError('M.f', 'no answer came');
  };

  it('may have run (ERR_MAYBE_RAN): not tried again (and the member is sidelined)', async () => {
    await start();
    a.answer = maybeRan;
    const err = await rejection(group.call('M', 'f', [], { key: toA }));
    expect([err instanceof MaybeRanError, err.code]).to.deep.equal([true, 'ERR_MAYBE_RAN']);
    expect([a.calls, b.calls]).to.deep.equal([1, 0]);
    expect(group.members().find((m) => m.nodeId === 'node-a')!.state).to.equal('sidelined');
  });

  it('may have run, idempotent by the call’s options: tried on another member', async () => {
    await start();
    a.answer = maybeRan;
    expect(await group.call('M', 'f', [], { key: toA, idempotent: true })).to.equal('node-b');
    expect([a.calls, b.calls]).to.deep.equal([1, 1]);
  });

  it('may have run, idempotent by @WtdExport({ idempotent: true }) of the class loaded on this node: tried again', async () => {
    await start();
    a.answer = maybeRan;
    expect(await group.call('Maths', 'add', [1, 2], { key: toA })).to.equal('node-b');
    expect([a.calls, b.calls]).to.deep.equal([1, 1]);
  });

  it('may have run, idempotent by what a reply of that member said: tried again', async () => {
    await start();
    a.answer = maybeRan;
    a.idempotentByReply = true;
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
    expect([a.calls, b.calls]).to.deep.equal([1, 1]);
  });

  it('a cast that may have run is never sent again, idempotent or not', async () => {
    await start();
    a.answer = maybeRan;
    const err = await rejection(group.cast('Maths', 'add', [1, 2], { key: toA, idempotent: true }));
    expect([err instanceof MaybeRanError, err.code]).to.deep.equal([true, 'ERR_MAYBE_RAN']);
    expect([a.calls, b.calls]).to.deep.equal([1, 0]);
  });

  it('ran and failed (RemoteError), or the caller’s own fault (ERR_BAD_ARITY): never tried again', async () => {
    await start();
    a.answer = () => {
      throw new RemoteError('ERR_REMOTE_EXCEPTION', 'boom');
    };
    const err = await rejection(group.call('M', 'f', [], { key: toA, idempotent: true }));
    expect([err instanceof RemoteError, err.code]).to.deep.equal([true, 'ERR_REMOTE_EXCEPTION']);
    a.answer = () => {
      throw new WireError('ERR_BAD_ARITY', 400, 'two arguments');
    };
    const arity = await rejection(group.call('M', 'f', [], { key: toA }));
    expect([arity instanceof WireError, arity.code]).to.deep.equal([true, 'ERR_BAD_ARITY']);
    expect(b.calls).to.equal(0);
  });

  it('cannot be reached (ERR_NODE_DOWN): sidelined at once, the call moves; a probe that passes brings it back', async () => {
    await start();
    a.answer = () => {
      throw new NodeDownError('http://127.0.0.1:1');
    };
    const down = next(group, 'member_down', 'node-a');
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
    expect((await down).state).to.equal('sidelined');
    // Sidelined: no new call goes to it, its keys included.
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
    expect(a.calls).to.equal(1);
    a.probeError = new NodeDownError('http://127.0.0.1:1');
    clock.advance(1000);
    await Promise.resolve();
    expect(group.members().find((m) => m.nodeId === 'node-a')!.state).to.equal('sidelined');
    a.probeError = undefined;
    a.answer = () => 'node-a';
    const up = next(group, 'member_up', 'node-a');
    clock.advance(1000);
    expect((await up).state).to.equal('up');
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-a');
  });

  it('every attempt shares the one deadline; once it is spent, the last error is thrown', async () => {
    await start();
    a.answer = () => {
      clock.advance(3000);
      throw new RateLimitedError(1);
    };
    expect(await group.call('M', 'f', [], { key: toA, timeout: 5000 })).to.equal('node-b');
    expect(b.timeouts).to.deep.equal([2000]);
    a.answer = () => {
      clock.advance(5000);
      throw new RateLimitedError(1);
    };
    const err = await rejection(group.call('M', 'f', [], { key: toA, timeout: 5000 }));
    expect([err instanceof RateLimitedError, err.code]).to.deep.equal([true, 'ERR_RATE_LIMITED']);
    expect(b.calls).to.equal(1);
  });

  it('every member refuses: the last error, its class and code kept; no member at all: ERR_NO_MEMBERS', async () => {
    await start();
    const refuse = () => {
      throw new WireError('ERR_MISSION_NOT_GRANTED', 403, 'not that function');
    };
    a.answer = refuse;
    b.answer = refuse;
    const err = await rejection(group.call('M', 'f'));
    expect([err instanceof WireError, err.code, a.calls + b.calls]).to.deep.equal([true, 'ERR_MISSION_NOT_GRANTED', 2]);
    group.close();
    const none = await rejection(group.call('M', 'f'));
    expect([none instanceof WtdError, none.code]).to.deep.equal([true, 'ERR_NO_MEMBERS']);
  });

  it('retries spend a budget each call refills by a tenth: with none left, a refused call is not tried again', async () => {
    await start({ retryBudget: { ratio: 0.1, max: 1 } });
    a.answer = () => {
      throw new RateLimitedError(1);
    };
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b'); // spends the one token
    const err = await rejection(group.call('M', 'f', [], { key: toA }));
    expect([err instanceof RateLimitedError, err.code]).to.deep.equal([true, 'ERR_RATE_LIMITED']);
    expect(b.calls).to.equal(1);
    // Ten calls later (each adds 0.1), there is a token again.
    a.answer = () => 'node-a';
    for (let i = 0; i < 9; i++) await group.call('M', 'f', [], { key: toA });
    a.answer = () => {
      throw new RateLimitedError(1);
    };
    expect(await group.call('M', 'f', [], { key: toA })).to.equal('node-b');
  });

  it('a behaviour operation fails over like a call', async () => {
    await start();
    a.answer = () => {
      throw new RateLimitedError(1);
    };
    expect(await group.genServer('desk').call('who', { key: toA })).to.equal('node-b');
  });
});
