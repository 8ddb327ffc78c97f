import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CommandError, DataDirLockedError, WireError, WtdError } from '../errors.js';
import { BEHAVIOUR_OP_TABLE, camelCase, type BehaviourKind, type BehaviourOp } from '../missions/behaviour-ops.js';
import type { Catalogued } from '../missions/mission-table.js';
import { isContactCard, type ContactCard } from '../transport/contact-card.js';
import type { RemoteNode } from '../transport/remote-node.js';
import { WtdNode } from '../transport/wtd-node.js';
import { closest, didYouMean } from './args.js';
import {
  UsageError,
  either,
  openNodeIn,
  readConfig,
  readGrantFile,
  readJsonFile,
  type CliGrantFile,
  type Command,
  type Ctx,
} from './command.js';
import { hinted, withFactsOf } from './report.js';

/**
 * `wtd call`: one call to another node, with a grant file (its own key) or
 * with the other node's contact card (this node's key, for a grant made to
 * it); to an exported function, or to an operation of a behaviour. Ctrl-C
 * ends it at once, saying whether the call may have run.
 * @module
 */

/** How many persistent identities proxied calls with grant files use per data directory (one per call at a time). */

/** Whom a call goes to and as whom it signs. */
interface Target {
  /** The other node's name, for messages. */
  name: string;
  grant?: CliGrantFile;
  card?: ContactCard;
  /** The missions the call may name: the grant file's; unknown with a card. */
  missions: string[] | undefined;
  covers: Record<string, Catalogued> | undefined;
}

/** What is asked. */
type Ask =
  | { kind: 'function'; module: string; fn: string; args: unknown[] }
  | { kind: 'behaviour'; name: string; op: string; args: unknown[]; behaviour: BehaviourKind; mission: string };

export const call: Command = {
  summary: 'call a function or a behaviour of another node, with a grant file or their card',
  usage:
    'wtd call <grant file> <module> <function> [args as a JSON array] [--timeout ms]\n' +
    '       wtd call <grant file> --behaviour <name> <operation> [argument ...]\n' +
    '       wtd call --to <their card> [--key-dir DIR] <module> <function> [args]',
  help: `Calls <module>.<function>(...args) on the node that made the grant file, directly or through
its proxy, and prints the result as JSON. Example: wtd call bob.grant Greeter hello '["bob"]'
--behaviour <name> calls an operation of a behaviour registered as <name> and exposed with
@WtdBehaviour: call or cast for a GenServer or GenStatem, notify or call for a GenEvent...
Each argument is JSON; a word that is not JSON is a string: wtd call bob.grant --behaviour visitors call visit
--mission <name> says which mission to act under (needed for a behaviour when the grant has several).
--to alice.card calls under a grant made to your own key ('wtd grant --to' on Alice's side), signing
with the key of the node in --key-dir (default: --data-dir).
Calls with grant files sign as one node kept in <data dir>/caller (a grant file is bound to
the first node that uses it).
Ctrl-C ends the call at once and says whether it may have run (exit 130).`,
  options: {
    timeout: { type: 'string' },
    email: { type: 'string' },
    proxy: { type: 'string' },
    to: { type: 'string' },
    'key-dir': { type: 'string' },
    behaviour: { type: 'string' },
    mission: { type: 'string' },
  },
  args: { min: 0, max: 64 },
  async run(ctx) {
    const v = ctx.values;
    const positionals = [...ctx.positionals];
    const target = readTarget(ctx, positionals);
    const ask = readAsk(ctx, target, positionals);
    const timeout = v.timeout === undefined ? 5000 : Number(v.timeout);
    if (!(Number.isFinite(timeout) && timeout > 0)) {
      throw new UsageError(`--timeout takes a number of milliseconds, got '${String(v.timeout)}'`);
    }
    const proxy = (v.proxy as string | undefined) ?? target.grant?.node.proxy ?? target.card?.proxy ?? null;
    const address = target.grant?.node.address ?? target.card?.address ?? null;
    if (proxy !== null) checkUrl(proxy, '--proxy');
    const viaProxy = address === null && proxy !== null;
    if (address === null && proxy === null) {
      throw new WtdError(
        'ERR_NO_ADDRESS',
        `${target.grant !== undefined ? 'the grant file' : `${target.name}'s card`} says neither where ${target.name} listens nor a proxy`,
      );
    }

    // Everything before the request is sent can be stopped with nothing done.
    let sent = false;
    let node: WtdNode | undefined;
    const work = (async () => {
      node = await callerNode(ctx, target, viaProxy);
      if (viaProxy) {
        ctx.io.err(`joining the proxy at ${proxy}…`);
        await joinProxy(ctx, node, proxy!, target);
      }
      const remote = await node.connect(target.grant ?? target.card!);
      sent = true;
      return ask.kind === 'function'
        ? remote.call(ask.module, ask.fn, ask.args, { timeout, ...missionOption(v.mission) })
        : behaviourCall(remote, ask, timeout);
    })();
    const STOPPED = Symbol('stopped');
    try {
      const result = await Promise.race([work, ctx.io.stop.then(() => STOPPED)]);
      if (result === STOPPED) {
        work.catch(() => undefined); // it ends when the node closes; nobody waits for it any more
        throw interrupted(target, sent);
      }
      ctx.io.out(JSON.stringify(result, null, ctx.json ? 2 : undefined) ?? 'undefined');
      return 0;
    } catch (err) {
      throw explain(err, target, ask, timeout);
    } finally {
      await (node as WtdNode | undefined)?.close();
    }
  },
};

