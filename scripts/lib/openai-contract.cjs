/**
 * Validates answers against OpenAI's published OpenAPI document (openai-openapi, 3.1 with OpenAPI 3.0 habits).
 *
 * The document is read as it is published and normalised here, never copied into the repository:
 * - `nullable: true` (3.0) becomes a union with null, also where it sits beside `allOf`/`$ref` or inside an `allOf`
 *   member that only says "this may be null" (Upload.file);
 * - boolean `exclusiveMinimum`/`exclusiveMaximum` (3.0) become the numeric 2020-12 keywords.
 * Answers are validated with ajv's JSON Schema 2020-12 dialect against the schema the document itself gives for the
 * route (paths -> responses -> content), or against a named component where a route has none (error envelopes).
 */
// CommonJS so that both the .mjs script and jest's CommonJS runtime (test/unit/openai-contract.spec.ts) load it.
const fs = require('node:fs');
const Ajv2020 = require('ajv/dist/2020').default;

const DOC_ID = 'https://loraplane.local/openai-openapi.json';
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
/** An allOf member that carries no constraint but `nullable` (plus words for people). */
const onlyNullable = (m) => isObject(m) && m.nullable === true && Object.keys(m).every((k) => ['nullable', 'description', 'title'].includes(k));

function normaliseBounds(node) {
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']]) {
    if (typeof node[flag] !== 'boolean') continue;
    if (node[flag] && typeof node[bound] === 'number') {
      node[flag] = node[bound];
      delete node[bound];
    } else delete node[flag];
  }
}

function normaliseNullable(node) {
  if (node.nullable !== true) {
    delete node.nullable;
    return node;
  }
  delete node.nullable;
  if (typeof node.type === 'string') {
    node.type = [node.type, 'null'];
    if (Array.isArray(node.enum) && !node.enum.includes(null)) node.enum = [...node.enum, null];
    return node;
  }
  // No plain type (a $ref, allOf, anyOf...): "this, or null".
  const { description, title, ...rest } = node;
  return { ...(description ? { description } : {}), ...(title ? { title } : {}), anyOf: [rest, { type: 'null' }] };
}

/** Returns a normalised deep copy of any schema subtree. */
function normalise(node) {
  if (Array.isArray(node)) return node.map(normalise);
  if (!isObject(node)) return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = normalise(v);
  // Before the members are normalised on their own: an allOf member saying only "nullable" makes the whole nullable.
  if (Array.isArray(node.allOf) && node.allOf.some(onlyNullable)) {
    out.allOf = node.allOf.filter((m) => !onlyNullable(m)).map(normalise);
    out.nullable = true;
  }
  normaliseBounds(out);
  return normaliseNullable(out);
}

function loadContract(documentPath) {
  const raw = JSON.parse(fs.readFileSync(documentPath, 'utf8'));
  const doc = { $id: DOC_ID, components: { schemas: normalise(raw.components?.schemas ?? {}) } };
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema(doc);
  const compiled = new Map();
  const validatorOf = (ref) => {
    if (!compiled.has(ref)) compiled.set(ref, ajv.compile({ $ref: ref.startsWith('#') ? `${DOC_ID}${ref}` : ref }));
    return compiled.get(ref);
  };

  /** The component the document names for a route's answer, e.g. '#/components/schemas/OpenAIFile'. */
  function routeSchemaRef(method, template, status, contentType) {
    const op = raw.paths?.[template]?.[method.toLowerCase()];
    const response = op?.responses?.[String(status)];
    const schema = response?.content?.[contentType]?.schema ?? response?.content?.['application/json']?.schema;
    return typeof schema?.$ref === 'string' ? schema.$ref : undefined;
  }

  /**
   * The one place where the document and OpenAI's own API disagree: streamed completions. The document gives chunks
   * the answer's schema, whose finish_reason is a required non-null string, yet OpenAI (and vLLM) send
   * `finish_reason: null` on every chunk but the last, as its streaming guide shows; inventing a reason there would
   * tell clients the text had ended. Chunks are checked against that schema with only finish_reason made nullable.
   */
  const chunkId = 'https://loraplane.local/streamed-completion-chunk.json';
  const absolute = (node) => {
    if (Array.isArray(node)) return node.map(absolute);
    if (!isObject(node)) return node;
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `${DOC_ID}${v}` : absolute(v)]));
  };
  const completion = doc.components.schemas.CreateCompletionResponse;
  if (completion) {
    const chunk = absolute(JSON.parse(JSON.stringify(completion)));
    const reason = chunk.properties?.choices?.items?.properties?.finish_reason;
    if (reason) {
      reason.type = ['string', 'null'];
      if (Array.isArray(reason.enum)) reason.enum = [...reason.enum, null];
    }
    ajv.addSchema({ ...chunk, $id: chunkId });
  }

  return {
    version: raw.info?.version,
    /** For validate(): streamed /v1/completions chunks (see above). */
    streamedCompletionChunkRef: completion ? `${chunkId}#` : undefined,
    routeSchemaRef,
    hasComponent: (name) => Boolean(raw.components?.schemas?.[name]),
    /** Every mismatch of `body` against the component `ref`, as { path, message } with a JSON path. */
    validate(ref, body) {
      const validate = validatorOf(ref);
      if (validate(body)) return [];
      return (validate.errors ?? []).map((e) => ({
        path: `$${e.instancePath.replace(/\/([^/]*)/g, (_, seg) => (/^\d+$/.test(seg) ? `[${seg}]` : `.${seg}`))}`,
        message: `${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`,
      }));
    },
  };
}

module.exports = { normalise, loadContract };
