/* Skip Plotly resizes that would not change a graph's size.
 *
 * dcc.Graph calls Plotly.Plots.resize right after every first draw, and again when its
 * resize observer reports the initial size. Plots.resize relayouts with autosize, which
 * redraws the whole figure even when the size is the same: on a finished run's page that
 * doubled or tripled Plotly's work (measured: a no-op resize costs about as much as the
 * draw, ~0.3-0.5 s per page). Here a resize whose new size equals the drawn size (the same
 * rule Plotly's autosize uses: the graph div's computed size, 1 px tolerance, fixed
 * layout dimensions never change) returns at once; any real change is passed through.
 *
 * plotly.js is loaded on demand by the first dcc.Graph, so the patch is applied when the
 * bundle assigns window.Plotly.
 */
(function () {
    "use strict";

    function unchanged(gd) {
        var full = gd && gd._fullLayout;
        if (!full || !gd.layout || typeof window.getComputedStyle !== "function") {
            return false;
        }
        var style = window.getComputedStyle(gd);
        var width = parseFloat(style.width) || parseFloat(style.maxWidth);
        var height = parseFloat(style.height) || parseFloat(style.maxHeight);
        if (!width || !height) {
            return false; // hidden or not laid out yet: let Plotly decide
        }
        var sameWidth = gd.layout.width || Math.abs(full.width - width) <= 1;
        var sameHeight = gd.layout.height || Math.abs(full.height - height) <= 1;
        return Boolean(sameWidth && sameHeight);
    }

    function patch(plotly) {
        if (!plotly || !plotly.Plots || !plotly.Plots.resize || plotly.Plots.resize.gatoPatched) {
            return;
        }
        var resize = plotly.Plots.resize;
        var patched = function (gd) {
            var element = typeof gd === "string" ? document.getElementById(gd) : gd;
            if (unchanged(element)) {
                return Promise.resolve(element);
            }
            return resize.apply(this, arguments);
        };
        patched.gatoPatched = true;
        plotly.Plots.resize = patched;
    }

    if (window.Plotly) {
        patch(window.Plotly);
        return;
    }
    var current;
    // chain to an accessor another script may already have put on window.Plotly
    var previous = Object.getOwnPropertyDescriptor(window, "Plotly");
    var chained = previous && previous.set ? previous : null;
    try {
        Object.defineProperty(window, "Plotly", {
            configurable: true,
            enumerable: true,
            get: function () { return chained ? chained.get.call(window) : current; },
            set: function (value) {
                if (chained) {
                    chained.set.call(window, value);
                } else {
                    current = value;
                }
                patch(value);
            }
        });
    } catch (err) {
        // another script owns window.Plotly: keep Plotly's own behaviour
    }
}());
