"""Results model and reports of the MIMI conformance suite.

Depends on nothing in ``conformance`` or ``reference_peer`` (``reports <- conformance -> reference_peer``):
the suite hands over plain data (:mod:`reports.model`).

- :mod:`reports.model`: verdicts, the results dataclasses, ``RunResults.to_json/from_json``
- :mod:`reports.schema`: ``results.schema.json`` (versioned) and validation
- :mod:`reports.scoring`: profile verdicts from check verdicts (the rules are in its docstring)
- :mod:`reports.junit`, :mod:`reports.html`, :mod:`reports.markdown`, :mod:`reports.badge`: renderers
- :mod:`reports.allure`: allure labels for a check
- :mod:`reports.baseline`: vendor baselines and the CI gate (exit code 0/1)
- :mod:`reports.signing`: Ed25519 signatures over a canonical encoding; ``verify``
- :mod:`reports.diff`: verdict changes between runs, requirement changes between catalogue revisions
- :mod:`reports.write`: every output of a run into one folder
"""
