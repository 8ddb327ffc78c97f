import { expect } from 'chai';
import {
  BadReturnValueError,
  CallingSelfError,
  CallTimeoutError,
  GenServer,
  NameError,
  NoProcError,
  ServerExitError,
  StartError,
  TIMEOUT,
  isExit,
  ok,
  type ExitMessage,
  type From,
} from '../../lib/index.js';
import { Counter, Stack, TrappingCounter } from '../fixtures/servers.js';
import { flush, rejection, testNode } from '../fixtures/helpers.js';

describe('GenServer.start(where, impl, arg, options)', () => {
  it('runs init and resolves with a live pid', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 5);
    expect(node.isAlive(pid)).to.equal(true);
    expect(await GenServer.call(pid, 'get')).to.equal(5);
  });

  it('the default init makes the start argument the state', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Stack(), ['a']);
    expect(await GenServer.call(pid, 'pop')).to.equal('a');
  });

  it('rejects with ERR_START_FAILED when init stops or throws, ERR_START_IGNORED on ignore', async () => {
    const { node } = testNode();
    const stopped = await rejection(GenServer.start(node, new Counter(), 'stop'));
    expect(stopped).to.be.instanceOf(StartError);
    expect(stopped.code).to.equal('ERR_START_FAILED');
    expect(stopped.reason).to.equal('bad_init');
    const threw = await rejection(GenServer.start(node, new Counter(), 'throw'));
    expect(threw.code).to.equal('ERR_START_FAILED');
    expect((threw.reason as Error).message).to.equal('init exploded');
    const ignored = await rejection(GenServer.start(node, new Counter(), 'ignore'));
    expect(ignored.code).to.equal('ERR_START_IGNORED');
    const bad = await rejection(GenServer.start(node, new Counter(), 'bad'));
    expect(bad.code).to.equal('ERR_START_FAILED');
    expect(bad.reason).to.be.instanceOf(BadReturnValueError);
    await flush();
    expect(node.processes()).to.deep.equal([]);
  });

  it('registers the name, and refuses a taken one with ERR_ALREADY_STARTED', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 1, { name: 'counter' });
    expect(node.whereis('counter')).to.equal(pid);
    expect(await GenServer.call({ node, name: 'counter' }, 'get')).to.equal(1);
    const err = await rejection(GenServer.start(node, new Counter(), 2, { name: 'counter' }));
    expect(err).to.be.instanceOf(NameError);
    expect(err.code).to.equal('ERR_ALREADY_STARTED');
  });

  it('refuses to start the same instance twice', async () => {
    const { node } = testNode();
    const impl = new Counter();
    await GenServer.start(node, impl, 0);
    expect(await rejection(GenServer.start(node, impl, 0))).to.be.instanceOf(TypeError);
  });

  it('kills an init that runs past options.timeout (ERR_START_TIMEOUT)', async () => {
    const { node, clock } = testNode({ manual: true });
    class Slow extends Counter {
      override init() {
        return new Promise(() => {}) as never;
      }
    }
    const started = GenServer.start(node, new Slow(), 0, { timeout: 100 });
    await flush();
    clock.advance(100);
    const err = await rejection(started);
    expect(err.code).to.equal('ERR_START_TIMEOUT');
    expect(node.processes()).to.deep.equal([]);
  });

  it('startLink unlinks before a failed init exits, so the parent survives', async () => {
    const { node } = testNode();
    let err: any;
    const parent = node.spawn(async (self) => {
      err = await rejection(GenServer.startLink(self, new Counter(), 'stop'));
      await self.receive();
    });
    await flush();
    expect(err.code).to.equal('ERR_START_FAILED');
    expect(node.isAlive(parent)).to.equal(true);
  });

  it('startLink needs a parent process', async () => {
    const { node } = testNode();
    expect(await rejection(GenServer.startLink(node as never, new Counter(), 0))).to.be.instanceOf(TypeError);
  });
});

