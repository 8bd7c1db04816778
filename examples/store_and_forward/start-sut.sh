#!/bin/sh
# Run by the suite (connector command, in this folder): the server, then the adapter kit in front of it.
# The suite hands over MIMI_CONFORMANCE_SUITE_CA and MIMI_CONFORMANCE_SUT_DIR, which the server reads;
# the ports come from the manifest's connector.env. Both stop with the process group at the end of the run.
set -eu
python -m examples.store_and_forward.server --domain saf.example \
    --cert sut-pki/saf.example.pem --key sut-pki/saf.example.key \
    --listen "127.0.0.1:$SAF_MIMI_PORT" --api "127.0.0.1:$SAF_API_PORT" &
# The server keeps everything in memory, so the kit's client state must be as fresh as the server's.
state="$(mktemp -d)"
exec python -m conformance.adapterkit \
    --transport examples.store_and_forward.adapter:StoreAndForwardTransport \
    --transport-arg "api=http://127.0.0.1:$SAF_API_PORT" --transport-arg domain=saf.example \
    --listen "127.0.0.1:$SAF_CONTROL_PORT" --state "$state"
