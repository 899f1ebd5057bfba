/* mt-vi-en: the result streamed into the page. On submit (text, no file chosen) the form's
 * fields go to POST /api/translate/stream; its server-sent events lay out every row as a
 * placeholder, fill translations as each model batch returns, then word links and quality
 * marks. Everything from the server goes in as textContent or attribute values, never as HTML.
 * Without fetch streaming (or with a file chosen) the form posts as usual. */
(function () {
  "use strict";

  var FLAG_TITLE = "Low confidence: this translation may not match its source, or may not be English " +
    "(quality {q}; human translations score about 0.07 to 0.2)";

  var el = function (tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  };

  // text cut into runs at word spans, as mt.document's _runs: [[text, index or null], ...]
  var runs = function (text, spans) {
    var out = [];
    var pos = 0;
    for (var i = 0; i < spans.length; i++) {
      var a = spans[i][0];
      var b = spans[i][1];
      if (a < pos || b > text.length || b <= a) {
        return text ? [[text, null]] : [];
      }
      if (a > pos) {
        out.push([text.slice(pos, a), null]);
      }
      out.push([text.slice(a, b), i]);
      pos = b;
    }
    if (pos < text.length) {
      out.push([text.slice(pos), null]);
    }
    return out;
  };

  // offsets from the server count code points (Python); JavaScript strings count UTF-16 units
  var units = function (text) {
    var map = [0];
    var offset = 0;
    for (var i = 0; i < text.length; i++) {
      var code = text.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
        i++;
        offset += 2;
      } else {
        offset += 1;
      }
      map.push(offset);
    }
    return function (spans, shift) {
      return spans.map(function (span) {
        var a = span[0] - shift;
        var b = span[1] - shift;
        return [a in map ? map[a] : -1, b in map ? map[b] : -1];
      });
    };
  };

  var fillWords = function (holder, text, spans, shift) {
    holder.textContent = "";
    runs(text, units(text)(spans, shift)).forEach(function (run) {
      if (run[1] === null) {
        holder.appendChild(document.createTextNode(run[0]));
      } else {
        var word = el("span", "w", run[0]);
        word.setAttribute("data-i", String(run[1]));
        holder.appendChild(word);
      }
    });
  };

  // -- server-sent events over fetch (EventSource cannot POST) ---------------------------------
  var readEvents = function (response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var pump = function () {
      return reader.read().then(function (chunk) {
        buffer += decoder.decode(chunk.value || new Uint8Array(0), { stream: !chunk.done });
        buffer = buffer.replace(/\r\n?/g, "\n");
        var end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          var block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          var data = [];
          block.split("\n").forEach(function (line) {
            if (line.slice(0, 5) === "data:") {
              data.push(line.slice(5).replace(/^ /, ""));
            }
          });
          if (data.length) {
            onEvent(JSON.parse(data.join("\n")));
          }
        }
        if (!chunk.done) {
          return pump();
        }
        return null;
      });
    };
    return pump();
  };

  // -- the streamed result -----------------------------------------------------------------------
  var View = function (section, sent) {
    this.section = section;
    this.sent = sent;
    this.rows = {};
    this.total = 0;
    this.done = 0;
    this.toLink = 0;
    this.linked = 0;
    this.scored = {};
    this.scoredCount = 0;
    this.aligned = section.querySelector(".aligned");
    this.bar = section.querySelector("#progress-bar");
    this.progress = section.querySelector("#progress-text");
    this.summary = section.querySelector("#summary");
  };

  View.prototype.stat = function (value, label, className, holder) {
    var stat = el("span", "stat" + (className ? " " + className : ""));
    if (value !== null) {
      stat.appendChild(el("strong", null, String(value)));
      stat.appendChild(document.createTextNode(" " + label));
    } else {
      stat.appendChild(document.createTextNode(label));
    }
    (holder || this.summary).appendChild(stat);
    return stat;
  };

  View.prototype.segments = function (event) {
    var self = this;
    this.total = event.total;
    this.toLink = event.to_translate || 0;
    this.model = event.model;
    var paragraphs = {};
    event.segments.forEach(function (segment) {
      var group = paragraphs[segment.paragraph];
      if (!group) {
        group = paragraphs[segment.paragraph] = el("div", "paragraph");
        group.setAttribute("role", "rowgroup");
        group.setAttribute("data-paragraph", String(segment.paragraph));
        self.aligned.appendChild(group);
      }
      var row = el("div", "pair kind-" + segment.kind + " is-pending");
      row.setAttribute("role", "row");
      row.setAttribute("tabindex", "0");
      row.setAttribute("data-index", String(segment.index));
      row.setAttribute("data-kind", segment.kind);
      row.setAttribute("data-cached", "false");
      row.setAttribute("data-start", String(segment.start));
      row.setAttribute("data-end", String(segment.end));
      row.setAttribute("data-links", "[]");
      row.setAttribute("data-state", "pending");
      row.setAttribute("data-origin", "model");
      row.setAttribute("data-normalized", segment.normalized || "");
      var vi = el("div", "cell vi");
      vi.setAttribute("role", "cell");
      vi.setAttribute("lang", "vi");
      if (segment.kind !== "sentence") {
        vi.appendChild(el("span", "badge badge-" + segment.kind, segment.kind));
        vi.appendChild(document.createTextNode(" "));
      }
      vi.appendChild(el("span", "text", segment.source));
      var en = el("div", "cell en");
      en.setAttribute("role", "cell");
      en.setAttribute("lang", "en");
      en.appendChild(el("span", "text"));
      var placeholder = el("span", "placeholder", "translating…");
      placeholder.setAttribute("aria-hidden", "true");
      en.appendChild(placeholder);
      row.appendChild(vi);
      row.appendChild(en);
      group.appendChild(row);
      self.rows[segment.index] = { row: row, segment: segment };
    });
    this.summary.textContent = "";
    this.stat(event.total, "segments");
    var count = Object.keys(paragraphs).length;
    this.stat(count, count === 1 ? "paragraph" : "paragraphs");
    this.bar.max = Math.max(event.total, 1);
    this.showProgress();
  };

  // what is still running, in words: rows, then word links, then quality scores
  View.prototype.showProgress = function () {
    this.bar.value = this.done;
    this.bar.textContent = this.done + " / " + this.total;
    var text = this.done + " of " + this.total + " segments translated";
    var phase = "rows";
    if (this.done >= this.total) {
      text = "All " + this.total + " segments translated";
      if (this.linked < this.toLink) {
        phase = "links";
        text += " · linking words…";
      } else if (this.scoredCount < this.total) {
        phase = "quality";
        text += " · scoring quality…";
      } else {
        phase = "finishing";
      }
    }
    this.progress.textContent = text;
    this.section.setAttribute("data-translated", String(this.done));
    this.section.setAttribute("data-phase", phase);
  };

  // every row has its English: the button is free again and the downloads work (they are
  // answered from the cache); links and quality marks may still be on their way
  View.prototype.rowsDone = function () {
    if (this.rowsFinished) {
      return;
    }
    this.rowsFinished = true;
    this.section.querySelectorAll(".downloads button").forEach(function (button) {
      button.disabled = false;
    });
    if (this.onRowsDone) {
      this.onRowsDone();
    }
  };

  View.prototype.rowsEvent = function (event) {
    var self = this;
    event.rows.forEach(function (update) {
      var entry = self.rows[update.index];
      if (!entry) {
        return;
      }
      var row = entry.row;
      entry.translation = update.translation;
      var en = row.querySelector(".cell.en");
      en.querySelector(".text").textContent = update.translation;
      var placeholder = en.querySelector(".placeholder");
      if (placeholder) {
        en.removeChild(placeholder);
      }
      row.classList.remove("is-pending");
      row.setAttribute("data-state", "translated");
      row.setAttribute("data-cached", update.cached ? "true" : "false");
      if (typeof update.confidence === "number") {
        row.setAttribute("data-confidence", update.confidence.toFixed(3));
        en.title = "Decoder confidence " + update.confidence.toFixed(3);
      }
      row.setAttribute("data-origin", update.origin || "model");
      if (update.origin === "memory") {
        row.classList.add("is-memory");
        var memory = el("span", "badge badge-memory", "memory");
        memory.title = "From the translation memory";
        en.appendChild(memory);
      }
      if (update.cached) {
        row.classList.add("is-cached");
        var badge = el("span", "badge badge-cached", "cached");
        badge.title = "Served from the sentence cache";
        en.appendChild(badge);
      }
      if (window.mtWorkspace) {
        window.mtWorkspace.rowTranslated(row, update);
      }
    });
    this.done = event.done;
    this.showProgress();
    if (this.done >= this.total) {
      this.rowsDone();
    }
  };

  View.prototype.links = function (event) {
    var self = this;
    event.rows.forEach(function (update) {
      var entry = self.rows[update.index];
      if (!entry) {
        return;
      }
      var row = entry.row;
      if (typeof update.translation === "string") {
        entry.translation = update.translation; // glossary terms applied: the final English
      }
      fillWords(row.querySelector(".cell.vi .text"), entry.segment.source, update.src_word_spans, entry.segment.start);
      if (row.getAttribute("data-edited") !== "true") { // an edit made meanwhile stays
        fillWords(row.querySelector(".cell.en .text"), entry.translation || "", update.tgt_word_spans, 0);
        row.setAttribute("data-links", JSON.stringify(update.alignment));
        row.mtLinks = null; // app.js reads data-links again
      }
      if (window.mtWorkspace) {
        window.mtWorkspace.rowLinked(row, update);
      }
    });
    this.linked += event.rows.length;
    this.showProgress();
  };

  View.prototype.quality = function (event) {
    var self = this;
    event.rows.forEach(function (update) {
      var entry = self.rows[update.index];
      if (!entry) {
        return;
      }
      var row = entry.row;
      row.setAttribute("data-scored", "true");
      if (!self.scored[update.index]) {
        self.scored[update.index] = true;
        self.scoredCount += 1;
      }
      if (update.quality === null || row.getAttribute("data-edited") === "true") {
        return;
      }
      var score = update.quality.toFixed(3);
      row.setAttribute("data-quality", score);
      if (update.flagged && !row.classList.contains("is-flagged")) {
        row.classList.add("is-flagged");
        var en = row.querySelector(".cell.en");
        var badge = el("span", "badge badge-flagged", "low confidence");
        badge.title = FLAG_TITLE.replace("{q}", score);
        en.insertBefore(badge, en.querySelector(".badge-memory, .badge-cached, .choices, .row-tools"));
      }
    });
    this.showProgress();
  };

  View.prototype.finish = function (event) {
    var timings = event.timings || {};
    var hits = this.stat(event.cache_hits, "from cache", "stat-cache");
    hits.querySelector("strong").setAttribute("data-cache-hits", String(event.cache_hits));
    var memory = this.section.querySelectorAll(".aligned .pair[data-origin='memory']:not([data-edited])").length;
    this.stat(memory, "from memory", "stat-memory").querySelector("strong").setAttribute("data-memory-hits", String(memory));
    var details = this.section.querySelector("#dev-summary");
    this.section.querySelector("#dev-details").hidden = false; // timings and the model, folded away
    this.stat(timings.model_sentences || 0, "sent to the model", null, details);
    this.stat(null, "model " + Math.round(timings.model_ms || 0) + " ms", null, details);
    this.stat(null, "total " + Math.round(timings.total_ms || 0) + " ms", null, details);
    var model = this.stat(null, "", "stat-model", details);
    model.appendChild(el("code", null, event.model));
    var edited = this.section.querySelector(".aligned .pair[data-edited='true']");
    this.section.querySelector(".full-text").textContent = edited && window.mtWorkspace
      ? window.mtWorkspace.english(this.section) : event.translation;
    this.progress.textContent = "All " + this.total + " segments translated";
    this.rowsDone();
    this.end("done");
  };

  View.prototype.fail = function (message) {
    var notice = el("div", "notice notice-error stream-error");
    notice.setAttribute("role", "alert");
    notice.id = "stream-error";
    var strong = el("strong", null, "Could not translate.");
    notice.appendChild(strong);
    message = String(message || "");
    notice.appendChild(document.createTextNode(" " + message.charAt(0).toUpperCase() + message.slice(1) +
      (/[.!?]$/.test(message) ? "" : ".")));
    this.section.insertBefore(notice, this.section.querySelector(".downloads"));
    this.progress.textContent = this.done + " of " + this.total + " segments translated; stopped";
    this.section.setAttribute("data-phase", "stopped");
    this.section.querySelectorAll(".pair.is-pending .placeholder").forEach(function (node) {
      node.textContent = "not translated";
    });
    this.end("error");
  };

  View.prototype.end = function (state) {
    this.section.setAttribute("data-state", state);
    this.section.removeAttribute("aria-busy");
    this.section.querySelector("#progress").classList.add("is-finished");
  };

  View.prototype.handle = function (event) {
    if (event.event === "segments") {
      this.segments(event);
    } else if (event.event === "rows") {
      this.rowsEvent(event);
    } else if (event.event === "links") {
      this.links(event);
    } else if (event.event === "quality") {
      this.quality(event);
    } else if (event.event === "done") {
      this.finish(event);
    } else if (event.event === "error") {
      this.fail(event.error.message);
    }
  };

  // -- starting a stream from the form -----------------------------------------------------------
  var field = function (form, name) {
    var input = form.elements.namedItem(name);
    return input && input.value !== undefined ? input.value : "";
  };

  var busy = function (on) {
    var submit = document.getElementById("submit");
    if (!submit) {
      return;
    }
    submit.disabled = on;
    submit.classList.toggle("is-busy", on);
    submit.textContent = on ? "Translating…" : "Translate";
  };

  var current = null; // the view being streamed; a new submit stops the old stream

  var formError = function (form, message) {
    var old = document.getElementById("form-error");
    if (old) {
      old.parentNode.removeChild(old);
    }
    var notice = el("div", "notice notice-error");
    notice.id = "form-error";
    notice.setAttribute("role", "alert");
    notice.appendChild(el("strong", null, "Could not translate."));
    notice.appendChild(document.createTextNode(" " + message));
    form.parentNode.insertBefore(notice, form);
  };

  var start = function (form, submitEvent) {
    var template = document.getElementById("result-template");
    var file = form.elements.namedItem("file");
    if (!template || !form.getAttribute("data-stream") || !window.fetch || !window.TextDecoder ||
        !window.ReadableStream || (file && file.files && file.files.length)) {
      return false; // the form posts as usual
    }
    var text = field(form, "text");
    if (!text.trim()) {
      return false; // the server's page says what is missing
    }
    submitEvent.preventDefault();
    var beam = field(form, "beam");
    var body = { text: text, model: field(form, "model") || null, beam: beam ? parseInt(beam, 10) : null };
    if (form.elements.namedItem("api_key")) {
      body.api_key = field(form, "api_key");
    }
    var terms = {};
    try {
      terms = window.mtGlossary ? window.mtGlossary.of(form) : {};
    } catch (error) {
      formError(form, error.message);
      return true;
    }
    if (terms.glossary) {
      body.glossary = terms.glossary;
    } else if (terms.glossary_id) {
      body.glossary_id = terms.glossary_id;
    }
    if (current && current.controller) {
      current.controller.abort();
    }

    document.querySelectorAll("#result, #form-error").forEach(function (old) {
      old.parentNode.removeChild(old);
    });
    var section = template.content.firstElementChild.cloneNode(true);
    template.parentNode.insertBefore(section, template);
    var downloads = section.querySelector(".downloads");
    downloads.elements.namedItem("text").value = text;
    downloads.elements.namedItem("model").value = body.model || "";
    downloads.elements.namedItem("beam").value = beam;
    downloads.elements.namedItem("glossary").value = body.glossary ? JSON.stringify(body.glossary) : "";
    downloads.elements.namedItem("glossary_id").value = body.glossary_id || "";
    if (downloads.elements.namedItem("api_key")) {
      downloads.elements.namedItem("api_key").value = body.api_key || "";
    }
    var title = document.getElementById("compose-title");
    if (title) {
      title.classList.add("visually-hidden");
    }
    var view = new View(section, body);
    current = view;
    view.controller = window.AbortController ? new AbortController() : null;
    view.onRowsDone = function () {
      if (current === view) {
        busy(false);
      }
    };
    if (window.mtBindAligned) {
      window.mtBindAligned(view.aligned);
    }
    busy(true);
    fetch(form.getAttribute("data-stream"), {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      signal: view.controller ? view.controller.signal : undefined,
    }).then(function (response) {
      if (!response.ok) {
        return response.json().then(function (answer) {
          view.fail(answer && answer.error ? answer.error.message : response.statusText);
        }, function () {
          view.fail(response.statusText || "the server did not answer");
        });
      }
      return readEvents(response, function (event) {
        view.handle(event);
      }).then(function () {
        if (view.section.getAttribute("data-state") === "streaming") {
          view.fail("the connection closed before the translation was complete");
        }
      });
    }).catch(function (error) {
      if (current === view) {
        view.fail("the connection failed (" + (error && error.message ? error.message : "network error") + ")");
      }
    }).then(function () {
      if (current === view) {
        busy(false);
      }
    });
    return true;
  };

  window.mtStream = { start: start, el: el };
})();
