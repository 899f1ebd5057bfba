/* mt-vi-en: the aligned view as a translator's workspace. Edit a row's English in place (saved
 * to the translation memory), take a memory suggestion or one of the model's alternatives, copy
 * a row or the whole English, show the Vietnamese as written or normalised, highlight glossary
 * terms on both sides (glossary.js reads the request's glossary). Works on the
 * server-rendered rows and on streamed ones (stream.js calls in); data from the server goes in as
 * textContent or attribute values, never as HTML. */
(function () {
  "use strict";

  var CLOSING = /^[.,;:!?…)\]}»”’%]/;
  var OPENING = /[([{«“‘]$/;
  var TERM_KINDS = {
    glossary: "Glossary term", number: "Number", url: "Web address", email: "E-mail address",
    name: "Name kept as written", untranslated: "Kept untranslated",
  };

  var el = window.mtStream.el; // stream.js loads first (base.html): one element helper for both

  var sentenceCase = function (text) {
    text = String(text || "").trim();
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  };

  // -- talking to the server ----------------------------------------------------------------------
  var apiKey = function () {
    var input = document.querySelector("#translate-form [name='api_key']");
    return input ? input.value : "";
  };

  var messageOf = function (answer, response) {
    var error = answer && answer.error;
    if (error && typeof error === "object" && error.message) {
      return sentenceCase(error.message);
    }
    if (typeof error === "string") {
      return sentenceCase(error);
    }
    if (response.status === 404 || response.status === 405) {
      return "This server does not offer it.";
    }
    return "The server answered " + (response.statusText || "with an error") + ".";
  };

  var request = function (method, url, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (apiKey()) {
      headers["X-API-Key"] = apiKey();
    }
    return fetch(url, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () {
        return null;
      }).then(function (answer) {
        if (!response.ok) {
          throw new Error(messageOf(answer, response));
        }
        return answer;
      });
    }, function () {
      throw new Error("The server could not be reached.");
    });
  };

  // -- a row's texts --------------------------------------------------------------------------------
  var writtenOf = function (node) {
    return node.mtWritten !== undefined ? node.mtWritten : node.textContent;
  };

  var sourceOf = function (row) {
    var text = row.querySelector(".cell.vi .text");
    if (!text) {
      return "";
    }
    if (text.mtWritten !== undefined) {
      return text.mtWritten;
    }
    return Array.prototype.map.call(text.childNodes, writtenOf).join("");
  };

  var translationOf = function (row) {
    var text = row.querySelector(".cell.en .text");
    return text ? text.textContent : "";
  };

  var rowsOf = function (row) {
    var aligned = row.closest(".aligned");
    return aligned ? Array.prototype.slice.call(aligned.querySelectorAll(".pair")) : [row];
  };

  var numberOf = function (row) {
    return parseInt(row.getAttribute("data-index"), 10) + 1;
  };

  var isReady = function (row) {
    return row.getAttribute("data-state") !== "pending";
  };

  var say = function (row, message, isError) {
    var en = row.querySelector(".cell.en");
    var note = en.querySelector(".row-message");
    if (!note) {
      note = el("span", "row-message");
      note.setAttribute("role", "status");
      en.appendChild(note);
    }
    note.classList.toggle("is-error", !!isError);
    note.setAttribute("role", isError ? "alert" : "status");
    note.textContent = message || "";
    window.clearTimeout(note.mtTimer);
    if (message && !isError && message.slice(-1) !== "…") { // "Saved", "Copied": said, then gone
      note.mtTimer = window.setTimeout(function () {
        note.textContent = "";
      }, 4000);
    }
  };

  // -- the whole English, rebuilt from the rows (edits included) ----------------------------------
  var englishOf = function (section) {
    return Array.prototype.map.call(section.querySelectorAll(".aligned .paragraph"), function (group) {
      return Array.prototype.map.call(group.querySelectorAll(".pair"), translationOf).filter(function (text) {
        return text.trim();
      }).join(" ");
    }).filter(function (text) {
      return text;
    }).join("\n\n");
  };

  // -- copy ---------------------------------------------------------------------------------------
  var copyText = function (text) {
    var fallback = function () {
      var area = el("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try {
        ok = document.execCommand("copy");
      } catch (error) {
        ok = false;
      }
      document.body.removeChild(area);
      return ok ? Promise.resolve() : Promise.reject(new Error("Copying is blocked by the browser."));
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text).catch(fallback);
    }
    return fallback();
  };

  // -- saving to the translation memory -----------------------------------------------------------
  var memoryUrl = function () {
    return document.body.getAttribute("data-memory-url") || "/api/memory";
  };

  var setTranslation = function (row, text) {
    var en = row.querySelector(".cell.en");
    en.querySelector(".text").textContent = text; // the model's word links no longer apply
    row.setAttribute("data-links", "[]");
    row.mtLinks = null;
    row.setAttribute("data-origin", "memory");
    row.setAttribute("data-edited", "true");
    row.classList.add("is-edited");
    row.classList.remove("is-cached", "is-flagged");
    row.removeAttribute("data-quality");
    en.querySelectorAll(".badge-cached, .badge-flagged, .badge-memory, .badge-edited").forEach(function (badge) {
      badge.parentNode.removeChild(badge);
    });
    var badge = el("span", "badge badge-edited", "edited");
    badge.title = "Your translation, kept in the translation memory";
    en.insertBefore(badge, en.querySelector(".text").nextSibling);
    var section = row.closest(".result");
    var full = section && section.querySelector(".full-text");
    if (full) {
      full.textContent = englishOf(section);
    }
  };

  var save = function (row, text) {
    var entry = { source: sourceOf(row), target: text, origin: "edited" };
    say(row, "Saving…");
    return request("POST", memoryUrl(), { entries: [entry] }).then(function () {
      setTranslation(row, text);
      say(row, "Saved to the translation memory.");
    }, function (error) {
      say(row, "Not saved: " + error.message, true);
      throw error;
    });
  };

  // -- editing in place -----------------------------------------------------------------------------
  var fit = function (area) {
    area.style.height = "auto";
    area.style.height = area.scrollHeight + 2 + "px";
  };

  var closeEdit = function (row) {
    var editor = row.mtEditor;
    if (!editor) {
      return;
    }
    row.mtEditor = null;
    row.classList.remove("is-editing");
    editor.parentNode.removeChild(editor);
    row.querySelector(".cell.en .text").hidden = false;
  };

  var neighbour = function (row, step) {
    var rows = rowsOf(row);
    var at = rows.indexOf(row) + step;
    while (at >= 0 && at < rows.length && !isReady(rows[at])) {
      at += step;
    }
    return rows[at] || null;
  };

  var commit = function (row, step) {
    var editor = row.mtEditor;
    var text = editor.value.replace(/\s+/g, " ").trim();
    var next = step ? neighbour(row, step) : null;
    var after = function () {
      closeEdit(row);
      if (next) {
        startEdit(next);
      } else {
        row.focus();
      }
    };
    if (!text) {
      say(row, "The English cannot be empty: Esc puts the translation back.", true);
      return;
    }
    if (text === translationOf(row).trim()) {
      say(row, "");
      after();
      return;
    }
    editor.readOnly = true;
    save(row, text).then(after, function () {
      editor.readOnly = false;
      editor.focus();
    });
  };

  var startEdit = function (row) {
    if (row.mtEditor) {
      row.mtEditor.focus();
      return;
    }
    if (!isReady(row)) {
      return;
    }
    var en = row.querySelector(".cell.en");
    var text = en.querySelector(".text");
    var editor = el("textarea", "editor");
    editor.value = text.textContent;
    editor.rows = 1;
    editor.setAttribute("lang", "en");
    editor.setAttribute("spellcheck", "true");
    editor.setAttribute("aria-label", "English of sentence " + numberOf(row) +
      ". Enter saves to the translation memory, Escape cancels, up and down arrows save and move");
    text.hidden = true;
    en.insertBefore(editor, text.nextSibling);
    row.mtEditor = editor;
    row.classList.add("is-editing");
    editor.addEventListener("input", function () {
      fit(editor);
    });
    editor.addEventListener("keydown", function (event) {
      event.stopPropagation(); // the row's own keys (↑/↓, A, C, digits) are not for the editor
      if (event.isComposing || event.altKey || event.ctrlKey || event.metaKey) {
        return;
      }
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        commit(row, 0);
      } else if (event.key === "Escape") {
        event.preventDefault();
        say(row, "");
        closeEdit(row);
        row.focus();
      } else if ((event.key === "ArrowDown" || event.key === "ArrowUp") && !event.shiftKey) {
        event.preventDefault();
        commit(row, event.key === "ArrowDown" ? 1 : -1);
      }
    });
    fit(editor);
    editor.focus();
    editor.setSelectionRange(editor.value.length, editor.value.length);
  };

  // -- suggestions (memory) and alternatives (the model's n-best) ---------------------------------
  var renderChoices = function (row) {
    var en = row.querySelector(".cell.en");
    var list = en.querySelector(".choices");
    var choices = (row.mtSuggestions || []).concat(row.mtAlternatives || []);
    if (!choices.length && !row.mtChoiceNote) {
      if (list) {
        list.parentNode.removeChild(list);
      }
      return;
    }
    if (!list) {
      list = el("div", "choices");
      list.setAttribute("role", "group");
      list.setAttribute("aria-label", "Other translations of sentence " + numberOf(row));
      en.insertBefore(list, en.querySelector(".row-tools"));
    }
    list.textContent = "";
    choices.forEach(function (choice, i) {
      var button = el("button", "choice");
      button.type = "button";
      button.setAttribute("data-choice", String(i));
      button.setAttribute("data-kind", choice.kind);
      var key = i < 9 ? String(i + 1) : "";
      if (key) {
        button.appendChild(el("kbd", "choice-key", key));
      }
      var label = choice.kind === "memory" ? Math.round(choice.score * 100) + "% memory" : "alternative";
      button.appendChild(el("span", "choice-label", label));
      button.appendChild(el("span", "choice-text", choice.text));
      if (choice.kind === "memory") {
        button.title = "A memory entry for a similar sentence: " + choice.source;
      }
      button.setAttribute("aria-label", "Use " + label + (key ? " (key " + key + ")" : "") + ": " + choice.text);
      list.appendChild(button);
    });
    if (row.mtChoiceNote) {
      list.appendChild(el("span", "hint choices-note", row.mtChoiceNote));
    }
  };

  var setSuggestions = function (row, suggestions) {
    row.mtSuggestions = (suggestions || []).map(function (item) {
      return { kind: "memory", text: item.target, source: item.source, score: item.score };
    });
    row.classList.toggle("has-suggestions", row.mtSuggestions.length > 0);
    renderChoices(row);
  };

  var alternativesUrl = function () {
    return document.body.getAttribute("data-alternatives-url") || "/api/alternatives";
  };

  var fetchAlternatives = function (row) {
    if (!isReady(row) || row.getAttribute("data-kind") === "byline" || row.mtAsked) {
      return Promise.resolve();
    }
    row.mtAsked = true;
    row.mtChoiceNote = "Asking the model for alternatives…";
    renderChoices(row);
    return request("POST", alternativesUrl(), { sentence: sourceOf(row), n: 4 }).then(function (answer) {
      var seen = {};
      seen[translationOf(row).trim()] = true;
      (row.mtSuggestions || []).forEach(function (item) {
        seen[item.text.trim()] = true;
      });
      row.mtAlternatives = ((answer && answer.alternatives) || []).filter(function (text) {
        var fresh = typeof text === "string" && text.trim() && !seen[text.trim()];
        seen[String(text).trim()] = true;
        return fresh;
      }).map(function (text) {
        return { kind: "alternative", text: text };
      });
      row.mtChoiceNote = row.mtAlternatives.length ? "" : "The model has no other translation of this sentence.";
      renderChoices(row);
    }, function (error) {
      row.mtAsked = false;
      row.mtChoiceNote = "No alternatives: " + error.message;
      renderChoices(row);
    });
  };

  var take = function (row, index) {
    var choices = (row.mtSuggestions || []).concat(row.mtAlternatives || []);
    var choice = choices[index];
    if (!choice || !isReady(row)) {
      return;
    }
    save(row, choice.text).then(function () {
      row.focus();
    }, function () {});
  };

  // -- row tools (made when a row is first hovered or focused) --------------------------------------
  var tool = function (action, label, text) {
    var button = el("button", "button tool", text);
    button.type = "button";
    button.setAttribute("data-action", action);
    button.setAttribute("aria-label", label);
    return button;
  };

  var ensureTools = function (row) {
    if (!row || row.mtTools || !isReady(row)) {
      return;
    }
    var n = numberOf(row);
    var tools = el("div", "row-tools");
    tools.appendChild(tool("edit", "Edit the English of sentence " + n + " (Enter)", "Edit"));
    if (row.getAttribute("data-kind") !== "byline") {
      tools.appendChild(tool("alternatives", "Alternatives for sentence " + n + " (A)", "Alternatives"));
    }
    tools.appendChild(tool("copy", "Copy the English of sentence " + n + " (C)", "Copy"));
    row.querySelector(".cell.en").appendChild(tools);
    row.mtTools = tools;
  };

  var copyRow = function (row) {
    copyText(translationOf(row)).then(function () {
      say(row, "Copied.");
    }, function (error) {
      say(row, error.message, true);
    });
  };

  // -- the Vietnamese as written, or normalised (no underscores, no space before punctuation) -----
  var normalise = function (row, on) {
    var holder = row.querySelector(".cell.vi .text");
    if (!holder) {
      return;
    }
    var nodes = Array.prototype.slice.call(holder.childNodes);
    var words = nodes.filter(function (node) {
      return node.nodeType === 1;
    });
    if (!words.length) { // no word spans yet: the whole text
      if (holder.mtWritten === undefined) {
        holder.mtWritten = holder.textContent;
      }
      holder.textContent = on ? (row.getAttribute("data-normalized") || holder.mtWritten.replace(/_/g, " "))
        : holder.mtWritten;
      return;
    }
    delete holder.mtWritten;
    var quotes = 0;
    nodes.forEach(function (node) {
      if (node.mtWritten === undefined) {
        node.mtWritten = node.textContent;
      }
    });
    nodes.forEach(function (node, i) {
      var written = node.mtWritten;
      if (node.nodeType === 1) {
        node.textContent = on ? written.replace(/_/g, " ") : written;
        if (written === "\"") {
          node.mtQuote = quotes % 2 ? "close" : "open";
          quotes += 1;
        }
        return;
      }
      var before = nodes[i - 1];
      var after = nodes[i + 1];
      var glue = /^\s+$/.test(written) && (
        (after && after.nodeType === 1 && (CLOSING.test(after.mtWritten) || after.mtWritten === "\"" && quotes % 2 === 1)) ||
        (before && before.nodeType === 1 && (OPENING.test(before.mtWritten) || before.mtQuote === "open")));
      node.textContent = on && glue ? "" : written;
    });
  };

  // -- glossary terms, highlighted on both sides --------------------------------------------------
  var wordRanges = function (holder) {
    var out = [];
    var pos = 0;
    Array.prototype.forEach.call(holder.childNodes, function (node) {
      var length = Array.from(writtenOf(node)).length; // offsets from the server count code points
      if (node.nodeType === 1 && node.classList.contains("w")) {
        out.push([node, pos, pos + length]);
      }
      pos += length;
    });
    return out;
  };

  var mark = function (holder, span, shift, title) {
    if (!holder || !span || span.length !== 2) {
      return;
    }
    var a = span[0] - shift;
    var b = span[1] - shift;
    wordRanges(holder).forEach(function (range) {
      if (range[1] < b && range[2] > a) {
        range[0].classList.add("is-term");
        range[0].title = title;
      }
    });
  };

  var setTerms = function (row, terms) {
    row.querySelectorAll(".is-term").forEach(function (word) {
      word.classList.remove("is-term");
      word.removeAttribute("title");
    });
    row.mtTerms = terms || [];
    var start = parseInt(row.getAttribute("data-start"), 10) || 0;
    row.mtTerms.forEach(function (term) {
      var title = (TERM_KINDS[term.kind] || "Term") + ": " + term.source + " → " + term.english +
        (term.how ? " (" + term.how + ")" : "");
      mark(row.querySelector(".cell.vi .text"), term.span, start, title);
      if (row.getAttribute("data-edited") !== "true") {
        mark(row.querySelector(".cell.en .text"), term.target_span, 0, title);
      }
    });
    row.classList.toggle("has-terms", row.mtTerms.length > 0);
  };

  var parseJSON = function (value) {
    try {
      return JSON.parse(value || "[]");
    } catch (error) {
      return [];
    }
  };

  // -- binding a table ------------------------------------------------------------------------------
  var bind = function (aligned) {
    if (!aligned || aligned.mtWorkspace) {
      return;
    }
    aligned.mtWorkspace = true;
    var section = aligned.closest(".result");
    aligned.querySelectorAll(".pair").forEach(function (row) { // server-rendered rows
      if (row.hasAttribute("data-suggestions")) {
        setSuggestions(row, parseJSON(row.getAttribute("data-suggestions")));
      }
      if (row.hasAttribute("data-terms")) {
        setTerms(row, parseJSON(row.getAttribute("data-terms")));
      }
    });
    var activate = function (event) {
      ensureTools(event.target.closest ? event.target.closest(".pair") : null);
    };
    aligned.addEventListener("mouseover", activate);
    aligned.addEventListener("focusin", activate);
    aligned.addEventListener("click", function (event) {
      var button = event.target.closest ? event.target.closest("button") : null;
      var row = event.target.closest ? event.target.closest(".pair") : null;
      if (!button || !row) {
        return;
      }
      var action = button.getAttribute("data-action");
      if (button.hasAttribute("data-choice")) {
        take(row, parseInt(button.getAttribute("data-choice"), 10));
      } else if (action === "edit") {
        startEdit(row);
      } else if (action === "alternatives") {
        fetchAlternatives(row);
      } else if (action === "copy") {
        copyRow(row);
      }
    });
    aligned.addEventListener("dblclick", function (event) {
      var row = event.target.closest ? event.target.closest(".pair") : null;
      if (row && event.target.closest(".cell.en") && !event.target.closest("button, textarea")) {
        startEdit(row);
      }
    });
    aligned.addEventListener("keydown", function (event) {
      var row = event.target;
      if (!row.classList || !row.classList.contains("pair") || event.altKey || event.ctrlKey || event.metaKey) {
        return; // only a focused row's own keys (its buttons and editor keep theirs)
      }
      var key = event.key;
      if (key === "Enter" || key === "F2") {
        event.preventDefault();
        startEdit(row);
      } else if (key === "a" || key === "A") {
        event.preventDefault();
        fetchAlternatives(row);
      } else if (key === "c" || key === "C") {
        event.preventDefault();
        copyRow(row);
      } else if (/^[1-9]$/.test(key)) {
        event.preventDefault();
        take(row, parseInt(key, 10) - 1);
      }
    });
    if (section) {
      bindTools(section);
    }
  };

  var bindTools = function (section) {
    section.querySelectorAll(".js-only").forEach(function (node) {
      node.hidden = false;
    });
    var copyAll = section.querySelector("#copy-all");
    var status = section.querySelector("#copy-status");
    if (copyAll) {
      copyAll.addEventListener("click", function () {
        copyText(englishOf(section)).then(function () {
          status.textContent = "The English is copied.";
        }, function (error) {
          status.textContent = error.message;
        });
      });
    }
    var toggle = section.querySelector("#vi-normalized");
    if (toggle) {
      toggle.addEventListener("change", function () {
        section.classList.toggle("vi-normalized", toggle.checked);
        section.querySelectorAll(".aligned .pair").forEach(function (row) {
          normalise(row, toggle.checked);
        });
      });
    }
  };

  window.mtWorkspace = {
    bind: bind,
    request: request,
    el: el,
    rowTranslated: function (row, update) {
      setSuggestions(row, update.suggestions);
    },
    rowLinked: function (row, update) {
      var section = row.closest(".result");
      if (section && section.classList.contains("vi-normalized")) {
        normalise(row, true);
      }
      setTerms(row, update.terms);
    },
    english: englishOf,
  };
  document.querySelectorAll(".aligned").forEach(bind);
})();
