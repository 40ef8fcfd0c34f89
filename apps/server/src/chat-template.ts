import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from './store.js';

/**
 * The template of a checkpoint without one: each message as `Role: content` followed by a blank line, then
 * `Assistant:` when a reply is asked for. Plain text, so it suits base models (the demo model) that never saw a chat
 * format; the prompt gets the tokenizer's special tokens (BOS) like any plain prompt.
 */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message.role | capitalize }}: {{ message.content }}\n\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

type SpecialToken = string | { content?: string } | null | undefined;

function tokenText(t: SpecialToken): string {
  if (typeof t === 'string') return t;
  return t?.content ?? '';
}

/** Renders chat messages into the prompt text with the checkpoint's Jinja `chat_template` (or the default). */
export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    /** where it came from: `tokenizer_config.json`, `chat_template.jinja` or `default` */
    readonly origin: string,
    private readonly specialTokens: Record<string, string> = {},
  ) {
    this.template = new Template(source);
  }

  /**
   * Whether the rendered text is tokenized with the tokenizer's special tokens: a checkpoint's template writes its
   * own (`{{ bos_token }}`), as transformers' `apply_chat_template` assumes; the default template does not.
   */
  get addSpecialTokens(): boolean {
    return this.origin === 'default';
  }

  /**
   * Reads `chat_template.jinja` or `tokenizer_config.json`'s `chat_template` (a string, or a list of named
   * templates: the one named `default`) next to a checkpoint; DEFAULT_CHAT_TEMPLATE when there is none.
   */
  static fromModel(modelPath: string): ChatTemplate {
    const dir = existsSync(modelPath) && !modelPath.endsWith('.bin') ? modelPath : path.dirname(modelPath);
    const configPath = path.join(dir, 'tokenizer_config.json');
    let config: Record<string, unknown> = {};
    if (existsSync(configPath)) {
      try {
        config = JSON.parse(readFileSync(configPath, 'utf8'));
      } catch (err) {
        throw new Error(`${configPath}: not valid JSON (${(err as Error).message})`);
      }
    }
    const special: Record<string, string> = {};
    for (const name of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
      special[name] = tokenText(config[name] as SpecialToken);
    }
    const jinjaFile = path.join(dir, 'chat_template.jinja');
    if (existsSync(jinjaFile)) return new ChatTemplate(readFileSync(jinjaFile, 'utf8'), 'chat_template.jinja', special);
    let source = config.chat_template as unknown;
    if (Array.isArray(source)) {
      source = (source as { name?: string; template?: string }[]).find((t) => t.name === 'default')?.template;
    }
    if (typeof source === 'string' && source.length > 0) {
      try {
        return new ChatTemplate(source, 'tokenizer_config.json', special);
      } catch (err) {
        throw new Error(`${configPath}: chat_template does not parse: ${(err as Error).message}`);
      }
    }
    return new ChatTemplate(DEFAULT_CHAT_TEMPLATE, 'default', special);
  }

  render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    return this.template.render({
      ...this.specialTokens,
      messages,
      add_generation_prompt: addGenerationPrompt,
    });
  }
}
