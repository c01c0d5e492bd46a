/* The run page's poll watchdog (gato_dash/pages/run.py).
 *
 * The page polls at its own pace: each answer allows one more tick (max_intervals),
 * records which tick it answers (state.answered) and clears the connection message. An
 * answer that never comes (the server restarted, the network went away) would stop the
 * polling for good. Every second this looks at the poll: while the latest tick has had no
 * answer for longer than the backoff (2 s, doubling up to 16 s), it allows one more tick
 * and says that the connection is lost.
 */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gato: Object.assign({}, (window.dash_clientside || {}).gato, {
        pollWatchdog: function (_tick, nIntervals, state, health) {
            var noUpdate = window.dash_clientside.no_update;
            var now = Date.now();
            var retries = (health && health.retries) || 0;
            var waitingSince = health ? health.waiting_since : null;
            var answered = (state && typeof state.answered === "number") ? state.answered : -1;
            if (answered >= (nIntervals || 0)) {  // the latest tick has its answer
                if (retries === 0 && waitingSince === null) {
                    return [noUpdate, noUpdate, noUpdate];
                }
                return [noUpdate, {waiting_since: null, retries: 0}, noUpdate];
            }
            if (waitingSince === null) {
                return [noUpdate, {waiting_since: now, retries: retries}, noUpdate];
            }
            var waitMs = Math.min(2000 * Math.pow(2, retries), 16000);
            if (now - waitingSince < waitMs) {
                return [noUpdate, noUpdate, noUpdate];
            }
            return [(nIntervals || 0) + 1, {waiting_since: now, retries: retries + 1},
                    "Connection lost: retrying…"];
        }
    })
});
