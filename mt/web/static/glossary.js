/* mt-vi-en: the glossary of a request, pasted (Vietnamese<TAB>English lines) or chosen from the
 * server's stored glossaries (GET /api/glossaries, asked for when the box is first opened).
 * stream.js sends it with the request as `glossary` or `glossary_id`; without scripts the form
 * posts the pasted text and the server reads it the same way. */
(function () {
  "use strict";

  var request = window.mtWorkspace.request;
  var el = window.mtWorkspace.el;
  var apiKey = function () {
    var input = document.querySelector("#translate-form [name='api_key']");
    return input ? input.value : "";
  };

  // -- the glossary of a request ------------------------------------------------------------------
  var parseGlossary = function (text) {
    var entries = {};
    var count = 0;
    var lines = text.split(/\r\n|\r|\n/);
    for (var i = 0; i < lines.length; i++) {
      var line = lines[i];
      if (!line.trim()) {
        continue;
      }
      var cut = line.indexOf("\t") >= 0 ? line.indexOf("\t") : line.indexOf(",");
      if (cut < 0) {
        throw new Error("Glossary line " + (i + 1) + " has no Tab between the Vietnamese and the English.");
      }
      var vi = line.slice(0, cut).trim();
      var en = line.slice(cut + 1).replace(/\t/g, " ").trim();
      if (count === 0 && /^(vietnamese|vi|source|term|tiếng việt)$/i.test(vi)) {
        continue; // a header line
      }
      if (!vi || !en) {
        throw new Error("Glossary line " + (i + 1) + " needs both a Vietnamese term and its English.");
      }
      if (!Object.prototype.hasOwnProperty.call(entries, vi)) {
        count += 1;
      }
      entries[vi] = en;
    }
    return { entries: entries, count: count };
  };

  var glossaryOf = function (form) {
    var pasted = form.elements.namedItem("glossary");
    var stored = form.elements.namedItem("glossary_id");
    if (pasted && pasted.value.trim()) {
      var parsed = parseGlossary(pasted.value);
      if (parsed.count) {
        return { glossary: parsed.entries };
      }
    }
    if (stored && stored.value) {
      return { glossary_id: stored.value };
    }
    return {};
  };

  var showGlossaryState = function (form) {
    var state = document.getElementById("glossary-state");
    if (!state) {
      return;
    }
    var stored = form.elements.namedItem("glossary_id");
    try {
      var chosen = glossaryOf(form);
      if (chosen.glossary) {
        var n = Object.keys(chosen.glossary).length;
        state.textContent = n + (n === 1 ? " term" : " terms") + " pasted";
      } else if (chosen.glossary_id) {
        state.textContent = "“" + stored.options[stored.selectedIndex].textContent + "”";
      } else {
        state.textContent = "none: terms are translated as the model likes";
      }
      state.classList.remove("is-error");
    } catch (error) {
      state.textContent = error.message;
      state.classList.add("is-error");
    }
  };

  // the stored glossaries, asked for when the glossary box is first opened (with the API key
  // when the server wants one)
  var loadGlossaries = function (form) {
    var select = form.elements.namedItem("glossary_id");
    if (!select || !window.fetch || form.mtGlossaries) {
      return;
    }
    var hint = document.getElementById("glossary-id-hint");
    if (form.elements.namedItem("api_key") && !apiKey()) {
      if (hint) {
        hint.textContent = "Enter the API key first to see the glossaries stored on this server.";
      }
      return;
    }
    form.mtGlossaries = true;
    request("GET", document.body.getAttribute("data-glossaries-url") || "/api/glossaries").then(function (answer) {
      var list = Array.isArray(answer) ? answer : (answer && (answer.glossaries || answer.items)) || [];
      list.forEach(function (item) {
        var id = item.id || item.glossary_id;
        if (!id) {
          return;
        }
        var option = el("option", null, (item.name || id) +
          (typeof item.size === "number" ? " (" + item.size + " terms)" :
            item.entries && typeof item.entries === "object" ? " (" + Object.keys(item.entries).length + " terms)" : ""));
        option.value = id;
        select.appendChild(option);
      });
      if (hint && !list.length) {
        hint.textContent = "No glossary is stored on this server yet; paste one instead.";
      }
    }, function (error) {
      form.mtGlossaries = false;
      if (hint) {
        hint.textContent = "Stored glossaries are not available: " + error.message;
      }
    });
  };

  window.mtGlossary = { of: glossaryOf };

  var form = document.getElementById("translate-form");
  var box = document.getElementById("glossary-box");
  if (form && box) {
    box.addEventListener("toggle", function () {
      if (box.open) {
        loadGlossaries(form);
      }
    });
    if (box.open) {
      loadGlossaries(form);
    }
    form.addEventListener("change", function (event) {
      if (event.target.name === "api_key" && box.open) {
        loadGlossaries(form);
      }
    });
  }
  if (form) {
    ["input", "change"].forEach(function (type) {
      form.addEventListener(type, function (event) {
        if (event.target.name === "glossary" || event.target.name === "glossary_id") {
          showGlossaryState(form);
        }
      });
    });
  }
})();
