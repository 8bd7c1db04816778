"""The conformance harness: SUT manifest and connectors, control API client, recorder, polling.

Every wait polls with a deadline (:mod:`.polling`); every call to the SUT has a timeout.
"""
