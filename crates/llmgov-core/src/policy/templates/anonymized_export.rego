package llmgov

params := __PARAMS__

anonymized if input.anonymized == true

anonymized if data.platform.datasets[input.dataset].anonymized == true

deny contains sprintf("dataset %q must be anonymized before it is exported", [input.dataset]) if {
	input.event_type in params.event_types
	not anonymized
}
