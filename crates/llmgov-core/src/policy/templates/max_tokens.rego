package llmgov

params := __PARAMS__

input_tokens := object.get(input, ["tokens", "input"], 0)

output_tokens := object.get(input, ["tokens", "output"], 0)

deny contains sprintf("request asks for %d input tokens; the limit is %d", [input_tokens, params.max_input_tokens]) if {
	input_tokens > params.max_input_tokens
}

deny contains sprintf("request uses %d tokens in total; the limit is %d", [input_tokens + output_tokens, params.max_total_tokens]) if {
	input_tokens + output_tokens > params.max_total_tokens
}
