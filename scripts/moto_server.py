"""moto server for Ferry's tests, answering one request at a time.

moto's own `moto_server` serves requests on threads, and its DynamoDB backend does not lock: two
conditional writes racing on one item can both succeed, which real DynamoDB never allows. Serving
requests one after another makes every conditional write atomic, as DynamoDB's are, so the adapters'
race tests test Ferry and not the emulator.

Usage: moto_server.py HOST PORT
"""

import signal
import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
