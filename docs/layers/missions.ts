/**
 * What a node offers other nodes: `@WtdExport` and `@WtdBehaviour`, the mission table, the operations of exposed behaviours and the arity of exported functions.
 * @module Missions
 */
export {
  WtdExport,
  WtdBehaviour,
  MissionTable,
  missionTable,
  BEHAVIOUR_OPS,
  BEHAVIOUR_OP_TABLE,
} from '../../lib/index.js';
export type {
  BehaviourKind,
  BehaviourOp,
  CamelCase,
  ExportedFunction,
  ExposedBehaviour,
  MissionEntry,
  LoadOptions,
  AnyClass,
  Catalogued,
  Arity,
  ExportOptions,
} from '../../lib/index.js';
