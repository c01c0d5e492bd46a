/* Load plotly.js from its content-hashed URL (see gato_dash.app._serve_partial_plotlyjs).
 *
 * dash-renderer tells dcc.Graph where plotly.js is by assigning window._dashPlotlyJSURL
 * (a fixed name, revalidated on every page). When the page names the hashed copy in its
 * <meta name="gato-plotlyjs-url">, that URL is what dcc.Graph reads instead: cached for a
 * year, no round trip, and Chromium keeps its compiled code between tabs. Without the meta
 * tag, Dash's own URL is used unchanged.
 */
(function () {
    "use strict";
    var meta = document.querySelector('meta[name="gato-plotlyjs-url"]');
    var hashed = meta && meta.getAttribute("content");
    if (!hashed) {
        return;
    }
    Object.defineProperty(window, "_dashPlotlyJSURL", {
        configurable: true,
        get: function () {
            return hashed;
        },
        set: function () {}, // dash-renderer's assignment of the fixed name
    });
})();
