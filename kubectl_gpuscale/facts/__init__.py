"""Versioned facts about the systems gpuscale configures (feature present since X, removed in Y).

Pure modules: plain data and small functions, no cluster access.
"""