function readTarget(ctx: Ctx, positionals: string[]): Target {
  const to = ctx.values.to as string | undefined;
  if (to !== undefined) {
    const card = readJsonFile(to, 'the card') as ContactCard;
    if (!isContactCard(card)) {
      throw new UsageError(`${to} is not a contact card`, "'wtd whoami --out <file>' on the other node writes one");
    }
    if ((card as unknown as { wtd: string }).wtd === 'grant')
      throw new UsageError(`${to} is a grant file: give it without --to`);
    return { name: card.name, card, missions: undefined, covers: undefined };
  }
  const file = positionals.shift();
  if (file === undefined) throw new UsageError('give a grant file (or --to <their card>), then what to call');
  if (ctx.values['key-dir'] !== undefined) {
    throw new UsageError('--key-dir goes with --to: a grant file carries its own key');
  }
  const grant = readGrantFile(file);
  return { name: grant.node.name, grant, missions: grant.missions, covers: grant.covers };
}

function readAsk(ctx: Ctx, target: Target, positionals: string[]): Ask {
  const name = ctx.values.behaviour as string | undefined;
  if (name === undefined) {
    const [module, fn, argsText, ...extra] = positionals;
    if (module === undefined || fn === undefined)
      throw new UsageError('give a module and a function, e.g. Greeter hello');
    if (extra.length > 0) {
      throw new UsageError(
        `the arguments are one JSON array, got ${extra.length + 1} arguments after the function`,
        `quote the array: '${JSON.stringify([argsText, ...extra])}'`,
      );
    }
    let args: unknown = [];
    if (argsText !== undefined) {
      try {
        args = JSON.parse(argsText);
      } catch {
        throw new UsageError(`the arguments must be a JSON array, e.g. '["bob", 2]'; got ${argsText}`);
      }
      if (!Array.isArray(args)) throw new UsageError(`the arguments must be a JSON array, e.g. '[${argsText}]'`);
    }
    return { kind: 'function', module, fn, args: args as unknown[] };
  }
  const [op, ...rest] = positionals;
  if (op === undefined) {
    throw new UsageError(`which operation of ${name}? e.g. wtd call <grant file> --behaviour ${name} call '"count"'`);
  }
  const args = rest.map((text) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text; // a bare word is a string
    }
  });
  const behaviour = behaviourFor(op, args.length);
  const mission = (ctx.values.mission as string | undefined) ?? onlyMission(target);
  return { kind: 'behaviour', name, op, args, behaviour, mission };
}

/** A behaviour kind with operation `op` taking `n` arguments; the path is the same for each that has it. */
function behaviourFor(op: string, n: number): BehaviourKind {
  const kinds = Object.entries(BEHAVIOUR_OP_TABLE) as unknown as [BehaviourKind, Record<string, BehaviourOp>][];
  const having = kinds.filter(([, ops]) => Object.hasOwn(ops, op));
  if (having.length === 0) {
    const all = [...new Set(kinds.flatMap(([, ops]) => Object.keys(ops)))];
    throw new UsageError(
      `no behaviour has an operation '${op}'${didYouMean(op, all)}`,
      `the operations are ${either(all)}`,
    );
  }
  const fits = having.find(([, ops]) => ops[op]!.arity === n);
  if (fits === undefined) {
    const arities = [...new Set(having.map(([, ops]) => ops[op]!.arity))];
    throw new UsageError(
      `${op} takes ${either(arities.map(String))} argument${arities.length === 1 && arities[0] === 1 ? '' : 's'}, got ${n}`,
      'give each argument as JSON after the operation',
    );
  }
  return fits[0];
}

function onlyMission(target: Target): string {
  if (target.missions?.length === 1) return target.missions[0]!;
  if (target.missions === undefined) {
    throw new UsageError(
      `which mission is the behaviour under? ${target.name}'s card does not say what was granted: --mission <name>`,
    );
  }
  throw new UsageError(`which mission is the behaviour under? --mission ${either(target.missions)}`);
}

function missionOption(mission: unknown): { mission?: string } {
  return typeof mission === 'string' ? { mission } : {};
}

function behaviourCall(
  remote: RemoteNode,
  ask: Extract<Ask, { kind: 'behaviour' }>,
  timeout: number,
): Promise<unknown> {
  const client = remote.behaviour(ask.behaviour, ask.mission, ask.name) as unknown as Record<
    string,
    (...args: unknown[]) => Promise<unknown>
  >;
  return client[camelCase(ask.op)]!(...ask.args, { timeout });
}

/**
 * The node the call runs in. With a card: the node of `--key-dir` (its key
 * signs). With a grant file: the one kept in `<data dir>/caller`, because a
 * grant file is bound to the first node that uses it (and so the proxy
 * lists one caller, not one per call). A direct call takes no lock, so
 * several can run at once; one through a proxy holds it while it runs.
 */
