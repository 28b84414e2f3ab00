// hostel's web terminal: xterm.js bridged to a login shell in the tenant's workspace over the
// gateway's WebSocket (/u/<tenant>/terminal/ws). Binary frames carry keystrokes and output; a
// text frame {"resize":[cols,rows]} resizes the terminal; the server ends with {"exit_code":N}.
// A dropped connection reconnects with a new shell; Ctrl+Shift+C copies, Ctrl+Shift+V pastes.
(function () {
  "use strict";
  var el = document.getElementById("terminal");
  var statusEl = document.getElementById("status");
  var tenant = el.dataset.tenant;
  var term = new Terminal({ cursorBlink: true, scrollback: 5000, fontSize: 15,
                            fontFamily: "DejaVu Sans Mono, Liberation Mono, monospace" });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(el);
  fit.fit();
  window.hostelTerminal = term;

  var encoder = new TextEncoder();
  var socket = null;
  var retries = 0;
  var exited = false;

  function setStatus(text) { statusEl.textContent = text; }

  function send(data) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(data);
  }

  function connect() {
    exited = false;
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + location.host + "/u/" + encodeURIComponent(tenant) +
      "/terminal/ws?cols=" + term.cols + "&rows=" + term.rows;
    setStatus(retries ? "reconnecting..." : "connecting (a stopped workspace starts first)...");
    var ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.onopen = function () {
      retries = 0;
      setStatus("connected");
      el.dataset.state = "connected";
      term.focus();
    };
    ws.onmessage = function (e) {
      if (typeof e.data === "string") {
        var msg = JSON.parse(e.data);
        if ("exit_code" in msg) {
          exited = true;
          el.dataset.state = "exited";
          setStatus("the shell exited (" + msg.exit_code + "); press Enter for a new one");
        }
        return;
      }
      term.write(new Uint8Array(e.data));
    };
    ws.onclose = function (e) {
      if (socket !== ws) return;
      socket = null;
      if (exited) return;
      el.dataset.state = "closed";
      if (e.code === 1008 || e.code === 4403) {
        setStatus("not allowed: sign in again");
        return;
      }
      retries += 1;
      var wait = Math.min(10000, 500 * Math.pow(2, retries - 1));
      setStatus("disconnected; reconnecting in " + Math.round(wait / 1000) + " s");
      setTimeout(connect, wait);
    };
  }

  // After the shell's exit, Enter starts a new one, even before the old socket has closed.
  term.onData(function (d) {
    if (exited) {
      if (d !== "\r") return;
      var old = socket;
      socket = null;
      if (old) old.close();
      term.write("\r\n");
      connect();
      return;
    }
    send(encoder.encode(d));
  });
  term.onBinary(function (d) {
    var bytes = new Uint8Array(d.length);
    for (var i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 255;
    send(bytes);
  });
  term.onResize(function (size) {
    send(JSON.stringify({ resize: [size.cols, size.rows] }));
  });
  // Ctrl+Shift+C copies the selection (Ctrl+C stays the shell's interrupt); pasting, with
  // Ctrl+Shift+V or the browser's menu, is the browser's own paste event, which xterm.js takes.
  term.attachCustomKeyEventHandler(function (e) {
    if (e.type !== "keydown" || !e.ctrlKey || !e.shiftKey || e.code !== "KeyC") return true;
    if (term.hasSelection() && navigator.clipboard) {
      navigator.clipboard.writeText(term.getSelection());
      e.preventDefault();
      return false;
    }
    return true;
  });
  window.addEventListener("resize", function () { fit.fit(); });
  connect();
})();
