/**
 * Names, e-mails, missions and addresses carrying ESC, BEL and C1 bytes.
 * Issue 10: `wtd directory` printed them raw, so a stranger set the
 * terminal's title and colours. What `wtd directory` prints must hold no
 * control character but newlines and tabs.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bounded, tally, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawProxyClient } from '../wire.js';

const ESC = '\u001b';
const BEL = '\u0007';
const CSI = '\u009b';
/** Everything a terminal acts on, but newline and tab. */
// eslint-disable-next-line no-control-regex -- the point: find control characters
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

const VARIANTS = [
  { name: `${ESC}]0;owned by mallory${BEL}`, email: 'title@example.org', missions: ['greetings'], address: null },
  { name: 'colours', email: `red${ESC}[31m@example.org`, missions: [`red${ESC}[31m`], address: null },
  { name: 'bell', email: 'bell@example.org', missions: [`ding${BEL}`, `c1${CSI}2J`], address: null },
  {
    name: 'address',
    email: 'addr@example.org',
    missions: ['greetings'],
    address: `http://x${ESC}]0;owned${BEL}.example.org`,
  },
  { name: `c1${CSI}2J`, email: 'c1@example.org', missions: ['greetings'], address: `http://${CSI}31m.example.org` },
];

/** Runs `wtd directory --proxy <url>` (by pid, killed if it takes over 10 s) and returns what it printed. */
function wtdDirectory(url: string): Promise<string> {
  const main = fileURLToPath(new URL('../../../lib/cli/main.js', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, 'directory', '--proxy', url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    const timer = setTimeout(() => process.kill(child.pid!, 'SIGKILL'), 10_000);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

export const controlChars: Scenario = {
  name: 'control-chars',
  title: 'ESC/BEL bytes in names, e-mails, missions and addresses',
  counts: 'control characters `wtd directory` printed (none may)',
  caps: { short: { timeMs: 2500, count: 100 }, full: { timeMs: 5000, count: 200 } },
  async prepare(env) {
    return {
      async finish() {
        const printed = await wtdDirectory(env.proxy.url);
        const found = printed.match(CONTROL) ?? [];
        return {
          accepted: found.length,
          allowed: 0,
          detail: {
            printed: JSON.stringify(printed).slice(0, 2000),
            controlChars: [...new Set(found)].map((c) => c.charCodeAt(0)),
          },
        };
      },
    };
  },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const outcomes: Record<string, number> = {};
    try {
      const clients: { client: RawProxyClient; v: (typeof VARIANTS)[number] }[] = [];
      for (const v of VARIANTS) {
        const { client, res } = await RawProxyClient.register(http, env.proxy, v.email, v.name);
        tally(outcomes, `register ${res.status === 200 ? 'taken' : (res.code ?? res.status)}`);
        clients.push({ client, v });
      }
      env.started();
      // Pinging until the end, so that they are online when the directory is read.
      const { runs, elapsedMs } = await bounded(
        env.caps,
        clients.length,
        async (i) => {
          const { client, v } = clients[i % clients.length]!;
          const res = await client.ping({ name: v.name, missions: v.missions, address: v.address });
          tally(outcomes, `ping ${res.status === 200 ? 'taken' : (res.code ?? res.status)}`);
        },
        1000,
      );
      return { attempted: runs, accepted: 0, allowed: null, detail: { outcomes, elapsedMs } };
    } finally {
      http.close();
    }
  },
};
