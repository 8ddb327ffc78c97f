import type { MissionTable } from '../missions/mission-table.js';
import type { WallClock } from '../runtime/clock.js';
import { LogThrottle } from '../runtime/log-throttle.js';
import type { Logger, Node } from '../runtime/node.js';
import { GrantGate } from '../security/grant-gate.js';
import type { GrantStore } from '../security/grant-store.js';
import type { KeyPair } from '../security/keys.js';
import type { InboxMessage } from '../wire/claims.js';
import type { OutboxLimits } from './outbox.js';
import { ReplayWindow } from '../security/replay-window.js';
import { Sessions, type SessionLimits } from '../security/sessions.js';
import { Answers } from './answers.js';
import type { Batcher } from './batch.js';
import { WireCodec } from '../wire/codec.js';
import type { CodecContext, NodeCodec } from './codec-context.js';
import { Executions } from './executions.js';
import { GrantIssuer } from './grant-issuer.js';
import { RequestHandlers } from './handlers.js';
import { NodeIdentity } from './identity.js';
import { Outbound } from './outbound.js';
import { PidRegistry } from './pid-registry.js';
import { PidRoutes } from './pid-routes.js';
import { RefusalLog } from './refusal-log.js';
import { parseMonitorBody, RemoteMonitors } from './remote-monitors.js';
import { Dispatcher } from './server.js';

/** The parts a {@link WtdNode} is a facade over, each with the few things it needs. */
export interface NodeParts {
  identity: NodeIdentity;
  codec: NodeCodec;
  replay: ReplayWindow;
  routes: PidRoutes;
  gate: GrantGate;
  executions: Executions;
  outbound: Outbound;
  issuer: GrantIssuer;
  refusals: RefusalLog;
  dispatcher: Dispatcher;
  /** The sessions callers made with this node and those it made as a caller. */
  sessions: Sessions;
  /** Whether requests go in sessions, encrypted (the `encryption` option). */
  encryption: boolean;
  /** The batchers of this node's connections (casts and pid messages that leave together): a settle point waits for them. */
  batches: { set: Set<Batcher>; onIdle(): Promise<void>; readonly size: number };
  /** Monitors that cross to other nodes, both ways (the runtime's hook for them). */
  monitors: RemoteMonitors;
  /** Delivers a message taken from another node's inbox to a local pid handed to that node (key id `kid`). */
  receive(kid: string, m: InboxMessage, context: CodecContext): void;
  /** The node's log for what strangers cause (refused connections, cut-off requests, failed requests): throttled. */
  log: LogThrottle;
}

/**
 * Makes and wires the parts of a node: who depends on whom is written here
 * once. When a grant ends (revoked here, found revoked or expired), what was
 * kept for it goes: its pid routes and peer entry, its imported key and
 * rate bucket (in the gate); its executions queue goes once idle.
 */
export function assembleParts(
  node: Node & { readonly missions: MissionTable },
  deps: {
    store: GrantStore;
    keys: KeyPair;
    clock: WallClock;
    whereabouts: () => { address: string | null; proxy: string | null };
    outbox: OutboxLimits;
    maxMonitorsPerPeer?: number;
    peerDownAfterMs?: number;
    /** Whether node `nodeId` can be reached now (a `monitorNode` of one that cannot is told `nodedown` at once). */
    known?: (nodeId: string) => boolean;
    encryption?: boolean;
    sessions?: Partial<SessionLimits>;
  },
): NodeParts {
  const { store, clock } = deps;
  const identity = new NodeIdentity(deps.keys);
  const pids = new PidRegistry(node, identity.id);
  const codec = new WireCodec<CodecContext>({
    out: (pid, ctx) => pids.hand(pid, ctx.sender),
    in: (billet, ctx) => pids.proxy(billet, ctx.route),
  });
  const replay = new ReplayWindow(store, clock);
  const log = new LogThrottle(node.logger, clock);
  // Messages that could not be delivered: a stranger can cause many, so they are throttled too.
  const messagesLog: Logger = { error: (message: string) => log.line('messages', message) };
  const routes = new PidRoutes({ codec, clock, logger: messagesLog, nodeId: identity.id, outbox: deps.outbox });
  const executions = new Executions();
  const refusals = new RefusalLog(clock);
  const monitors = new RemoteMonitors({
    node,
    pids,
    codec,
    logger: messagesLog,
    ...(deps.maxMonitorsPerPeer === undefined ? {} : { maxPerPeer: deps.maxMonitorsPerPeer }),
    ...(deps.known === undefined ? {} : { known: deps.known }),
    ...(deps.peerDownAfterMs === undefined ? {} : { downAfterMs: deps.peerDownAfterMs }),
    clock,
  });
  node._remoteMonitors = monitors;
  const sessions = new Sessions(clock, deps.sessions);
  const encryption = deps.encryption !== false;
  // A grant that ends takes its routes and sessions with it, and the monitors it carried say 'noconnection'.
  const gate = new GrantGate(store, clock, (kid) => {
    routes.forget(kid);
    sessions.endGrant(kid);
    monitors.peerGone(kid);
  });
  const issuer = new GrantIssuer({
    store,
    identity,
    name: node.name,
    clock,
    whereabouts: deps.whereabouts,
    ended: (kid) => gate.ended(kid),
  });
  const handlers = new RequestHandlers({
    node,
    missions: node.missions,
    gate,
    executions,
    routes,
    pids,
    codec,
    identity,
    clock,
    logger: node.logger,
    monitors,
    sessions,
  });
  const dispatcher = new Dispatcher({
    nodeId: identity.id,
    gate,
    routes,
    replay,
    clock,
    handlers,
    answers: new Answers(replay, clock),
    refusals,
    log,
    sessions,
    requireSessions: encryption,
    signReply: (claims) => identity.sign('reply', claims),
  });
  const outbound = new Outbound(clock);
  const batchers = new Set<Batcher>();
  const batches = {
    set: batchers,
    onIdle: async () => {
      await Promise.all([...batchers].map((b) => b.onIdle()));
    },
    get size() {
      let n = 0;
      for (const b of batchers) n += b.size;
      return n;
    },
  };
  const receive = (kid: string, m: InboxMessage, context: CodecContext): void => {
    if (m.ctl !== undefined) {
      monitors.receiveEntry(kid, m.id, parseMonitorBody({ ...m.ctl, token: m.token, reason: m.msg }), context);
      return;
    }
    const handed = pids.accept(m.id, m.token, kid);
    if (handed === undefined || !handed.sender.valid()) throw new Error('it names a pid not handed to that node');
    if (!node._sendRemote(handed.pid, codec.decode(m.msg, context))) throw new Error(`${handed.pid}'s mailbox is full`);
  };
  return {
    identity,
    codec,
    replay,
    routes,
    gate,
    executions,
    outbound,
    issuer,
    refusals,
    dispatcher,
    sessions,
    encryption,
    batches,
    monitors,
    receive,
    log,
  };
}
