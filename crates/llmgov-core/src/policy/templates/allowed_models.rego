package llmgov

params := __PARAMS__

deny contains sprintf("model %q is not on the allowed list", [input.model]) if {
	count(params.models) > 0
	not input.model in params.models
}

deny contains sprintf("provider %q is not on the allowed list", [input.provider]) if {
	count(params.providers) > 0
	not input.provider in params.providers
}
