import { demoModelDir, requireDemoModelDir } from '@semanticache/model-demo';

export const dir: string = requireDemoModelDir();
export const same: boolean = dir === demoModelDir;
