"""Serve the GATO Dashboard: ``python app.py [--host 127.0.0.1] [--port 8050] [--data-dir DIR]``.

The data folder (default ./gato_data, or $GATO_DATA_DIR) holds the run store and the job
cache; runs survive restarts there. ``--broker redis://HOST:6379/0`` trains runs on Celery
workers instead of this machine, ``--store postgresql://...`` keeps the runs in a database
those workers share (README: "More than one machine").
"""
from __future__ import annotations

import argparse
import logging
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the GATO Dashboard.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--data-dir", default=None,
                        help="run store and caches (default $GATO_DATA_DIR or ./gato_data)")
    parser.add_argument("--broker", default=None,
                        help="Redis URL of the job queue: runs train on Celery workers "
                             "(default $GATO_BROKER; unset: on this machine)")
    parser.add_argument("--store", default=None,
                        help="run store: postgresql://USER@HOST:PORT/DB shared with the "
                             "workers (default $GATO_STORE, else runs.sqlite in the data folder)")
    parser.add_argument("--debug", action="store_true",
                        help="Dash debug mode (reloader, tracebacks in the page): development only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per poll

    from gato_dash import settings
    from gato_dash.app import configure_tensorflow, create_app, resolve_data_dir
    from gato_dash.jobs import warm_up_fork_server

    data_dir = resolve_data_dir(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        broker = settings.resolve_broker(args.broker)
        settings.resolve_store(data_dir, args.store)
    except settings.SettingsError as exc:
        parser.error(str(exc))
    configure_tensorflow(data_dir)  # environment first: the fork server inherits it
    app = create_app(data_dir, broker=broker, store=args.store)
    where = f"data: {data_dir}; store: {app_store()}"
    if broker is None:
        # Training processes fork from a server that imports TensorFlow once; start it now
        # so the first Run does not wait for that import.
        warm_up_fork_server()
    else:
        message = settings.queue_message() or ""
        where += f"; jobs: Celery workers via {broker.split('@')[-1]}. {message}"
    print(f"GATO Dashboard on http://{args.host}:{args.port}/  ({where})", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


def app_store() -> str:
    from gato_dash.app import store

    return repr(store())


if __name__ == "__main__":
    sys.exit(main())
