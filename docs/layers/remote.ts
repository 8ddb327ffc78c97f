/**
 * Nodes with an identity: grants, contact cards, signed remote calls, the wire codec, the grant store, and the observer of a running node.
 * @module Remote
 */
export { WireCodec, SqliteGrantStore, parseRate, WtdNode, RemoteNode, Observer } from '../../lib/index.js';
export type {
  JoinOptions,
  BilletDoux,
  PidHooks,
  Encoded,
  CodecLimits,
  GrantStore,
  GrantRecord,
  RateLimit,
  WtdNodeOptions,
  RateState,
  GrantOptions,
  GrantFile,
  ConnectOptions,
  ConnectTarget,
  ContactCard,
  ServerLimits,
  ConnectionLimits,
  OutboxLimits,
  OutboxStats,
  Refusal,
  RemoteCallOptions,
  BehaviourClient,
  ObserverSnapshot,
  ObservedProcess,
  TreeNode,
} from '../../lib/index.js';
