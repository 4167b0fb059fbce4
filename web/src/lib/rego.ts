// Rego syntax highlighting for the policy editor: a small tokenizer over Rego's lexical
// grammar (comments, strings, raw strings, numbers, keywords, operators, names).
export type Token = { kind: 'comment' | 'string' | 'number' | 'keyword' | 'builtin' | 'op' | 'name' | 'text'; text: string };

const KEYWORDS = new Set([
	'package', 'import', 'as', 'default', 'else', 'not', 'some', 'every', 'in', 'if', 'contains', 'with', 'true', 'false', 'null'
]);
const BUILTINS = new Set(['input', 'data', 'count', 'sum', 'max', 'min', 'sprintf', 'startswith', 'endswith', 'contains', 'regex', 'lower', 'upper', 'object', 'array', 'concat', 'trim', 'split']);

const RE = /(#[^\n]*)|("(?:[^"\\\n]|\\.)*"?)|(`[^`]*`?)|(\b\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(:=|==|!=|<=|>=|[=<>+\-*/%|&{}[\](),.;:])|(\s+)|(.)/g;

export function tokenize(src: string): Token[] {
	const out: Token[] = [];
	for (const m of src.matchAll(RE)) {
		const [t, comment, str, raw, n, name, op] = m;
		let kind: Token['kind'] = 'text';
		if (comment) kind = 'comment';
		else if (str || raw) kind = 'string';
		else if (n) kind = 'number';
		else if (name) kind = KEYWORDS.has(name) ? 'keyword' : BUILTINS.has(name) ? 'builtin' : 'name';
		else if (op) kind = 'op';
		const last = out[out.length - 1];
		if (last && last.kind === kind && kind === 'text') last.text += t;
		else out.push({ kind, text: t });
	}
	return out;
}

/** HTML for the highlighted source (escaped). */
export function highlight(src: string): string {
	return tokenize(src)
		.map((t) => {
			const esc = t.text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
			return t.kind === 'text' || t.kind === 'name' ? esc : `<span class="tk-${t.kind}">${esc}</span>`;
		})
		.join('');
}
