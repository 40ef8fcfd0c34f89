import {
  type CacheStats,
  type GenerateEvent,
  loadModel,
  type Model,
  ModelLoadError,
  type Session,
  type SessionOptions,
  WorkerModel,
} from '@semanticache/runtime';

const options: SessionOptions = { policy: { name: 'semanticache', budget: { ratio: 0.75 } } };

export async function generate(dir: string, signal: AbortSignal): Promise<string> {
  let model: Model;
  try {
    model = await loadModel(dir);
  } catch (err) {
    if (err instanceof ModelLoadError) return err.message;
    throw err;
  }
  const session: Session = model.createSession(options);
  let text = '';
  for await (const ev of session.generate('Once upon a time', { maxTokens: 8, temperature: 0, signal })) {
    const event: GenerateEvent = ev;
    text += event.text;
  }
  const stats: CacheStats = session.stats();
  await model.dispose();
  return `${text} ${stats.bytes.current}`;
}

export const loadRemote = (dir: string): Promise<WorkerModel> => WorkerModel.load(dir);
