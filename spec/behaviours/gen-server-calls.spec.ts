import { expect } from 'chai';
import {
  CallTimeoutError,
  CallingSelfError,
  GenServer,
  ManualClock,
  Node,
  NoProcError,
  ServerExitError,
  reply,
  type Clock,
  type From,
  type ClockTimer,
} from '../../lib/index.js';
import { Counter } from '../fixtures/servers.js';
import { MemoryLogger, flush, rejection, testNode } from '../fixtures/helpers.js';

/**
 * A manual clock that remembers whether each host timer it armed still
 * holds the program open (ref'd) or not, as Node's setTimeout would.
 */
class RefCountingClock implements Clock {
  readonly manual = new ManualClock();
  readonly #held = new Set<object>();
  now(): number {
    return this.manual.now();
  }
  setTimer(fn: () => void, delayMs: number): ClockTimer {
    const token = {};
    this.#held.add(token);
    const inner = this.manual.setTimer(() => {
      this.#held.delete(token);
      fn();
    }, delayMs);
    return {
      cancel: () => {
        this.#held.delete(token);
        inner.cancel();
      },
      unref: () => void this.#held.delete(token),
      ref: () => void this.#held.add(token),
    };
  }
  /** Timers that would keep a Node.js program from exiting. */
  get holding(): number {
    return this.#held.size;
  }
}

describe('GenServer.call(ref, request, timeout) that fails early', () => {
  it('leaves no timer holding the program once the server exited (gen_server_SUITE:call_remote_n1)', async () => {
    const clock = new RefCountingClock();
    const node = new Node({ name: 'test', clock, logger: new MemoryLogger() });
    const pid = await GenServer.start(node, new Counter(), 0);
    const err = await rejection(GenServer.call(pid, 'crash', 5000));
    expect(err).to.be.instanceOf(ServerExitError);
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect(clock.holding).to.equal(0);
  });

  it('leaves no timer for a server that is not running (gen_server_SUITE:call_remote_n2)', async () => {
    const clock = new RefCountingClock();
    const node = new Node({ name: 'test', clock, logger: new MemoryLogger() });
    const err = await rejection(GenServer.call({ node, name: 'nobody' }, 'get', 5000));
    expect(err).to.be.instanceOf(NoProcError);
    expect(err.code).to.equal('ERR_NOPROC');
    expect(clock.holding).to.equal(0);
  });
});

describe('GenServer.call(ref, request, 0)', () => {
  it('times out at once, as receive ... after 0 does (gen_server_SUITE:call_remote3)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const err = await rejection(GenServer.call(pid, 'inc', 0));
    expect(err).to.be.instanceOf(CallTimeoutError);
    expect(err.code).to.equal('ERR_CALL_TIMEOUT');
    await flush();
    expect(await GenServer.call(pid, 'get')).to.equal(1); // the request was sent all the same
  });
});

describe('GenServer.call(self, request) from a plain process', () => {
  it('fails at once with ERR_CALLING_SELF, also after an await (gen_server_SUITE:calling_self)', async () => {
    const { node } = testNode({ manual: true }); // a manual clock: a call that waited for its timeout would never end
    const errors: any[] = [];
    const pid = node.spawn(async (self) => {
      errors.push(await rejection(GenServer.call(self.pid, 'oops')));
      await self.receive((m) => m === 'go');
      errors.push(await rejection(GenServer.call(self.pid, 'oops', 5000)));
    });
    await flush();
    node.send(pid, 'go');
    await flush();
    expect(errors).to.have.length(2);
    for (const err of errors) {
      expect(err).to.be.instanceOf(CallingSelfError);
      expect(err.code).to.equal('ERR_CALLING_SELF');
    }
  });
});

describe('GenServer.call(this.self.pid, request) after an await in a callback', () => {
  it('fails at once with ERR_CALLING_SELF (gen_server_SUITE:calling_self)', async () => {
    let err: any;
    class Impatient extends GenServer<number> {
      override async handleCall(_req: unknown, _from: From, n: number) {
        await Promise.resolve();
        err = await rejection(GenServer.call(this.self.pid, 'again'));
        return reply('done', n);
      }
    }
    const { node } = testNode({ manual: true }); // a call that waited for its timeout would never end
    const pid = await GenServer.start(node, new Impatient(), 0);
    expect(await GenServer.call(pid, 'go')).to.equal('done');
    expect(err).to.be.instanceOf(CallingSelfError);
    expect(err.code).to.equal('ERR_CALLING_SELF');
  });

  it('does not refuse a plain script calling a server busy in an async callback', async () => {
    class Slow extends GenServer<number> {
      override async handleCall(req: unknown, _from: From, n: number) {
        if (req === 'slow') await new Promise((r) => setImmediate(r));
        return reply(req, n);
      }
    }
    const { node } = testNode();
    const pid = await GenServer.start(node, new Slow(), 0);
    const slow = GenServer.call(pid, 'slow');
    await Promise.resolve();
    expect(await GenServer.call(pid, 'quick')).to.equal('quick');
    expect(await slow).to.equal('slow');
  });
});
