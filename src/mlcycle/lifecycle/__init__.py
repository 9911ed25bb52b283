"""lifecycle: what happens to trained models: the registry and its champion alias, the promotion
gate, the audit log, model cards, queued experiments. Imports core and stages.
"""
