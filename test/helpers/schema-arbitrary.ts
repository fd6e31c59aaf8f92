// Values a JSON Schema (as the API's OpenAPI 3.1 document spells them) accepts, as fast-check
// arbitraries: what the contract test (test/functions/contract.test.ts) sends.
//
// fast-check rather than a JSON Schema faker: it is already the project's property-testing
// library, its runs are seeded and reproducible with the same FUZZ-style seed as bad-input's, and
// it shrinks a failing request to the smallest one. This file is only the mapping of keywords to
// its arbitraries; a keyword it does not know throws, so a schema that grows one cannot be
// sampled wrong in silence (and the test checks every sample against the schema with Ajv).

import fc from "fast-check";

export type Schema = { [keyword: string]: unknown };

export interface SampleOptions {
  /** The schema a `$ref` ("#/components/schemas/X") names. */
  resolve: (ref: string) => Schema;
  /** Strings of each `format` the document uses (they must also fit the schema's other rules). */
  formats: Record<string, fc.Arbitrary<string>>;
  /** Arrays get at most this many items beyond their minItems (bodies stay small and quick). */
  extraItems?: number;
}

// Words that describe a value without constraining it.
const ANNOTATIONS = new Set(["description", "example", "examples", "default", "title"]);
const CONSTRAINTS = new Set([
  "$ref",
  "type",
  "enum",
  "const",
  "anyOf",
  "oneOf",
  "not",
  "pattern",
  "format",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "items",
  "minItems",
  "maxItems",
  "uniqueItems",
  "properties",
  "required",
  "additionalProperties",
  "minProperties",
  "dependentRequired",
  "dependentSchemas",
]);

/** An arbitrary of the values `schema` accepts. */
export function arbitraryOf(schema: Schema, options: SampleOptions): fc.Arbitrary<unknown> {
  for (const keyword of Object.keys(schema)) {
    if (!CONSTRAINTS.has(keyword) && !ANNOTATIONS.has(keyword)) {
      throw new Error(`schema-arbitrary: the keyword "${keyword}" is not handled`);
    }
  }
  const { $ref, anyOf, oneOf, not, ...rest } = schema;
  if (typeof $ref === "string") return arbitraryOf({ ...options.resolve($ref), ...rest }, options);
  const branches = (anyOf ?? oneOf) as Schema[] | undefined;
  if (branches) {
    // The branch's own rules and the ones around it (`type: "string"` beside an anyOf) both hold.
    return fc.oneof(...branches.map((branch) => arbitraryOf({ ...rest, ...branch }, options)));
  }
  if (not !== undefined) {
    const shape = Object.keys(not as Schema)
      .filter((keyword) => keyword !== "properties") // what `required` names, each {}
      .join();
    if (shape === "required") {
      // Objects that have all of these properties are refused: at most some of them.
      const all = (not as Schema).required as string[];
      return arbitraryOf(rest, options).filter(
        (v) => typeof v !== "object" || v === null || !all.every((name) => name in v),
      );
    }
    if (shape !== "const") {
      throw new Error(
        `schema-arbitrary: only "not": {"const": ...} or {"required": [...]} is handled`,
      );
    }
    const excluded = (not as Schema).const;
    return arbitraryOf(rest, options).filter((v) => JSON.stringify(v) !== JSON.stringify(excluded));
  }
  if ("const" in rest) return fc.constant(rest.const);
  if (Array.isArray(rest.enum)) return fc.constantFrom(...(rest.enum as unknown[]));
  if (Array.isArray(rest.type)) {
    return fc.oneof(...rest.type.map((type) => arbitraryOf({ ...rest, type }, options)));
  }
  switch (rest.type) {
    case "string":
      return stringOf(rest, options);
    case "integer":
      return fc.integer({
        min: (rest.minimum as number | undefined) ?? -1_000_000,
        max: (rest.maximum as number | undefined) ?? 1_000_000,
      });
    case "number":
      return fc.double({
        min: (rest.minimum as number | undefined) ?? -1e6,
        max: (rest.maximum as number | undefined) ?? 1e6,
        noNaN: true,
      });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return arrayOf(rest, options);
    case "object":
      return objectOf(rest, options);
    case undefined:
      return fc.jsonValue({ maxDepth: 2 }); // {}: any JSON value
    default:
      throw new Error(`schema-arbitrary: the type ${JSON.stringify(rest.type)} is not handled`);
  }
}

