import type * as fixture from './fixture/worker.js'

type Namespace<Name extends keyof typeof fixture> = DurableObjectNamespace<
  InstanceType<(typeof fixture)[Name]>
>

declare global {
  namespace Cloudflare {
    interface Env {
      FIXTURE_VAR: string
      QUEUED: Namespace<'QueuedObject'>
      HUNG: Namespace<'HungObject'>
      RATED: Namespace<'RatedObject'>
      PER_KEY: Namespace<'PerKeyObject'>
      FLOW: Namespace<'FlowObject'>
      LIFECYCLE: Namespace<'LifecycleObject'>
      REPLACED: Namespace<'ReplacedObject'>
      IDS: Namespace<'IdsObject'>
      DATA: Namespace<'DataObject'>
      CLOSER: Namespace<'CloserObject'>
      JSON_WS: Namespace<'JsonObject'>
      CUSTOM: Namespace<'CustomObject'>
      RAW_WS: Namespace<'RawObject'>
      FAULTY: Namespace<'FaultyObject'>
      ORDERING: Namespace<'OrderingObject'>
      GUARDED: Namespace<'GuardedObject'>
      ORIGINS: Namespace<'LenientOriginsObject'>
      ORIGINS_STRICT: Namespace<'StrictOriginsObject'>
      ROUTED: Namespace<'RoutedObject'>
      MOUNTED: Namespace<'MountedObject'>
      COUNTER: Namespace<'CounterObject'>
      ORPHAN: Namespace<'OrphanObject'>
      CONTRACT: Namespace<'ContractObject'>
      ROOMS: Namespace<'RoomsObject'>
      TENANTS: Namespace<'TenantsObject'>
      FANOUT: Namespace<'FanoutObject'>
      HEARTBEAT: Namespace<'HeartbeatObject'>
      HEARTBEAT_CUSTOM: Namespace<'CustomHeartbeatObject'>
      HEARTBEAT_OFF: Namespace<'NoHeartbeatObject'>
      IDLE: Namespace<'IdleObject'>
      CAPPED: Namespace<'CappedObject'>
      SIZED: Namespace<'SizedObject'>
      SIZED_DEFAULT: Namespace<'SizedByDefaultObject'>
      AUTH_SECRET: string
      GATE: Namespace<'GateObject'>
      SHAPED: Namespace<'ShapedObject'>
      SHAPED_STRICT: Namespace<'ShapedStrictObject'>
      CARELESS: Namespace<'CarelessObject'>
      AUTH: Namespace<'AuthObject'>
      BROKEN: Namespace<'BrokenObject'>
      PENDING: Namespace<'PendingObject'>
      SESSIONS: Namespace<'SessionsObject'>
      BRIEF_SESSIONS: Namespace<'BriefSessionsObject'>
      UNLOGGED_SESSIONS: Namespace<'UnloggedSessionsObject'>
      STRICT_SESSIONS: Namespace<'StrictSessionsObject'>
      PAGED_SESSIONS: Namespace<'PagedSessionsObject'>
      AGED_SESSIONS: Namespace<'AgedSessionsObject'>
      OWNED_SESSIONS: Namespace<'OwnedSessionsObject'>
      PRESENCE: Namespace<'PresenceObject'>
      BRIEF_PRESENCE: Namespace<'BriefPresenceObject'>
      SHARDS: Namespace<'ShardsObject'>
      GROW: Namespace<'GrowObject'>
      SCHEMA_ZOD: Namespace<'SchemaZodObject'>
      SCHEMA_ZOD_STRICT: Namespace<'SchemaZodStrictObject'>
      SCHEMA_ZOD_ASYNC: Namespace<'SchemaZodAsyncObject'>
      SCHEMA_VALIBOT: Namespace<'SchemaValibotObject'>
      SCHEMA_VALIBOT_STRICT: Namespace<'SchemaValibotStrictObject'>
      SCHEMA_VALIBOT_ASYNC: Namespace<'SchemaValibotAsyncObject'>
      SCHEMA_PER_EVENT: Namespace<'SchemaPerEventObject'>
      SCHEMA_HUNG: Namespace<'SchemaHungObject'>
    }
    interface GlobalProps {
      mainModule: typeof fixture
    }
  }
}
