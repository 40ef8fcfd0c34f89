import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ChatTemplate, DEFAULT_CHAT_TEMPLATE } from './chat-template.js';
import { tempDir } from './test-support.js';

const qwen3Dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'qwen3-chat');

describe('ChatTemplate', () => {
  it("renders Qwen3's ChatML template from its tokenizer_config.json", () => {
    const template = ChatTemplate.fromModel(qwen3Dir);
    expect(template.origin).toBe('tokenizer_config.json');
    expect(template.addSpecialTokens).toBe(false);
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Name a prime.' },
      { role: 'assistant', content: '<think>\nsmall one\n</think>\n\nTwo.' },
      { role: 'user', content: 'Another?' },
    ];
    expect(template.render(messages, true)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n' +
        '<|im_start|>user\nName a prime.<|im_end|>\n' +
        // an earlier turn's reasoning is dropped, as the template says
        '<|im_start|>assistant\nTwo.<|im_end|>\n' +
        '<|im_start|>user\nAnother?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
    expect(template.render(messages.slice(0, 2), false)).toBe(
      '<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nName a prime.<|im_end|>\n',
    );
  });

  it('uses the default template when the checkpoint has none, with the special tokens of plain text', () => {
    const dir = tempDir('sc-template-');
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
    const template = ChatTemplate.fromModel(dir);
    expect(template.origin).toBe('default');
    expect(template.source).toBe(DEFAULT_CHAT_TEMPLATE);
    expect(template.addSpecialTokens).toBe(true);
    expect(
      template.render(
        [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hello' },
        ],
        true,
      ),
    ).toBe('System: Be brief.\n\nUser: Hello\n\nAssistant:');
  });

  it('prefers chat_template.jinja, picks the default of named templates, and passes special tokens', () => {
    const named = tempDir('sc-template-');
    writeFileSync(
      path.join(named, 'tokenizer_config.json'),
      JSON.stringify({
        bos_token: { content: '<s>' },
        chat_template: [
          { name: 'tool_use', template: 'tools' },
          { name: 'default', template: '{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}' },
        ],
      }),
    );
    expect(ChatTemplate.fromModel(named).render([{ role: 'user', content: 'x' }], true)).toBe('<s>[x]');
    const jinja = path.join(tempDir('sc-template-'), 'model');
    mkdirSync(jinja);
    writeFileSync(path.join(jinja, 'chat_template.jinja'), '{{ messages | length }}');
    const t = ChatTemplate.fromModel(jinja);
    expect(t.origin).toBe('chat_template.jinja');
    expect(t.render([{ role: 'user', content: 'a' }], false)).toBe('1');
  });

  it('refuses a template that does not parse, naming the file', () => {
    const dir = tempDir('sc-template-');
    writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for x in %}' }));
    expect(() => ChatTemplate.fromModel(dir)).toThrow(/tokenizer_config\.json: chat_template does not parse/);
  });
});
