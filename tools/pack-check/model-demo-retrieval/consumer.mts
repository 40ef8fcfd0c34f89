import { requireRetrievalModelDir, retrievalModelDir } from '@semanticache/model-demo-retrieval';

export const dir: string = requireRetrievalModelDir();
export const same: boolean = dir === retrievalModelDir;
