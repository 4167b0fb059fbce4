package llmgov

params := __PARAMS__

# The model's evaluation score: from the request, else from the platform's model facts.
score := s if {
	s := input.evaluation_score
} else := s if {
	s := data.platform.models[input.model].evaluation_score
}

deny contains sprintf("model %q has no evaluation score; deployment needs one of at least %v", [input.model, params.min_score]) if {
	input.event_type in params.event_types
	not score
}

deny contains sprintf("model %q scored %v; deployment needs at least %v", [input.model, score, params.min_score]) if {
	input.event_type in params.event_types
	score < params.min_score
}
