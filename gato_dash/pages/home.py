"""Home: the list of runs (newest first) and a button to start a new one."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from gato_dash import formatting, runtime
from gato_dash.runtime import run_facts
from gato_dash.callback_set import CallbackSet
from gato_dash.runtime.run_fields import ACTIVE, DAMAGED
from gato_dash.status_colours import status_colour

#: This page's callbacks, put on each app by gato_dash.app.create_app
CALLBACKS = CallbackSet()
dash.register_page(__name__, path="/", title="GATO Dashboard", name="Home", order=0,
                   callbacks=CALLBACKS)

def status_badge(status: str, **props):
    return dbc.Badge(status, color=status_colour(status),
                     className="status-badge", **props)




def runs_table(runs: list[dict]):
    if not runs:
        return dbc.Alert("No runs yet. Start one with “New run”.", color="light",
                         id="home-no-runs")
    rows = []
    for run in runs:
        rows.append(html.Tr([
            # run names are user text: plain strings, which Dash renders as text, never HTML
            html.Td(dcc.Link(run["name"] or run["id"], href=f"/runs/{run['id']}",
                             className="run-link")),
            html.Td(run_facts.title_of(run)),
            # a damaged run says why when pointed at; its page says it too
            html.Td(status_badge(run["status"], title=run["message"])
                    if run["status"] == DAMAGED else status_badge(run["status"])),
            html.Td(", ".join(str(k) for k in run["n_cats"])),
            html.Td(formatting.timestamp(run["created"])),
        ], id={"type": "home-run-row", "run": run["id"]}))
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in ("Run", "Scenario", "Status", "K", "Created")])),
         html.Tbody(rows)],
        hover=True, size="sm", responsive=True, id="home-runs-table",
    )


def layout(**_query):
    runs = runtime.store().list_runs()
    return html.Div([
        html.Div([
            html.H3("Runs", className="me-auto mb-0"),
            dbc.Button("New run", href="/new", color="primary", id="home-new-run"),
        ], className="d-flex align-items-center mb-3"),
        html.P("GATO optimises analysis categories with gradient descent. Configure a run, "
               "watch it train live, and keep every result here.", className="text-muted"),
        html.Div(runs_table(runs), id="home-runs"),
        # refresh while something is queued or running, so statuses do not go stale
        dcc.Interval(id="home-refresh", interval=3000,
                     disabled=not any(r["status"] in ACTIVE for r in runs)),
    ])


@CALLBACKS.callback(
    Output("home-runs", "children"),
    Output("home-refresh", "disabled"),
    Input("home-refresh", "n_intervals"),
    prevent_initial_call=True,
)
def refresh_runs(_n):
    runs = runtime.store().list_runs()
    return runs_table(runs), not any(r["status"] in ACTIVE for r in runs)