function stringOf(schema: Schema, options: SampleOptions): fc.Arbitrary<string> {
  const minLength = (schema.minLength as number | undefined) ?? 0;
  const maxLength = schema.maxLength as number | undefined;
  const fits = (s: string) =>
    s.length >= minLength && (maxLength === undefined || s.length <= maxLength);
  const pattern = typeof schema.pattern === "string" ? new RegExp(schema.pattern, "u") : null;
  if (typeof schema.format === "string") {
    const format = options.formats[schema.format];
    if (!format) throw new Error(`schema-arbitrary: no strings of format "${schema.format}"`);
    return format.filter((s) => fits(s) && (pattern === null || pattern.test(s)));
  }
  if (pattern) return fc.stringMatching(pattern).filter(fits);
  return fc.string({ minLength, maxLength: Math.min(maxLength ?? minLength + 20, minLength + 20) });
}

function arrayOf(schema: Schema, options: SampleOptions): fc.Arbitrary<unknown[]> {
  const item = arbitraryOf((schema.items as Schema | undefined) ?? {}, options);
  const minLength = (schema.minItems as number | undefined) ?? 0;
  const maxLength = Math.min(
    (schema.maxItems as number | undefined) ?? Number.POSITIVE_INFINITY,
    minLength + (options.extraItems ?? 4),
  );
  return schema.uniqueItems === true
    ? fc.uniqueArray(item, { minLength, maxLength, selector: (v) => JSON.stringify(v) })
    : fc.array(item, { minLength, maxLength });
}

function objectOf(schema: Schema, options: SampleOptions): fc.Arbitrary<Record<string, unknown>> {
  const properties = (schema.properties as Record<string, Schema> | undefined) ?? {};
  const record = fc.record(
    Object.fromEntries(
      Object.entries(properties).map(([name, property]) => [name, arbitraryOf(property, options)]),
    ),
    { requiredKeys: (schema.required as string[] | undefined) ?? [] },
  );
  const minProperties = (schema.minProperties as number | undefined) ?? 0;
  const dependencies = dependenciesOf(schema);
  return record.filter(
    (value) => Object.keys(value).length >= minProperties && dependencies(value),
  );
}

/**
 * The object's dependencies as a test: `dependentRequired` (a property present needs these too),
 * and `dependentSchemas` of the one shape the document uses, {"anyOf": [{"required": [...]}]}.
 */
function dependenciesOf(schema: Schema): (value: Record<string, unknown>) => boolean {
  const required = (schema.dependentRequired ?? {}) as Record<string, string[]>;
  const schemas = (schema.dependentSchemas ?? {}) as Record<string, Schema>;
  const alternatives = Object.entries(schemas).map(([name, dependent]) => {
    const shape = Object.keys(dependent).join();
    const anyOf = dependent.anyOf as Schema[] | undefined;
    // Each {"required": [...]}, with its properties named as {} (any value).
    const requires = (s: Schema) =>
      Object.keys(s)
        .filter((k) => k !== "properties")
        .join();
    if (shape !== "anyOf" || !anyOf?.every((s) => requires(s) === "required")) {
      throw new Error(
        `schema-arbitrary: only dependentSchemas of {"anyOf": [{"required": [...]}]}`,
      );
    }
    return [name, anyOf.map((s) => s.required as string[])] as const;
  });
  const has = (value: Record<string, unknown>, names: string[]) => names.every((n) => n in value);
  return (value) =>
    Object.entries(required).every(([name, needs]) => !(name in value) || has(value, needs)) &&
    alternatives.every(([name, sets]) => !(name in value) || sets.some((s) => has(value, s)));
}
