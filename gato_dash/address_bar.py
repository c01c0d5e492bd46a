"""Keep a page's view in the browser's address bar, so that a link reproduces it.

A page computes its view's query string (gato_dash.view_state.query) into a dcc.Store;
``keep_query_in_address_bar`` declares, in the page's callback set
(gato_dash.callback_set), the one clientside callback (``replace_query`` in
assets/gato_clientside.js) that copies it into the address bar without a navigation.
"""
from __future__ import annotations

from dash import ClientsideFunction, Input, Output

from gato_dash.callback_set import CallbackSet


def keep_query_in_address_bar(callbacks: CallbackSet, query_store_id: str,
                              applied_id: str) -> None:
    """Copy the query string held in dcc.Store ``query_store_id`` into the address bar
    whenever it changes; ``applied_id`` (a hidden html.Div) receives the query applied.
    The callback goes into ``callbacks``, the set of the page that shows the store."""
    callbacks.clientside_callback(
        ClientsideFunction(namespace="gato", function_name="replace_query"),
        Output(applied_id, "children"),
        Input(query_store_id, "data"),
    )
