import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The server's Prometheus metrics, on a registry of its own (several servers may share a process in tests). */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'semanticache_requests_total',
    help: 'HTTP requests answered, by route and status code',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly promptTokens = new Counter({
    name: 'semanticache_prompt_tokens_total',
    help: 'Prompt tokens prefilled (a cached document counts once, when it is made)',
    registers: [this.registry],
  });
  readonly generatedTokens = new Counter({
    name: 'semanticache_generated_tokens_total',
    help: 'Tokens generated; rate() of it is the server-wide tokens/s',
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: 'semanticache_generation_tokens_per_second',
    help: 'Decode speed of each generation (tokens after the first / time after the first token)',
    buckets: [5, 10, 20, 50, 100, 200, 500, 1000],
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'semanticache_time_to_first_token_seconds',
    help: 'From the request to its first generated token, queueing and prefill included',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly compressionSeconds = new Histogram({
    name: 'semanticache_compression_seconds',
    help: 'Time spent compressing a KV cache after its prefill',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  readonly kvBytes = new Gauge({
    name: 'semanticache_kv_bytes',
    help: 'KV cache bytes of the last finished generation: full (uncompressed equivalent) and held',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'semanticache_queue_depth',
    help: 'Requests waiting for a worker',
    registers: [this.registry],
  });
  readonly busyWorkers = new Gauge({
    name: 'semanticache_busy_workers',
    help: 'Workers running a request',
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'semanticache_requests_in_flight',
    help: 'Inference requests being answered (queued or running)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'semanticache_process_' });
  }
}
