"""Serve the GATO Dashboard: ``python app.py [--host 127.0.0.1] [--port 8050] [--data-dir DIR]``.

The data folder (default ./gato_data, or $GATO_DATA_DIR) holds the run store and the
caches; runs survive restarts there (a run left queued starts when the server is back).
A password for every page comes from $GATO_PASSWORD (never a flag: command lines are
visible to every user of the machine).
A run starts training when it is created (``--max-jobs N`` at once, default 1).
``--broker redis://HOST:6379/0`` trains runs on Celery workers instead of this machine,
``--store postgresql://...`` keeps the runs in a database those workers share (README:
"More than one machine").
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Serve the GATO Dashboard.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--data-dir", default=None,
                        help="run store and caches (default $GATO_DATA_DIR or ./gato_data)")
    parser.add_argument("--viewer", action="store_true",
                        help="read-only: show runs, but no new runs, cancel, delete, edit "
                             "or imports (for showing results to a group)")
    parser.add_argument("--allow-server-paths", action="store_true",
                        help="let imports read a path on this machine (off by default: "
                             "anyone with the page could make the server read any folder)")
    # GiB (2^30 bytes), as the page and the README say; --max-upload-gb is the older name
    parser.add_argument("--max-upload-gib", "--max-upload-gb", dest="max_upload_gib",
                        type=float, default=4.0,
                        help="largest event file the Datasets page accepts, in GiB "
                             "(2^30 bytes; default 4 GiB)")
    parser.add_argument("--broker", default=None,
                        help="Redis URL of the job queue: runs train on Celery workers "
                             "(default $GATO_BROKER; unset: on this machine)")
    parser.add_argument("--store", default=None,
                        help="run store: postgresql://USER@HOST:PORT/DB shared with the "
                             "workers (default $GATO_STORE, else runs.sqlite in the data folder)")
    parser.add_argument("--max-jobs", type=int, default=1,
                        help="runs that train at once on this machine (default 1: a run uses "
                             "every core TensorFlow finds; more runs wait, queued, in order)")
    parser.add_argument("--debug", action="store_true",
                        help="Dash debug mode (reloader, tracebacks in the page): development only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per poll

    from gato_dash import runtime
    from gato_dash.runtime import backends, dispatch
    from gato_dash.app import create_app, data_folder_problem
    from gato_dash.runtime.jobs import warm_up_fork_server
    from gato_dash.runtime import Settings, configure_tensorflow, resolve_data_dir
    from gato_dash.security import PASSWORD_VARIABLE, exposed_without_password

    password = os.environ.get(PASSWORD_VARIABLE) or None
    if exposed_without_password(args.host, password):
        print(f"WARNING: listening on {args.host} without a password: anyone who can reach "
              f"this machine can start, cancel and delete runs. Set {PASSWORD_VARIABLE}, "
              "or add --viewer to show runs read-only.", file=sys.stderr, flush=True)
    data_dir = resolve_data_dir(args.data_dir)
    problem = data_folder_problem(data_dir)
    if problem:  # one line that says what to do, not a traceback
        print(f"app.py: {problem}", file=sys.stderr)
        return 2
    try:
        broker = backends.resolve_broker(args.broker)
        runtime.resolve_store(data_dir, args.store)
    except backends.BackendError as exc:
        parser.error(str(exc))
    configure_tensorflow(data_dir)  # environment first: the fork server inherits it
    if not 0 < args.max_upload_gib <= 1024:
        parser.error("--max-upload-gib must be between 0 and 1024")
    if not 1 <= args.max_jobs <= 256:
        parser.error("--max-jobs must be between 1 and 256")
    settings = Settings(read_only=args.viewer, allow_server_paths=args.allow_server_paths,
                        max_upload_bytes=int(args.max_upload_gib * 1024 ** 3))
    try:
        app = create_app(data_dir, settings, password=password, broker=broker,
                         store=args.store, max_jobs=args.max_jobs)
    except backends.BackendError as exc:  # e.g. a store file that is not a database
        print(f"app.py: {exc}", file=sys.stderr)
        return 2
    where = f"data: {data_dir}; store: {runtime.store()!r}"
    if args.viewer:
        pass  # read-only: no run is started here
    elif broker is None:
        # Training processes fork from a server that imports TensorFlow once; start it now
        # so the first run does not wait for that import.
        warm_up_fork_server()
        where += f"; jobs: {args.max_jobs} at a time on this machine"
    else:
        message = dispatch.queue_message() or ""
        where += f"; jobs: Celery workers via {broker.split('@')[-1]}. {message}"
    mode = " read-only" if args.viewer else ""
    print(f"GATO Dashboard{mode} on http://{args.host}:{args.port}/  ({where})", flush=True)
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0


if __name__ == "__main__":
    sys.exit(main())
