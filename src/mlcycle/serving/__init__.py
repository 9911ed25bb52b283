"""serving: the model server and its prediction log. Imports the layers below it, never monitoring
or cli.
"""
