/**
 * Call streams flooded: eight streams (`PUT /stream`, `Upgrade:
 * wtd-calls`) from one grant, each sent bursts of 100 sealed calls at once,
 * under a 10/s grant, plus one stream that sends calls and never reads an
 * answer. The node must run no more of them than the grant's rate allows,
 * refuse the rest line by line (`ERR_RATE_LIMITED`), hold no more than a
 * stream may run, and keep answering honest callers meanwhile.
 */
import { connect, type Socket } from 'node:net';
import { bounded, tally, withinRate, type Scenario } from '../scenario.js';
import { ATTACKER, RawHttp, RawSession, encodeArgs, grantKey, newRawKey } from '../wire.js';

const BURST = 100;
const STREAMS = 8;

/** A raw call stream from the attacker's address: lines out, answers by tag. */
class RawStream {
  readonly #socket: Socket;
  #text = '';
  #upgraded = false;
  #tag = 0;
  readonly #waiting = new Map<number, (line: string) => void>();
  closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', (c: Buffer) => this.#take(c.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const answer of this.#waiting.values()) answer('closed');
      this.#waiting.clear();
    });
  }

  static open(url: string, read = true): Promise<RawStream> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port), localAddress: ATTACKER });
      const stream = new RawStream(socket);
      if (!read) socket.pause();
      socket.once('connect', () =>
        socket.write(
          `PUT /stream HTTP/1.1\r\nHost: ${hostname}\r\nConnection: Upgrade\r\nUpgrade: wtd-calls\r\nContent-Length: 0\r\n\r\n`,
        ),
      );
      socket.once('error', reject);
      // Not reading: taken as open at once (its 101 is among what it does not read).
      if (!read) socket.once('connect', () => resolve(stream));
      else stream.#opened = () => resolve(stream);
    });
  }

  #opened: (() => void) | undefined;

  #take(chunk: string): void {
    this.#text += chunk;
    if (!this.#upgraded) {
      const end = this.#text.indexOf('\r\n\r\n');
      if (end === -1) return;
      this.#upgraded = true;
      this.#text = this.#text.slice(end + 4);
      this.#opened?.();
    }
    let nl;
    while ((nl = this.#text.indexOf('\n')) !== -1) {
      const line = this.#text.slice(0, nl);
      this.#text = this.#text.slice(nl + 1);
      const tag = Number(line.slice(0, line.indexOf(' ')));
      const answer = this.#waiting.get(tag);
      this.#waiting.delete(tag);
      answer?.(line);
    }
  }

  /** Sends lines for `texts` at once; resolves with each answer line ('closed' if the stream ended first). */
  burst(texts: string[]): Promise<string[]> {
    if (this.closed) return Promise.resolve(texts.map(() => 'closed'));
    const lines: string[] = [];
    const answers = texts.map((text) => {
      const tag = ++this.#tag;
      lines.push(`${tag} /apply/Greeter/hello ${text}\n`);
      return new Promise<string>((resolve) => this.#waiting.set(tag, resolve));
    });
    this.#socket.write(lines.join(''));
    return Promise.all(answers);
  }

  /** Writes lines and never waits for (or reads) their answers. */
  blind(texts: string[]): void {
    if (!this.closed) this.#socket.write(texts.map((t) => `${++this.#tag} /apply/Greeter/hello ${t}\n`).join(''));
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The status and code of an answer line. */
function outcomeOf(line: string): string {
  if (line === 'closed') return 'stream closed';
  const [, status = '', , type = ''] = line.split(' ', 4);
  if (status === '200') return 'ran';
  if (type.startsWith('application/json')) {
    try {
      const body = line.split(' ').slice(4).join(' ');
      return (JSON.parse(body) as { error?: { code?: string } }).error?.code ?? `HTTP ${status}`;
    } catch {
      return `HTTP ${status}`;
    }
  }
  return `HTTP ${status}`;
}

export const streamFlood: Scenario = {
  name: 'stream-flood',
  title: `${STREAMS} call streams, bursts of ${BURST} calls, one never read, 10/s grant`,
  counts: 'calls the node ran',
  caps: { short: { timeMs: 3000, count: 200 }, full: { timeMs: 15_000, count: 2000 } },
  async attack(env) {
    const http = new RawHttp(ATTACKER);
    const key = grantKey(env.grant);
    const iss = newRawKey().id;
    const outcomes: Record<string, number> = {};
    let ran = 0;
    let calls = 0;
    const streams: RawStream[] = [];
    try {
      const session = await RawSession.open(http, env.node, key, iss);
      for (let i = 0; i < STREAMS; i++) streams.push(await RawStream.open(env.node.url));
      const deaf = await RawStream.open(env.node.url, false);
      env.started();
      const sealed = (n: number): string[] =>
        Array.from(
          { length: n },
          (_, i) => session.seal('/apply/Greeter/hello', encodeArgs([`mallory-${i}`]), { timeout: 5000 }).text,
        );
      deaf.blind(sealed(BURST * 4));
      const { runs, elapsedMs } = await bounded(env.caps, STREAMS, async (i) => {
        const texts = sealed(BURST);
        calls += texts.length;
        for (const line of await streams[i % STREAMS]!.burst(texts)) {
          const outcome = outcomeOf(line);
          if (outcome === 'ran') ran++;
          tally(outcomes, outcome);
        }
      });
      deaf.close();
      return {
        attempted: calls + BURST * 4,
        accepted: ran,
        // The deaf stream's calls may run too: they count in what the grant allows, not in what was seen to run.
        allowed: withinRate(env.rate, elapsedMs),
        detail: { bursts: runs, outcomes, elapsedMs, streamsClosed: streams.filter((s) => s.closed).length },
      };
    } finally {
      for (const s of streams) s.close();
      http.close();
    }
  },
};
