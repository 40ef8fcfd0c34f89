// The README's "Use it" example: `pnpm --filter @semanticache/examples quickstart [text file]`.
import { readFileSync } from 'node:fs';
import { demoModelDir } from '@semanticache/model-demo';
import { loadModel } from '@semanticache/runtime';

const longText = process.argv[2] ? readFileSync(process.argv[2], 'utf8') : 'The kernel scheduler decides which task';

const model = await loadModel(demoModelDir);
const session = model.createSession({ policy: { name: 'semanticache', budget: { ratio: 0.75 } } });
for await (const { text } of session.generate(longText, { maxTokens: 64, temperature: 0 })) process.stdout.write(text);
console.log(session.stats().bytes); // { current, full }
await model.dispose();