describe('GenServer.call(ref, request, timeout)', () => {
  it('returns the reply and updates state', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    expect(await GenServer.call(pid, 'inc')).to.equal(1);
    expect(await GenServer.call(pid, 'inc')).to.equal(2);
  });

  it('supports a deferred reply with GenServer.reply(from, value)', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    expect(await GenServer.call(pid, 'later')).to.equal('deferred');
  });

  it('supports async callbacks, holding other messages until they settle', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const [a, b] = await Promise.all([GenServer.call(pid, 'async'), GenServer.call(pid, 'inc')]);
    expect([a, b]).to.deep.equal(['async ok', 1]);
  });

  it('times out with ERR_CALL_TIMEOUT, and a late reply is dropped', async () => {
    const { node, clock } = testNode({ manual: true });
    const pid = await GenServer.start(node, new Counter(), 0);
    const call = GenServer.call(pid, 'never', 1000);
    await flush();
    clock.advance(1000);
    const err = await rejection(call);
    expect(err).to.be.instanceOf(CallTimeoutError);
    expect(err.code).to.equal('ERR_CALL_TIMEOUT');
    expect(err.timeout).to.equal(1000);
    expect(await GenServer.call(pid, 'get', 1000)).to.equal(0);
  });

  it('rejects with ERR_NOPROC for a dead server or unknown name', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    await GenServer.stop(pid);
    const err = await rejection(GenServer.call(pid, 'get'));
    expect(err).to.be.instanceOf(NoProcError);
    expect(err.code).to.equal('ERR_NOPROC');
    expect((await rejection(GenServer.call({ node, name: 'nobody' }, 'get'))).code).to.equal('ERR_NOPROC');
  });

  it('rejects with ERR_SERVER_EXITED when the server dies before replying', async () => {
    const { node, logger } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const err = await rejection(GenServer.call(pid, 'crash'));
    expect(err).to.be.instanceOf(ServerExitError);
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect((err.reason as Error).message).to.equal('asked to crash');
    expect(logger.has('gen_server')).to.equal(true);
    expect(logger.has("last message: 'crash'") || logger.has('last message')).to.equal(true);
  });

  it('a server calling itself gets ERR_CALLING_SELF', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const err = await rejection(GenServer.call(pid, 'self'));
    // The callback threw CallingSelfError, so the server stopped with it.
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect(err.reason).to.be.instanceOf(CallingSelfError);
    expect(err.reason.code).to.equal('ERR_CALLING_SELF');
  });

  it('a bad callback return stops the server with BadReturnValueError', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    const err = await rejection(GenServer.call(pid, 'bad'));
    expect(err.reason).to.be.instanceOf(BadReturnValueError);
    expect(err.reason.code).to.equal('ERR_BAD_RETURN_VALUE');
    expect(err.reason.value).to.equal('not a result');
  });

  it('a server without handleCall fails with a helpful message', async () => {
    const { node } = testNode();
    class Mute extends GenServer<number> {}
    const pid = await GenServer.start(node, new Mute(), 0);
    const err = await rejection(GenServer.call(pid, 'hello'));
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect((err.reason as Error).message).to.match(/no handleCall was provided/);
  });

  it('stopAndReply answers, then stops normally', async () => {
    const { node } = testNode();
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    const exited = node.exited(pid);
    expect(await GenServer.call(pid, 'stop')).to.equal('bye');
    expect(await exited).to.equal('normal');
    expect(impl.terminated).to.deep.equal(['normal']);
  });

  it('refuses a bad timeout', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    expect(await rejection(GenServer.call(pid, 'get', -1))).to.be.instanceOf(RangeError);
  });
});

describe('GenServer.cast(ref, request) and handleInfo', () => {
  it('casts update state without a reply; casting to nobody is fine', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    GenServer.cast(pid, 'inc');
    GenServer.cast(pid, 'inc');
    expect(await GenServer.call(pid, 'get')).to.equal(2);
    expect(() => GenServer.cast({ node, name: 'nobody' }, 'inc')).not.to.throw();
  });

  it('plain messages reach handleInfo', async () => {
    const { node } = testNode();
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    node.send(pid, { hello: 1 });
    await GenServer.call(pid, 'get');
    expect(impl.infos).to.deep.equal([{ hello: 1 }]);
  });

  it('a callback timeout delivers TIMEOUT to handleInfo when idle', async () => {
    const { node, clock } = testNode({ manual: true });
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    await GenServer.call(pid, 'idle');
    clock.advance(10);
    await flush();
    expect(impl.infos).to.deep.equal([TIMEOUT]);
  });

  it('any message cancels the pending callback timeout', async () => {
    const { node, clock } = testNode({ manual: true });
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    await GenServer.call(pid, 'idle');
    clock.advance(5);
    GenServer.cast(pid, 'inc');
    await flush();
    clock.advance(100);
    await flush();
    expect(impl.infos).to.deep.equal([]);
  });

  it('init may ask for a timeout too', async () => {
    const { node, clock } = testNode({ manual: true });
    class Waiter extends Counter {
      override init() {
        return ok(0, 50);
      }
    }
    const impl = new Waiter();
    await GenServer.start(node, impl, 0);
    clock.advance(50);
    await flush();
    expect(impl.infos).to.deep.equal([TIMEOUT]);
  });

  it('a crash in handleCast stops the server and runs terminate', async () => {
    const { node } = testNode();
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    const exited = node.exited(pid);
    GenServer.cast(pid, 'crash');
    expect(((await exited) as Error).message).to.equal('cast crash');
    expect(impl.terminated.length).to.equal(1);
  });
});

