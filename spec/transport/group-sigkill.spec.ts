import { expect } from 'chai';
import { outcomeOf, WtdNode, WtdProxy, type GrantFile, type WtdError } from '../../lib/index.js';
import { MemoryLogger } from '../fixtures/helpers.js';
import { startMember, type MemberProcess } from '../fixtures/members.js';

/** The outcome of each call of a bounded load: by call id, its answer (the member's name) or its error. */
interface Load {
  answers: Map<string, string>;
  failures: Map<string, WtdError>;
  /** Call ids started after the kill, and how each ended. */
  afterKill: Map<string, string | WtdError>;
}

/**
 * Runs `total` calls of `fn` at concurrency 32 on `call`; once `killAfter`
 * have been answered, runs `kill` (while the other calls are in flight).
 */
async function loadWithKill(
  call: (id: string) => Promise<string>,
  total: number,
  killAfter: number,
  kill: () => Promise<void>,
): Promise<Load> {
  const load: Load = { answers: new Map(), failures: new Map(), afterKill: new Map() };
  let next = 0;
  let answered = 0;
  let killed: Promise<void> | undefined;
  let after = false;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < total) {
        const id = `c${next++}`;
        const late = after;
        try {
          const who = await call(id);
          load.answers.set(id, who);
          if (late) load.afterKill.set(id, who);
        } catch (err) {
          load.failures.set(id, err as WtdError);
          if (late) load.afterKill.set(id, err as WtdError);
        }
        if (++answered === killAfter) {
          killed = kill().then(() => {
            after = true;
          });
        }
      }
    }),
  );
  await killed;
  return load;
}

/** How many times each call id ran, over every member's log. */
function executions(members: MemberProcess[]): Map<string, number> {
  const runs = new Map<string, number>();
  for (const m of members) for (const id of m.ran()) runs.set(id, (runs.get(id) ?? 0) + 1);
  return runs;
}

describe('a mission group fails over when a member is killed (SIGKILL, a separate OS process)', function () {
  this.timeout(60_000);
  const logger = new MemoryLogger();
  let members: MemberProcess[] = [];
  let bob: WtdNode;
  afterEach(async () => {
    await bob?.close();
    for (const m of members) await m.close();
    members = [];
  });

  async function start(options: { proxy?: string; listen?: boolean } = {}): Promise<GrantFile[]> {
    members = [];
    for (const name of ['m1', 'm2', 'm3']) members.push(await startMember(name, options));
    return members.map((m) => m.grant as GrantFile);
  }

  it('direct, not idempotent: failures ≤ calls in flight, each ERR_MAYBE_RAN; every id ran at most once; later calls succeed', async () => {
    const grants = await start();
    bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    const group = bob.group('work', { members: grants });
    // "After the kill" is once the group has seen the member down: a call that left before, on a
    // kept-alive socket of the dead member, may have been read by it and is rightly ERR_MAYBE_RAN.
    const killAndSee = async (): Promise<void> => {
      const victim = members[0]!;
      const seen = new Promise<void>((resolve) =>
        group.on('member_down', (m) => {
          if (m.nodeId === victim.id) resolve();
        }),
      );
      await victim.kill('SIGKILL');
      await seen;
    };
    const load = await loadWithKill(
      (id) => group.call<string>('Work', 'job', [id], { timeout: 1000 }),
      900,
      300,
      killAndSee,
    );
    const codes = [...load.failures.values()].map((e) => e.code);
    expect(load.failures.size).to.be.at.most(32);
    expect(new Set(codes)).to.satisfy((s: Set<string>) => s.size === 0 || (s.size === 1 && s.has('ERR_MAYBE_RAN')));
    for (const err of load.failures.values()) expect(outcomeOf(err)).to.equal('maybe_ran');
    const runs = executions(members);
    for (const [id, n] of runs) expect(n, id).to.equal(1);
    for (const id of load.answers.keys()) expect(runs.get(id), id).to.equal(1);
    // Calls made once the group saw the member down all succeed, each within its own 1 s deadline, on the members left.
    expect([...load.afterKill.values()].filter((v) => typeof v !== 'string')).to.deep.equal([]);
    expect([...load.afterKill.values()]).to.not.include('m1');
    expect(load.afterKill.size).to.be.greaterThan(0);
  });

  it('direct, idempotent: 0 failures', async () => {
    const grants = await start();
    bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
    const group = bob.group('work', { members: grants });
    const load = await loadWithKill(
      (id) => group.call<string>('Work', 'read', [id], { timeout: 1000 }),
      900,
      300,
      () => members[0]!.kill('SIGKILL'),
    );
    expect([...load.failures.entries()].map(([id, e]) => `${id} ${e.code}`)).to.deep.equal([]);
    expect(load.answers.size).to.equal(900);
  });

  it('through the proxy: the directory shows the member down within 4 s; undelivered calls run elsewhere, none lost, none twice', async () => {
    const proxy = await WtdProxy.start({ dataDir: ':memory:', port: 0, logger });
    try {
      const grants = await start({ proxy: proxy.url, listen: false });
      bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:', logger });
      await bob.joinProxy({ url: proxy.url, email: 'bob@example.org', pingIntervalMs: 500 });
      const group = bob.group('work', { members: grants });
      const victim = members[0]!;
      let downAt = 0;
      const down = new Promise<void>((resolve) =>
        bob.on('nodedown', (e) => {
          if (e.id !== victim.id) return;
          downAt = performance.now();
          resolve();
        }),
      );
      let killedAt = 0;
      const load = await loadWithKill(
        (id) => group.call<string>('Work', 'job', [id], { timeout: 8000 }),
        600,
        200,
        async () => {
          killedAt = performance.now();
          await victim.kill('SIGKILL');
        },
      );
      await down;
      expect(downAt - killedAt).to.be.below(4000);
      const runs = executions(members);
      for (const [id, n] of runs) expect(n, id).to.equal(1);
      // None lost: each call was answered, or failed as maybe run (it had been handed to the member killed).
      expect(load.answers.size + load.failures.size).to.equal(600);
      for (const [id, err] of load.failures) {
        expect([id, err.code]).to.deep.equal([id, 'ERR_MAYBE_RAN']);
        expect(victim.ran().includes(id) || !runs.has(id), id).to.equal(true);
      }
      for (const id of load.answers.keys()) expect(runs.get(id), id).to.equal(1);
    } finally {
      await bob.close();
      for (const m of members) await m.close();
      members = [];
      await proxy.close();
    }
  });
});
