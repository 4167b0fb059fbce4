package llmgov

params := __PARAMS__

# Spend so far in the period, as the platform records it (data.platform.spend: the cost
# reported with recorded guardrail calls), for the team or user of the request. Blocks once spend reaches the limit, a limit of 0 included.
subject := input[params.scope]

spent := object.get(data.platform, ["spend", params.scope, subject, params.period], 0)

deny contains {"msg": sprintf("%s %q has spent %v of its %s budget of %v", [params.scope, subject, spent, params.period, params.limit]), "spent": spent, "limit": params.limit} if {
	spent >= params.limit
}
