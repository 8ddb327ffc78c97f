import { expect } from 'chai';
import { GenServer } from '../../lib/index.js';
import { Stack } from '../fixtures/servers.js';
import { flush, testNode } from '../fixtures/helpers.js';

describe('Node.processes() and processInfo(pid)', () => {
  it('lists live processes with mailbox, links, monitors, name and behaviour', async () => {
    const { node } = testNode();
    const server = await GenServer.start(node, new Stack(), [], { name: 'stack' });
    const body = node.spawn(async (self) => {
      self.link(server);
      self.monitor(server);
      self.trapExit(true);
      await self.receive((m) => m === 'never');
    });
    await flush();
    node.send(body, 'queued');
    const info = node.processInfo(body)!;
    expect(info.status).to.equal('waiting');
    expect(info.messageQueueLength).to.equal(1);
    expect(info.links.map(String)).to.deep.equal([String(server)]);
    expect(info.monitors.map(String)).to.deep.equal([String(server)]);
    expect(info.trapExit).to.equal(true);
    expect(info.behaviour).to.equal(undefined);
    const s = node.processInfo('stack')!;
    expect(s.behaviour).to.equal('gen_server');
    expect(s.module).to.equal('Stack');
    expect(s.name).to.equal('stack');
    expect(s.monitoredBy.map(String)).to.deep.equal([String(body)]);
    expect(node.processes().map(String)).to.include.members([String(server), String(body)]);
    node.stop();
    expect(node.processes()).to.deep.equal([]);
    expect(node.processInfo(body)).to.equal(undefined);
  });
});
