import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WtdNode, type GrantFile } from '../../lib/index.js';

describe('Two nodes in two OS processes', () => {
  it('Bob calls Alice across processes, passes a pid and gets messages back', async () => {
    const script = fileURLToPath(new URL('../fixtures/alice-process.js', import.meta.url));
    const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const { grant, pid } = JSON.parse(line) as { grant: GrantFile; pid: number };
      expect(pid).to.not.equal(process.pid);
      const bob = await WtdNode.start({ name: 'bob', dataDir: ':memory:' });
      await bob.listen({ port: 0 });
      try {
        const alice = await bob.connect(grant);
        expect(await alice.call('Probe', 'touch', [{ from: 'bob' }])).to.deep.equal({ from: 'bob' });
        const got: unknown[] = [];
        let done!: () => void;
        const finished = new Promise<void>((r) => (done = r));
        const inbox = bob.spawn(async (self) => {
          for (let i = 0; i < 2; i++) got.push(await self.receive());
          done();
        });
        await alice.call('Probe', 'pingBack', [inbox, 2]);
        await finished;
        expect(got).to.deep.equal([{ ping: 0 }, { ping: 1 }]);
      } finally {
        await bob.close();
      }
    } finally {
      child.stdin!.end();
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});
