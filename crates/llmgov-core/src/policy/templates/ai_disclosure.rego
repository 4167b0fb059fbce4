package llmgov

params := __PARAMS__

# EU AI Act Art. 50: people interacting with an AI system are told so.
deny contains "the user is not told that they are interacting with an AI system" if {
	input.user_facing == true
	not input.ai_disclosed == true
}

deny contains "AI-generated content is not marked as such" if {
	params.require_content_marking
	input.user_facing == true
	input.generated_content == true
	not input.content_marked == true
}
