"""Pure rule functions, one module per concern. Each `check_*` takes a Resource (or the stack's
resources) and an optional config mapping and returns what is wrong: a list of messages that name
the object, the field and the fix. Nothing here imports pulumi_policy or the infra code."""
