/* Large files to the server in chunks (gato_dash/uploads.py), with progress and resume.
 *
 * Any <input type="file" class="gato-chunked-upload" id="ID"> uploads the chosen file in
 * 8 MB chunks. Progress goes to the dbc.Progress "ID-progress"; when the last chunk is in,
 * the dcc.Store "ID-done" gets {token, filename, size}, which the page's callbacks take
 * from there. A chunk that fails
 * is retried after asking the server how much it has (up to 5 times, with backoff); an
 * error goes into the store as {error}.
 */
(function () {
    "use strict";

    function setProps(id, props) {
        if (id && window.dash_clientside && window.dash_clientside.set_props) {
            window.dash_clientside.set_props(id, props);
        }
    }

    function sleep(ms) {
        return new Promise(function (resolve) { setTimeout(resolve, ms); });
    }

    async function answer(response) {
        var body = {};
        try { body = await response.json(); } catch (e) { body = {}; }
        if (!response.ok && response.status !== 409) {
            throw new Error(body.error || ("the server answered " + response.status));
        }
        return body;
    }

    async function upload(input) {
        var file = input.files && input.files[0];
        if (!file) { return; }
        var target = input.id + "-done", progress = input.id + "-progress";
        var base = (window.location.pathname.match(/^(.*?)\/datasets/) || ["", ""])[1];
        setProps(progress, {value: 0, label: "0 %"});
        try {
            var started = await answer(await fetch(base + "/gato-upload", {
                method: "POST", headers: {"Content-Type": "application/json"},
                body: JSON.stringify({filename: file.name, size: file.size})}));
            var token = started.token, chunk = started.chunk_bytes, offset = 0, failures = 0;
            while (offset < file.size) {
                try {
                    var state = await answer(await fetch(
                        base + "/gato-upload/" + token + "?offset=" + offset,
                        {method: "PUT", body: file.slice(offset, offset + chunk)}));
                    offset = state.received;
                    failures = 0;
                } catch (err) {
                    failures += 1;
                    if (failures > 5) { throw err; }
                    await sleep(500 * Math.pow(2, failures));
                    var status = await answer(await fetch(base + "/gato-upload/" + token));
                    offset = status.received;
                }
                var pct = Math.floor(100 * offset / file.size);
                setProps(progress, {value: pct, label: pct + " %"});
            }
            setProps(target, {data: {token: token, filename: file.name, size: file.size}});
        } catch (err) {
            setProps(target, {data: {error: String(err.message || err), filename: file.name}});
        }
        input.value = "";
    }

    document.addEventListener("change", function (event) {
        var input = event.target;
        if (input && input.classList && input.classList.contains("gato-chunked-upload")) {
            upload(input);
        }
    });
})();
