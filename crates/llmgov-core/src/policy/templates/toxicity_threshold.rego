package llmgov

params := __PARAMS__

deny contains {"msg": sprintf("toxicity score %v is above the threshold %v", [input.scores.toxicity, params.max_toxicity]), "score": input.scores.toxicity} if {
	input.scores.toxicity > params.max_toxicity
}
