"""The callbacks a module declares, put on each app that ``create_app`` builds.

``dash.callback`` puts a callback in a list global to the process, which the first app to
answer a request takes and empties: a second app built in the same process (tests, the
benchmarks) would answer none of them. Dash Pages also executes the page modules again for
every app, so their ``dash.callback`` calls pile up in that list between two apps. A
module therefore declares its callbacks in its own ``CallbackSet`` with the arguments of
``app.callback`` / ``app.clientside_callback``, and ``register(app)`` hands every one to
that app through those documented methods. A page names its set in ``dash.register_page``
(``callbacks=``), where ``gato_dash.app.create_app`` finds it in ``dash.page_registry``;
a section shown inside a page (the results section of the run page) is ``include``-d in
that page's set.
"""
from __future__ import annotations

from typing import Any, Callable


class CallbackSet:
    def __init__(self) -> None:
        #: in the order of declaration: each puts its callbacks (one, or an included
        #: set's) on the app it is given
        self._declared: list[Callable[[Any], None]] = []

    def callback(self, *args, **kwargs) -> Callable[[Callable], Callable]:
        """A decorator taking what ``app.callback`` takes; the function stays as it is."""
        def declare(function: Callable) -> Callable:
            self._declared.append(lambda app: app.callback(*args, **kwargs)(function))
            return function
        return declare

    def clientside_callback(self, clientside_function, *args, **kwargs) -> None:
        """What ``app.clientside_callback`` takes (JavaScript text or a ClientsideFunction)."""
        self._declared.append(
            lambda app: app.clientside_callback(clientside_function, *args, **kwargs))

    def include(self, other: CallbackSet) -> None:
        """Register ``other``'s callbacks with this set's (a section this page shows)."""
        self._declared.append(other.register)

    def register(self, app) -> None:
        """Put every declared callback (and those of the included sets) on ``app``."""
        for put_on in self._declared:
            put_on(app)
