import { mixSeed, Rng } from './rng.js';

/** What the task generators need from a tokenizer: lengths are measured in the model's tokens. */
export interface TextCodec {
  encode(text: string): ArrayLike<number>;
  decode(ids: ArrayLike<number>): string;
}

// The exact strings the retrieval models were trained and measured on (models README, "retrieval task formats").
export const PASSKEY_HEADER =
  'There is an important piece of information hidden inside a lot of irrelevant text. Find it and memorize it.\n';
export const passkeyNeedle = (key: string): string => ` The pass key is ${key}. Remember it. ${key} is the pass key. `;
export const PASSKEY_QUESTION = '\nWhat is the pass key? The pass key is';
export const passkeyAnswer = (key: string): string => ` ${key}.`;

export const CODE_NAMES = [
  'amber',
  'birch',
  'cobalt',
  'delta',
  'ember',
  'falcon',
  'garnet',
  'harbor',
  'indigo',
  'juniper',
  'kestrel',
  'lantern',
  'marble',
  'nectar',
  'orchid',
  'pepper',
  'quartz',
  'raven',
  'saffron',
  'thistle',
  'umber',
  'violet',
  'willow',
  'yarrow',
  'zephyr',
] as const;
export const codeFact = (name: string, code: string): string => ` The code for ${name} is ${code}. `;
export const codeQuestion = (name: string): string => `\nWhat is the code for ${name}? The code for ${name} is`;
export const codeAnswer = (code: string): string => ` ${code}.`;

export type RetrievalTaskName = 'passkey' | 'code-recall';
export const RETRIEVAL_TASKS: readonly RetrievalTaskName[] = ['passkey', 'code-recall'];

export interface RetrievalCase {
  task: RetrievalTaskName;
  /** the context: header, filler with the needle(s) inside, no question */
  context: string;
  /** appended after the context; the model continues from its end */
  question: string;
  /** a case passes when the greedy continuation starts with this */
  answer: string;
  /** requested depth of the queried needle, 0 = start of the filler, 1 = end */
  depth: number;
  /** where the queried needle starts in `context`, as a fraction of the context's characters */
  needleCharFraction: number;
  /** the requested context length in tokens (context + question); the actual length is within a few tokens */
  targetTokens: number;
}

/**
 * Contiguous filler from a corpus, cut in token units. Documents are split on `<|endoftext|>` lines so a filler never
 * spans two books; each is encoded once.
 */
export class FillerSource {
  private readonly documents: ArrayLike<number>[];

  constructor(
    corpus: string,
    private readonly codec: TextCodec,
  ) {
    this.documents = corpus
      .split(/\n?<\|endoftext\|>\n?/)
      .map((doc) => doc.trim())
      .filter((doc) => doc.length > 0)
      .map((doc) => codec.encode(doc));
    if (this.documents.length === 0) throw new RangeError('corpus: no text to cut filler from');
  }

  get longestDocumentTokens(): number {
    return Math.max(...this.documents.map((d) => d.length));
  }

  /** About `tokens` tokens of contiguous text starting at a random place, trimmed to whole words. */
  take(tokens: number, rng: Rng): string {
    if (!Number.isInteger(tokens) || tokens < 1)
      throw new RangeError(`filler tokens must be a positive integer, got ${tokens}`);
    const candidates = this.documents.filter((d) => d.length >= tokens + 2);
    if (candidates.length === 0) {
      throw new RangeError(
        `corpus: no document holds ${tokens} filler tokens (longest has ${this.longestDocumentTokens}); use a longer text or a shorter context`,
      );
    }
    const doc = rng.pick(candidates);
    // one spare token each side: the trim below drops the partial words at both ends
    const start = rng.int(0, doc.length - tokens - 2);
    const slice = Array.prototype.slice.call(doc, start, start + tokens + 2) as number[];
    const text = this.codec.decode(slice);
    const first = text.search(/\s/);
    const last = text.search(/\s\S*$/);
    const inner = first >= 0 && last > first ? text.slice(first, last) : text;
    return inner.replace(/\s+/g, ' ').trim();
  }
}

