/**
 * A word count spread over a mission group that keeps going when a node dies.
 *
 * Worker nodes export `WordCount.count(text)` under the mission `wordcount`
 * and grant it to Alice. Alice's node makes a group of them
 * (`alice.group('wordcount')`) and sends it the chunks of a text, eight at a time;
 * the group picks a member for each call and moves a call to another member
 * when its node is down. Counting a chunk is a pure function, marked
 * `{ idempotent: true }`, so even a call that may have run on a node that
 * died is safely run again elsewhere. There is no retry loop here: the
 * total comes out the same as counting everything in one place.
 *
 * Two runs: in the first the workers are in this program and one of them
 * closes half-way; in the second each worker is its own OS process and one
 * is killed with SIGKILL half-way, with calls in flight.
 *
 * Run it: `node dist/samples/word-count.js`
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WtdExport, WtdNode, type GrantFile } from '../lib/index.js';

export class WordCount {
  /** `worker`: the name sent back with each count. */
  constructor(readonly worker = 'worker') {}

  @WtdExport('wordcount', { idempotent: true })
  async count(text: string): Promise<{ worker: string; counts: Record<string, number> }> {
    const counts: Record<string, number> = {};
    for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
    // A little work per chunk, so that calls are in flight when a node dies.
    await new Promise((r) => setTimeout(r, 5));
    return { worker: this.worker, counts };
  }
}

const TEXT = `It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness, it was the spring of hope,
it was the winter of despair, we had everything before us, we had nothing before us,
we were all going direct to Heaven, we were all going direct the other way`;

/** Counts every word of `text` in one place: what the spread count must agree with. */
export function countHere(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) totals.set(word, (totals.get(word) ?? 0) + 1);
  return totals;
}

/** The text as many short chunks: each line's words, a few at a time, a number of times over. */
function chunks(times: number): string[] {
  const out: string[] = [];
  for (let t = 0; t < times; t++) {
    for (const line of TEXT.split('\n')) {
      const words = line.split(' ');
      for (let i = 0; i < words.length; i += 4) out.push(words.slice(i, i + 4).join(' '));
    }
  }
  return out;
}

/**
 * Alice counts `texts` on the group of `grants`; `halfway` runs once half
 * the chunks are counted (it takes a worker down). Returns the totals and
 * how many chunks each worker counted.
 */
async function countOnGroup(
  alice: WtdNode,
  grants: GrantFile[],
  texts: string[],
  halfway: () => Promise<void>,
  log: (line: string) => void,
): Promise<{ totals: Map<string, number>; byWorker: Map<string, number> }> {
  const group = alice.group('wordcount', { members: grants });
  group.on('member_down', (m) => log(`  the group saw ${m.nodeId.slice(0, 8)} go down`));
  const totals = new Map<string, number>();
  const byWorker = new Map<string, number>();
  let done = 0;
  let next = 0;
  let fired: Promise<void> | undefined;
  // Eight calls in flight at a time, as eight workers of Alice's would keep.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < texts.length) {
        const text = texts[next++]!;
        const { worker, counts } = await group.call<{ worker: string; counts: Record<string, number> }>(
          'WordCount',
          'count',
          [text],
          { timeout: 5000 },
        );
        for (const [word, n] of Object.entries(counts)) totals.set(word, (totals.get(word) ?? 0) + n);
        byWorker.set(worker, (byWorker.get(worker) ?? 0) + 1);
        if (++done === Math.floor(texts.length / 2)) fired = halfway();
      }
    }),
  );
  await fired;
  return { totals, byWorker };
}

function report(
  result: { totals: Map<string, number>; byWorker: Map<string, number> },
  times: number,
  log: (line: string) => void,
): boolean {
  const expected = new Map([...countHere(TEXT)].map(([w, n]) => [w, n * times]));
  const { totals, byWorker } = result;
  const same = expected.size === totals.size && [...expected].every(([w, n]) => totals.get(w) === n);
  const top = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 3);
  log(`  top words: ${top.map(([w, n]) => `${w} ${n}`).join(', ')}`);
  log(`  chunks counted: ${[...byWorker].map(([w, n]) => `${w} ${n}`).join(', ')}`);
  log(same ? '  the spread count agrees with counting in one place' : '  the counts DIFFER');
  return same;
}

/** First run: the workers are nodes of this program; carol's closes half-way. */
async function inProcess(log: (line: string) => void): Promise<boolean> {
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  const byName = new Map<string, WtdNode>();
  try {
    const grants: GrantFile[] = [];
    for (const name of ['bob', 'carol', 'dave']) {
      const node = await WtdNode.start({ name, dataDir: ':memory:' });
      byName.set(name, node);
      node.load(new WordCount(name));
      await node.listen({ port: 0, host: '127.0.0.1' });
      grants.push(await node.grant({ missions: ['wordcount'], rate: '10000/s', label: 'alice' }));
    }
    const texts = chunks(4);
    log(`run 1: alice sends ${texts.length} chunks to a group of bob, carol and dave (one program)`);
    const result = await countOnGroup(
      alice,
      grants,
      texts,
      async () => {
        log("  half-way: carol's node stops (a Raspberry Pi unplugged)");
        await byName.get('carol')!.close();
        byName.delete('carol');
      },
      log,
    );
    return report(result, 4, log);
  } finally {
    for (const n of [...byName.values(), alice]) await n.close();
  }
}

/** A worker in its own OS process: this file run with `--worker <name>`. */
async function worker(name: string): Promise<void> {
  const node = await WtdNode.start({ name, dataDir: ':memory:' });
  node.load(new WordCount(name));
  await node.listen({ port: 0, host: '127.0.0.1' });
  const grant = await node.grant({ missions: ['wordcount'], rate: '10000/s', label: 'alice' });
  process.stdout.write(`${JSON.stringify(grant)}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void node.close().then(() => process.exit(0)));
}

/** Second run: each worker is its own OS process; carol's is killed with SIGKILL half-way. */
async function separateProcesses(log: (line: string) => void): Promise<boolean> {
  const children = new Map<string, ChildProcess>();
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  try {
    const grants: GrantFile[] = [];
    for (const name of ['bob', 'carol', 'dave']) {
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', name], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.set(name, child);
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      grants.push(JSON.parse(line) as GrantFile);
    }
    const texts = chunks(8);
    log(`run 2: ${texts.length} chunks to bob, carol and dave, each in its own process`);
    const result = await countOnGroup(
      alice,
      grants,
      texts,
      async () => {
        const carol = children.get('carol')!;
        log(`  half-way: carol's process ${carol.pid} is killed with SIGKILL, calls in flight`);
        const gone = once(carol, 'exit');
        carol.kill('SIGKILL');
        await gone;
      },
      log,
    );
    return report(result, 8, log);
  } finally {
    await alice.close();
    for (const child of children.values()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = once(child, 'exit');
      child.stdin!.end();
      await gone;
    }
  }
}

export async function main(log: (line: string) => void = console.log): Promise<boolean> {
  const first = await inProcess(log);
  const second = await separateProcesses(log);
  return first && second;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--worker');
  if (at > 0) await worker(process.argv[at + 1] ?? 'worker');
  else if (!(await main())) process.exitCode = 1;
}
