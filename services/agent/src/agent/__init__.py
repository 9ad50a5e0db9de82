"""A durable AI agent: the workflow holds the conversation; model and tool calls are activities."""
