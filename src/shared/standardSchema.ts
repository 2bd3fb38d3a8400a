/**
 * The Standard Schema contract, version 1 (https://standardschema.dev), which
 * zod 4, valibot 1, ArkType and others implement. It is types only, so this
 * package takes no dependency on any schema library: these few declarations
 * are the spec's own, written out.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>
}

export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1
  /** The library that made the schema, e.g. "zod" or "valibot". */
  readonly vendor: string
  /** May return a promise when the schema has async checks. */
  readonly validate: (value: unknown) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>
  /** Never present at run time: it only carries the schema's types. */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined
}

export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardSchemaIssue[] }

/** One reason a value failed its schema; `message` may quote the value, so treat it as user data. */
export interface StandardSchemaIssue {
  readonly message: string
  /** Where in the value: keys, or `{ key }` segments. */
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined
}

/** What a value must be to pass the schema (what a client sends it). */
export type SchemaInput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['input']

/** What the schema returns for a value that passes (what a handler gets). */
export type SchemaOutput<S extends StandardSchemaV1> = NonNullable<S['~standard']['types']>['output']

/**
 * One endpoint's messages, declared once in a file the Worker and the page
 * both import: `in` is the schema for what clients send, `out` a schema or a
 * plain type for what the server sends (only `in` is ever run).
 */
export interface MessageSchemas {
  readonly in: StandardSchemaV1
  readonly out?: unknown
}

/** What a server's handlers get from `M`: the output of `M['in']`. */
export type ServerIn<M extends MessageSchemas> = SchemaOutput<M['in']>

/** What a server sends for `M`: `M['out']` (its output, if a schema), or the same as {@link ServerIn}. */
export type ServerOut<M extends MessageSchemas> = M extends { readonly out: infer O }
  ? O extends StandardSchemaV1
    ? SchemaOutput<O>
    : O
  : ServerIn<M>

/** What a client sends for `M`: the input of `M['in']`, which a transforming schema turns into {@link ServerIn}. */
export type ClientSends<M extends MessageSchemas> = SchemaInput<M['in']>

export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  const props = (value as { '~standard'?: unknown })['~standard']
  return (
    typeof props === 'object' &&
    props !== null &&
    (props as { version?: unknown }).version === 1 &&
    typeof (props as { validate?: unknown }).validate === 'function'
  )
}
