import { expect } from 'chai';
import { NameError, NoProcError } from '../../lib/index.js';
import { testNode, thrown } from '../fixtures/helpers.js';

describe('Node.register(name, pid), unregister(name), whereis(name)', () => {
  it('names a process, and sends by name', async () => {
    const { node } = testNode();
    let got: unknown;
    const pid = node.spawn(
      async (self) => {
        got = await self.receive();
      },
      { name: 'echo' },
    );
    expect(node.whereis('echo')).to.equal(pid);
    expect(node.registered()).to.deep.equal(['echo']);
    node.send('echo', 'hi');
    await node.exited(pid);
    expect(got).to.equal('hi');
  });

  it('a dead process frees its name', async () => {
    const { node } = testNode();
    const pid = node.spawn(async () => {}, { name: 'temp' });
    await node.exited(pid);
    expect(node.whereis('temp')).to.equal(undefined);
    const again = node.spawn(
      async (self) => {
        await self.receive();
      },
      { name: 'temp' },
    );
    expect(node.whereis('temp')).to.equal(again);
  });

  it('refuses a taken name, a second name, a dead pid and an empty name', async () => {
    const { node } = testNode();
    const a = node.spawn(
      async (self) => {
        await self.receive();
      },
      { name: 'a' },
    );
    const b = node.spawn(async (self) => {
      await self.receive();
    });
    const taken = thrown(() => node.register('a', b));
    expect(taken).to.be.instanceOf(NameError);
    expect(taken.code).to.equal('ERR_NAME_TAKEN');
    const second = thrown(() => node.register('other', a));
    expect(second.code).to.equal('ERR_ALREADY_NAMED');
    const dead = node.spawn(async () => {});
    await node.exited(dead);
    const noproc = thrown(() => node.register('dead', dead));
    expect(noproc).to.be.instanceOf(NoProcError);
    expect(noproc.code).to.equal('ERR_NOPROC');
    expect(thrown(() => node.register('', b))).to.be.instanceOf(TypeError);
    expect(thrown(() => node.spawn(async () => {}, { name: 'a' })).code).to.equal('ERR_NAME_TAKEN');
  });

  it('unregister frees the name and reports whether it was held', () => {
    const { node } = testNode();
    const pid = node.spawn(
      async (self) => {
        await self.receive();
      },
      { name: 'x' },
    );
    expect(node.unregister('x')).to.equal(true);
    expect(node.unregister('x')).to.equal(false);
    expect(node.processInfo(pid)!.name).to.equal(undefined);
  });
});
