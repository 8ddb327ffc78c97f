/**
 * A node as on a Raspberry Pi, in its own OS process, with the defaults a
 * user gets: a data directory, joined to a proxy, doing nothing else. After
 * `idle` ms of that it writes one line of JSON on stdout: its resident
 * memory and the CPU it used meanwhile, then closes.
 * Usage: idle-node-process.js <proxy url> <idle ms>.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WtdNode } from '../lib/index.js';

/** The highest resident memory this process reached, from /proc (Linux; NaN elsewhere). */
function peakRssKb(): number {
  try {
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

const [url, idle] = process.argv.slice(2) as [string, string];
const dataDir = mkdtempSync(join(tmpdir(), 'wtd-bench-idle-'));
const node = await WtdNode.start({ name: 'pi', dataDir });
try {
  await node.joinProxy({ url, email: 'pi@example.org' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, Number(idle)));
  const cpu = process.cpuUsage(cpu0);
  const ms = performance.now() - t0;
  const peakKb = peakRssKb();
  const mb = (bytes: number): number => bytes / (1024 * 1024);
  process.stdout.write(
    `${JSON.stringify({
      rssMb: mb(process.memoryUsage().rss),
      peakRssMb: peakKb / 1024,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / ms) * 100,
      seconds: ms / 1000,
    })}\n`,
  );
} finally {
  await node.close();
  rmSync(dataDir, { recursive: true, force: true });
}
