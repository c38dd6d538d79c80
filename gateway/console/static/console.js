// Progressive enhancement for the console: every page works without this file.
(function () {
  "use strict";

  function csrfToken(form) {
    var field = form.querySelector('input[name="csrf"]');
    return field ? field.value : "";
  }

  function percent(part, whole) {
    return whole > 0 ? Math.min(100, Math.round((part / whole) * 100)) : 0;
  }

  function formatBytes(n) {
    var units = ["B", "KiB", "MiB", "GiB"], i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
  }

  // Upload: the raw file over XHR so the browser reports the bytes sent, then the job is
  // polled for rows validated; the report page opens when the job is done.
  function enhanceUpload(form) {
    var panel = document.getElementById("upload-progress");
    var messages = document.getElementById("upload-messages").dataset;
    var bytesBar = document.getElementById("bytes-bar");
    var bytesText = document.getElementById("bytes-text");
    var rowsBar = document.getElementById("rows-bar");
    var rowsText = document.getElementById("rows-text");
    var status = document.getElementById("upload-status");

    form.addEventListener("submit", function (event) {
      var file = form.querySelector('input[type="file"]').files[0];
      if (!file) { return; }
      event.preventDefault();
      var mode = form.querySelector('input[name="mode"]:checked');
      var params = new URLSearchParams({
        filename: file.name,
        encoding: form.querySelector('select[name="encoding"]').value,
        mode: mode ? mode.value : "replace"
      });
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action + "?" + params.toString());
      xhr.setRequestHeader("X-CSRF-Token", csrfToken(form));
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      panel.hidden = false;
      document.getElementById("upload-button").disabled = true;
      status.textContent = messages.uploading;
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          bytesBar.value = percent(e.loaded, e.total);
          bytesText.textContent = formatBytes(e.loaded) + " / " + formatBytes(e.total);
        }
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (ignore) { body = {}; }
        if (xhr.status !== 202 || !body.job) {
          status.textContent = messages.failed + " " + ((body.error && body.error.message) || xhr.status);
          document.getElementById("upload-button").disabled = false;
          return;
        }
        bytesBar.value = 100;
        poll(body.job.id, body.report);
      });
      xhr.addEventListener("error", function () {
        status.textContent = messages.failed + " network";
        document.getElementById("upload-button").disabled = false;
      });
      xhr.send(file);
    });

    function poll(jobId, report) {
      fetch("/console/jobs/" + encodeURIComponent(jobId) + ".json", { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (job) {
          if (job.error && !job.status) { status.textContent = messages.failed + " " + job.error.message; return; }
          var done = job.status !== "queued" && job.status !== "running";
          rowsBar.value = done ? 100 : Math.round((job.progress || 0) * 100);
          rowsText.textContent = (job.rows_read || 0).toLocaleString() + " " + messages.rows +
            " · " + (job.rows_rejected || 0).toLocaleString() + " " + messages.rejected;
          status.textContent = job.status === "queued" ? messages.queued : (done ? messages.done : messages.validating);
          if (done) {
            window.setTimeout(function () { window.location.assign(report); }, 600);
          } else {
            window.setTimeout(function () { poll(jobId, report); }, 400);
          }
        })
        .catch(function () { window.setTimeout(function () { poll(jobId, report); }, 1000); });
    }
  }

  // A running job's report refreshes itself until the job ends.
  function refreshWhileRunning(marker) {
    window.setTimeout(function () { window.location.reload(); }, 2000);
  }

  // Schema browser: insert a dataset or column name at the cursor of the SQL editor.
  function enhanceSchemaBrowser() {
    var editor = document.getElementById("sql");
    if (!editor) { return; }
    document.querySelectorAll("button.insert").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = button.dataset.insert;
        var start = editor.selectionStart, end = editor.selectionEnd;
        editor.value = editor.value.slice(0, start) + text + editor.value.slice(end);
        editor.focus();
        editor.selectionStart = editor.selectionEnd = start + text.length;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var upload = document.getElementById("upload-form");
    if (upload) { enhanceUpload(upload); }
    var running = document.getElementById("job-running");
    if (running) { refreshWhileRunning(running); }
    enhanceSchemaBrowser();
  });
})();
