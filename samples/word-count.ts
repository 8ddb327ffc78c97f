/**
 * A word count spread over three nodes that keeps going when one dies.
 *
 * Bob's and Carol's nodes export `WordCount.count(text)` under the mission
 * `wordcount` and grant it to Alice. Alice's node splits a text into chunks
 * and hands them out in turn. Half-way through, Carol's node stops; the
 * calls to it fail with `ERR_NODE_DOWN` (or time out), Alice gives those
 * chunks to Bob instead, and the total comes out the same as counting
 * everything in one place. Counting a chunk twice cannot happen: a chunk
 * whose call failed is only handed on, its partial result never added.
 *
 * Run it: `node dist/samples/word-count.js`
 */
import { fileURLToPath } from 'node:url';
import { WtdExport, WtdNode, type RemoteNode, type WtdError } from '../lib/index.js';

export class WordCount {
  /** How many chunks this program's worker nodes have counted, by node name. */
  static counted = new Map<string, number>();

  @WtdExport('wordcount')
  static count(text: string, worker: string): Record<string, number> {
    WordCount.counted.set(worker, (WordCount.counted.get(worker) ?? 0) + 1);
    const counts: Record<string, number> = {};
    for (const word of text.toLowerCase().match(/[a-z']+/g) ?? []) counts[word] = (counts[word] ?? 0) + 1;
    return counts;
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

interface Worker {
  name: string;
  remote: RemoteNode;
  alive: boolean;
}

export async function main(log: (line: string) => void = console.log): Promise<void> {
  const alice = await WtdNode.start({ name: 'alice', dataDir: ':memory:' });
  const nodes = [alice];
  try {
    const workers: Worker[] = [];
    const byName = new Map<string, WtdNode>();
    for (const name of ['bob', 'carol']) {
      const node = await WtdNode.start({ name, dataDir: ':memory:' });
      nodes.push(node);
      byName.set(name, node);
      node.load(WordCount);
      await node.listen({ port: 0 });
      const grant = await node.grant({ missions: ['wordcount'], rate: '1000/s', label: 'alice' });
      workers.push({ name, remote: await alice.connect(grant), alive: true });
    }
    WordCount.counted.clear();
    const lines = TEXT.split('\n');
    log(`alice splits the text into ${lines.length} chunks for bob and carol`);
    const totals = new Map<string, number>();
    let turn = 0;
    for (const [i, chunk] of lines.entries()) {
      if (i === 2) {
        await byName.get('carol')!.close();
        log("carol's node stops (a Raspberry Pi unplugged)");
      }
      for (;;) {
        const live = workers.filter((w) => w.alive);
        if (live.length === 0) throw new Error('every worker node is down');
        const worker = live[turn++ % live.length]!;
        try {
          const counts = await worker.remote.call<Record<string, number>>('WordCount', 'count', [chunk, worker.name], {
            timeout: 2000,
          });
          for (const [word, n] of Object.entries(counts)) totals.set(word, (totals.get(word) ?? 0) + n);
          log(`chunk ${i + 1} counted by ${worker.name}`);
          break;
        } catch (err) {
          const code = (err as WtdError).code;
          if (code !== 'ERR_NODE_DOWN' && code !== 'ERR_CALL_TIMEOUT') throw err;
          worker.alive = false;
          log(`chunk ${i + 1}: ${worker.name} is down (${code}); handing it to another node`);
        }
      }
    }
    const expected = countHere(TEXT);
    const same = expected.size === totals.size && [...expected].every(([w, n]) => totals.get(w) === n);
    const top = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 3);
    log(`top words: ${top.map(([w, n]) => `${w} ${n}`).join(', ')}`);
    log(`chunks counted: ${[...WordCount.counted].map(([w, n]) => `${w} ${n}`).join(', ')}`);
    log(same ? 'the spread count agrees with counting in one place' : 'the counts DIFFER');
  } finally {
    for (const n of nodes.reverse()) await n.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
