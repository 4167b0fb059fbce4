import { describe, expect, it } from 'vitest';
import { highlight, tokenize } from './rego';

describe('rego highlighting', () => {
	it('classifies keywords, strings, comments and numbers', () => {
		const kinds = tokenize('package llmgov\n# note\ndeny contains msg if { input.tokens > 100; msg := "too many" }')
			.filter((t) => t.kind !== 'text')
			.map((t) => `${t.kind}:${t.text}`);
		expect(kinds).toContain('keyword:package');
		expect(kinds).toContain('comment:# note');
		expect(kinds).toContain('keyword:contains');
		expect(kinds).toContain('builtin:input');
		expect(kinds).toContain('number:100');
		expect(kinds).toContain('string:"too many"');
	});
	it('escapes HTML and keeps the text intact', () => {
		const src = 'x := "<b>&"';
		const html = highlight(src);
		expect(html).not.toContain('<b>');
		expect(html.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')).toBe(src);
	});
});
