import type * as fixture from './fixture/worker.js'

type Namespace<Name extends keyof typeof fixture> = DurableObjectNamespace<
  InstanceType<(typeof fixture)[Name]>
>

declare global {
  namespace Cloudflare {
    interface Env {
      FIXTURE_VAR: string
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
    }
    interface GlobalProps {
      mainModule: typeof fixture
    }
  }
}
