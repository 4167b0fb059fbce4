package llmgov

params := __PARAMS__

deny contains sprintf("%s-risk use case %q needs a human review before the output is used", [input.risk_level, object.get(input, "use_case", "unknown")]) if {
	input.risk_level in params.risk_levels
	not input.human_reviewed == true
}
