/**
 * `npm run bench:compare [-- a.json b.json]`: how far each row's paired
 * ratio moved between two runs of the benchmark (by default the two of the
 * noise demonstration: bench/results/local-only.json, run alone, and
 * local-only-hog.json, run beside a CPU hog). Exits 1 if a row moved by
 * 15 % or more.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIMIT = 0.15;
const results = join(dirname(fileURLToPath(import.meta.url)), '../../bench/results');
const [a = join(results, 'local-only.json'), b = join(results, 'local-only-hog.json')] = process.argv.slice(2);

interface Rowish {
  name: string;
  peer?: string;
  ratio?: number;
}
const read = (file: string): Rowish[] => JSON.parse(readFileSync(file, 'utf8')) as Rowish[];
const before = read(a);
const after = new Map(read(b).map((r) => [`${r.name} ${r.peer}`, r]));

let worst = 0;
console.log(`${'row'.padEnd(44)}  ${'ratio A'.padStart(8)}  ${'ratio B'.padStart(8)}  moved`);
for (const r of before) {
  const other = after.get(`${r.name} ${r.peer}`);
  if (r.ratio === undefined || other?.ratio === undefined) continue;
  const moved = other.ratio / r.ratio - 1;
  worst = Math.max(worst, Math.abs(moved));
  const flag = Math.abs(moved) >= LIMIT ? '  <- 15 % or more' : '';
  console.log(
    `${`${r.name} vs ${r.peer}`.padEnd(44)}  ${r.ratio.toFixed(2).padStart(8)}  ${other.ratio.toFixed(2).padStart(8)}  ${(moved * 100).toFixed(1).padStart(6)} %${flag}`,
  );
}
console.log(`\nlargest move: ${(worst * 100).toFixed(1)} % (limit ${LIMIT * 100} %)`);
process.exitCode = worst >= LIMIT ? 1 : 0;
