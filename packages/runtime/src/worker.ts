// Worker-thread entry of WorkerModel: owns a Model and its sessions, answers requests from the parent thread.
import { parentPort } from 'node:worker_threads';
import { serializeError } from './errors.js';
import { loadModel, type Model } from './model.js';
import { Session } from './session.js';
import type { Request, Response } from './worker-protocol.js';

if (!parentPort) throw new Error('worker.ts must run in a worker thread (use WorkerModel)');
const port = parentPort;

let model: Model | undefined;
const sessions = new Map<number, Session>();
const aborts = new Map<number, AbortController>();
let nextSession = 1;

function send(message: Response, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

/** Runs `fn` with a signal that an 'abort' request naming `id` fires. */
async function abortable<T>(id: number, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  aborts.set(id, controller);
  try {
    return await fn(controller.signal);
  } finally {
    aborts.delete(id);
  }
}

function session(id: number): Session {
  const s = sessions.get(id);
  if (!s) throw new RangeError(`session ${id} does not exist (disposed?)`);
  return s;
}

function need(): Model {
  if (!model) throw new Error('no model loaded');
  return model;
}

async function handle(req: Request): Promise<void> {
  switch (req.type) {
    case 'load': {
      model = await loadModel(req.path, req.options);
      send({ id: req.id, ok: true, value: { config: model.config, hasTokenizer: model.tokenizer !== undefined } });
      return;
    }
    case 'encode':
      send({ id: req.id, ok: true, value: need().tokenizer?.encode(req.text, req.options) ?? null });
      return;
    case 'decode':
      send({ id: req.id, ok: true, value: need().tokenizer?.decode(req.ids, req.options) ?? null });
      return;
    case 'createSession': {
      const id = nextSession++;
      sessions.set(id, need().createSession(req.options));
      send({ id: req.id, ok: true, value: id });
      return;
    }
    case 'fork': {
      const id = nextSession++;
      sessions.set(id, session(req.session).fork(req.options));
      send({ id: req.id, ok: true, value: id });
      return;
    }
    case 'restoreSession': {
      const id = nextSession++;
      sessions.set(id, Session.restore(need(), req.bytes, req.options));
      send({ id: req.id, ok: true, value: id });
      return;
    }
    case 'prefill':
    case 'decodeStep': {
      const s = session(req.session);
      const logits =
        req.type === 'prefill'
          ? await abortable(req.id, (signal) => s.prefill(req.ids, { signal }))
          : await s.decodeStep(req.tokenId);
      send({ id: req.id, ok: true, value: logits }, [logits.buffer as ArrayBuffer]);
      return;
    }
    case 'score':
      send({ id: req.id, ok: true, value: await session(req.session).score(req.ids) });
      return;
    case 'compress':
      send({ id: req.id, ok: true, value: session(req.session).compress(req.policy, req.budget) });
      return;
    case 'stats':
      send({ id: req.id, ok: true, value: session(req.session).stats() });
      return;
    case 'snapshot': {
      const bytes = session(req.session).snapshot();
      send({ id: req.id, ok: true, value: bytes }, [bytes.buffer as ArrayBuffer]);
      return;
    }
    case 'disposeSession':
      sessions.get(req.session)?.dispose();
      sessions.delete(req.session);
      send({ id: req.id, ok: true, value: null });
      return;
    case 'generate': {
      const s = session(req.session);
      await abortable(req.id, async (signal) => {
        for await (const event of s.generate(req.prompt, { ...req.options, signal })) send({ id: req.id, event });
      });
      send({ id: req.id, ok: true, value: s.lastFinishReason ?? null });
      return;
    }
    case 'abort':
      aborts.get(req.target)?.abort();
      return;
    case 'dispose':
      for (const s of sessions.values()) s.dispose();
      sessions.clear();
      await model?.dispose();
      model = undefined;
      send({ id: req.id, ok: true, value: null });
      return;
  }
}

port.on('message', (req: Request) => {
  handle(req).catch((err) => send({ id: req.id, ok: false, error: serializeError(err) }));
});