async function callerNode(ctx: Ctx, target: Target, viaProxy: boolean): Promise<WtdNode> {
  if (target.card !== undefined) {
    const dir = resolve((ctx.values['key-dir'] as string | undefined) ?? ctx.dataDir);
    return (await openNodeIn(dir, true)).node;
  }
  const dir = join(ctx.dataDir, 'caller');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    return await WtdNode.start({ name: 'wtd-call', dataDir: dir, shared: !viaProxy });
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      throw hinted(err, 'another wtd call through a proxy runs with this identity: wait for it to end');
    }
    throw err;
  }
}

async function joinProxy(ctx: Ctx, node: WtdNode, proxy: string, target: Target): Promise<void> {
  let email = ctx.values.email as string | undefined;
  if (email === undefined && target.card !== undefined) {
    const dir = resolve((ctx.values['key-dir'] as string | undefined) ?? ctx.dataDir);
    email = readConfig(dir).email ?? undefined;
    if (email === undefined) {
      throw new UsageError(`${node.name} has not joined a proxy before: give --email to register with it`);
    }
  }
  // One e-mail per key at a proxy: a caller node without one registers under its own id.
  email ??= `wtd-call+${node.id}@localhost`;
  if (!email.includes('@')) throw new UsageError(`--email takes an e-mail address, got '${email}'`);
  try {
    await node.joinProxy({ url: proxy, email });
  } catch (err) {
    if (err instanceof DataDirLockedError) {
      throw new CommandError(
        'ERR_DATA_DIR_LOCKED',
        `${node.name}'s node is running${err.pid === undefined ? '' : ` (process ${err.pid})`} and takes the answers the proxy holds for its key`,
        { hint: 'make the call from that program, or stop the node first' },
      );
    }
    throw err;
  }
}

export function checkUrl(url: string, flag: string): void {
  if (!/^https?:\/\/[^/\s]+/.test(url))
    throw new UsageError(`${flag} takes an http(s) URL, e.g. http://proxy.example.org:14152; got '${url}'`);
}

function interrupted(target: Target, sent: boolean): CommandError {
  return withFactsOf(
    new CommandError(
      'ERR_INTERRUPTED',
      sent
        ? `interrupted while waiting for ${target.name}'s answer: the call may have run there`
        : 'interrupted before the call was sent: it did not run',
    ),
    { mayHaveRun: sent },
  );
}

/** The error of a failed call, in the command's words: what was called, on which node. */
function explain(err: unknown, target: Target, ask: Ask, timeout: number): unknown {
  if (!(err instanceof WtdError) || err instanceof CommandError) return err;
  const what = ask.kind === 'function' ? `${ask.module}/${ask.fn}` : `${ask.name} ${ask.op}`;
  switch (err.code) {
    case 'ERR_MISSION_NOT_GRANTED': {
      const covered = coveredPaths(target.covers);
      const close = ask.kind === 'function' ? closest(what, covered) : undefined;
      const by = target.grant !== undefined ? 'this grant' : `${target.name}'s grant to you`;
      return hinted(
        new WireError(
          err.code,
          (err as WireError).status,
          `${by} does not cover ${what}${ask.kind === 'behaviour' ? ` under ${ask.mission}` : ''}` +
            (close === undefined ? '' : ` (did you mean ${close}?)`),
        ),
        covered.length > 0
          ? `it covers ${covered.join(', ')}`
          : target.missions !== undefined
            ? `it covers the mission${target.missions.length === 1 ? '' : 's'} ${either(target.missions)}; ask ${target.name}'s owner what they hold`
            : `ask ${target.name}'s owner what they granted`,
      );
    }
    case 'ERR_CALL_TIMEOUT':
      return withFactsOf(
        hinted(
          new WtdError(err.code, `${target.name} did not start the call within ${timeout} ms: it did not run`),
          'is the node running (and on its proxy)? --timeout <ms> waits longer',
        ),
        { mayHaveRun: false },
      );
    case 'ERR_MAYBE_RAN':
      return withFactsOf(
        hinted(
          new WtdError(err.code, `no answer from ${target.name} within ${timeout} ms: the call may have run there`),
          'look at its effect before you call again; --timeout <ms> waits longer',
        ),
        { mayHaveRun: true },
      );
    case 'ERR_REMOTE_EXCEPTION':
      return new WtdError(err.code, `${what} failed on ${target.name}: ${err.message}`);
    case 'ERR_NO_PROXY':
      return new WtdError(err.code, `${target.name} has no address to call directly, and no proxy was given`);
    default:
      return err;
  }
}

/** `Greeter/hello`, ... from what a grant file says its missions covered. */
function coveredPaths(covers: Record<string, Catalogued> | undefined): string[] {
  if (covers === undefined) return [];
  return Object.values(covers).flatMap((c) => [
    ...c.functions.map((f) => f.split('/').slice(0, 2).join('/')),
    ...c.behaviours.map((b) => `${b.module} (${b.kind})`),
  ]);
}
