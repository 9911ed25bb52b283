"""core: what every layer shares: params (config), paths, tables and schemas, the feature spec,
scoring, provenance, records handed to tracking, errors. Imports no other layer.
"""