describe('GenServer.stop(ref, reason, timeout) and terminate', () => {
  it('runs terminate with the reason and resolves after exit', async () => {
    const { node, logger } = testNode();
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    await GenServer.stop(pid, 'shutdown');
    expect(impl.terminated).to.deep.equal(['shutdown']);
    expect(node.isAlive(pid)).to.equal(false);
    expect(logger.lines).to.deep.equal([]);
  });

  it('an abnormal stop reason is reported', async () => {
    const { node, logger } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    await GenServer.stop(pid, 'weird');
    expect(logger.has('terminating: weird')).to.equal(true);
  });

  it('stop of a dead server rejects with ERR_NOPROC', async () => {
    const { node } = testNode();
    const pid = await GenServer.start(node, new Counter(), 0);
    await GenServer.stop(pid);
    expect((await rejection(GenServer.stop(pid))).code).to.equal('ERR_NOPROC');
  });

  it('a trapping server whose parent exits runs terminate with the parent reason', async () => {
    const { node } = testNode();
    const impl = new TrappingCounter();
    let child: any;
    const parent = node.spawn(async (self) => {
      child = await GenServer.startLink(self, impl, 0);
      await self.receive();
      self.exit('parent_gone');
    });
    await flush();
    const exited = node.exited(child);
    node.send(parent, 'go');
    expect(await exited).to.equal('parent_gone');
    expect(impl.terminated).to.deep.equal(['parent_gone']);
  });

  it('an EXIT from a non-parent reaches handleInfo when trapping', async () => {
    const { node } = testNode();
    const impl = new TrappingCounter();
    const pid = await GenServer.start(node, impl, 0);
    const friend = node.spawn(async (self) => {
      self.link(pid);
      await self.receive();
      self.exit('friend_gone');
    });
    await flush();
    node.send(friend, 'go');
    await flush();
    expect(node.isAlive(pid)).to.equal(true);
    expect(impl.infos.length).to.equal(1);
    expect(isExit(impl.infos[0])).to.equal(true);
    expect((impl.infos[0] as ExitMessage).reason).to.equal('friend_gone');
  });

  it('self.exit(reason) in a callback runs terminate with that reason', async () => {
    const { node, logger } = testNode();
    class Quitter extends Counter {
      override handleCast(request: unknown, n: number) {
        if (request === 'quit') this.self.exit('quitting');
        return super.handleCast(request, n);
      }
    }
    const impl = new Quitter();
    const pid = await GenServer.start(node, impl, 0);
    const exited = node.exited(pid);
    GenServer.cast(pid, 'quit');
    expect(await exited).to.equal('quitting');
    expect(impl.terminated).to.deep.equal(['quitting']);
    expect(logger.has('terminating: quitting')).to.equal(true);
  });

  it('a server killed during an async callback neither replies nor runs terminate', async () => {
    const { node } = testNode();
    let release!: () => void;
    class Slow extends Counter {
      override handleCall(request: unknown, from: From, n: number) {
        if (request !== 'slow') return super.handleCall(request, from, n);
        return new Promise<never>((_resolve, reject) => (release = () => reject(new Error('late'))));
      }
    }
    const impl = new Slow();
    const pid = await GenServer.start(node, impl, 0);
    const call = GenServer.call(pid, 'slow');
    await flush();
    node.exit(pid, 'kill');
    release();
    const err = await rejection(call);
    expect(err.code).to.equal('ERR_SERVER_EXITED');
    expect(err.reason).to.equal('killed');
    await flush();
    expect(impl.terminated).to.deep.equal([]);
  });

  it('a killed server does not run terminate', async () => {
    const { node } = testNode();
    const impl = new Counter();
    const pid = await GenServer.start(node, impl, 0);
    const exited = node.exited(pid);
    node.exit(pid, 'kill');
    expect(await exited).to.equal('killed');
    expect(impl.terminated).to.deep.equal([]);
  });
});
