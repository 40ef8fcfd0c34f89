// JSON schemas of every request body. Known fields are typed; fields the server does not know are ignored (OpenAI
// clients send many), and the known-but-unsupported ones with a non-default value are refused in the routes.

const semanticache = {
  type: 'object',
  properties: {
    policy: { type: 'string', minLength: 1 },
    ratio: { type: 'number' },
    max_entries: { type: 'integer', minimum: 1 },
  },
  additionalProperties: false,
} as const;

const stop = {
  anyOf: [
    { type: 'string', minLength: 1 },
    { type: 'array', items: { type: 'string', minLength: 1 }, maxItems: 4 },
    { type: 'null' },
  ],
} as const;

const sampling = {
  model: { type: 'string', minLength: 1 },
  max_tokens: { type: ['integer', 'null'], minimum: 1 },
  temperature: { type: ['number', 'null'], minimum: 0, maximum: 2 },
  top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1 },
  seed: { type: ['integer', 'null'], minimum: 0, maximum: Number.MAX_SAFE_INTEGER - 1 },
  n: { type: ['integer', 'null'] },
  stop,
  stream: { type: ['boolean', 'null'] },
  stream_options: {
    type: ['object', 'null'],
    properties: { include_usage: { type: 'boolean' } },
  },
  presence_penalty: { type: ['number', 'null'] },
  frequency_penalty: { type: ['number', 'null'] },
  user: { type: 'string' },
  cache_id: { type: 'string', minLength: 1 },
  semanticache,
} as const;

const content = {
  anyOf: [
    { type: 'string' },
    {
      type: 'array',
      items: {
        type: 'object',
        required: ['type'],
        properties: { type: { type: 'string' }, text: { type: 'string' } },
      },
    },
    { type: 'null' },
  ],
} as const;

export const messagesSchema = {
  type: 'array',
  minItems: 1,
  items: {
    type: 'object',
    required: ['role'],
    properties: { role: { type: 'string', minLength: 1 }, content, name: { type: 'string' } },
  },
} as const;

export const completionBody = {
  type: 'object',
  required: ['model', 'prompt'],
  properties: {
    ...sampling,
    prompt: {
      anyOf: [
        { type: 'string' },
        { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 },
        { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1 },
      ],
    },
    echo: { type: ['boolean', 'null'] },
    logprobs: { type: ['integer', 'null'] },
    best_of: { type: ['integer', 'null'] },
    suffix: { type: ['string', 'null'] },
  },
} as const;

export const chatBody = {
  type: 'object',
  required: ['model', 'messages'],
  properties: {
    ...sampling,
    messages: messagesSchema,
    max_completion_tokens: { type: ['integer', 'null'], minimum: 1 },
    logprobs: { type: ['boolean', 'null'] },
    tools: { type: ['array', 'null'] },
  },
} as const;

export const cacheBody = {
  type: 'object',
  required: ['model'],
  properties: {
    model: { type: 'string', minLength: 1 },
    prompt: { type: 'string', minLength: 1 },
    messages: messagesSchema,
    semanticache,
  },
} as const;

export const cacheIdParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string' } },
} as const;

/** What the `semanticache` extension field carries. */
export interface CompressionField {
  policy?: string;
  ratio?: number;
  max_entries?: number;
}

export type MessageInput = { role: string; content?: string | { type: string; text?: string }[] | null };

export interface SamplingFields {
  model: string;
  max_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  seed?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean } | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  cache_id?: string;
  semanticache?: CompressionField;
}

export interface CompletionRequest extends SamplingFields {
  prompt: string | string[] | number[];
  echo?: boolean | null;
  logprobs?: number | null;
  best_of?: number | null;
  suffix?: string | null;
}

export interface ChatRequest extends SamplingFields {
  messages: MessageInput[];
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  tools?: unknown[] | null;
}

export interface CacheRequest {
  model: string;
  prompt?: string;
  messages?: MessageInput[];
  semanticache?: CompressionField;
}
