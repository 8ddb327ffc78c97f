import { expect } from 'chai';
import {
  BadReturnValueError,
  GenEvent,
  GenEventError,
  GenEventExit,
  GenEventHandler,
  GenServer,
  ok,
  removeHandler,
  reply,
  type Pid,
} from '../../lib/index.js';
import { flush, rejection, testNode } from '../fixtures/helpers.js';

/** Collects events into a shared log; crashes on 'boom'. */
class Collector extends GenEventHandler<string[], string> {
  constructor(
    readonly log: string[],
    id?: string,
  ) {
    super(id);
  }
  override init(args: unknown) {
    this.log.push(`init ${this.id} ${JSON.stringify(args)}`);
    return ok<string[]>([]);
  }
  override handleEvent(event: string, seen: string[]) {
    if (event === 'boom') throw new Error(`${this.id} exploded`);
    if (event === 'leave') return removeHandler();
    if (event === 'bad') return 'nonsense' as never;
    this.log.push(`${this.id} got ${event}`);
    return ok([...seen, event]);
  }
  override handleCall(request: unknown, seen: string[]) {
    if (request === 'count') return reply(seen.length, seen);
    if (request === 'quit') return removeHandler('bye');
    throw new Error('bad call');
  }
  override handleInfo(msg: unknown, seen: string[]) {
    this.log.push(`${this.id} info ${String(msg)}`);
    return ok(seen);
  }
  override terminate(arg: unknown, seen: string[]) {
    this.log.push(`terminate ${this.id} ${arg instanceof Object && 'error' in arg ? 'error' : JSON.stringify(arg)}`);
    return seen.length;
  }
}

describe('GenEvent manager', () => {
  it('addHandler, notify, syncNotify and whichHandlers', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'), { x: 1 });
    await GenEvent.addHandler(mgr, new Collector(log, 'b'));
    // Newest first, as OTP (gen_event_SUITE:add_handler): the order events reach them in too.
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['b', 'a']);
    GenEvent.notify(mgr, 'one');
    await GenEvent.syncNotify(mgr, 'two');
    expect(log).to.deep.equal([
      'init a {"x":1}',
      'init b undefined',
      'b got one',
      'a got one',
      'b got two',
      'a got two',
    ]);
    expect(node.processInfo(mgr)!.behaviour).to.equal('gen_event');
  });

  it('call(manager, handler, request) reaches one handler', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector([], 'a'));
    await GenEvent.syncNotify(mgr, 'x');
    expect(await GenEvent.call(mgr, 'a', 'count')).to.equal(1);
    expect(await GenEvent.call(mgr, 'a', 'quit')).to.equal('bye');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    const missing = await rejection(GenEvent.call(mgr, 'a', 'count'));
    expect(missing).to.be.instanceOf(GenEventError);
    expect(missing.code).to.equal('ERR_HANDLER_NOT_FOUND');
  });

  it('a handler that throws is removed; the manager and the others keep running', async () => {
    const { node, logger } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    await GenEvent.addHandler(mgr, new Collector(log, 'b'));
    await GenEvent.syncNotify(mgr, 'boom');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    expect(log.filter((l) => l.startsWith('terminate'))).to.deep.equal(['terminate b error', 'terminate a error']);
    expect(node.isAlive(mgr)).to.equal(true);
    expect(logger.has("handler 'a' crashed")).to.equal(true);
  });

  it('a bad handler return removes just that handler', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector([], 'a'));
    await GenEvent.addHandler(mgr, new Collector([], 'b'));
    const err = await rejection(GenEvent.call(mgr, 'a', 'explode'));
    expect(err.code).to.equal('ERR_HANDLER_CRASHED');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['b']);
    await GenEvent.syncNotify(mgr, 'bad');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
  });

  it('removeHandler() from handleEvent removes it with terminate', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    await GenEvent.syncNotify(mgr, 'leave');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    expect(log.at(-1)).to.equal('terminate a "remove_handler"');
  });

  it("deleteHandler returns terminate's result; errors have codes", async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    await GenEvent.syncNotify(mgr, 'x');
    expect(await GenEvent.deleteHandler(mgr, 'a', 'bye')).to.equal(1);
    expect(log.at(-1)).to.equal('terminate a "bye"');
    expect((await rejection(GenEvent.deleteHandler(mgr, 'a'))).code).to.equal('ERR_HANDLER_NOT_FOUND');
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    expect((await rejection(GenEvent.addHandler(mgr, new Collector(log, 'a')))).code).to.equal('ERR_HANDLER_EXISTS');
    class BadInit extends GenEventHandler {
      override init(): never {
        throw new Error('no');
      }
    }
    expect((await rejection(GenEvent.addHandler(mgr, new BadInit()))).code).to.equal('ERR_HANDLER_INIT');
    class WrongInit extends GenEventHandler {
      override init() {
        return 7 as never;
      }
    }
    expect(await rejection(GenEvent.addHandler(mgr, new WrongInit()))).to.be.instanceOf(BadReturnValueError);
    expect(await rejection(GenEvent.addHandler(mgr, {} as never))).to.be.instanceOf(TypeError);
  });

  it('swapHandler hands the old terminate result to the new init', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'old'));
    await GenEvent.syncNotify(mgr, 'e1');
    await GenEvent.swapHandler(mgr, 'old', 'swap', new Collector(log, 'new'), 'fresh');
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal(['new']);
    expect(log.slice(-2)).to.deep.equal(['terminate old "swap"', 'init new {"args":"fresh","previous":1}']);
  });

  it("plain messages go to every handler's handleInfo", async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    node.send(mgr, 'ping');
    await GenEvent.whichHandlers(mgr);
    expect(log.at(-1)).to.equal('a info ping');
  });

  it('stop terminates every handler', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    await GenEvent.addHandler(mgr, new Collector(log, 'a'));
    await GenEvent.stop(mgr);
    expect(log.at(-1)).to.equal('terminate a "stop"');
    expect(node.isAlive(mgr)).to.equal(false);
  });
});

