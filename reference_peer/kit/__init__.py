"""The adapter kit's implementation (its public, versioned face is ``conformance.adapterkit``).

It lives here, beside the reference peer whose MLS clients and control API layer it reuses, so that
the reference backend can share its contract layer (:mod:`.contract`) without importing the suite.
The modules: :mod:`.transport` (the vendor's extension point), :mod:`.clients` (the durable client
store), :mod:`.backend` (the control operations), :mod:`.contract` (request validation and answer
shaping shared with ``reference_peer.control.backend``), :mod:`.serve` (running it).
"""
