/* mt-vi-en page behaviour: vanilla JS, no build step. The page works without it;
 * this adds the pair highlighting, word-link highlighting, keyboard navigation between
 * rows and words, a character counter and a busy state on submit; stream.js streams the result
 * into the page (POST /api/translate/stream) instead of posting the form. */
(function () {
  "use strict";
  window.mtBindAligned = function (aligned) {
    bindAligned(aligned);
    if (window.mtWorkspace) {
      window.mtWorkspace.bind(aligned); // editing, suggestions, copy (workspace.js)
    }
  };

  // -- aligned view: hovering or focusing either side highlights the pair --------------------
  // (bound to the server-rendered table, and to each streamed one: delegation, so rows added
  // or filled later behave the same)
  var bindAligned = function (aligned) {
    var active = null;

    var activate = function (row) {
      if (row === active) {
        return;
      }
      if (active) {
        active.classList.remove("is-active");
        active.querySelectorAll(".cell").forEach(function (cell) {
          cell.classList.remove("is-active");
        });
      }
      active = row;
      if (row) {
        row.classList.add("is-active");
        row.querySelectorAll(".cell").forEach(function (cell) {
          cell.classList.add("is-active");
        });
      }
    };

    var rowOf = function (node) {
      return node && node.closest ? node.closest(".pair") : null;
    };

    // -- word links: a row's data-links is [[vi word, en word], ...] (JSON, from the server) ----
    var lit = [];
    var linksOf = function (row) {
      if (!row.mtLinks) {
        try {
          row.mtLinks = JSON.parse(row.getAttribute("data-links") || "[]");
        } catch (error) {
          row.mtLinks = [];
        }
      }
      return row.mtLinks;
    };
    var clearWords = function () {
      lit.forEach(function (node) {
        node.classList.remove("is-word", "is-linked");
      });
      lit = [];
    };
    var showWord = function (word) {
      // the word gets is-word, the words it is linked to on the other side get is-linked
      clearWords();
      var row = rowOf(word);
      if (!word || !row) {
        return;
      }
      var fromVi = !!word.closest(".cell.vi");
      var mine = fromVi ? 0 : 1;
      var theirs = fromVi ? 1 : 0;
      var index = parseInt(word.getAttribute("data-i"), 10);
      var other = row.querySelector(fromVi ? ".cell.en" : ".cell.vi");
      word.classList.add("is-word");
      lit.push(word);
      if (!other) {
        return;
      }
      linksOf(row).forEach(function (link) {
        if (link[mine] !== index) {
          return;
        }
        var target = other.querySelector('.w[data-i="' + link[theirs] + '"]');
        if (target && lit.indexOf(target) < 0) {
          target.classList.add("is-linked");
          lit.push(target);
        }
      });
    };
    var wordOf = function (node) {
      return node && node.closest ? node.closest(".w") : null;
    };

    aligned.addEventListener("mouseover", function (event) {
      var row = rowOf(event.target);
      if (row) {
        activate(row);
      }
      var word = wordOf(event.target);
      if (word) {
        showWord(word);
      } else if (lit.length) {
        clearWords();
      }
    });
    aligned.addEventListener("click", function (event) {
      // touch screens: a tap shows a word's links
      var word = wordOf(event.target);
      if (word) {
        showWord(word);
      }
    });
    aligned.addEventListener("mouseleave", function () {
      // back to the focused row, if any, when the pointer leaves the table
      clearWords();
      activate(rowOf(aligned.contains(document.activeElement) ? document.activeElement : null));
    });
    aligned.addEventListener("focusin", function (event) {
      activate(rowOf(event.target));
    });
    aligned.addEventListener("focusout", function (event) {
      if (!aligned.contains(event.relatedTarget)) {
        clearWords();
        activate(null);
      }
    });

    // ↑/↓ (and j/k) move between rows, Home/End jump to the first/last row
    aligned.addEventListener("keydown", function (event) {
      var row = rowOf(event.target);
      if (!row || row !== event.target || event.altKey || event.ctrlKey || event.metaKey) {
        return; // a focused row's keys; its buttons and its editor keep their own
      }
      var rows = Array.prototype.slice.call(aligned.querySelectorAll(".pair"));
      var index = rows.indexOf(row);
      var next = null;
      if (event.key === "ArrowDown" || event.key === "j") {
        next = rows[index + 1];
      } else if (event.key === "ArrowUp" || event.key === "k") {
        next = rows[index - 1];
      } else if (event.key === "Home") {
        next = rows[0];
      } else if (event.key === "End") {
        next = rows[rows.length - 1];
      } else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
        // ←/→ step through the row's Vietnamese words, showing each one's links
        var words = Array.prototype.slice.call(row.querySelectorAll(".cell.vi .w"));
        if (words.length) {
          event.preventDefault();
          var current = words.indexOf(lit[0]);
          var step = event.key === "ArrowRight" ? 1 : -1;
          var at = current < 0 ? (step > 0 ? 0 : words.length - 1) : Math.min(Math.max(current + step, 0), words.length - 1);
          showWord(words[at]);
        }
        return;
      }
      if (next) {
        event.preventDefault();
        clearWords();
        next.focus();
      }
    });
  };
  var renderedTable = document.querySelector(".aligned");
  if (renderedTable) {
    bindAligned(renderedTable);
  }

  // -- the form --------------------------------------------------------------------------------
  var form = document.getElementById("translate-form");
  if (!form) {
    return;
  }
  var text = document.getElementById("text");
  var counter = document.getElementById("char-count");
  var file = document.getElementById("file");
  var submit = document.getElementById("submit");
  var max = counter ? parseInt(counter.getAttribute("data-max"), 10) : 0;
  var format = function (n) {
    return n.toLocaleString("en-US");
  };

  var count = function () {
    if (!counter || !text) {
      return;
    }
    // the server counts code points, as Python's len() does
    var n = Array.from(text.value.replace(/\r\n/g, "\n")).length;
    counter.textContent = format(n) + " / " + format(max) + " characters";
    counter.classList.toggle("char-count-over", n > max);
  };
  if (text) {
    text.addEventListener("input", count);
    if (text.value) {
      count();
    }
  }

  if (file) {
    file.addEventListener("change", function () {
      var chosen = file.files && file.files[0];
      var hint = document.getElementById("file-hint");
      if (hint) {
        hint.textContent = chosen
          ? "“" + chosen.name + "” will be translated instead of the text box."
          : "UTF-8 text, or Markdown, HTML, DOCX, SRT, WebVTT (translated in place, structure kept); a chosen file replaces the text box.";
      }
    });
  }

  form.addEventListener("submit", function (event) {
    if (window.mtStream && window.mtStream.start(form, event)) {
      return; // streamed into the page (stream.js); the browser does not navigate
    }
    if (submit) {
      // after the browser has read the form: a disabled button is not submitted, which is fine
      window.setTimeout(function () {
        submit.disabled = true;
        submit.classList.add("is-busy");
        submit.textContent = "Translating…";
      }, 0);
    }
  });

  // coming back with the browser's back button restores a page with a busy button
  window.addEventListener("pageshow", function () {
    if (submit && submit.classList.contains("is-busy")) {
      submit.disabled = false;
      submit.classList.remove("is-busy");
      submit.textContent = "Translate";
    }
  });
})();