/** Index of a space in `text` close to `fraction` of its length, preferring one right after a sentence end. */
export function splitPoint(text: string, fraction: number): number {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`depth must be in [0, 1], got ${fraction}`);
  const target = Math.round(fraction * text.length);
  if (target <= 0) return 0;
  if (target >= text.length) return text.length;
  const window = 160;
  let bestSentence = -1;
  let bestSpace = -1;
  for (let delta = 0; delta <= window; delta++) {
    for (const i of delta === 0 ? [target] : [target - delta, target + delta]) {
      if (i <= 0 || i >= text.length || text[i] !== ' ') continue;
      if (bestSpace < 0) bestSpace = i;
      if (bestSentence < 0 && /[.!?]["')\]]?$/.test(text.slice(Math.max(0, i - 2), i))) bestSentence = i;
    }
    if (bestSentence >= 0) break;
  }
  if (bestSentence >= 0) return bestSentence;
  if (bestSpace >= 0) return bestSpace;
  return target;
}

/** Inserts `needle` at the space `point` (which it replaces: needles carry their own spaces). */
function insertAt(text: string, point: number, needle: string): string {
  if (point <= 0) return needle + text;
  if (point >= text.length) return text + needle;
  return text.slice(0, point) + needle + text.slice(text[point] === ' ' ? point + 1 : point);
}

function digits(rng: Rng, count: number): string {
  let s = String(rng.int(1, 9));
  for (let i = 1; i < count; i++) s += String(rng.int(0, 9));
  return s;
}

export interface CaseRequest {
  /** context length in tokens, question included */
  contextTokens: number;
  /** depth of the queried needle in the filler, in [0, 1] */
  depth: number;
  /** base seed; the case seed mixes in the task, length, depth and index */
  seed: number;
  index: number;
}

function checkRequest(req: CaseRequest): void {
  if (!Number.isInteger(req.contextTokens) || req.contextTokens < 16) {
    throw new RangeError(`contextTokens must be an integer ≥ 16, got ${req.contextTokens}`);
  }
  if (!(req.depth >= 0 && req.depth <= 1)) throw new RangeError(`depth must be in [0, 1], got ${req.depth}`);
}

export function passkeyCase(filler: FillerSource, codec: TextCodec, req: CaseRequest): RetrievalCase {
  checkRequest(req);
  const rng = new Rng(mixSeed(req.seed, 1, req.contextTokens, req.depth, req.index));
  const key = digits(rng, 5);
  const needle = passkeyNeedle(key);
  const fixed = codec.encode(PASSKEY_HEADER + needle + PASSKEY_QUESTION).length;
  const fillerText = filler.take(Math.max(1, req.contextTokens - fixed), rng);
  const point = splitPoint(fillerText, req.depth);
  const body = insertAt(fillerText, point, needle);
  return {
    task: 'passkey',
    context: PASSKEY_HEADER + body,
    question: PASSKEY_QUESTION,
    answer: passkeyAnswer(key),
    depth: req.depth,
    needleCharFraction: (PASSKEY_HEADER.length + point) / (PASSKEY_HEADER.length + body.length),
    targetTokens: req.contextTokens,
  };
}

export function codeRecallCase(filler: FillerSource, codec: TextCodec, req: CaseRequest): RetrievalCase {
  checkRequest(req);
  const rng = new Rng(mixSeed(req.seed, 2, req.contextTokens, req.depth, req.index));
  const count = rng.int(2, 6);
  const names = rng.sample(CODE_NAMES, count);
  const codes = names.map(() => digits(rng, rng.int(3, 4)));
  const asked = 0;
  const facts = names.map((name, i) => codeFact(name, codes[i]));
  const question = codeQuestion(names[asked]);
  const fixed = codec.encode(facts.join('') + question).length;
  const fillerText = filler.take(Math.max(1, req.contextTokens - fixed), rng);
  // the asked fact at the requested depth, the others at random depths; insert from the back so points stay valid
  const placements = facts.map((fact, i) => ({
    fact,
    point: splitPoint(fillerText, i === asked ? req.depth : rng.next()),
    asked: i === asked,
  }));
  placements.sort((a, b) => b.point - a.point || Number(a.asked) - Number(b.asked));
  let body = fillerText;
  for (const p of placements) body = insertAt(body, p.point, p.fact);
  const askedFact = facts[asked];
  return {
    task: 'code-recall',
    context: body,
    question,
    answer: codeAnswer(codes[asked]),
    depth: req.depth,
    needleCharFraction: body.indexOf(askedFact) / body.length,
    targetTokens: req.contextTokens,
  };
}

/**
 * A uniform needle depth in [0, 1] for case `index` of a cell at `contextTokens`, drawn from the case's own seed
 * (rounded to 0.001, the resolution the case seeds mix depths at), so random depths spread a cell's cases over
 * the context reproducibly.
 */
export function randomDepth(task: RetrievalTaskName, seed: number, contextTokens: number, index: number): number {
  const rng = new Rng(mixSeed(seed, task === 'passkey' ? 101 : 102, contextTokens, index));
  return Math.round(rng.next() * 1000) / 1000;
}

export function retrievalCase(
  task: RetrievalTaskName,
  filler: FillerSource,
  codec: TextCodec,
  req: CaseRequest,
): RetrievalCase {
  return task === 'passkey' ? passkeyCase(filler, codec, req) : codeRecallCase(filler, codec, req);
}

/** The pass rule used for the published baselines: the continuation starts with the answer. */
export function isCorrect(continuation: string, answer: string): boolean {
  return continuation.startsWith(answer);
}
