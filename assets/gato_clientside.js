// Clientside callbacks of the GATO dashboard, called from Python with
// dash.clientside_callback(ClientsideFunction("gato", <name>), ...).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gato: {
        // Put a page's view query string ("k=5&tab=spectra", "" for the default view) into
        // the address bar, so that a copied link reopens the same view. replaceState, not a
        // dcc.Location change: that would make Dash Pages build the page again, and it
        // adds no history entry per click. Returns the query (shown nowhere; tests read it).
        replace_query: function (query) {
            if (query === null || query === undefined) {
                return window.dash_clientside.no_update;
            }
            const url = window.location.pathname + (query ? "?" + query : "");
            if (url !== window.location.pathname + window.location.search) {
                window.history.replaceState(window.history.state, "", url);
            }
            return query;
        },
    },
});