describe('GenEvent.addSupHandler(manager, handler, args, owner)', () => {
  it('tells the owner when its handler crashes', async () => {
    const { node } = testNode();
    const mgr = await GenEvent.start(node);
    let note: unknown;
    const owner = node.spawn(async (self) => {
      await GenEvent.addSupHandler(mgr, new Collector([], 'sup'), undefined, self.pid);
      self.send(self.pid, 'added');
      await self.receive((m) => m === 'added');
      note = await self.receive((m) => m instanceof GenEventExit);
    });
    await flush();
    await GenEvent.syncNotify(mgr, 'boom');
    await flush();
    expect(note).to.be.instanceOf(GenEventExit);
    expect((note as GenEventExit).handler).to.equal('sup');
    expect(((note as GenEventExit).reason as { error: Error }).error.message).to.equal('sup exploded');
    expect(node.isAlive(owner)).to.equal(false);
  });

  it('removes the handler when its owner exits', async () => {
    const { node } = testNode();
    const log: string[] = [];
    const mgr = await GenEvent.start(node);
    let owner!: Pid;
    await new Promise<void>((resolve) => {
      owner = node.spawn(async (self) => {
        await GenEvent.addSupHandler(mgr, new Collector(log, 'sup'), undefined, self.pid);
        resolve();
        await self.receive();
        self.exit('owner_done');
      });
    });
    node.send(owner, 'go');
    await flush();
    expect(await GenEvent.whichHandlers(mgr)).to.deep.equal([]);
    expect(log.at(-1)).to.equal('terminate sup {"stop":"owner_done"}');
    expect(node.isAlive(mgr)).to.equal(true);
  });

  it('a subclass of GenEvent is a named manager', async () => {
    const { node } = testNode();
    class ChatRoom extends GenEvent {}
    const mgr = await GenEvent.start(node, new ChatRoom(), { name: 'room' });
    expect(node.processInfo('room')!.module).to.equal('ChatRoom');
    await GenServer.stop(mgr);
  });
});
